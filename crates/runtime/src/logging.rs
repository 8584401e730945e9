//! Logging through `tracing`: JSON or plain text, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Output format of the logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default: what log pipelines parse).
    #[default]
    Json,
    /// Human-readable lines.
    Plain,
}

/// Default filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,kube_lease_manager=warn,tower=warn,hyper=warn";

/// Installs the global subscriber. Returns an error if one is already set.
pub fn init(format: LogFormat) -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(true),
            )
            .try_init(),
        LogFormat::Plain => registry.with(fmt::layer().with_target(true)).try_init(),
    }
}
