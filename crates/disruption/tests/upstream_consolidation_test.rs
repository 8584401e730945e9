//! Karpenter v1.12.1's `pkg/controllers/disruption/consolidation_test.go`
//! (`Describe("Consolidation")`), the cases that are decisions, ported over
//! `outrigger_disruption::consolidation_pass` on the EKS catalogue. Each
//! test is named after its `Context` and `It` (a `DescribeTable` entry gets
//! its entry's words). Upstream builds a cluster in envtest and runs the
//! controller; here the same nodes, pods and pools go into the pass and
//! the command it returns is checked for what the cluster would show.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use outrigger_disruption::{
    Decision, Policy,
    consolidate::{Method, SPOT_TO_SPOT_MIN_TYPES},
};
use outrigger_scheduling::model::{LABEL_CAPACITY_TYPE, Offering};

/// The most expensive on-demand type of the catalogue, 64 vCPUs.
const BIG: &str = "r6i.16xlarge";

fn one_node(ct: &str) -> World {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    w.node("node-0", BIG, ct, "default", &[("pod-0", "1")]);
    w
}

// Context("Events")

#[test]
fn events_should_not_fire_an_event_for_consolidation_disabled_when_the_node_pool_has_consolidation_set_to_when_empty_or_underutilized()
 {
    let w = one_node("on-demand");
    let pass = w.pass();
    assert!(
        !w.reasons(&pass)
            .iter()
            .any(|(_, m)| m.contains("consolidation disabled")),
        "{:?}",
        w.reasons(&pass)
    );
}

#[test]
fn events_should_fire_an_event_for_consolidation_disabled_when_the_node_pool_has_consolidation_set_to_when_empty()
 {
    let mut w = one_node("on-demand");
    w.pools[0].policy = Policy::WhenEmpty;
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(w.reasons(&pass).contains(&(
        "node-0".into(),
        "NodePool \"default\" has non-empty consolidation disabled".into()
    )));
}

#[test]
fn events_should_fire_an_event_for_consolidation_disabled_when_the_node_pool_has_consolidate_after_set_to_never()
 {
    let mut w = one_node("on-demand");
    w.pools[0].consolidate_after = None;
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(w.reasons(&pass).contains(&(
        "node-0".into(),
        "NodePool \"default\" has consolidation disabled".into()
    )));
}

#[test]
fn events_should_fire_an_event_when_a_candidate_does_not_have_a_resolvable_instance_type() {
    let mut w = one_node("on-demand");
    w.facts[0].instance_type = None;
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(
        w.reasons(&pass)
            .contains(&("node-0".into(), "Instance Type \"\" not found".into()))
    );
}

#[test]
fn events_should_fire_an_event_when_a_candidate_does_not_have_the_capacity_type_label() {
    let mut w = one_node("on-demand");
    w.facts[0].capacity_type = None;
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(w.reasons(&pass).contains(&(
        "node-0".into(),
        "Node does not have label \"karpenter.sh/capacity-type\"".into()
    )));
}

#[test]
fn events_should_fire_an_event_when_a_candidate_does_not_have_the_zone_label() {
    let mut w = one_node("on-demand");
    w.facts[0].zone = None;
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(w.reasons(&pass).contains(&(
        "node-0".into(),
        "Node does not have label \"topology.kubernetes.io/zone\"".into()
    )));
}

// Context("Budgets"): ten nodes of the most expensive type.

fn ten_nodes(budget_nodes: &str, with_pods: bool) -> World {
    let mut w = World::new();
    let mut p = policy("default");
    p.budgets = vec![budget(budget_nodes)];
    w.pool(p, &[]);
    for i in 0..10 {
        let pods: Vec<(String, &str)> = if with_pods {
            vec![(format!("pod-{i}"), "100m")]
        } else {
            vec![]
        };
        w.node(&format!("node-{i}"), BIG, "on-demand", "default", &pods);
    }
    w
}

#[test]
fn budgets_should_only_allow_3_empty_nodes_to_be_disrupted() {
    let w = ten_nodes("30%", false);
    let cmd = w.command();
    assert_eq!(cmd.method, Method::Emptiness);
    assert_eq!(cmd.candidates.len(), 3);
}

#[test]
fn budgets_should_allow_all_empty_nodes_to_be_disrupted() {
    let w = ten_nodes("100%", false);
    assert_eq!(w.command().candidates.len(), 10);
}

#[test]
fn budgets_should_allow_no_empty_nodes_to_be_disrupted() {
    let w = ten_nodes("0%", false);
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(pass.constrained_by_budgets);
}

#[test]
fn budgets_should_only_allow_3_nodes_to_be_deleted_in_multi_node_consolidation_delete() {
    // The ten pods fit on one node: the best is to delete nine; the
    // budget lets three go.
    let w = ten_nodes("30%", true);
    let cmd = w.command();
    assert_eq!(cmd.method, Method::MultiNode);
    assert_eq!(cmd.decision(), Decision::Delete);
    assert_eq!(cmd.candidates.len(), 3);
}

#[test]
fn budgets_should_only_allow_3_nodes_to_be_deleted_in_single_node_consolidation_delete() {
    // Multi-node alone: one candidate per pass is single-node's.
    let w = ten_nodes("30%", true);
    let input = w.input();
    let mut candidates: Vec<_> = (0..w.facts.len())
        .map(|i| {
            outrigger_disruption::candidate::candidate(i, &w.facts[i], &w.pools, false).unwrap()
        })
        .collect();
    outrigger_disruption::candidate::sort(&mut candidates);
    let mut b = outrigger_disruption::budgets(
        &w.facts,
        &w.pools,
        now(),
        outrigger_disruption::Reason::Underutilized,
    );
    assert_eq!(b["default"], 3);
    let out = outrigger_disruption::consolidate::single_node(&input, &candidates, &mut b);
    let cmd = out.command.unwrap();
    assert_eq!(cmd.candidates.len(), 1);
    assert_eq!(cmd.decision(), Decision::Delete);
}

fn two_pools(budget_nodes: &str) -> World {
    let mut w = World::new();
    for name in ["pool-a", "pool-b"] {
        let mut p = policy(name);
        p.budgets = vec![budget(budget_nodes)];
        w.pool(p, &[]);
        for i in 0..5 {
            w.node(
                &format!("{name}-{i}"),
                BIG,
                "on-demand",
                name,
                &[] as &[(&str, &str)],
            );
        }
    }
    w
}

#[test]
fn budgets_should_allow_2_nodes_from_each_node_pool_to_be_deleted() {
    let w = two_pools("40%");
    let cmd = w.command();
    let names = w.names(&cmd);
    assert_eq!(names.iter().filter(|n| n.starts_with("pool-a")).count(), 2);
    assert_eq!(names.iter().filter(|n| n.starts_with("pool-b")).count(), 2);
}

#[test]
fn budgets_should_allow_all_nodes_from_each_node_pool_to_be_deleted() {
    let w = two_pools("100%");
    assert_eq!(w.command().candidates.len(), 10);
}

#[test]
fn budgets_should_allow_no_nodes_from_each_node_pool_to_be_deleted() {
    let w = two_pools("0%");
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(pass.constrained_by_budgets);
}

// Context("Replace")

#[test]
fn replace_can_replace_node_if_the_candidate_is_on_demand_node() {
    let w = one_node("on-demand");
    let cmd = w.command();
    assert_eq!(cmd.decision(), Decision::Replace);
    // Every type whose spot offerings all cost less than the node (the
    // node's own type as spot among them), cheapest first.
    let r = cmd.replacement().unwrap();
    let prices: Vec<f64> = r
        .claim
        .instance_types
        .iter()
        .map(|&t| {
            outrigger_disruption::consolidate::worst_launch_price(
                &w.problem,
                t,
                &r.claim.requirements,
            )
        })
        .collect();
    assert!(prices.iter().all(|p| *p < cmd.removed_price), "{prices:?}");
    assert!(r.price < cmd.removed_price / 10.0, "{}", r.price);
    // On-demand replaced where spot is allowed: pinned to spot.
    let r = cmd.replacement().unwrap();
    let ct = r.claim.requirements.get(LABEL_CAPACITY_TYPE).unwrap();
    assert!(ct.allows(Some("spot")) && !ct.allows(Some("on-demand")));
    assert!(cmd.savings() > 0.0);
}

#[test]
fn replace_can_replace_node_if_the_candidate_is_spot_node() {
    let w = one_node("spot");
    let cmd = w.command();
    assert_eq!(cmd.decision(), Decision::Replace);
    let types = w.replacement_types(&cmd);
    assert!(!types.contains(&BIG.to_string()));
    // The 15 cheapest, no more.
    assert_eq!(types.len(), SPOT_TO_SPOT_MIN_TYPES);
}

#[test]
fn replace_cannot_replace_spot_with_spot_if_less_than_minimum_instance_types_flexibility() {
    let mut w = one_node("spot");
    // Five types left, one of them cheaper than the node.
    w.problem.instance_types.retain(|t| {
        ["m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge", BIG].contains(&t.name.as_str())
    });
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(
        w.reasons(&pass).iter().any(|(_, m)| m
            == "SpotToSpotConsolidation requires 15 cheaper instance type options than the current candidate to consolidate, got 4"),
        "{:?}",
        w.reasons(&pass)
    );
}

#[test]
fn replace_cannot_replace_spot_with_spot_if_the_spot_to_spot_consolidation_is_disabled() {
    let mut w = one_node("spot");
    w.spot_to_spot = false;
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(w.reasons(&pass).iter().any(|(_, m)| m
        == "SpotToSpotConsolidation is disabled, can't replace a spot node with a spot node"));
}

#[test]
fn replace_cannot_replace_spot_with_spot_if_it_is_part_of_the_15_cheapest_instance_types() {
    // A node of the 5th cheapest type has fewer than 15 cheaper ones.
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    let mut by_price: Vec<(String, f64)> = w
        .problem
        .instance_types
        .iter()
        .map(|t| {
            let p = t
                .offerings
                .iter()
                .filter(|o| o.capacity_type == "spot")
                .map(|o| o.price)
                .fold(f64::MAX, f64::min);
            (t.name.clone(), p)
        })
        .collect();
    by_price.sort_by(|a, b| a.1.total_cmp(&b.1));
    let fifth = by_price[4].0.clone();
    w.node("node-0", &fifth, "spot", "default", &[("pod-0", "100m")]);
    let pass = w.pass();
    assert!(pass.command.is_none());
    assert!(
        w.reasons(&pass)
            .iter()
            .any(|(_, m)| m.starts_with("SpotToSpotConsolidation requires 15")),
        "{:?}",
        w.reasons(&pass)
    );
}

#[test]
fn replace_spot_to_spot_consolidation_should_order_the_instance_types_by_price_before_enforcing_minimum_flexibility()
 {
    let w = one_node("spot");
    let cmd = w.command();
    let r = cmd.replacement().unwrap();
    let prices: Vec<f64> = r
        .claim
        .instance_types
        .iter()
        .map(|&t| {
            outrigger_disruption::consolidate::price_under(&w.problem, t, &r.claim.requirements)
                .unwrap()
        })
        .collect();
    assert!(prices.windows(2).all(|p| p[0] <= p[1]), "{prices:?}");
    // And they are the 15 cheapest that fit the pod.
    let mut all: Vec<f64> = w
        .problem
        .instance_types
        .iter()
        .enumerate()
        .filter_map(|(t, _)| {
            outrigger_disruption::consolidate::price_under(&w.problem, t, &r.claim.requirements)
        })
        .collect();
    all.sort_by(f64::total_cmp);
    assert_eq!(prices, all[..15].to_vec());
}

/// A node of type `current` (offering in zone a at `price`, unavailable)
/// and one replacement type with `offerings`.
fn priced(current_ct: &str, price: f64, offerings: Vec<(&str, &str, f64)>) -> World {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    let mut current = w.ty("m5.large").clone();
    current.name = "current".into();
    current.offerings = vec![Offering {
        zone: ZONES[0].into(),
        capacity_type: current_ct.into(),
        price,
        available: false,
    }];
    let mut replacement = w.ty("m5.large").clone();
    replacement.name = "replacement".into();
    replacement.offerings = offerings
        .into_iter()
        .map(|(z, ct, p)| Offering {
            zone: z.into(),
            capacity_type: ct.into(),
            price: p,
            available: true,
        })
        .collect();
    w.problem.instance_types = vec![current, replacement];
    w.node(
        "node-0",
        "current",
        current_ct,
        "default",
        &[("pod-0", "100m")],
    );
    w
}

#[test]
fn replace_wont_replace_node_if_any_spot_replacement_is_more_expensive() {
    let w = priced(
        "on-demand",
        0.5,
        vec![
            (ZONES[0], "spot", 1.0),
            (ZONES[1], "spot", 0.2),
            (ZONES[2], "spot", 0.4),
        ],
    );
    let pass = w.pass();
    assert!(pass.command.is_none(), "{:?}", pass.command);
    assert!(
        w.reasons(&pass)
            .contains(&("node-0".into(), "Can't replace with a cheaper node".into()))
    );
}

#[test]
fn replace_wont_replace_on_demand_node_if_on_demand_replacement_is_more_expensive() {
    let w = priced(
        "on-demand",
        0.5,
        vec![
            (ZONES[0], "on-demand", 0.6),
            (ZONES[1], "on-demand", 0.6),
            (ZONES[2], "on-demand", 0.4),
        ],
    );
    assert!(w.pass().command.is_none());
}

// Context("Delete")

/// The least expensive offering of the catalogue (type, capacity type),
/// as the `Delete` context's nodes: nothing is cheaper.
fn least_expensive(w: &World) -> (String, String) {
    let mut best = (String::new(), String::new(), f64::MAX);
    for t in &w.problem.instance_types {
        for o in &t.offerings {
            if o.price < best.2 {
                best = (t.name.clone(), o.capacity_type.clone(), o.price);
            }
        }
    }
    (best.0, best.1)
}

fn two_nodes() -> World {
    // Two nodes of the least expensive offering; the second's pod fits on
    // the first.
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    let (t, ct) = least_expensive(&w);
    w.node(
        "node-0",
        &t,
        &ct,
        "default",
        &[("pod-0", "100m"), ("pod-1", "100m")],
    );
    w.node("node-1", &t, &ct, "default", &[("pod-2", "100m")]);
    w
}

#[test]
fn delete_can_delete_nodes() {
    let w = two_nodes();
    let cmd = w.command();
    assert_eq!(cmd.decision(), Decision::Delete);
    assert_eq!(w.names(&cmd), vec!["node-1"]);
    assert_eq!(
        cmd.moves,
        vec![("default/pod-2".to_string(), "node-0".to_string())]
    );
}

#[test]
fn delete_does_not_delete_nodes_with_pod_churn_deletes_nodes_without_pod_churn() {
    let mut w = two_nodes();
    // node-1's pods changed within consolidateAfter: node-0 goes, its pods
    // to node-1.
    w.facts[1].consolidatable = false;
    let cmd = w.command();
    assert_eq!(w.names(&cmd), vec!["node-0"]);
    assert_eq!(cmd.decision(), Decision::Delete);
}

#[test]
fn delete_can_delete_nodes_when_non_karpenter_capacity_can_fit_pods() {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    // A node that is not Karpenter's, with room.
    w.node(
        "unmanaged",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[] as &[(&str, &str)],
    );
    w.facts[1].claim = None;
    w.problem.nodes[1].pool = None;
    let cmd = w.command();
    assert_eq!(cmd.decision(), Decision::Delete);
    assert_eq!(w.names(&cmd), vec!["node-0"]);
}

#[test]
fn delete_can_delete_nodes_considers_pdb() {
    let mut w = two_nodes();
    w.facts[1].pods[0].pdbs = vec![("default/pdb".into(), false)];
    let pass = w.pass();
    assert_eq!(w.names(pass.command.as_ref().unwrap()), vec!["node-0"]);
    assert!(w.reasons(&pass).contains(&(
        "node-1".into(),
        "Pdb prevents pod evictions (PodDisruptionBudget=[default/pdb])".into()
    )));
}

#[test]
fn delete_can_delete_nodes_considers_karpenter_sh_do_not_disrupt_set_to_true_on_nodes() {
    let mut w = two_nodes();
    w.facts[1].do_not_disrupt = true;
    assert_eq!(w.names(&w.command()), vec!["node-0"]);
}

#[test]
fn delete_can_delete_nodes_considers_karpenter_sh_do_not_disrupt_set_to_true_on_pods() {
    let mut w = two_nodes();
    w.facts[1].pods[0].do_not_disrupt = true;
    w.facts[1].pods[0].evictable = false;
    let pass = w.pass();
    assert_eq!(w.names(pass.command.as_ref().unwrap()), vec!["node-0"]);
    assert!(w.reasons(&pass).contains(&(
        "node-1".into(),
        "Pod has \"karpenter.sh/do-not-disrupt\" annotation (Pod=default/pod-2)".into()
    )));
}

#[test]
fn delete_does_not_consolidate_nodes_with_karpenter_sh_do_not_disrupt_set_to_true_on_pods_when_the_node_pools_termination_grace_period_is_not_nil()
 {
    let mut w = two_nodes();
    w.facts[1].termination_grace_period = true;
    w.facts[1].pods[0].do_not_disrupt = true;
    w.facts[1].pods[0].evictable = false;
    // node-0 cannot go either (its two pods need node-1, which is blocked
    // and so not a destination it could leave): nothing at all.
    let pass = w.pass();
    assert!(
        pass.command
            .as_ref()
            .is_none_or(|c| !w.names(c).contains(&"node-1".to_string())),
        "{:?}",
        pass.command
    );
}

#[test]
fn delete_does_not_consolidate_nodes_with_pods_with_blocking_pdbs_when_the_node_pools_termination_grace_period_is_not_nil()
 {
    let mut w = two_nodes();
    w.facts[1].termination_grace_period = true;
    w.facts[1].pods[0].pdbs = vec![("default/pdb".into(), false)];
    let pass = w.pass();
    assert!(
        pass.command
            .as_ref()
            .is_none_or(|c| !w.names(c).contains(&"node-1".to_string()))
    );
}

#[test]
fn delete_wont_delete_node_if_it_would_require_pods_to_schedule_on_an_uninitialized_node() {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1")],
    );
    w.node(
        "uninitialized",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[] as &[(&str, &str)],
    );
    w.facts[1].initialized = false;
    let pass = w.pass();
    // A replacement instead, never a delete onto the uninitialized node.
    assert!(
        pass.command
            .as_ref()
            .is_none_or(|c| c.decision() == Decision::Replace),
        "{:?}",
        pass.command
    );
}

#[test]
fn delete_wont_delete_nodes_if_it_would_make_a_non_pending_pod_go_pending() {
    // Each pod takes most of its node: neither fits elsewhere, and a
    // cheaper node cannot hold one either (the pool allows only this type).
    let mut w = World::new();
    w.pool(policy("default"), &["on-demand"]);
    w.problem.instance_types.retain(|t| t.name == "m5.large");
    w.node(
        "node-0",
        "m5.large",
        "on-demand",
        "default",
        &[("pod-0", "1500m")],
    );
    w.node(
        "node-1",
        "m5.large",
        "on-demand",
        "default",
        &[("pod-1", "1500m")],
    );
    assert!(w.pass().command.is_none());
}

// Context("Multi-NodeClaim")

fn three_nodes(ct: &str) -> World {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    for i in 0..3 {
        w.node(
            &format!("node-{i}"),
            BIG,
            ct,
            "default",
            &[(format!("pod-{i}"), "1")],
        );
    }
    w
}

#[test]
fn multi_node_claim_can_merge_3_nodes_into_1_if_the_candidate_is_on_demand_node() {
    let w = three_nodes("on-demand");
    let cmd = w.command();
    assert_eq!(cmd.method, Method::MultiNode);
    assert_eq!(cmd.candidates.len(), 3);
    assert_eq!(cmd.decision(), Decision::Replace);
}

#[test]
fn multi_node_claim_can_merge_3_nodes_into_1_if_the_candidate_is_spot_node() {
    let w = three_nodes("spot");
    let cmd = w.command();
    assert_eq!(cmd.method, Method::MultiNode);
    assert_eq!(cmd.candidates.len(), 3);
    assert_eq!(cmd.decision(), Decision::Replace);
}

#[test]
fn multi_node_claim_can_merge_3_nodes_into_1_if_the_candidates_have_both_spot_and_on_demand() {
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    for (i, ct) in ["spot", "on-demand", "spot"].iter().enumerate() {
        w.node(
            &format!("node-{i}"),
            BIG,
            ct,
            "default",
            &[(format!("pod-{i}"), "1")],
        );
    }
    let cmd = w.command();
    assert_eq!(cmd.candidates.len(), 3);
    assert_eq!(cmd.decision(), Decision::Replace);
}

fn same_type(ct: &str) -> World {
    let mut w = World::new();
    w.pool(policy("default"), &[ct]);
    // The cheapest type, on two nodes: one pod, then two.
    let cheapest = w
        .problem
        .instance_types
        .iter()
        .min_by(|a, b| {
            let p = |t: &outrigger_scheduling::model::InstanceType| {
                t.offerings
                    .iter()
                    .filter(|o| o.capacity_type == ct)
                    .map(|o| o.price)
                    .fold(f64::MAX, f64::min)
            };
            p(a).total_cmp(&p(b))
        })
        .unwrap()
        .name
        .clone();
    w.node("node-0", &cheapest, ct, "default", &[("pod-0", "100m")]);
    w.node(
        "node-1",
        &cheapest,
        ct,
        "default",
        &[("pod-1", "100m"), ("pod-2", "100m")],
    );
    w
}

#[test]
fn multi_node_claim_wont_merge_2_nodes_into_1_of_the_same_type_if_the_candidate_is_on_demand_node()
{
    let w = same_type("on-demand");
    let cmd = w.command();
    // Deleting the node with fewer pods, not replacing both by a twin.
    assert_eq!(cmd.decision(), Decision::Delete);
    assert_eq!(w.names(&cmd), vec!["node-0"]);
}

#[test]
fn multi_node_claim_wont_merge_2_nodes_into_1_of_the_same_type_if_the_candidate_is_spot_node() {
    let w = same_type("spot");
    let cmd = w.command();
    assert_eq!(cmd.decision(), Decision::Delete);
    assert_eq!(w.names(&cmd), vec!["node-0"]);
}

// Context("Node Lifetime Consideration")

#[test]
fn node_lifetime_consideration_should_consider_node_lifetime_remaining_when_calculating_disruption_cost()
 {
    // Two pods on node-0, one on node-1; node-0 has little lifetime left,
    // so it is the cheaper to disrupt and goes.
    let mut w = World::new();
    w.pool(policy("default"), &[]);
    w.problem.instance_types.retain(|t| t.name == "m5.2xlarge");
    w.node(
        "node-0",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-0", "1"), ("pod-1", "1")],
    );
    w.node(
        "node-1",
        "m5.2xlarge",
        "on-demand",
        "default",
        &[("pod-2", "1")],
    );
    w.facts[0].lifetime_remaining = 0.01;
    let cmd = w.command();
    assert_eq!(w.names(&cmd)[0], "node-0");
}

// Context("Topology Consideration")

#[test]
fn topology_consideration_wont_delete_node_if_it_would_violate_pod_anti_affinity() {
    use outrigger_scheduling::model::{LABEL_HOSTNAME, LabelSelector, PodAffinityTerm};
    let mut w = World::new();
    w.pool(policy("default"), &["on-demand"]);
    w.problem.instance_types.retain(|t| t.name == "m5.large");
    for i in 0..3 {
        w.node(
            &format!("node-{i}"),
            "m5.large",
            "on-demand",
            "default",
            &[(format!("pod-{i}"), "100m")],
        );
        w.problem.nodes[i].pods[0]
            .anti_affinity
            .push(PodAffinityTerm {
                selector: LabelSelector::labels(&[("app", "test")]),
                namespaces: vec![],
                topology_key: LABEL_HOSTNAME.into(),
            });
    }
    // Each pod needs its own node, and no node type is cheaper.
    assert!(w.pass().command.is_none());
}
