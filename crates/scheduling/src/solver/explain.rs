//! Explanations: why a pod was left unplaced, node by node and pool by
//! pool, and the message helpers they use.

use std::fmt::Write as _;

use super::{Solver, dims::add_to, state::PoolFail, topology::dom_of_node, typeset::TypeSet};
use crate::{
    model::{LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_ZONE, untolerated},
    requirements::Requirements,
    resources::Resources,
};

impl Solver<'_> {
    pub(super) fn why_no_type(&self, merged: u32, pool_types: &TypeSet) -> PoolFail {
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

    pub(super) fn why_too_big(
        &self,
        i: usize,
        k: usize,
        compatible: &TypeSet,
        req: u32,
    ) -> PoolFail {
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

    pub(super) fn why_limit(&self, k: usize, fit: &TypeSet) -> PoolFail {
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

    /// Why pod `i` was not placed, the pools that refused it only for
    /// their limits, and each pool's reason on its own (without the pool's
    /// name, for callers that word it their way).
    pub(super) fn explain(&mut self, i: usize) -> (String, Vec<usize>, Vec<(usize, String)>) {
        let mut out = String::new();
        let mut limited = vec![];
        let mut per_pool = vec![];
        if self.pods[i].eff.terms.is_empty() {
            return ("its node affinity cannot be satisfied: every nodeSelectorTerm contradicts the nodeSelector".to_string(), limited, per_pool);
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
            return (out, limited, per_pool);
        }
        for oi in 0..self.pool_order.len() {
            let k = self.pool_order[oi];
            let name = self.p.pools[k].name.clone();
            let (msg, short) = match self.try_new(i, k, false) {
                Ok(()) => {
                    let short = "a new node would fit but every attempt conflicted with pods placed before it".to_string();
                    (format!("nodepool \"{name}\": {short}"), short)
                }
                Err(f) => match f {
                    PoolFail::Taint(t) => {
                        let short = format!("did not tolerate taint {t}");
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::Hostname => {
                        let short = format!(
                            "the pod selects a {LABEL_HOSTNAME}, which a new node cannot have"
                        );
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::Incompatible(e) => {
                        let short = format!(
                            "requires {} {}, pod requires {} {}",
                            e.key, e.ours, e.key, e.theirs
                        );
                        (
                            format!("incompatible with nodepool \"{name}\": {short}"),
                            short,
                        )
                    }
                    PoolFail::Undefined(k) => (
                        format!(
                            "incompatible with nodepool \"{name}\": label {k} is not defined by the nodepool"
                        ),
                        format!("label {k} is not defined on its nodes"),
                    ),
                    PoolFail::NoType(r) => {
                        let short = format!("no instance type satisfies {r}");
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::NoOffering(what) => {
                        let what = if what.is_empty() {
                            self.terms_text(i)
                        } else {
                            what
                        };
                        let short =
                            format!("no instance type has an available offering for {what}");
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::TooBig(r) => {
                        let short = format!("no instance type offers {r}");
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::Limit(l) => {
                        limited.push(k);
                        (
                            format!("nodepool \"{name}\" limit {l} reached"),
                            format!("limit {l} reached"),
                        )
                    }
                    PoolFail::HostPort(p) => {
                        let short = format!("host port {p} is taken by a daemonset");
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::Topology(t) => {
                        let short = format!("{} not satisfied", self.describe_fail(i, t));
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                    PoolFail::MinValues(m) => {
                        let short = format!("minValues: {m}");
                        (format!("nodepool \"{name}\": {short}"), short)
                    }
                },
            };
            per_pool.push((k, short));
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&msg);
        }
        (out, limited, per_pool)
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
}

/// The zone and capacity type a set of requirements allows, for messages.
pub(super) fn offering_text(req: &Requirements) -> String {
    let part = |k: &str| {
        req.get(k)
            .map_or_else(|| format!("{k} any"), |r| format!("{k} {r}"))
    };
    format!("{}, {}", part(LABEL_ZONE), part(LABEL_CAPACITY_TYPE))
}

pub(super) fn describe(r: &Requirements) -> String {
    r.0.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value of one dimension as Kubernetes prints it (`64`, `3155m`, `16Gi`).
fn fmt_dim(name: &str, v: i64) -> String {
    outrigger_values::format_resource(name, v)
}
