//! Topology: pod counters per domain, a pod's topology constraints, and
//! the checks of pod affinity, anti-affinity and topology spread against
//! a node or claim (pinning a claim's domains as pods join it).

use hashbrown::HashMap;

use super::{
    Solver,
    interner::{Interner, in_req},
    node_terms,
    state::Claim,
    typeset::TypeSet,
};
use crate::model::{
    LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_ZONE, Pod, PodAffinityTerm, Problem, Target,
};

/// Pods matching one (topology key, namespaces, selector), counted per
/// domain; and, for anti-affinity, the pods that own such a required term.
pub(super) struct Counter {
    key: String,
    pub(super) key_id: u32,
    pub(super) hostname: bool,
    namespaces: Vec<String>,
    selector: crate::model::LabelSelector,
    pub(super) by_slot: Vec<u32>,
    by_value: HashMap<String, u32>,
    pub(super) owners_by_slot: Vec<u32>,
    owners_by_value: HashMap<String, u32>,
    total: u32,
    /// Some pod owns a required anti-affinity term on it.
    pub(super) anti: bool,
    /// For topology spread (nodeAffinityPolicy Honor): the owning pod's
    /// node terms; only pods on nodes that match one are counted. Empty:
    /// every node. Claims narrow as pods join, so a filtered counter keeps
    /// two counts: `by_value`, pods on targets that may match (an upper
    /// bound of what kube-scheduler will count), and `by_value_certain`,
    /// pods on targets that must match (a lower bound). The skew check
    /// takes the first for the target and the second for the minimum, so
    /// it is never looser than the real one.
    pub(super) filter: Vec<u32>,
    pub(super) by_value_certain: HashMap<String, u32>,
}

impl Counter {
    pub(super) fn matches(&self, pod: &Pod) -> bool {
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
    pub(super) fn bump(&mut self, d: &Dom, owner: bool) {
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
pub(super) enum Dom<'a> {
    Slot(u32),
    Value(&'a str),
    Missing,
}

/// A failed topology check: the pod's constraint `Con(i)`, or another
/// pod's required anti-affinity on counter `Symmetric(c)`.
#[derive(Clone, Copy, Debug)]
pub(super) enum TopoFail {
    Con(usize),
    Symmetric(u32),
}

#[derive(Clone, Debug)]
pub(super) enum Con {
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
    pub(super) fn counter(&self) -> u32 {
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

impl Solver<'_> {
    pub(super) fn counter(
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

    pub(super) fn term_counter(&mut self, pod: &Pod, t: &PodAffinityTerm) -> u32 {
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
    pub(super) fn spread_filter(&mut self, pod: &Pod) -> Vec<u32> {
        let terms = node_terms(pod);
        if terms.len() == 1 && terms[0].0.is_empty() {
            return vec![];
        }
        terms.into_iter().map(|t| self.reqs.intern(t)).collect()
    }

    /// Checks the pod's constraints on one key for a target whose domain
    /// for that key is `dom`.
    pub(super) fn check_key(&self, i: usize, key: u32, dom: Dom<'_>) -> Result<(), TopoFail> {
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

    pub(super) fn describe_fail(&self, i: usize, f: TopoFail) -> String {
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
    pub(super) fn topo_claim(
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
    pub(super) fn commit_topology(&mut self, i: usize, target: Target) {
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
}

/// A node's domain for a topology key: the node itself for hostname, else
/// its label.
pub(super) fn dom_of_node<'a>(p: &'a Problem, keys: &[String], node: usize, key: u32) -> Dom<'a> {
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
