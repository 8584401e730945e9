//! Nodes, pools and claims as the solver tracks them, and why a pool
//! refused a pod.

use super::{topology::TopoFail, typeset::TypeSet};
use crate::{
    model::{HostPort, Taint},
    requirements::Incompatible,
};

pub(super) struct NodeState {
    pub(super) used: Vec<i64>,
    pub(super) alloc: Vec<i64>,
    pub(super) ports: Vec<HostPort>,
}

pub(super) struct PoolState {
    pub(super) base: u32,
    pub(super) types: TypeSet,
    pub(super) overhead: Vec<i64>,
    pub(super) daemonsets: Vec<usize>,
    pub(super) ports: Vec<HostPort>,
    pub(super) remaining: Vec<i64>,
}

pub(super) struct Claim {
    pub(super) pool: usize,
    pub(super) req: u32,
    pub(super) types: TypeSet,
    pub(super) used: Vec<i64>,
    pub(super) max_free: Vec<i64>,
    pub(super) charge: Vec<i64>,
    pub(super) pods: Vec<usize>,
    pub(super) ports: Vec<HostPort>,
    pub(super) slot: u32,
    pub(super) closed: bool,
    /// Room left in the cheapest of its types: a pod that fits here does
    /// not make the claim more expensive.
    pub(super) slack: Vec<i64>,
    /// Room left in the smallest of its types: a pod that fits here keeps
    /// every type.
    pub(super) min_free: Vec<i64>,
    /// Per dimension, how far along `Solver::by_dim` the types are too
    /// small for `used`.
    pub(super) cursor: Vec<u32>,
    /// Where its cheapest type is in `Solver::by_price` (types before it
    /// are gone for good).
    pub(super) price_cursor: u32,
}

/// What `Solver::summarize` finds about a set of types.
pub(super) struct Summary {
    pub(super) max_alloc: Vec<i64>,
    pub(super) min_alloc: Vec<i64>,
    pub(super) charge: Vec<i64>,
    pub(super) cheapest: Option<usize>,
    pub(super) price_cursor: u32,
}

pub(super) fn used_with(a: &[i64], b: &[i64]) -> Vec<i64> {
    a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
}

/// Why a pod could not go to a new claim of one pool.
pub(super) enum PoolFail {
    Taint(Taint),
    Hostname,
    Incompatible(Incompatible),
    Undefined(String),
    NoType(String),
    /// No available offering for (zone, capacity type) requirements.
    NoOffering(String),
    TooBig(String),
    Limit(String),
    HostPort(u16),
    Topology(TopoFail),
    MinValues(String),
}
