//! Karpenter's disruption decisions, without I/O.
//!
//! The provisioner's disruption controller gathers facts (pools' policies
//! and budgets, each node with its claim and pods, the solver's problem)
//! and asks this crate, in Karpenter v1's order, what to do next:
//!
//! - [`budget`]: `spec.disruption.budgets` — how many of a pool's nodes may
//!   be disrupted at once for a reason, with cron windows;
//! - [`candidate`]: which nodes may be disrupted at all, and for those that
//!   may not, why (do-not-disrupt, a PDB, not initialized, ...), with
//!   Karpenter's disruption cost to order them;
//! - [`consolidate`]: empty nodes, then multi-node, then single-node
//!   consolidation over `outrigger_scheduling::simulate_removal`, with
//!   Karpenter's price rules (a replacement must be cheaper; on-demand to
//!   spot; spot to spot only with enough cheaper types) and, beyond
//!   Karpenter, a pool's least saving worth a disruption;
//! - [`drift`]: a claim whose pool changed (template hash, requirements)
//!   and the drift method that replaces it;
//! - [`expire`]: when `expireAfter` runs out;
//! - [`explain`]: `why-kept`'s reasons for one node;
//! - [`interruption`]: the EventBridge messages of an interruption queue
//!   (spot warnings, state changes, scheduled changes, rebalance
//!   recommendations) and what each asks for.
//!
//! Times are passed in (`jiff::Timestamp`), never read from a clock.

pub mod budget;
pub mod candidate;
pub mod consolidate;
pub mod drift;
pub mod expire;
pub mod explain;
pub mod interruption;

pub use budget::{Budget, BudgetError, Reason};
pub use candidate::{Blocked, Candidate, NodeFacts, PodFacts, Policy, PoolPolicy};
pub use consolidate::{Command, Decision, Method, Replacement};

use consolidate::{Budgets, Input, Outcome};
use jiff::Timestamp;

/// Each pool's room for disruptions for `reason` now
/// (`BuildDisruptionBudgetMapping`): its budgets over its initialized
/// nodes, less those being disrupted or not ready.
pub fn budgets(
    nodes: &[NodeFacts],
    pools: &[PoolPolicy],
    now: Timestamp,
    reason: Reason,
) -> Budgets {
    let mut out = Budgets::new();
    for p in pools {
        let mine = nodes
            .iter()
            .filter(|n| n.claim.is_some() && n.initialized && n.pool.as_deref() == Some(&p.name));
        let (mut total, mut busy) = (0u32, 0u32);
        for n in mine {
            total += 1;
            if n.marked_for_deletion || !n.ready {
                busy += 1;
            }
        }
        out.insert(
            p.name.clone(),
            budget::allowed_now(&p.budgets, now, total, busy, reason),
        );
    }
    out
}

/// What a disruption pass finds, method by method.
#[derive(Debug, Default)]
pub struct Pass {
    /// The first method's command, if any.
    pub command: Option<Command>,
    /// Nodes that may not be disrupted at all, and why.
    pub blocked: Vec<(usize, Blocked)>,
    /// Candidates a consolidation method looked at and left, and why.
    pub unconsolidatable: Vec<(usize, String)>,
    /// Some candidate was held back by a budget.
    pub constrained_by_budgets: bool,
}

/// One disruption pass over the methods in Karpenter v1's order: empty
/// nodes, drift, multi-node, single-node. Candidates are taken cheapest to
/// disrupt first; each method gets fresh budgets.
pub fn consolidation_pass(input: &Input, now: Timestamp) -> Pass {
    let mut pass = Pass::default();
    let mut candidates = vec![];
    for (i, n) in input.nodes.iter().enumerate() {
        if n.claim.is_none() {
            continue;
        }
        match candidate::candidate(i, n, input.pools, false) {
            Ok(c) => candidates.push(c),
            Err(b) => pass.blocked.push((i, b)),
        }
    }
    candidate::sort(&mut candidates);
    let take = |o: Outcome, pass: &mut Pass| {
        pass.constrained_by_budgets |= o.constrained_by_budgets;
        pass.unconsolidatable.extend(o.unconsolidatable);
        o.command
    };
    let mut b = budgets(input.nodes, input.pools, now, Reason::Empty);
    if let Some(c) = take(
        consolidate::emptiness(input, &candidates, &mut b),
        &mut pass,
    ) {
        pass.command = Some(c);
        return pass;
    }
    let mut b = budgets(input.nodes, input.pools, now, Reason::Drifted);
    if let Some(c) = take(drift::drift_method(input, &mut b), &mut pass) {
        pass.command = Some(c);
        return pass;
    }
    let mut b = budgets(input.nodes, input.pools, now, Reason::Underutilized);
    if let Some(c) = take(
        consolidate::multi_node(input, &candidates, &mut b.clone()),
        &mut pass,
    ) {
        pass.command = Some(c);
        return pass;
    }
    // Reasons found by multi-node are found again by single-node.
    pass.unconsolidatable.clear();
    pass.command = take(
        consolidate::single_node(input, &candidates, &mut b),
        &mut pass,
    );
    pass
}
