//! The solver: where each pending pod goes, and which nodes to launch.
//!
//! Pods are taken largest first (cpu, then memory, then input order). Each
//! goes to the first place that takes it: initialized existing nodes, then
//! in-flight claims, then the claims opened so far in this solve (in the
//! order they were opened), then a new claim from the first node pool (by
//! weight) that can hold it. A claim keeps every instance type that still
//! fits its pods, so it can grow into a bigger type; at the end its types
//! are listed cheapest first. A pool's limits are charged at the largest
//! capacity among a claim's candidate types (the provider may launch any
//! of them), and the charge shrinks as the candidates do.
//!
//! Preferences (preferred node affinity, preferred pod (anti-)affinity,
//! ScheduleAnyway spread, PreferNoSchedule taints) are first enforced as if
//! required; a pod that fits nowhere gives up its lowest-weight preference
//! and is queued again. The loop ends when a whole round of the queue makes
//! no progress. Every pod left gets a reason naming the failed constraint.
//!
//! Topology: a claim is its own `kubernetes.io/hostname` domain; for any
//! other key (zone, capacity type) a claim that holds a pod constrained by,
//! or counted in, a topology term on that key is pinned to one value, so
//! every count is exact. For spread on the hostname key the minimum count is
//! taken as 0 (a new node can always be the emptiest domain), for other keys
//! it is the minimum over every value the pod could reach (existing nodes it
//! matches, and every zone any pool's instance types offer it). Both are at
//! most the minimum kube-scheduler will see, so the plan is never looser
//! than the real scheduler.
//!
//! The cost is dominated by one pass over the claims per pod, with checks
//! that are array lookups: requirements are interned and their
//! intersections cached, instance-type sets are bitsets, resources are
//! small integer vectors. Nothing here does I/O.
//!
//! Layout: the solver's state, setup, main loop and output here; resource
//! vectors in `dims`, instance-type bitsets in `typeset`, interned
//! requirements in `interner`, node/pool/claim state in `state`;
//! `Solver`'s methods by what they do in `compat` (requirements and
//! instance types), `topology`, `relax` (preferences), `place` and
//! `claims` (placing a pod), `explain` (unplaced pods); `consolidation`
//! for [`simulate_removal`].

mod claims;
mod compat;
mod consolidation;
mod dims;
mod explain;
mod interner;
mod place;
mod relax;
mod state;
mod topology;
mod typeset;

use std::{
    collections::{BTreeSet, VecDeque},
    fmt::Write as _,
};

use hashbrown::{HashMap, HashSet};

use crate::{
    model::{
        LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE, Labels, NewClaim, Plan,
        Pod, PodAffinityTerm, Problem, Target, Unplaced, untolerated,
    },
    requirements::Requirements,
};

pub use consolidation::{Removal, simulate_removal};
use dims::{Dims, add_to};
use interner::{Interner, in_req, labels_req};
use relax::{Eff, PodState, Pref};
use state::{Claim, NodeState, PoolState};
use topology::{Counter, Dom, dom_of_node};
use typeset::TypeSet;

// --- the solver --------------------------------------------------------------

/// Available offerings per instance type as bitmasks: `masks[t][ct]` has
/// bit `z` set if type `t` is available in zone `zones[z]` as capacity type
/// `cts[ct]` (names sorted, at most 64 capacity types).
struct Offers {
    zones: Vec<String>,
    cts: Vec<String>,
    masks: Vec<Vec<u64>>,
}

impl Offers {
    fn new(p: &Problem) -> Self {
        let mut zones = BTreeSet::new();
        let mut cts = BTreeSet::new();
        for t in &p.instance_types {
            for o in t.offerings.iter().filter(|o| o.available) {
                zones.insert(o.zone.clone());
                cts.insert(o.capacity_type.clone());
            }
        }
        let zones: Vec<String> = zones.into_iter().collect();
        let cts: Vec<String> = cts.into_iter().take(64).collect();
        let masks = p
            .instance_types
            .iter()
            .map(|t| {
                let mut m = vec![0u64; cts.len()];
                for o in t.offerings.iter().filter(|o| o.available) {
                    if let (Some(ct), Some(z)) = (
                        cts.iter().position(|c| *c == o.capacity_type),
                        zones.iter().position(|z| *z == o.zone),
                    ) && z < 64
                    {
                        m[ct] |= 1 << z;
                    }
                }
                m
            })
            .collect();
        Self { zones, cts, masks }
    }
}

struct Solver<'p> {
    p: &'p Problem,
    options: Options,
    offers: Offers,
    dims: Dims,
    reqs: Interner,
    compat: HashMap<(u32, u32), Option<u32>>,
    type_ok: HashMap<u32, TypeSet>,
    node_match: HashMap<(u32, usize), bool>,
    universe_cache: HashMap<(Vec<u32>, String), Vec<String>>,
    alloc: Vec<Vec<i64>>,
    /// `alloc`, flat (type-major), for the hot fit loop.
    alloc_flat: Vec<i64>,
    /// Per dimension, the types by allocatable, smallest first.
    by_dim: Vec<Vec<u32>>,
    /// Per dimension, the types by capacity, smallest first.
    by_cap: Vec<Vec<u32>>,
    /// The types by cheapest offering, then index.
    by_price: Vec<u32>,
    cap: Vec<Vec<i64>>,
    type_labels: Vec<Labels>,
    type_keys: HashSet<String>,
    well_known: HashSet<String>,
    pools: Vec<PoolState>,
    pool_order: Vec<usize>,
    nodes: Vec<NodeState>,
    node_order: Vec<usize>,
    claims: Vec<Claim>,
    open: Vec<usize>,
    counters: Vec<Counter>,
    counter_ids: HashMap<(String, Vec<String>, crate::model::LabelSelector, Vec<u32>), u32>,
    /// Topology keys, interned.
    keys: Vec<String>,
    host_key: Option<u32>,
    pods: Vec<PodState>,
    min_req: Vec<i64>,
    placements: Vec<(usize, Target)>,
    relaxed: Vec<(usize, String)>,
}

/// How the solver packs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Plain first-fit-decreasing, for comparison: a new claim is fixed at
    /// the cheapest instance type that fits its first pod instead of
    /// keeping every type that fits (so it never grows into a bigger one).
    pub fixed_bins: bool,
}

/// Solves a problem: every pod it can place, the claims to launch, and why
/// the rest cannot go anywhere. Same input, same output.
pub fn solve(problem: &Problem) -> Plan {
    solve_with(problem, &Options::default())
}

pub fn solve_with(problem: &Problem, options: &Options) -> Plan {
    let mut s = Solver::new(problem);
    s.options = options.clone();
    s.run();
    s.finish()
}

impl<'p> Solver<'p> {
    fn new(p: &'p Problem) -> Self {
        let dims = Dims::new(p);
        let alloc: Vec<Vec<i64>> = p
            .instance_types
            .iter()
            .map(|t| dims.vec(&t.allocatable()))
            .collect();
        let cap: Vec<Vec<i64>> = p
            .instance_types
            .iter()
            .map(|t| dims.vec(&t.capacity))
            .collect();
        let type_labels: Vec<Labels> = p
            .instance_types
            .iter()
            .map(|t| t.requirements.single_values())
            .collect();
        let type_keys: HashSet<String> = p
            .instance_types
            .iter()
            .flat_map(|t| t.requirements.0.keys().cloned())
            .collect();
        let mut well_known = type_keys.clone();
        for k in [
            LABEL_ZONE,
            LABEL_CAPACITY_TYPE,
            LABEL_NODEPOOL,
            LABEL_HOSTNAME,
        ] {
            well_known.insert(k.to_string());
        }
        let type_price: Vec<f64> = p
            .instance_types
            .iter()
            .map(|t| {
                t.offerings
                    .iter()
                    .filter(|o| o.available)
                    .map(|o| o.price)
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let alloc_flat = alloc.iter().flat_map(|a| a.iter().copied()).collect();
        let by_dim = (0..dims.len())
            .map(|k| {
                let mut order: Vec<u32> = (0..alloc.len() as u32).collect();
                order.sort_by_key(|t| (alloc[*t as usize][k], *t));
                order
            })
            .collect();
        let by_cap = (0..dims.len())
            .map(|k| {
                let mut order: Vec<u32> = (0..cap.len() as u32).collect();
                order.sort_by_key(|t| (cap[*t as usize][k], *t));
                order
            })
            .collect();
        let mut by_price: Vec<u32> = (0..alloc.len() as u32).collect();
        by_price.sort_by(|a, b| {
            type_price[*a as usize]
                .total_cmp(&type_price[*b as usize])
                .then(a.cmp(b))
        });
        let mut s = Solver {
            p,
            options: Options::default(),
            alloc_flat,
            by_dim,
            by_cap,
            by_price,
            offers: Offers::new(p),
            dims,
            reqs: Interner::default(),
            compat: HashMap::new(),
            type_ok: HashMap::new(),
            node_match: HashMap::new(),
            universe_cache: HashMap::new(),
            alloc,
            cap,
            type_labels,
            type_keys,
            well_known,
            pools: vec![],
            pool_order: vec![],
            nodes: vec![],
            node_order: vec![],
            claims: vec![],
            open: vec![],
            counters: vec![],
            counter_ids: HashMap::new(),
            keys: vec![],
            host_key: None,
            pods: vec![],
            min_req: vec![],
            placements: vec![],
            relaxed: vec![],
        };
        s.init_pools();
        s.init_nodes();
        s.init_pods();
        s.host_key = s
            .keys
            .iter()
            .position(|k| k == LABEL_HOSTNAME)
            .map(|k| k as u32);
        s
    }

    fn init_pools(&mut self) {
        let p = self.p;
        for pool in &p.pools {
            let mut base = pool.requirements.clone();
            for (k, v) in &pool.labels {
                base.add(k, in_req(k, v));
            }
            base.add(LABEL_NODEPOOL, in_req(LABEL_NODEPOOL, &pool.name));
            let base_id = self.reqs.intern(base);
            let mut types = self.type_ok(base_id);
            if let Some(allowed) = &pool.instance_types {
                types.retain(|t| allowed.contains(&t));
            }
            let mut overhead = vec![0; self.dims.len()];
            let mut daemonsets = vec![];
            let mut ports = vec![];
            for (i, ds) in p.daemonsets.iter().enumerate() {
                if untolerated(&pool.taints, &ds.tolerations, false).is_some() {
                    continue;
                }
                let terms = node_terms(ds);
                let base_r = self.reqs.get(base_id);
                if !terms.iter().any(|t| base_r.compatible(t).is_ok()) {
                    continue;
                }
                add_to(&mut overhead, &self.dims.vec(&ds.requests));
                ports.extend(ds.host_ports.iter().cloned());
                daemonsets.push(i);
            }
            let used = self.dims.vec(&pool.usage);
            let remaining = (0..self.dims.len())
                .map(|d| match pool.limits.get(self.dims.name(d)) {
                    Some(l) => l.saturating_sub(used[d]),
                    None => i64::MAX,
                })
                .collect();
            self.pools.push(PoolState {
                base: base_id,
                types,
                overhead,
                daemonsets,
                ports,
                remaining,
            });
        }
        let mut order: Vec<usize> = (0..p.pools.len()).collect();
        order.sort_by(|a, b| {
            p.pools[*b]
                .weight
                .cmp(&p.pools[*a].weight)
                .then_with(|| p.pools[*a].name.cmp(&p.pools[*b].name))
        });
        self.pool_order = order;
    }

    fn init_nodes(&mut self) {
        let p = self.p;
        for n in &p.nodes {
            let mut used = vec![0; self.dims.len()];
            let mut ports = vec![];
            for pod in &n.pods {
                add_to(&mut used, &self.dims.vec(&pod.requests));
                ports.extend(pod.host_ports.iter().cloned());
            }
            self.nodes.push(NodeState {
                used,
                alloc: self.dims.vec(&n.allocatable),
                ports,
            });
        }
        let mut order: Vec<usize> = (0..p.nodes.len()).collect();
        order.sort_by(|a, b| {
            (p.nodes[*a].in_flight, &p.nodes[*a].name)
                .cmp(&(p.nodes[*b].in_flight, &p.nodes[*b].name))
        });
        self.node_order = order;
    }

    fn init_pods(&mut self) {
        let p = self.p;
        // Every counter any constraint needs.
        for pod in &p.pods {
            for s in &pod.spread {
                let f = self.spread_filter(pod);
                self.counter(&s.topology_key, vec![pod.namespace.clone()], &s.selector, f);
            }
            for t in pod
                .affinity
                .iter()
                .chain(pod.preferred_affinity.iter().map(|(_, t)| t))
            {
                self.term_counter(pod, t);
            }
            for t in pod
                .anti_affinity
                .iter()
                .chain(pod.preferred_anti_affinity.iter().map(|(_, t)| t))
            {
                self.term_counter(pod, t);
            }
            for t in &pod.anti_affinity {
                let c = self.term_counter(pod, t);
                self.counters[c as usize].anti = true;
            }
        }
        for n in &p.nodes {
            for pod in &n.pods {
                for t in &pod.anti_affinity {
                    let c = self.term_counter(pod, t);
                    self.counters[c as usize].anti = true;
                }
            }
        }
        // Pods already on nodes.
        for (ni, n) in p.nodes.iter().enumerate() {
            for pod in &n.pods {
                for c in 0..self.counters.len() {
                    if self.counters[c].matches(pod) {
                        if !self.counters[c].hostname && !self.counters[c].filter.is_empty() {
                            let f = self.counters[c].filter.clone();
                            if !f.iter().any(|t| self.term_matches_node(*t, ni)) {
                                continue;
                            }
                        }
                        let d = dom_of_node(p, &self.keys, ni, self.counters[c].key_id);
                        self.counters[c].bump(&d, false);
                        if let Dom::Value(v) = d
                            && !self.counters[c].filter.is_empty()
                        {
                            *self.counters[c]
                                .by_value_certain
                                .entry(v.to_string())
                                .or_insert(0) += 1;
                        }
                    }
                }
                for t in &pod.anti_affinity {
                    let c = self.term_counter(pod, t) as usize;
                    let d = dom_of_node(p, &self.keys, ni, self.counters[c].key_id);
                    self.counters[c].bump(&d, true);
                }
            }
        }
        let mut min_req: Option<Vec<i64>> = None;
        for (i, pod) in p.pods.iter().enumerate() {
            let req = self.dims.vec(&pod.requests);
            min_req = Some(match min_req {
                None => req.clone(),
                Some(m) => m.iter().zip(&req).map(|(a, b)| *a.min(b)).collect(),
            });
            let matches: Vec<u32> = (0..self.counters.len() as u32)
                .filter(|c| self.counters[*c as usize].matches(pod))
                .collect();
            let anti_matches = matches
                .iter()
                .copied()
                .filter(|c| self.counters[*c as usize].anti)
                .collect();
            let mut prefs = vec![];
            let by_weight = |v: &[(i32, PodAffinityTerm)]| {
                let mut idx: Vec<usize> = (0..v.len()).collect();
                idx.sort_by_key(|j| (v[*j].0, *j));
                idx
            };
            prefs.extend(
                by_weight(&pod.preferred_affinity)
                    .into_iter()
                    .map(Pref::Affinity),
            );
            prefs.extend(
                by_weight(&pod.preferred_anti_affinity)
                    .into_iter()
                    .map(Pref::Anti),
            );
            let mut nt: Vec<usize> = (0..pod.preferred_terms.len()).collect();
            nt.sort_by_key(|j| (pod.preferred_terms[*j].0, *j));
            prefs.extend(nt.into_iter().map(Pref::NodeTerm));
            prefs.extend(
                (0..pod.spread.len())
                    .filter(|j| !pod.spread[*j].required)
                    .map(Pref::Spread),
            );
            prefs.push(Pref::PreferNoSchedule);
            self.pods.push(PodState {
                req,
                prefs,
                level: 0,
                eff: Eff::default(),
                matches,
                anti_matches,
            });
            self.pods[i].eff = self.eff(i);
        }
        self.min_req = min_req.unwrap_or_else(|| vec![0; self.dims.len()]);
    }

    fn run(&mut self) {
        let p = self.p;
        let mut order: Vec<usize> = (0..p.pods.len()).collect();
        order.sort_by(|a, b| {
            let (ra, rb) = (&self.pods[*a].req, &self.pods[*b].req);
            rb[0].cmp(&ra[0]).then(rb[1].cmp(&ra[1])).then(a.cmp(b))
        });
        let mut queue: VecDeque<usize> = order.into();
        let mut failures = 0usize;
        while let Some(i) = queue.pop_front() {
            if self.place(i) {
                failures = 0;
                continue;
            }
            if self.relax(i) {
                failures = 0;
                queue.push_back(i);
                continue;
            }
            failures += 1;
            queue.push_back(i);
            if failures >= queue.len() {
                break;
            }
        }
    }

    // --- output --------------------------------------------------------------

    fn price_for(&self, t: usize, req: &Requirements) -> f64 {
        self.p.instance_types[t]
            .offerings
            .iter()
            .filter(|o| Self::offering_ok(o, req))
            .map(|o| o.price)
            .fold(f64::INFINITY, f64::min)
    }

    fn finish(mut self) -> Plan {
        let placed: HashSet<usize> = self.placements.iter().map(|(p, _)| *p).collect();
        let mut unplaced = vec![];
        for i in 0..self.p.pods.len() {
            if !placed.contains(&i) {
                let (reason, limited_by, pool_reasons) = self.explain(i);
                unplaced.push(Unplaced {
                    pool_reasons,
                    pod: i,
                    reason,
                    limited_by,
                });
            }
        }
        let mut claims = vec![];
        let mut prices: HashMap<u32, Vec<f64>> = HashMap::new();
        for (ci, c) in self.claims.iter().enumerate() {
            let mut req = self.reqs.get(c.req).clone();
            let price = prices.entry(c.req).or_insert_with(|| {
                (0..self.p.instance_types.len())
                    .map(|t| self.price_for(t, &req))
                    .collect()
            });
            // Labels the pool defines with several values: the node gets one.
            let keys: Vec<String> = req.0.keys().cloned().collect();
            for k in keys {
                if self.well_known.contains(&k) {
                    continue;
                }
                let first = req
                    .get(&k)
                    .and_then(|r| r.values())
                    .filter(|v| v.len() > 1)
                    .and_then(|v| v.iter().next().cloned());
                if let Some(v) = first {
                    req.add(&k, in_req(&k, &v));
                }
            }
            let mut types: Vec<(f64, &str, usize)> = c
                .types
                .iter()
                .map(|t| (price[t], self.p.instance_types[t].name.as_str(), t))
                .collect();
            types.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            claims.push(NewClaim {
                pool: c.pool,
                hostname: format!("hostname-placeholder-{ci:04}"),
                requirements: req,
                instance_types: types.iter().map(|t| t.2).collect(),
                pods: c.pods.clone(),
                daemonsets: self.pools[c.pool].daemonsets.clone(),
                requests: self.dims.res(&c.used),
                price: types.first().map_or(0.0, |t| t.0),
            });
        }
        Plan {
            placements: self.placements,
            claims,
            unplaced,
            relaxed: self.relaxed,
        }
    }
}

/// Karpenter's log form of a claim: `node with 3 pods requesting
/// {"cpu":"3155m","memory":"120Mi","pods":"6"} from types m6i.xlarge`
/// (at most five types, then `and N other(s)`).
pub fn claim_line(problem: &Problem, claim: &NewClaim) -> String {
    let names: Vec<&str> = claim
        .instance_types
        .iter()
        .map(|t| problem.instance_types[*t].name.as_str())
        .collect();
    let mut types = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        let _ = write!(types, " and {} other(s)", names.len() - 5);
    }
    format!(
        "node with {} pods requesting {} from types {}",
        claim.pods.len(),
        claim.requests,
        types
    )
}

/// A pod's node requirements: each required node-affinity term ANDed with
/// the nodeSelector (just the nodeSelector when it has no terms). Terms that
/// contradict the nodeSelector are dropped.
pub fn node_terms(pod: &Pod) -> Vec<Requirements> {
    let sel = labels_req(&pod.node_selector);
    if pod.required_terms.is_empty() {
        return vec![sel];
    }
    pod.required_terms
        .iter()
        .filter_map(|t| t.intersect(&sel).ok())
        .collect()
}
