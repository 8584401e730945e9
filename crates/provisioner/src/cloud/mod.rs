//! The cloud-provider seam: everything the provisioner asks of a cloud, as
//! Karpenter's `cloudprovider.CloudProvider` does — create, delete, get and
//! list instances, the instance types a node class may launch, and whether
//! a node class can launch at all — with typed errors.
//!
//! Implementations: [`kwok`] (kwok-managed Node objects, for clusters
//! without a cloud), [`aws`] (EC2 through `outrigger-aws-ec2`), and
//! [`fake`] (in memory, for unit tests of the lifecycle and status). A
//! pool's node class picks its provider ([`Providers::for_class`]); a new
//! cloud is one more implementation and one line in `lib.rs`.

pub mod aws;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod kwok;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use async_trait::async_trait;
use outrigger_karpenter_api::v1::{NodeClaim, NodeClassReference};
use outrigger_runtime::ErrorKind;
use outrigger_scheduling::{
    model::{InstanceType, LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_ZONE, Labels, Offering},
    requirements::Requirements,
    resources::Resources,
};

/// An instance a provider launched for a claim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Launched {
    pub instance_id: String,
    pub provider_id: String,
    pub node_name: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
    pub capacity: Resources,
    pub allocatable: Resources,
    /// The image it runs (the claim's `status.imageID`).
    pub image_id: Option<String>,
    /// What the claim is stamped with (the node class's hash).
    pub annotations: BTreeMap<String, String>,
}

/// An instance as a provider lists it (for garbage collection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// What the provider calls it (an EC2 instance ID, a kwok node name).
    pub id: String,
    pub provider_id: String,
    /// The claim it was launched for (its `karpenter.sh/nodeclaim` tag).
    pub claim: String,
}

/// What can go wrong in a cloud call. The kind is the metric label and
/// the Event reason.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// No offering the claim allows could be launched now.
    #[error("{0}")]
    InsufficientCapacity(String),
    /// The instance is not there (terminated, never made).
    #[error("{0} not found")]
    NotFound(String),
    /// The claim's node class cannot launch (missing, not served, its
    /// provider not enabled).
    #[error("{0}")]
    NodeClassNotReady(String),
    /// Anything else the cloud or the API server answered.
    #[error("{0}")]
    Api(String),
}

impl ErrorKind for CloudError {
    fn kind(&self) -> &'static str {
        match self {
            CloudError::InsufficientCapacity(_) => "InsufficientCapacity",
            CloudError::NotFound(_) => "NotFound",
            CloudError::NodeClassNotReady(_) => "NodeClassNotReady",
            CloudError::Api(_) => "CloudProviderError",
        }
    }
}

impl From<kube::Error> for CloudError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(a) if a.code == 404 => CloudError::NotFound(a.message),
            e => CloudError::Api(format!("kubernetes: {e}")),
        }
    }
}

/// A cloud the provisioner launches nodes in.
#[async_trait]
pub trait CloudProvider: Send + Sync {
    /// `kwok`, `aws`, `fake`.
    fn name(&self) -> &'static str;
    /// Whether claims of this node class are this provider's.
    fn serves(&self, class: &NodeClassReference) -> bool;
    /// Why a pool of this node class cannot launch now, if it cannot.
    fn class_problem(&self, class: &NodeClassReference) -> Option<String>;
    /// The instance types it may launch, with offerings and prices.
    fn instance_types(&self) -> Arc<Vec<InstanceType>>;
    /// Launches the claim's instance (the cheapest offering it allows);
    /// a claim launched before (a restart) finds its instance instead.
    async fn create(&self, claim: &NodeClaim, labels: &Labels) -> Result<Launched, CloudError>;
    /// Terminates the claim's instance; [`CloudError::NotFound`] if it is
    /// gone already.
    async fn delete(&self, claim: &NodeClaim) -> Result<(), CloudError>;
    /// The live instance with this provider ID.
    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError>;
    /// Every live instance it launched for this cluster.
    async fn list(&self) -> Result<Vec<Instance>, CloudError>;
    /// Refreshes what it caches (the catalogue); called periodically.
    async fn refresh(&self) {}
    /// Whether the claim's instance no longer matches what its node class
    /// resolves to now (Karpenter's `CloudProvider.IsDrifted`); providers
    /// with nothing to compare never drift.
    async fn drifted(
        &self,
        _claim: &NodeClaim,
    ) -> Result<Option<outrigger_disruption::drift::DriftReason>, CloudError> {
        Ok(None)
    }
}

/// The enabled providers, and which serves which node class.
#[derive(Clone, Default)]
pub struct Providers(Vec<Arc<dyn CloudProvider>>);

impl Providers {
    pub fn new(list: Vec<Arc<dyn CloudProvider>>) -> Self {
        Self(list)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn CloudProvider>> {
        self.0.iter()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.name()).collect()
    }

    /// The provider of a node class.
    pub fn for_class(&self, class: &NodeClassReference) -> Option<&Arc<dyn CloudProvider>> {
        self.0.iter().find(|p| p.serves(class))
    }

    /// Why a pool of this node class cannot launch now, if it cannot.
    pub fn class_problem(&self, class: &NodeClassReference) -> Option<String> {
        match self.for_class(class) {
            None => Some(format!(
                "no enabled provider serves node class kind {} (--providers: {})",
                class.kind,
                self.names().join(",")
            )),
            Some(p) => p.class_problem(class),
        }
    }

    /// Every provider's instance types in one list, and for each provider
    /// (by position) the indices of its types in it.
    pub fn catalogue(&self) -> Catalogue {
        let mut types = vec![];
        let mut by_provider = vec![];
        for p in &self.0 {
            let mine = p.instance_types();
            let start = types.len();
            types.extend(mine.iter().cloned());
            by_provider.push((start..types.len()).collect());
        }
        Catalogue {
            types,
            by_provider,
            providers: self.clone(),
        }
    }
}

/// Every provider's instance types, and which are whose.
#[derive(Clone, Default)]
pub struct Catalogue {
    pub types: Vec<InstanceType>,
    by_provider: Vec<BTreeSet<usize>>,
    providers: Providers,
}

impl Catalogue {
    /// Indices (into `types`) of the types a node class's provider has.
    pub fn indices(&self, class: &NodeClassReference) -> BTreeSet<usize> {
        self.providers
            .0
            .iter()
            .position(|p| p.serves(class))
            .and_then(|i| self.by_provider.get(i).cloned())
            .unwrap_or_default()
    }

    /// The types a node class's provider has.
    pub fn of_class<'a>(
        &'a self,
        class: &NodeClassReference,
    ) -> impl Iterator<Item = &'a InstanceType> + 'a {
        self.indices(class).into_iter().map(|i| &self.types[i])
    }
}

/// The cheapest available offering a claim's requirements allow, among
/// `types`: (type index, offering).
pub fn choose(types: &[InstanceType], req: &Requirements) -> Option<(usize, Offering)> {
    let allowed = |k: &str, v: &str| req.get(k).is_none_or(|r| r.allows(Some(v)));
    let mut best: Option<(usize, Offering)> = None;
    for (i, t) in types.iter().enumerate() {
        if !allowed(LABEL_INSTANCE_TYPE, &t.name) {
            continue;
        }
        for o in &t.offerings {
            if o.available
                && allowed(LABEL_ZONE, &o.zone)
                && allowed(LABEL_CAPACITY_TYPE, &o.capacity_type)
                && best.as_ref().is_none_or(|(_, b)| o.price < b.price)
            {
                best = Some((i, o.clone()));
            }
        }
    }
    best
}

/// The claim's requirements in the solver's algebra.
pub fn claim_requirements(claim: &NodeClaim) -> Requirements {
    outrigger_karpenter_api::convert::nodeclaim_requirements(claim)
}

/// The claim's taints and startup taints as the kubelet's
/// `--register-with-taints` writes them (`key=value:Effect`).
pub fn claim_taints(claim: &NodeClaim) -> Vec<String> {
    claim
        .spec
        .taints
        .iter()
        .chain(&claim.spec.startup_taints)
        .map(|t| {
            format!(
                "{}={}:{}",
                t.key,
                t.value.clone().unwrap_or_default(),
                t.effect
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{fake::Fake, *};

    fn class(kind: &str) -> NodeClassReference {
        NodeClassReference {
            group: "g".into(),
            kind: kind.into(),
            name: "default".into(),
        }
    }

    #[test]
    fn a_node_class_is_served_by_its_provider_or_says_none_is_enabled() {
        let providers = Providers::new(vec![Arc::new(Fake::new())]);
        assert!(providers.for_class(&class("FakeNodeClass")).is_some());
        assert!(providers.class_problem(&class("FakeNodeClass")).is_none());
        let why = providers.class_problem(&class("EC2NodeClass")).unwrap();
        assert!(
            why.contains("EC2NodeClass") && why.contains("fake"),
            "{why}"
        );
        let cat = providers.catalogue();
        assert_eq!(cat.indices(&class("FakeNodeClass")).len(), cat.types.len());
        assert!(cat.indices(&class("EC2NodeClass")).is_empty());
    }
}
