//! The load balancer controller's pure logic: which Services and Ingresses
//! are ours, what AWS Load Balancer Controller annotations mean, the
//! desired [`model::Stack`] for a Service (NLB) or an IngressGroup (ALB),
//! and the targets behind each target group. No I/O: a provider (the AWS
//! one in `outrigger-aws-elb`, a local data plane later) compares the
//! stack with what exists and makes the calls.

pub mod annotations;
pub mod error;
pub mod ingress;
pub mod model;
pub mod naming;
pub mod service;
pub mod targets;

use std::collections::BTreeMap;

pub use error::{GroupError, MemberError, ModelError};
use model::TargetType;

/// The controller's settings (upstream's flags of the same meaning).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `--cluster-name`: hashed into names, and the value of the
    /// `elbv2.k8s.aws/cluster` tag.
    pub cluster_name: String,
    /// `--ingress-class`: the `kubernetes.io/ingress.class` annotation
    /// value that is ours.
    pub ingress_class: String,
    /// `--disable-ingress-class-annotation`: ignore
    /// `kubernetes.io/ingress.class` altogether.
    pub disable_ingress_class_annotation: bool,
    /// `--load-balancer-class`: the `spec.loadBalancerClass` that is ours.
    pub load_balancer_class: String,
    /// `--default-ssl-policy`: TLS/HTTPS listeners without a policy.
    pub default_ssl_policy: String,
    /// `--default-target-type`: Ingress backends and Services of our
    /// class without a target-type annotation.
    pub default_target_type: TargetType,
    /// `--default-tags`: on every resource (they win over annotation
    /// tags).
    pub default_tags: BTreeMap<String, String>,
    /// The most rules one ALB listener may have (ELBv2's default quota).
    pub max_rules_per_listener: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_name: String::new(),
            ingress_class: "alb".to_string(),
            disable_ingress_class_annotation: false,
            load_balancer_class: "service.k8s.aws/nlb".to_string(),
            default_ssl_policy: "ELBSecurityPolicy-2016-08".to_string(),
            default_target_type: TargetType::Instance,
            default_tags: BTreeMap::new(),
            max_rules_per_listener: 100,
        }
    }
}

impl Config {
    /// The defaults for a cluster of this name.
    pub fn for_cluster(name: &str) -> Self {
        Self {
            cluster_name: name.to_string(),
            ..Self::default()
        }
    }
}
