//! `karpenter.sh/v1alpha5` Provisioner, as the seed writes it: requirements,
//! `limits.resources`, an inline `provider` (subnetSelector,
//! securityGroupSelector, ...) or a `providerRef`, `ttlSecondsAfterEmpty`.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Taint,
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A requirement as v1alpha5 had it (no minValues, no Gte/Lte).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSelectorRequirement {
    /// The label key (e.g. `node.kubernetes.io/instance-type`,
    /// `topology.kubernetes.io/zone`, `karpenter.sh/capacity-type`).
    #[schemars(length(max = 316))]
    pub key: String,
    pub operator: Operator,
    /// The values the operator compares with: at least one for In, none
    /// for Exists and DoesNotExist, a single integer for Gt and Lt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(max = 63)))]
    pub values: Vec<String>,
}

/// How the label's value is compared with `values`: In, NotIn, Exists,
/// DoesNotExist, Gt or Lt (Gt and Lt take one integer value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

/// Limits on what the provisioner may launch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Most resources (cpu, memory, ...: capacity) the provisioner's nodes
    /// may have together; no node is launched past them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
}

/// The node template (an AWSNodeTemplate) the provisioner's nodes launch
/// with, instead of an inline `provider`. Outrigger does not serve
/// AWSNodeTemplate: such a provisioner is reported not ready (use
/// `provider`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRef {
    /// The template's API version (`karpenter.k8s.aws/v1alpha1`).
    /// Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The template's kind (default `AWSNodeTemplate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The template's name.
    pub name: String,
}

/// Consolidation: removing or replacing nodes whose pods fit elsewhere
/// (more cheaply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Consolidation {
    /// Turns consolidation on (default off): the provisioner's nodes are
    /// deleted or replaced by cheaper ones when their pods fit elsewhere
    /// (as a v1 NodePool under `WhenEmptyOrUnderutilized` after `0s`);
    /// cannot be set with `ttlSecondsAfterEmpty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Kubelet settings for the provisioner's nodes (they also change what a
/// node can hold). Accepted for compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    /// DNS server IPs the kubelet gives pods instead of the cluster's.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    /// The container runtime: `containerd` or `dockerd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
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
    /// Hard eviction thresholds by signal (e.g. `memory.available: 100Mi`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_hard: BTreeMap<String, String>,
}

/// Any provider-specific settings, kept as written.
fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// What nodes Karpenter may launch (the API before NodePool).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "karpenter.sh",
    version = "v1alpha5",
    kind = "Provisioner",
    plural = "provisioners",
    status = "ProvisionerStatus",
    category = "karpenter",
    doc = "A Provisioner (karpenter.sh/v1alpha5, the API before NodePool) says which nodes Karpenter may launch for pending pods: their labels, taints, requirements and AWS settings, how many, and when they are removed.",
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.providerRef.name"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".spec.weight","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.provider) && has(self.providerRef))").message("provider and providerRef are mutually exclusive"))]
#[x_kube(validation = Rule::new("!(has(self.ttlSecondsAfterEmpty) && has(self.consolidation) && has(self.consolidation.enabled) && self.consolidation.enabled)").message("ttlSecondsAfterEmpty and consolidation.enabled are mutually exclusive"))]
pub struct ProvisionerSpec {
    /// Labels put on every node of the provisioner (pods may select them),
    /// with `karpenter.sh/provisioner-name`. Labels Karpenter sets itself
    /// are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for the provisioner's nodes. Accepted for compatibility;
    /// not acted on yet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Taints every node of the provisioner gets; only pods that tolerate
    /// them are placed there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints that are present at startup and removed by something else
    /// (a CNI, a GPU operator) before the node takes pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// Requirements on the nodes' labels (instance type, zone, capacity
    /// type, architecture, ...); a node satisfies all of them (at most 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)").message("requirements with operator 'In' must have a value defined"))]
    #[x_kube(validation = Rule::new("self.all(x, (x.operator == 'Gt' || x.operator == 'Lt') ? (x.values.size() == 1 && x.values[0].matches('^[0-9]+$')) : true)").message("requirements operator 'Gt' or 'Lt' must have a single positive integer value"))]
    pub requirements: Vec<NodeSelectorRequirement>,
    /// Kubelet settings for the provisioner's nodes. Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_configuration: Option<KubeletConfiguration>,
    /// Most resources the provisioner's nodes may have together (unset: no
    /// limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// AWS settings written inline: `subnetSelector` and
    /// `securityGroupSelector` (tags, required), `instanceProfile`, `tags`;
    /// Outrigger reads only these. Cannot be set with `providerRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub provider: Option<serde_json::Value>,
    /// The node template the nodes launch with, instead of `provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_ref: Option<ProviderRef>,
    /// Seconds a node may stay empty (only daemonset pods) before it is
    /// deleted (unset: empty nodes are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_empty: Option<i64>,
    /// Seconds a node lives before its claim is deleted and its pods move
    /// (unset: never); the claim's `expireAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_until_expired: Option<i64>,
    /// Consolidation settings (cannot be enabled with
    /// `ttlSecondsAfterEmpty`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation: Option<Consolidation>,
    /// Priority among provisioners and pools (1 to 100): higher first when
    /// several fit a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: Option<i32>,
}

/// What the provisioner has now, as the controller observed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionerStatus {
    /// Capacity of the provisioner's nodes together (and `nodes`, their
    /// number).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
    /// When the provisioner last launched or removed a node. Not set by
    /// Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// The provisioner's conditions: ValidationSucceeded, NodeClassReady,
    /// LimitReached and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
