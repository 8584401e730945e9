//! Scheduling simulation for Outrigger's node autoscalers: which pending
//! pods fit on existing nodes, on nodes being launched, and which new nodes
//! to launch. Plain data in, a plan out: no I/O, no kube client.
//!
//! - [`quantity`], [`resources`]: Kubernetes quantities parsed exactly and
//!   resource lists with kube-scheduler's rounding.
//! - [`requirements`]: the node-requirements algebra (In, NotIn, Exists,
//!   DoesNotExist, Gt, Lt, minValues).
//! - [`model`]: pods and their constraints, nodes, pools, instance types,
//!   the plan.
//! - [`eks`]: EC2 instance types with the EKS allocatable formula.

pub mod eks;
pub mod model;
pub mod quantity;
pub mod requirements;
pub mod resources;
