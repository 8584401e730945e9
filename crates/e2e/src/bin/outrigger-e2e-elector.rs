//! A process that runs the shared runtime with a trivial workload: it leads or
//! stands by on its Lease and logs when it starts and stops leading. The
//! cluster tests start two of these to exercise leader election, the admin
//! endpoints and graceful shutdown exactly as every component uses them.

use clap::Parser;
use outrigger_runtime::{Runtime, RuntimeArgs};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let r = Runtime::run("e2e-elector", &args.runtime, |rt| async move {
        let ready = rt.admin.ready.check("work", "starting");
        ready.ok();
        tracing::info!("leading: work started");
        rt.shutdown.cancelled().await;
        tracing::info!("work stopped");
        Ok::<(), std::convert::Infallible>(())
    })
    .await;
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
