//! The node-group seam: what the autoscaler asks of a cloud's groups —
//! list them (with min, max, target, instances, and a template for a group
//! at zero), set a group's target, take one instance out of its group, and
//! whether a group's recent scale-up failed. Implementations: [`aws`]
//! (Auto Scaling groups), [`kwok`] (groups of kwok nodes declared in a
//! ConfigMap, for clusters without a cloud), [`fake`] (in memory, tests).

pub mod aws;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod kwok;

use async_trait::async_trait;
use outrigger_node_groups::group::NodeGroup;
use outrigger_runtime::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("{0}")]
    Cloud(String),
    #[error("node group {0} not found")]
    NotFound(String),
    #[error("node group {group}: {message}")]
    Invalid { group: String, message: String },
}

impl ErrorKind for GroupError {
    fn kind(&self) -> &'static str {
        match self {
            GroupError::Cloud(_) => "CloudProviderError",
            GroupError::NotFound(_) => "NotFound",
            GroupError::Invalid { .. } => "InvalidNodeGroup",
        }
    }
}

#[async_trait]
pub trait NodeGroupProvider: Send + Sync {
    /// `aws`, `kwok`, `fake`.
    fn name(&self) -> &'static str;
    /// The node groups now. A group's template is the one for a group at
    /// zero (the caller prefers one of its ready nodes when it has one);
    /// groups whose template cannot be made are listed without one, with
    /// the reason logged.
    async fn groups(&self) -> Result<Vec<NodeGroup>, GroupError>;
    /// Asks for `target` nodes in the group.
    async fn set_target(&self, group: &str, target: i64) -> Result<(), GroupError>;
    /// Takes the instance (by provider ID) out of its group, the group's
    /// target one smaller.
    async fn delete_instance(&self, group: &str, provider_id: &str) -> Result<(), GroupError>;
    /// The reason a scale-up of the group since `since` failed, if the
    /// cloud says one did (AWS reports insufficient capacity only in
    /// scaling activities).
    async fn scale_up_failure(
        &self,
        _group: &str,
        _since: jiff::Timestamp,
    ) -> Result<Option<String>, GroupError> {
        Ok(None)
    }
}
