//! Preferences: what a pod must satisfy at its current relaxation level,
//! and giving up its preferences one at a time.

use std::collections::BTreeSet;

use super::{Solver, explain::describe, node_terms, topology::Con};
use crate::{
    model::{LABEL_HOSTNAME, PodAffinityTerm, Taint, selector_text},
    requirements::Requirements,
};

/// A preference, in the order they are given up.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pref {
    Affinity(usize),
    Anti(usize),
    NodeTerm(usize),
    Spread(usize),
    PreferNoSchedule,
}

/// What a pod must satisfy at its current relaxation level.
#[derive(Clone, Debug, Default)]
pub(super) struct Eff {
    /// ORed node requirements (nodeSelector and node affinity, with the
    /// preferred terms still in force), interned.
    pub(super) terms: Vec<u32>,
    pub(super) cons: Vec<Con>,
    pub(super) strict_taints: bool,
    pub(super) owns_anti: Vec<u32>,
    /// Keys other than hostname a claim must be pinned on to take the pod.
    pub(super) det_keys: Vec<u32>,
    /// Keys the pod's topology checks look at.
    pub(super) check_keys: Vec<u32>,
    /// Hostname limits, for skipping claims quickly: (counter, most pods
    /// it may already count on the node, whether it counts owners).
    pub(super) host_limits: Vec<(u32, u32, bool)>,
    pub(super) pins_hostname: bool,
}

pub(super) struct PodState {
    pub(super) req: Vec<i64>,
    pub(super) prefs: Vec<Pref>,
    pub(super) level: usize,
    pub(super) eff: Eff,
    /// Counters that count this pod.
    pub(super) matches: Vec<u32>,
    /// The subset whose domains may hold owners of anti-affinity terms.
    pub(super) anti_matches: Vec<u32>,
}

impl Solver<'_> {
    /// The pod's constraints with its first `level` preferences given up.
    pub(super) fn eff(&mut self, i: usize) -> Eff {
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
                what: format!(
                    "pod affinity ({}, {})",
                    t.topology_key,
                    selector_text(&t.selector)
                ),
            });
        }
        for t in anti {
            let c = self.term_counter(pod, t);
            cons.push(Con::Anti {
                c,
                what: format!(
                    "pod anti-affinity ({}, {})",
                    t.topology_key,
                    selector_text(&t.selector)
                ),
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

    /// Gives up the pod's next preference; false if none is left.
    pub(super) fn relax(&mut self, i: usize) -> bool {
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
}
