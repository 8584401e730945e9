//! An in-memory cloud for unit tests: the bundled catalogue in three zones,
//! instances kept in a map, and switches to make offerings run out of
//! capacity or calls fail. It serves node classes of kind `FakeNodeClass`.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use kube::ResourceExt;
use outrigger_karpenter_api::v1::{NodeClaim, NodeClassReference};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::model::{InstanceType, Labels};

use super::{CloudError, CloudProvider, Instance, Launched, choose, claim_requirements};

/// The node class kind the fake serves.
pub const KIND: &str = "FakeNodeClass";

#[derive(Default)]
struct State {
    /// By instance ID.
    instances: BTreeMap<String, (Instance, Launched)>,
    /// (instance type, zone, capacity type) without capacity.
    no_capacity: BTreeSet<(String, String, String)>,
    /// Node classes that cannot launch, with why.
    broken_classes: BTreeMap<String, String>,
    /// The next calls of this name fail with an API error.
    fail_next: BTreeMap<&'static str, usize>,
    next_id: u64,
    /// Every call, in order (`create nodeclaim-a`, `delete i-1`...).
    calls: Vec<String>,
    /// Claims whose instance has drifted from its node class, and why.
    drifted: BTreeMap<String, outrigger_disruption::drift::DriftReason>,
}

pub struct Fake {
    types: Arc<Vec<InstanceType>>,
    state: Mutex<State>,
}

impl Default for Fake {
    fn default() -> Self {
        Self::new()
    }
}

impl Fake {
    pub fn new() -> Self {
        let zones: Vec<String> = ["test-1a", "test-1b", "test-1c"]
            .iter()
            .map(|z| z.to_string())
            .collect();
        Self {
            types: Arc::new(super::kwok::catalogue(&zones)),
            state: Mutex::new(State::default()),
        }
    }

    /// A node class reference it serves.
    pub fn class(name: &str) -> NodeClassReference {
        NodeClassReference {
            group: "test.outrigger.dev".into(),
            kind: KIND.into(),
            name: name.into(),
        }
    }

    /// The claim's instance drifts from its node class (`None`: no longer).
    pub fn drift(&self, claim: &str, reason: Option<outrigger_disruption::drift::DriftReason>) {
        let mut s = self.state.locked();
        match reason {
            Some(r) => s.drifted.insert(claim.to_string(), r),
            None => s.drifted.remove(claim),
        };
    }

    /// Offerings of `itype` in `zone` (any zone for `*`) of `capacity_type`
    /// fail for capacity from now on.
    pub fn run_out(&self, itype: &str, zone: &str, capacity_type: &str) {
        let mut s = self.state.locked();
        for t in self.types.iter().filter(|t| t.name == itype) {
            for o in &t.offerings {
                if (zone == "*" || o.zone == zone) && o.capacity_type == capacity_type {
                    s.no_capacity
                        .insert((t.name.clone(), o.zone.clone(), o.capacity_type.clone()));
                }
            }
        }
    }

    /// The node class cannot launch, for this reason.
    pub fn break_class(&self, name: &str, why: &str) {
        self.state
            .locked()
            .broken_classes
            .insert(name.to_string(), why.to_string());
    }

    /// The next `n` calls of `op` (`create`, `delete`, `list`) fail.
    pub fn fail_next(&self, op: &'static str, n: usize) {
        self.state.locked().fail_next.insert(op, n);
    }

    /// An instance disappears outside the provisioner (a reclaimed spot
    /// instance, a console termination).
    pub fn vanish(&self, instance_id: &str) {
        self.state.locked().instances.remove(instance_id);
    }

    /// An instance the provisioner did not record (a launch whose claim
    /// was lost), tagged for `claim`.
    pub fn leak(&self, claim: &str) -> String {
        let mut s = self.state.locked();
        s.next_id += 1;
        let id = format!("i-{:04}", s.next_id);
        let inst = Instance {
            id: id.clone(),
            provider_id: format!("fake:///test-1a/{id}"),
            claim: claim.to_string(),
        };
        let launched = Launched {
            instance_id: id.clone(),
            provider_id: inst.provider_id.clone(),
            node_name: format!("node-{id}"),
            instance_type: "m5.large".into(),
            zone: "test-1a".into(),
            capacity_type: "on-demand".into(),
            capacity: Default::default(),
            allocatable: Default::default(),
            ..Default::default()
        };
        s.instances.insert(id.clone(), (inst, launched));
        id
    }

    /// Live instances' IDs.
    pub fn instance_ids(&self) -> Vec<String> {
        self.state.locked().instances.keys().cloned().collect()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.state.locked().calls.clone()
    }

    fn failing(&self, op: &'static str) -> Result<(), CloudError> {
        let mut s = self.state.locked();
        if let Some(n) = s.fail_next.get_mut(op)
            && *n > 0
        {
            *n -= 1;
            return Err(CloudError::Api(format!("fake: {op} failed")));
        }
        Ok(())
    }
}

#[async_trait]
impl CloudProvider for Fake {
    async fn drifted(
        &self,
        claim: &NodeClaim,
    ) -> Result<Option<outrigger_disruption::drift::DriftReason>, CloudError> {
        Ok(self.state.locked().drifted.get(&claim.name_any()).copied())
    }

    fn name(&self) -> &'static str {
        "fake"
    }

    fn serves(&self, class: &NodeClassReference) -> bool {
        class.kind == KIND
    }

    fn class_problem(&self, class: &NodeClassReference) -> Option<String> {
        self.state.locked().broken_classes.get(&class.name).cloned()
    }

    fn instance_types(&self) -> Arc<Vec<InstanceType>> {
        self.types.clone()
    }

    async fn create(&self, claim: &NodeClaim, _labels: &Labels) -> Result<Launched, CloudError> {
        let name = claim.name_any();
        self.state.locked().calls.push(format!("create {name}"));
        self.failing("create")?;
        if let Some(why) = self.class_problem(&claim.spec.node_class_ref) {
            return Err(CloudError::NodeClassNotReady(why));
        }
        // Launched before (a restart between the launch and its status).
        if let Some((_, l)) = self
            .state
            .locked()
            .instances
            .values()
            .find(|(i, _)| i.claim == name)
        {
            return Ok(l.clone());
        }
        // The cheapest offering with capacity.
        let mut types: Vec<InstanceType> = self.types.as_ref().clone();
        {
            let s = self.state.locked();
            for t in &mut types {
                for o in &mut t.offerings {
                    if s.no_capacity.contains(&(
                        t.name.clone(),
                        o.zone.clone(),
                        o.capacity_type.clone(),
                    )) {
                        o.available = false;
                    }
                }
            }
        }
        let (t, offer) = choose(&types, &claim_requirements(claim)).ok_or_else(|| {
            CloudError::InsufficientCapacity(format!(
                "no instance type of {name} has an available offering the claim allows"
            ))
        })?;
        let it = &types[t];
        let mut s = self.state.locked();
        s.next_id += 1;
        let id = format!("i-{:04}", s.next_id);
        let provider_id = format!("fake:///{}/{id}", offer.zone);
        let launched = Launched {
            instance_id: id.clone(),
            provider_id: provider_id.clone(),
            node_name: format!("node-{id}"),
            instance_type: it.name.clone(),
            zone: offer.zone,
            capacity_type: offer.capacity_type,
            capacity: it.capacity.clone(),
            allocatable: it.allocatable(),
            image_id: Some("fake-image-1".into()),
            annotations: [("fake.outrigger.dev/instance".to_string(), id.clone())].into(),
        };
        let inst = Instance {
            id: id.clone(),
            provider_id,
            claim: name,
        };
        s.instances.insert(id, (inst, launched.clone()));
        Ok(launched)
    }

    async fn delete(&self, claim: &NodeClaim) -> Result<(), CloudError> {
        let pid = claim.status.as_ref().and_then(|s| s.provider_id.clone());
        self.state
            .locked()
            .calls
            .push(format!("delete {}", pid.clone().unwrap_or_default()));
        self.failing("delete")?;
        let mut s = self.state.locked();
        let id = s
            .instances
            .iter()
            .find(|(_, (i, _))| Some(&i.provider_id) == pid.as_ref())
            .map(|(id, _)| id.clone());
        match id {
            Some(id) => {
                s.instances.remove(&id);
                Ok(())
            }
            None => Err(CloudError::NotFound(format!(
                "instance of nodeclaim {}",
                claim.name_any()
            ))),
        }
    }

    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.state
            .locked()
            .instances
            .values()
            .find(|(i, _)| i.provider_id == provider_id)
            .map(|(i, _)| i.clone())
            .ok_or_else(|| CloudError::NotFound(provider_id.to_string()))
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.state.locked().calls.push("list".into());
        self.failing("list")?;
        Ok(self
            .state
            .locked()
            .instances
            .values()
            .map(|(i, _)| i.clone())
            .collect())
    }
}
