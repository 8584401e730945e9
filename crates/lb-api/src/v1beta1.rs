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

/// Whether a load balancer is reachable from the internet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadBalancerScheme {
    #[serde(rename = "internal")]
    Internal,
    #[serde(rename = "internet-facing")]
    InternetFacing,
}

/// The address families a load balancer listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IpAddressType {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "dualstack")]
    Dualstack,
    #[serde(rename = "dualstack-without-public-ipv4")]
    DualstackWithoutPublicIpv4,
}

/// What a target group registers: node instances (on the NodePort) or pod
/// IPs.
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(regex(pattern = "subnet-[0-9a-f]+")))]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
}

/// An AWS tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A load balancer or listener attribute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

/// Attributes for the listener on one protocol and port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener_attributes: Vec<Attribute>,
}

/// Reserved load balancer capacity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinimumLoadBalancerCapacity {
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
    printcolumn = r#"{"name":"GROUP-NAME","type":"string","description":"The Ingress Group name","jsonPath":".spec.group.name"}"#,
    printcolumn = r#"{"name":"SCHEME","type":"string","description":"The AWS Load Balancer scheme","jsonPath":".spec.scheme"}"#,
    printcolumn = r#"{"name":"IP-ADDRESS-TYPE","type":"string","description":"The AWS Load Balancer ipAddressType","jsonPath":".spec.ipAddressType"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParamsSpec {
    /// The load balancer's name (at most 32 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    /// ACM certificate ARNs for the HTTPS listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_arn: Vec<String>,
    /// Namespaces whose Ingresses may use the class; absent or empty
    /// selects every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The IngressGroup every Ingress of the class joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IngressGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<LoadBalancerScheme>,
    /// CIDRs allowed to reach the listeners.
    #[serde(
        default,
        rename = "inboundCIDRs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inbound_cidrs: Vec<String>,
    /// The security policy of the HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    /// Redirect every HTTP listener to this HTTPS port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<SubnetSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<IpAddressType>,
    /// Tags on every AWS resource made for the class's Ingresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The target type of every target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_attributes: Vec<Attribute>,
    /// Listener attributes by protocol and port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_load_balancer_capacity: Option<MinimumLoadBalancerCapacity>,
    /// Managed prefix lists allowed to reach the listeners.
    #[serde(
        default,
        rename = "prefixListsIDs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prefix_lists_ids: Vec<String>,
}

/// The protocol of a bound target group.
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

/// The address family of a bound target group.
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
    pub name: String,
    /// The Service port's number or name.
    pub port: IntOrString,
}

/// A CIDR peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IpBlock {
    pub cidr: String,
}

/// A security group peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityGroupPeer {
    #[serde(rename = "groupID")]
    pub group_id: String,
}

/// Where allowed traffic comes from: one of the two.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkingPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<SecurityGroupPeer>,
}

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetworkingProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
}

/// Traffic the targets' security groups must let in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkingIngressRule {
    pub from: Vec<NetworkingPeer>,
    pub ports: Vec<NetworkingPort>,
}

/// The security group rules the controller keeps on the targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetGroupBindingNetworking {
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
    printcolumn = r#"{"name":"SERVICE-NAME","type":"string","description":"The Kubernetes Service's name","jsonPath":".spec.serviceRef.name"}"#,
    printcolumn = r#"{"name":"SERVICE-PORT","type":"string","description":"The Kubernetes Service's port","jsonPath":".spec.serviceRef.port"}"#,
    printcolumn = r#"{"name":"TARGET-TYPE","type":"string","description":"The AWS TargetGroup's TargetType","jsonPath":".spec.targetType"}"#,
    printcolumn = r#"{"name":"ARN","type":"string","description":"The AWS TargetGroup's Amazon Resource Name","jsonPath":".spec.targetGroupARN","priority":1}"#,
    printcolumn = r#"{"name":"NAME","type":"string","description":"The AWS TargetGroup's Name","jsonPath":".spec.targetGroupName","priority":2}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingSpec {
    /// The target group's ARN (wins over the name).
    #[serde(
        default,
        rename = "targetGroupARN",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_name: Option<String>,
    /// Inferred from the target group when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    /// Inferred from the target group when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_protocol: Option<TargetGroupProtocol>,
    pub service_ref: ServiceReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<TargetGroupBindingNetworking>,
    /// Instance targets: only the nodes this selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// Inferred from the target group when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<TargetGroupIpAddressType>,
    /// Inferred when absent.
    #[serde(default, rename = "vpcID", skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The target group is shared with other clusters: only the targets
    /// this cluster registered are touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_cluster_target_group: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
