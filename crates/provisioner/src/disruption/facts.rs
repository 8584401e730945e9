//! Pods, Nodes, NodeClaims, PodDisruptionBudgets and pools as disruption's
//! facts (`outrigger_disruption`), with Karpenter's readings: what makes a
//! pod active, reschedulable, evictable, protected by do-not-disrupt
//! (`"true"` or a duration since it started), let go by its budget, and
//! what it costs to evict. No I/O.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{
    core::v1::{Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::ResourceExt;
use outrigger_disruption::{
    Budget, NodeFacts, PodFacts, Policy, PoolPolicy, Reason, candidate::MinSavings,
};
use outrigger_karpenter_api::v1::{ConsolidationPolicy, DisruptionReason, NodeClaim};
use outrigger_runtime::conditions;
use outrigger_scheduling::model::{
    LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE,
};
use outrigger_scheduling_kube as pods;

use crate::{
    pools::{self, Pool, Source},
    upstream,
};

/// `kubernetes.io/config.mirror`: the mirror of a static pod.
const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// `controller.kubernetes.io/pod-deletion-cost`.
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn controller_kind(p: &Pod) -> Option<&str> {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.as_str())
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// A static pod's mirror (owned by its Node).
fn owned_by_node(p: &Pod) -> bool {
    p.annotations().contains_key(CONFIG_MIRROR)
        || p.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Node")
}

/// `karpenter.sh/do-not-disrupt` in effect at `now`: `"true"`, or a
/// duration not yet elapsed since the pod started (no start time: in
/// effect). Any other value is not a protection.
pub fn do_not_disrupt(p: &Pod, now: jiff::Timestamp) -> bool {
    let Some(v) = p.annotations().get(upstream::DO_NOT_DISRUPT) else {
        return false;
    };
    if v == "true" {
        return true;
    }
    let Some(d) = pools::duration(v) else {
        return false;
    };
    match p.status.as_ref().and_then(|s| s.start_time.as_ref()) {
        Some(t) => Duration::try_from(now.duration_since(t.0)).unwrap_or_default() < d,
        None => true,
    }
}

/// Tolerates `karpenter.sh/disrupted:NoSchedule` (it would not be evicted).
fn tolerates_disrupted(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .is_some_and(|ts| {
            ts.iter().any(|t| {
                let key = t.key.as_deref().unwrap_or("");
                let effect = t.effect.as_deref().unwrap_or("");
                let exists = t.operator.as_deref() == Some("Exists");
                (key == upstream::DISRUPTED_TAINT || (key.is_empty() && exists))
                    && (effect.is_empty() || effect == "NoSchedule")
            })
        })
}

fn pod_ready_false(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "False"))
}

/// The budgets selecting the pod, and whether each lets it go now.
fn pdbs_of(p: &Pod, pdbs: &[Arc<PodDisruptionBudget>]) -> Vec<(String, bool)> {
    let ns = p.metadata.namespace.as_deref().unwrap_or_default();
    pods::matching_pdbs(p, pdbs)
        .into_iter()
        .map(|b| {
            let always_unhealthy = b
                .spec
                .as_ref()
                .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref())
                == Some("AlwaysAllow");
            let allowed = b.status.as_ref().map_or(0, |s| s.disruptions_allowed) > 0
                || (always_unhealthy && pod_ready_false(p));
            (format!("{ns}/{}", b.name_any()), allowed)
        })
        .collect()
}

pub fn pod_facts(p: &Pod, pdbs: &[Arc<PodDisruptionBudget>], now: jiff::Timestamp) -> PodFacts {
    let terminating = p.metadata.deletion_timestamp.is_some();
    let active = !is_terminal(p) && !terminating;
    let statefulset = controller_kind(p) == Some("StatefulSet");
    let mirror = owned_by_node(p);
    let dnd = do_not_disrupt(p, now);
    PodFacts {
        key: pods::key(p),
        active,
        reschedulable: (active || (statefulset && terminating)) && !pods::is_daemon(p) && !mirror,
        evictable: active && !tolerates_disrupted(p) && !mirror && !dnd,
        do_not_disrupt: dnd,
        pdbs: pdbs_of(p, pdbs),
        eviction_cost: outrigger_disruption::candidate::eviction_cost(
            p.annotations().get(DELETION_COST).map(String::as_str),
            p.spec.as_ref().and_then(|s| s.priority),
        ),
    }
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The claim's `expireAfter` (`None`: `Never`).
pub fn expire_after(c: &NodeClaim) -> Option<Duration> {
    c.spec.expire_after.as_deref().and_then(pools::duration)
}

/// What disruption knows of a claim and its Node.
pub struct NodeInput<'a> {
    pub claim: &'a NodeClaim,
    pub node: Option<&'a Node>,
    pub pods: Vec<PodFacts>,
    pub problem_index: Option<usize>,
    pub nominated: bool,
    /// Chosen by a disruption command in flight.
    pub disrupting: bool,
    /// Its pool's `consolidateAfter`.
    pub consolidate_after: Option<Duration>,
}

pub fn node_facts(i: NodeInput, now: jiff::Timestamp) -> NodeFacts {
    let c = i.claim;
    let status = c.status.clone().unwrap_or_default();
    let labels = i
        .node
        .map(|n| n.labels().clone())
        .unwrap_or_else(|| c.labels().clone());
    let dnd = |a: &std::collections::BTreeMap<String, String>| {
        a.get(upstream::DO_NOT_DISRUPT).map(String::as_str) == Some("true")
    };
    let age = c
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or_default())
        .unwrap_or_default();
    NodeFacts {
        name: i.node.map(|n| n.name_any()).unwrap_or_else(|| c.name_any()),
        claim: Some(c.name_any()),
        has_node: i.node.is_some(),
        pool: labels.get(LABEL_NODEPOOL).cloned(),
        problem_index: i.problem_index,
        initialized: conditions::is_true(&status.conditions, upstream::INITIALIZED),
        ready: i.node.is_some_and(node_ready),
        marked_for_deletion: i.disrupting
            || c.metadata.deletion_timestamp.is_some()
            || i.node
                .is_some_and(|n| n.metadata.deletion_timestamp.is_some()),
        nominated: i.nominated,
        do_not_disrupt: i.node.is_some_and(|n| dnd(n.annotations())) || dnd(c.annotations()),
        instance_type: labels.get(LABEL_INSTANCE_TYPE).cloned(),
        capacity_type: labels.get(LABEL_CAPACITY_TYPE).cloned(),
        zone: labels.get(LABEL_ZONE).cloned(),
        consolidatable: conditions::is_true(&status.conditions, upstream::CONSOLIDATABLE),
        consolidatable_at: i.consolidate_after.and_then(|after| {
            let from = status
                .last_pod_event_time
                .as_ref()
                .map(|t| t.0)
                .or_else(|| {
                    conditions::get(&status.conditions, upstream::INITIALIZED)
                        .map(|c| c.last_transition_time.0)
                })?;
            let at = from
                .checked_add(jiff::SignedDuration::try_from(after).ok()?)
                .ok()?;
            (at > now).then_some(at)
        }),
        drifted: conditions::is_true(&status.conditions, upstream::DRIFTED),
        drifted_since: conditions::get(&status.conditions, upstream::DRIFTED)
            .filter(|c| c.status == "True")
            .map(|c| c.last_transition_time.0),
        lifetime_remaining: outrigger_disruption::candidate::lifetime_remaining(
            age,
            expire_after(c),
        ),
        termination_grace_period: c.spec.termination_grace_period.is_some(),
        pods: i.pods,
    }
}

fn budget(b: &outrigger_karpenter_api::v1::Budget) -> Budget {
    let reasons = b
        .reasons
        .iter()
        .map(|r| match r {
            DisruptionReason::Empty => Reason::Empty,
            DisruptionReason::Underutilized => Reason::Underutilized,
            DisruptionReason::Drifted => Reason::Drifted,
        })
        .collect();
    let duration = b.duration.as_deref().map(pools::duration);
    Budget {
        // A duration that cannot be read (admission refuses it) fails
        // closed.
        nodes: if matches!(duration, Some(None)) {
            "0".into()
        } else {
            b.nodes.clone()
        },
        reasons,
        schedule: b.schedule.clone(),
        duration: duration.flatten(),
    }
}

/// A pool's disruption settings: a NodePool's own; a v1alpha5
/// Provisioner's `consolidation.enabled` as `WhenEmptyOrUnderutilized`
/// after `0s`, with the v1 default budget (`10%`). Pools whose empty nodes
/// go by the empty-node TTL (`ttlSecondsAfterEmpty`, `WhenEmpty`) are not
/// consolidated here.
pub fn policy(p: &Pool) -> Result<PoolPolicy, String> {
    let min_savings = |annotations: &std::collections::BTreeMap<String, String>| {
        annotations
            .get(upstream::MIN_SAVINGS)
            .map(|v| MinSavings::parse(v))
            .transpose()
    };
    match &p.source {
        Source::NodePool(np) => {
            let d = &np.spec.disruption;
            Ok(PoolPolicy {
                name: p.model.name.clone(),
                policy: match d.consolidation_policy {
                    ConsolidationPolicy::WhenEmpty => Policy::WhenEmpty,
                    ConsolidationPolicy::WhenEmptyOrUnderutilized => {
                        Policy::WhenEmptyOrUnderutilized
                    }
                },
                consolidate_after: pools::duration(&d.consolidate_after),
                budgets: d.budgets.iter().map(budget).collect(),
                min_savings: min_savings(np.annotations())?,
            })
        }
        Source::Provisioner(pr) => {
            let enabled = pr
                .spec
                .consolidation
                .as_ref()
                .and_then(|c| c.enabled)
                .unwrap_or(false);
            Ok(PoolPolicy {
                name: p.model.name.clone(),
                policy: Policy::WhenEmptyOrUnderutilized,
                consolidate_after: enabled.then_some(Duration::ZERO),
                budgets: vec![Budget {
                    nodes: "10%".into(),
                    ..Default::default()
                }],
                min_savings: min_savings(pr.annotations())?,
            })
        }
    }
}
