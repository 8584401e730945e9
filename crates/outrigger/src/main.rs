//! `outrigger`: one binary, a subcommand per component.
//!
//! Each subcommand wires its crate's `run` into the shared runtime
//! ([`outrigger_runtime::Runtime`]): flags, logging, client, admin server,
//! leader election and graceful shutdown.

use clap::Parser;

/// mimalloc returns freed memory to the system far more readily than glibc's
/// per-thread arenas, which matters for caches that churn (pods, scrapes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use outrigger_runtime::{Runtime, RuntimeArgs};

#[derive(Parser, Debug)]
#[command(
    name = "outrigger",
    version,
    about = "The add-on layer of a production Kubernetes cluster, in one binary.",
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// metrics.k8s.io for `kubectl top` and the HPA (drop-in for metrics-server).
    ///
    /// Every replica scrapes and serves, as upstream's do, so it takes no
    /// part in leader election.
    MetricsServer(outrigger_metrics_server::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::MetricsServer(args) => {
                let mut runtime = cli.runtime;
                runtime.leader_elect = false;
                Runtime::run("metrics-server", &runtime, move |rt| {
                    outrigger_metrics_server::run(rt, args)
                })
                .await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
