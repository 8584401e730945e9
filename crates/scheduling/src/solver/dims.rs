//! Resource vectors: a problem's resource dimensions and the integer
//! vectors the solver adds and compares.

use std::collections::BTreeSet;

use crate::{
    model::Problem,
    resources::{CPU, EPHEMERAL_STORAGE, MEMORY, PODS, Resources},
};

/// Resource dimensions of one problem: cpu, memory, pods, ephemeral-storage,
/// then every extended resource named anywhere.
pub(super) struct Dims {
    ext: Vec<String>,
}

impl Dims {
    pub(super) fn new(p: &Problem) -> Self {
        let mut ext = BTreeSet::new();
        let mut see = |r: &Resources| ext.extend(r.extended.keys().cloned());
        for pod in p.pods.iter().chain(&p.daemonsets) {
            see(&pod.requests);
        }
        for n in &p.nodes {
            see(&n.allocatable);
            n.pods.iter().for_each(|pod| see(&pod.requests));
        }
        for t in &p.instance_types {
            see(&t.capacity);
        }
        for pool in &p.pools {
            for k in pool.limits.keys() {
                if ![CPU, MEMORY, PODS, EPHEMERAL_STORAGE].contains(&k.as_str()) {
                    ext.insert(k.clone());
                }
            }
        }
        Self {
            ext: ext.into_iter().collect(),
        }
    }

    pub(super) fn len(&self) -> usize {
        4 + self.ext.len()
    }

    pub(super) fn name(&self, d: usize) -> &str {
        match d {
            0 => CPU,
            1 => MEMORY,
            2 => PODS,
            3 => EPHEMERAL_STORAGE,
            _ => &self.ext[d - 4],
        }
    }

    pub(super) fn index(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|d| self.name(*d) == name)
    }

    pub(super) fn vec(&self, r: &Resources) -> Vec<i64> {
        (0..self.len()).map(|d| r.get(self.name(d))).collect()
    }

    pub(super) fn res(&self, v: &[i64]) -> Resources {
        let mut r = Resources {
            cpu_millis: v[0],
            memory_bytes: v[1],
            pods: v[2],
            ephemeral_bytes: v[3],
            ..Default::default()
        };
        for (i, name) in self.ext.iter().enumerate() {
            if v[4 + i] != 0 {
                r.extended.insert(name.clone(), v[4 + i]);
            }
        }
        r
    }
}

pub(super) fn fits(used: &[i64], add: &[i64], cap: &[i64]) -> bool {
    used.iter()
        .zip(add)
        .zip(cap)
        .all(|((u, a), c)| u.saturating_add(*a) <= *c)
}

pub(super) fn add_to(v: &mut [i64], o: &[i64]) {
    v.iter_mut()
        .zip(o)
        .for_each(|(a, b)| *a = a.saturating_add(*b));
}
