//! The metrics server's pure logic, without I/O: [`parse`] (kubelet
//! `/metrics/resource`), [`store`] (two samples per node and container, and
//! the usage math), [`quantity`] (canonical quantity and duration strings),
//! [`selector`] (label and field selectors), [`proto`] (the Kubernetes
//! protobuf encoding of the metrics types).

pub mod parse;
pub mod proto;
pub mod quantity;
pub mod selector;
pub mod store;
