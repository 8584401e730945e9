//! Kubernetes values, one home for every component: quantities
//! ([`quantity`]: exact parsing, and the one canonical print — decimal for
//! cpu and counts, binary for bytes), durations ([`duration`]: Go's syntax
//! for flags and API fields, Karpenter's `Never`, Go's print), and label
//! selectors ([`selector`]: `metav1.LabelSelector` and the string form of
//! list requests, one matcher). Pure: no I/O, no Kubernetes client; the
//! `k8s` feature adds conversions from k8s-openapi's types.

pub mod duration;
pub mod quantity;
pub mod selector;

pub use quantity::{Quantity, QuantityError, format_resource};
pub use selector::{LabelSelector, SelectorError, SelectorExpr, SelectorOp};
