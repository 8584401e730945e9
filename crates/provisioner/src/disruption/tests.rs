//! The disruption controller over the in-memory cluster and the fake
//! cloud: consolidation by delete and by replacement (the replacement
//! initialized before the candidate goes), a do-not-disrupt pod keeping
//! its node, a command dropped when the cluster changed during its
//! validation, budgets, expiration, the Consolidatable condition.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kube::ResourceExt;
use outrigger_karpenter_api::v1::{Budget, ConsolidationPolicy, NodePool};
use outrigger_runtime::Action;

use crate::{
    testing::{Harness, claim, harness, node, nodepool, pod_on},
    upstream,
};

/// A pool that consolidates after `after`, budget `nodes`, of m5.large
/// nodes only (no cheaper replacement: consolidation deletes).
fn consolidating(name: &str, after: &str, nodes: &str) -> NodePool {
    let mut p = any_type(name, after, nodes);
    p.spec.template.spec.requirements.push(
        serde_json::from_value(serde_json::json!(
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]}
        ))
        .unwrap(),
    );
    p
}

/// The same, of any type.
fn any_type(name: &str, after: &str, nodes: &str) -> NodePool {
    let mut p = nodepool(name, None, None);
    p.spec.disruption.consolidation_policy = ConsolidationPolicy::WhenEmptyOrUnderutilized;
    p.spec.disruption.consolidate_after = after.into();
    p.spec.disruption.budgets = vec![Budget {
        reasons: vec![],
        nodes: nodes.into(),
        schedule: None,
        duration: None,
    }];
    p
}

/// No wait between passes nor for validation (a command found already
/// is due now).
fn quick(h: &Harness) {
    let mut st = h.ctx.disruption.locked();
    st.period = Duration::ZERO;
    st.validation = Duration::ZERO;
    if let Some(super::Pending {
        stage: super::Stage::Validating { until },
        ..
    }) = st.pending.as_mut()
    {
        *until = std::time::Instant::now();
    }
}

use outrigger_runtime::sync::LockExt;

/// A claim launched, registered, initialized and reconciled until settled;
/// returns its node's name.
async fn running(h: &Harness, name: &str, pool: &str) -> String {
    h.mem.put_claim(claim(name, pool));
    h.reconcile(name).await.unwrap();
    let l = h.launched(name);
    h.mem.put_node(node(&l, true));
    h.reconcile(name).await.unwrap();
    h.reconcile(name).await.unwrap();
    h.initialized_ago(name, Duration::from_secs(60));
    l.node_name
}

async fn run(h: &Harness) -> Action {
    super::run(&h.ctx).await.unwrap()
}

fn deleting(h: &Harness, claim: &str) -> bool {
    h.mem
        .claim(claim)
        .is_none_or(|c| c.metadata.deletion_timestamp.is_some())
}

#[tokio::test]
async fn a_node_whose_pods_fit_elsewhere_is_deleted_after_validation() {
    let h = harness();
    h.mem.put_nodepool(consolidating("default", "0s", "100%"));
    let a = running(&h, "default-a", "default").await;
    let b = running(&h, "default-b", "default").await;
    h.mem.put_pod(pod_on(&a, "web-1", false));
    h.mem.put_pod(pod_on(&a, "web-2", false));
    h.mem.put_pod(pod_on(&b, "web-3", false));
    for c in ["default-a", "default-b"] {
        h.reconcile(c).await.unwrap();
        assert_eq!(
            h.condition(c, upstream::CONSOLIDATABLE)
                .map(|c| c.0)
                .as_deref(),
            Some("True")
        );
    }
    // Found, then held for the validation period.
    assert_eq!(run(&h).await, Action::requeue(super::VALIDATION));
    assert!(!deleting(&h, "default-a") && !deleting(&h, "default-b"));
    quick(&h);
    run(&h).await;
    // The node with fewer pods goes; the other stays.
    assert!(deleting(&h, "default-b"));
    assert!(!deleting(&h, "default-a"));
    let n = h.mem.node(&b).unwrap();
    assert!(
        n.spec
            .unwrap()
            .taints
            .unwrap()
            .iter()
            .any(|t| t.key == upstream::DISRUPTED_TAINT)
    );
    assert_eq!(
        h.condition("default-b", upstream::DISRUPTION_REASON)
            .map(|c| c.1)
            .as_deref(),
        Some("Underutilized")
    );
    let m = h.admin.encode_metrics().unwrap();
    assert!(
        m.contains(r#"karpenter_voluntary_disruption_decisions_total{decision="delete",reason="underutilized",consolidation_type="single"} 1"#)
            || m.contains(r#"karpenter_voluntary_disruption_decisions_total{decision="delete",reason="underutilized",consolidation_type="multi"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"karpenter_nodeclaims_disrupted_total{reason="underutilized",nodepool="default",capacity_type="on-demand"} 1"#),
        "{m}"
    );
    // The termination finalizer drains it: the pod is evicted, then the
    // instance and the claim go.
    h.reconcile("default-b").await.unwrap();
    h.reconcile("default-b").await.unwrap();
    assert!(h.mem.claim("default-b").is_none());
    assert!(
        h.stores
            .pods
            .state()
            .iter()
            .all(|p| p.name_any() != "web-3")
    );
}

#[tokio::test]
async fn a_do_not_disrupt_pod_keeps_its_node_and_says_so() {
    let h = harness();
    h.mem.put_nodepool(consolidating("default", "0s", "100%"));
    let a = running(&h, "default-a", "default").await;
    let b = running(&h, "default-b", "default").await;
    h.mem.put_pod(pod_on(&a, "web-1", false));
    let mut keep = pod_on(&b, "batch-1", false);
    keep.annotations_mut()
        .insert(upstream::DO_NOT_DISRUPT.into(), "true".into());
    h.mem.put_pod(keep);
    for c in ["default-a", "default-b"] {
        h.reconcile(c).await.unwrap();
    }
    quick(&h);
    run(&h).await;
    run(&h).await;
    assert!(!deleting(&h, "default-b"));
    // node-a goes instead: its pod fits beside the batch pod.
    assert!(deleting(&h, "default-a"));
    assert!(
        h.mem
            .events()
            .iter()
            .any(|(_, reason, note)| reason == upstream::DISRUPTION_BLOCKED
                && note
                    == "Pod has \"karpenter.sh/do-not-disrupt\" annotation (Pod=default/batch-1)"),
        "{:?}",
        h.mem.events()
    );
}

#[tokio::test]
async fn a_command_is_dropped_when_a_pod_arrives_during_validation() {
    let h = harness();
    h.mem.put_nodepool(consolidating("default", "0s", "100%"));
    let a = running(&h, "default-a", "default").await;
    let b = running(&h, "default-b", "default").await;
    h.mem.put_pod(pod_on(&a, "web-1", false));
    for c in ["default-a", "default-b"] {
        h.reconcile(c).await.unwrap();
    }
    // Empty node-b is found ...
    h.ctx.disruption.locked().period = Duration::ZERO;
    run(&h).await;
    // ... a pod lands on it, with do-not-disrupt, before the check.
    let mut p = pod_on(&b, "batch-1", false);
    p.annotations_mut()
        .insert(upstream::DO_NOT_DISRUPT.into(), "true".into());
    h.mem.put_pod(p);
    quick(&h);
    run(&h).await;
    assert!(!deleting(&h, "default-b"));
    let m = h.admin.encode_metrics().unwrap();
    assert!(
        m.contains("outrigger_disruption_commands_abandoned_total"),
        "{m}"
    );
}

#[tokio::test]
async fn a_zero_budget_holds_every_node() {
    let h = harness();
    h.mem.put_nodepool(consolidating("default", "0s", "0"));
    running(&h, "default-a", "default").await;
    running(&h, "default-b", "default").await;
    for c in ["default-a", "default-b"] {
        h.reconcile(c).await.unwrap();
    }
    quick(&h);
    // Both are empty, the budget allows nothing: looked at again later.
    assert_eq!(run(&h).await, Action::requeue(super::BUDGET_RECHECK));
    run(&h).await;
    assert!(!deleting(&h, "default-a") && !deleting(&h, "default-b"));
    let m = h.admin.encode_metrics().unwrap();
    assert!(
        m.contains(
            r#"karpenter_nodepools_allowed_disruptions{nodepool="default",reason="empty"} 0"#
        ),
        "{m}"
    );
}

#[tokio::test]
async fn a_node_past_expire_after_is_deleted_whatever_the_budget() {
    let h = harness();
    let mut p = consolidating("default", "Never", "0");
    p.spec.template.spec.expire_after = Some("1h".into());
    h.mem.put_nodepool(p);
    let mut c = claim("default-a", "default");
    c.spec.expire_after = Some("1h".into());
    c.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3599),
    ));
    h.mem.put_claim(c);
    // Not yet: the reconcile comes back when it expires.
    match h.reconcile("default-a").await.unwrap() {
        Action::RequeueAfter(d) => assert!(d <= Duration::from_secs(1), "{d:?}"),
        Action::Done => panic!("no requeue for the expiry"),
    }
    let mut c = h.claim("default-a");
    c.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3601),
    ));
    h.mem.put_claim(c);
    h.reconcile("default-a").await.unwrap();
    assert!(deleting(&h, "default-a"));
    assert_eq!(
        h.condition("default-a", upstream::EXPIRED)
            .map(|c| c.0)
            .as_deref(),
        Some("True")
    );
    let m = h.admin.encode_metrics().unwrap();
    assert!(
        m.contains(r#"karpenter_nodeclaims_disrupted_total{reason="expired",nodepool="default",capacity_type="on-demand"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn consolidatable_waits_consolidate_after_from_the_last_pod_event() {
    let h = harness();
    h.mem.put_nodepool(consolidating("default", "30s", "100%"));
    let a = running(&h, "default-a", "default").await;
    // Initialized a minute ago, no pod event: consolidatable.
    h.reconcile("default-a").await.unwrap();
    assert_eq!(
        h.condition("default-a", upstream::CONSOLIDATABLE)
            .map(|c| c.0)
            .as_deref(),
        Some("True")
    );
    // A pod arrives: a pod event now, the condition goes, and the claim
    // comes back when 30 s have passed.
    h.mem.put_pod(pod_on(&a, "web-1", false));
    let action = h.reconcile("default-a").await.unwrap();
    assert!(
        h.claim("default-a")
            .status
            .unwrap()
            .last_pod_event_time
            .is_some()
    );
    assert!(h.condition("default-a", upstream::CONSOLIDATABLE).is_none());
    match action {
        Action::RequeueAfter(d) => assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        ),
        Action::Done => panic!("no requeue for consolidateAfter"),
    }
}

#[tokio::test]
async fn a_cheaper_replacement_initializes_before_the_candidate_goes() {
    let h = harness();
    h.mem.put_nodepool(any_type("default", "0s", "100%"));
    // A claim for a big type, with one small pod.
    let mut c = claim("default-a", "default");
    c.spec.requirements[0].values = vec!["m5.4xlarge".into()];
    h.mem.put_claim(c);
    h.reconcile("default-a").await.unwrap();
    let l = h.launched("default-a");
    h.mem.put_node(node(&l, true));
    h.reconcile("default-a").await.unwrap();
    h.reconcile("default-a").await.unwrap();
    h.initialized_ago("default-a", Duration::from_secs(60));
    h.mem.put_pod(pod_on(&l.node_name, "web-1", false));
    h.reconcile("default-a").await.unwrap();
    quick(&h);
    run(&h).await;
    run(&h).await;
    // A replacement claim exists; the candidate waits for it.
    let replacement = h
        .stores
        .claims
        .state()
        .iter()
        .map(|c| c.name_any())
        .find(|n| n != "default-a");
    let Some(replacement) = replacement else {
        panic!("no replacement: {:?}", h.mem.events());
    };
    assert!(!deleting(&h, "default-a"));
    run(&h).await;
    assert!(!deleting(&h, "default-a"));
    // It launches, registers, initializes: then the candidate goes.
    h.reconcile(&replacement).await.unwrap();
    let r = h.launched(&replacement);
    h.mem.put_node(node(&r, true));
    h.reconcile(&replacement).await.unwrap();
    h.reconcile(&replacement).await.unwrap();
    run(&h).await;
    assert!(deleting(&h, "default-a"));
    assert!(!deleting(&h, &replacement));
}

#[tokio::test]
async fn a_pdb_that_allows_no_eviction_keeps_its_node() {
    let h = harness();
    h.mem.put_nodepool(consolidating("default", "0s", "100%"));
    let a = running(&h, "default-a", "default").await;
    let b = running(&h, "default-b", "default").await;
    h.mem.put_pod(pod_on(&a, "web-1", false));
    let mut db = pod_on(&b, "db-1", false);
    db.labels_mut().insert("app".into(), "db".into());
    h.mem.put_pod(db);
    h.mem.put_pdb(
        serde_json::from_value(serde_json::json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "db"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
                       "expectedPods": 1, "observedGeneration": 1},
        }))
        .unwrap(),
    );
    for c in ["default-a", "default-b"] {
        h.reconcile(c).await.unwrap();
    }
    quick(&h);
    run(&h).await;
    quick(&h);
    run(&h).await;
    assert!(!deleting(&h, "default-b"));
    assert!(deleting(&h, "default-a"));
    assert!(
        h.mem
            .events()
            .iter()
            .any(|(_, reason, note)| reason == upstream::DISRUPTION_BLOCKED
                && note == "Pdb prevents pod evictions (PodDisruptionBudget=[default/db])"),
        "{:?}",
        h.mem.events()
    );
}

#[tokio::test]
async fn a_claim_whose_pool_changed_drifts_and_is_replaced() {
    let h = harness();
    h.mem
        .put_nodepool(consolidating("default", "Never", "100%"));
    let a = running(&h, "default-a", "default").await;
    h.mem.put_pod(pod_on(&a, "web-1", false));
    // A claim made before hashes (or by Karpenter, another version) is
    // stamped with the pool's hash, not drifted.
    h.reconcile("default-a").await.unwrap();
    let c = h.claim("default-a");
    assert_eq!(
        c.annotations()
            .get(upstream::NODEPOOL_HASH_VERSION)
            .map(String::as_str),
        Some(outrigger_disruption::drift::HASH_VERSION)
    );
    h.reconcile("default-a").await.unwrap();
    assert!(h.condition("default-a", upstream::DRIFTED).is_none());
    // The pool's template changes (a label): NodePoolDrifted.
    let mut p = h.mem.nodepool("default").unwrap();
    p.spec
        .template
        .metadata
        .labels
        .insert("team".into(), "blue".into());
    h.mem.put_nodepool(p.clone());
    h.reconcile("default-a").await.unwrap();
    assert_eq!(
        h.condition("default-a", upstream::DRIFTED)
            .map(|c| (c.0, c.1)),
        Some(("True".into(), "NodePoolDrifted".into()))
    );
    // Back as it was: no longer drifted.
    p.spec.template.metadata.labels.remove("team");
    h.mem.put_nodepool(p.clone());
    h.reconcile("default-a").await.unwrap();
    assert!(h.condition("default-a", upstream::DRIFTED).is_none());
    // The pool no longer allows m5.large: RequirementsDrifted, and the
    // drift method replaces it (its pod needs a node).
    p.spec.template.spec.requirements.last_mut().unwrap().values = vec!["m5.xlarge".into()];
    h.mem.put_nodepool(p);
    h.reconcile("default-a").await.unwrap();
    assert_eq!(
        h.condition("default-a", upstream::DRIFTED).map(|c| c.1),
        Some("RequirementsDrifted".into())
    );
    quick(&h);
    run(&h).await;
    quick(&h);
    run(&h).await;
    let replacement = h
        .stores
        .claims
        .state()
        .iter()
        .map(|c| c.name_any())
        .find(|n| n != "default-a")
        .expect("a replacement");
    assert!(!deleting(&h, "default-a"));
    assert_eq!(
        h.condition("default-a", upstream::DISRUPTION_REASON)
            .map(|c| c.1),
        Some("Drifted".into())
    );
    let r = h.claim(&replacement);
    assert!(
        r.spec
            .requirements
            .iter()
            .any(|x| x.key == "node.kubernetes.io/instance-type"
                && x.values == vec!["m5.xlarge".to_string()]),
        "{:?}",
        r.spec.requirements
    );
}

/// A `WhenEmpty` NodePool's empty nodes are the disruption controller's:
/// deleted within the pool's budget (Karpenter v1), not by a TTL; a node
/// with a pod stays.
#[tokio::test]
async fn when_empty_pools_delete_empty_nodes_within_their_budget() {
    let h = harness();
    let mut p = nodepool("default", Some("0s"), None);
    p.spec.disruption.budgets = vec![Budget {
        reasons: vec![],
        nodes: "1".into(),
        schedule: None,
        duration: None,
    }];
    h.mem.put_nodepool(p);
    let a = running(&h, "default-a", "default").await;
    running(&h, "default-b", "default").await;
    running(&h, "default-c", "default").await;
    h.mem.put_pod(pod_on(&a, "web-1", false));
    for c in ["default-a", "default-b", "default-c"] {
        h.reconcile(c).await.unwrap();
        assert!(!deleting(&h, c), "{c} went by a TTL");
    }
    run(&h).await;
    quick(&h);
    run(&h).await;
    let gone: Vec<&str> = ["default-a", "default-b", "default-c"]
        .into_iter()
        .filter(|c| deleting(&h, c))
        .collect();
    // One empty node at a time (the budget), never the busy one.
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(!deleting(&h, "default-a"));
    assert_eq!(
        h.condition(gone[0], upstream::DISRUPTION_REASON)
            .map(|c| c.1)
            .as_deref(),
        Some("Empty")
    );
}
