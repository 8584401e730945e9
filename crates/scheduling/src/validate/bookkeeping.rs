//! Check 1, bookkeeping: indices in range, every pod placed or unplaced
//! exactly once, claims that agree with the placements, hostnames used once.

use std::collections::BTreeSet;

use super::{Check, Rule};
use crate::model::{LABEL_HOSTNAME, Target};

impl Check<'_> {
    // --- 1. bookkeeping ------------------------------------------------------

    /// Checks indices and that every pod is placed or unplaced exactly once;
    /// returns each pod's target (its first valid placement).
    pub(super) fn bookkeeping(&mut self) -> Vec<Option<Target>> {
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
}

fn has_duplicates(v: &[usize]) -> bool {
    let set: BTreeSet<&usize> = v.iter().collect();
    set.len() != v.len()
}
