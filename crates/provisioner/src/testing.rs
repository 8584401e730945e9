//! The provisioner without a cluster, for unit tests: its context over the
//! in-memory cluster ([`crate::memory`]) and the fake cloud
//! ([`crate::cloud::fake`]), and builders for the objects tests need.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::reflector;
use outrigger_karpenter_api::v1::{NodeClaim, NodePool};
use outrigger_runtime::{Action, AdminState, queue::Queue};
use serde_json::json;
use tokio::sync::Notify;

use crate::{
    Args, Ctx, Key,
    cloud::{Launched, Providers, fake::Fake},
    memory::{Memory, Stores},
    metrics::Metrics,
    upstream,
};

pub struct Harness {
    pub ctx: Arc<Ctx>,
    pub mem: Arc<Memory>,
    pub fake: Arc<Fake>,
    pub stores: Stores,
    pub admin: AdminState,
}

pub fn harness() -> Harness {
    let (mem, stores) = Memory::new();
    let mem = Arc::new(mem);
    let fake = Arc::new(Fake::new());
    let admin = AdminState::default();
    let (daemonsets, _w) = reflector::store();
    let ctx = Arc::new(Ctx {
        cluster: mem.clone(),
        providers: Providers::new(vec![fake.clone()]),
        aws: None,
        args: Args {
            cluster_name: "test".into(),
            batch_idle_duration: Duration::from_millis(10),
            batch_max_duration: Duration::from_millis(50),
            providers: vec![],
            kwok_zones: vec![],
            kwok_kubelet_port: 10250,
            interruption_queue: None,
        },
        pods: stores.pods.clone(),
        nodes: stores.nodes.clone(),
        nodepools: stores.nodepools.clone(),
        provisioners: stores.provisioners.clone(),
        claims: stores.claims.clone(),
        daemonsets,
        pdbs: stores.pdbs.clone(),
        ec2nodeclasses: stores.ec2nodeclasses.clone(),
        kwoknodeclasses: stores.kwoknodeclasses.clone(),
        metrics: Metrics::register(&admin),
        queue: Queue::<Key>::new(Duration::from_millis(1), Duration::from_millis(10)),
        pod_changes: Notify::new(),
        created: Mutex::new(vec![]),
        launched: Mutex::new(Default::default()),
        limited: Mutex::new(Default::default()),
        idle_logged: Default::default(),
        last_batch: Mutex::new(None),
        gc: Mutex::new(Default::default()),
        discovered: Mutex::new(Default::default()),
        disruption: Mutex::new(Default::default()),
        nominated: Mutex::new(Default::default()),
        pod_sets: Mutex::new(Default::default()),
    });
    Harness {
        ctx,
        mem,
        fake,
        stores,
        admin,
    }
}

/// A NodePool of the fake's node class; `empty_after`: WhenEmpty with this
/// consolidateAfter.
pub fn nodepool(
    name: &str,
    empty_after: Option<&str>,
    limits: Option<serde_json::Value>,
) -> NodePool {
    let mut v = json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1},
        "spec": {
            "template": {"spec": {
                "nodeClassRef": {"group": "test.outrigger.dev", "kind": "FakeNodeClass", "name": "default"},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
            }},
            "disruption": match empty_after {
                Some(t) => json!({"consolidationPolicy": "WhenEmpty", "consolidateAfter": t}),
                None => json!({"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "Never"}),
            },
        },
    });
    if let Some(l) = limits {
        v["spec"]["limits"] = l;
    }
    serde_json::from_value(v).expect("a valid NodePool")
}

/// The seed's kind of pool: a v1alpha5 Provisioner deleting empty nodes
/// after `ttlSecondsAfterEmpty`.
pub fn provisioner(
    name: &str,
    ttl_seconds_after_empty: i64,
) -> outrigger_karpenter_api::v1alpha5::Provisioner {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1},
        "spec": {
            "requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            ],
            "ttlSecondsAfterEmpty": ttl_seconds_after_empty,
        },
    }))
    .expect("a valid Provisioner")
}

/// A claim of the Provisioner `pool`, as the provisioner creates it.
pub fn provisioner_claim(name: &str, pool: &str) -> NodeClaim {
    let mut c = claim(name, pool);
    kube::ResourceExt::annotations_mut(&mut c)
        .insert(upstream::POOL_KIND.into(), "provisioner".into());
    c
}

/// A claim of `pool` for an m5.large, as the provisioner creates it.
pub fn claim(name: &str, pool: &str) -> NodeClaim {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "name": name,
            "generation": 1,
            "labels": {"karpenter.sh/nodepool": pool},
            "annotations": {upstream::POOL_KIND: "nodepool"},
            "finalizers": [upstream::FINALIZER],
        },
        "spec": {
            "nodeClassRef": {"group": "test.outrigger.dev", "kind": "FakeNodeClass", "name": "default"},
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            ],
        },
    }))
    .expect("a valid NodeClaim")
}

/// The Node a launched instance registers as.
pub fn node(l: &Launched, ready: bool) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": l.node_name, "labels": {"node.kubernetes.io/instance-type": l.instance_type}},
        "spec": {"providerID": l.provider_id},
        "status": {
            "allocatable": {"cpu": "1930m", "memory": "6903Mi", "pods": "29"},
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    }))
    .expect("a valid Node")
}

/// A running pod on `node` (a DaemonSet's when `daemon`).
pub fn pod_on(node: &str, name: &str, daemon: bool) -> Pod {
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "100m"}}}]},
        "status": {"phase": "Running"},
    });
    if daemon {
        v["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "ds"}]);
    }
    serde_json::from_value(v).expect("a valid Pod")
}

/// A pod kube-scheduler marked Unschedulable.
pub fn pending_pod(name: &str, cpu: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
    }))
    .expect("a valid Pod")
}

impl Harness {
    /// One reconcile of a claim.
    pub async fn reconcile(&self, name: &str) -> Result<Action, crate::lifecycle::Error> {
        crate::lifecycle::reconcile(&self.ctx, name).await
    }

    /// The claim as the cluster has it.
    pub fn claim(&self, name: &str) -> NodeClaim {
        self.mem.claim(name).expect("the claim exists")
    }

    /// What the claim launched, from its status and labels.
    pub fn launched(&self, name: &str) -> Launched {
        let c = self.claim(name);
        let s = c.status.clone().unwrap_or_default();
        let pid = s.provider_id.clone().expect("launched");
        let id = pid.rsplit('/').next().unwrap_or_default().to_string();
        Launched {
            node_name: format!("node-{id}"),
            instance_id: id,
            provider_id: pid,
            instance_type: c
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("node.kubernetes.io/instance-type").cloned())
                .unwrap_or_default(),
            zone: String::new(),
            capacity_type: String::new(),
            capacity: Default::default(),
            allocatable: Default::default(),
            ..Default::default()
        }
    }

    /// A condition of the claim: (status, reason, message).
    pub fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let c = self.claim(name);
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status, c.reason, c.message))
    }

    /// Sets the claim's Initialized condition's transition `ago` in the past.
    pub fn initialized_ago(&self, name: &str, ago: Duration) {
        let mut c = self.claim(name);
        let at = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ago).expect("short");
        if let Some(s) = c.status.as_mut() {
            for cond in &mut s.conditions {
                if cond.type_ == upstream::INITIALIZED {
                    cond.last_transition_time =
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at);
                }
            }
        }
        self.mem.put_claim(c);
    }
}
