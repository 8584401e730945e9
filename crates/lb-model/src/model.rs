//! The desired state of one stack: what a Service (NLB) or an IngressGroup
//! (ALB) should have in ELBv2 and EC2. Plain data: built by
//! [`crate::service`] and [`crate::ingress`], then compared with what exists
//! and deployed by a provider (the AWS one, or a local data plane later).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tag on everything the controller creates: the cluster's name.
pub const TAG_CLUSTER: &str = "elbv2.k8s.aws/cluster";
/// Tag naming a Service stack (`namespace/name`).
pub const TAG_SERVICE_STACK: &str = "service.k8s.aws/stack";
/// Tag naming one resource within a Service stack.
pub const TAG_SERVICE_RESOURCE: &str = "service.k8s.aws/resource";
/// Tag naming an Ingress stack (the group name, or `namespace/name` for an
/// Ingress without a group).
pub const TAG_INGRESS_STACK: &str = "ingress.k8s.aws/stack";
/// Tag naming one resource within an Ingress stack.
pub const TAG_INGRESS_RESOURCE: &str = "ingress.k8s.aws/resource";
/// The finalizer on Services with a load balancer.
pub const FINALIZER_SERVICE: &str = "service.k8s.aws/resources";
/// The finalizer on an Ingress without a group.
pub const FINALIZER_INGRESS: &str = "ingress.k8s.aws/resources";
/// The finalizer on a member of an explicit group: this prefix + group name.
pub const FINALIZER_GROUP_PREFIX: &str = "group.ingress.k8s.aws/";

/// Which Kubernetes objects a stack comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StackId {
    /// A Service of type LoadBalancer.
    Service { namespace: String, name: String },
    /// Ingresses sharing `alb.ingress.kubernetes.io/group.name`.
    IngressGroup { name: String },
    /// One Ingress without a group name.
    Ingress { namespace: String, name: String },
}

impl StackId {
    /// The value of the stack tag (`service.k8s.aws/stack` or
    /// `ingress.k8s.aws/stack`).
    pub fn tag_value(&self) -> String {
        match self {
            StackId::Service { namespace, name } | StackId::Ingress { namespace, name } => {
                format!("{namespace}/{name}")
            }
            StackId::IngressGroup { name } => name.clone(),
        }
    }
    /// The key of the stack tag.
    pub fn tag_key(&self) -> &'static str {
        match self {
            StackId::Service { .. } => TAG_SERVICE_STACK,
            _ => TAG_INGRESS_STACK,
        }
    }
    /// The key of the per-resource tag.
    pub fn resource_tag_key(&self) -> &'static str {
        match self {
            StackId::Service { .. } => TAG_SERVICE_RESOURCE,
            _ => TAG_INGRESS_RESOURCE,
        }
    }
}

/// Everything one stack should have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    pub id: StackId,
    pub load_balancer: LoadBalancer,
    /// The security group the controller creates and owns for the load
    /// balancer (ALBs, and NLBs unless custom groups are given); `None`
    /// when the user named the groups.
    pub managed_security_group: Option<SecurityGroup>,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LoadBalancerType {
    Network,
    Application,
}

impl LoadBalancerType {
    /// ELBv2's name: `network` or `application`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalancerType::Network => "network",
            LoadBalancerType::Application => "application",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scheme {
    Internal,
    InternetFacing,
}

impl Scheme {
    /// ELBv2's name: `internal` or `internet-facing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Internal => "internal",
            Scheme::InternetFacing => "internet-facing",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IpAddressType {
    Ipv4,
    Dualstack,
    DualstackWithoutPublicIpv4,
    /// Target groups only: IPv6 targets (Services whose ipFamilies
    /// include IPv6, behind a dualstack load balancer).
    Ipv6,
}

impl IpAddressType {
    /// ELBv2's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpAddressType::Ipv4 => "ipv4",
            IpAddressType::Dualstack => "dualstack",
            IpAddressType::DualstackWithoutPublicIpv4 => "dualstack-without-public-ipv4",
            IpAddressType::Ipv6 => "ipv6",
        }
    }
}

/// Where the load balancer's subnets come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subnets {
    /// Discovered by the provider: subnets tagged `kubernetes.io/role/elb`
    /// (internet-facing) or `kubernetes.io/role/internal-elb` (internal)
    /// and, when tagged for clusters, for this one; one per zone.
    Discover,
    /// Subnet IDs (`subnet-...`) or Name tags, as the annotation lists them.
    Named(Vec<String>),
    /// Subnets whose tags match (each key carries one of its values), as
    /// an IngressClassParams' `subnets.tags` selects them; one per zone.
    Tagged(BTreeMap<String, Vec<String>>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// At most 32 characters: `k8s-<ns>-<name>-<hash>` unless named.
    pub name: String,
    pub kind: LoadBalancerType,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    pub subnets: Subnets,
    /// Security groups the user named (IDs or Name tags); empty when the
    /// managed one is used.
    pub security_groups: Vec<String>,
    /// Whether the controller keeps the rules that let the load balancer
    /// reach the targets (node / ENI security groups, through the shared
    /// backend security group). Off only when the user named the
    /// security groups and set `manage-backend-security-group-rules:
    /// "false"`.
    pub manage_backend_security_group_rules: bool,
    /// Elastic IP allocations, one per subnet (NLB, internet-facing).
    pub eip_allocations: Vec<String>,
    /// Private IPv4 addresses, one per subnet (NLB, internal).
    pub private_ipv4_addresses: Vec<String>,
    /// Load balancer attributes to set (only the ones given; others are
    /// left at ELBv2's defaults).
    pub attributes: BTreeMap<String, String>,
    /// Tags, including the ownership tags.
    pub tags: BTreeMap<String, String>,
}

/// A security group the controller owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// `k8s-<ns>-<name>-<hash>` (at most 255 characters; kept short).
    pub name: String,
    pub description: String,
    /// Ingress permissions: every CIDR to every port.
    pub ingress: Vec<SecurityGroupRule>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    /// `tcp`, `udp` or `-1`.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// An IPv4 or IPv6 CIDR.
    pub cidr: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    TcpUdp,
    Tls,
    Http,
    Https,
}

impl Protocol {
    /// ELBv2's name: `TCP`, `UDP`, `TCP_UDP`, `TLS`, `HTTP`, `HTTPS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::TcpUdp => "TCP_UDP",
            Protocol::Tls => "TLS",
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub port: i32,
    pub protocol: Protocol,
    /// Certificate ARNs; the first is the default one.
    pub certificates: Vec<String>,
    /// TLS listeners: the security policy.
    pub ssl_policy: Option<String>,
    /// NLB TLS listeners: `HTTP1Only`, `HTTP2Only`, ...
    pub alpn_policy: Option<String>,
    pub default_action: Action,
    /// ALB rules, in priority order; priorities 1, 2, 3, ... per listener.
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub priority: i32,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// A rule condition, one field each (ELBv2's `Field` plus its config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    HostHeader(Vec<String>),
    PathPattern(Vec<String>),
    HttpHeader { name: String, values: Vec<String> },
    HttpRequestMethod(Vec<String>),
    QueryString(Vec<(Option<String>, String)>),
    SourceIp(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Forward to target groups by the model's resource id (see
    /// [`TargetGroup::resource_id`]) or by ARN, with weights; stickiness
    /// duration in seconds when on.
    Forward {
        target_groups: Vec<WeightedTarget>,
        stickiness_seconds: Option<i32>,
    },
    FixedResponse {
        status_code: String,
        content_type: Option<String>,
        message_body: Option<String>,
    },
    Redirect {
        protocol: Option<String>,
        port: Option<String>,
        host: Option<String>,
        path: Option<String>,
        query: Option<String>,
        status_code: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTarget {
    pub target_group: TargetGroupRef,
    pub weight: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TargetGroupRef {
    /// One of this stack's target groups, by [`TargetGroup::resource_id`].
    Managed(String),
    /// A target group the user gave by ARN.
    Arn(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TargetType {
    Instance,
    Ip,
}

impl TargetType {
    /// ELBv2's name: `instance` or `ip`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// Stable id within the stack, also the value of the resource tag:
    /// `namespace/service:port` (port as the Service names or numbers it).
    pub resource_id: String,
    /// At most 32 characters: `k8s-<ns>-<svc>-<hash>`; the hash covers
    /// what cannot change in place (protocol, port, target type, ...), so a
    /// change makes a new group.
    pub name: String,
    pub protocol: Protocol,
    /// ALB: `HTTP1`, `HTTP2` or `GRPC`.
    pub protocol_version: Option<String>,
    /// The port targets are registered on by default (the target port for
    /// ip, the NodePort for instance).
    pub port: i32,
    pub target_type: TargetType,
    pub ip_address_type: IpAddressType,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Which Service port feeds the group (resolved into targets from
    /// EndpointSlices or Nodes by [`crate::targets`]).
    pub backend: Backend,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub protocol: Protocol,
    /// `traffic-port` or a number.
    pub port: String,
    pub path: Option<String>,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    /// HTTP codes (`200-399`) or, for gRPC, gRPC codes.
    pub matcher: Option<String>,
}

/// The Service port behind a target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    /// The Service port's name, if it has one (EndpointSlice ports are
    /// matched by it).
    pub port_name: Option<String>,
    pub port: i32,
    /// The Service port's targetPort (a number, or a container port name).
    pub target_port: String,
    /// The NodePort (instance targets).
    pub node_port: Option<i32>,
    /// Instance targets: only nodes with these labels.
    pub node_labels: BTreeMap<String, String>,
}

/// One registered target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    /// A pod IP, or an instance ID.
    pub id: String,
    pub port: i32,
}
