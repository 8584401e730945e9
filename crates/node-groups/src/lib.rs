//! The node-group autoscaler's decisions, Cluster-Autoscaler-compatible,
//! without I/O (the component `outrigger cluster-autoscaler` watches, asks
//! the cloud, and carries them out):
//!
//! - [`group`]: node groups and their template nodes (from a node of the
//!   group, or its instance type and `node-template` tags);
//! - [`scaleup`]: how many nodes each group would need for the pending
//!   pods, with the shared solver, within the group's and the cluster's
//!   limits, and each group's reason for the pods it cannot help;
//! - [`expander`]: which option to take (`--expander` chains);
//! - [`scaledown`]: unneeded nodes (utilization, drain rules, where their
//!   pods would go) and which to remove now;
//! - [`status`]: the status ConfigMap's document;
//! - [`flags`]: `--nodes`, `--node-group-auto-discovery`, ranges;
//! - [`upstream`]: Cluster Autoscaler's annotations, taints, tags, Event
//!   reasons and messages.

pub mod balance;
pub mod expander;
pub mod flags;
pub mod group;
pub mod scaledown;
pub mod scaleup;
pub mod status;
pub mod upstream;
