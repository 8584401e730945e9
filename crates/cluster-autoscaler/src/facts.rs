//! From core objects to what the scale-down's rules read of them
//! ([`PodFacts`], [`NodeFacts`]), as upstream reads the same objects: no
//! I/O, the time given. (Declared from `snapshot`; the tests compile this
//! file too, so it names only outside crates.)

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{
    core::v1::{Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::ResourceExt;
use outrigger_node_groups::{
    scaledown::{NodeFacts, PodFacts},
    upstream::{
        SAFE_TO_EVICT, SAFE_TO_EVICT_LOCAL_VOLUMES, SCALE_DOWN_DISABLED, TO_BE_DELETED_TAINT,
    },
};
use outrigger_scheduling::resources::Resources;
use outrigger_scheduling_kube as kube_model;

/// A pod to be counted as a daemonset's whatever its controller.
pub const DAEMONSET_POD: &str = "cluster-autoscaler.kubernetes.io/daemonset-pod";
/// The annotation of a static pod's mirror.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// How long past its grace period a deleted pod still counts.
pub const LONG_TERMINATING_EXTRA: Duration = Duration::from_secs(30);
/// A pod's grace period when its spec sets none.
const DEFAULT_GRACE_PERIOD_SECONDS: i64 = 30;

/// A taint a node carries for its state (not ready, unreachable, not yet
/// initialized by its cloud provider), not for what it is.
pub fn state_taint(key: &str) -> bool {
    key.starts_with("node.kubernetes.io/")
        || key == "node.cloudprovider.kubernetes.io/uninitialized"
}

/// The node's Ready condition is True.
pub fn ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The kind of the pod's controlling owner.
pub fn controller_kind(p: &Pod) -> Option<String> {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.clone())
}

/// Controlled by a DaemonSet, or annotated as a daemonset's pod.
pub fn is_daemonset_pod(p: &Pod) -> bool {
    controller_kind(p).as_deref() == Some("DaemonSet")
        || p.annotations().get(DAEMONSET_POD).map(String::as_str) == Some("true")
}

/// The mirror of a static pod.
pub fn is_mirror_pod(p: &Pod) -> bool {
    p.annotations().contains_key(CONFIG_MIRROR)
}

/// Finished for good: failed, or succeeded with a restart policy that
/// does not restart it.
pub fn is_terminal(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    let policy = p.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    phase == Some("Failed")
        || (phase == Some("Succeeded") && matches!(policy, Some("Never") | Some("OnFailure")))
}

/// Deleted more than its grace period and [`LONG_TERMINATING_EXTRA`] ago.
pub fn is_long_terminating(p: &Pod, now: jiff::Timestamp) -> bool {
    let Some(deleted) = p.metadata.deletion_timestamp.as_ref() else {
        return false;
    };
    let grace = p
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS);
    let extra = LONG_TERMINATING_EXTRA.as_secs() as i64;
    deleted
        .0
        .checked_add(jiff::SignedDuration::from_secs(grace.saturating_add(extra)))
        .is_ok_and(|gone| gone < now)
}

/// The pod's local-storage volumes (hostPath, emptyDir not in memory).
pub fn local_volumes(p: &Pod) -> Vec<String> {
    p.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|vs| {
            vs.iter()
                .filter(|v| {
                    v.host_path.is_some()
                        || v.empty_dir
                            .as_ref()
                            .is_some_and(|e| e.medium.as_deref() != Some("Memory"))
                })
                .map(|v| v.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The PodDisruptionBudgets of the pod's namespace whose selector selects
/// it (a budget without a selector selects nothing).
pub fn matching_pdbs<'a>(
    p: &Pod,
    pdbs: &'a [Arc<PodDisruptionBudget>],
) -> Vec<&'a Arc<PodDisruptionBudget>> {
    let ns = p.namespace().unwrap_or_default();
    let labels = p.labels().clone();
    pdbs.iter()
        .filter(|b| b.namespace().as_deref() == Some(ns.as_str()))
        .filter(|b| {
            b.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| outrigger_values::selector::selects(sel, &labels))
        })
        .collect()
}

/// What the drain rules need of the pod, at `now`.
pub fn pod_facts(p: &Pod, pdbs: &[Arc<PodDisruptionBudget>], now: jiff::Timestamp) -> PodFacts {
    let matching = matching_pdbs(p, pdbs);
    let annotations = p.annotations();
    PodFacts {
        key: kube_model::key(p),
        namespace: p.namespace().unwrap_or_default(),
        requests: p
            .spec
            .as_ref()
            .and_then(|s| kube_model::effective_requests(s).ok())
            .unwrap_or_default(),
        daemon: is_daemonset_pod(p),
        mirror: is_mirror_pod(p),
        controller: controller_kind(p),
        safe_to_evict: match annotations.get(SAFE_TO_EVICT).map(String::as_str) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
        local_volumes: local_volumes(p),
        // Upstream splits on commas only; surrounding spaces are dropped here.
        safe_local_volumes: annotations
            .get(SAFE_TO_EVICT_LOCAL_VOLUMES)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        has_pdb: !matching.is_empty(),
        // A budget whose status is not written yet allows nothing.
        pdb_blocks: matching
            .iter()
            .any(|b| b.status.as_ref().map_or(0, |s| s.disruptions_allowed) < 1),
        terminal: is_terminal(p),
        long_terminating: is_long_terminating(p, now),
        age: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or_default()),
    }
}

/// What the scale-down needs of the node and its pods, at `now` (no group:
/// the caller knows which has it).
pub fn node_facts(
    n: &Node,
    pods: &[&Pod],
    pdbs: &[Arc<PodDisruptionBudget>],
    now: jiff::Timestamp,
) -> NodeFacts {
    let deleting = n.metadata.deletion_timestamp.is_some()
        || n.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
    NodeFacts {
        name: n.name_any(),
        group: None,
        ready: ready(n),
        scale_down_disabled: n
            .annotations()
            .get(SCALE_DOWN_DISABLED)
            .is_some_and(|v| v == "true"),
        deleting,
        allocatable: kube_model::node(n, vec![]).allocatable,
        capacity: n
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| Resources::parse(c.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).ok())
            .unwrap_or_default(),
        pods: pods.iter().map(|p| pod_facts(p, pdbs, now)).collect(),
    }
}
