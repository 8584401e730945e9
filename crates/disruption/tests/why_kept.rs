//! `why-kept`'s reasons, over the same small clusters as the ported
//! consolidation cases.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use outrigger_disruption::{Budget, explain::why_kept};

fn why(w: &World, node: usize) -> Vec<String> {
    why_kept(&w.input(), &w.pass(), node, now())
}

#[test]
fn a_do_not_disrupt_pod_is_named() {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("db-0", "1")],
    );
    w.facts[0].pods[0].do_not_disrupt = true;
    w.facts[0].pods[0].evictable = false;
    let lines = why(&w, 0);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("karpenter.sh/do-not-disrupt") && l.contains("default/db-0")),
        "{lines:?}"
    );
}

#[test]
fn a_budget_at_zero_says_which_and_until_when() {
    let mut w = World::new();
    let mut p = policy("default");
    p.budgets = vec![Budget {
        nodes: "0".into(),
        reasons: vec![],
        // Every day from 09:00 for 8 hours; now() is 12:00.
        schedule: Some("0 9 * * *".into()),
        duration: Some(Duration::from_secs(8 * 3600)),
    }];
    w.pool(p, &[]);
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[] as &[(&str, &str)],
    );
    let lines = why(&w, 0);
    assert!(
        lines.iter().any(|l| l.starts_with("budget 1 of pool \"default\" (nodes: \"0\") allows no Empty disruption (schedule \"0 9 * * *\") until 2026-12-01T17:00:00Z")),
        "{lines:?}"
    );
}

#[test]
fn no_cheaper_replacement_compares_the_cheapest_type_with_the_node() {
    let mut w = World::new();
    w.pool(policy("default"), &["on-demand"]);
    // The pod needs most of the node: the cheapest node for it is the
    // node's own type.
    w.problem
        .instance_types
        .retain(|t| t.name == "m5.large" || t.name == "m5.xlarge");
    w.node(
        "node-0",
        "m5.large",
        "on-demand",
        "default",
        &[("big", "1500m")],
    );
    let lines = why(&w, 0);
    assert!(
        lines
            .iter()
            .any(|l| l == "consolidating it: Can't replace with a cheaper node"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("the cheapest node for its pods is m5.large at $0.0960/h; this m5.large node costs $0.0960/h")),
        "{lines:?}"
    );
}

#[test]
fn consolidate_after_not_passed_says_until_when() {
    let mut w = World::new();
    let mut p = policy("default");
    p.consolidate_after = Some(Duration::from_secs(300));
    w.pool(p, &[]);
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("web", "1")],
    );
    w.facts[0].consolidatable = false;
    w.facts[0].consolidatable_at = Some("2026-12-01T12:03:00Z".parse().unwrap());
    let lines = why(&w, 0);
    assert!(
        lines.iter().any(|l| l == "consolidateAfter (300s) has not passed since a pod last arrived or left: until 2026-12-01T12:03:00Z (in 180s)"),
        "{lines:?}"
    );
}

#[test]
fn a_node_being_disrupted_says_what_replaces_it() {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    w.node(
        "node-0",
        "r6i.16xlarge",
        "on-demand",
        "default",
        &[("web", "1")],
    );
    let lines = why(&w, 0);
    assert!(
        lines[0].starts_with("it is being disrupted: replace (Underutilized)"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("its replacement: a spot node from ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("pod default/web goes to new node")),
        "{lines:?}"
    );
}
