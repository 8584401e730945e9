//! Scheduling simulation for Outrigger's node autoscalers: which pending
//! pods fit on existing nodes, on nodes being launched, and which new nodes
//! to launch. Plain data in, a plan out: no I/O, no kube client.
//!
//! - [`resources`]: resource lists with kube-scheduler's rounding, over
//!   `outrigger-values`' exact quantities (re-exported as [`quantity`]).
//! - [`requirements`]: the node-requirements algebra (In, NotIn, Exists,
//!   DoesNotExist, Gt, Lt, minValues).
//! - [`model`]: pods and their constraints, nodes, pools, instance types,
//!   the plan.
//! - [`eks`]: EC2 instance types with the EKS allocatable formula.
//! - [`reduce`]: the same problem on fewer, smaller nodes, for the many
//!   questions the node autoscalers ask of a large cluster.
//! - [`solver`]: the plan: existing capacity first, then new claims that
//!   keep every instance type that fits; explanations for every pod left;
//!   what removing nodes would do.
//! - `validate` (tests, feature `testgen`): an independent check of a plan
//!   against its problem.
//! - `testgen` (tests, feature `testgen`): random problems for property tests.

pub mod eks;
pub mod model;
pub mod reduce;
/// Kubernetes quantities: `outrigger-values`' one implementation.
pub use outrigger_values::quantity;
pub mod requirements;
pub mod resources;
pub mod solver;
#[cfg(any(test, feature = "testgen"))]
pub mod testgen;
#[cfg(any(test, feature = "testgen"))]
pub mod validate;

#[cfg(test)]
mod proptests;
