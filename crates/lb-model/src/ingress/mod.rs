//! Ingresses of class `alb` -> IngressGroups -> one ALB stack per group,
//! with the AWS Load Balancer Controller's Ingress annotations
//! (`alb.ingress.kubernetes.io/*`, on the Ingress or, for backend
//! settings, on the Service, which wins), IngressClassParams (whose fields
//! win over the matching annotations) and its rule translation.
//!
//! [`groups`] decides which Ingresses are ours and how they group;
//! [`build`] turns a group into a [`Stack`](crate::model::Stack), or into
//! a [`GroupError`](crate::GroupError) naming what is wrong on each member.
//!
//! Not modelled: authentication actions (`auth-*`), certificate discovery
//! from ACM (an HTTPS listener without certificate-arn gets no
//! certificates here; the provider must find them from the hosts), WAF,
//! Shield, mutual TLS, transforms and the frontend NLB.

mod actions;
mod class;
mod group;
mod rules;
mod settings;
mod stack;
mod target_group;

pub use class::selects;
pub use group::{groups, is_valid_group_name};
pub use rules::path_patterns;
pub use stack::build;

use k8s_openapi::api::networking::v1::Ingress;
use outrigger_lb_api::v1beta1::IngressClassParams;

use crate::ModelError;
use crate::annotations::Annotations;
use crate::model::{FINALIZER_GROUP_PREFIX, FINALIZER_INGRESS, StackId};

/// The IngressClass controller that is ours.
pub const CONTROLLER: &str = "ingress.k8s.aws/alb";
/// The deprecated class annotation.
pub const ANNOTATION_CLASS: &str = "kubernetes.io/ingress.class";
/// The backend port name that takes the action from `actions.<service>`.
pub const USE_ANNOTATION: &str = "use-annotation";
/// group.order bounds.
pub const MIN_GROUP_ORDER: i64 = -1000;
pub const MAX_GROUP_ORDER: i64 = 1000;

/// An Ingress of a group, with what its class says.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub ingress: Ingress,
    /// The IngressClassParams of its IngressClass, if any.
    pub params: Option<IngressClassParams>,
    /// `group.order` (0 unless given).
    pub order: i64,
    /// What was wrong when the group was loaded (an IngressClassParams
    /// that is missing or does not select the namespace, an invalid group
    /// name or order); [`build`] reports it on the member.
    pub problem: Option<ModelError>,
}

impl Member {
    pub fn namespace(&self) -> &str {
        self.ingress
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }
    pub fn name(&self) -> &str {
        self.ingress.metadata.name.as_deref().unwrap_or_default()
    }
    fn annotations(&self) -> &Annotations {
        static EMPTY: Annotations = Annotations::new();
        self.ingress.metadata.annotations.as_ref().unwrap_or(&EMPTY)
    }
    fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

/// An IngressGroup: an explicit group (`group.name`) or one Ingress.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: StackId,
    /// The active members, in `group.order`, then `namespace/name`.
    pub members: Vec<Member>,
    /// Ingresses that are being deleted, or that left the group but still
    /// carry its finalizer: their rules are gone from the stack, and the
    /// controller removes their finalizer once the stack is deployed.
    pub inactive_members: Vec<Ingress>,
}

impl Group {
    /// The finalizer members carry.
    pub fn finalizer(&self) -> String {
        finalizer(&self.id)
    }
}

/// `ingress.k8s.aws/resources` for an Ingress without a group,
/// `group.ingress.k8s.aws/<name>` for an explicit group.
pub fn finalizer(id: &StackId) -> String {
    match id {
        StackId::IngressGroup { name } => format!("{FINALIZER_GROUP_PREFIX}{name}"),
        _ => FINALIZER_INGRESS.to_string(),
    }
}
