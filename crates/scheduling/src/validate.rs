//! An independent check of a [`Plan`] against its [`Problem`]: every
//! required constraint, as Kubernetes and Karpenter define it, written
//! without looking at the solver (the property tests hold one against the
//! other).
//!
//! Only required constraints are checked: a preference given up is never a
//! violation. A claim may be launched as any of its instance types, in any
//! zone and capacity type its requirements allow, so every such node must be
//! fine: its possible nodes are all checked.
//!
//! Topology (pod affinity, anti-affinity, spread) is checked by replaying
//! the placements in order, from the pods already on the nodes, as
//! kube-scheduler would see each binding.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use crate::{
    model::{
        LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE, Labels, NewClaim,
        Offering, Plan, Pod, PodAffinityTerm, Problem, Target, untolerated,
    },
    requirements::Requirements,
    resources::Resources,
};

/// The rule a [`Violation`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Indices out of range; a pod not exactly once placed or unplaced; a
    /// claim disagreeing with the placements; an empty reason; a hostname
    /// used twice.
    Bookkeeping,
    /// A NoSchedule/NoExecute taint the pod does not tolerate.
    Taint,
    /// The node selector or required node affinity is not met.
    NodeAffinity,
    /// Requests exceed allocatable, or a claim's requests are miscounted.
    Resources,
    /// Two pods on one node want the same host port.
    HostPort,
    /// A node the claim may launch as breaks the claim's or the pool's
    /// requirements, has conflicting labels, or too few values (minValues).
    ClaimNode,
    /// A listed instance type is incompatible, unavailable or too small.
    InstanceType,
    /// A daemonset that would run on the claim is not counted.
    Daemonsets,
    /// Instance types not cheapest first, or the claim's price is not the
    /// first type's.
    Price,
    /// A node pool's limits are exceeded.
    Limits,
    AntiAffinity,
    /// An existing pod's required anti-affinity matches the placed pod.
    SymmetricAntiAffinity,
    Affinity,
    TopologySpread,
    /// The topology domain of a claim is not determined for a key a
    /// required constraint depends on.
    UndeterminedDomain,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Bookkeeping => "bookkeeping",
            Rule::Taint => "taint",
            Rule::NodeAffinity => "node affinity",
            Rule::Resources => "resources",
            Rule::HostPort => "host port",
            Rule::ClaimNode => "claim node",
            Rule::InstanceType => "instance type",
            Rule::Daemonsets => "daemonsets",
            Rule::Price => "price",
            Rule::Limits => "limits",
            Rule::AntiAffinity => "pod anti-affinity",
            Rule::SymmetricAntiAffinity => "symmetric pod anti-affinity",
            Rule::Affinity => "pod affinity",
            Rule::TopologySpread => "topology spread",
            Rule::UndeterminedDomain => "undetermined topology domain",
        })
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    /// `namespace/name` of the pod concerned, if one is.
    pub pod: Option<String>,
    /// `node NAME` or `claim I (HOSTNAME)`, if a node or claim is concerned.
    pub at: Option<String>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rule)?;
        if let Some(p) = &self.pod {
            write!(f, ": pod {p}")?;
        }
        if let Some(a) = &self.at {
            write!(f, " on {a}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Every rule `plan` breaks; empty if it is valid.
pub fn validate(problem: &Problem, plan: &Plan) -> Vec<Violation> {
    let mut c = Check {
        p: problem,
        plan,
        out: vec![],
        possible: vec![],
        members: vec![],
    };
    let targets = c.bookkeeping();
    c.members = vec![vec![]; plan.claims.len()];
    for (pod, t) in targets.iter().enumerate() {
        if let Some(Target::Claim(i)) = t {
            c.members[*i].push(pod);
        }
    }
    c.possible = (0..plan.claims.len())
        .map(|i| c.possible_nodes(i))
        .collect();
    c.existing_nodes(&targets);
    for i in 0..plan.claims.len() {
        c.claim(i);
    }
    c.limits();
    c.topology(&targets);
    c.out
}

/// A node a claim may be launched as.
struct Possible {
    ty: usize,
    zone: String,
    capacity_type: String,
    price: f64,
    labels: Labels,
}

impl Possible {
    fn describe(&self, p: &Problem) -> String {
        let name = p
            .instance_types
            .get(self.ty)
            .map_or("?", |t| t.name.as_str());
        format!("{name} in {} ({})", self.zone, self.capacity_type)
    }
}

struct Check<'a> {
    p: &'a Problem,
    plan: &'a Plan,
    out: Vec<Violation>,
    /// Per claim, the nodes it may be launched as.
    possible: Vec<Vec<Possible>>,
    /// Per claim, the pods placed on it (from `plan.placements`).
    members: Vec<Vec<usize>>,
}

/// A claim's offering is allowed if available and its zone and capacity
/// type are allowed by the claim's requirements.
fn offering_allowed(reqs: &Requirements, o: &Offering) -> bool {
    o.available
        && reqs.get(LABEL_ZONE).is_none_or(|r| r.allows(Some(&o.zone)))
        && reqs
            .get(LABEL_CAPACITY_TYPE)
            .is_none_or(|r| r.allows(Some(&o.capacity_type)))
}

/// The first requirement `labels` do not meet, described.
fn unmet(reqs: &Requirements, labels: &Labels) -> Option<String> {
    reqs.0.iter().find_map(|(k, r)| {
        let have = labels.get(k);
        (!r.allows(have.map(String::as_str))).then(|| match have {
            Some(v) => format!("requires {k} {r}, but the node has {k}={v}"),
            None => format!("requires {k} {r}, but the node has no {k} label"),
        })
    })
}

/// Why a pod does not match a node.
fn pod_mismatch(pod: &Pod, labels: &Labels) -> String {
    if let Some((k, v)) = pod
        .node_selector
        .iter()
        .find(|(k, v)| labels.get(*k) != Some(*v))
    {
        return match labels.get(k) {
            Some(have) => format!("node selector {k}={v}, but the node has {k}={have}"),
            None => format!("node selector {k}={v}, but the node has no {k} label"),
        };
    }
    let why: Vec<String> = pod
        .required_terms
        .iter()
        .filter_map(|t| unmet(t, labels))
        .collect();
    format!(
        "no required node-affinity term matches ({})",
        why.join("; ")
    )
}

/// Whether a pod (anti-)affinity term of a pod in `owner_ns` selects `q`.
fn term_selects(term: &PodAffinityTerm, owner_ns: &str, q: &Pod) -> bool {
    let ns = if term.namespaces.is_empty() {
        q.namespace == owner_ns
    } else {
        term.namespaces.contains(&q.namespace)
    };
    ns && term.selector.matches(&q.labels)
}

fn same_resources(a: &Resources, b: &Resources) -> bool {
    a.fits(b) && b.fits(a)
}

impl Check<'_> {
    fn push(&mut self, rule: Rule, pod: Option<String>, at: Option<String>, detail: String) {
        self.out.push(Violation {
            rule,
            pod,
            at,
            detail,
        });
    }

    fn pod_key(&self, i: usize) -> Option<String> {
        self.p.pods.get(i).map(Pod::key)
    }

    fn at(&self, t: Target) -> String {
        match t {
            Target::Node(i) => match self.p.nodes.get(i) {
                Some(n) => format!("node {}", n.name),
                None => format!("node #{i}"),
            },
            Target::Claim(i) => match self.plan.claims.get(i) {
                Some(c) => format!("claim {i} ({})", c.hostname),
                None => format!("claim #{i}"),
            },
        }
    }

    // --- 1. bookkeeping ------------------------------------------------------

    /// Checks indices and that every pod is placed or unplaced exactly once;
    /// returns each pod's target (its first valid placement).
    fn bookkeeping(&mut self) -> Vec<Option<Target>> {
        let (p, plan) = (self.p, self.plan);
        let n = p.pods.len();
        let mut targets: Vec<Option<Target>> = vec![None; n];
        let mut placed = vec![0usize; n];
        for (k, &(pod, t)) in plan.placements.iter().enumerate() {
            let in_range = match t {
                Target::Node(i) => i < p.nodes.len(),
                Target::Claim(i) => i < plan.claims.len(),
            };
            if pod >= n {
                self.push(
                    Rule::Bookkeeping,
                    None,
                    None,
                    format!("placement #{k} names pod #{pod}, but there are {n} pods"),
                );
                continue;
            }
            if !in_range {
                self.push(
                    Rule::Bookkeeping,
                    self.pod_key(pod),
                    None,
                    format!("placement #{k} targets {t:?}, which does not exist"),
                );
                continue;
            }
            placed[pod] += 1;
            if placed[pod] == 2 {
                self.push(
                    Rule::Bookkeeping,
                    self.pod_key(pod),
                    None,
                    "placed more than once".into(),
                );
            }
            if targets[pod].is_none() {
                targets[pod] = Some(t);
            }
        }
        let mut unplaced = vec![0usize; n];
        for u in &plan.unplaced {
            if u.pod >= n {
                self.push(
                    Rule::Bookkeeping,
                    None,
                    None,
                    format!("unplaced pod #{}, but there are {n} pods", u.pod),
                );
                continue;
            }
            unplaced[u.pod] += 1;
            if u.reason.trim().is_empty() {
                self.push(
                    Rule::Bookkeeping,
                    self.pod_key(u.pod),
                    None,
                    "unplaced without a reason".into(),
                );
            }
        }
        for i in 0..n {
            let detail = match (placed[i], unplaced[i]) {
                (0, 0) => "neither placed nor unplaced",
                (0, 1) | (1, 0) => continue,
                (0, _) => "unplaced more than once",
                (_, 0) => continue, // placed twice: reported above
                _ => "both placed and unplaced",
            };
            self.push(Rule::Bookkeeping, self.pod_key(i), None, detail.into());
        }
        for (k, (pod, _)) in plan.relaxed.iter().enumerate() {
            if *pod >= n {
                self.push(
                    Rule::Bookkeeping,
                    None,
                    None,
                    format!("relaxed entry #{k} names pod #{pod}, but there are {n} pods"),
                );
            }
        }
        let mut hostnames: BTreeSet<&str> = p
            .nodes
            .iter()
            .filter_map(|n| n.labels.get(LABEL_HOSTNAME).map(String::as_str))
            .collect();
        for (ci, c) in plan.claims.iter().enumerate() {
            let at = Some(self.at(Target::Claim(ci)));
            let mut bad = vec![];
            if c.pool >= p.pools.len() {
                bad.push(format!("pool #{} does not exist", c.pool));
            }
            if c.instance_types.is_empty() {
                bad.push("lists no instance type".to_string());
            }
            if let Some(t) = c
                .instance_types
                .iter()
                .find(|t| **t >= p.instance_types.len())
            {
                bad.push(format!("instance type #{t} does not exist"));
            }
            if let Some(d) = c.daemonsets.iter().find(|d| **d >= p.daemonsets.len()) {
                bad.push(format!("daemonset #{d} does not exist"));
            }
            if has_duplicates(&c.instance_types) {
                bad.push("lists an instance type twice".to_string());
            }
            if has_duplicates(&c.daemonsets) {
                bad.push("lists a daemonset twice".to_string());
            }
            if has_duplicates(&c.pods) {
                bad.push("lists a pod twice".to_string());
            }
            if c.pods.is_empty() {
                bad.push("has no pods".to_string());
            }
            if c.hostname.is_empty() {
                bad.push("has no hostname".to_string());
            } else if !hostnames.insert(&c.hostname) {
                bad.push(format!(
                    "hostname {} is used by another node or claim",
                    c.hostname
                ));
            }
            for d in bad {
                self.push(Rule::Bookkeeping, None, at.clone(), d);
            }
            let listed: BTreeSet<usize> = c.pods.iter().copied().collect();
            let placed_here: BTreeSet<usize> = (0..n)
                .filter(|i| targets[*i] == Some(Target::Claim(ci)))
                .collect();
            for i in listed.difference(&placed_here) {
                let detail = if *i >= n {
                    format!("lists pod #{i}, which does not exist")
                } else {
                    "lists the pod, but it is not placed on the claim".to_string()
                };
                self.push(Rule::Bookkeeping, self.pod_key(*i), at.clone(), detail);
            }
            for i in placed_here.difference(&listed) {
                self.push(
                    Rule::Bookkeeping,
                    self.pod_key(*i),
                    at.clone(),
                    "the pod is placed on the claim, but the claim does not list it".into(),
                );
            }
        }
        targets
    }

    // --- 2. existing nodes -----------------------------------------------------

    fn existing_nodes(&mut self, targets: &[Option<Target>]) {
        let p = self.p;
        let mut on_node: Vec<Vec<usize>> = vec![vec![]; p.nodes.len()];
        for (pod, t) in targets.iter().enumerate() {
            if let Some(Target::Node(i)) = t {
                on_node[*i].push(pod);
            }
        }
        for (ni, node) in p.nodes.iter().enumerate() {
            if on_node[ni].is_empty() {
                continue;
            }
            let at = Some(self.at(Target::Node(ni)));
            for &i in &on_node[ni] {
                let pod = &p.pods[i];
                if let Some(t) = untolerated(&node.taints, &pod.tolerations, false) {
                    self.push(
                        Rule::Taint,
                        Some(pod.key()),
                        at.clone(),
                        format!("does not tolerate taint {t}"),
                    );
                }
                if !pod.matches_node(&node.labels) {
                    self.push(
                        Rule::NodeAffinity,
                        Some(pod.key()),
                        at.clone(),
                        pod_mismatch(pod, &node.labels),
                    );
                }
            }
            let total = Resources::sum(
                node.pods
                    .iter()
                    .map(|q| &q.requests)
                    .chain(on_node[ni].iter().map(|i| &p.pods[*i].requests)),
            );
            let over = total.exceeding(&node.allocatable);
            if !over.is_empty() {
                self.push(
                    Rule::Resources,
                    None,
                    at.clone(),
                    format!(
                        "requests {total} exceed allocatable {} ({})",
                        node.allocatable,
                        over.join(", ")
                    ),
                );
            }
            let mut holders: Vec<(String, bool, &Pod)> =
                node.pods.iter().map(|q| (q.key(), false, q)).collect();
            holders.extend(
                on_node[ni]
                    .iter()
                    .map(|i| (p.pods[*i].key(), true, &p.pods[*i])),
            );
            self.host_ports(&holders, at);
        }
    }

    /// Host-port conflicts between `holders` (name, placed by the plan, pod)
    /// where at least one side is placed by the plan.
    fn host_ports(&mut self, holders: &[(String, bool, &Pod)], at: Option<String>) {
        for (a, (an, ap, apod)) in holders.iter().enumerate() {
            for (bn, bp, bpod) in &holders[a + 1..] {
                if !ap && !bp {
                    continue;
                }
                let clash = apod
                    .host_ports
                    .iter()
                    .find(|x| bpod.host_ports.iter().any(|y| x.conflicts(y)));
                if let Some(port) = clash {
                    let (pod, other) = if *bp { (bn, an) } else { (an, bn) };
                    self.push(
                        Rule::HostPort,
                        Some(pod.clone()),
                        at.clone(),
                        format!(
                            "host port {}/{} conflicts with {other}",
                            port.port, port.protocol
                        ),
                    );
                }
            }
        }
    }

    // --- 3. claims -------------------------------------------------------------

    /// The nodes claim `ci` may be launched as; reports conflicting labels.
    fn possible_nodes(&mut self, ci: usize) -> Vec<Possible> {
        let (p, c) = (self.p, &self.plan.claims[ci]);
        let Some(pool) = p.pools.get(c.pool) else {
            return vec![];
        };
        let claim_labels = c.requirements.single_values();
        let mut out = vec![];
        let mut conflicts: BTreeSet<String> = BTreeSet::new();
        for &ti in &c.instance_types {
            let Some(t) = p.instance_types.get(ti) else {
                continue;
            };
            let type_labels = t.requirements.single_values();
            for o in t
                .offerings
                .iter()
                .filter(|o| offering_allowed(&c.requirements, o))
            {
                let mut labels = Labels::new();
                let fixed = [
                    (LABEL_ZONE, o.zone.as_str(), "offering"),
                    (LABEL_CAPACITY_TYPE, o.capacity_type.as_str(), "offering"),
                    (LABEL_NODEPOOL, pool.name.as_str(), "node pool"),
                    (LABEL_HOSTNAME, c.hostname.as_str(), "hostname"),
                ];
                let sources = pool
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str(), "pool labels"))
                    .chain(
                        claim_labels
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str(), "claim requirements")),
                    )
                    .chain(
                        type_labels
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str(), "instance type")),
                    )
                    .chain(fixed);
                for (k, v, from) in sources {
                    match labels.get(k) {
                        Some(old) if old != v => {
                            conflicts.insert(format!(
                                "{} would be labelled both {k}={old} and {k}={v} (from the {from})",
                                t.name
                            ));
                        }
                        Some(_) => {}
                        None => {
                            labels.insert(k.to_string(), v.to_string());
                        }
                    }
                }
                out.push(Possible {
                    ty: ti,
                    zone: o.zone.clone(),
                    capacity_type: o.capacity_type.clone(),
                    price: o.price,
                    labels,
                });
            }
        }
        let at = Some(self.at(Target::Claim(ci)));
        for d in conflicts {
            self.push(Rule::ClaimNode, None, at.clone(), d);
        }
        out
    }

    fn claim(&mut self, ci: usize) {
        let (p, c) = (self.p, &self.plan.claims[ci]);
        let Some(pool) = p.pools.get(c.pool) else {
            return;
        };
        let at = Some(self.at(Target::Claim(ci)));
        let possible = std::mem::take(&mut self.possible[ci]);
        let members = std::mem::take(&mut self.members[ci]);

        // Instance types: compatible, offered, big enough; prices in order.
        let mut prices: Vec<(usize, Option<f64>)> = vec![];
        for &ti in &c.instance_types {
            let Some(t) = p.instance_types.get(ti) else {
                continue;
            };
            if let Err(e) = c.requirements.compatible(&t.requirements) {
                self.push(
                    Rule::InstanceType,
                    None,
                    at.clone(),
                    format!("{} is incompatible with the claim: {e}", t.name),
                );
            }
            if let Some(allowed) = p.pools.get(c.pool).and_then(|k| k.instance_types.as_ref())
                && !allowed.contains(&ti)
            {
                self.push(
                    Rule::InstanceType,
                    None,
                    at.clone(),
                    format!("{} is not one of the pool's instance types", t.name),
                );
            }
            let price = possible
                .iter()
                .filter(|n| n.ty == ti)
                .map(|n| n.price)
                .min_by(f64::total_cmp);
            if price.is_none() {
                self.push(
                    Rule::InstanceType,
                    None,
                    at.clone(),
                    format!(
                        "{} has no available offering the claim's requirements allow",
                        t.name
                    ),
                );
            }
            let alloc = t.allocatable();
            let over = c.requests.exceeding(&alloc);
            if !over.is_empty() {
                self.push(
                    Rule::InstanceType,
                    None,
                    at.clone(),
                    format!(
                        "requests {} exceed {}'s allocatable {alloc} ({})",
                        c.requests,
                        t.name,
                        over.join(", ")
                    ),
                );
            }
            prices.push((ti, price));
        }
        let priced: Vec<(usize, f64)> = prices
            .iter()
            .filter_map(|(t, pr)| pr.map(|pr| (*t, pr)))
            .collect();
        for w in priced.windows(2) {
            if w[0].1 > w[1].1 + 1e-9 {
                self.push(
                    Rule::Price,
                    None,
                    at.clone(),
                    format!(
                        "instance types not cheapest first: {} ({}) before {} ({})",
                        p.instance_types[w[0].0].name,
                        w[0].1,
                        p.instance_types[w[1].0].name,
                        w[1].1
                    ),
                );
            }
        }
        if let Some((_, Some(first))) = prices.first()
            && (c.price - first).abs() > 1e-9
        {
            self.push(
                Rule::Price,
                None,
                at.clone(),
                format!(
                    "price {} is not the first instance type's cheapest allowed offering ({first})",
                    c.price
                ),
            );
        }

        // Every possible node meets the claim's and the pool's requirements.
        for (what, reqs) in [
            ("the claim's", &c.requirements),
            ("the pool's", &pool.requirements),
        ] {
            if let Some((n, why)) = possible
                .iter()
                .find_map(|n| unmet(reqs, &n.labels).map(|w| (n, w)))
            {
                self.push(
                    Rule::ClaimNode,
                    None,
                    at.clone(),
                    format!("{} breaks {what} requirements: {why}", n.describe(p)),
                );
            }
            for (k, r) in &reqs.0 {
                if let Some(min) = r.min_values {
                    let values: BTreeSet<Option<&String>> =
                        possible.iter().map(|n| n.labels.get(k)).collect();
                    if values.len() < min {
                        self.push(
                            Rule::ClaimNode,
                            None,
                            at.clone(),
                            format!(
                                "{what} requirements want at least {min} values of {k}, the claim's nodes have {}",
                                values.len()
                            ),
                        );
                    }
                }
            }
        }

        // Its pods tolerate the pool's taints and match every possible node.
        for &i in &members {
            let pod = &p.pods[i];
            if let Some(t) = untolerated(&pool.taints, &pod.tolerations, false) {
                self.push(
                    Rule::Taint,
                    Some(pod.key()),
                    at.clone(),
                    format!("does not tolerate the pool's taint {t}"),
                );
            }
            if let Some(n) = possible.iter().find(|n| !pod.matches_node(&n.labels)) {
                self.push(
                    Rule::NodeAffinity,
                    Some(pod.key()),
                    at.clone(),
                    format!(
                        "the claim may launch as {}: {}",
                        n.describe(p),
                        pod_mismatch(pod, &n.labels)
                    ),
                );
            }
        }

        // Requests: its pods plus its daemonsets.
        let daemonsets: Vec<&Pod> = c
            .daemonsets
            .iter()
            .filter_map(|d| p.daemonsets.get(*d))
            .collect();
        let want = Resources::sum(
            c.pods
                .iter()
                .filter_map(|i| p.pods.get(*i))
                .map(|q| &q.requests)
                .chain(daemonsets.iter().map(|d| &d.requests)),
        );
        if !same_resources(&want, &c.requests) {
            self.push(
                Rule::Resources,
                None,
                at.clone(),
                format!(
                    "requests {} are not its pods' and daemonsets' {want}",
                    c.requests
                ),
            );
        }

        // Every daemonset that would run on it is counted.
        if let Some(first) = possible.first() {
            for (di, d) in p.daemonsets.iter().enumerate() {
                if !c.daemonsets.contains(&di)
                    && untolerated(&pool.taints, &d.tolerations, false).is_none()
                    && d.matches_node(&first.labels)
                {
                    self.push(
                        Rule::Daemonsets,
                        None,
                        at.clone(),
                        format!("daemonset {} would run on it but is not counted", d.key()),
                    );
                }
            }
        }

        // Host ports of its pods and daemonsets.
        let mut holders: Vec<(String, bool, &Pod)> = daemonsets
            .iter()
            .map(|d| (format!("daemonset {}", d.key()), false, *d))
            .collect();
        holders.extend(
            members
                .iter()
                .map(|i| (p.pods[*i].key(), true, &p.pods[*i])),
        );
        self.host_ports(&holders, at);

        self.possible[ci] = possible;
        self.members[ci] = members;
    }

    // --- 4. limits -------------------------------------------------------------

    fn limits(&mut self) {
        let (p, plan) = (self.p, self.plan);
        for (pi, pool) in p.pools.iter().enumerate() {
            let claims: Vec<&NewClaim> = plan.claims.iter().filter(|c| c.pool == pi).collect();
            if pool.limits.is_empty() || claims.is_empty() {
                continue;
            }
            for (name, max) in &pool.limits {
                let launched: i64 = claims
                    .iter()
                    .map(|c| {
                        c.instance_types
                            .iter()
                            .filter_map(|t| p.instance_types.get(*t))
                            .map(|t| t.capacity.get(name))
                            .max()
                            .unwrap_or(0)
                    })
                    .fold(0i64, i64::saturating_add);
                let total = pool.usage.get(name).saturating_add(launched);
                if total > *max {
                    self.push(
                        Rule::Limits,
                        None,
                        Some(format!("node pool {}", pool.name)),
                        format!(
                            "{name}: usage {} + {launched} for {} claims (at their largest types) exceeds the limit {max}",
                            pool.usage.get(name),
                            claims.len()
                        ),
                    );
                }
            }
        }
    }

    // --- 5. topology -----------------------------------------------------------

    /// A target's domain for a topology key.
    fn domain(&self, t: Target, key: &str) -> Dom {
        match t {
            Target::Node(i) => match self.p.nodes.get(i).and_then(|n| n.labels.get(key)) {
                Some(v) => Dom::In(v.clone()),
                None => Dom::Absent,
            },
            Target::Claim(i) => {
                let Some(c) = self.plan.claims.get(i) else {
                    return Dom::Undetermined;
                };
                if key == LABEL_HOSTNAME {
                    return Dom::In(c.hostname.clone());
                }
                let mut values = self.possible[i].iter().map(|n| n.labels.get(key));
                let Some(first) = values.next() else {
                    return Dom::Undetermined;
                };
                if values.all(|v| v == first) {
                    first.map_or(Dom::Absent, |v| Dom::In(v.clone()))
                } else {
                    Dom::Undetermined
                }
            }
        }
    }

    /// True if `pod` may be on target `t` as far as node affinity goes (for
    /// a claim: on at least one of its possible nodes).
    fn node_affine(&self, pod: &Pod, t: Target) -> bool {
        match t {
            Target::Node(i) => self
                .p
                .nodes
                .get(i)
                .is_some_and(|n| pod.matches_node(&n.labels)),
            Target::Claim(i) => self
                .possible
                .get(i)
                .is_some_and(|ns| ns.iter().any(|n| pod.matches_node(&n.labels))),
        }
    }

    fn topology(&mut self, targets: &[Option<Target>]) {
        let (p, plan) = (self.p, self.plan);
        // Domains of every target for every key a required term uses.
        let all_targets: Vec<Target> = (0..p.nodes.len())
            .map(Target::Node)
            .chain((0..plan.claims.len()).map(Target::Claim))
            .collect();
        let owners: Vec<&Pod> = p
            .pods
            .iter()
            .chain(p.nodes.iter().flat_map(|n| n.pods.iter()))
            .collect();
        let mut doms = Domains::default();
        for pod in &owners {
            for key in required_keys(pod) {
                if !doms.0.contains_key(key) {
                    let d = all_targets
                        .iter()
                        .map(|t| (*t, self.domain(*t, key)))
                        .collect();
                    doms.0.insert(key.to_string(), d);
                }
            }
        }

        // A claim whose domain is undetermined for a key a required term
        // uses cannot have its pods counted.
        // A running pod's affinity and spread were settled when it was
        // scheduled; only its anti-affinity still constrains new pods.
        let mut reported: BTreeSet<(usize, &str)> = BTreeSet::new();
        for (oi, owner) in owners.iter().enumerate() {
            let running = oi >= p.pods.len();
            for (key, selects) in required_selectors(owner, running) {
                for (ci, members) in self.members.iter().enumerate() {
                    if *doms.get(Target::Claim(ci), key) != Dom::Undetermined
                        || reported.contains(&(ci, key))
                    {
                        continue;
                    }
                    if let Some(&i) = members.iter().find(|i| selects(&p.pods[**i])) {
                        reported.insert((ci, key));
                        self.out.push(Violation {
                            rule: Rule::UndeterminedDomain,
                            pod: Some(p.pods[i].key()),
                            at: Some(self.at(Target::Claim(ci))),
                            detail: format!(
                                "the claim's {key} is not determined, but a required constraint of {} counts the pod",
                                owner.key()
                            ),
                        });
                    }
                }
            }
        }

        // Replay.
        let mut placed: Vec<(&Pod, Target)> = p
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.pods.iter().map(move |q| (q, Target::Node(i))))
            .collect();
        let mut seen = vec![false; p.pods.len()];
        for &(i, x) in &plan.placements {
            if targets.get(i).copied().flatten() != Some(x) || seen[i] {
                continue;
            }
            seen[i] = true;
            let pod = &p.pods[i];
            let mut found = vec![];
            self.replay_one(pod, x, &placed, &doms, &all_targets, &mut found);
            let at = self.at(x);
            for (rule, detail) in found {
                self.push(rule, Some(pod.key()), Some(at.clone()), detail);
            }
            placed.push((pod, x));
        }
    }

    /// The topology rules broken by placing `pod` on `x` after `placed`.
    fn replay_one(
        &self,
        pod: &Pod,
        x: Target,
        placed: &[(&Pod, Target)],
        doms: &Domains,
        all_targets: &[Target],
        found: &mut Vec<(Rule, String)>,
    ) {
        // Pods in x's domain for a key, or None if x has no domain.
        let in_domain = |key: &str| -> Option<Vec<&Pod>> {
            let Dom::In(v) = doms.get(x, key) else {
                return None;
            };
            Some(
                placed
                    .iter()
                    .filter(|(_, t)| matches!(doms.get(*t, key), Dom::In(w) if w == v))
                    .map(|(q, _)| *q)
                    .collect(),
            )
        };
        let mut undetermined = BTreeSet::new();
        for key in required_keys(pod) {
            if *doms.get(x, key) == Dom::Undetermined && undetermined.insert(key) {
                found.push((
                    Rule::UndeterminedDomain,
                    format!("the pod has a required constraint on {key}, which the target does not determine"),
                ));
            }
        }

        // Anti-affinity.
        for term in &pod.anti_affinity {
            if undetermined.contains(term.topology_key.as_str()) {
                continue;
            }
            if let Some(q) = in_domain(&term.topology_key)
                .unwrap_or_default()
                .into_iter()
                .find(|q| term_selects(term, &pod.namespace, q))
            {
                found.push((
                    Rule::AntiAffinity,
                    format!(
                        "{} ({}) is already in its {} domain {}",
                        q.key(),
                        term.selector,
                        term.topology_key,
                        doms.get(x, &term.topology_key)
                    ),
                ));
            }
        }

        // Symmetry: existing pods' anti-affinity.
        for (q, qt) in placed {
            for term in &q.anti_affinity {
                if !term_selects(term, &q.namespace, pod) {
                    continue;
                }
                let key = term.topology_key.as_str();
                match (doms.get(x, key), doms.get(*qt, key)) {
                    (Dom::Undetermined, _) if !undetermined.contains(key) => {
                        undetermined.insert(key);
                        found.push((
                            Rule::UndeterminedDomain,
                            format!(
                                "{}'s required anti-affinity on {key} selects the pod, and the target does not determine {key}",
                                q.key()
                            ),
                        ));
                    }
                    (Dom::In(a), Dom::In(b)) if a == b => found.push((
                        Rule::SymmetricAntiAffinity,
                        format!(
                            "{} in {key} domain {a} has required anti-affinity ({}) selecting the pod",
                            q.key(),
                            term.selector
                        ),
                    )),
                    _ => {}
                }
            }
        }

        // Affinity (kube-scheduler's satisfyPodAffinity).
        if !pod.affinity.is_empty()
            && !pod
                .affinity
                .iter()
                .any(|t| undetermined.contains(t.topology_key.as_str()))
        {
            let mut missing = None;
            let mut unmatched = None;
            for term in &pod.affinity {
                match in_domain(&term.topology_key) {
                    None => {
                        missing.get_or_insert(term);
                    }
                    Some(pods) => {
                        if !pods.iter().any(|q| term_selects(term, &pod.namespace, q)) {
                            unmatched.get_or_insert(term);
                        }
                    }
                }
            }
            if let Some(term) = missing {
                found.push((
                    Rule::Affinity,
                    format!(
                        "required affinity ({}) on {}: the target has no {} label",
                        term.selector, term.topology_key, term.topology_key
                    ),
                ));
            } else if let Some(term) = unmatched {
                // The first pod of a self-affine group: nothing anywhere
                // matches any term and the pod matches all of them.
                let anywhere = pod.affinity.iter().any(|t| {
                    placed.iter().any(|(q, qt)| {
                        matches!(doms.get(*qt, &t.topology_key), Dom::In(_))
                            && term_selects(t, &pod.namespace, q)
                    })
                });
                let itself = pod
                    .affinity
                    .iter()
                    .all(|t| term_selects(t, &pod.namespace, pod));
                if anywhere || !itself {
                    found.push((
                        Rule::Affinity,
                        format!(
                            "required affinity ({}): no matching pod in its {} domain {}",
                            term.selector,
                            term.topology_key,
                            doms.get(x, &term.topology_key)
                        ),
                    ));
                }
            }
        }

        // Topology spread (kube-scheduler's PodTopologySpread filter; pods
        // are counted on the targets that pass the pod's node affinity).
        for s in pod.spread.iter().filter(|s| s.required) {
            let key = s.topology_key.as_str();
            let dx = match doms.get(x, key) {
                Dom::In(v) => v,
                Dom::Undetermined => continue,
                Dom::Absent => {
                    found.push((
                        Rule::TopologySpread,
                        format!("spread on {key}: the target has no {key} label"),
                    ));
                    continue;
                }
            };
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            for t in all_targets {
                if let Dom::In(v) = doms.get(*t, key)
                    && self.node_affine(pod, *t)
                {
                    counts.entry(v.as_str()).or_insert(0);
                }
            }
            for (q, qt) in placed {
                if let Dom::In(v) = doms.get(*qt, key)
                    && q.namespace == pod.namespace
                    && s.selector.matches(&q.labels)
                    && self.node_affine(pod, *qt)
                {
                    *counts.entry(v.as_str()).or_insert(0) += 1;
                }
            }
            let min = counts.values().copied().min().unwrap_or(0);
            let here = counts.get(dx.as_str()).copied().unwrap_or(0);
            let own = u64::from(s.selector.matches(&pod.labels));
            if (here + own).saturating_sub(min) > u64::from(s.max_skew) {
                found.push((
                    Rule::TopologySpread,
                    format!(
                        "spread on {key} ({}): {dx} would have {} matching pods, the least loaded domain {min}, max skew {}",
                        s.selector,
                        here + own,
                        s.max_skew
                    ),
                ));
            }
        }
    }
}

fn has_duplicates(v: &[usize]) -> bool {
    let set: BTreeSet<&usize> = v.iter().collect();
    set.len() != v.len()
}

/// A target's topology domain for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Dom {
    In(String),
    /// The node has no label for the key: it is in no domain.
    Absent,
    /// The claim's possible nodes disagree.
    Undetermined,
}

impl fmt::Display for Dom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dom::In(v) => f.write_str(v),
            Dom::Absent => f.write_str("(none)"),
            Dom::Undetermined => f.write_str("(undetermined)"),
        }
    }
}

static UNDETERMINED: Dom = Dom::Undetermined;

/// Key -> target -> domain.
#[derive(Default)]
struct Domains(BTreeMap<String, BTreeMap<Target, Dom>>);

impl Domains {
    fn get(&self, t: Target, key: &str) -> &Dom {
        self.0
            .get(key)
            .and_then(|m| m.get(&t))
            .unwrap_or(&UNDETERMINED)
    }
}

/// The topology keys of a pod's required affinity, anti-affinity and
/// spread constraints.
fn required_keys(pod: &Pod) -> BTreeSet<&str> {
    pod.affinity
        .iter()
        .chain(&pod.anti_affinity)
        .map(|t| t.topology_key.as_str())
        .chain(
            pod.spread
                .iter()
                .filter(|s| s.required)
                .map(|s| s.topology_key.as_str()),
        )
        .collect()
}

type Selects<'a> = Box<dyn Fn(&Pod) -> bool + 'a>;

/// The required terms of `owner` as (key, which pods it counts); for a
/// running pod only its anti-affinity.
fn required_selectors(owner: &Pod, running: bool) -> Vec<(&str, Selects<'_>)> {
    let mut out: Vec<(&str, Selects<'_>)> = vec![];
    let affinity: &[_] = if running { &[] } else { &owner.affinity };
    for t in affinity.iter().chain(&owner.anti_affinity) {
        out.push((
            t.topology_key.as_str(),
            Box::new(move |q: &Pod| term_selects(t, &owner.namespace, q)),
        ));
    }
    for s in owner.spread.iter().filter(|s| s.required && !running) {
        out.push((
            s.topology_key.as_str(),
            Box::new(move |q: &Pod| {
                q.namespace == owner.namespace && s.selector.matches(&q.labels)
            }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        eks,
        model::{
            CAPACITY_ON_DEMAND, CAPACITY_SPOT, HostPort, InstanceType, LABEL_INSTANCE_TYPE,
            LabelSelector, Node, NodePool, Taint, TaintEffect, Toleration, TopologySpread,
            Unplaced,
        },
        requirements::{Operator, Requirement},
    };

    const A: &str = "zone-a";
    const B: &str = "zone-b";

    fn offer(zone: &str, ct: &str, price: f64) -> Offering {
        Offering {
            zone: zone.into(),
            capacity_type: ct.into(),
            price,
            available: true,
        }
    }

    fn itype(name: &str, od: f64) -> InstanceType {
        eks::instance_type(
            &eks::shape(name).unwrap(),
            &Default::default(),
            vec![
                offer(A, CAPACITY_ON_DEMAND, od),
                offer(B, CAPACITY_ON_DEMAND, od),
                offer(A, CAPACITY_SPOT, od * 0.4),
                offer(B, CAPACITY_SPOT, od * 0.5),
            ],
        )
    }

    fn reqs(list: &[(&str, Operator, &[&str])]) -> Requirements {
        let mut r = Requirements::default();
        for (k, op, v) in list {
            r.add(k, Requirement::new(k, *op, v).unwrap());
        }
        r
    }

    fn zone_req(zone: &str) -> Requirements {
        if zone.is_empty() {
            Requirements::default()
        } else {
            reqs(&[(LABEL_ZONE, Operator::In, &[zone])])
        }
    }

    fn pod(name: &str, app: &str, cpu: i64) -> Pod {
        let mut p = Pod::new(
            "default",
            name,
            Resources {
                cpu_millis: cpu,
                ..Default::default()
            },
        );
        p.labels.insert("app".into(), app.into());
        p
    }

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            selector: LabelSelector::labels(&[("app", app)]),
            namespaces: vec![],
            topology_key: key.into(),
        }
    }

    fn spread(app: &str, key: &str, max_skew: u32) -> TopologySpread {
        TopologySpread {
            max_skew,
            topology_key: key.into(),
            required: true,
            selector: LabelSelector::labels(&[("app", app)]),
        }
    }

    fn port(n: u16) -> HostPort {
        HostPort {
            port: n,
            protocol: "TCP".into(),
            ip: String::new(),
        }
    }

    /// A claim with its requests and price worked out from its parts.
    fn claim(
        p: &Problem,
        hostname: &str,
        requirements: Requirements,
        types: &[usize],
        pods: &[usize],
        daemonsets: &[usize],
    ) -> NewClaim {
        let requests = Resources::sum(
            pods.iter()
                .map(|i| &p.pods[*i].requests)
                .chain(daemonsets.iter().map(|d| &p.daemonsets[*d].requests)),
        );
        let price = p.instance_types[types[0]]
            .offerings
            .iter()
            .filter(|o| offering_allowed(&requirements, o))
            .map(|o| o.price)
            .fold(f64::INFINITY, f64::min);
        NewClaim {
            pool: 0,
            hostname: hostname.into(),
            requirements,
            instance_types: types.to_vec(),
            pods: pods.to_vec(),
            daemonsets: daemonsets.to_vec(),
            requests,
            price,
        }
    }

    fn catalogue() -> Problem {
        let large = itype("m6i.large", 0.096);
        let node = Node {
            name: "n1".into(),
            labels: [
                (LABEL_HOSTNAME, "n1"),
                (LABEL_ZONE, A),
                (LABEL_CAPACITY_TYPE, CAPACITY_ON_DEMAND),
                (LABEL_INSTANCE_TYPE, "m6i.large"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            allocatable: large.allocatable(),
            ..Default::default()
        };
        Problem {
            instance_types: vec![large, itype("m6i.xlarge", 0.192)],
            pools: vec![NodePool {
                name: "default".into(),
                ..Default::default()
            }],
            nodes: vec![node],
            ..Default::default()
        }
    }

    /// A valid plan using an existing node, two claims, a daemonset,
    /// anti-affinity, affinity, spread and host ports.
    fn scenario() -> (Problem, Plan) {
        let mut p = catalogue();
        let mut db0 = pod("db-0", "db", 500);
        db0.anti_affinity = vec![term("db", LABEL_HOSTNAME)];
        p.nodes[0].pods = vec![db0];
        let mut ds = pod("node-exporter", "exporter", 100);
        ds.namespace = "kube-system".into();
        ds.host_ports = vec![port(9100)];
        p.daemonsets = vec![ds];
        let web = |name| {
            let mut w = pod(name, "web", 500);
            w.anti_affinity = vec![term("web", LABEL_HOSTNAME)];
            w.spread = vec![spread("web", LABEL_ZONE, 1)];
            w.host_ports = vec![port(8080)];
            w
        };
        let mut cache = pod("cache-0", "cache", 250);
        cache.affinity = vec![term("web", LABEL_ZONE)];
        let mut db1 = pod("db-1", "db", 1000);
        db1.anti_affinity = vec![term("db", LABEL_HOSTNAME)];
        p.pods = vec![web("web-0"), web("web-1"), cache, db1];
        let claims = vec![
            claim(&p, "c0", zone_req(B), &[0, 1], &[1, 2], &[0]),
            claim(&p, "c1", zone_req(A), &[0, 1], &[3], &[0]),
        ];
        let plan = Plan {
            placements: vec![
                (0, Target::Node(0)),
                (1, Target::Claim(0)),
                (2, Target::Claim(0)),
                (3, Target::Claim(1)),
            ],
            claims,
            ..Default::default()
        };
        (p, plan)
    }

    /// Pods all of 100m placed in order on claims of the given zones ("":
    /// no zone requirement), no daemonsets.
    fn mini(pods: Vec<Pod>, zones: &[&str], order: &[(usize, usize)]) -> (Problem, Plan) {
        let mut p = catalogue();
        p.pods = pods;
        let claims = zones
            .iter()
            .enumerate()
            .map(|(ci, z)| {
                let members: Vec<usize> = order
                    .iter()
                    .filter(|(_, c)| *c == ci)
                    .map(|(i, _)| *i)
                    .collect();
                claim(&p, &format!("c{ci}"), zone_req(z), &[0, 1], &members, &[])
            })
            .collect();
        let plan = Plan {
            placements: order.iter().map(|(i, c)| (*i, Target::Claim(*c))).collect(),
            claims,
            ..Default::default()
        };
        (p, plan)
    }

    fn rules(v: &[Violation]) -> BTreeSet<Rule> {
        v.iter().map(|v| v.rule).collect()
    }

    #[track_caller]
    fn only(p: &Problem, plan: &Plan, rule: Rule) -> Vec<Violation> {
        let v = validate(p, plan);
        let shown: Vec<String> = v.iter().map(|v| v.to_string()).collect();
        assert_eq!(rules(&v), [rule].into(), "{shown:#?}");
        v
    }

    #[test]
    fn a_valid_plan_passes() {
        let (p, plan) = scenario();
        assert_eq!(validate(&p, &plan), vec![]);
        let all_unplaced = Plan {
            unplaced: (0..p.pods.len())
                .map(|pod| Unplaced {
                    pod,
                    reason: "x".into(),
                    limited_by: vec![],
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(validate(&p, &all_unplaced), vec![]);
    }

    #[test]
    fn over_committed_node() {
        let (mut p, plan) = scenario();
        p.pods[0].requests.cpu_millis = 1500; // 500m of db-0 + 1500m > 1930m
        let v = only(&p, &plan, Rule::Resources);
        assert!(v[0].to_string().contains("node n1"), "{}", v[0]);
    }

    #[test]
    fn untolerated_taints() {
        let (mut p, plan) = scenario();
        let taint = |effect| Taint {
            key: "dedicated".into(),
            value: "db".into(),
            effect,
        };
        p.nodes[0].taints = vec![taint(TaintEffect::PreferNoSchedule)];
        assert_eq!(validate(&p, &plan), vec![]);
        p.nodes[0].taints = vec![taint(TaintEffect::NoSchedule)];
        let v = only(&p, &plan, Rule::Taint);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pod.as_deref(), Some("default/web-0"));
        assert!(
            v[0].to_string().contains("dedicated=db:NoSchedule"),
            "{}",
            v[0]
        );
        p.nodes[0].taints = vec![];
        p.pools[0].taints = vec![taint(TaintEffect::NoExecute)];
        let v = only(&p, &plan, Rule::Taint);
        assert_eq!(v.len(), 3, "the claims' pods");
        // Tolerated: fine again.
        for pod in &mut p.pods {
            pod.tolerations = vec![Toleration {
                key: Some("dedicated".into()),
                exists: true,
                value: String::new(),
                effect: None,
            }];
        }
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn node_selector_mismatch() {
        let (mut p, plan) = scenario();
        p.pods[0].node_selector.insert(LABEL_ZONE.into(), B.into());
        let v = only(&p, &plan, Rule::NodeAffinity);
        assert_eq!(v[0].pod.as_deref(), Some("default/web-0"));
        // On a claim: every node it may launch as must match (c0 may be
        // on-demand).
        let (mut p, plan) = scenario();
        p.pods[2]
            .node_selector
            .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_SPOT.into());
        let v = only(&p, &plan, Rule::NodeAffinity);
        assert!(v[0].detail.contains("on-demand"), "{}", v[0]);
        // Required node affinity, ORed terms.
        let (mut p, plan) = scenario();
        p.pods[3].required_terms = vec![
            reqs(&[(LABEL_ZONE, Operator::In, &[B])]),
            reqs(&[(
                LABEL_INSTANCE_TYPE,
                Operator::In,
                &["m6i.large", "m6i.xlarge"],
            )]),
        ];
        assert_eq!(validate(&p, &plan), vec![]);
        p.pods[3].required_terms.pop();
        only(&p, &plan, Rule::NodeAffinity);
    }

    #[test]
    fn instance_type_too_small() {
        let (mut p, mut plan) = scenario();
        p.pods[3].requests.cpu_millis = 2500;
        plan.claims[1] = claim(&p, "c1", zone_req(A), &[0, 1], &[3], &[0]);
        let v = only(&p, &plan, Rule::InstanceType);
        assert!(v[0].detail.contains("m6i.large"), "{}", v[0]);
        plan.claims[1] = claim(&p, "c1", zone_req(A), &[1], &[3], &[0]);
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn prices_cheapest_first() {
        let (p, mut plan) = scenario();
        plan.claims[0] = claim(&p, "c0", zone_req(B), &[1, 0], &[1, 2], &[0]);
        let v = only(&p, &plan, Rule::Price);
        assert_eq!(v.len(), 1, "{v:?}");
        let (_, mut plan) = scenario();
        plan.claims[0].price = 0.096; // on-demand, but spot is allowed
        only(&p, &plan, Rule::Price);
        // Narrowed to on-demand, the on-demand price is right.
        plan.claims[0].requirements.add(
            LABEL_CAPACITY_TYPE,
            Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_ON_DEMAND]).unwrap(),
        );
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn limits_are_charged_at_the_largest_type() {
        let (mut p, plan) = scenario();
        p.pools[0].limits = [("cpu".to_string(), 8000)].into();
        assert_eq!(validate(&p, &plan), vec![]);
        p.pools[0].usage.cpu_millis = 1;
        only(&p, &plan, Rule::Limits);
        p.pools[0].usage.cpu_millis = 0;
        p.pools[0].limits = [
            ("nvidia.com/gpu".to_string(), 0),
            ("memory".to_string(), 1 << 40),
        ]
        .into();
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn anti_affinity_broken() {
        let mut b = pod("b", "web", 100);
        b.anti_affinity = vec![term("web", LABEL_HOSTNAME)];
        let pods = vec![pod("a", "web", 100), b];
        let (p, plan) = mini(pods.clone(), &[A], &[(0, 0), (1, 0)]);
        let v = only(&p, &plan, Rule::AntiAffinity);
        assert_eq!(v[0].pod.as_deref(), Some("default/b"));
        // On another host it is fine; in the same zone it is not.
        let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
        assert_eq!(validate(&p, &plan), vec![]);
        let mut pods = pods;
        pods[1].anti_affinity = vec![term("web", LABEL_ZONE)];
        let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
        only(&p, &plan, Rule::AntiAffinity);
        let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (1, 1)]);
        assert_eq!(validate(&p, &plan), vec![]);
        // Another namespace is not selected, unless the term names it.
        pods[0].namespace = "other".into();
        let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
        assert_eq!(validate(&p, &plan), vec![]);
        pods[1].anti_affinity[0].namespaces = vec!["other".into()];
        let (p, plan) = mini(pods, &[A, A], &[(0, 0), (1, 1)]);
        only(&p, &plan, Rule::AntiAffinity);
    }

    #[test]
    fn symmetric_anti_affinity_broken() {
        let mut a = pod("a", "db", 100);
        a.anti_affinity = vec![term("web", LABEL_HOSTNAME)];
        let pods = vec![a, pod("b", "web", 100)];
        let (p, plan) = mini(pods.clone(), &[A], &[(0, 0), (1, 0)]);
        let v = only(&p, &plan, Rule::SymmetricAntiAffinity);
        assert_eq!(v[0].pod.as_deref(), Some("default/b"));
        // The existing db-0 on n1 refuses another db pod.
        let (mut p, mut plan) = scenario();
        p.pods[3].anti_affinity.clear();
        p.pods[3].requests.cpu_millis = 100;
        plan.placements[3].1 = Target::Node(0);
        plan.claims.pop();
        only(&p, &plan, Rule::SymmetricAntiAffinity);
    }

    #[test]
    fn affinity_broken() {
        let mut b = pod("b", "cache", 100);
        b.affinity = vec![term("web", LABEL_ZONE)];
        let pods = vec![pod("a", "web", 100), b];
        let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
        assert_eq!(validate(&p, &plan), vec![]);
        let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (1, 1)]);
        only(&p, &plan, Rule::Affinity);
        // Placed before its target: broken too.
        let (p, plan) = mini(pods, &[A, A], &[(1, 1), (0, 0)]);
        only(&p, &plan, Rule::Affinity);
        // The first pod of a self-affine group may go anywhere; the next
        // must follow it.
        let group = |name| {
            let mut g = pod(name, "group", 100);
            g.affinity = vec![term("group", LABEL_HOSTNAME)];
            g
        };
        let (p, plan) = mini(vec![group("g0"), group("g1")], &[A], &[(0, 0), (1, 0)]);
        assert_eq!(validate(&p, &plan), vec![]);
        let (p, plan) = mini(vec![group("g0"), group("g1")], &[A, A], &[(0, 0), (1, 1)]);
        let v = only(&p, &plan, Rule::Affinity);
        assert_eq!(v[0].pod.as_deref(), Some("default/g1"));
    }

    #[test]
    fn spread_skew_exceeded() {
        let w = |name| {
            let mut w = pod(name, "web", 100);
            w.spread = vec![spread("web", LABEL_ZONE, 1)];
            w
        };
        let pods = vec![w("w0"), w("w1"), w("w2")];
        // c1 in zone-b is an eligible, empty domain.
        let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (1, 0), (2, 1)]);
        let v = only(&p, &plan, Rule::TopologySpread);
        assert_eq!(v[0].pod.as_deref(), Some("default/w1"));
        let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (2, 1), (1, 0)]);
        assert_eq!(validate(&p, &plan), vec![]);
        // Existing n1 (zone-a) counts as a domain and its pods count.
        let mut pods = pods[..2].to_vec();
        let (mut p, plan) = mini(pods.clone(), &[B], &[(0, 0), (1, 0)]);
        only(&p, &plan, Rule::TopologySpread);
        p.nodes[0].pods = vec![pod("old", "web", 100)];
        assert_eq!(validate(&p, &plan), vec![]);
        // Pods on nodes the pod's node affinity excludes are not counted,
        // nor are their domains.
        for w in &mut pods {
            w.node_selector
                .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_SPOT.into());
        }
        let (mut p, mut plan) = mini(pods, &[B], &[(0, 0), (1, 0)]);
        for c in &mut plan.claims {
            c.requirements.add(
                LABEL_CAPACITY_TYPE,
                Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_SPOT]).unwrap(),
            );
            c.price = 0.048;
        }
        assert_eq!(validate(&p, &plan), vec![]);
        p.nodes[0].pods = vec![pod("old", "web", 100)];
        assert_eq!(validate(&p, &plan), vec![]);
        // Without the node selector, n1's zone-a is an eligible domain.
        p.nodes[0].pods.clear();
        for w in &mut p.pods {
            w.node_selector.clear();
        }
        only(&p, &plan, Rule::TopologySpread);
        // A bigger skew allows it.
        for w in &mut p.pods {
            w.spread[0].max_skew = 2;
        }
        assert_eq!(validate(&p, &plan), vec![]);
        // ScheduleAnyway is a preference.
        for w in &mut p.pods {
            w.spread[0].max_skew = 1;
            w.spread[0].required = false;
        }
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn undetermined_zone() {
        let mut w = pod("w", "web", 100);
        w.spread = vec![spread("web", LABEL_ZONE, 1)];
        let (p, plan) = mini(vec![w.clone()], &[""], &[(0, 0)]);
        let v = validate(&p, &plan);
        assert_eq!(rules(&v), [Rule::UndeterminedDomain].into(), "{v:?}");
        // Hostname is always determined.
        w.spread[0].topology_key = LABEL_HOSTNAME.into();
        let (p, plan) = mini(vec![w], &[""], &[(0, 0)]);
        assert_eq!(validate(&p, &plan), vec![]);
        // A pod with no constraint of its own, counted by another pod's
        // zone anti-affinity.
        let mut a = pod("a", "db", 100);
        a.anti_affinity = vec![term("web", LABEL_ZONE)];
        let (p, plan) = mini(vec![a, pod("b", "web", 100)], &[A, ""], &[(0, 0), (1, 1)]);
        let v = validate(&p, &plan);
        assert_eq!(rules(&v), [Rule::UndeterminedDomain].into(), "{v:?}");
        assert!(v.iter().all(|v| v.pod.as_deref() == Some("default/b")));
        // Offerings narrowing to one zone determine it.
        let (mut p, plan) = mini(vec![pod("x", "web", 100)], &[""], &[(0, 0)]);
        let mut w = pod("w", "other", 100);
        w.spread = vec![spread("web", LABEL_ZONE, 1)];
        p.pods.push(w);
        let mut plan = plan;
        plan.unplaced = vec![Unplaced {
            pod: 1,
            reason: "x".into(),
            limited_by: vec![],
        }];
        only(&p, &plan, Rule::UndeterminedDomain);
        for t in &mut p.instance_types {
            t.offerings.retain(|o| o.zone == A);
        }
        plan.claims[0].price = p.instance_types[0].offerings[1].price;
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn host_port_conflict() {
        let (mut p, plan) = scenario();
        p.pods[2].host_ports = vec![port(8080)];
        let v = only(&p, &plan, Rule::HostPort);
        assert!(v[0].to_string().contains("web-1"), "{}", v[0]);
        let (mut p, plan) = scenario();
        p.pods[3].host_ports = vec![port(9100)];
        let v = only(&p, &plan, Rule::HostPort);
        assert!(v[0].to_string().contains("node-exporter"), "{}", v[0]);
        // Another protocol or address does not conflict.
        p.pods[3].host_ports[0].protocol = "UDP".into();
        assert_eq!(validate(&p, &plan), vec![]);
        // Existing pods' ports count.
        let (mut p, plan) = scenario();
        p.nodes[0].pods[0].host_ports = vec![port(8080)];
        only(&p, &plan, Rule::HostPort);
    }

    #[test]
    fn every_pod_exactly_once() {
        let (p, mut plan) = scenario();
        plan.unplaced = vec![Unplaced {
            pod: 0,
            reason: "no room".into(),
            limited_by: vec![],
        }];
        let v = only(&p, &plan, Rule::Bookkeeping);
        assert!(
            v[0].to_string().contains("both placed and unplaced"),
            "{}",
            v[0]
        );
        let (p, mut plan) = scenario();
        plan.placements.remove(0);
        let v = only(&p, &plan, Rule::Bookkeeping);
        assert!(v[0].to_string().contains("neither"), "{}", v[0]);
        plan.unplaced = vec![Unplaced {
            pod: 0,
            reason: " ".into(),
            limited_by: vec![],
        }];
        only(&p, &plan, Rule::Bookkeeping);
        let (p, mut plan) = scenario();
        plan.placements.push((7, Target::Node(0)));
        plan.placements.push((0, Target::Claim(5)));
        plan.placements.push((0, Target::Node(0)));
        assert_eq!(only(&p, &plan, Rule::Bookkeeping).len(), 3);
    }

    #[test]
    fn claims_agree_with_placements() {
        let (p, mut plan) = scenario();
        plan.claims[0].pods = vec![1];
        let v = validate(&p, &plan);
        assert!(rules(&v).contains(&Rule::Bookkeeping), "{v:?}");
        let (p, mut plan) = scenario();
        plan.claims[1].hostname = "c0".into();
        only(&p, &plan, Rule::Bookkeeping);
        plan.claims[1].hostname = "n1".into();
        let v = validate(&p, &plan);
        assert!(rules(&v).contains(&Rule::Bookkeeping), "{v:?}");
        let (p, mut plan) = scenario();
        plan.claims[1].requests.memory_bytes += 1;
        only(&p, &plan, Rule::Resources);
        let (p, mut plan) = scenario();
        plan.claims[1].instance_types.clear();
        plan.placements.pop();
        plan.claims.pop();
        plan.unplaced.push(Unplaced {
            pod: 3,
            reason: "x".into(),
            limited_by: vec![],
        });
        assert_eq!(validate(&p, &plan), vec![]);
        let (p, mut plan) = scenario();
        plan.claims[1].instance_types.clear();
        let v = validate(&p, &plan);
        assert!(rules(&v).contains(&Rule::Bookkeeping), "{v:?}");
    }

    #[test]
    fn undercounted_daemonset() {
        let (p, mut plan) = scenario();
        plan.claims[1] = claim(&p, "c1", zone_req(A), &[0, 1], &[3], &[]);
        let v = only(&p, &plan, Rule::Daemonsets);
        assert!(
            v[0].to_string().contains("kube-system/node-exporter"),
            "{}",
            v[0]
        );
        // A daemonset that would not run there need not be counted.
        let (mut p, plan) = scenario();
        p.daemonsets[0]
            .node_selector
            .insert(LABEL_ZONE.into(), "zone-z".into());
        let mut plan = plan;
        for c in &mut plan.claims {
            *c = claim(
                &p,
                &c.hostname,
                c.requirements.clone(),
                &[0, 1],
                &c.pods,
                &[],
            );
        }
        assert_eq!(validate(&p, &plan), vec![]);
    }

    #[test]
    fn claim_nodes_meet_pool_requirements() {
        let (mut p, plan) = scenario();
        p.pools[0].requirements = reqs(&[(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_SPOT])]);
        only(&p, &plan, Rule::ClaimNode);
        p.pools[0].requirements = reqs(&[(LABEL_INSTANCE_TYPE, Operator::NotIn, &["m6i.large"])]);
        only(&p, &plan, Rule::ClaimNode);
        // A type the claim's requirements exclude.
        let (p, mut plan) = scenario();
        plan.claims[1].requirements.add(
            LABEL_INSTANCE_TYPE,
            Requirement::new(LABEL_INSTANCE_TYPE, Operator::In, &["m6i.xlarge"]).unwrap(),
        );
        let v = validate(&p, &plan);
        assert!(rules(&v).contains(&Rule::InstanceType), "{v:?}");
        // Unavailable offerings only: the type cannot launch.
        let (mut p, plan) = scenario();
        for o in &mut p.instance_types[1].offerings {
            if o.zone == B {
                o.available = false;
            }
        }
        let v = only(&p, &plan, Rule::InstanceType);
        assert!(v[0].detail.contains("no available offering"), "{}", v[0]);
    }

    #[test]
    fn min_values_counts_the_claims_types() {
        let (mut p, plan) = scenario();
        let mut r = Requirement::new(LABEL_INSTANCE_TYPE, Operator::Exists, &[]).unwrap();
        r.min_values = Some(2);
        p.pools[0].requirements.add(LABEL_INSTANCE_TYPE, r);
        assert_eq!(validate(&p, &plan), vec![]);
        let mut plan = plan;
        plan.claims[1].instance_types = vec![1];
        plan.claims[1].price = 0.192 * 0.4;
        only(&p, &plan, Rule::ClaimNode);
    }

    fn arb_plan(p: &Problem) -> impl Strategy<Value = Plan> + use<> {
        use proptest::collection::vec;
        let (n, nodes, pools, types, ds) = (
            p.pods.len(),
            p.nodes.len(),
            p.pools.len(),
            p.instance_types.len(),
            p.daemonsets.len(),
        );
        let claim = (
            0..pools + 1,
            vec(0..types + 1, 0..4),
            vec(0..n + 1, 0..4),
            vec(0..ds + 1, 0..3),
            0usize..4,
            0i64..4000,
            0u8..3,
        )
            .prop_map(
                |(pool, instance_types, pods, daemonsets, zone, cpu, host)| {
                    let zones = ["zone-a", "zone-b", "ap-southeast-1a"];
                    NewClaim {
                        pool,
                        hostname: format!("h{host}"),
                        requirements: zones.get(zone).map(|z| zone_req(z)).unwrap_or_default(),
                        instance_types,
                        pods,
                        daemonsets,
                        requests: Resources {
                            cpu_millis: cpu,
                            ..Default::default()
                        },
                        price: 0.1,
                    }
                },
            );
        (
            vec((0..n + 1, any::<bool>(), 0..nodes.max(3) + 1), 0..n + 2),
            vec(claim, 0..4),
            vec((0..n + 1, any::<bool>()), 0..n + 1),
        )
            .prop_map(|(placements, claims, unplaced)| Plan {
                placements: placements
                    .into_iter()
                    .map(|(i, node, k)| {
                        (
                            i,
                            if node {
                                Target::Node(k)
                            } else {
                                Target::Claim(k)
                            },
                        )
                    })
                    .collect(),
                claims,
                unplaced: unplaced
                    .into_iter()
                    .map(|(pod, why)| Unplaced {
                        pod,
                        reason: if why { "x".into() } else { String::new() },
                        limited_by: vec![],
                    })
                    .collect(),
                relaxed: vec![],
            })
    }

    use proptest::prelude::*;

    proptest! {
        /// Arbitrary (mostly wrong) plans are judged without panicking, and
        /// every violation names its rule.
        #[test]
        fn never_panics((p, plan) in crate::testgen::arb_problem()
            .prop_flat_map(|p| { let s = arb_plan(&p); (Just(p), s) })) {
            for v in validate(&p, &plan) {
                prop_assert!(!v.to_string().is_empty());
            }
        }
    }
}
