//! Starting and stopping a component: flags, logging, client, admin server,
//! leader election, graceful shutdown.

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use kube::Client;
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use tokio_util::sync::CancellationToken;

/// How long a component's work has to return once told to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

use crate::{
    admin::AdminState,
    events::Events,
    leader::{Elector, LeaderConfig, default_identity},
    logging::LogFormat,
};

/// Flags every component takes.
#[derive(clap::Args, Clone, Debug)]
pub struct RuntimeArgs {
    /// Path to a kubeconfig. Without it: $KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Address of the admin server (/healthz, /readyz, /metrics).
    #[arg(
        long,
        global = true,
        default_value = "0.0.0.0:8080",
        env = "OUTRIGGER_ADMIN_ADDRESS"
    )]
    pub admin_address: SocketAddr,

    /// Take part in leader election; only the leader acts.
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Name of the leader-election Lease (default: outrigger-<component>).
    #[arg(long, global = true)]
    pub leader_elect_lease_name: Option<String>,

    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        global = true,
        env = "POD_NAMESPACE",
        default_value = "kube-system"
    )]
    pub leader_elect_namespace: String,

    /// How long a Lease stays valid after its last renewal: seconds, or a
    /// duration (`15s`, as upstream's flags write it).
    #[arg(long, global = true, default_value = "10", value_parser = seconds)]
    pub leader_elect_lease_duration: u64,

    /// Identity in the Lease (default: $POD_NAME, else <hostname>_<pid>).
    #[arg(long, global = true)]
    pub leader_elect_identity: Option<String>,

    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json, env = "OUTRIGGER_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Whole seconds, from `10` or a duration such as `15s`.
fn seconds(s: &str) -> Result<u64, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    crate::parse_duration(s).map(|d| d.as_secs())
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("logging: {0}")]
    Logging(#[from] tracing_subscriber::util::TryInitError),
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
    #[error("admin server on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("signals: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Leader(#[from] crate::leader::LeaderError),
    #[error("lost the leader lease {0}; exiting so a fresh process can compete again")]
    LeadershipLost(String),
    #[error("component failed: {0}")]
    Component(String),
}

/// What a component's work receives.
#[derive(Clone)]
pub struct Runtime {
    pub component: &'static str,
    pub client: Client,
    pub admin: AdminState,
    pub events: Events,
    /// Cancelled on SIGTERM/SIGINT or when leadership is lost.
    pub shutdown: CancellationToken,
}

/// A client from `--kubeconfig`, else the usual places.
pub async fn make_client(args: &RuntimeArgs) -> Result<Client, RuntimeError> {
    Ok(Client::try_from(client_config(args).await?)?)
}

async fn client_config(args: &RuntimeArgs) -> Result<kube::Config, RuntimeError> {
    Ok(match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .map_err(kube::Error::InferConfig)?,
    })
}

/// Requests sent to the API server, by HTTP method (watches count once,
/// when they start), as client-go's `rest_client_requests_total` counts
/// them for the upstream controllers.
pub type ApiRequests = Family<Vec<(String, String)>, Counter>;

/// A client whose every request is counted in `requests`.
pub async fn make_counting_client(
    args: &RuntimeArgs,
    requests: ApiRequests,
) -> Result<Client, RuntimeError> {
    let count = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        requests
            .get_or_create(&vec![("method".to_string(), req.method().to_string())])
            .inc();
        req
    });
    Ok(
        kube::client::ClientBuilder::try_from(client_config(args).await?)?
            .with_layer(&count)
            .build(),
    )
}

impl Runtime {
    /// Runs a component: `work` is started once this process leads (at once
    /// without `--leader-elect`), and must return when `rt.shutdown` fires.
    pub async fn run<F, Fut, E>(
        component: &'static str,
        args: &RuntimeArgs,
        work: F,
    ) -> Result<(), RuntimeError>
    where
        F: FnOnce(Runtime) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        crate::install_crypto_provider();
        crate::logging::init(args.log_format)?;
        let signal = crate::shutdown::on_signal().map_err(RuntimeError::Signals)?;
        let admin = AdminState::default();
        let requests = ApiRequests::default();
        admin.with_registry(|r| {
            r.register(
                "outrigger_kube_client_requests",
                "Requests this process sent to the API server, by HTTP method",
                requests.clone(),
            )
        });
        let client = make_counting_client(args, requests).await?;
        let server_stop = CancellationToken::new();
        let (addr, server) = admin
            .serve(args.admin_address, server_stop.clone())
            .await
            .map_err(|source| RuntimeError::Admin {
                addr: args.admin_address,
                source,
            })?;
        tracing::info!(component, admin = %addr, "starting");

        let leader_gauge: Gauge = Gauge::default();
        admin.with_registry(|r| {
            r.register(
                "outrigger_leader",
                "1 while this process holds its component's leader Lease (or runs without leader election)",
                leader_gauge.clone(),
            )
        });

        let lease_name = args
            .leader_elect_lease_name
            .clone()
            .unwrap_or_else(|| format!("outrigger-{component}"));
        let mut elector = None;
        let mut leading_rx = None;
        if args.leader_elect {
            let cfg = LeaderConfig {
                lease_name: lease_name.clone(),
                namespace: args.leader_elect_namespace.clone(),
                identity: args
                    .leader_elect_identity
                    .clone()
                    .unwrap_or_else(default_identity),
                lease_duration: Duration::from_secs(args.leader_elect_lease_duration),
                renew_grace: Duration::from_secs((args.leader_elect_lease_duration / 3).max(1)),
            };
            tracing::info!(lease = %lease_name, namespace = %cfg.namespace, identity = %cfg.identity, "attempting to acquire leader lease");
            let e = Elector::start(client.clone(), cfg).await?;
            let mut rx = e.subscribe();
            elector = Some(e);
            let won = tokio::select! {
                _ = signal.cancelled() => false,
                r = rx.wait_for(|l| *l) => r.is_ok(),
            };
            if !won {
                if let Some(e) = elector {
                    e.release().await;
                }
                server_stop.cancel();
                let _ = server.await;
                return Ok(());
            }
            leading_rx = Some(rx);
        }
        leader_gauge.set(1);

        let work_stop = signal.child_token();
        let rt = Runtime {
            component,
            client: client.clone(),
            admin: admin.clone(),
            events: Events::new(client, &format!("outrigger-{component}")),
            shutdown: work_stop.clone(),
        };
        let mut handle = tokio::spawn(work(rt));
        let mut lost = false;
        // Once asked to stop, the work gets a bounded time to finish what it
        // is doing; a call that hangs must not keep a process that looks
        // healthy but does nothing.
        let overdue = {
            let stop = work_stop.clone();
            async move {
                stop.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            }
        };
        tokio::pin!(overdue);
        let result = loop {
            tokio::select! {
                r = &mut handle => break r,
                _ = &mut overdue => {
                    tracing::error!(component, grace_seconds = SHUTDOWN_GRACE.as_secs(), "work did not stop in time after shutdown was asked; aborting it");
                    handle.abort();
                    break Ok(Ok(()));
                }
                _ = async {
                    match leading_rx.as_mut() {
                        Some(rx) => { let _ = rx.wait_for(|l| !*l).await; }
                        None => std::future::pending::<()>().await,
                    }
                }, if !lost => {
                    tracing::error!(lease = %lease_name, "leader lease lost; stopping work");
                    lost = true;
                    work_stop.cancel();
                }
            }
        };
        leader_gauge.set(0);
        if let Some(e) = elector {
            e.release().await;
        }
        server_stop.cancel();
        let _ = server.await;
        match result {
            Err(join) => Err(RuntimeError::Component(format!("task panicked: {join}"))),
            Ok(Err(e)) => Err(RuntimeError::Component(e.to_string())),
            Ok(Ok(())) if lost => Err(RuntimeError::LeadershipLost(lease_name)),
            Ok(Ok(())) => {
                tracing::info!(component, "stopped");
                Ok(())
            }
        }
    }
}
