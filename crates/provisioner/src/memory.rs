//! An in-memory cluster for unit tests: the provisioner's writes
//! ([`Cluster`]) applied to the watched stores its controllers read, with
//! the API server's rules that matter to them — merge patches, a
//! resourceVersion bumped on every write and checked on finalizer patches
//! (409 on a stale one), deletion held by finalizers (a deletionTimestamp
//! until the last one goes), evictions refused for pods a test marks as
//! protected by a PodDisruptionBudget. Not a fake API server: nothing
//! listens; the controllers' code runs unchanged against it.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use async_trait::async_trait;
use k8s_openapi::api::{
    core::v1::{Node, ObjectReference, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Resource, ResourceExt,
    core::Status,
    runtime::{
        reflector::{self, Store, store::Writer},
        watcher,
    },
};
use outrigger_karpenter_api::{
    nodeclass::{EC2NodeClass, KWOKNodeClass},
    v1::{NodeClaim, NodePool},
    v1alpha5::Provisioner,
};
use outrigger_runtime::sync::LockExt;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::cluster::{Cluster, Eviction, StatusOf};

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn api_error(code: u16, reason: &str, message: String) -> kube::Error {
    kube::Error::Api(Status::failure(&message, reason).with_code(code).boxed())
}

/// One kind's objects by name, and the writer of its store.
struct Kind<K: Resource<DynamicType = ()> + Clone + 'static> {
    objects: BTreeMap<String, K>,
    writer: Writer<K>,
}

impl<K> Kind<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug
        + 'static,
{
    fn new() -> (Self, Store<K>) {
        let (reader, writer) = reflector::store();
        (
            Self {
                objects: BTreeMap::new(),
                writer,
            },
            reader,
        )
    }

    fn put(&mut self, mut obj: K, rv: u64) {
        obj.meta_mut().resource_version = Some(rv.to_string());
        self.writer
            .apply_watcher_event(&watcher::Event::Apply(obj.clone()));
        self.objects.insert(obj.name_any(), obj);
    }

    fn remove(&mut self, name: &str) {
        if let Some(o) = self.objects.remove(name) {
            self.writer.apply_watcher_event(&watcher::Event::Delete(o));
        }
    }

    fn patch(&mut self, name: &str, patch: &Value, rv: u64) -> Result<K, kube::Error> {
        let obj = self
            .objects
            .get(name)
            .ok_or_else(|| api_error(404, "NotFound", format!("{name} not found")))?;
        let mut v = serde_json::to_value(obj).map_err(kube::Error::SerdeError)?;
        merge(&mut v, patch);
        let mut out: K = serde_json::from_value(v).map_err(kube::Error::SerdeError)?;
        // Deleted and without finalizers: gone.
        if out.meta().deletion_timestamp.is_some()
            && out.meta().finalizers.as_ref().is_none_or(|f| f.is_empty())
        {
            self.remove(name);
            return Ok(out);
        }
        out.meta_mut().resource_version = Some(rv.to_string());
        self.put(out.clone(), rv);
        Ok(out)
    }
}

struct State {
    rv: u64,
    claims: Kind<NodeClaim>,
    nodes: Kind<Node>,
    pods: Kind<Pod>,
    nodepools: Kind<NodePool>,
    provisioners: Kind<Provisioner>,
    ec2nodeclasses: Kind<EC2NodeClass>,
    kwoknodeclasses: Kind<KWOKNodeClass>,
    pdbs: Kind<PodDisruptionBudget>,
    /// Pods whose eviction a PodDisruptionBudget refuses (namespace/name).
    protected: BTreeSet<String>,
    /// (warning, reason, note), in order.
    events: Vec<(bool, String, String)>,
    /// Pods deleted (not evicted), with their grace period.
    deleted_pods: Vec<(String, i64)>,
}

/// The stores the controllers read.
#[derive(Clone)]
pub struct Stores {
    pub claims: Store<NodeClaim>,
    pub nodes: Store<Node>,
    pub pods: Store<Pod>,
    pub nodepools: Store<NodePool>,
    pub provisioners: Store<Provisioner>,
    pub ec2nodeclasses: Store<EC2NodeClass>,
    pub kwoknodeclasses: Store<KWOKNodeClass>,
    pub pdbs: Store<PodDisruptionBudget>,
}

pub struct Memory {
    state: Mutex<State>,
}

impl Memory {
    pub fn new() -> (Self, Stores) {
        let (claims, c) = Kind::new();
        let (nodes, n) = Kind::new();
        let (pods, p) = Kind::new();
        let (nodepools, np) = Kind::new();
        let (provisioners, pr) = Kind::new();
        let (ec2nodeclasses, e) = Kind::new();
        let (kwoknodeclasses, k) = Kind::new();
        let (pdbs, pd) = Kind::new();
        (
            Self {
                state: Mutex::new(State {
                    rv: 1,
                    claims,
                    nodes,
                    pods,
                    nodepools,
                    provisioners,
                    ec2nodeclasses,
                    kwoknodeclasses,
                    pdbs,
                    protected: BTreeSet::new(),
                    events: vec![],
                    deleted_pods: vec![],
                }),
            },
            Stores {
                claims: c,
                nodes: n,
                pods: p,
                nodepools: np,
                provisioners: pr,
                ec2nodeclasses: e,
                kwoknodeclasses: k,
                pdbs: pd,
            },
        )
    }

    fn next(s: &mut State) -> u64 {
        s.rv += 1;
        s.rv
    }

    pub fn put_node(&self, n: Node) {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.nodes.put(n, rv);
    }

    pub fn put_pod(&self, p: Pod) {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.pods.put(p, rv);
    }

    pub fn remove_pod(&self, namespace: &str, name: &str) {
        let mut s = self.state.locked();
        let key = s
            .pods
            .objects
            .iter()
            .find(|(_, p)| p.namespace().as_deref() == Some(namespace) && p.name_any() == name)
            .map(|(k, _)| k.clone());
        if let Some(k) = key {
            s.pods.remove(&k);
        }
    }

    pub fn put_pdb(&self, p: PodDisruptionBudget) {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.pdbs.put(p, rv);
    }

    pub fn put_nodepool(&self, p: NodePool) {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.nodepools.put(p, rv);
    }

    pub fn put_provisioner(&self, p: Provisioner) {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.provisioners.put(p, rv);
    }

    pub fn put_claim(&self, c: NodeClaim) {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.claims.put(c, rv);
    }

    pub fn claim(&self, name: &str) -> Option<NodeClaim> {
        self.state.locked().claims.objects.get(name).cloned()
    }

    pub fn node(&self, name: &str) -> Option<Node> {
        self.state.locked().nodes.objects.get(name).cloned()
    }

    pub fn nodepool(&self, name: &str) -> Option<NodePool> {
        self.state.locked().nodepools.objects.get(name).cloned()
    }

    /// A PodDisruptionBudget refuses this pod's eviction (or no longer).
    pub fn protect(&self, namespace: &str, name: &str, on: bool) {
        let key = format!("{namespace}/{name}");
        let mut s = self.state.locked();
        if on {
            s.protected.insert(key);
        } else {
            s.protected.remove(&key);
        }
    }

    /// Pods deleted (not evicted) so far: (name, grace seconds).
    pub fn deleted_pods(&self) -> Vec<(String, i64)> {
        self.state.locked().deleted_pods.clone()
    }

    /// The Events so far: (warning, reason, note).
    pub fn events(&self) -> Vec<(bool, String, String)> {
        self.state.locked().events.clone()
    }
}

#[async_trait]
impl Cluster for Memory {
    async fn get_claim(&self, name: &str) -> Result<Option<NodeClaim>, kube::Error> {
        Ok(self.claim(name))
    }

    async fn create_claim(&self, claim: &NodeClaim) -> Result<NodeClaim, kube::Error> {
        let mut s = self.state.locked();
        let name = claim.name_any();
        if s.claims.objects.contains_key(&name) {
            return Err(api_error(409, "AlreadyExists", format!("{name} exists")));
        }
        let rv = Self::next(&mut s);
        let mut c = claim.clone();
        c.metadata.uid = Some(format!("uid-{name}"));
        c.metadata.generation = Some(1);
        c.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        s.claims.put(c.clone(), rv);
        Ok(c)
    }

    async fn patch_claim(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.claims.patch(name, &patch, rv).map(|_| ())
    }

    async fn patch_nodepool(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.nodepools.patch(name, &patch, rv).map(|_| ())
    }

    async fn patch_ec2nodeclass(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        s.ec2nodeclasses.patch(name, &patch, rv).map(|_| ())
    }

    async fn patch_claim_status(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        // The status subresource: only `status` is taken.
        let status =
            serde_json::json!({ "status": patch.get("status").cloned().unwrap_or(Value::Null) });
        self.patch_claim(name, status).await
    }

    async fn delete_claim(&self, name: &str) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let Some(c) = s.claims.objects.get(name).cloned() else {
            return Ok(());
        };
        if c.finalizers().is_empty() {
            s.claims.remove(name);
        } else if c.metadata.deletion_timestamp.is_none() {
            let rv = Self::next(&mut s);
            let now = jiff::Timestamp::now().to_string();
            s.claims.patch(
                name,
                &serde_json::json!({"metadata": {"deletionTimestamp": now}}),
                rv,
            )?;
        }
        Ok(())
    }

    async fn add_finalizer(&self, claim: &NodeClaim, finalizer: &str) -> Result<(), kube::Error> {
        let Some(list) = outrigger_runtime::finalizer::with(claim, finalizer) else {
            return Ok(());
        };
        self.guarded(claim, list)
    }

    async fn remove_finalizer(
        &self,
        claim: &NodeClaim,
        finalizer: &str,
    ) -> Result<(), kube::Error> {
        let Some(list) = outrigger_runtime::finalizer::without(claim, finalizer) else {
            return Ok(());
        };
        match self.guarded(claim, list) {
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            r => r,
        }
    }

    async fn patch_node(&self, name: &str, patch: Value) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        match s.nodes.patch(name, &patch, rv) {
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            r => r.map(|_| ()),
        }
    }

    async fn evict(&self, pod: &Pod) -> Result<Eviction, kube::Error> {
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        if self
            .state
            .locked()
            .protected
            .contains(&format!("{ns}/{name}"))
        {
            return Ok(Eviction::Blocked);
        }
        let exists = self
            .state
            .locked()
            .pods
            .objects
            .values()
            .any(|p| p.namespace().as_deref() == Some(ns.as_str()) && p.name_any() == name);
        if !exists {
            return Ok(Eviction::Gone);
        }
        self.remove_pod(&ns, &name);
        Ok(Eviction::Evicted)
    }

    async fn delete_pod(&self, pod: &Pod, grace_seconds: i64) -> Result<(), kube::Error> {
        self.state
            .locked()
            .deleted_pods
            .push((pod.name_any(), grace_seconds));
        self.remove_pod(&pod.namespace().unwrap_or_default(), &pod.name_any());
        Ok(())
    }

    async fn patch_status(
        &self,
        kind: StatusOf,
        name: &str,
        patch: Value,
    ) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let rv = Self::next(&mut s);
        let p =
            serde_json::json!({ "status": patch.get("status").cloned().unwrap_or(Value::Null) });
        match kind {
            StatusOf::NodePool => s.nodepools.patch(name, &p, rv).map(|_| ()),
            StatusOf::Provisioner => s.provisioners.patch(name, &p, rv).map(|_| ()),
            StatusOf::EC2NodeClass => s.ec2nodeclasses.patch(name, &p, rv).map(|_| ()),
            StatusOf::KWOKNodeClass => s.kwoknodeclasses.patch(name, &p, rv).map(|_| ()),
        }
    }

    async fn event(
        &self,
        _on: ObjectReference,
        warning: bool,
        reason: &str,
        _action: &str,
        note: String,
    ) {
        self.state
            .locked()
            .events
            .push((warning, reason.to_string(), note));
    }
}

impl Memory {
    /// Sets a claim's finalizers if its resourceVersion is still the one
    /// read (409 otherwise), as the guarded patch does on the API server.
    fn guarded(&self, claim: &NodeClaim, list: Vec<String>) -> Result<(), kube::Error> {
        let mut s = self.state.locked();
        let name = claim.name_any();
        let current = s
            .claims
            .objects
            .get(&name)
            .ok_or_else(|| api_error(404, "NotFound", format!("{name} not found")))?;
        if current.metadata.resource_version != claim.metadata.resource_version {
            return Err(api_error(
                409,
                "Conflict",
                format!(
                    "the object {name} has been modified; please apply your changes to the latest version"
                ),
            ));
        }
        let rv = Self::next(&mut s);
        s.claims
            .patch(
                &name,
                &serde_json::json!({"metadata": {"finalizers": list}}),
                rv,
            )
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_as_rfc_7386() {
        let mut v = serde_json::json!({"a": {"b": 1, "c": 2}, "d": [1, 2]});
        merge(
            &mut v,
            &serde_json::json!({"a": {"b": null, "e": 3}, "d": [3]}),
        );
        assert_eq!(v, serde_json::json!({"a": {"c": 2, "e": 3}, "d": [3]}));
    }
}
