//! `elbv2.k8s.aws/v1beta1`: IngressClassParams and TargetGroupBinding, with
//! the AWS Load Balancer Controller's field names (camelCase, including its
//! `ARN`/`ID`/`CIDRs` spellings), enums and printer columns. Every field is
//! optional unless upstream requires it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::{
    apis::meta::v1::{Condition, LabelSelector},
    util::intstr::IntOrString,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a load balancer is reachable from the internet:
/// `internet-facing`, or `internal` (the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadBalancerScheme {
    #[serde(rename = "internal")]
    Internal,
    #[serde(rename = "internet-facing")]
    InternetFacing,
}

/// The address families a load balancer listens on: `ipv4` (the
/// default), `dualstack`, or `dualstack-without-public-ipv4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IpAddressType {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "dualstack")]
    Dualstack,
    #[serde(rename = "dualstack-without-public-ipv4")]
    DualstackWithoutPublicIpv4,
}

/// What a target group registers: `instance` (the nodes, on the Service's
/// NodePort) or `ip` (the pods' IPs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetType {
    #[serde(rename = "instance")]
    Instance,
    #[serde(rename = "ip")]
    Ip,
}

/// The IngressGroup every Ingress of the class joins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngressGroup {
    /// The group's name (what `alb.ingress.kubernetes.io/group.name` would
    /// say).
    pub name: String,
}

/// Subnets by ID, or by tags (each key must carry one of its values).
/// Exactly one of the two is expected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubnetSelector {
    /// Subnet IDs (`subnet-...`), at most one per availability zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(regex(pattern = "subnet-[0-9a-f]+")))]
    pub ids: Vec<String>,
    /// Tags a subnet must carry: each key with one of its listed values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
}

/// An AWS tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tag {
    /// The tag's key.
    pub key: String,
    /// The tag's value.
    pub value: String,
}

/// A load balancer or listener attribute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attribute {
    /// The attribute's name (e.g. `idle_timeout.timeout_seconds`).
    pub key: String,
    /// The attribute's value, as a string.
    pub value: String,
}

/// Attributes for the listener on one protocol and port. Accepted for
/// compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerParams {
    /// The listener's protocol: `HTTP` or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The listener's port (1 to 65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// The attributes to set on that listener.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener_attributes: Vec<Attribute>,
}

/// Load balancer capacity reserved ahead of traffic. Accepted for
/// compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinimumLoadBalancerCapacity {
    /// How many load balancer capacity units (LCUs) to reserve.
    pub capacity_units: i32,
}

/// Settings for every Ingress of the IngressClasses that point at these
/// parameters. A field that is set wins over the matching Ingress
/// annotation.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "elbv2.k8s.aws",
    version = "v1beta1",
    kind = "IngressClassParams",
    plural = "ingressclassparams",
    singular = "ingressclassparam",
    derive = "PartialEq",
    doc = "IngressClassParams are the parameters of an IngressClass of controller ingress.k8s.aws/alb: settings for the load balancer of every Ingress of that class, which win over the Ingresses' annotations.",
    printcolumn = r#"{"name":"GROUP-NAME","type":"string","description":"The Ingress Group name","jsonPath":".spec.group.name"}"#,
    printcolumn = r#"{"name":"SCHEME","type":"string","description":"The AWS Load Balancer scheme","jsonPath":".spec.scheme"}"#,
    printcolumn = r#"{"name":"IP-ADDRESS-TYPE","type":"string","description":"The AWS Load Balancer ipAddressType","jsonPath":".spec.ipAddressType"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParamsSpec {
    /// The load balancer's name (at most 32 letters, digits and hyphens);
    /// default: one derived from the Ingress or group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    /// ACM certificate ARNs for the HTTPS listeners; with some and no
    /// listen-ports annotation, the load balancer listens on HTTPS 443.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_arn: Vec<String>,
    /// Namespaces whose Ingresses may use the class; absent or empty
    /// selects every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The IngressGroup every Ingress of the class joins (one load
    /// balancer for all); the group.name annotation is then ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IngressGroup>,
    /// `internal` (default) or `internet-facing`; wins over the scheme
    /// annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<LoadBalancerScheme>,
    /// CIDRs allowed to reach the listeners (default: anywhere); wins over
    /// the inbound-cidrs annotation.
    #[serde(
        default,
        rename = "inboundCIDRs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inbound_cidrs: Vec<String>,
    /// The security policy of the HTTPS listeners (default: the
    /// controller's `--default-ssl-policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    /// Redirect every HTTP listener to this HTTPS port (a port number, as
    /// a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect_port: Option<String>,
    /// The load balancer's subnets, by ID or tags (default: discovered
    /// by their role tags, one per zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<SubnetSelector>,
    /// `ipv4` (default), `dualstack` or `dualstack-without-public-ipv4`;
    /// wins over the ip-address-type annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<IpAddressType>,
    /// Tags on every AWS resource made for the class's Ingresses; they win
    /// over the tags annotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The target type of every target group: `instance` or `ip`
    /// (default: the target-type annotation, else `--default-target-type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    /// Load balancer attributes; when set, the load-balancer-attributes
    /// annotation is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_attributes: Vec<Attribute>,
    /// Listener attributes by protocol and port. Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerParams>,
    /// Load balancer capacity reserved ahead of traffic. Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_load_balancer_capacity: Option<MinimumLoadBalancerCapacity>,
    /// Managed prefix lists allowed to reach the listeners. Accepted for
    /// compatibility; not acted on yet.
    #[serde(
        default,
        rename = "prefixListsIDs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prefix_lists_ids: Vec<String>,
}

/// The protocol of a bound target group: HTTP, HTTPS, TCP, TLS, UDP,
/// TCP_UDP, QUIC or TCP_QUIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetGroupProtocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "TLS")]
    Tls,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "TCP_UDP")]
    TcpUdp,
    #[serde(rename = "QUIC")]
    Quic,
    #[serde(rename = "TCP_QUIC")]
    TcpQuic,
}

/// The address family of a bound target group: `ipv4` or `ipv6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetGroupIpAddressType {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "ipv6")]
    Ipv6,
}

/// The Service port whose endpoints become targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceReference {
    /// The Service's name, in the binding's namespace.
    pub name: String,
    /// The Service port's number or name.
    pub port: IntOrString,
}

/// A CIDR peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IpBlock {
    /// An IPv4 or IPv6 CIDR (e.g. `10.0.0.0/16`).
    pub cidr: String,
}

/// A security group peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityGroupPeer {
    /// The security group's ID (`sg-...`).
    #[serde(rename = "groupID")]
    pub group_id: String,
}

/// Where allowed traffic comes from: one of the two.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkingPeer {
    /// Traffic from this CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
    /// Traffic from members of this security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<SecurityGroupPeer>,
}

/// A port's protocol: `TCP` (the default) or `UDP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NetworkingProtocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

/// A port (number, or a pod port name for ip targets; every port when
/// absent) and protocol (TCP when absent) on the targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkingPort {
    /// `TCP` (default) or `UDP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetworkingProtocol>,
    /// A port number, or a pod port name for ip targets (unset: every
    /// port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
}

/// Traffic the targets' security groups must let in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkingIngressRule {
    /// Where the traffic comes from: CIDRs or security groups.
    pub from: Vec<NetworkingPeer>,
    /// The ports (and protocols) on the targets it may reach.
    pub ports: Vec<NetworkingPort>,
}

/// The security group rules the controller keeps on the targets. Accepted
/// for compatibility; not acted on yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetGroupBindingNetworking {
    /// Inbound rules: traffic from these peers to these ports is allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<NetworkingIngressRule>,
}

/// Binds a target group (made outside the cluster, or by the controller
/// for a Service or Ingress) to a Service port: its ready endpoints (ip)
/// or its nodes on the NodePort (instance) are kept registered.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "elbv2.k8s.aws",
    version = "v1beta1",
    kind = "TargetGroupBinding",
    plural = "targetgroupbindings",
    namespaced,
    status = "TargetGroupBindingStatus",
    derive = "PartialEq",
    doc = "A TargetGroupBinding keeps an existing ELBv2 target group in step with a Service port: its ready pods (ip targets) or its nodes on the NodePort (instance targets) are registered, the rest deregistered.",
    printcolumn = r#"{"name":"SERVICE-NAME","type":"string","description":"The Kubernetes Service's name","jsonPath":".spec.serviceRef.name"}"#,
    printcolumn = r#"{"name":"SERVICE-PORT","type":"string","description":"The Kubernetes Service's port","jsonPath":".spec.serviceRef.port"}"#,
    printcolumn = r#"{"name":"TARGET-TYPE","type":"string","description":"The AWS TargetGroup's TargetType","jsonPath":".spec.targetType"}"#,
    printcolumn = r#"{"name":"ARN","type":"string","description":"The AWS TargetGroup's Amazon Resource Name","jsonPath":".spec.targetGroupARN","priority":1}"#,
    printcolumn = r#"{"name":"NAME","type":"string","description":"The AWS TargetGroup's Name","jsonPath":".spec.targetGroupName","priority":2}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingSpec {
    /// The target group's ARN (wins over the name); one of
    /// `targetGroupARN` and `targetGroupName` is needed.
    #[serde(
        default,
        rename = "targetGroupARN",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_group_arn: Option<String>,
    /// The target group's name, looked up when `targetGroupARN` is not
    /// set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_name: Option<String>,
    /// `instance` or `ip`; must match the target group's. Outrigger treats
    /// an absent one as `instance` (upstream infers it from the group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    /// The target group's protocol (inferred from the group when absent).
    /// Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_protocol: Option<TargetGroupProtocol>,
    /// The Service port whose endpoints (or NodePort) become targets.
    pub service_ref: ServiceReference,
    /// Security group rules letting the load balancer reach the targets.
    /// Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<TargetGroupBindingNetworking>,
    /// Instance targets: only the nodes this selects (default: every
    /// node). Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// `ipv4` or `ipv6` (inferred from the target group when absent).
    /// Accepted for compatibility; not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<TargetGroupIpAddressType>,
    /// The target group's VPC (inferred when absent). Accepted for
    /// compatibility; not acted on yet.
    #[serde(default, rename = "vpcID", skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The target group is shared with other clusters: only the targets
    /// this cluster registered are touched. Accepted for compatibility;
    /// not acted on yet (other targets are deregistered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_cluster_target_group: Option<bool>,
}

/// The binding's state, as the controller observed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingStatus {
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The binding's conditions: Ready (with why not, e.g.
    /// TargetGroupNotFound, ServiceNotFound).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
