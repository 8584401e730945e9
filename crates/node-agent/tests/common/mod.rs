//! The agent on its own runtime, for the no-cluster tests: started on a
//! log root with the file sink, stopped, or killed as SIGKILL would.

use std::{path::Path, time::Duration};

use outrigger_node_agent::{
    agent::{Agent, Config},
    checkpoint::Store,
    metrics::Metrics,
    pods::Pods,
    sink::Sink,
};
use tokio_util::sync::CancellationToken;

/// An agent on its own runtime: dropping the runtime stops every task of
/// it at its next await, spawned requests included, as SIGKILL would.
pub struct Running {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Running {
    /// As SIGKILL: no task of the agent runs again. The runtime's threads
    /// finish the poll they are in (a file sink's write completes, as a
    /// write(2) would) and are gone before the next start reads the
    /// checkpoint and the sink; work left behind running would otherwise
    /// overlap the next run and repeat lines it never would after SIGKILL.
    pub async fn kill(mut self) {
        if let Some(rt) = self.rt.take() {
            tokio::task::spawn_blocking(move || rt.shutdown_timeout(Duration::from_secs(10)))
                .await
                .expect("runtime shut down");
        }
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        let _ = (&mut self.handle).await;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

pub fn start(cfg: Config, state: &Path, out: &Path) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let stop = CancellationToken::new();
    let agent = Agent::new(
        cfg,
        Sink::File {
            dir: out.to_path_buf(),
        },
        Pods::none("n1"),
        Metrics::default(),
        Store::new(state).expect("store"),
    )
    .expect("agent");
    let s = stop.clone();
    let handle = rt.spawn(async move {
        agent.run(s).await.expect("runs");
    });
    Running {
        rt: Some(rt),
        handle,
        stop,
    }
}

/// The file sink's records for `group` so far, one JSON text each: only
/// whole lines, the sink may be writing the last one as it is read.
pub fn sink_lines(out: &Path, group: &str) -> Vec<String> {
    let text = std::fs::read_to_string(outrigger_node_agent::sink::group_file(out, group))
        .unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |i| &text[..=i]);
    whole.lines().map(str::to_string).collect()
}
