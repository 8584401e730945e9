//! Property tests of the solver against the independent validator
//! (`validate`, written separately from the solver): no plan breaks a
//! constraint, capacity and limits hold, every pod is accounted for, and the
//! same input gives the same plan.

use proptest::prelude::*;

use crate::{
    model::{Plan, Problem},
    solver::solve,
    testgen::{arb_problem, seeded_problem},
    validate::validate,
};

fn check(p: &Problem, plan: &Plan) -> Result<(), TestCaseError> {
    let v = validate(p, plan);
    prop_assert!(
        v.is_empty(),
        "{} violation(s):\n{}\nplan: {}",
        v.len(),
        v.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        summary(p, plan)
    );
    for u in &plan.unplaced {
        prop_assert!(!u.reason.is_empty());
    }
    Ok(())
}

/// The plan in a few lines, for failure messages.
fn summary(p: &Problem, plan: &Plan) -> String {
    let mut out = String::new();
    for (pod, t) in &plan.placements {
        out.push_str(&format!("\n  {} -> {t:?}", p.pods[*pod].key()));
    }
    for (i, c) in plan.claims.iter().enumerate() {
        let reqs: Vec<String> = c
            .requirements
            .0
            .iter()
            .map(|(k, r)| format!("{k} {r}"))
            .collect();
        out.push_str(&format!(
            "\n  claim {i}: pool {} types {:?} reqs [{}]",
            p.pools[c.pool].name,
            c.instance_types
                .iter()
                .map(|t| p.instance_types[*t].name.as_str())
                .collect::<Vec<_>>(),
            reqs.join("; ")
        ));
    }
    for u in &plan.unplaced {
        out.push_str(&format!(
            "\n  {} unplaced: {}",
            p.pods[u.pod].key(),
            u.reason
        ));
    }
    for (pod, r) in &plan.relaxed {
        out.push_str(&format!("\n  {} relaxed {r}", p.pods[*pod].key()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    })]

    #[test]
    fn plans_are_valid(p in arb_problem()) {
        let plan = solve(&p);
        check(&p, &plan)?;
    }

    #[test]
    fn plans_are_deterministic(p in arb_problem()) {
        prop_assert_eq!(solve(&p), solve(&p));
    }

    /// Pods without pod terms go where they would go on the full nodes,
    /// and the same claims open, on the reduced nodes.
    #[test]
    fn reduced_nodes_give_the_same_plan(mut p in arb_problem()) {
        for pod in &mut p.pods {
            pod.affinity.clear();
            pod.preferred_affinity.clear();
            pod.anti_affinity.clear();
            pod.preferred_anti_affinity.clear();
            pod.spread.clear();
        }
        let full = solve(&p);
        let r = crate::reduce::Reduced::new(&p.nodes);
        let (nodes, index) = r.for_pods(0..p.nodes.len(), &p.pods);
        let small = Problem { nodes, ..p.clone() };
        let plan = solve(&small);
        let mapped: Vec<(usize, crate::model::Target)> = plan
            .placements
            .iter()
            .map(|(pod, t)| match t {
                crate::model::Target::Node(n) => (*pod, crate::model::Target::Node(index[*n])),
                t => (*pod, *t),
            })
            .collect();
        prop_assert_eq!(mapped, full.placements);
        prop_assert_eq!(plan.claims, full.claims);
    }
}

/// Larger random problems than proptest's, from fixed seeds.
#[test]
fn seeded_plans_are_valid() {
    for seed in 0..40 {
        let p = seeded_problem(seed, 150);
        let plan = solve(&p);
        let v = validate(&p, &plan);
        assert!(
            v.is_empty(),
            "seed {seed}: {}",
            v.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
