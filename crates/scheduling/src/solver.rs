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

use std::{
    collections::{BTreeSet, VecDeque},
    fmt::Write as _,
};

use hashbrown::{HashMap, HashSet};

use crate::{
    model::{
        HostPort, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE, Labels,
        NewClaim, Plan, Pod, PodAffinityTerm, Problem, Taint, Target, Unplaced, untolerated,
    },
    requirements::{Incompatible, Operator, Requirement, Requirements},
    resources::{CPU, EPHEMERAL_STORAGE, MEMORY, PODS, Resources},
};

// --- resource vectors ----------------------------------------------------

/// Resource dimensions of one problem: cpu, memory, pods, ephemeral-storage,
/// then every extended resource named anywhere.
struct Dims {
    ext: Vec<String>,
}

impl Dims {
    fn new(p: &Problem) -> Self {
        let mut ext = BTreeSet::new();
        let mut see = |r: &Resources| ext.extend(r.extended.keys().cloned());
        for pod in p.pods.iter().chain(&p.daemonsets) {
            see(&pod.requests);
        }
        for n in &p.nodes {
            see(&n.allocatable);
            n.pods.iter().for_each(|pod| see(&pod.requests));
        }
        for t in &p.instance_types {
            see(&t.capacity);
        }
        for pool in &p.pools {
            for k in pool.limits.keys() {
                if ![CPU, MEMORY, PODS, EPHEMERAL_STORAGE].contains(&k.as_str()) {
                    ext.insert(k.clone());
                }
            }
        }
        Self {
            ext: ext.into_iter().collect(),
        }
    }

    fn len(&self) -> usize {
        4 + self.ext.len()
    }

    fn name(&self, d: usize) -> &str {
        match d {
            0 => CPU,
            1 => MEMORY,
            2 => PODS,
            3 => EPHEMERAL_STORAGE,
            _ => &self.ext[d - 4],
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|d| self.name(*d) == name)
    }

    fn vec(&self, r: &Resources) -> Vec<i64> {
        (0..self.len()).map(|d| r.get(self.name(d))).collect()
    }

    fn res(&self, v: &[i64]) -> Resources {
        let mut r = Resources {
            cpu_millis: v[0],
            memory_bytes: v[1],
            pods: v[2],
            ephemeral_bytes: v[3],
            ..Default::default()
        };
        for (i, name) in self.ext.iter().enumerate() {
            if v[4 + i] != 0 {
                r.extended.insert(name.clone(), v[4 + i]);
            }
        }
        r
    }
}

fn fits(used: &[i64], add: &[i64], cap: &[i64]) -> bool {
    used.iter()
        .zip(add)
        .zip(cap)
        .all(|((u, a), c)| u.saturating_add(*a) <= *c)
}

fn add_to(v: &mut [i64], o: &[i64]) {
    v.iter_mut()
        .zip(o)
        .for_each(|(a, b)| *a = a.saturating_add(*b));
}

// --- instance-type sets ----------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct TypeSet(Vec<u64>);

impl TypeSet {
    fn empty(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn and(&self, o: &TypeSet) -> TypeSet {
        TypeSet(self.0.iter().zip(&o.0).map(|(a, b)| a & b).collect())
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut b = *bits;
            std::iter::from_fn(move || {
                if b == 0 {
                    return None;
                }
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                Some(w * 64 + i)
            })
        })
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        for w in 0..self.0.len() {
            let mut b = self.0[w];
            while b != 0 {
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                if !keep(w * 64 + i) {
                    self.0[w] &= !(1 << i);
                }
            }
        }
    }
}

// --- interned requirements -------------------------------------------------

#[derive(Default)]
struct Interner {
    list: Vec<Requirements>,
    ids: HashMap<Requirements, u32>,
}

impl Interner {
    fn intern(&mut self, r: Requirements) -> u32 {
        if let Some(id) = self.ids.get(&r) {
            return *id;
        }
        let id = self.list.len() as u32;
        self.list.push(r.clone());
        self.ids.insert(r, id);
        id
    }
    fn get(&self, id: u32) -> &Requirements {
        &self.list[id as usize]
    }
}

fn in_req(key: &str, value: &str) -> Requirement {
    Requirement::new(key, Operator::In, &[value]).expect("one value is a valid In")
}

fn labels_req(labels: &Labels) -> Requirements {
    let mut r = Requirements::default();
    for (k, v) in labels {
        r.add(k, in_req(k, v));
    }
    r
}

// --- topology --------------------------------------------------------------

/// Pods matching one (topology key, namespaces, selector), counted per
/// domain; and, for anti-affinity, the pods that own such a required term.
struct Counter {
    key: String,
    key_id: u32,
    hostname: bool,
    namespaces: Vec<String>,
    selector: crate::model::LabelSelector,
    by_slot: Vec<u32>,
    by_value: HashMap<String, u32>,
    owners_by_slot: Vec<u32>,
    owners_by_value: HashMap<String, u32>,
    total: u32,
    /// Some pod owns a required anti-affinity term on it.
    anti: bool,
    /// For topology spread (nodeAffinityPolicy Honor): the owning pod's
    /// node terms; only pods on nodes that match one are counted. Empty:
    /// every node. Claims narrow as pods join, so a filtered counter keeps
    /// two counts: `by_value`, pods on targets that may match (an upper
    /// bound of what kube-scheduler will count), and `by_value_certain`,
    /// pods on targets that must match (a lower bound). The skew check
    /// takes the first for the target and the second for the minimum, so
    /// it is never looser than the real one.
    filter: Vec<u32>,
    by_value_certain: HashMap<String, u32>,
}

impl Counter {
    fn matches(&self, pod: &Pod) -> bool {
        self.namespaces.contains(&pod.namespace) && self.selector.matches(&pod.labels)
    }
    fn count(&self, d: &Dom) -> u32 {
        match d {
            Dom::Slot(s) => self.by_slot.get(*s as usize).copied().unwrap_or(0),
            Dom::Value(v) => self.by_value.get(*v).copied().unwrap_or(0),
            Dom::Missing => 0,
        }
    }
    fn owners(&self, d: &Dom) -> u32 {
        match d {
            Dom::Slot(s) => self.owners_by_slot.get(*s as usize).copied().unwrap_or(0),
            Dom::Value(v) => self.owners_by_value.get(*v).copied().unwrap_or(0),
            Dom::Missing => 0,
        }
    }
    fn bump(&mut self, d: &Dom, owner: bool) {
        match d {
            Dom::Slot(s) => {
                let v = if owner {
                    &mut self.owners_by_slot
                } else {
                    &mut self.by_slot
                };
                if v.len() <= *s as usize {
                    v.resize(*s as usize + 1, 0);
                }
                v[*s as usize] += 1;
            }
            Dom::Value(val) => {
                let m = if owner {
                    &mut self.owners_by_value
                } else {
                    &mut self.by_value
                };
                match m.get_mut(*val) {
                    Some(n) => *n += 1,
                    None => {
                        m.insert(val.to_string(), 1);
                    }
                }
            }
            Dom::Missing => {}
        }
        if !owner {
            self.total += 1;
        }
    }
}

/// A target's domain for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dom<'a> {
    Slot(u32),
    Value(&'a str),
    Missing,
}

/// A failed topology check: the pod's constraint `Con(i)`, or another
/// pod's required anti-affinity on counter `Symmetric(c)`.
#[derive(Clone, Copy, Debug)]
enum TopoFail {
    Con(usize),
    Symmetric(u32),
}

#[derive(Clone, Debug)]
enum Con {
    Spread {
        c: u32,
        skew: u32,
        selfm: bool,
        /// Values the pod could reach (for keys other than hostname).
        universe: Vec<String>,
        what: String,
    },
    Affinity {
        c: u32,
        selfm: bool,
        what: String,
    },
    Anti {
        c: u32,
        what: String,
    },
}

impl Con {
    fn counter(&self) -> u32 {
        match self {
            Con::Spread { c, .. } | Con::Affinity { c, .. } | Con::Anti { c, .. } => *c,
        }
    }
    fn what(&self) -> &str {
        match self {
            Con::Spread { what, .. } | Con::Affinity { what, .. } | Con::Anti { what, .. } => what,
        }
    }
}

/// A preference, in the order they are given up.
#[derive(Clone, Copy, Debug)]
enum Pref {
    Affinity(usize),
    Anti(usize),
    NodeTerm(usize),
    Spread(usize),
    PreferNoSchedule,
}

/// What a pod must satisfy at its current relaxation level.
#[derive(Clone, Debug, Default)]
struct Eff {
    /// ORed node requirements (nodeSelector and node affinity, with the
    /// preferred terms still in force), interned.
    terms: Vec<u32>,
    cons: Vec<Con>,
    strict_taints: bool,
    owns_anti: Vec<u32>,
    /// Keys other than hostname a claim must be pinned on to take the pod.
    det_keys: Vec<u32>,
    /// Keys the pod's topology checks look at.
    check_keys: Vec<u32>,
    /// Hostname limits, for skipping claims quickly: (counter, most pods
    /// it may already count on the node, whether it counts owners).
    host_limits: Vec<(u32, u32, bool)>,
    pins_hostname: bool,
}

struct PodState {
    req: Vec<i64>,
    prefs: Vec<Pref>,
    level: usize,
    eff: Eff,
    /// Counters that count this pod.
    matches: Vec<u32>,
    /// The subset whose domains may hold owners of anti-affinity terms.
    anti_matches: Vec<u32>,
}

// --- nodes, pools, claims ------------------------------------------------------

struct NodeState {
    used: Vec<i64>,
    alloc: Vec<i64>,
    ports: Vec<HostPort>,
}

struct PoolState {
    base: u32,
    types: TypeSet,
    overhead: Vec<i64>,
    daemonsets: Vec<usize>,
    ports: Vec<HostPort>,
    remaining: Vec<i64>,
}

struct Claim {
    pool: usize,
    req: u32,
    types: TypeSet,
    used: Vec<i64>,
    max_free: Vec<i64>,
    charge: Vec<i64>,
    pods: Vec<usize>,
    ports: Vec<HostPort>,
    slot: u32,
    closed: bool,
    /// Room left in the cheapest of its types: a pod that fits here does
    /// not make the claim more expensive.
    slack: Vec<i64>,
    /// Room left in the smallest of its types: a pod that fits here keeps
    /// every type.
    min_free: Vec<i64>,
    /// Per dimension, how far along `Solver::by_dim` the types are too
    /// small for `used`.
    cursor: Vec<u32>,
    /// Where its cheapest type is in `Solver::by_price` (types before it
    /// are gone for good).
    price_cursor: u32,
}

/// What `Solver::summarize` finds about a set of types.
struct Summary {
    max_alloc: Vec<i64>,
    min_alloc: Vec<i64>,
    charge: Vec<i64>,
    cheapest: Option<usize>,
    price_cursor: u32,
}

fn used_with(a: &[i64], b: &[i64]) -> Vec<i64> {
    a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
}

/// Why a pod could not go to a new claim of one pool.
enum PoolFail {
    Taint(Taint),
    Hostname,
    Incompatible(Incompatible),
    Undefined(String),
    NoType(String),
    /// No available offering for (zone, capacity type) requirements.
    NoOffering(String),
    TooBig(String),
    Limit(String),
    HostPort(u16),
    Topology(TopoFail),
    MinValues(String),
}

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

    fn counter(
        &mut self,
        key: &str,
        namespaces: Vec<String>,
        sel: &crate::model::LabelSelector,
        filter: Vec<u32>,
    ) -> u32 {
        let k = (key.to_string(), namespaces, sel.clone(), filter);
        if let Some(id) = self.counter_ids.get(&k) {
            return *id;
        }
        let id = self.counters.len() as u32;
        let key_id = match self.keys.iter().position(|k| k == key) {
            Some(k) => k as u32,
            None => {
                self.keys.push(key.to_string());
                (self.keys.len() - 1) as u32
            }
        };
        self.counters.push(Counter {
            key: key.to_string(),
            key_id,
            hostname: key == LABEL_HOSTNAME,
            namespaces: k.1.clone(),
            selector: sel.clone(),
            by_slot: vec![],
            by_value: HashMap::new(),
            owners_by_slot: vec![],
            owners_by_value: HashMap::new(),
            total: 0,
            anti: false,
            filter: k.3.clone(),
            by_value_certain: HashMap::new(),
        });
        self.counter_ids.insert(k, id);
        id
    }

    fn term_counter(&mut self, pod: &Pod, t: &PodAffinityTerm) -> u32 {
        let mut ns = if t.namespaces.is_empty() {
            vec![pod.namespace.clone()]
        } else {
            t.namespaces.clone()
        };
        ns.sort();
        ns.dedup();
        self.counter(&t.topology_key, ns, &t.selector, vec![])
    }

    /// The node filter of a pod's topology spread: its required node
    /// terms (none if it has no node selector or affinity).
    fn spread_filter(&mut self, pod: &Pod) -> Vec<u32> {
        let terms = node_terms(pod);
        if terms.len() == 1 && terms[0].0.is_empty() {
            return vec![];
        }
        terms.into_iter().map(|t| self.reqs.intern(t)).collect()
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

    /// The pod's constraints with its first `level` preferences given up.
    fn eff(&mut self, i: usize) -> Eff {
        let pod = &self.p.pods[i];
        let ps = &self.pods[i];
        let active: Vec<Pref> = ps.prefs[ps.level..].to_vec();
        let active = active.as_slice();
        let mut terms = node_terms(pod);
        for pref in active {
            if let Pref::NodeTerm(j) = pref {
                let extra = &pod.preferred_terms[*j].1;
                let narrowed: Vec<Requirements> = terms
                    .iter()
                    .filter_map(|t| t.intersect(extra).ok())
                    .collect();
                if !narrowed.is_empty() {
                    terms = narrowed;
                }
            }
        }
        let pins_hostname = terms.iter().any(|t| t.get(LABEL_HOSTNAME).is_some());
        let term_ids: Vec<u32> = terms.into_iter().map(|t| self.reqs.intern(t)).collect();
        let strict_taints = active.iter().any(|p| matches!(p, Pref::PreferNoSchedule));
        let mut cons = vec![];
        let mut det: BTreeSet<u32> = BTreeSet::new();
        for (j, s) in pod.spread.iter().enumerate() {
            if !s.required
                && !active
                    .iter()
                    .any(|p| matches!(p, Pref::Spread(k) if *k == j))
            {
                continue;
            }
            let f = self.spread_filter(pod);
            let c = self.counter(&s.topology_key, vec![pod.namespace.clone()], &s.selector, f);
            let selfm = self.pods[i].matches.contains(&c);
            let universe = if s.topology_key == LABEL_HOSTNAME {
                vec![]
            } else {
                // kube-scheduler's domains come from the required node
                // affinity only (nodeAffinityPolicy Honor), not from the
                // preferences enforced for now.
                let required: Vec<u32> = node_terms(pod)
                    .into_iter()
                    .map(|t| self.reqs.intern(t))
                    .collect();
                self.universe(&required, &s.topology_key)
            };
            cons.push(Con::Spread {
                c,
                skew: s.max_skew,
                selfm,
                universe,
                what: format!(
                    "topology spread ({}, maxSkew {}, {})",
                    s.topology_key, s.max_skew, s.selector
                ),
            });
        }
        let mut aff: Vec<&PodAffinityTerm> = pod.affinity.iter().collect();
        let mut anti: Vec<&PodAffinityTerm> = pod.anti_affinity.iter().collect();
        for pref in active {
            match pref {
                Pref::Affinity(j) => aff.push(&pod.preferred_affinity[*j].1),
                Pref::Anti(j) => anti.push(&pod.preferred_anti_affinity[*j].1),
                _ => {}
            }
        }
        for t in aff {
            let c = self.term_counter(pod, t);
            let selfm = self.pods[i].matches.contains(&c);
            cons.push(Con::Affinity {
                c,
                selfm,
                what: format!("pod affinity ({}, {})", t.topology_key, t.selector),
            });
        }
        for t in anti {
            let c = self.term_counter(pod, t);
            cons.push(Con::Anti {
                c,
                what: format!("pod anti-affinity ({}, {})", t.topology_key, t.selector),
            });
        }
        let owns_anti: Vec<u32> = pod
            .anti_affinity
            .iter()
            .map(|t| self.term_counter(pod, t))
            .collect();
        let ps = &self.pods[i];
        for c in cons
            .iter()
            .map(Con::counter)
            .chain(ps.matches.iter().copied())
            .chain(owns_anti.iter().copied())
        {
            let ctr = &self.counters[c as usize];
            if !ctr.hostname {
                det.insert(ctr.key_id);
            }
        }
        let check: BTreeSet<u32> = cons
            .iter()
            .map(Con::counter)
            .chain(ps.anti_matches.iter().copied())
            .map(|c| self.counters[c as usize].key_id)
            .collect();
        let mut host_limits = vec![];
        for con in &cons {
            let ctr = &self.counters[con.counter() as usize];
            if !ctr.hostname {
                continue;
            }
            match con {
                Con::Anti { c, .. } => host_limits.push((*c, 0, false)),
                Con::Spread { c, skew, selfm, .. } => {
                    host_limits.push((*c, skew.saturating_sub(u32::from(*selfm)), false))
                }
                Con::Affinity { .. } => {}
            }
        }
        for c in &ps.anti_matches {
            if self.counters[*c as usize].hostname {
                host_limits.push((*c, 0, true));
            }
        }
        Eff {
            terms: term_ids,
            host_limits,
            cons,
            strict_taints,
            owns_anti,
            det_keys: det.into_iter().collect(),
            check_keys: check.into_iter().collect(),
            pins_hostname,
        }
    }

    // --- requirements and instance types -------------------------------

    /// The intersection of a pod's term and a claim's requirements, if
    /// compatible (a label the pool does not define and the pod needs is
    /// incompatible unless it is well known).
    fn compat(&mut self, term: u32, claim: u32) -> Option<u32> {
        if let Some(r) = self.compat.get(&(term, claim)) {
            return *r;
        }
        let r = match self.compat_explain(term, claim) {
            Ok(m) => Some(self.reqs.intern(m)),
            Err(_) => None,
        };
        self.compat.insert((term, claim), r);
        r
    }

    fn compat_explain(&self, term: u32, claim: u32) -> Result<Requirements, PoolFail> {
        let t = self.reqs.get(term);
        let c = self.reqs.get(claim);
        for (k, r) in &t.0 {
            if c.get(k).is_none() && !self.well_known.contains(k) && !r.allows(None) {
                return Err(PoolFail::Undefined(k.clone()));
            }
        }
        c.intersect(t).map_err(PoolFail::Incompatible)
    }

    fn type_compatible(&self, t: usize, req: &Requirements) -> bool {
        let it = &self.p.instance_types[t];
        for (k, tr) in &it.requirements.0 {
            if let Some(r) = req.get(k) {
                let ok = match tr.single() {
                    Some(v) => r.allows(Some(v)),
                    None => !r.intersect(tr).is_unsatisfiable(),
                };
                if !ok {
                    return false;
                }
            }
        }
        for (k, r) in &req.0 {
            if self.type_keys.contains(k) && it.requirements.get(k).is_none() && !r.allows(None) {
                return false;
            }
        }
        true
    }

    fn offering_ok(o: &crate::model::Offering, req: &Requirements) -> bool {
        o.available
            && req.get(LABEL_ZONE).is_none_or(|r| r.allows(Some(&o.zone)))
            && req
                .get(LABEL_CAPACITY_TYPE)
                .is_none_or(|r| r.allows(Some(&o.capacity_type)))
    }

    /// Instance types compatible with the requirements that have an
    /// available offering they allow.
    fn type_ok(&mut self, req: u32) -> TypeSet {
        if let Some(s) = self.type_ok.get(&req) {
            return s.clone();
        }
        let r = self.reqs.get(req);
        let mut s = TypeSet::empty(self.p.instance_types.len());
        for (t, it) in self.p.instance_types.iter().enumerate() {
            if self.type_compatible(t, r) && it.offerings.iter().any(|o| Self::offering_ok(o, r)) {
                s.insert(t);
            }
        }
        self.type_ok.insert(req, s.clone());
        s
    }

    /// Values of `key` a node of these types, under these requirements,
    /// could have.
    fn realizable(&self, types: &TypeSet, req: &Requirements, key: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if (key == LABEL_ZONE || key == LABEL_CAPACITY_TYPE) && self.offers.zones.len() <= 64 {
            let allowed = |names: &[String], k: &str| -> u64 {
                let r = req.get(k);
                names.iter().enumerate().fold(0u64, |m, (b, v)| {
                    if r.is_none_or(|r| r.allows(Some(v))) {
                        m | (1 << b)
                    } else {
                        m
                    }
                })
            };
            let zones_ok = allowed(&self.offers.zones, LABEL_ZONE);
            let cts_ok = allowed(&self.offers.cts, LABEL_CAPACITY_TYPE);
            let mut zones = 0u64;
            let mut cts = 0u64;
            for t in types.iter() {
                for (ct, zmask) in self.offers.masks[t].iter().enumerate() {
                    if cts_ok & (1 << ct) != 0 && zmask & zones_ok != 0 {
                        zones |= zmask & zones_ok;
                        cts |= 1 << ct;
                    }
                }
            }
            let (mask, names) = if key == LABEL_ZONE {
                (zones, &self.offers.zones)
            } else {
                (cts, &self.offers.cts)
            };
            for (b, v) in names.iter().enumerate() {
                if mask & (1 << b) != 0 {
                    out.insert(v.clone());
                }
            }
            return out;
        }
        for t in types.iter() {
            let it = &self.p.instance_types[t];
            if key == LABEL_ZONE || key == LABEL_CAPACITY_TYPE {
                for o in &it.offerings {
                    if Self::offering_ok(o, req) {
                        out.insert(if key == LABEL_ZONE {
                            o.zone.clone()
                        } else {
                            o.capacity_type.clone()
                        });
                    }
                }
            } else if let Some(v) = self.type_labels[t].get(key) {
                out.insert(v.clone());
            } else if let Some(v) = req.get(key).and_then(|r| r.values()) {
                out.extend(v.iter().cloned());
            }
        }
        out.retain(|v| req.get(key).is_none_or(|r| r.allows(Some(v))));
        out
    }

    /// Every value of `key` a pod with these terms could land in.
    fn universe(&mut self, terms: &[u32], key: &str) -> Vec<String> {
        let ck = (terms.to_vec(), key.to_string());
        if let Some(u) = self.universe_cache.get(&ck) {
            return u.clone();
        }
        let mut out = BTreeSet::new();
        for (n, node) in self.p.nodes.iter().enumerate() {
            if let Some(v) = node.labels.get(key)
                && terms.iter().any(|t| self.term_matches_node(*t, n))
            {
                out.insert(v.clone());
            }
        }
        for k in 0..self.pools.len() {
            let base = self.pools[k].base;
            for t in terms {
                if let Some(m) = self.compat(*t, base) {
                    let types = self.type_ok(m).and(&self.pools[k].types);
                    out.extend(self.realizable(&types, self.reqs.get(m), key));
                }
            }
        }
        let u: Vec<String> = out.into_iter().collect();
        self.universe_cache.insert(ck, u.clone());
        u
    }

    fn term_matches_node(&mut self, term: u32, node: usize) -> bool {
        if let Some(m) = self.node_match.get(&(term, node)) {
            return *m;
        }
        let m = self.reqs.get(term).matches(&self.p.nodes[node].labels);
        self.node_match.insert((term, node), m);
        m
    }

    // --- topology checks ---------------------------------------------------

    /// Checks the pod's constraints on one key for a target whose domain
    /// for that key is `dom`.
    fn check_key(&self, i: usize, key: u32, dom: Dom<'_>) -> Result<(), TopoFail> {
        let ps = &self.pods[i];
        for (ci, con) in ps.eff.cons.iter().enumerate() {
            let ctr = &self.counters[con.counter() as usize];
            if ctr.key_id != key {
                continue;
            }
            let ok = match con {
                Con::Spread {
                    skew,
                    selfm,
                    universe,
                    ..
                } => {
                    if dom == Dom::Missing {
                        false
                    } else {
                        let floor = if ctr.filter.is_empty() {
                            &ctr.by_value
                        } else {
                            &ctr.by_value_certain
                        };
                        let min = if ctr.hostname {
                            0
                        } else {
                            universe
                                .iter()
                                .map(|v| floor.get(v.as_str()).copied().unwrap_or(0))
                                .min()
                                .unwrap_or(0)
                        };
                        ctr.count(&dom) + u32::from(*selfm) <= min + skew
                    }
                }
                Con::Affinity { selfm, .. } => {
                    (ctr.total == 0 && *selfm) || (dom != Dom::Missing && ctr.count(&dom) > 0)
                }
                Con::Anti { .. } => ctr.count(&dom) == 0,
            };
            if !ok {
                return Err(TopoFail::Con(ci));
            }
        }
        for c in &ps.anti_matches {
            let ctr = &self.counters[*c as usize];
            if ctr.key_id == key && ctr.owners(&dom) > 0 {
                return Err(TopoFail::Symmetric(*c));
            }
        }
        Ok(())
    }

    fn describe_fail(&self, i: usize, f: TopoFail) -> String {
        match f {
            TopoFail::Con(ci) => self.pods[i].eff.cons[ci].what().to_string(),
            TopoFail::Symmetric(c) => {
                let ctr = &self.counters[c as usize];
                format!(
                    "pod anti-affinity of a pod already there ({}, {})",
                    ctr.key, ctr.selector
                )
            }
        }
    }

    /// The pod's spread count for a candidate value (lower is better).
    fn spread_score(&self, i: usize, key: u32, dom: Dom<'_>) -> u32 {
        self.pods[i]
            .eff
            .cons
            .iter()
            .filter_map(|con| match con {
                Con::Spread { c, .. } if self.counters[*c as usize].key_id == key => {
                    Some(self.counters[*c as usize].count(&dom))
                }
                _ => None,
            })
            .sum()
    }

    /// Topology for a claim (existing or new, in `slot`) with requirements
    /// `req` and candidate types `types`: the requirements, pinned on every
    /// key the pod needs determined, or the failed constraint.
    fn topo_claim(
        &mut self,
        i: usize,
        slot: u32,
        mut req: u32,
        types: &TypeSet,
    ) -> Result<u32, TopoFail> {
        for di in 0..self.pods[i].eff.det_keys.len() {
            let key = self.pods[i].eff.det_keys[di];
            let kname = &self.keys[key as usize];
            if let Some(v) = self.reqs.get(req).get(kname).and_then(|x| x.single()) {
                self.check_key(i, key, Dom::Value(v))?;
                continue;
            }
            let ok = types.and(&self.type_ok(req));
            let kname = &self.keys[key as usize];
            let cands = self.realizable(&ok, self.reqs.get(req), kname);
            let mut best: Option<(u32, &str)> = None;
            let mut last_err = None;
            for v in &cands {
                let d = Dom::Value(v);
                match self.check_key(i, key, d) {
                    Ok(()) => {
                        let score = self.spread_score(i, key, d);
                        if best.is_none_or(|(s, _)| score < s) {
                            best = Some((score, v));
                        }
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let Some((_, v)) = best else {
                // Nothing to pin to: the constraint that failed, or the
                // first constraint on the key.
                return Err(last_err.unwrap_or(TopoFail::Con(
                    self.pods[i]
                        .eff
                        .cons
                        .iter()
                        .position(|c| self.counters[c.counter() as usize].key_id == key)
                        .unwrap_or(0),
                )));
            };
            let mut narrowed = self.reqs.get(req).clone();
            narrowed.add(kname, in_req(kname, v));
            req = self.reqs.intern(narrowed);
        }
        // Hostname is the claim's own slot; any other key left has no value
        // to pin (the pod only needs it absent or has nothing to count).
        for ci in 0..self.pods[i].eff.check_keys.len() {
            let key = self.pods[i].eff.check_keys[ci];
            if self.pods[i].eff.det_keys.contains(&key) {
                continue;
            }
            let dom = if self.keys[key as usize] == LABEL_HOSTNAME {
                Dom::Slot(slot)
            } else {
                Dom::Missing
            };
            self.check_key(i, key, dom)?;
        }
        Ok(req)
    }

    /// Counts a placed pod in every counter it matches, and as an owner
    /// of its required anti-affinity terms, in the target's domains.
    fn commit_topology(&mut self, i: usize, target: Target) {
        let nm = self.pods[i].matches.len();
        for mi in 0..nm + self.pods[i].eff.owns_anti.len() {
            let (c, owner) = if mi < nm {
                (self.pods[i].matches[mi] as usize, false)
            } else {
                (self.pods[i].eff.owns_anti[mi - nm] as usize, true)
            };
            let filtered =
                !owner && !self.counters[c].hostname && !self.counters[c].filter.is_empty();
            let (may, must) = if filtered {
                self.target_passes(c, target)
            } else {
                (true, true)
            };
            if !may {
                continue;
            }
            let key = self.counters[c].key_id;
            let dom = match target {
                Target::Node(n) => dom_of_node(self.p, &self.keys, n, key),
                Target::Claim(ci) => dom_of_claim(&self.reqs, &self.keys, &self.claims[ci], key),
            };
            if filtered
                && must
                && let Dom::Value(v) = dom
            {
                let m = &mut self.counters[c].by_value_certain;
                match m.get_mut(v) {
                    Some(n) => *n += 1,
                    None => {
                        m.insert(v.to_string(), 1);
                    }
                }
            }
            self.counters[c].bump(&dom, owner);
        }
    }

    /// Whether a target may / must pass a spread counter's node filter:
    /// an existing node matches one of its terms or not; a claim may if
    /// one of its possible nodes does, and must if all of them do.
    fn target_passes(&mut self, c: usize, target: Target) -> (bool, bool) {
        let (mut may, mut must) = (false, false);
        for fi in 0..self.counters[c].filter.len() {
            let t = self.counters[c].filter[fi];
            match target {
                Target::Node(n) => {
                    if self.term_matches_node(t, n) {
                        return (true, true);
                    }
                }
                Target::Claim(ci) => {
                    let req = self.claims[ci].req;
                    if let Some(m) = self.compat(t, req)
                        && !self.type_ok(m).and(&self.claims[ci].types).is_empty()
                    {
                        may = true;
                        if self.claim_implies(ci, t) {
                            must = true;
                        }
                    }
                }
            }
        }
        (may, must)
    }

    /// Every node the claim may become satisfies the term.
    fn claim_implies(&self, ci: usize, term: u32) -> bool {
        let c = &self.claims[ci];
        let req = self.reqs.get(c.req);
        self.reqs.get(term).0.iter().all(|(k, r)| {
            if k == LABEL_ZONE || k == LABEL_CAPACITY_TYPE {
                return self
                    .realizable(&c.types, req, k)
                    .iter()
                    .all(|v| r.allows(Some(v)));
            }
            if self.type_keys.contains(k) {
                return c
                    .types
                    .iter()
                    .all(|t| r.allows(self.type_labels[t].get(k).map(String::as_str)));
            }
            match req.get(k).and_then(|x| x.values()) {
                Some(vals) => !vals.is_empty() && vals.iter().all(|v| r.allows(Some(v))),
                None => false,
            }
        })
    }

    // --- placing -----------------------------------------------------------

    fn try_node(&mut self, i: usize, n: usize) -> bool {
        let pod = &self.p.pods[i];
        let ns = &self.nodes[n];
        if !fits(&ns.used, &self.pods[i].req, &ns.alloc) {
            return false;
        }
        let strict = self.pods[i].eff.strict_taints;
        if untolerated(&self.p.nodes[n].taints, &pod.tolerations, strict).is_some() {
            return false;
        }
        if pod
            .host_ports
            .iter()
            .any(|hp| ns.ports.iter().any(|o| hp.conflicts(o)))
        {
            return false;
        }
        let terms = self.pods[i].eff.terms.clone();
        if !terms.iter().any(|t| self.term_matches_node(*t, n)) {
            return false;
        }
        for ki in 0..self.pods[i].eff.check_keys.len() {
            let key = self.pods[i].eff.check_keys[ki];
            let dom = dom_of_node(self.p, &self.keys, n, key);
            if self.check_key(i, key, dom).is_err() {
                return false;
            }
        }
        let req = self.pods[i].req.clone();
        add_to(&mut self.nodes[n].used, &req);
        self.nodes[n]
            .ports
            .extend(self.p.pods[i].host_ports.iter().cloned());
        self.commit_topology(i, Target::Node(n));
        self.placements.push((i, Target::Node(n)));
        true
    }

    /// Types of `types` with room for `used + add` and enough distinct
    /// values for every minValues requirement.
    /// `fitting` for a claim's own types: the types each dimension rules
    /// out are a prefix of that dimension's order past the claim's cursor,
    /// so only the newly failing ones are visited.
    fn fitting_claim(
        &self,
        ci: usize,
        mut out: TypeSet,
        add: &[i64],
        req: &Requirements,
    ) -> (TypeSet, Vec<u32>) {
        let c = &self.claims[ci];
        let d = self.dims.len();
        let mut cursor = c.cursor.clone();
        for k in 0..d {
            let want = c.used[k].saturating_add(add[k]);
            let order = &self.by_dim[k];
            let mut j = cursor[k] as usize;
            while j < order.len() && self.alloc_flat[order[j] as usize * d + k] < want {
                out.remove(order[j] as usize);
                j += 1;
            }
            cursor[k] = j as u32;
        }
        if !self.min_values_hold(&out, req) {
            return (TypeSet::empty(self.p.instance_types.len()), cursor);
        }
        (out, cursor)
    }

    /// Where each dimension's cursor starts for a claim using `used`.
    fn cursors(&self, used: &[i64]) -> Vec<u32> {
        let d = self.dims.len();
        (0..d)
            .map(|k| {
                self.by_dim[k].partition_point(|t| self.alloc_flat[*t as usize * d + k] < used[k])
                    as u32
            })
            .collect()
    }

    fn min_values_hold(&self, types: &TypeSet, req: &Requirements) -> bool {
        for (k, r) in &req.0 {
            if let Some(min) = r.min_values {
                let distinct: BTreeSet<&str> = types
                    .iter()
                    .filter_map(|t| self.type_labels[t].get(k).map(String::as_str))
                    .collect();
                if distinct.len() < min {
                    return false;
                }
            }
        }
        true
    }

    fn fitting(&self, types: &TypeSet, used: &[i64], add: &[i64], req: &Requirements) -> TypeSet {
        let mut out = types.clone();
        let d = self.dims.len();
        let want: Vec<i64> = used
            .iter()
            .zip(add)
            .map(|(u, a)| u.saturating_add(*a))
            .collect();
        out.retain(|t| {
            let a = &self.alloc_flat[t * d..t * d + d];
            want.iter().zip(a).all(|(w, a)| w <= a)
        });
        if !self.min_values_hold(&out, req) {
            return TypeSet::empty(self.p.instance_types.len());
        }
        out
    }

    /// One pass over a claim's types: the largest allocatable, the
    /// largest capacity (what pool limits are charged), and the cheapest
    /// type.
    ///
    /// Walks each dimension's order from its ends (and the price order
    /// from `price_from`), so it costs little more than one step per
    /// dimension: a claim's types are all but the smallest ones.
    fn summarize(&self, types: &TypeSet, cursor: &[u32], price_from: u32) -> Summary {
        let d = self.dims.len();
        let has = |t: u32| types.has(t as usize);
        let first = |order: &[u32], from: usize| order[from..].iter().copied().find(|t| has(*t));
        let last = |order: &[u32]| order.iter().rev().copied().find(|t| has(*t));
        let mut s = Summary {
            max_alloc: vec![i64::MIN; d],
            min_alloc: vec![i64::MAX; d],
            charge: vec![i64::MIN; d],
            cheapest: None,
            price_cursor: price_from,
        };
        for (k, from) in cursor.iter().enumerate().take(d) {
            if let Some(t) = last(&self.by_dim[k]) {
                s.max_alloc[k] = self.alloc[t as usize][k];
            }
            if let Some(t) = first(&self.by_dim[k], *from as usize) {
                s.min_alloc[k] = self.alloc[t as usize][k];
            }
            if let Some(t) = last(&self.by_cap[k]) {
                s.charge[k] = self.cap[t as usize][k];
            }
        }
        if let Some(j) = self.by_price[price_from as usize..]
            .iter()
            .position(|t| has(*t))
        {
            s.price_cursor = price_from + j as u32;
            s.cheapest = Some(self.by_price[s.price_cursor as usize] as usize);
        }
        s
    }

    fn max_over(&self, types: &TypeSet, of: &[Vec<i64>]) -> Vec<i64> {
        let mut m = vec![i64::MIN; self.dims.len()];
        for t in types.iter() {
            m.iter_mut()
                .zip(&of[t])
                .for_each(|(a, b)| *a = (*a).max(*b));
        }
        m
    }

    fn try_claim(&mut self, i: usize, ci: usize) -> bool {
        let c = &self.claims[ci];
        let req_v = &self.pods[i].req;
        if req_v.iter().zip(&c.max_free).any(|(r, f)| r > f) {
            return false;
        }
        let pool = c.pool;
        let strict = self.pods[i].eff.strict_taints;
        if self.pods[i].eff.pins_hostname
            || untolerated(
                &self.p.pools[pool].taints,
                &self.p.pods[i].tolerations,
                strict,
            )
            .is_some()
        {
            return false;
        }
        if self.p.pods[i]
            .host_ports
            .iter()
            .any(|hp| c.ports.iter().any(|o| hp.conflicts(o)))
        {
            return false;
        }
        let (claim_req, slot) = (c.req, c.slot);
        // The claim's own hostname domain first: the cheapest check, and
        // the one that turns away anti-affine and hostname-spread pods.
        if let Some(hk) = self.host_key
            && self.pods[i].eff.check_keys.contains(&hk)
            && self.check_key(i, hk, Dom::Slot(slot)).is_err()
        {
            return false;
        }
        for ti in 0..self.pods[i].eff.terms.len() {
            let term = self.pods[i].eff.terms[ti];
            let Some(merged) = self.compat(term, claim_req) else {
                continue;
            };
            let c = &self.claims[ci];
            let (fit, cursor) = if merged == claim_req
                && self.pods[i]
                    .req
                    .iter()
                    .zip(&c.min_free)
                    .all(|(r, f)| r <= f)
            {
                // Same requirements and room in every type: nothing to filter.
                (c.types.clone(), c.cursor.clone())
            } else {
                let cand = if merged == claim_req {
                    c.types.clone()
                } else {
                    self.type_ok(merged).and(&self.claims[ci].types)
                };
                self.fitting_claim(ci, cand, &self.pods[i].req, self.reqs.get(merged))
            };
            if fit.is_empty() {
                continue;
            }
            let Ok(pinned) = self.topo_claim(i, slot, merged, &fit) else {
                continue;
            };
            let types = if pinned == merged {
                fit
            } else {
                let ok_types = self.type_ok(pinned).and(&fit);
                let c = &self.claims[ci];
                self.fitting(&ok_types, &c.used, &self.pods[i].req, self.reqs.get(pinned))
            };
            if types.is_empty() {
                continue;
            }
            // Commit.
            let Summary {
                max_alloc,
                min_alloc,
                charge,
                cheapest,
                price_cursor,
            } = self.summarize(&types, &cursor, self.claims[ci].price_cursor);
            let req = self.pods[i].req.clone();
            let c = &mut self.claims[ci];
            add_to(&mut c.used, &req);
            let remaining = &mut self.pools[pool].remaining;
            for d in 0..remaining.len() {
                if remaining[d] != i64::MAX {
                    remaining[d] = remaining[d].saturating_add(c.charge[d] - charge[d]);
                }
            }
            c.charge = charge;
            c.cursor = cursor;
            c.price_cursor = price_cursor;
            c.max_free = max_alloc.iter().zip(&c.used).map(|(a, u)| a - u).collect();
            c.min_free = min_alloc.iter().zip(&c.used).map(|(a, u)| a - u).collect();
            c.slack = match cheapest {
                Some(t) => self.alloc[t]
                    .iter()
                    .zip(&c.used)
                    .map(|(a, u)| a - u)
                    .collect(),
                None => vec![i64::MIN; c.used.len()],
            };
            c.types = types;
            c.req = pinned;
            c.pods.push(i);
            c.ports.extend(self.p.pods[i].host_ports.iter().cloned());
            if c.max_free.iter().zip(&self.min_req).any(|(f, m)| f < m) {
                c.closed = true;
            }
            self.commit_topology(i, Target::Claim(ci));
            self.placements.push((i, Target::Claim(ci)));
            return true;
        }
        false
    }

    /// Opens a claim of pool `k` for pod `i`, or says why it cannot.
    fn try_new(&mut self, i: usize, k: usize, commit: bool) -> Result<(), PoolFail> {
        let pool = &self.p.pools[k];
        let strict = self.pods[i].eff.strict_taints;
        if let Some(t) = untolerated(&pool.taints, &self.p.pods[i].tolerations, strict) {
            return Err(PoolFail::Taint(t.clone()));
        }
        if self.pods[i].eff.pins_hostname {
            return Err(PoolFail::Hostname);
        }
        if let Some(hp) = self.p.pods[i]
            .host_ports
            .iter()
            .find(|hp| self.pools[k].ports.iter().any(|o| hp.conflicts(o)))
        {
            return Err(PoolFail::HostPort(hp.port));
        }
        let slot = (self.nodes.len() + self.claims.len()) as u32;
        let base = self.pools[k].base;
        let terms = self.pods[i].eff.terms.clone();
        let mut first_err = None;
        for term in terms {
            let merged = match self.compat(term, base) {
                Some(m) => m,
                None => {
                    let e = self.compat_explain(term, base).err();
                    first_err.get_or_insert(e.unwrap_or(PoolFail::NoOffering(String::new())));
                    continue;
                }
            };
            let pool_types = self.pools[k].types.clone();
            let compatible = self.type_ok(merged).and(&pool_types);
            if compatible.is_empty() {
                first_err.get_or_insert_with(|| self.why_no_type(merged, &pool_types));
                continue;
            }
            let overhead = self.pools[k].overhead.clone();
            let fit = self.fitting(
                &compatible,
                &overhead,
                &self.pods[i].req,
                self.reqs.get(merged),
            );
            if fit.is_empty() {
                first_err.get_or_insert_with(|| self.why_too_big(i, k, &compatible, merged));
                continue;
            }
            let remaining = &self.pools[k].remaining;
            let mut within = fit.clone();
            within.retain(|t| self.cap[t].iter().zip(remaining).all(|(c, r)| c <= r));
            if within.is_empty() {
                first_err.get_or_insert_with(|| self.why_limit(k, &fit));
                continue;
            }
            let pinned = match self.topo_claim(i, slot, merged, &within) {
                Ok(p) => p,
                Err(e) => {
                    first_err.get_or_insert(PoolFail::Topology(e));
                    continue;
                }
            };
            if pinned != merged {
                let ok = self.type_ok(pinned).and(&within);
                within = self.fitting(&ok, &overhead, &self.pods[i].req, self.reqs.get(pinned));
                if within.is_empty() {
                    first_err
                        .get_or_insert(PoolFail::NoOffering(offering_text(self.reqs.get(pinned))));
                    continue;
                }
            }
            if !commit {
                return Ok(());
            }
            if self.options.fixed_bins {
                let r = self.reqs.get(pinned);
                if let Some(t) = within.iter().min_by(|a, b| {
                    self.price_for(*a, r)
                        .total_cmp(&self.price_for(*b, r))
                        .then(a.cmp(b))
                }) {
                    let mut one = TypeSet::empty(self.p.instance_types.len());
                    one.insert(t);
                    within = one;
                }
            }
            let cursor = self.cursors(&used_with(&overhead, &self.pods[i].req));
            let Summary {
                max_alloc,
                min_alloc,
                charge,
                cheapest,
                price_cursor,
            } = self.summarize(&within, &cursor, 0);
            let mut used = overhead;
            add_to(&mut used, &self.pods[i].req);
            for (d, r) in self.pools[k].remaining.iter_mut().enumerate() {
                if *r != i64::MAX {
                    *r -= charge[d];
                }
            }
            let mut ports = self.pools[k].ports.clone();
            ports.extend(self.p.pods[i].host_ports.iter().cloned());
            let max_free: Vec<i64> = max_alloc.iter().zip(&used).map(|(a, u)| a - u).collect();
            let min_free: Vec<i64> = min_alloc.iter().zip(&used).map(|(a, u)| a - u).collect();
            let slack = match cheapest {
                Some(t) => self.alloc[t]
                    .iter()
                    .zip(&used)
                    .map(|(a, u)| a - u)
                    .collect(),
                None => vec![i64::MIN; used.len()],
            };
            let closed = max_free.iter().zip(&self.min_req).any(|(f, m)| f < m);
            let ci = self.claims.len();
            self.claims.push(Claim {
                pool: k,
                req: pinned,
                types: within,
                used,
                max_free,
                charge,
                pods: vec![i],
                ports,
                slot,
                closed,
                slack,
                min_free,
                cursor,
                price_cursor,
            });
            self.open.push(ci);
            self.commit_topology(i, Target::Claim(ci));
            self.placements.push((i, Target::Claim(ci)));
            return Ok(());
        }
        Err(first_err.unwrap_or(PoolFail::NoOffering(String::new())))
    }

    fn place(&mut self, i: usize) -> bool {
        for oi in 0..self.node_order.len() {
            let n = self.node_order[oi];
            if self.try_node(i, n) {
                return true;
            }
        }
        // A claim with room in its cheapest type first: free capacity.
        if !self.options.fixed_bins {
            for oi in 0..self.open.len() {
                let ci = self.open[oi];
                let c = &self.claims[ci];
                if !c.closed
                    && self.pods[i].req.iter().zip(&c.slack).all(|(r, s)| r <= s)
                    && !self.host_blocked(i, c.slot)
                    && self.try_claim(i, ci)
                {
                    return true;
                }
            }
        }
        let mut closed_seen = 0;
        for oi in 0..self.open.len() {
            let ci = self.open[oi];
            if self.claims[ci].closed {
                closed_seen += 1;
                continue;
            }
            // Claims with room in their cheapest type were tried above.
            let tried = !self.options.fixed_bins
                && self.pods[i]
                    .req
                    .iter()
                    .zip(&self.claims[ci].slack)
                    .all(|(r, s)| r <= s);
            if !tried && !self.host_blocked(i, self.claims[ci].slot) && self.try_claim(i, ci) {
                if closed_seen > 64 {
                    let claims = &self.claims;
                    self.open.retain(|c| !claims[*c].closed);
                }
                return true;
            }
        }
        if closed_seen > 64 {
            let claims = &self.claims;
            self.open.retain(|c| !claims[*c].closed);
        }
        for oi in 0..self.pool_order.len() {
            let k = self.pool_order[oi];
            if self.try_new(i, k, true).is_ok() {
                return true;
            }
        }
        false
    }

    /// The pod's hostname anti-affinity or spread already rules this node
    /// out (a quick test before `try_claim`).
    #[inline]
    fn host_blocked(&self, i: usize, slot: u32) -> bool {
        self.pods[i].eff.host_limits.iter().any(|(c, max, owners)| {
            let ctr = &self.counters[*c as usize];
            let v = if *owners {
                &ctr.owners_by_slot
            } else {
                &ctr.by_slot
            };
            v.get(slot as usize).copied().unwrap_or(0) > *max
        })
    }

    /// Gives up the pod's next preference; false if none is left.
    fn relax(&mut self, i: usize) -> bool {
        let ps = &self.pods[i];
        if ps.level >= ps.prefs.len() {
            return false;
        }
        let pod = &self.p.pods[i];
        let what = match ps.prefs[ps.level] {
            Pref::Affinity(j) => format!(
                "preferred pod affinity (weight {}, {}, {})",
                pod.preferred_affinity[j].0,
                pod.preferred_affinity[j].1.topology_key,
                pod.preferred_affinity[j].1.selector
            ),
            Pref::Anti(j) => format!(
                "preferred pod anti-affinity (weight {}, {}, {})",
                pod.preferred_anti_affinity[j].0,
                pod.preferred_anti_affinity[j].1.topology_key,
                pod.preferred_anti_affinity[j].1.selector
            ),
            Pref::NodeTerm(j) => format!(
                "preferred node affinity (weight {}) {}",
                pod.preferred_terms[j].0,
                describe(&pod.preferred_terms[j].1)
            ),
            Pref::Spread(j) => format!(
                "topology spread ScheduleAnyway ({}, maxSkew {})",
                pod.spread[j].topology_key, pod.spread[j].max_skew
            ),
            Pref::PreferNoSchedule => "PreferNoSchedule taints".to_string(),
        };
        // Giving up PreferNoSchedule changes nothing if no node or pool has
        // such a taint; record it only when it matters.
        let matters =
            !matches!(ps.prefs[ps.level], Pref::PreferNoSchedule) || self.has_prefer_no_schedule();
        self.pods[i].level += 1;
        self.pods[i].eff = self.eff(i);
        if matters {
            self.relaxed.push((i, what));
        }
        matters
    }

    fn has_prefer_no_schedule(&self) -> bool {
        let soft = |t: &[Taint]| {
            t.iter()
                .any(|t| t.effect == crate::model::TaintEffect::PreferNoSchedule)
        };
        self.p.nodes.iter().any(|n| soft(&n.taints)) || self.p.pools.iter().any(|p| soft(&p.taints))
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

    // --- explanations ------------------------------------------------------

    fn why_no_type(&self, merged: u32, pool_types: &TypeSet) -> PoolFail {
        let req = self.reqs.get(merged);
        // The first requirement no type of the pool satisfies.
        for (k, r) in &req.0 {
            let mut one = Requirements::default();
            one.add(k, r.clone());
            if pool_types.iter().all(|t| !self.type_compatible(t, &one)) {
                return PoolFail::NoType(format!("{k} {r}"));
            }
        }
        PoolFail::NoOffering(offering_text(req))
    }

    fn why_too_big(&self, i: usize, k: usize, compatible: &TypeSet, req: u32) -> PoolFail {
        let overhead = &self.pools[k].overhead;
        let mut want = overhead.clone();
        add_to(&mut want, &self.pods[i].req);
        let largest = self.max_over(compatible, &self.alloc);
        let mut parts = vec![];
        for d in 0..self.dims.len() {
            if want[d] > largest[d] {
                parts.push(format!(
                    "{} {} (largest allocatable {})",
                    fmt_dim(self.dims.name(d), self.pods[i].req[d]),
                    self.dims.name(d),
                    fmt_dim(self.dims.name(d), largest[d])
                ));
            }
        }
        if parts.is_empty() {
            // Each dimension fits some type, but no type fits all, or
            // minValues cannot hold.
            if let Some((key, r)) = self
                .reqs
                .get(req)
                .0
                .iter()
                .find(|(_, r)| r.min_values.is_some())
            {
                return PoolFail::MinValues(format!(
                    "fewer than {} values of {key} have room",
                    r.min_values.unwrap_or(0)
                ));
            }
            parts.push(format!("{} in one type", self.dims.res(&self.pods[i].req)));
        }
        let ds = self.dims.res(overhead);
        let overhead_note = if ds == Resources::default() {
            String::new()
        } else {
            format!(" with daemonset overhead {ds}")
        };
        PoolFail::TooBig(format!("{}{overhead_note}", parts.join(", ")))
    }

    fn why_limit(&self, k: usize, fit: &TypeSet) -> PoolFail {
        let pool = &self.p.pools[k];
        let smallest = fit.iter().min_by_key(|t| self.cap[*t][0]).unwrap_or(0);
        let mut parts = vec![];
        for (name, limit) in &pool.limits {
            if let Some(d) = self.dims.index(name)
                && self.cap[smallest][d] > self.pools[k].remaining[d]
            {
                parts.push(format!("{name}={}", fmt_dim(name, *limit)));
            }
        }
        PoolFail::Limit(parts.join(", "))
    }

    /// Why pod `i` was not placed, and the pools that refused it only for
    /// their limits.
    fn explain(&mut self, i: usize) -> (String, Vec<usize>) {
        let mut out = String::new();
        let mut limited = vec![];
        if self.pods[i].eff.terms.is_empty() {
            return ("its node affinity cannot be satisfied: every nodeSelectorTerm contradicts the nodeSelector".to_string(), limited);
        }
        if !self.p.nodes.is_empty() {
            let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
            for n in 0..self.p.nodes.len() {
                let r = self.why_not_node(i, n);
                *counts.entry(r).or_insert(0) += 1;
            }
            let list: Vec<String> = counts.iter().map(|(r, c)| format!("{c} {r}")).collect();
            let _ = write!(
                out,
                "0/{} nodes are available: {}",
                self.p.nodes.len(),
                list.join(", ")
            );
        }
        if self.p.pools.is_empty() {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str("no nodepool to launch a node from");
            return (out, limited);
        }
        for oi in 0..self.pool_order.len() {
            let k = self.pool_order[oi];
            let name = self.p.pools[k].name.clone();
            let msg = match self.try_new(i, k, false) {
                Ok(()) => format!(
                    "nodepool \"{name}\": a new node would fit but every attempt conflicted with pods placed before it"
                ),
                Err(f) => match f {
                    PoolFail::Taint(t) => {
                        format!("nodepool \"{name}\": did not tolerate taint {t}")
                    }
                    PoolFail::Hostname => format!(
                        "nodepool \"{name}\": the pod selects a {LABEL_HOSTNAME}, which a new node cannot have"
                    ),
                    PoolFail::Incompatible(e) => format!(
                        "incompatible with nodepool \"{name}\": requires {} {}, pod requires {} {}",
                        e.key, e.ours, e.key, e.theirs
                    ),
                    PoolFail::Undefined(k) => format!(
                        "incompatible with nodepool \"{name}\": label {k} is not defined by the nodepool"
                    ),
                    PoolFail::NoType(r) => {
                        format!("nodepool \"{name}\": no instance type satisfies {r}")
                    }
                    PoolFail::NoOffering(what) => {
                        let what = if what.is_empty() {
                            self.terms_text(i)
                        } else {
                            what
                        };
                        format!(
                            "nodepool \"{name}\": no instance type has an available offering for {what}"
                        )
                    }
                    PoolFail::TooBig(r) => {
                        format!("nodepool \"{name}\": no instance type offers {r}")
                    }
                    PoolFail::Limit(l) => {
                        limited.push(k);
                        format!("nodepool \"{name}\" limit {l} reached")
                    }
                    PoolFail::HostPort(p) => {
                        format!("nodepool \"{name}\": host port {p} is taken by a daemonset")
                    }
                    PoolFail::Topology(t) => format!(
                        "nodepool \"{name}\": {} not satisfied",
                        self.describe_fail(i, t)
                    ),
                    PoolFail::MinValues(m) => format!("nodepool \"{name}\": minValues: {m}"),
                },
            };
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&msg);
        }
        (out, limited)
    }

    fn terms_text(&self, i: usize) -> String {
        let t: Vec<String> = self.pods[i]
            .eff
            .terms
            .iter()
            .map(|t| describe(self.reqs.get(*t)))
            .collect();
        if t.iter().all(|s| s.is_empty()) {
            "any zone and capacity type".to_string()
        } else {
            t.join(" or ")
        }
    }

    fn why_not_node(&mut self, i: usize, n: usize) -> String {
        let node = &self.p.nodes[n];
        let pod = &self.p.pods[i];
        let strict = self.pods[i].eff.strict_taints;
        if let Some(t) = untolerated(&node.taints, &pod.tolerations, strict) {
            return format!("node(s) had untolerated taint {t}");
        }
        let terms = self.pods[i].eff.terms.clone();
        if !terms.iter().any(|t| self.term_matches_node(*t, n)) {
            return "node(s) didn't match Pod's node affinity/selector".to_string();
        }
        let ns = &self.nodes[n];
        let mut insufficient = vec![];
        for d in 0..self.dims.len() {
            if ns.used[d].saturating_add(self.pods[i].req[d]) > ns.alloc[d] {
                insufficient.push(format!("Insufficient {}", self.dims.name(d)));
            }
        }
        if !insufficient.is_empty() {
            return insufficient.join(", ");
        }
        if pod
            .host_ports
            .iter()
            .any(|hp| ns.ports.iter().any(|o| hp.conflicts(o)))
        {
            return "node(s) didn't have free ports for the requested pod ports".to_string();
        }
        for ki in 0..self.pods[i].eff.check_keys.len() {
            let key = self.pods[i].eff.check_keys[ki];
            let dom = dom_of_node(self.p, &self.keys, n, key);
            if let Err(e) = self.check_key(i, key, dom) {
                return format!("node(s) didn't satisfy {}", self.describe_fail(i, e));
            }
        }
        "node(s) were taken by pods placed before it".to_string()
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
                let (reason, limited_by) = self.explain(i);
                unplaced.push(Unplaced {
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

/// The zone and capacity type a set of requirements allows, for messages.
fn offering_text(req: &Requirements) -> String {
    let part = |k: &str| {
        req.get(k)
            .map_or_else(|| format!("{k} any"), |r| format!("{k} {r}"))
    };
    format!("{}, {}", part(LABEL_ZONE), part(LABEL_CAPACITY_TYPE))
}

/// A node's domain for a topology key: the node itself for hostname, else
/// its label.
fn dom_of_node<'a>(p: &'a Problem, keys: &[String], node: usize, key: u32) -> Dom<'a> {
    let k = &keys[key as usize];
    if k == LABEL_HOSTNAME {
        return Dom::Slot(node as u32);
    }
    match p.nodes[node].labels.get(k) {
        Some(v) => Dom::Value(v),
        None => Dom::Missing,
    }
}

/// A claim's domain for a key: its slot for hostname, else the single
/// value its requirements allow.
fn dom_of_claim<'a>(reqs: &'a Interner, keys: &[String], c: &Claim, key: u32) -> Dom<'a> {
    let k = &keys[key as usize];
    if k == LABEL_HOSTNAME {
        return Dom::Slot(c.slot);
    }
    match reqs.get(c.req).get(k).and_then(|r| r.single()) {
        Some(v) => Dom::Value(v),
        None => Dom::Missing,
    }
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

fn describe(r: &Requirements) -> String {
    r.0.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_dim(name: &str, v: i64) -> String {
    let mut r = Resources::default();
    match name {
        CPU => r.cpu_millis = v,
        MEMORY => r.memory_bytes = v,
        PODS => r.pods = v,
        EPHEMERAL_STORAGE => r.ephemeral_bytes = v,
        other => {
            r.extended.insert(other.to_string(), v);
        }
    }
    // `{"cpu":"64"}` -> `64`
    let s = r.to_string();
    s.rsplit(':')
        .next()
        .unwrap_or("0")
        .trim_end_matches('}')
        .trim_matches('"')
        .to_string()
}

// --- consolidation ---------------------------------------------------------------

/// What removing some nodes would do.
#[derive(Clone, Debug)]
pub struct Removal {
    /// The problem solved: the remaining nodes, and as pods the removed
    /// nodes' pods (daemonset pods left out).
    pub problem: Problem,
    pub plan: Plan,
    /// For each moved pod: (removed node name, pod key).
    pub moved: Vec<(String, String)>,
    /// Hourly price of the removed nodes (nodes without a price count 0).
    pub removed_price: f64,
    /// Hourly price of the claims the plan opens.
    pub replacement_price: f64,
}

impl Removal {
    /// Every moved pod has a place.
    pub fn feasible(&self) -> bool {
        self.plan.unplaced.is_empty()
    }
    pub fn savings(&self) -> f64 {
        self.removed_price - self.replacement_price
    }
    /// Where pod `i` of `problem.pods` would go: a node name or a new claim.
    pub fn destination(&self, i: usize) -> Option<String> {
        match self.plan.target_of(i)? {
            Target::Node(n) => Some(self.problem.nodes[n].name.clone()),
            Target::Claim(c) => Some(format!(
                "new node {} ({})",
                self.plan.claims[c].hostname,
                self.plan.claims[c]
                    .instance_types
                    .first()
                    .map_or("", |t| self.problem.instance_types[*t].name.as_str())
            )),
        }
    }
}

/// If `remove` (indices into `problem.nodes`) were removed, where would
/// their pods go, and what would it cost? The pending pods of `problem`
/// are left out: this answers for the moved pods only.
pub fn simulate_removal(problem: &Problem, remove: &[usize]) -> Removal {
    let gone: HashSet<usize> = remove.iter().copied().collect();
    let mut sub = Problem {
        pods: vec![],
        nodes: vec![],
        pools: problem.pools.clone(),
        instance_types: problem.instance_types.clone(),
        daemonsets: problem.daemonsets.clone(),
    };
    let mut moved = vec![];
    let mut removed_price = 0.0;
    for (i, n) in problem.nodes.iter().enumerate() {
        if gone.contains(&i) {
            removed_price += n.price.unwrap_or(0.0);
            for pod in n.pods.iter().filter(|p| !p.daemon) {
                moved.push((n.name.clone(), pod.key()));
                sub.pods.push(pod.clone());
            }
        } else {
            sub.nodes.push(n.clone());
        }
    }
    let plan = solve(&sub);
    let replacement_price = plan.price();
    Removal {
        problem: sub,
        plan,
        moved,
        removed_price,
        replacement_price,
    }
}
