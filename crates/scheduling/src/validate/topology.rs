//! Check 5, topology: pod affinity, anti-affinity and topology spread,
//! checked by replaying the placements in order; the topology domains of
//! nodes and claims.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use super::{Check, Rule, Violation, term_selects};
use crate::model::{LABEL_HOSTNAME, Pod, Target};

impl Check<'_> {
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

    pub(super) fn topology(&mut self, targets: &[Option<Target>]) {
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
