//! Outrigger's metrics server: a drop-in for kubernetes-sigs/metrics-server.
//!
//! Pure parts: [`parse`] (kubelet `/metrics/resource`), [`store`] (two samples
//! and the usage math), [`quantity`], [`selector`].

pub mod parse;
pub mod quantity;
pub mod selector;
pub mod store;
