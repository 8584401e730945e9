//! Claims: which of a claim's instance types still fit, adding a pod to an
//! open claim, and opening a new claim of a pool.

use std::collections::BTreeSet;

use super::{
    Solver,
    dims::add_to,
    explain::offering_text,
    state::{Claim, PoolFail, Summary, used_with},
    topology::Dom,
    typeset::TypeSet,
};
use crate::{
    model::{Target, untolerated},
    requirements::Requirements,
};

impl Solver<'_> {
    /// Types of `types` with room for `used + add` and enough distinct
    /// values for every minValues requirement.
    /// `fitting` for a claim's own types: the types each dimension rules
    /// out are a prefix of that dimension's order past the claim's cursor,
    /// so only the newly failing ones are visited.
    fn fitting_claim(
        &self,
        ci: usize,
        mut out: TypeSet,
        add: &[i64],
        req: &Requirements,
    ) -> (TypeSet, Vec<u32>) {
        let c = &self.claims[ci];
        let d = self.dims.len();
        let mut cursor = c.cursor.clone();
        for k in 0..d {
            let want = c.used[k].saturating_add(add[k]);
            let order = &self.by_dim[k];
            let mut j = cursor[k] as usize;
            while j < order.len() && self.alloc_flat[order[j] as usize * d + k] < want {
                out.remove(order[j] as usize);
                j += 1;
            }
            cursor[k] = j as u32;
        }
        if !self.min_values_hold(&out, req) {
            return (TypeSet::empty(self.p.instance_types.len()), cursor);
        }
        (out, cursor)
    }

    /// Where each dimension's cursor starts for a claim using `used`.
    fn cursors(&self, used: &[i64]) -> Vec<u32> {
        let d = self.dims.len();
        (0..d)
            .map(|k| {
                self.by_dim[k].partition_point(|t| self.alloc_flat[*t as usize * d + k] < used[k])
                    as u32
            })
            .collect()
    }

    fn min_values_hold(&self, types: &TypeSet, req: &Requirements) -> bool {
        for (k, r) in &req.0 {
            if let Some(min) = r.min_values {
                let distinct: BTreeSet<&str> = types
                    .iter()
                    .filter_map(|t| self.type_labels[t].get(k).map(String::as_str))
                    .collect();
                if distinct.len() < min {
                    return false;
                }
            }
        }
        true
    }

    fn fitting(&self, types: &TypeSet, used: &[i64], add: &[i64], req: &Requirements) -> TypeSet {
        let mut out = types.clone();
        let d = self.dims.len();
        let want: Vec<i64> = used
            .iter()
            .zip(add)
            .map(|(u, a)| u.saturating_add(*a))
            .collect();
        out.retain(|t| {
            let a = &self.alloc_flat[t * d..t * d + d];
            want.iter().zip(a).all(|(w, a)| w <= a)
        });
        if !self.min_values_hold(&out, req) {
            return TypeSet::empty(self.p.instance_types.len());
        }
        out
    }

    /// One pass over a claim's types: the largest allocatable, the
    /// largest capacity (what pool limits are charged), and the cheapest
    /// type.
    ///
    /// Walks each dimension's order from its ends (and the price order
    /// from `price_from`), so it costs little more than one step per
    /// dimension: a claim's types are all but the smallest ones.
    fn summarize(&self, types: &TypeSet, cursor: &[u32], price_from: u32) -> Summary {
        let d = self.dims.len();
        let has = |t: u32| types.has(t as usize);
        let first = |order: &[u32], from: usize| order[from..].iter().copied().find(|t| has(*t));
        let last = |order: &[u32]| order.iter().rev().copied().find(|t| has(*t));
        let mut s = Summary {
            max_alloc: vec![i64::MIN; d],
            min_alloc: vec![i64::MAX; d],
            charge: vec![i64::MIN; d],
            cheapest: None,
            price_cursor: price_from,
        };
        for (k, from) in cursor.iter().enumerate().take(d) {
            if let Some(t) = last(&self.by_dim[k]) {
                s.max_alloc[k] = self.alloc[t as usize][k];
            }
            if let Some(t) = first(&self.by_dim[k], *from as usize) {
                s.min_alloc[k] = self.alloc[t as usize][k];
            }
            if let Some(t) = last(&self.by_cap[k]) {
                s.charge[k] = self.cap[t as usize][k];
            }
        }
        if let Some(j) = self.by_price[price_from as usize..]
            .iter()
            .position(|t| has(*t))
        {
            s.price_cursor = price_from + j as u32;
            s.cheapest = Some(self.by_price[s.price_cursor as usize] as usize);
        }
        s
    }

    pub(super) fn max_over(&self, types: &TypeSet, of: &[Vec<i64>]) -> Vec<i64> {
        let mut m = vec![i64::MIN; self.dims.len()];
        for t in types.iter() {
            m.iter_mut()
                .zip(&of[t])
                .for_each(|(a, b)| *a = (*a).max(*b));
        }
        m
    }

    pub(super) fn try_claim(&mut self, i: usize, ci: usize) -> bool {
        let c = &self.claims[ci];
        let req_v = &self.pods[i].req;
        if req_v.iter().zip(&c.max_free).any(|(r, f)| r > f) {
            return false;
        }
        let pool = c.pool;
        let strict = self.pods[i].eff.strict_taints;
        if self.pods[i].eff.pins_hostname
            || untolerated(
                &self.p.pools[pool].taints,
                &self.p.pods[i].tolerations,
                strict,
            )
            .is_some()
        {
            return false;
        }
        if self.p.pods[i]
            .host_ports
            .iter()
            .any(|hp| c.ports.iter().any(|o| hp.conflicts(o)))
        {
            return false;
        }
        let (claim_req, slot) = (c.req, c.slot);
        // The claim's own hostname domain first: the cheapest check, and
        // the one that turns away anti-affine and hostname-spread pods.
        if let Some(hk) = self.host_key
            && self.pods[i].eff.check_keys.contains(&hk)
            && self.check_key(i, hk, Dom::Slot(slot)).is_err()
        {
            return false;
        }
        for ti in 0..self.pods[i].eff.terms.len() {
            let term = self.pods[i].eff.terms[ti];
            let Some(merged) = self.compat(term, claim_req) else {
                continue;
            };
            let c = &self.claims[ci];
            let (fit, cursor) = if merged == claim_req
                && self.pods[i]
                    .req
                    .iter()
                    .zip(&c.min_free)
                    .all(|(r, f)| r <= f)
            {
                // Same requirements and room in every type: nothing to filter.
                (c.types.clone(), c.cursor.clone())
            } else {
                let cand = if merged == claim_req {
                    c.types.clone()
                } else {
                    self.type_ok(merged).and(&self.claims[ci].types)
                };
                self.fitting_claim(ci, cand, &self.pods[i].req, self.reqs.get(merged))
            };
            if fit.is_empty() {
                continue;
            }
            let Ok(pinned) = self.topo_claim(i, slot, merged, &fit) else {
                continue;
            };
            let types = if pinned == merged {
                fit
            } else {
                let ok_types = self.type_ok(pinned).and(&fit);
                let c = &self.claims[ci];
                self.fitting(&ok_types, &c.used, &self.pods[i].req, self.reqs.get(pinned))
            };
            if types.is_empty() {
                continue;
            }
            // Commit.
            let Summary {
                max_alloc,
                min_alloc,
                charge,
                cheapest,
                price_cursor,
            } = self.summarize(&types, &cursor, self.claims[ci].price_cursor);
            let req = self.pods[i].req.clone();
            let c = &mut self.claims[ci];
            add_to(&mut c.used, &req);
            let remaining = &mut self.pools[pool].remaining;
            for d in 0..remaining.len() {
                if remaining[d] != i64::MAX {
                    remaining[d] = remaining[d].saturating_add(c.charge[d] - charge[d]);
                }
            }
            c.charge = charge;
            c.cursor = cursor;
            c.price_cursor = price_cursor;
            c.max_free = max_alloc.iter().zip(&c.used).map(|(a, u)| a - u).collect();
            c.min_free = min_alloc.iter().zip(&c.used).map(|(a, u)| a - u).collect();
            c.slack = match cheapest {
                Some(t) => self.alloc[t]
                    .iter()
                    .zip(&c.used)
                    .map(|(a, u)| a - u)
                    .collect(),
                None => vec![i64::MIN; c.used.len()],
            };
            c.types = types;
            c.req = pinned;
            c.pods.push(i);
            c.ports.extend(self.p.pods[i].host_ports.iter().cloned());
            if c.max_free.iter().zip(&self.min_req).any(|(f, m)| f < m) {
                c.closed = true;
            }
            self.commit_topology(i, Target::Claim(ci));
            self.placements.push((i, Target::Claim(ci)));
            return true;
        }
        false
    }

    /// Opens a claim of pool `k` for pod `i`, or says why it cannot.
    pub(super) fn try_new(&mut self, i: usize, k: usize, commit: bool) -> Result<(), PoolFail> {
        let pool = &self.p.pools[k];
        let strict = self.pods[i].eff.strict_taints;
        if let Some(t) = untolerated(&pool.taints, &self.p.pods[i].tolerations, strict) {
            return Err(PoolFail::Taint(t.clone()));
        }
        if self.pods[i].eff.pins_hostname {
            return Err(PoolFail::Hostname);
        }
        if let Some(hp) = self.p.pods[i]
            .host_ports
            .iter()
            .find(|hp| self.pools[k].ports.iter().any(|o| hp.conflicts(o)))
        {
            return Err(PoolFail::HostPort(hp.port));
        }
        let slot = (self.nodes.len() + self.claims.len()) as u32;
        let base = self.pools[k].base;
        let terms = self.pods[i].eff.terms.clone();
        let mut first_err = None;
        for term in terms {
            let merged = match self.compat(term, base) {
                Some(m) => m,
                None => {
                    let e = self.compat_explain(term, base).err();
                    first_err.get_or_insert(e.unwrap_or(PoolFail::NoOffering(String::new())));
                    continue;
                }
            };
            let pool_types = self.pools[k].types.clone();
            let compatible = self.type_ok(merged).and(&pool_types);
            if compatible.is_empty() {
                first_err.get_or_insert_with(|| self.why_no_type(merged, &pool_types));
                continue;
            }
            let overhead = self.pools[k].overhead.clone();
            let fit = self.fitting(
                &compatible,
                &overhead,
                &self.pods[i].req,
                self.reqs.get(merged),
            );
            if fit.is_empty() {
                first_err.get_or_insert_with(|| self.why_too_big(i, k, &compatible, merged));
                continue;
            }
            let remaining = &self.pools[k].remaining;
            let mut within = fit.clone();
            within.retain(|t| self.cap[t].iter().zip(remaining).all(|(c, r)| c <= r));
            if within.is_empty() {
                first_err.get_or_insert_with(|| self.why_limit(k, &fit));
                continue;
            }
            let pinned = match self.topo_claim(i, slot, merged, &within) {
                Ok(p) => p,
                Err(e) => {
                    first_err.get_or_insert(PoolFail::Topology(e));
                    continue;
                }
            };
            if pinned != merged {
                let ok = self.type_ok(pinned).and(&within);
                within = self.fitting(&ok, &overhead, &self.pods[i].req, self.reqs.get(pinned));
                if within.is_empty() {
                    first_err
                        .get_or_insert(PoolFail::NoOffering(offering_text(self.reqs.get(pinned))));
                    continue;
                }
            }
            if !commit {
                return Ok(());
            }
            if self.options.fixed_bins {
                let r = self.reqs.get(pinned);
                if let Some(t) = within.iter().min_by(|a, b| {
                    self.price_for(*a, r)
                        .total_cmp(&self.price_for(*b, r))
                        .then(a.cmp(b))
                }) {
                    let mut one = TypeSet::empty(self.p.instance_types.len());
                    one.insert(t);
                    within = one;
                }
            }
            let cursor = self.cursors(&used_with(&overhead, &self.pods[i].req));
            let Summary {
                max_alloc,
                min_alloc,
                charge,
                cheapest,
                price_cursor,
            } = self.summarize(&within, &cursor, 0);
            let mut used = overhead;
            add_to(&mut used, &self.pods[i].req);
            for (d, r) in self.pools[k].remaining.iter_mut().enumerate() {
                if *r != i64::MAX {
                    *r -= charge[d];
                }
            }
            let mut ports = self.pools[k].ports.clone();
            ports.extend(self.p.pods[i].host_ports.iter().cloned());
            let max_free: Vec<i64> = max_alloc.iter().zip(&used).map(|(a, u)| a - u).collect();
            let min_free: Vec<i64> = min_alloc.iter().zip(&used).map(|(a, u)| a - u).collect();
            let slack = match cheapest {
                Some(t) => self.alloc[t]
                    .iter()
                    .zip(&used)
                    .map(|(a, u)| a - u)
                    .collect(),
                None => vec![i64::MIN; used.len()],
            };
            let closed = max_free.iter().zip(&self.min_req).any(|(f, m)| f < m);
            let ci = self.claims.len();
            self.claims.push(Claim {
                pool: k,
                req: pinned,
                types: within,
                used,
                max_free,
                charge,
                pods: vec![i],
                ports,
                slot,
                closed,
                slack,
                min_free,
                cursor,
                price_cursor,
            });
            self.open.push(ci);
            self.commit_topology(i, Target::Claim(ci));
            self.placements.push((i, Target::Claim(ci)));
            return Ok(());
        }
        Err(first_err.unwrap_or(PoolFail::NoOffering(String::new())))
    }
}
