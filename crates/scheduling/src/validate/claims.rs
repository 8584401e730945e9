//! Checks 3 and 4, claims and limits: the nodes a claim may be launched
//! as, each of them checked (instance types, prices, requirements,
//! daemonsets, resources, taints, node affinity, host ports); node pools'
//! limits.

use std::collections::BTreeSet;

use super::{Check, Possible, Rule, offering_allowed, pod_mismatch, same_resources, unmet};
use crate::{
    model::{
        LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE, Labels, NewClaim, Pod,
        Target, untolerated,
    },
    resources::Resources,
};

impl Check<'_> {
    // --- 3. claims -------------------------------------------------------------

    /// The nodes claim `ci` may be launched as; reports conflicting labels.
    pub(super) fn possible_nodes(&mut self, ci: usize) -> Vec<Possible> {
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

    pub(super) fn claim(&mut self, ci: usize) {
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

    pub(super) fn limits(&mut self) {
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
}
