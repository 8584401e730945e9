//! The scheduling problem as plain data: pods and their constraints, existing
//! nodes, node pools, instance types; and the plan the solver returns.
//!
//! Everything here is already parsed (quantities, operators); turning
//! Kubernetes objects into these types is the controllers' job.

use std::{collections::BTreeMap, fmt};

use crate::{requirements::Requirements, resources::Resources};

pub type Labels = BTreeMap<String, String>;

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const LABEL_NODEPOOL: &str = "karpenter.sh/nodepool";
pub const LABEL_PROVISIONER: &str = "karpenter.sh/provisioner-name";
pub const LABEL_INSTANCE_FAMILY: &str = "karpenter.k8s.aws/instance-family";
pub const LABEL_INSTANCE_CATEGORY: &str = "karpenter.k8s.aws/instance-category";
pub const LABEL_INSTANCE_GENERATION: &str = "karpenter.k8s.aws/instance-generation";
pub const LABEL_INSTANCE_SIZE: &str = "karpenter.k8s.aws/instance-size";
pub const LABEL_INSTANCE_CPU: &str = "karpenter.k8s.aws/instance-cpu";
pub const LABEL_INSTANCE_MEMORY: &str = "karpenter.k8s.aws/instance-memory";
pub const CAPACITY_SPOT: &str = "spot";
pub const CAPACITY_ON_DEMAND: &str = "on-demand";

/// Deprecated label keys and the keys they mean (Karpenter normalizes them
/// before comparing requirements).
pub const NORMALIZED_LABELS: &[(&str, &str)] = &[
    ("beta.kubernetes.io/arch", LABEL_ARCH),
    ("beta.kubernetes.io/os", LABEL_OS),
    ("beta.kubernetes.io/instance-type", LABEL_INSTANCE_TYPE),
    ("failure-domain.beta.kubernetes.io/zone", LABEL_ZONE),
    ("failure-domain.beta.kubernetes.io/region", LABEL_REGION),
    ("topology.ebs.csi.aws.com/zone", LABEL_ZONE),
];

/// The well-known key a (possibly deprecated) label key stands for.
pub fn normalize_key(key: &str) -> &str {
    NORMALIZED_LABELS
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| new)
}

// --- taints and tolerations ------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSchedule => "NoSchedule",
            Self::PreferNoSchedule => "PreferNoSchedule",
            Self::NoExecute => "NoExecute",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NoSchedule" => Self::NoSchedule,
            "PreferNoSchedule" => Self::PreferNoSchedule,
            "NoExecute" => Self::NoExecute,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{:?}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{:?}", self.key, self.value, self.effect)
        }
    }
}

/// A pod's toleration. `key: None` with `Exists` tolerates every taint;
/// `effect: None` matches every effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Toleration {
    pub key: Option<String>,
    /// `true`: operator Exists; `false`: Equal (the default).
    pub exists: bool,
    pub value: String,
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// The Kubernetes rule (`v1.Toleration.ToleratesTaint`).
    pub fn tolerates(&self, t: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != t.effect) {
            return false;
        }
        match &self.key {
            None => self.exists,
            Some(k) if k != &t.key => false,
            Some(_) => self.exists || self.value == t.value,
        }
    }
}

/// The first taint of `taints` that `tolerations` do not tolerate, counting
/// PreferNoSchedule taints only when `strict` (preferences treated as
/// required).
pub fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    strict: bool,
) -> Option<&'a Taint> {
    taints.iter().find(|t| {
        (strict || t.effect != TaintEffect::PreferNoSchedule)
            && !tolerations.iter().any(|tol| tol.tolerates(t))
    })
}

// --- label selectors -------------------------------------------------------

pub use outrigger_values::selector::{LabelSelector, SelectorExpr, SelectorOp};

/// A pod selector for messages: its string form, `<all pods>` when empty.
pub fn selector_text(s: &LabelSelector) -> String {
    if s.is_empty() {
        "<all pods>".to_string()
    } else {
        s.to_string()
    }
}

// --- pods ------------------------------------------------------------------

/// A pod (anti-)affinity term. `namespaces` empty means the pod's own
/// namespace (namespaceSelector is not modelled: the caller resolves it into
/// `namespaces`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodAffinityTerm {
    pub selector: LabelSelector,
    pub namespaces: Vec<String>,
    pub topology_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopologySpread {
    pub max_skew: u32,
    pub topology_key: String,
    /// `true`: DoNotSchedule; `false`: ScheduleAnyway (a preference).
    pub required: bool,
    pub selector: LabelSelector,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub port: u16,
    pub protocol: String,
    /// The host IP; empty or 0.0.0.0 means every address.
    pub ip: String,
}

impl HostPort {
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let wild = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == o.port
            && self.protocol == o.protocol
            && (wild(&self.ip) || wild(&o.ip) || self.ip == o.ip)
    }
}

/// What the solver needs of a pod. `requests` is the effective request:
/// the larger of the sum of containers and the largest init container, plus
/// pod overhead, and `pods: 1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub requests: Resources,
    /// `spec.nodeSelector`, ANDed with the node affinity.
    pub node_selector: Labels,
    /// Required node affinity: the nodeSelectorTerms, ORed. Empty: none.
    pub required_terms: Vec<Requirements>,
    /// Preferred node affinity, (weight, term).
    pub preferred_terms: Vec<(i32, Requirements)>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<(i32, PodAffinityTerm)>,
    pub anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_anti_affinity: Vec<(i32, PodAffinityTerm)>,
    pub spread: Vec<TopologySpread>,
    pub host_ports: Vec<HostPort>,
    /// A DaemonSet's pod: it leaves with its node and is never moved.
    pub daemon: bool,
}

impl Pod {
    pub fn new(namespace: &str, name: &str, requests: Resources) -> Self {
        let mut requests = requests;
        requests.pods = requests.pods.max(1);
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            requests,
            ..Default::default()
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// True if a node with these labels satisfies the nodeSelector and one
    /// of the required node-affinity terms.
    pub fn matches_node(&self, labels: &Labels) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && (self.required_terms.is_empty()
                || self.required_terms.iter().any(|t| t.matches(labels)))
    }
}

// --- nodes, pools, instance types -------------------------------------------

/// A node that exists, or a node claim already launched (`in_flight`), with
/// the pods bound or nominated to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub pods: Vec<Pod>,
    /// A claim still launching: it takes pods, but after initialized nodes.
    pub in_flight: bool,
    /// The node pool it belongs to, if any (its capacity counts against the
    /// pool's limits through `NodePool::usage`).
    pub pool: Option<String>,
    /// What the node costs per hour, if known (for consolidation).
    pub price: Option<f64>,
    /// Pods on it must not be moved (karpenter.sh/do-not-disrupt, a
    /// blocking PodDisruptionBudget): it cannot be removed.
    pub do_not_disrupt: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Offering {
    pub zone: String,
    pub capacity_type: String,
    /// Hourly price.
    pub price: f64,
    pub available: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InstanceType {
    pub name: String,
    /// What a node of this type is labelled with (instance-type, arch, os,
    /// family, cpu, ...). Zone and capacity type come from the offerings.
    pub requirements: Requirements,
    pub capacity: Resources,
    /// kube-reserved + system-reserved + eviction threshold.
    pub overhead: Resources,
    pub offerings: Vec<Offering>,
}

impl InstanceType {
    pub fn allocatable(&self) -> Resources {
        let mut a = self.capacity.minus(&self.overhead);
        a.extended.retain(|_, v| *v > 0);
        a
    }
}

/// A node pool (v1 NodePool, or a v1alpha5 Provisioner): what nodes it may
/// launch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodePool {
    pub name: String,
    /// Higher first.
    pub weight: i32,
    pub requirements: Requirements,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    /// Resource name -> maximum total capacity of the pool's nodes (cpu in
    /// millis, the rest in units). Absent: unlimited.
    pub limits: BTreeMap<String, i64>,
    /// Capacity of the pool's nodes and claims that exist now.
    pub usage: Resources,
    /// The instance types it may launch (`Problem::instance_types`
    /// indices), when not the whole catalogue (pools of different
    /// providers in one problem).
    pub instance_types: Option<std::collections::BTreeSet<usize>>,
}

/// Everything the solver looks at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Problem {
    /// Pods to place.
    pub pods: Vec<Pod>,
    /// Existing nodes and in-flight claims.
    pub nodes: Vec<Node>,
    pub pools: Vec<NodePool>,
    /// The catalogue every pool draws from, filtered by its requirements.
    pub instance_types: Vec<InstanceType>,
    /// DaemonSet pod templates: each new node carries the ones that would
    /// run on it (tolerate its taints, match its labels).
    pub daemonsets: Vec<Pod>,
}

// --- the plan ----------------------------------------------------------------

/// Where a pod goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `Problem::nodes[i]`.
    Node(usize),
    /// `Plan::claims[i]`.
    Claim(usize),
}

/// A node to launch.
#[derive(Clone, Debug, PartialEq)]
pub struct NewClaim {
    /// `Problem::pools[i]`.
    pub pool: usize,
    /// Placeholder hostname used as its `kubernetes.io/hostname` domain.
    pub hostname: String,
    /// The pool's requirements narrowed by every pod on it (and by the
    /// topology domain chosen for it).
    pub requirements: Requirements,
    /// Every instance type it may be launched as (`Problem::instance_types`
    /// indices), cheapest first.
    pub instance_types: Vec<usize>,
    /// `Problem::pods` indices.
    pub pods: Vec<usize>,
    /// The daemonsets that will run on it (`Problem::daemonsets` indices).
    pub daemonsets: Vec<usize>,
    /// Pods plus daemonset overhead.
    pub requests: Resources,
    /// The cheapest available offering of the cheapest type.
    pub price: f64,
}

/// A pod that could not be placed, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unplaced {
    pub pod: usize,
    pub reason: String,
    /// The pools (indices into `Problem::pools`) that would have launched a
    /// node for the pod but for their limits.
    pub limited_by: Vec<usize>,
    /// Each pool's reason on its own, without the pool's name:
    /// (`Problem::pools` index, reason).
    pub pool_reasons: Vec<(usize, String)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Every placement, in the order the solver made them (kube-scheduler
    /// binding in this order accepts each one).
    pub placements: Vec<(usize, Target)>,
    pub claims: Vec<NewClaim>,
    pub unplaced: Vec<Unplaced>,
    /// Preferences the solver had to give up, per pod: (pod, what).
    pub relaxed: Vec<(usize, String)>,
}

impl Plan {
    /// Hourly price of the new claims.
    pub fn price(&self) -> f64 {
        self.claims.iter().map(|c| c.price).sum()
    }

    pub fn target_of(&self, pod: usize) -> Option<Target> {
        self.placements
            .iter()
            .find(|(p, _)| *p == pod)
            .map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(k: &str, v: &str, e: TaintEffect) -> Taint {
        Taint {
            key: k.into(),
            value: v.into(),
            effect: e,
        }
    }

    #[test]
    fn tolerations_follow_kubernetes() {
        let t = taint("gpu", "true", TaintEffect::NoSchedule);
        let equal = Toleration {
            key: Some("gpu".into()),
            exists: false,
            value: "true".into(),
            effect: None,
        };
        assert!(equal.tolerates(&t));
        let wrong_value = Toleration {
            value: "false".into(),
            ..equal.clone()
        };
        assert!(!wrong_value.tolerates(&t));
        let exists = Toleration {
            key: Some("gpu".into()),
            exists: true,
            value: String::new(),
            effect: Some(TaintEffect::NoSchedule),
        };
        assert!(exists.tolerates(&t));
        assert!(!exists.tolerates(&taint("gpu", "true", TaintEffect::NoExecute)));
        let all = Toleration {
            key: None,
            exists: true,
            value: String::new(),
            effect: None,
        };
        assert!(all.tolerates(&taint("anything", "", TaintEffect::NoExecute)));
        let soft = [taint("spot", "", TaintEffect::PreferNoSchedule)];
        assert!(untolerated(&soft, &[], false).is_none());
        assert_eq!(untolerated(&soft, &[], true), Some(&soft[0]));
        assert_eq!(
            untolerated(std::slice::from_ref(&t), &[], false).map(|t| t.to_string()),
            Some("gpu=true:NoSchedule".to_string())
        );
    }

    #[test]
    fn selectors_and_ports() {
        let l: Labels = [("app".to_string(), "web".to_string())].into();
        assert!(LabelSelector::labels(&[("app", "web")]).matches(&l));
        assert!(!LabelSelector::labels(&[("app", "db")]).matches(&l));
        assert!(LabelSelector::default().matches(&l));
        let notin = LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![SelectorExpr {
                key: "tier".into(),
                op: SelectorOp::NotIn,
                values: vec!["x".into()],
            }],
        };
        assert!(notin.matches(&l));
        let p = |port, ip: &str| HostPort {
            port,
            protocol: "TCP".into(),
            ip: ip.into(),
        };
        assert!(p(80, "").conflicts(&p(80, "10.0.0.1")));
        assert!(!p(80, "10.0.0.2").conflicts(&p(80, "10.0.0.1")));
        assert!(!p(80, "").conflicts(&p(81, "")));
        assert_eq!(
            normalize_key("failure-domain.beta.kubernetes.io/zone"),
            LABEL_ZONE
        );
    }
}
