//! `why-kept`: every reason one node is not being disrupted, in plain
//! words — what blocks it (a do-not-disrupt pod, a PDB, ...), its pool's
//! policy, `consolidateAfter` not passed yet, a budget at zero (which one,
//! until when), a pod with nowhere to go (the solver's reason), or no
//! cheaper replacement (the cheapest candidate type and its price against
//! the node's) — or, for a node being disrupted, why and what replaces it.

use jiff::Timestamp;
use outrigger_scheduling::{model::LABEL_CAPACITY_TYPE, solver::simulate_removal};

use crate::{
    Pass, Policy, Reason, budget,
    candidate::candidate,
    consolidate::{self, Input, Method, node_price, price_under},
};

fn money(p: f64) -> String {
    format!("${p:.4}/h")
}

fn when(t: Timestamp, now: Timestamp) -> String {
    let secs = t.duration_since(now).as_secs().max(0);
    format!("{} (in {}s)", t.strftime("%Y-%m-%dT%H:%M:%SZ"), secs)
}

/// The reasons, one per line, for the node at `node` (an index into the
/// facts), given a pass over the same input.
pub fn why_kept(input: &Input, pass: &Pass, node: usize, now: Timestamp) -> Vec<String> {
    let f = &input.nodes[node];
    let mut out = vec![];
    if let Some(cmd) = pass
        .command
        .as_ref()
        .filter(|c| c.candidates.contains(&node))
    {
        out.push(format!(
            "it is being disrupted: {} ({}), with {} other node(s), saving {}",
            cmd.decision().as_str(),
            cmd.method.reason(),
            cmd.candidates.len() - 1,
            money(cmd.savings())
        ));
        for r in &cmd.replacements {
            let types: Vec<&str> = r
                .claim
                .instance_types
                .iter()
                .take(5)
                .map(|&t| input.problem.instance_types[t].name.as_str())
                .collect();
            out.push(format!(
                "its replacement: a {} node from {} ({})",
                r.claim
                    .requirements
                    .get(LABEL_CAPACITY_TYPE)
                    .and_then(|x| x.single())
                    .unwrap_or("any capacity type"),
                types.join(", "),
                money(r.price)
            ));
        }
        for (pod, to) in &cmd.moves {
            out.push(format!("pod {pod} goes to {to}"));
        }
        return out;
    }
    if f.claim.is_none() {
        return vec![
            "it is not Karpenter's (no NodeClaim): the provisioner never disrupts it".into(),
        ];
    }
    if let Some((_, b)) = pass.blocked.iter().find(|(i, _)| *i == node) {
        out.push(format!("blocked: {b}"));
    }
    let Some(pool) = f
        .pool
        .as_deref()
        .and_then(|p| input.pools.iter().position(|x| x.name == p))
    else {
        if out.is_empty() {
            out.push("its pool is not one the provisioner disrupts".into());
        }
        return out;
    };
    let policy = &input.pools[pool];
    let moving = f.pods.iter().filter(|p| p.reschedulable).count();
    match policy.consolidate_after {
        None => out.push(format!(
            "its pool {:?} has consolidateAfter: Never (consolidation off)",
            policy.name
        )),
        Some(after) => {
            if policy.policy == Policy::WhenEmpty && moving > 0 {
                out.push(format!(
                    "its pool {:?} consolidates only empty nodes (WhenEmpty) and {moving} pod(s) would have to move",
                    policy.name
                ));
            }
            if !f.consolidatable {
                let until = f
                    .consolidatable_at
                    .map(|t| format!(": until {}", when(t, now)))
                    .unwrap_or_default();
                out.push(format!(
                    "consolidateAfter ({}s) has not passed since a pod last arrived or left{until}",
                    after.as_secs()
                ));
            }
        }
    }
    let reason = if moving == 0 {
        Reason::Empty
    } else {
        Reason::Underutilized
    };
    let total = input
        .nodes
        .iter()
        .filter(|n| n.claim.is_some() && n.initialized && n.pool.as_deref() == Some(&policy.name))
        .count() as u32;
    let room = crate::budgets(input.nodes, input.pools, now, reason)
        .get(&policy.name)
        .copied()
        .unwrap_or(0);
    if room == 0 {
        match budget::blocking(&policy.budgets, now, total, reason) {
            Some((i, until)) => {
                let b = &policy.budgets[i];
                let window = match (&b.schedule, until) {
                    (Some(s), Some(t)) => format!(" (schedule {s:?}) until {}", when(t, now)),
                    (Some(s), None) => format!(" (schedule {s:?})"),
                    _ => String::new(),
                };
                out.push(format!(
                    "budget {} of pool {:?} (nodes: {:?}) allows no {reason} disruption{window}",
                    i + 1,
                    policy.name,
                    b.nodes
                ));
            }
            None => out.push(format!(
                "pool {:?}'s budgets are used up by nodes already being disrupted or not ready",
                policy.name
            )),
        }
    }
    // What consolidating it alone would take.
    if let Some(k) = f.problem_index
        && moving > 0
        && candidate(node, f, input.pools, false).is_ok()
    {
        let removal = simulate_removal(input.problem, &[k]);
        for u in &removal.plan.unplaced {
            out.push(format!(
                "pod {} has nowhere else to go: {}",
                removal.problem.pods[u.pod].key(),
                u.reason
            ));
        }
        match consolidate::compute(input, &[node], Method::SingleNode) {
            Ok(cmd) => out.push(format!(
                "it could be consolidated ({}, saving {}): another node went first, or the next pass takes it",
                cmd.decision().as_str(),
                money(cmd.savings())
            )),
            Err(why) if removal.plan.unplaced.is_empty() => {
                out.push(format!("consolidating it: {why}"));
                if let (Some(c), Some(price)) =
                    (removal.plan.claims.first(), node_price(input.problem, f))
                {
                    let cheapest = c.instance_types.iter().copied().min_by(|&a, &b| {
                        let pa = price_under(input.problem, a, &c.requirements).unwrap_or(f64::MAX);
                        let pb = price_under(input.problem, b, &c.requirements).unwrap_or(f64::MAX);
                        pa.total_cmp(&pb)
                    });
                    if let Some(t) = cheapest {
                        out.push(format!(
                            "the cheapest node for its pods is {} at {}; this {} node costs {}",
                            input.problem.instance_types[t].name,
                            money(price_under(input.problem, t, &c.requirements).unwrap_or(0.0)),
                            f.instance_type.as_deref().unwrap_or("?"),
                            money(price)
                        ));
                    }
                }
            }
            Err(_) => {}
        }
    }
    if out.is_empty() {
        out.push(if moving == 0 {
            "it is empty and may be disrupted: the next pass takes it".into()
        } else {
            "nothing keeps it: the next pass may consolidate it".into()
        });
    }
    out
}
