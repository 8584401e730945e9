//! Which nodes may be disrupted, and why the others may not, in Karpenter's
//! order and words (`StateNode.ValidateNodeDisruptable`,
//! `ValidatePodsDisruptable`), with its disruption cost to order them.

use std::{fmt, time::Duration};

use crate::budget::Budget;

/// `spec.disruption.consolidationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    WhenEmpty,
    WhenEmptyOrUnderutilized,
}

/// Beyond Karpenter: the least a consolidation must save to be worth a
/// disruption (a pool setting, off by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinSavings {
    /// Dollars per hour.
    PerHour(f64),
    /// A fraction of the price of the nodes removed (0.2: 20 %).
    Ratio(f64),
}

impl MinSavings {
    /// `"0.05"` ($/h) or `"20%"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("{s:?} is not between 0% and 100%"));
            }
            return Ok(MinSavings::Ratio(v / 100.0));
        }
        let v: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a price per hour or a percentage"))?;
        if !v.is_finite() || v < 0.0 {
            return Err(format!("{s:?} is not a price per hour"));
        }
        Ok(MinSavings::PerHour(v))
    }

    /// Whether saving `savings` out of `removed` is enough.
    pub fn met(&self, savings: f64, removed: f64) -> bool {
        match *self {
            MinSavings::PerHour(v) => savings >= v,
            MinSavings::Ratio(r) => removed > 0.0 && savings / removed >= r,
        }
    }
}

impl fmt::Display for MinSavings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinSavings::PerHour(v) => write!(f, "${v:.4}/h"),
            MinSavings::Ratio(r) => write!(f, "{:.0}%", r * 100.0),
        }
    }
}

/// A pool's disruption settings.
#[derive(Clone, Debug)]
pub struct PoolPolicy {
    pub name: String,
    pub policy: Policy,
    /// `None`: `Never` (consolidation off).
    pub consolidate_after: Option<Duration>,
    pub budgets: Vec<Budget>,
    pub min_savings: Option<MinSavings>,
}

/// What disruption needs to know of a pod on a candidate node.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    /// `namespace/name`.
    pub key: String,
    /// Neither terminal nor terminating.
    pub active: bool,
    /// Needs a place elsewhere if the node goes (active, or a terminating
    /// StatefulSet pod; not a DaemonSet's, not a mirror pod).
    pub reschedulable: bool,
    /// The drain would evict it (active, not a mirror pod, not tolerating
    /// the disrupted taint, no do-not-disrupt in effect).
    pub evictable: bool,
    /// `karpenter.sh/do-not-disrupt` in effect (`"true"`, or a duration
    /// not yet elapsed since the pod started).
    pub do_not_disrupt: bool,
    /// The PodDisruptionBudgets selecting it (`namespace/name`) and whether
    /// each lets it go now (disruptions allowed, or an unhealthy pod under
    /// `AlwaysAllow`).
    pub pdbs: Vec<(String, bool)>,
    /// Karpenter's eviction cost (deletion cost, priority).
    pub eviction_cost: f64,
}

/// A node with its claim, as disruption sees it.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    /// The Node's name (the claim's when it has no Node).
    pub name: String,
    /// Its NodeClaim (`None`: not Karpenter's).
    pub claim: Option<String>,
    /// Its Node exists.
    pub has_node: bool,
    /// `karpenter.sh/nodepool`.
    pub pool: Option<String>,
    /// The node in the solver's problem.
    pub problem_index: Option<usize>,
    pub initialized: bool,
    pub ready: bool,
    /// Being deleted, or chosen by a disruption already.
    pub marked_for_deletion: bool,
    /// Nominated for a pending pod by a recent provisioning pass.
    pub nominated: bool,
    /// `karpenter.sh/do-not-disrupt: "true"` on the Node or the claim.
    pub do_not_disrupt: bool,
    pub instance_type: Option<String>,
    pub capacity_type: Option<String>,
    pub zone: Option<String>,
    /// The claim's `Consolidatable` condition: `consolidateAfter` has
    /// passed since the last pod event.
    pub consolidatable: bool,
    /// When `consolidateAfter` will have passed, if it has not.
    pub consolidatable_at: Option<jiff::Timestamp>,
    /// The claim's `Drifted` condition, and since when.
    pub drifted: bool,
    pub drifted_since: Option<jiff::Timestamp>,
    /// `expireAfter` left, as a fraction (1 without `expireAfter`).
    pub lifetime_remaining: f64,
    /// The claim has a `terminationGracePeriod` (eventual disruption may
    /// go past blocking pods).
    pub termination_grace_period: bool,
    pub pods: Vec<PodFacts>,
}

/// Why a node is not a candidate, in Karpenter's words.
#[derive(Clone, Debug, PartialEq)]
pub enum Blocked {
    NotManaged,
    NoNode,
    NotInitialized,
    Deleting,
    Nominated,
    DoNotDisruptNode,
    NoPoolLabel,
    PoolNotFound(String),
    /// A pod with `karpenter.sh/do-not-disrupt`.
    DoNotDisruptPod(String),
    /// A pod whose PodDisruptionBudget allows no eviction now.
    Pdb(String),
    /// A pod selected by more than one PodDisruptionBudget (the Eviction
    /// API refuses it).
    MultiplePdbs(Vec<String>),
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocked::NotManaged => f.write_str("Node isn't managed by karpenter"),
            Blocked::NoNode => f.write_str("Nodeclaim does not have an associated node"),
            Blocked::NotInitialized => f.write_str("Node isn't initialized"),
            Blocked::Deleting => f.write_str("Node is deleting or marked for deletion"),
            Blocked::Nominated => f.write_str("Node is nominated for a pending pod"),
            Blocked::DoNotDisruptNode => f.write_str(
                "Disruption is blocked through the \"karpenter.sh/do-not-disrupt\" annotation",
            ),
            Blocked::NoPoolLabel => {
                f.write_str("Node doesn't have required label (label=karpenter.sh/nodepool)")
            }
            Blocked::PoolNotFound(p) => write!(f, "NodePool not found (NodePool={p})"),
            Blocked::DoNotDisruptPod(p) => write!(
                f,
                "Pod has \"karpenter.sh/do-not-disrupt\" annotation (Pod={p})"
            ),
            Blocked::Pdb(p) => write!(f, "Pdb prevents pod evictions (PodDisruptionBudget=[{p}])"),
            Blocked::MultiplePdbs(ps) => write!(
                f,
                "Eviction does not support multiple PDBs (PodDisruptionBudget(s)=[{}])",
                ps.join(" ")
            ),
        }
    }
}

impl Blocked {
    /// A block by a pod, which eventual disruption (a claim with a
    /// `terminationGracePeriod`) goes past.
    pub fn by_pod(&self) -> bool {
        matches!(
            self,
            Blocked::DoNotDisruptPod(_) | Blocked::Pdb(_) | Blocked::MultiplePdbs(_)
        )
    }
}

/// A node that may be disrupted.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Index into the facts.
    pub node: usize,
    /// Index into the pools.
    pub pool: usize,
    /// Pods that need a place elsewhere.
    pub reschedulable: usize,
    /// Karpenter's disruption cost: the pods' eviction costs times the
    /// lifetime left (cheapest disrupted first).
    pub cost: f64,
}

/// Whether `node` may be disrupted; `eventual`: a method that may wait for
/// blocking pods (drift) when the claim bounds the wait with a
/// `terminationGracePeriod`.
pub fn candidate(
    index: usize,
    node: &NodeFacts,
    pools: &[PoolPolicy],
    eventual: bool,
) -> Result<Candidate, Blocked> {
    if node.claim.is_none() {
        return Err(Blocked::NotManaged);
    }
    if !node.has_node {
        return Err(Blocked::NoNode);
    }
    if !node.initialized {
        return Err(Blocked::NotInitialized);
    }
    if node.marked_for_deletion {
        return Err(Blocked::Deleting);
    }
    if node.nominated {
        return Err(Blocked::Nominated);
    }
    if node.do_not_disrupt {
        return Err(Blocked::DoNotDisruptNode);
    }
    let Some(pool_name) = &node.pool else {
        return Err(Blocked::NoPoolLabel);
    };
    let Some(pool) = pools.iter().position(|p| &p.name == pool_name) else {
        return Err(Blocked::PoolNotFound(pool_name.clone()));
    };
    if let Err(b) = pods_disruptable(&node.pods)
        && !(eventual && node.termination_grace_period && b.by_pod())
    {
        return Err(b);
    }
    Ok(Candidate {
        node: index,
        pool,
        reschedulable: node.pods.iter().filter(|p| p.reschedulable).count(),
        cost: disruption_cost(node),
    })
}

/// No active pod with do-not-disrupt; no evictable pod held by its PDB.
pub fn pods_disruptable(pods: &[PodFacts]) -> Result<(), Blocked> {
    if let Some(p) = pods.iter().find(|p| p.active && p.do_not_disrupt) {
        return Err(Blocked::DoNotDisruptPod(p.key.clone()));
    }
    for p in pods.iter().filter(|p| p.evictable) {
        if p.pdbs.len() > 1 {
            return Err(Blocked::MultiplePdbs(
                p.pdbs.iter().map(|(k, _)| k.clone()).collect(),
            ));
        }
        if let Some((k, false)) = p.pdbs.first() {
            return Err(Blocked::Pdb(k.clone()));
        }
    }
    Ok(())
}

/// Karpenter's `EvictionCost`: 1, plus the pod deletion cost over 2^27,
/// plus the priority over 2^25, within [-10, 10]. An unreadable deletion
/// cost counts as none.
pub fn eviction_cost(deletion_cost: Option<&str>, priority: Option<i32>) -> f64 {
    let mut cost = 1.0;
    if let Some(c) = deletion_cost.and_then(|c| c.trim().parse::<f64>().ok()) {
        cost += c / 2f64.powi(27);
    }
    if let Some(p) = priority {
        cost += p as f64 / 2f64.powi(25);
    }
    cost.clamp(-10.0, 10.0)
}

/// Karpenter's `LifetimeRemaining`: the fraction of `expireAfter` left (1
/// without it), within [0, 1].
pub fn lifetime_remaining(age: Duration, expire_after: Option<Duration>) -> f64 {
    match expire_after {
        Some(total) if !total.is_zero() => {
            ((total.as_secs_f64() - age.as_secs_f64()) / total.as_secs_f64()).clamp(0.0, 1.0)
        }
        _ => 1.0,
    }
}

/// Every pod's eviction cost (not only those that move) times the
/// lifetime left.
pub fn disruption_cost(node: &NodeFacts) -> f64 {
    node.pods.iter().map(|p| p.eviction_cost).sum::<f64>() * node.lifetime_remaining
}

/// Candidates, cheapest to disrupt first (ties in node order).
pub fn sort(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.node.cmp(&b.node)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_savings_reads_dollars_or_a_percentage() {
        assert_eq!(MinSavings::parse("0.05"), Ok(MinSavings::PerHour(0.05)));
        assert_eq!(MinSavings::parse("20%"), Ok(MinSavings::Ratio(0.2)));
        assert!(MinSavings::parse("-1").is_err());
        assert!(MinSavings::parse("120%").is_err());
        assert!(MinSavings::parse("cheap").is_err());
        assert!(MinSavings::Ratio(0.2).met(0.2, 1.0));
        assert!(!MinSavings::Ratio(0.2).met(0.19, 1.0));
        assert!(!MinSavings::PerHour(0.1).met(0.05, 1.0));
    }

    #[test]
    fn eviction_costs_are_karpenters() {
        assert_eq!(eviction_cost(None, None), 1.0);
        assert_eq!(eviction_cost(Some("not a number"), None), 1.0);
        assert_eq!(eviction_cost(Some("134217728"), None), 2.0);
        assert_eq!(eviction_cost(None, Some(33554432)), 2.0);
        assert_eq!(eviction_cost(None, Some(2_000_000_000)), 10.0);
        assert_eq!(eviction_cost(None, Some(i32::MIN)), -10.0);
    }

    #[test]
    fn lifetime_remaining_is_a_fraction() {
        let h = Duration::from_secs(3600);
        assert_eq!(lifetime_remaining(h, None), 1.0);
        assert_eq!(lifetime_remaining(h, Some(4 * h)), 0.75);
        assert_eq!(lifetime_remaining(5 * h, Some(4 * h)), 0.0);
    }

    fn node() -> NodeFacts {
        NodeFacts {
            name: "n".into(),
            claim: Some("c".into()),
            has_node: true,
            pool: Some("default".into()),
            initialized: true,
            ready: true,
            lifetime_remaining: 1.0,
            ..Default::default()
        }
    }

    fn pools() -> Vec<PoolPolicy> {
        vec![PoolPolicy {
            name: "default".into(),
            policy: Policy::WhenEmptyOrUnderutilized,
            consolidate_after: Some(Duration::ZERO),
            budgets: vec![],
            min_savings: None,
        }]
    }

    #[test]
    fn blocks_come_in_karpenters_order() {
        let mut n = node();
        n.initialized = false;
        n.do_not_disrupt = true;
        assert_eq!(
            candidate(0, &n, &pools(), false),
            Err(Blocked::NotInitialized)
        );
        n.initialized = true;
        assert_eq!(
            candidate(0, &n, &pools(), false),
            Err(Blocked::DoNotDisruptNode)
        );
        n.do_not_disrupt = false;
        n.pool = Some("other".into());
        assert_eq!(
            candidate(0, &n, &pools(), false),
            Err(Blocked::PoolNotFound("other".into()))
        );
    }

    #[test]
    fn pods_block_unless_terminating_or_an_eventual_disruption_may_wait() {
        let mut n = node();
        n.pods.push(PodFacts {
            key: "default/db".into(),
            active: true,
            reschedulable: true,
            evictable: true,
            pdbs: vec![("default/db".into(), false)],
            eviction_cost: 1.0,
            ..Default::default()
        });
        assert_eq!(
            candidate(0, &n, &pools(), false),
            Err(Blocked::Pdb("default/db".into()))
        );
        n.termination_grace_period = true;
        assert_eq!(
            candidate(0, &n, &pools(), false),
            Err(Blocked::Pdb("default/db".into()))
        );
        assert!(candidate(0, &n, &pools(), true).is_ok());
        n.pods[0].pdbs.push(("default/other".into(), true));
        assert!(matches!(
            candidate(0, &n, &pools(), false),
            Err(Blocked::MultiplePdbs(_))
        ));
        // A terminating pod with do-not-disrupt does not hold the node.
        n.pods[0] = PodFacts {
            key: "default/batch".into(),
            active: false,
            do_not_disrupt: true,
            ..Default::default()
        };
        assert!(candidate(0, &n, &pools(), false).is_ok());
    }
}
