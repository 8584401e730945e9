//! Scheduling simulation for Outrigger's node autoscalers: which pending
//! pods fit on existing nodes, on nodes being launched, and which new nodes
//! to launch. Plain data in, a plan out: no I/O, no kube client.
//!
//! This first part is the resource model: [`quantity`] (Kubernetes quantity
//! strings, parsed exactly) and [`resources`] (resource lists with the
//! rounding kube-scheduler applies), and [`requirements`] (the node-requirements
//! algebra: In, NotIn, Exists, DoesNotExist, Gt, Lt, minValues).

pub mod quantity;
pub mod requirements;
pub mod resources;
