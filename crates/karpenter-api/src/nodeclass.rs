//! Node classes: `karpenter.k8s.aws/v1` EC2NodeClass (how AWS nodes are
//! launched) and `karpenter.kwok.sh/v1alpha1` KWOKNodeClass (clusters
//! without a cloud).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Selects subnets by tags (all must match) or by id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubnetSelectorTerm {
    /// Tags a subnet must all carry (key to value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// A subnet ID (`subnet-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^subnet-[0-9a-z]+$"))]
    pub id: Option<String>,
}

/// Selects security groups by tags, id or name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityGroupSelectorTerm {
    /// Tags a security group must all carry (key to value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// A security group ID (`sg-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^sg-[0-9a-z]+$"))]
    pub id: Option<String>,
    /// A security group name. Accepted for compatibility; not acted on
    /// yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Selects AMIs by alias (`al2023@latest`), tags, id, name or owner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AmiSelectorTerm {
    /// An EKS-optimized AMI family and version, `family@version` (e.g.
    /// `al2023@latest`, `bottlerocket@v1.20.0`). Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9]+@.+$"))]
    pub alias: Option<String>,
    /// Tags an AMI must all carry. Accepted for compatibility; not acted on
    /// yet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// An AMI ID (`ami-...`); the first ID among the terms is the image
    /// nodes launch from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^ami-[0-9a-z]+$"))]
    pub id: Option<String>,
    /// An AMI name (wildcards allowed). Accepted for compatibility; not
    /// acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The AMI owner: an account ID, `self` or `amazon`. Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// An EBS volume's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockDevice {
    /// Whether the volume is deleted with the instance (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    /// Whether the volume is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// Provisioned I/O operations per second (io1, io2, gp3; gp3 defaults
    /// to 3000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    /// The KMS key (ARN) that encrypts the volume.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "kmsKeyID")]
    pub kms_key_id: Option<String>,
    /// The snapshot the volume is created from.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "snapshotID"
    )]
    pub snapshot_id: Option<String>,
    /// Throughput in MiB/s (gp3 only; default 125).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i64>,
    /// A quantity such as `20Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<String>,
    /// The EBS volume type: standard, io1, io2, gp2, gp3, sc1 or st1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
}

/// A volume attached to the class's instances. Accepted for
/// compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMapping {
    /// The device name the volume is exposed as (e.g. `/dev/xvda`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The EBS volume's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs: Option<BlockDevice>,
    /// Whether this is the root volume (the one that counts for the node's
    /// ephemeral storage); at most one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume: Option<bool>,
}

/// How the instances' metadata service (IMDS) may be reached. Accepted for
/// compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    /// `enabled` (default) or `disabled`: whether IMDS answers at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_endpoint: Option<String>,
    /// `enabled` or `disabled` (default): whether IMDS answers on its IPv6
    /// address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "httpProtocolIPv6"
    )]
    pub http_protocol_ipv6: Option<String>,
    /// How many network hops an IMDS response may travel (1 to 64; default
    /// 1, so pods without host networking cannot reach it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_put_response_hop_limit: Option<i64>,
    /// `required` (default: IMDSv2 session tokens only) or `optional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_tokens: Option<String>,
}

/// Kubelet settings for the class's nodes (they also change what a node
/// can hold). Accepted for compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    /// The most pods a node may run (default: what the instance type's
    /// network interfaces allow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_pods: Option<i32>,
    /// The most pods per CPU core; the lower of this and `maxPods` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub pods_per_core: Option<i32>,
    /// Resources (cpu, memory, ephemeral-storage, pid) kept for system
    /// daemons.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_reserved: BTreeMap<String, String>,
    /// Resources (cpu, memory, ephemeral-storage, pid) kept for Kubernetes
    /// daemons (kubelet, container runtime).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kube_reserved: BTreeMap<String, String>,
    /// Hard eviction thresholds by signal (e.g. `memory.available: 5%`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_hard: BTreeMap<String, String>,
}

/// How Karpenter launches EC2 instances for a pool.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "karpenter.k8s.aws",
    version = "v1",
    kind = "EC2NodeClass",
    plural = "ec2nodeclasses",
    shortname = "ec2nc",
    shortname = "ec2ncs",
    status = "EC2NodeClassStatus",
    category = "karpenter",
    doc = "An EC2NodeClass says how Karpenter launches EC2 instances for the NodePools that name it: subnets, security groups, image, instance profile, tags and user data.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.role","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.role) != has(self.instanceProfile)").message("must specify exactly one of ['role', 'instanceProfile']"))]
pub struct EC2NodeClassSpec {
    /// Where nodes launch: subnets matching any term (1 to 30); per zone,
    /// the one with the most free addresses.
    #[schemars(length(min = 1, max = 30))]
    #[x_kube(validation = Rule::new("self.all(x, has(x.tags) || has(x.id))").message("expected at least one, got none, ['tags', 'id']"))]
    pub subnet_selector_terms: Vec<SubnetSelectorTerm>,
    /// The security groups nodes get: those matching any term (1 to 30).
    #[schemars(length(min = 1, max = 30))]
    #[x_kube(validation = Rule::new("self.all(x, has(x.tags) || has(x.id) || has(x.name))").message("expected at least one, got none, ['tags', 'id', 'name']"))]
    pub security_group_selector_terms: Vec<SecurityGroupSelectorTerm>,
    /// The image nodes launch from (at most 30 terms). Outrigger uses the
    /// first `id` among the terms; without one, the newest Amazon-owned AMI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30))]
    pub ami_selector_terms: Vec<AmiSelectorTerm>,
    /// The AMI family (AL2, AL2023, Bottlerocket, Windows2019, Windows2022,
    /// Custom), which shapes bootstrap user data. Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_family: Option<String>,
    /// The nodes' IAM role (exactly one of `role` and `instanceProfile`).
    /// Outrigger creates no instance profile: it launches with the instance
    /// profile named like the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// An existing instance profile the nodes launch with (exactly one of
    /// `role` and `instanceProfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    /// Tags for the launched instances (Outrigger does not tag their
    /// volumes or launch templates with them yet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Volumes attached to the instances (at most 50; default: the AMI's).
    /// Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    /// Shell commands run on the instance at boot, before the EKS
    /// bootstrap script (`/etc/eks/bootstrap.sh`) joins it to the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// How the instances' metadata service may be reached. Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_options: Option<MetadataOptions>,
    /// Kubelet settings for the nodes. Accepted for compatibility; not
    /// acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletConfiguration>,
    /// Whether instances get a public IPv4 address (default: the subnet's
    /// setting). Accepted for compatibility; not acted on yet. Spelled
    /// `associatePublicIPAddress`, as upstream's CRD does.
    #[serde(
        default,
        rename = "associatePublicIPAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub associate_public_ip_address: Option<bool>,
    /// Whether instances get detailed (one-minute) CloudWatch monitoring
    /// (default false). Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detailed_monitoring: Option<bool>,
    /// The EC2 Fleet context (a reserved-capacity context ID). Accepted
    /// for compatibility; not acted on yet. A change drifts the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// How instance-store volumes are used (`RAID0`). Accepted for
    /// compatibility; not acted on yet. A change drifts the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^RAID0$"))]
    pub instance_store_policy: Option<String>,
}

/// A subnet the selectors found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetStatus {
    /// The subnet's ID.
    pub id: String,
    /// The subnet's availability zone (e.g. `us-west-2a`).
    pub zone: String,
    /// The zone's ID (e.g. `usw2-az1`). Not set by Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "zoneID")]
    pub zone_id: Option<String>,
}

/// A security group the selectors found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityGroupStatus {
    /// The security group's ID.
    pub id: String,
    /// The security group's name. Not set by Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An AMI the selectors found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AmiStatus {
    /// The AMI's ID.
    pub id: String,
    /// The AMI's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the selectors resolved to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EC2NodeClassStatus {
    /// The subnets nodes launch in: one per zone, the one with the most
    /// free addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<SubnetStatus>,
    /// The security groups nodes get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroupStatus>,
    /// The AMIs nodes may launch from. Not set by Outrigger yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amis: Vec<AmiStatus>,
    /// The instance profile nodes launch with. Not set by Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    /// The class's conditions: SubnetsReady, SecurityGroupsReady and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Nodes that kwok runs: no cloud. The instance types, zones and prices
/// come from Outrigger's bundled catalogue.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "karpenter.kwok.sh",
    version = "v1alpha1",
    kind = "KWOKNodeClass",
    plural = "kwoknodeclasses",
    status = "KWOKNodeClassStatus",
    category = "karpenter",
    doc = "A KWOKNodeClass is the node class of NodePools whose nodes kwok simulates: no cloud, instance types, zones and prices from Outrigger's bundled catalogue.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KWOKNodeClassSpec {
    /// Zones the class's nodes may be in (default: every zone of the
    /// catalogue). Accepted for compatibility; not acted on yet: the zones
    /// are the provisioner's `--kwok-zones`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// How long after launch a node registers (default 0s: at once).
    /// Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub node_registration_delay: Option<String>,
}

/// The class's state: Ready from the start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KWOKNodeClassStatus {
    /// The class's conditions: Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
