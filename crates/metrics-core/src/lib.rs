//! The metrics server's pure logic, without I/O: [`parse`] (kubelet
//! `/metrics/resource`), [`store`] (two samples per node and container, and
//! the usage math), [`selector`] (field selectors; label selectors are
//! `outrigger-values`'), [`proto`] (the Kubernetes protobuf encoding of the
//! metrics types). Quantities and durations are printed by
//! `outrigger-values`.

pub mod insights;
pub mod parse;
pub mod proto;
pub mod selector;
pub mod store;
