//! Consolidation in Karpenter v1's order: empty nodes, then multi-node,
//! then single-node, each over the solver's removal simulation
//! (`simulate_removal`), with Karpenter's rules (`consolidation.go`,
//! `emptiness.go`, `multinodeconsolidation.go`,
//! `singlenodeconsolidation.go`):
//!
//! - every moved pod must find a place, and none on a node that is not
//!   initialized;
//! - at most one new node; a replacement must be cheaper than the nodes it
//!   replaces (its instance types are cut to the cheaper ones); replacing
//!   on-demand with a pool that allows spot pins the replacement to spot;
//!   spot to spot only with the feature on, and for one node only with at
//!   least 15 cheaper types (the 15 cheapest are launched);
//! - multi-node: the largest prefix of the candidates (cheapest to disrupt
//!   first, at most 100) found by binary search, a replacement not of a
//!   type being removed unless cheaper;
//! - single-node: the first candidate that can go;
//! - budgets: a pool's candidates beyond its budget are left out.
//!
//! Beyond Karpenter: a pool's least saving ([`MinSavings`]) refuses
//! consolidations that save less.

use std::collections::{BTreeMap, BTreeSet};

use outrigger_scheduling::{
    model::{LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_ZONE, NewClaim, Problem, Target},
    requirements::{Operator, Requirement, Requirements},
    solver::simulate_removal,
};

use crate::{
    Reason,
    candidate::{Candidate, MinSavings, NodeFacts, Policy, PoolPolicy},
};

/// Karpenter's `MinInstanceTypesForSpotToSpotConsolidation`.
pub const SPOT_TO_SPOT_MIN_TYPES: usize = 15;
/// At most this many candidates in one multi-node consolidation.
pub const MULTI_NODE_MAX: usize = 100;

/// The method that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Emptiness,
    Drift,
    MultiNode,
    SingleNode,
}

impl Method {
    pub fn reason(self) -> Reason {
        match self {
            Method::Emptiness => Reason::Empty,
            Method::Drift => Reason::Drifted,
            Method::MultiNode | Method::SingleNode => Reason::Underutilized,
        }
    }

    /// Karpenter's `consolidation_type` label.
    pub fn consolidation_type(self) -> &'static str {
        match self {
            Method::Emptiness => "empty",
            Method::Drift => "",
            Method::MultiNode => "multi",
            Method::SingleNode => "single",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Delete,
    Replace,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Delete => "delete",
            Decision::Replace => "replace",
        }
    }
}

/// The node that replaces the candidates.
#[derive(Clone, Debug)]
pub struct Replacement {
    /// As the solver opened it, its requirements narrowed (capacity type
    /// pinned to spot where Karpenter pins it) and its instance types cut
    /// to the cheaper ones, cheapest first.
    pub claim: NewClaim,
    /// Hourly price of its cheapest type under its requirements.
    pub price: f64,
}

/// One disruption decision.
#[derive(Clone, Debug)]
pub struct Command {
    pub method: Method,
    /// Indices into the facts.
    pub candidates: Vec<usize>,
    /// The nodes that replace them (at most one for consolidation; drift
    /// launches what the candidate's pods need).
    pub replacements: Vec<Replacement>,
    /// Hourly price of the candidates.
    pub removed_price: f64,
    /// Where each moved pod goes: (pod, node or new node).
    pub moves: Vec<(String, String)>,
}

impl Command {
    /// The one replacement of a consolidation.
    pub fn replacement(&self) -> Option<&Replacement> {
        self.replacements.first()
    }

    pub fn decision(&self) -> Decision {
        if !self.replacements.is_empty() {
            Decision::Replace
        } else {
            Decision::Delete
        }
    }

    pub fn savings(&self) -> f64 {
        self.removed_price - self.replacements.iter().map(|r| r.price).sum::<f64>()
    }
}

/// The state a decision is made on.
pub struct Input<'a> {
    pub problem: &'a Problem,
    pub nodes: &'a [NodeFacts],
    pub pools: &'a [PoolPolicy],
    /// The `SpotToSpotConsolidation` feature gate.
    pub spot_to_spot: bool,
}

/// What a method found: a command, or nothing, and why each node it
/// looked at was not consolidated (Karpenter's `Unconsolidatable` events).
#[derive(Debug, Default)]
pub struct Outcome {
    pub command: Option<Command>,
    pub unconsolidatable: Vec<(usize, String)>,
    /// A candidate was left out because its pool's budget allows no more.
    pub constrained_by_budgets: bool,
}

/// Remaining disruptions per pool (by name) for the method's reason.
pub type Budgets = BTreeMap<String, u32>;

/// Whether consolidation methods consider the candidate at all, and why
/// not (`consolidation.ShouldDisrupt`): its type, capacity type and zone
/// are known, its pool consolidates, under `WhenEmptyOrUnderutilized` for
/// non-empty nodes, and `consolidateAfter` has passed.
pub fn should_consolidate(input: &Input, c: &Candidate) -> Result<(), String> {
    let node = &input.nodes[c.node];
    let pool = &input.pools[c.pool];
    if instance_type(input.problem, node).is_none() {
        return Err(format!(
            "Instance Type {:?} not found",
            node.instance_type.clone().unwrap_or_default()
        ));
    }
    if node.capacity_type.is_none() {
        return Err(format!("Node does not have label {LABEL_CAPACITY_TYPE:?}"));
    }
    if node.zone.is_none() {
        return Err(format!("Node does not have label {LABEL_ZONE:?}"));
    }
    if pool.consolidate_after.is_none() {
        return Err(format!(
            "NodePool {:?} has consolidation disabled",
            pool.name
        ));
    }
    if pool.policy != Policy::WhenEmptyOrUnderutilized {
        return Err(format!(
            "NodePool {:?} has non-empty consolidation disabled",
            pool.name
        ));
    }
    if !node.consolidatable {
        return Err("Node is not consolidatable yet (consolidateAfter has not passed)".into());
    }
    Ok(())
}

/// Emptiness (`emptiness.go`): every consolidatable candidate without
/// pods to move, within its pool's budget, deleted at once.
pub fn emptiness(input: &Input, candidates: &[Candidate], budgets: &mut Budgets) -> Outcome {
    let mut out = Outcome::default();
    let mut chosen = vec![];
    for c in candidates {
        let pool = &input.pools[c.pool];
        let node = &input.nodes[c.node];
        if pool.consolidate_after.is_none() {
            out.unconsolidatable.push((
                c.node,
                format!("NodePool {:?} has consolidation disabled", pool.name),
            ));
            continue;
        }
        if c.reschedulable > 0 || !node.consolidatable {
            continue;
        }
        let left = budgets.entry(pool.name.clone()).or_insert(0);
        if *left == 0 {
            out.constrained_by_budgets = true;
            continue;
        }
        *left -= 1;
        chosen.push(c.node);
    }
    if !chosen.is_empty() {
        let removed_price = chosen
            .iter()
            .map(|&i| node_price(input.problem, &input.nodes[i]).unwrap_or(0.0))
            .sum();
        out.command = Some(Command {
            method: Method::Emptiness,
            candidates: chosen,
            replacements: vec![],
            removed_price,
            moves: vec![],
        });
    }
    out
}

/// Multi-node consolidation: the largest prefix of the candidates (within
/// budgets, with pods to move) that can go with at most one new node.
pub fn multi_node(input: &Input, candidates: &[Candidate], budgets: &mut Budgets) -> Outcome {
    let mut out = Outcome::default();
    let mut usable = vec![];
    for c in candidates {
        if should_consolidate(input, c).is_err() {
            continue;
        }
        let left = budgets.entry(input.pools[c.pool].name.clone()).or_insert(0);
        if *left == 0 {
            out.constrained_by_budgets = true;
            continue;
        }
        if c.reschedulable == 0 {
            continue;
        }
        usable.push(c.node);
        *left -= 1;
    }
    if usable.len() < 2 {
        return out;
    }
    let mut lo = 1;
    let mut hi = usable.len().min(MULTI_NODE_MAX) - 1;
    if usable.len() > MULTI_NODE_MAX {
        hi = MULTI_NODE_MAX;
    }
    let mut best: Option<Command> = None;
    while lo <= hi {
        let mid = (lo + hi) / 2;
        let set = &usable[..=mid.min(usable.len() - 1)];
        let valid = match compute(input, set, Method::MultiNode) {
            Ok(mut cmd) => match cmd.replacements.pop() {
                None => Some(cmd),
                Some(r) => filter_out_same_type(input, r, set).map(|r| {
                    cmd.replacements = vec![r];
                    cmd
                }),
            },
            Err(_) => None,
        };
        match valid {
            Some(cmd) => {
                best = Some(cmd);
                lo = mid + 1;
            }
            // mid >= lo >= 1
            None => hi = mid - 1,
        }
    }
    out.command = best;
    out
}

/// Single-node consolidation: the first candidate (cheapest to disrupt
/// first) that can go, deleted or replaced by one cheaper node.
pub fn single_node(input: &Input, candidates: &[Candidate], budgets: &mut Budgets) -> Outcome {
    let mut out = Outcome::default();
    for c in candidates {
        if let Err(why) = should_consolidate(input, c) {
            out.unconsolidatable.push((c.node, why));
            continue;
        }
        if budgets.get(&input.pools[c.pool].name).copied().unwrap_or(0) == 0 {
            out.constrained_by_budgets = true;
            continue;
        }
        if c.reschedulable == 0 {
            continue;
        }
        match compute(input, &[c.node], Method::SingleNode) {
            Ok(cmd) => {
                out.command = Some(cmd);
                return out;
            }
            Err(why) => out.unconsolidatable.push((c.node, why)),
        }
    }
    out
}

/// What removing `nodes` (indices into the facts) would take
/// (`computeConsolidation`): a delete, a replacement, or why neither.
pub fn compute(input: &Input, nodes: &[usize], method: Method) -> Result<Command, String> {
    let problem = input.problem;
    let mut indices = vec![];
    for &i in nodes {
        let Some(k) = input.nodes[i].problem_index else {
            return Err(format!(
                "Node {} is not in the simulation",
                input.nodes[i].name
            ));
        };
        indices.push(k);
    }
    let removal = simulate_removal(problem, &indices);
    if let Some(u) = removal.plan.unplaced.first() {
        let pod = removal.problem.pods[u.pod].key();
        return Err(format!(
            "Not all pods would schedule, {pod} => {}",
            u.reason
        ));
    }
    // Never on a node that is not initialized yet.
    let uninitialized: BTreeSet<&str> = input
        .nodes
        .iter()
        .filter(|n| !n.initialized)
        .map(|n| n.name.as_str())
        .collect();
    for (_, target) in &removal.plan.placements {
        if let Target::Node(n) = target {
            let node = &removal.problem.nodes[*n];
            if node.in_flight || uninitialized.contains(node.name.as_str()) {
                return Err(format!(
                    "Would schedule against uninitialized node/{}",
                    node.name
                ));
            }
        }
    }
    let moves = (0..removal.problem.pods.len())
        .map(|i| {
            (
                removal.problem.pods[i].key(),
                removal.destination(i).unwrap_or_default(),
            )
        })
        .collect();
    let mut removed_price = 0.0;
    let mut priced = true;
    for &i in nodes {
        match node_price(problem, &input.nodes[i]) {
            Some(p) => removed_price += p,
            None => priced = false,
        }
    }
    if !priced {
        // Karpenter prices such candidates at 0: nothing is cheaper.
        removed_price = 0.0;
    }
    let min_savings = min_savings(input, nodes);
    match removal.plan.claims.len() {
        0 => {
            let cmd = Command {
                method,
                candidates: nodes.to_vec(),
                replacements: vec![],
                removed_price,
                moves,
            };
            check_savings(min_savings, &cmd)?;
            return Ok(cmd);
        }
        1 => {}
        n => return Err(format!("Can't remove without creating {n} candidates")),
    }
    let mut claim = removal.plan.claims[0].clone();
    order_by_price(problem, &mut claim);
    let all_spot = nodes
        .iter()
        .all(|&i| input.nodes[i].capacity_type.as_deref() == Some("spot"));
    let allows = |ct: &str| {
        claim
            .requirements
            .get(LABEL_CAPACITY_TYPE)
            .is_none_or(|r| r.allows(Some(ct)))
    };
    let (allows_spot, allows_od) = (allows("spot"), allows("on-demand"));
    if all_spot && allows_spot {
        if !input.spot_to_spot {
            return Err(
                "SpotToSpotConsolidation is disabled, can't replace a spot node with a spot node"
                    .into(),
            );
        }
        pin_spot(&mut claim);
        claim
            .instance_types
            .retain(|&t| price_under(problem, t, &claim.requirements).is_some());
        cheaper_than(problem, &mut claim, removed_price)?;
        if nodes.len() == 1 {
            if claim.instance_types.len() < SPOT_TO_SPOT_MIN_TYPES {
                return Err(format!(
                    "SpotToSpotConsolidation requires {SPOT_TO_SPOT_MIN_TYPES} cheaper instance type options than the current candidate to consolidate, got {}",
                    claim.instance_types.len()
                ));
            }
            let keep = SPOT_TO_SPOT_MIN_TYPES.max(min_values(&claim.requirements));
            claim.instance_types.truncate(keep);
            restrict_types(problem, &mut claim);
        }
    } else {
        cheaper_than(problem, &mut claim, removed_price)?;
        if allows_spot && allows_od {
            pin_spot(&mut claim);
        }
    }
    let price = claim
        .instance_types
        .first()
        .and_then(|&t| price_under(problem, t, &claim.requirements))
        .unwrap_or(0.0);
    claim.price = price;
    let cmd = Command {
        method,
        candidates: nodes.to_vec(),
        replacements: vec![Replacement { claim, price }],
        removed_price,
        moves,
    };
    check_savings(min_savings, &cmd)?;
    Ok(cmd)
}

/// Re-checks a command after the validation wait (`validation.go`): the
/// same decision, and a replacement's types among those found now.
pub fn still_valid(before: &Command, now: Result<Command, String>) -> Result<Command, String> {
    let now = now?;
    if now.decision() != before.decision() {
        return Err(format!(
            "the decision changed from {} to {}",
            before.decision().as_str(),
            now.decision().as_str()
        ));
    }
    if let (Some(a), Some(b)) = (before.replacement(), now.replacement()) {
        let fresh: BTreeSet<usize> = b.claim.instance_types.iter().copied().collect();
        if !a.claim.instance_types.iter().all(|t| fresh.contains(t)) {
            return Err("the replacement's instance types changed".into());
        }
    }
    Ok(now)
}

fn min_savings(input: &Input, nodes: &[usize]) -> Option<MinSavings> {
    // The strictest setting among the candidates' pools.
    nodes
        .iter()
        .filter_map(|&i| {
            let pool = input.nodes[i].pool.as_deref()?;
            input.pools.iter().find(|p| p.name == pool)?.min_savings
        })
        .max_by(|a, b| {
            let key = |m: &MinSavings| match *m {
                MinSavings::PerHour(v) => (0, v),
                MinSavings::Ratio(r) => (1, r),
            };
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        })
}

fn check_savings(min: Option<MinSavings>, cmd: &Command) -> Result<(), String> {
    match min {
        Some(m) if !m.met(cmd.savings(), cmd.removed_price) => Err(format!(
            "Saving ${:.4}/h of ${:.4}/h is less than the pool's least saving ({m})",
            cmd.savings(),
            cmd.removed_price
        )),
        _ => Ok(()),
    }
}

/// Keeps the claim's types whose worst launch price is below `price`, as
/// `RemoveInstanceTypeOptionsByPriceAndMinValues`: whichever offering the
/// launch gets, the replacement is cheaper.
fn cheaper_than(problem: &Problem, claim: &mut NewClaim, price: f64) -> Result<(), String> {
    let req = claim.requirements.clone();
    claim
        .instance_types
        .retain(|&t| worst_launch_price(problem, t, &req) < price);
    let min = min_values(&claim.requirements);
    if min > 0 && claim.instance_types.len() < min {
        return Err(format!(
            "Filtering by price: minValues requirement is not met for {LABEL_INSTANCE_TYPE}"
        ));
    }
    if claim.instance_types.is_empty() {
        return Err("Can't replace with a cheaper node".into());
    }
    restrict_types(problem, claim);
    Ok(())
}

/// The claim's instance-type requirement follows its type list.
fn restrict_types(problem: &Problem, claim: &mut NewClaim) {
    let names: Vec<&str> = claim
        .instance_types
        .iter()
        .map(|&t| problem.instance_types[t].name.as_str())
        .collect();
    if let Ok(mut r) = Requirement::new(LABEL_INSTANCE_TYPE, Operator::In, &names) {
        r.min_values = claim
            .requirements
            .get(LABEL_INSTANCE_TYPE)
            .and_then(|x| x.min_values);
        claim.requirements.add(LABEL_INSTANCE_TYPE, r);
    }
}

fn pin_spot(claim: &mut NewClaim) {
    if let Ok(r) = Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, &["spot"]) {
        claim.requirements.add(LABEL_CAPACITY_TYPE, r);
    }
}

fn min_values(req: &Requirements) -> usize {
    req.get(LABEL_INSTANCE_TYPE)
        .and_then(|r| r.min_values)
        .unwrap_or(0)
}

pub(crate) fn order_by_price(problem: &Problem, claim: &mut NewClaim) {
    let req = claim.requirements.clone();
    claim.instance_types.sort_by(|&a, &b| {
        let pa = price_under(problem, a, &req).unwrap_or(f64::MAX);
        let pb = price_under(problem, b, &req).unwrap_or(f64::MAX);
        pa.total_cmp(&pb).then(a.cmp(&b))
    });
}

/// A multi-node replacement of a type being removed is kept only if
/// cheaper than the cheapest such node (`filterOutSameInstanceType`).
fn filter_out_same_type(input: &Input, mut r: Replacement, set: &[usize]) -> Option<Replacement> {
    let problem = input.problem;
    let mut existing: BTreeMap<&str, f64> = BTreeMap::new();
    for &i in set {
        let n = &input.nodes[i];
        if let (Some(t), Some(p)) = (n.instance_type.as_deref(), node_price(problem, n)) {
            let e = existing.entry(t).or_insert(f64::MAX);
            *e = e.min(p);
        }
    }
    let mut max_price = f64::MAX;
    for &t in &r.claim.instance_types {
        if let Some(p) = existing.get(problem.instance_types[t].name.as_str()) {
            max_price = max_price.min(*p);
        }
    }
    cheaper_than(problem, &mut r.claim, max_price).ok()?;
    r.price = r
        .claim
        .instance_types
        .first()
        .and_then(|&t| price_under(problem, t, &r.claim.requirements))
        .unwrap_or(0.0);
    r.claim.price = r.price;
    Some(r)
}

/// Karpenter's `WorstLaunchPrice`: the dearest available offering the
/// requirements allow, in the first capacity type that has one (reserved,
/// then spot, then on-demand: the order a launch prefers them).
pub fn worst_launch_price(problem: &Problem, t: usize, req: &Requirements) -> f64 {
    let allows = |k: &str, v: &str| req.get(k).is_none_or(|r| r.allows(Some(v)));
    for ct in ["reserved", "spot", "on-demand"] {
        let worst = problem.instance_types[t]
            .offerings
            .iter()
            .filter(|o| {
                o.available
                    && o.capacity_type == ct
                    && allows(LABEL_ZONE, &o.zone)
                    && allows(LABEL_CAPACITY_TYPE, &o.capacity_type)
            })
            .map(|o| o.price)
            .max_by(f64::total_cmp);
        if let Some(p) = worst {
            return p;
        }
    }
    f64::MAX
}

/// The cheapest available offering of type `t` its requirements allow.
pub fn price_under(problem: &Problem, t: usize, req: &Requirements) -> Option<f64> {
    let allows = |k: &str, v: &str| req.get(k).is_none_or(|r| r.allows(Some(v)));
    problem.instance_types[t]
        .offerings
        .iter()
        .filter(|o| {
            o.available
                && allows(LABEL_ZONE, &o.zone)
                && allows(LABEL_CAPACITY_TYPE, &o.capacity_type)
        })
        .map(|o| o.price)
        .min_by(f64::total_cmp)
}

fn instance_type(problem: &Problem, node: &NodeFacts) -> Option<usize> {
    let name = node.instance_type.as_deref()?;
    problem.instance_types.iter().position(|t| t.name == name)
}

/// What a node costs: its type's offering in its zone and capacity type
/// (available or not: the node exists), `None` when unknown.
pub fn node_price(problem: &Problem, node: &NodeFacts) -> Option<f64> {
    let t = &problem.instance_types[instance_type(problem, node)?];
    t.offerings
        .iter()
        .filter(|o| {
            Some(o.zone.as_str()) == node.zone.as_deref()
                && Some(o.capacity_type.as_str()) == node.capacity_type.as_deref()
        })
        .map(|o| o.price)
        .min_by(f64::total_cmp)
}
