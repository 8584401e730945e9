//! Placing one pod: existing nodes first, then open claims, then a new
//! claim from the first pool that takes it.

use super::{
    Solver,
    dims::{add_to, fits},
    topology::dom_of_node,
};
use crate::model::{Target, untolerated};

impl Solver<'_> {
    pub(super) fn place(&mut self, i: usize) -> bool {
        for oi in 0..self.node_order.len() {
            let n = self.node_order[oi];
            if self.try_node(i, n) {
                return true;
            }
        }
        // A claim with room in its cheapest type first: free capacity.
        if !self.options.fixed_bins {
            for oi in 0..self.open.len() {
                let ci = self.open[oi];
                let c = &self.claims[ci];
                if !c.closed
                    && self.pods[i].req.iter().zip(&c.slack).all(|(r, s)| r <= s)
                    && !self.host_blocked(i, c.slot)
                    && self.try_claim(i, ci)
                {
                    return true;
                }
            }
        }
        let mut closed_seen = 0;
        for oi in 0..self.open.len() {
            let ci = self.open[oi];
            if self.claims[ci].closed {
                closed_seen += 1;
                continue;
            }
            // Claims with room in their cheapest type were tried above.
            let tried = !self.options.fixed_bins
                && self.pods[i]
                    .req
                    .iter()
                    .zip(&self.claims[ci].slack)
                    .all(|(r, s)| r <= s);
            if !tried && !self.host_blocked(i, self.claims[ci].slot) && self.try_claim(i, ci) {
                if closed_seen > 64 {
                    let claims = &self.claims;
                    self.open.retain(|c| !claims[*c].closed);
                }
                return true;
            }
        }
        if closed_seen > 64 {
            let claims = &self.claims;
            self.open.retain(|c| !claims[*c].closed);
        }
        for oi in 0..self.pool_order.len() {
            let k = self.pool_order[oi];
            if self.try_new(i, k, true).is_ok() {
                return true;
            }
        }
        false
    }

    /// The pod's hostname anti-affinity or spread already rules this node
    /// out (a quick test before `try_claim`).
    #[inline]
    fn host_blocked(&self, i: usize, slot: u32) -> bool {
        self.pods[i].eff.host_limits.iter().any(|(c, max, owners)| {
            let ctr = &self.counters[*c as usize];
            let v = if *owners {
                &ctr.owners_by_slot
            } else {
                &ctr.by_slot
            };
            v.get(slot as usize).copied().unwrap_or(0) > *max
        })
    }

    fn try_node(&mut self, i: usize, n: usize) -> bool {
        let pod = &self.p.pods[i];
        let ns = &self.nodes[n];
        if !fits(&ns.used, &self.pods[i].req, &ns.alloc) {
            return false;
        }
        let strict = self.pods[i].eff.strict_taints;
        if untolerated(&self.p.nodes[n].taints, &pod.tolerations, strict).is_some() {
            return false;
        }
        if pod
            .host_ports
            .iter()
            .any(|hp| ns.ports.iter().any(|o| hp.conflicts(o)))
        {
            return false;
        }
        let terms = self.pods[i].eff.terms.clone();
        if !terms.iter().any(|t| self.term_matches_node(*t, n)) {
            return false;
        }
        for ki in 0..self.pods[i].eff.check_keys.len() {
            let key = self.pods[i].eff.check_keys[ki];
            let dom = dom_of_node(self.p, &self.keys, n, key);
            if self.check_key(i, key, dom).is_err() {
                return false;
            }
        }
        let req = self.pods[i].req.clone();
        add_to(&mut self.nodes[n].used, &req);
        self.nodes[n]
            .ports
            .extend(self.p.pods[i].host_ports.iter().cloned());
        self.commit_topology(i, Target::Node(n));
        self.placements.push((i, Target::Node(n)));
        true
    }
}
