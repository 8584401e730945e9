//! Karpenter v1.12.1's drift cases: `pkg/controllers/disruption/drift_test.go`
//! (`Context("Drift")`, the decisions) over
//! `outrigger_disruption::consolidation_pass`, and
//! `pkg/controllers/nodeclaim/disruption/drift_test.go` (`NodePool Static
//! Drift`, `NodeRequirement Drift`) over `drift::drift`. Each test is
//! named after its context and `It`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use outrigger_disruption::{
    Decision,
    consolidate::Method,
    drift::{DriftReason, HASH_VERSION, drift},
};
use outrigger_scheduling::requirements::{Operator, Requirement, Requirements};

fn drifted(w: &mut World, i: usize, minute: u32) {
    w.facts[i].drifted = true;
    w.facts[i].drifted_since = Some(format!("2026-12-01T11:{minute:02}:00Z").parse().unwrap());
    // Not consolidatable: only drift acts.
    w.facts[i].consolidatable = false;
}

/// Nodes of m5.2xlarge on-demand in an on-demand pool (no cheaper spot).
fn world() -> World {
    let mut w = World::new();
    w.pool(policy("default"), &["on-demand"]);
    w
}

// pkg/controllers/disruption/drift_test.go, Context("Drift")

#[test]
fn drift_should_ignore_nodes_without_the_drifted_status_condition() {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    w.facts[0].consolidatable = false;
    assert!(w.pass().command.is_none());
}

#[test]
fn drift_should_ignore_nodes_with_the_karpenter_sh_do_not_disrupt_annotation_set_to_true() {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    drifted(&mut w, 0, 0);
    w.facts[0].do_not_disrupt = true;
    assert!(w.pass().command.is_none());
}

#[test]
fn drift_should_not_create_replacements_for_drifted_nodes_that_have_pods_with_the_karpenter_sh_do_not_disrupt_annotation_set_to_true()
 {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    drifted(&mut w, 0, 0);
    w.facts[0].pods[0].do_not_disrupt = true;
    w.facts[0].pods[0].evictable = false;
    assert!(w.pass().command.is_none());
}

#[test]
fn drift_should_replace_drifted_nodes() {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    drifted(&mut w, 0, 0);
    let cmd = w.command();
    assert_eq!(cmd.method, Method::Drift);
    assert_eq!(cmd.decision(), Decision::Replace);
    assert_eq!(cmd.replacements.len(), 1);
}

#[test]
fn drift_should_delete_drifted_nodes() {
    // Its pod fits on the other node: no replacement.
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    w.node(
        "node-1",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-1", "1")],
    );
    w.facts[1].consolidatable = false;
    drifted(&mut w, 0, 0);
    let cmd = w.command();
    assert_eq!(cmd.method, Method::Drift);
    assert_eq!(cmd.decision(), Decision::Delete);
    assert_eq!(w.names(&cmd), vec!["node-0"]);
}

#[test]
fn drift_should_delete_drifted_nodes_when_they_are_empty_and_consolidation_is_disabled() {
    let mut w = world();
    w.pools[0].consolidate_after = None;
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[] as &[(&str, &str)],
    );
    drifted(&mut w, 0, 0);
    let cmd = w.command();
    assert_eq!(cmd.method, Method::Drift);
    assert_eq!(cmd.decision(), Decision::Delete);
}

#[test]
fn drift_should_drift_empty_nodes_before_non_empty_nodes() {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    w.node(
        "node-1",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[] as &[(&str, &str)],
    );
    // The non-empty one drifted first.
    drifted(&mut w, 0, 0);
    drifted(&mut w, 1, 5);
    let cmd = w.command();
    assert_eq!(w.names(&cmd), vec!["node-1"]);
}

#[test]
fn drift_should_give_emptiness_priority_to_delete_drifted_nodes_when_they_are_empty_and_consolidatable()
 {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[] as &[(&str, &str)],
    );
    drifted(&mut w, 0, 0);
    w.facts[0].consolidatable = true;
    let cmd = w.command();
    assert_eq!(cmd.method, Method::Emptiness);
}

#[test]
fn drift_can_replace_drifted_nodes_with_multiple_nodes() {
    // Three pods of 3 cpu, on an m5.4xlarge; the pool now has only
    // m5.xlarge (4 vCPU): three replacements.
    let mut w = world();
    w.node(
        "node-0",
        "m5.4xlarge",
        "on-demand",
        "default",
        &[("pod-0", "3"), ("pod-1", "3"), ("pod-2", "3")],
    );
    drifted(&mut w, 0, 0);
    w.problem.pools[0].requirements.add(
        "node.kubernetes.io/instance-type",
        Requirement::new(
            "node.kubernetes.io/instance-type",
            Operator::In,
            &["m5.xlarge"],
        )
        .unwrap(),
    );
    let cmd = w.command();
    assert_eq!(cmd.method, Method::Drift);
    assert_eq!(cmd.replacements.len(), 3);
}

#[test]
fn drift_should_drift_one_non_empty_node_at_a_time_starting_with_the_earliest_drift() {
    let mut w = world();
    for i in 0..3 {
        w.node(
            &format!("node-{i}"),
            "m5.2xlarge",
            "on-demand",
            "default",
            &[(format!("pod-{i}"), "7")],
        );
    }
    drifted(&mut w, 0, 30);
    drifted(&mut w, 1, 10);
    drifted(&mut w, 2, 20);
    let cmd = w.command();
    assert_eq!(w.names(&cmd), vec!["node-1"]);
}

#[test]
fn drift_should_continue_to_the_next_drifted_node_if_the_first_cannot_reschedule_all_pods() {
    let mut w = world();
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("big", "7")],
    );
    w.node(
        "node-1",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("small", "1")],
    );
    drifted(&mut w, 0, 0);
    drifted(&mut w, 1, 5);
    // Nothing in the pool holds 7 cpu any more.
    w.problem.pools[0].requirements.add(
        "node.kubernetes.io/instance-type",
        Requirement::new(
            "node.kubernetes.io/instance-type",
            Operator::In,
            &["m5.large"],
        )
        .unwrap(),
    );
    let pass = w.pass();
    assert_eq!(w.names(pass.command.as_ref().unwrap()), vec!["node-1"]);
    assert!(
        w.reasons(&pass).iter().any(
            |(n, m)| n == "node-0" && m.starts_with("Not all pods would schedule, default/big")
        ),
        "{:?}",
        w.reasons(&pass)
    );
}

#[test]
fn budgets_should_only_consider_nodes_allowed_to_be_disrupted_because_of_budgets() {
    let mut w = World::new();
    let mut p = policy("default");
    p.budgets = vec![budget("0")];
    w.pool(p, &["on-demand"]);
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    drifted(&mut w, 0, 0);
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(pass.constrained_by_budgets);
}

// pkg/controllers/nodeclaim/disruption/drift_test.go

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn node_pool_static_drift_should_detect_drift_when_the_hashes_differ() {
    assert_eq!(
        drift(
            "123",
            Some(("456", HASH_VERSION)),
            &Requirements::default(),
            &labels(&[])
        ),
        Some(DriftReason::NodePoolDrifted)
    );
}

#[test]
fn node_pool_static_drift_should_not_return_drifted_if_karpenter_sh_nodepool_hash_annotation_is_not_present_on_the_node_claim()
 {
    assert_eq!(
        drift("123", None, &Requirements::default(), &labels(&[])),
        None
    );
}

#[test]
fn node_pool_static_drift_should_not_return_drifted_if_the_node_claims_karpenter_sh_nodepool_hash_version_annotation_does_not_match_the_node_pools()
 {
    assert_eq!(
        drift(
            "123",
            Some(("456", "v2")),
            &Requirements::default(),
            &labels(&[])
        ),
        None
    );
}

#[test]
fn node_requirement_drift_should_return_drifted_only_on_node_claims_that_are_drifted_from_an_updated_node_pool()
 {
    let mut pool = Requirements::default();
    pool.add(
        "karpenter.sh/capacity-type",
        Requirement::new("karpenter.sh/capacity-type", Operator::In, &["spot"]).unwrap(),
    );
    let spot = labels(&[("karpenter.sh/capacity-type", "spot")]);
    let od = labels(&[("karpenter.sh/capacity-type", "on-demand")]);
    assert_eq!(drift("1", Some(("1", HASH_VERSION)), &pool, &spot), None);
    assert_eq!(
        drift("1", Some(("1", HASH_VERSION)), &pool, &od),
        Some(DriftReason::RequirementsDrifted)
    );
    // A label the pool does not constrain never drifts.
    assert_eq!(
        drift(
            "1",
            Some(("1", HASH_VERSION)),
            &pool,
            &labels(&[("team", "a")])
        ),
        None
    );
}

#[test]
fn node_requirement_drift_should_detect_static_drift_before_requirement_drift() {
    let mut pool = Requirements::default();
    pool.add(
        "karpenter.sh/capacity-type",
        Requirement::new("karpenter.sh/capacity-type", Operator::In, &["spot"]).unwrap(),
    );
    assert_eq!(
        drift(
            "1",
            Some(("2", HASH_VERSION)),
            &pool,
            &labels(&[("karpenter.sh/capacity-type", "on-demand")])
        ),
        Some(DriftReason::NodePoolDrifted)
    );
}
