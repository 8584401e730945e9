//! What every Outrigger component shares.
//!
//! A component is started through [`Runtime`]: it parses the common flags
//! ([`RuntimeArgs`]), sets up logging, builds the kube client, serves the admin
//! endpoints (`/healthz`, `/readyz`, `/metrics`), takes part in leader election
//! on a `coordination.k8s.io` Lease, and stops cleanly on SIGTERM/SIGINT.
//!
//! A controller is written one way ([`controller`]): watches
//! ([`watch`]) add keys to a [`queue::Queue`], workers reconcile one key at a
//! time and return an [`controller::Action`] or an error with a kind
//! ([`controller::ErrorKind`]: a metric label and an Event reason).
//! Finalizers are added and removed with patches guarded by the object's
//! resourceVersion ([`finalizer`]); status conditions are computed purely
//! ([`conditions`]); locks survive a panicking holder ([`sync`]).

pub mod admin;
pub mod conditions;
pub mod controller;
pub mod events;
pub mod finalizer;
pub mod leader;
pub mod logging;
pub mod process_metrics;
pub mod queue;
mod runtime;
pub mod shutdown;
pub mod sync;
pub mod tls;
pub mod watch;

pub use admin::{AdminState, Readiness};
pub use controller::{Action, Controller, ErrorKind, KeyKind};
pub use runtime::{
    ApiRequests, Runtime, RuntimeArgs, RuntimeError, make_client, make_counting_client,
};
pub use sync::{LockExt, RwLockExt};

/// A duration flag in Go's syntax, as the upstream projects' flags take
/// them: `250ms`, `10s`, `5m`, `1h`, `1m30s`, `1.5h` (a bare number other
/// than `0` is refused, a unit is needed).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    outrigger_values::duration::parse(s).map_err(|e| e.to_string())
}

/// A short random suffix for a generated object name (`default-x7k2p`):
/// five characters of Kubernetes' own alphabet for generated names (no
/// vowels, no look-alikes).
pub fn name_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let mut n = h.finish();
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = alphabet[(n % alphabet.len() as u64) as usize] as char;
            n /= alphabet.len() as u64;
            c
        })
        .collect()
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
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
