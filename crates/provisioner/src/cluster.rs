//! The provisioner's writes to the cluster, behind one trait: every create,
//! patch, delete, eviction and Event its controllers make. [`Kube`] makes
//! them against the API server; the unit tests use an in-memory cluster
//! (`memory.rs`) that applies them to watched stores, so the lifecycle,
//! garbage collection and status run in `cargo test` without a cluster.
//! Reads come from the watched stores (`Ctx`), never from here, except the
//! one fresh read conditions need.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{EvictParams, Patch, PatchParams, PostParams},
    runtime::events::EventType,
};
use outrigger_karpenter_api::{
    nodeclass::{EC2NodeClass, KWOKNodeClass},
    v1::{NodeClaim, NodePool},
    v1alpha5::Provisioner,
};
use outrigger_runtime::events::Events;
use serde_json::Value;

/// What an eviction request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// The pod is being deleted.
    Evicted,
    /// A PodDisruptionBudget says not now (429).
    Blocked,
    /// The pod is gone already.
    Gone,
}

/// Kinds whose status the provisioner writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusOf {
    NodePool,
    Provisioner,
    EC2NodeClass,
    KWOKNodeClass,
}

#[async_trait]
pub trait Cluster: Send + Sync {
    /// The claim as the API server has it now (conditions are merged into
    /// the freshest copy, so one set a moment ago is not lost).
    async fn get_claim(&self, name: &str) -> Result<Option<NodeClaim>, kube::Error>;
    async fn create_claim(&self, claim: &NodeClaim) -> Result<NodeClaim, kube::Error>;
    /// A merge patch of the claim's metadata or spec.
    async fn patch_claim(&self, name: &str, patch: Value) -> Result<(), kube::Error>;
    /// A merge patch of the claim's status subresource.
    async fn patch_claim_status(&self, name: &str, patch: Value) -> Result<(), kube::Error>;
    /// A merge patch of a NodePool's metadata (its hash annotations).
    async fn patch_nodepool(&self, name: &str, patch: Value) -> Result<(), kube::Error>;
    /// A merge patch of an EC2NodeClass (its hash annotations).
    async fn patch_ec2nodeclass(&self, name: &str, patch: Value) -> Result<(), kube::Error>;
    /// Deletes the claim (gone already is fine); with finalizers it is
    /// marked for deletion.
    async fn delete_claim(&self, name: &str) -> Result<(), kube::Error>;
    /// Adds or removes a finalizer, guarded by the resourceVersion read.
    async fn add_finalizer(&self, claim: &NodeClaim, finalizer: &str) -> Result<(), kube::Error>;
    async fn remove_finalizer(&self, claim: &NodeClaim, finalizer: &str)
    -> Result<(), kube::Error>;
    /// A merge patch of a Node (gone is fine).
    async fn patch_node(&self, name: &str, patch: Value) -> Result<(), kube::Error>;
    /// Asks the Eviction API to evict the pod (PDBs decide).
    async fn evict(&self, pod: &Pod) -> Result<Eviction, kube::Error>;
    /// Deletes a pod with this grace period, PDBs and all (a node's
    /// `terminationGracePeriod` running out); gone already is fine.
    async fn delete_pod(&self, pod: &Pod, grace_seconds: i64) -> Result<(), kube::Error>;
    /// A merge patch of an object's status (pools and node classes).
    async fn patch_status(
        &self,
        kind: StatusOf,
        name: &str,
        patch: Value,
    ) -> Result<(), kube::Error>;
    /// Publishes an Event (failures are logged, never returned).
    async fn event(
        &self,
        on: ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    );
    /// Opens connections for the writes that follow (the batch window).
    async fn warm(&self) {}
}

/// An Event's reference to an object of any kind.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    obj.object_ref(&())
}

/// The API server.
pub struct Kube {
    client: Client,
    events: Events,
}

impl Kube {
    pub fn new(client: Client, events: Events) -> Self {
        Self { client, events }
    }

    fn claims(&self) -> Api<NodeClaim> {
        Api::all(self.client.clone())
    }
}

fn gone_is_fine(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other,
    }
}

#[async_trait]
impl Cluster for Kube {
    async fn get_claim(&self, name: &str) -> Result<Option<NodeClaim>, kube::Error> {
        self.claims().get_opt(name).await
    }

    async fn create_claim(&self, claim: &NodeClaim) -> Result<NodeClaim, kube::Error> {
        self.claims().create(&PostParams::default(), claim).await
    }

    async fn patch_claim(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        self.claims()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
    }

    async fn patch_nodepool(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        Api::<NodePool>::all(self.client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
    }

    async fn patch_ec2nodeclass(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        Api::<EC2NodeClass>::all(self.client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
    }

    async fn patch_claim_status(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        self.claims()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
    }

    async fn delete_claim(&self, name: &str) -> Result<(), kube::Error> {
        gone_is_fine(
            self.claims()
                .delete(name, &Default::default())
                .await
                .map(|_| ()),
        )
    }

    async fn add_finalizer(&self, claim: &NodeClaim, finalizer: &str) -> Result<(), kube::Error> {
        outrigger_runtime::finalizer::add(&self.claims(), claim, finalizer)
            .await
            .map(|_| ())
    }

    async fn remove_finalizer(
        &self,
        claim: &NodeClaim,
        finalizer: &str,
    ) -> Result<(), kube::Error> {
        outrigger_runtime::finalizer::remove(&self.claims(), claim, finalizer)
            .await
            .map(|_| ())
    }

    async fn patch_node(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        gone_is_fine(
            nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ()),
        )
    }

    async fn evict(&self, pod: &Pod) -> Result<Eviction, kube::Error> {
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        match api.evict(&pod.name_any(), &EvictParams::default()).await {
            Ok(_) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(e)) if e.code == 429 => Ok(Eviction::Blocked),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(Eviction::Gone),
            Err(e) => Err(e),
        }
    }

    async fn delete_pod(&self, pod: &Pod, grace_seconds: i64) -> Result<(), kube::Error> {
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let dp = kube::api::DeleteParams {
            grace_period_seconds: Some(grace_seconds.max(1) as u32),
            ..Default::default()
        };
        match api.delete(&pod.name_any(), &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn patch_status(
        &self,
        kind: StatusOf,
        name: &str,
        patch: Value,
    ) -> Result<(), kube::Error> {
        let pp = PatchParams::default();
        let p = Patch::Merge(patch);
        let c = self.client.clone();
        match kind {
            StatusOf::NodePool => Api::<NodePool>::all(c)
                .patch_status(name, &pp, &p)
                .await
                .map(|_| ()),
            StatusOf::Provisioner => Api::<Provisioner>::all(c)
                .patch_status(name, &pp, &p)
                .await
                .map(|_| ()),
            StatusOf::EC2NodeClass => Api::<EC2NodeClass>::all(c)
                .patch_status(name, &pp, &p)
                .await
                .map(|_| ()),
            StatusOf::KWOKNodeClass => Api::<KWOKNodeClass>::all(c)
                .patch_status(name, &pp, &p)
                .await
                .map(|_| ()),
        }
    }

    async fn event(
        &self,
        on: ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let t = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.events.publish(on, t, reason, action, note).await;
    }

    /// Up to `CREATE_CONCURRENCY` cheap requests at once (a one-item list
    /// served from the watch cache): the client keeps the connections idle
    /// for the creates that follow (HTTP/1.1: one request per connection
    /// at a time, a TLS handshake each when cold).
    async fn warm(&self) {
        let lp = kube::api::ListParams::default().limit(1).match_any();
        let api = self.claims();
        let results = futures::future::join_all(
            (0..crate::provision::CREATE_CONCURRENCY).map(|_| api.list_metadata(&lp)),
        )
        .await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            tracing::debug!(error = %e, "warming the API connections");
        }
    }
}
