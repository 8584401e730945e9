//! The AWS Load Balancer Controller's words, in one place: the finalizers,
//! tags and condition it puts on objects and resources, its Event reasons
//! and the log lines users grep for. Change one of these only to follow
//! upstream. (The annotation names are `outrigger-lb-model`'s, which reads
//! them.)

pub use outrigger_lb_model::model::{
    FINALIZER_GROUP_PREFIX, FINALIZER_INGRESS, FINALIZER_SERVICE, TAG_CLUSTER, TAG_INGRESS_STACK,
    TAG_SERVICE_STACK,
};

/// The condition on Services and TargetGroupBindings.
pub const CONDITION_READY: &str = "LoadBalancerReady";
/// The finalizer on TargetGroupBindings.
pub const FINALIZER_BINDING: &str = "elbv2.k8s.aws/resources";

/// Event reasons.
pub const FAILED_BUILD_MODEL: &str = "FailedBuildModel";
pub const FAILED_DEPLOY_MODEL: &str = "FailedDeployModel";
pub const SUCCESSFULLY_RECONCILED: &str = "SuccessfullyReconciled";
pub const SUCCESSFULLY_DELETED: &str = "SuccessfullyDeleted";

/// Log lines.
pub const DEPLOYED: &str = "successfully deployed model";
