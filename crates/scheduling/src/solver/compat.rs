//! Requirements and instance types: compatibility of a pod's terms with a
//! claim, the instance types requirements allow, and the topology values
//! they can realize (all cached).

use std::collections::BTreeSet;

use super::{Solver, state::PoolFail, typeset::TypeSet};
use crate::{
    model::{LABEL_CAPACITY_TYPE, LABEL_ZONE},
    requirements::Requirements,
};

impl Solver<'_> {
    /// The intersection of a pod's term and a claim's requirements, if
    /// compatible (a label the pool does not define and the pod needs is
    /// incompatible unless it is well known).
    pub(super) fn compat(&mut self, term: u32, claim: u32) -> Option<u32> {
        if let Some(r) = self.compat.get(&(term, claim)) {
            return *r;
        }
        let r = match self.compat_explain(term, claim) {
            Ok(m) => Some(self.reqs.intern(m)),
            Err(_) => None,
        };
        self.compat.insert((term, claim), r);
        r
    }

    pub(super) fn compat_explain(&self, term: u32, claim: u32) -> Result<Requirements, PoolFail> {
        let t = self.reqs.get(term);
        let c = self.reqs.get(claim);
        for (k, r) in &t.0 {
            if c.get(k).is_none() && !self.well_known.contains(k) && !r.allows(None) {
                return Err(PoolFail::Undefined(k.clone()));
            }
        }
        c.intersect(t).map_err(PoolFail::Incompatible)
    }

    pub(super) fn type_compatible(&self, t: usize, req: &Requirements) -> bool {
        let it = &self.p.instance_types[t];
        for (k, tr) in &it.requirements.0 {
            if let Some(r) = req.get(k) {
                let ok = match tr.single() {
                    Some(v) => r.allows(Some(v)),
                    None => !r.intersect(tr).is_unsatisfiable(),
                };
                if !ok {
                    return false;
                }
            }
        }
        for (k, r) in &req.0 {
            if self.type_keys.contains(k) && it.requirements.get(k).is_none() && !r.allows(None) {
                return false;
            }
        }
        true
    }

    pub(super) fn offering_ok(o: &crate::model::Offering, req: &Requirements) -> bool {
        o.available
            && req.get(LABEL_ZONE).is_none_or(|r| r.allows(Some(&o.zone)))
            && req
                .get(LABEL_CAPACITY_TYPE)
                .is_none_or(|r| r.allows(Some(&o.capacity_type)))
    }

    /// Instance types compatible with the requirements that have an
    /// available offering they allow.
    pub(super) fn type_ok(&mut self, req: u32) -> TypeSet {
        if let Some(s) = self.type_ok.get(&req) {
            return s.clone();
        }
        let r = self.reqs.get(req);
        let mut s = TypeSet::empty(self.p.instance_types.len());
        for (t, it) in self.p.instance_types.iter().enumerate() {
            if self.type_compatible(t, r) && it.offerings.iter().any(|o| Self::offering_ok(o, r)) {
                s.insert(t);
            }
        }
        self.type_ok.insert(req, s.clone());
        s
    }

    /// Values of `key` a node of these types, under these requirements,
    /// could have.
    pub(super) fn realizable(
        &self,
        types: &TypeSet,
        req: &Requirements,
        key: &str,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if (key == LABEL_ZONE || key == LABEL_CAPACITY_TYPE) && self.offers.zones.len() <= 64 {
            let allowed = |names: &[String], k: &str| -> u64 {
                let r = req.get(k);
                names.iter().enumerate().fold(0u64, |m, (b, v)| {
                    if r.is_none_or(|r| r.allows(Some(v))) {
                        m | (1 << b)
                    } else {
                        m
                    }
                })
            };
            let zones_ok = allowed(&self.offers.zones, LABEL_ZONE);
            let cts_ok = allowed(&self.offers.cts, LABEL_CAPACITY_TYPE);
            let mut zones = 0u64;
            let mut cts = 0u64;
            for t in types.iter() {
                for (ct, zmask) in self.offers.masks[t].iter().enumerate() {
                    if cts_ok & (1 << ct) != 0 && zmask & zones_ok != 0 {
                        zones |= zmask & zones_ok;
                        cts |= 1 << ct;
                    }
                }
            }
            let (mask, names) = if key == LABEL_ZONE {
                (zones, &self.offers.zones)
            } else {
                (cts, &self.offers.cts)
            };
            for (b, v) in names.iter().enumerate() {
                if mask & (1 << b) != 0 {
                    out.insert(v.clone());
                }
            }
            return out;
        }
        for t in types.iter() {
            let it = &self.p.instance_types[t];
            if key == LABEL_ZONE || key == LABEL_CAPACITY_TYPE {
                for o in &it.offerings {
                    if Self::offering_ok(o, req) {
                        out.insert(if key == LABEL_ZONE {
                            o.zone.clone()
                        } else {
                            o.capacity_type.clone()
                        });
                    }
                }
            } else if let Some(v) = self.type_labels[t].get(key) {
                out.insert(v.clone());
            } else if let Some(v) = req.get(key).and_then(|r| r.values()) {
                out.extend(v.iter().cloned());
            }
        }
        out.retain(|v| req.get(key).is_none_or(|r| r.allows(Some(v))));
        out
    }

    /// Every value of `key` a pod with these terms could land in.
    pub(super) fn universe(&mut self, terms: &[u32], key: &str) -> Vec<String> {
        let ck = (terms.to_vec(), key.to_string());
        if let Some(u) = self.universe_cache.get(&ck) {
            return u.clone();
        }
        let mut out = BTreeSet::new();
        for (n, node) in self.p.nodes.iter().enumerate() {
            if let Some(v) = node.labels.get(key)
                && terms.iter().any(|t| self.term_matches_node(*t, n))
            {
                out.insert(v.clone());
            }
        }
        for k in 0..self.pools.len() {
            let base = self.pools[k].base;
            for t in terms {
                if let Some(m) = self.compat(*t, base) {
                    let types = self.type_ok(m).and(&self.pools[k].types);
                    out.extend(self.realizable(&types, self.reqs.get(m), key));
                }
            }
        }
        let u: Vec<String> = out.into_iter().collect();
        self.universe_cache.insert(ck, u.clone());
        u
    }

    pub(super) fn term_matches_node(&mut self, term: u32, node: usize) -> bool {
        if let Some(m) = self.node_match.get(&(term, node)) {
            return *m;
        }
        let m = self.reqs.get(term).matches(&self.p.nodes[node].labels);
        self.node_match.insert((term, node), m);
        m
    }
}
