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
pub mod watch;

pub use admin::{AdminState, Readiness};
pub use runtime::{Runtime, RuntimeArgs, RuntimeError, make_client};

/// A duration flag: `250ms`, `10s`, `5m`, `1h`, `1m30s` (humantime's
/// syntax; a bare number is refused, a unit is needed).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs).
///
/// Outrigger compiles exactly one provider; installing it explicitly keeps
/// rustls from guessing. Calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
