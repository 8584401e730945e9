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
//!
//! Layout: the entry point and report types here; the checks, in the order
//! [`validate`] runs them, in `bookkeeping`, `nodes`, `claims` (with pool
//! limits) and `topology`; unit tests in `tests`.

mod bookkeeping;
mod claims;
mod nodes;
mod topology;

use std::fmt;

use crate::{
    model::{
        LABEL_CAPACITY_TYPE, LABEL_ZONE, Labels, Offering, Plan, Pod, PodAffinityTerm, Problem,
        Target,
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
}

#[cfg(test)]
mod tests;
