//! What every Outrigger component shares.
//!
//! A component is started through [`Runtime`]: it parses the common flags
//! ([`RuntimeArgs`]), sets up logging, builds the kube client, serves the admin
//! endpoints (`/healthz`, `/readyz`, `/metrics`), takes part in leader election
//! on a `coordination.k8s.io` Lease, and stops cleanly on SIGTERM/SIGINT.
//!
//! The pure helpers (status conditions) live in [`conditions`] and are tested
//! without a cluster.

pub mod admin;
pub mod conditions;
pub mod events;
pub mod leader;
pub mod logging;
pub mod process_metrics;
mod runtime;
pub mod shutdown;

pub use admin::{AdminState, Readiness};
pub use runtime::{Runtime, RuntimeArgs, RuntimeError, make_client};

/// Installs the process-wide rustls crypto provider (aws-lc-rs).
///
/// Outrigger compiles exactly one provider; installing it explicitly keeps
/// rustls from guessing. Calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
