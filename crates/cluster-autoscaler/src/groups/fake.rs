//! Node groups in memory, for tests: groups as given, targets and removed
//! instances recorded.

use std::sync::Mutex;

use async_trait::async_trait;
use outrigger_node_groups::group::NodeGroup;
use outrigger_runtime::sync::LockExt;

use super::{GroupError, NodeGroupProvider};

#[derive(Default)]
pub struct Fake {
    groups: Mutex<Vec<NodeGroup>>,
    /// Every call, in order (`set eks-ng-1 5`, `delete eks-ng-1 aws:///...`).
    calls: Mutex<Vec<String>>,
    /// The reason the next scale-up of a group fails, if it does.
    failure: Mutex<Option<(String, String)>>,
}

impl Fake {
    pub fn new(groups: Vec<NodeGroup>) -> Self {
        Self {
            groups: Mutex::new(groups),
            ..Default::default()
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.locked().clone()
    }

    pub fn fail_scale_up(&self, group: &str, why: &str) {
        *self.failure.locked() = Some((group.to_string(), why.to_string()));
    }
}

#[async_trait]
impl NodeGroupProvider for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn groups(&self) -> Result<Vec<NodeGroup>, GroupError> {
        Ok(self.groups.locked().clone())
    }

    async fn set_target(&self, group: &str, target: i64) -> Result<(), GroupError> {
        self.calls.locked().push(format!("set {group} {target}"));
        let mut gs = self.groups.locked();
        let g = gs
            .iter_mut()
            .find(|g| g.id == group)
            .ok_or_else(|| GroupError::NotFound(group.to_string()))?;
        g.target = target;
        Ok(())
    }

    async fn delete_instance(&self, group: &str, provider_id: &str) -> Result<(), GroupError> {
        self.calls
            .locked()
            .push(format!("delete {group} {provider_id}"));
        let mut gs = self.groups.locked();
        let g = gs
            .iter_mut()
            .find(|g| g.id == group)
            .ok_or_else(|| GroupError::NotFound(group.to_string()))?;
        g.instances.retain(|p| p != provider_id);
        g.target -= 1;
        Ok(())
    }

    async fn scale_up_failure(
        &self,
        group: &str,
        _since: jiff::Timestamp,
    ) -> Result<Option<String>, GroupError> {
        Ok(self
            .failure
            .locked()
            .as_ref()
            .filter(|(g, _)| g == group)
            .map(|(_, w)| w.clone()))
    }
}
