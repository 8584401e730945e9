//! Scale-up: for each node group, how many nodes of its template the
//! pending pods need (the shared solver, the group as a pool of identical
//! nodes, existing and upcoming nodes taken first), capped by the group's
//! maximum and the cluster's limits; and for each pod no group helps, each
//! group's reason (for `NotTriggerScaleUp`).

use std::collections::{BTreeMap, BTreeSet};

use outrigger_scheduling::{
    model::{Node, NodePool, Pod, Problem, Target},
    reduce::{Reduced, has_pod_terms},
    resources::Resources,
    solver::solve,
};

use crate::{
    group::{NodeGroup, Template},
    upstream::{IN_BACKOFF, MAX_GROUP_SIZE_REACHED, NOT_READY_FOR_SCALE_UP},
};

/// Cluster-wide limits (`--max-nodes-total`, `--cores-total`,
/// `--memory-total`); 0 is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_nodes: i64,
    pub max_cores: i64,
    /// GiB.
    pub max_memory_gib: i64,
}

/// What the cluster has now, upcoming nodes included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub nodes: i64,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
}

impl Totals {
    /// The cluster's totals as upstream counts them against `--cores-total`
    /// and `--memory-total`: each group's target size times its template's
    /// capacity (whole cores, rounded up; memory in bytes), plus `others`,
    /// the capacity of each node outside any group (and of the registered
    /// nodes of a group without a template). `nodes` is every node, and
    /// every node asked for that has not registered.
    pub fn of_groups<'a>(
        groups: &[NodeGroup],
        others: impl IntoIterator<Item = &'a Resources>,
        nodes: i64,
    ) -> Self {
        let mut t = Totals {
            nodes,
            ..Default::default()
        };
        for g in groups {
            if let Some(tpl) = &g.template
                && g.target > 0
            {
                let d = delta_for_node(tpl);
                t.cpu_millis += g.target * d.cores * 1000;
                t.memory_bytes += g.target * d.memory_bytes;
            }
        }
        for r in others {
            t.cpu_millis += cores(r.cpu_millis) * 1000;
            t.memory_bytes += r.memory_bytes.max(0);
        }
        t
    }
}

/// Whole cores, rounded up (a quantity's `Value()`).
fn cores(cpu_millis: i64) -> i64 {
    if cpu_millis <= 0 {
        0
    } else {
        (cpu_millis + 999) / 1000
    }
}

/// What one more node of a template adds to the cluster's totals: its
/// capacity's cores (rounded up) and memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub cores: i64,
    pub memory_bytes: i64,
}

pub fn delta_for_node(t: &Template) -> Delta {
    Delta {
        cores: cores(t.capacity.cpu_millis),
        memory_bytes: t.capacity.memory_bytes.max(0),
    }
}

/// What the cluster's cpu and memory limits leave (`None`: no limit);
/// nothing when the cluster is at or over a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Left {
    pub cores: Option<i64>,
    pub memory_bytes: Option<i64>,
}

pub fn resources_left(limits: &Limits, totals: &Totals) -> Left {
    let below = |max: i64, total: i64| (max > 0).then(|| (max - total).max(0));
    Left {
        cores: below(limits.max_cores, cores(totals.cpu_millis)),
        memory_bytes: below(
            limits.max_memory_gib.saturating_mul(1 << 30),
            totals.memory_bytes,
        ),
    }
}

/// `new_nodes` nodes of `delta` each, capped by what the limits leave.
pub fn apply_limits(new_nodes: i64, left: &Left, delta: &Delta) -> i64 {
    let mut n = new_nodes;
    for (left, per) in [
        (left.cores, delta.cores),
        (left.memory_bytes, delta.memory_bytes),
    ] {
        if let Some(left) = left
            && per > 0
            && n.saturating_mul(per) > left
        {
            n = left / per;
        }
    }
    n
}

/// The limits (`cpu`, `memory`, in that order) that `delta` exceeds.
pub fn exceeded(left: &Left, delta: &Delta) -> Vec<&'static str> {
    let mut out = vec![];
    for (name, left, d) in [
        ("cpu", left.cores, delta.cores),
        ("memory", left.memory_bytes, delta.memory_bytes),
    ] {
        if let Some(left) = left
            && d > 0
            && d > left
        {
            out.push(name);
        }
    }
    out
}

/// One way to scale up: `nodes` more nodes of `group` for `pods`.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Index into the groups.
    pub group: usize,
    pub nodes: i64,
    /// Indices into the pending pods.
    pub pods: Vec<usize>,
    /// Requests of those pods (daemonsets on the new nodes included).
    pub requests: Resources,
    /// Requests of those pods alone (what the least-waste and price
    /// expanders count).
    pub pod_requests: Resources,
    /// Allocatable of the new nodes.
    pub allocatable: Resources,
    /// Hourly price of the new nodes (0 when unknown).
    pub price: f64,
}

/// Everything a scale-up decision looks at.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// Pending pods (already filtered: old enough, above the priority
    /// cutoff).
    pub pods: &'a [Pod],
    /// Ready, schedulable nodes with their pods, and upcoming nodes (a
    /// group's target above its registered nodes) as `in_flight` template
    /// nodes.
    pub nodes: &'a [Node],
    pub groups: &'a [NodeGroup],
    /// Groups in backoff after a failed scale-up (indices).
    pub backoff: &'a BTreeSet<usize>,
    pub daemonsets: &'a [Pod],
    pub limits: Limits,
    pub totals: Totals,
}

/// The options, and what happens to every pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub options: Vec<Estimate>,
    /// Pods that fit existing or upcoming nodes: no scale-up for them.
    pub fits_existing: Vec<usize>,
    /// Pods no option helps: each group's reason.
    pub not_helped: BTreeMap<usize, Vec<(usize, String)>>,
}

/// How many more nodes of `g` its maximum and the cluster's limits allow,
/// and if none, why.
pub fn headroom(g: &NodeGroup, limits: &Limits, totals: &Totals) -> (i64, Option<&'static str>) {
    let Some(t) = &g.template else {
        return (0, Some(NOT_READY_FOR_SCALE_UP));
    };
    let n = g.headroom();
    if n == 0 {
        return (0, Some(MAX_GROUP_SIZE_REACHED));
    }
    let left = resources_left(limits, totals);
    let delta = delta_for_node(t);
    // A group one node of which is over a limit is left out, naming each
    // limit (upstream's `max cluster cpu, memory limit reached`).
    let over = exceeded(&left, &delta);
    match over.as_slice() {
        [] => {}
        ["cpu"] => return (0, Some("max cluster cpu limit reached")),
        ["memory"] => return (0, Some("max cluster memory limit reached")),
        _ => return (0, Some("max cluster cpu, memory limit reached")),
    }
    let mut n = apply_limits(n, &left, &delta);
    if limits.max_nodes > 0 {
        let room = (limits.max_nodes - totals.nodes).max(0);
        if room == 0 {
            return (0, Some("max total nodes in cluster reached"));
        }
        n = n.min(room);
    }
    (n, None)
}

/// The solver's pool for a group, limited to `n` more nodes.
fn pool(g: &NodeGroup, n: i64) -> Option<NodePool> {
    let t = g.template.as_ref()?;
    let mut limits = BTreeMap::new();
    // Limits are charged at a claim's capacity: n nodes' worth of cpu (or
    // pods, for a template without cpu) is n nodes.
    if t.capacity.cpu_millis > 0 {
        limits.insert("cpu".to_string(), t.capacity.cpu_millis * n);
    } else {
        limits.insert("pods".to_string(), t.capacity.pods.max(1) * n);
    }
    Some(NodePool {
        name: g.id.clone(),
        weight: 0,
        requirements: t.requirements(),
        labels: t.labels.clone(),
        taints: t.taints.clone(),
        limits,
        usage: Resources::default(),
        instance_types: Some(BTreeSet::from([0])),
    })
}

/// The estimates: each group on its own.
pub fn estimate(input: &Input<'_>) -> Plan {
    let mut plan = Plan::default();
    // Pods that existing and upcoming nodes take (the same whichever group
    // is tried: the solver fills them first).
    // Without pod terms among the pending pods, most pods on the nodes do
    // not matter and full nodes cannot take any: the same answers on
    // fewer, smaller nodes (`reduce`).
    let simple = !input.pods.iter().any(has_pod_terms);
    let base_nodes = if simple {
        Reduced::new(input.nodes)
            .for_pods(0..input.nodes.len(), input.pods)
            .0
    } else {
        input.nodes.to_vec()
    };
    let base = Problem {
        pods: input.pods.to_vec(),
        nodes: base_nodes,
        pools: vec![],
        instance_types: vec![],
        daemonsets: input.daemonsets.to_vec(),
    };
    let fits = solve(&base);
    let placed: BTreeSet<usize> = fits.placements.iter().map(|(p, _)| *p).collect();
    // The nodes with the pods they take: the groups are tried for the rest.
    let mut nodes = Reduced { nodes: base.nodes };
    for (p, t) in &fits.placements {
        if let Target::Node(n) = t {
            if simple {
                nodes.add(*n, input.pods[*p].clone());
            } else {
                nodes.nodes[*n].pods.push(input.pods[*p].clone());
            }
        }
    }
    plan.fits_existing = placed.iter().copied().collect();
    let left: Vec<usize> = (0..input.pods.len())
        .filter(|p| !placed.contains(p))
        .collect();
    if left.is_empty() {
        return plan;
    }
    let mut helped: BTreeSet<usize> = BTreeSet::new();
    let mut reasons: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
    for (gi, g) in input.groups.iter().enumerate() {
        if input.backoff.contains(&gi) {
            for p in &left {
                reasons
                    .entry(*p)
                    .or_default()
                    .push((gi, IN_BACKOFF.to_string()));
            }
            continue;
        }
        let (n, why) = headroom(g, &input.limits, &input.totals);
        let (Some(t), Some(pool)) = (g.template.as_ref(), pool(g, n)) else {
            for p in &left {
                reasons
                    .entry(*p)
                    .or_default()
                    .push((gi, why.unwrap_or(NOT_READY_FOR_SCALE_UP).to_string()));
            }
            continue;
        };
        let pods: Vec<Pod> = left.iter().map(|p| input.pods[*p].clone()).collect();
        let group_nodes = if simple {
            nodes.for_pods(0..nodes.nodes.len(), &pods).0
        } else {
            nodes.nodes.clone()
        };
        let problem = Problem {
            pods,
            nodes: group_nodes,
            pools: vec![pool],
            instance_types: vec![t.instance_type()],
            daemonsets: input.daemonsets.to_vec(),
        };
        let sol = solve(&problem);
        let mut pods = vec![];
        let mut requests = Resources::default();
        let mut pod_requests = Resources::default();
        for c in &sol.claims {
            requests.add(&c.requests);
        }
        for (p, target) in &sol.placements {
            if matches!(target, Target::Claim(_)) {
                pods.push(left[*p]);
                pod_requests.add(&input.pods[left[*p]].requests);
            }
        }
        for u in &sol.unplaced {
            let why = if !u.limited_by.is_empty() || n == 0 {
                why.unwrap_or(MAX_GROUP_SIZE_REACHED).to_string()
            } else {
                u.pool_reasons
                    .first()
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| u.reason.clone())
            };
            reasons.entry(left[u.pod]).or_default().push((gi, why));
        }
        if sol.claims.is_empty() {
            continue;
        }
        let nodes = sol.claims.len() as i64;
        let mut allocatable = Resources::default();
        for _ in 0..nodes {
            allocatable.add(&t.allocatable);
        }
        pods.sort_unstable();
        helped.extend(pods.iter().copied());
        plan.options.push(Estimate {
            group: gi,
            nodes,
            pods,
            requests,
            pod_requests,
            allocatable,
            price: t.price.unwrap_or(0.0) * nodes as f64,
        });
    }
    for p in left {
        if !helped.contains(&p) {
            plan.not_helped
                .insert(p, reasons.remove(&p).unwrap_or_default());
        }
    }
    plan
}

/// A `NotTriggerScaleUp` note's reasons: each distinct reason with how many
/// groups gave it, as upstream aggregates them (`1 max node group size
/// reached, 2 node(s) didn't match...`), the groups named.
pub fn reasons_text(reasons: &[(usize, String)], groups: &[NodeGroup]) -> String {
    let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (g, r) in reasons {
        by.entry(r.as_str())
            .or_default()
            .push(groups.get(*g).map_or("", |g| g.id.as_str()));
    }
    if by.is_empty() {
        return "no node group can be scaled up".to_string();
    }
    by.iter()
        .map(|(r, gs)| format!("{} {r} ({})", gs.len(), gs.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}
