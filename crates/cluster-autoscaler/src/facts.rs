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

/// Drops from a watched pod what neither the loop nor its answers read:
/// container and IP statuses, and of each container all but its name,
/// requests and limits, ports and restart policy (the pods are most of the
/// autoscaler's memory).
pub fn trim_pod(p: &mut Pod) {
    if let Some(s) = p.status.as_mut() {
        s.container_statuses = None;
        s.init_container_statuses = None;
        s.ephemeral_container_statuses = None;
        s.host_ips = None;
        s.pod_ips = None;
        s.resource_claim_statuses = None;
    }
    if let Some(spec) = p.spec.as_mut() {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            *c = k8s_openapi::api::core::v1::Container {
                name: std::mem::take(&mut c.name),
                resources: c.resources.take(),
                ports: c.ports.take(),
                restart_policy: c.restart_policy.take(),
                ..Default::default()
            };
        }
        spec.ephemeral_containers = None;
    }
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

pub use outrigger_scheduling_kube::matching_pdbs;

/// Sets what of the pod's facts depends on the budgets and the time: a
/// budget selects it, one allows no disruption now, it is long
/// terminating, its age.
pub fn refresh_pod_facts(
    f: &mut PodFacts,
    p: &Pod,
    pdbs: &[Arc<PodDisruptionBudget>],
    now: jiff::Timestamp,
) {
    let matching = matching_pdbs(p, pdbs);
    f.has_pdb = !matching.is_empty();
    // A budget whose status is not written yet allows nothing.
    f.pdb_blocks = matching
        .iter()
        .any(|b| b.status.as_ref().map_or(0, |s| s.disruptions_allowed) < 1);
    f.long_terminating = is_long_terminating(p, now);
    f.age = p
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or_default());
}

/// What the drain rules need of the pod, at `now`.
pub fn pod_facts(p: &Pod, pdbs: &[Arc<PodDisruptionBudget>], now: jiff::Timestamp) -> PodFacts {
    let mut f = static_pod_facts(p);
    refresh_pod_facts(&mut f, p, pdbs, now);
    f
}

/// What the drain rules need of the pod that changes only with the pod
/// (see [`refresh_pod_facts`] for the rest).
pub fn static_pod_facts(p: &Pod) -> PodFacts {
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
        has_pdb: false,
        pdb_blocks: false,
        terminal: is_terminal(p),
        long_terminating: false,
        age: None,
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
    NodeFacts {
        pods: pods.iter().map(|p| pod_facts(p, pdbs, now)).collect(),
        ..node_facts_without_pods(n, kube_model::node(n, vec![]).allocatable)
    }
}

/// [`node_facts`] without the pods, the node's allocatable read already.
pub fn node_facts_without_pods(n: &Node, allocatable: Resources) -> NodeFacts {
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
        allocatable,
        capacity: n
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| Resources::parse(c.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).ok())
            .unwrap_or_default(),
        pods: vec![],
    }
}
