//! Outrigger's metrics server: a drop-in for kubernetes-sigs/metrics-server.
//!
//! Every `--metric-resolution` it scrapes every node's kubelet
//! `/metrics/resource`, keeps the last two samples per node and container,
//! and serves `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics to
//! kube-apiserver's aggregation layer, where `kubectl top` and the HPA read
//! them.
//!
//! The pure logic lives in `outrigger-metrics-core` (parsing, the store and
//! usage math, quantities, selectors, protobuf types); this crate does the
//! I/O: [`scraper`], [`server`], [`auth`], [`api`].

pub mod api;
pub mod auth;
pub mod index;
pub mod scraper;
pub mod server;
pub mod tls;

pub use outrigger_metrics_core::{parse, proto, selector, store};

use outrigger_runtime::sync::RwLockExt;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api,
    api::PartialObjectMeta,
    runtime::{WatchStreamExt, reflector, watcher},
};
use outrigger_runtime::Runtime;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge, histogram::Histogram},
};

use outrigger_runtime::parse_duration;

/// Flags, with upstream metrics-server's names.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The interval at which metrics are scraped from kubelets (at least 10s).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub metric_resolution: Duration,

    /// Do not verify the CA of kubelets' serving certificates. For testing purposes only.
    #[arg(long)]
    pub kubelet_insecure_tls: bool,

    /// The priority of node address types used when determining an address for connecting to a kubelet.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "InternalIP,ExternalIP,Hostname"
    )]
    pub kubelet_preferred_address_types: Vec<String>,

    /// The port to use to connect to kubelets.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,

    /// Use the port in the node status. Takes precedence over --kubelet-port.
    #[arg(long)]
    pub kubelet_use_node_status_port: bool,

    /// The length of time to wait before giving up on a single request to a kubelet.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub kubelet_request_timeout: Duration,

    /// Path to the CA used to validate kubelets' serving certificates (default: the service account's CA).
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,

    /// Client certificate for kubelets (default: the service account token).
    #[arg(long, requires = "kubelet_client_key")]
    pub kubelet_client_certificate: Option<PathBuf>,

    /// Client key for kubelets.
    #[arg(long, requires = "kubelet_client_certificate")]
    pub kubelet_client_key: Option<PathBuf>,

    /// How many kubelets are scraped at once (upstream: all of them).
    #[arg(long, default_value_t = 128)]
    pub max_concurrent_scrapes: usize,

    /// Selector (label query) to filter the nodes scraped.
    #[arg(short = 'l', long, default_value = "")]
    pub node_selector: String,

    /// The port of the HTTPS server of the metrics API.
    #[arg(long, default_value_t = 10250)]
    pub secure_port: u16,

    /// The address the HTTPS server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,

    /// Serving certificate (PEM); a self-signed one is generated without it.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// Serving key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Paths served without authentication or authorization.
    #[arg(long, value_delimiter = ',', default_value = "/healthz,/readyz,/livez")]
    pub authorization_always_allow_paths: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid flags: {0}")]
    Flags(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("listening on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
}

impl Args {
    /// Upstream's validation.
    pub fn validate(&self) -> Result<(), Error> {
        if self.metric_resolution < Duration::from_secs(10) {
            return Err(Error::Flags(format!(
                "--metric-resolution should be a time duration at least 10s, but value {:?} provided",
                self.metric_resolution
            )));
        }
        if self.metric_resolution * 9 / 10 < self.kubelet_request_timeout {
            return Err(Error::Flags(format!(
                "--kubelet-request-timeout {:?} should be at most 90% of --metric-resolution {:?}",
                self.kubelet_request_timeout, self.metric_resolution
            )));
        }
        if self.kubelet_preferred_address_types.is_empty() {
            return Err(Error::Flags(
                "--kubelet-preferred-address-types is empty".into(),
            ));
        }
        Ok(())
    }
}

/// Health of the server, as upstream defines it: ready once informers
/// synced and the store can compute usage (the admin server's readiness
/// checks `metric-informer-sync` and `metric-storage-ready`, served on the
/// secure port too); live while scrapes run on time.
pub struct Health {
    ready: outrigger_runtime::Readiness,
    last_tick: Mutex<Instant>,
    resolution: Duration,
}

impl Health {
    fn new(resolution: Duration, ready: outrigger_runtime::Readiness) -> Self {
        Self {
            ready,
            last_tick: Mutex::new(Instant::now()),
            resolution,
        }
    }

    pub fn ready_report(&self) -> (bool, String) {
        self.ready.report(false)
    }

    pub fn live_report(&self) -> (bool, String) {
        let since = self
            .last_tick
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        if since <= self.resolution * 3 / 2 {
            (true, "ok".to_string())
        } else {
            (
                false,
                "[-]metric-collection-timely failed: metric collection didn't finish on time\n"
                    .to_string(),
            )
        }
    }
}

/// Keeps only what scraping and serving read of a Node (name, labels, the
/// path annotation, addresses, kubelet port): the cache holds every node.
fn slim_node(n: &mut Node) {
    let m = &mut n.metadata;
    m.managed_fields = None;
    m.owner_references = None;
    m.finalizers = None;
    if let Some(a) = m.annotations.as_mut() {
        a.retain(|k, _| k == scraper::PATH_ANNOTATION);
    }
    n.spec = None;
    if let Some(s) = n.status.as_mut() {
        *s = k8s_openapi::api::core::v1::NodeStatus {
            addresses: s.addresses.take(),
            daemon_endpoints: s.daemon_endpoints.take(),
            ..Default::default()
        };
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

/// Runs the metrics server until `rt.shutdown`.
pub async fn run(rt: Runtime, args: Args) -> Result<(), Error> {
    args.validate()?;
    let client = rt.client.clone();

    // Informers: nodes (filtered by --node-selector) and pod metadata.
    let node_api: Api<Node> = Api::all(client.clone());
    let mut node_cfg = watcher::Config::default();
    if !args.node_selector.is_empty() {
        selector::LabelSelector::parse(&args.node_selector)
            .map_err(|e| Error::Flags(e.to_string()))?;
        node_cfg = node_cfg.labels(&args.node_selector);
    }
    let (node_store, node_writer) = reflector::store();
    let node_stream = watcher(node_api, node_cfg)
        .default_backoff()
        .modify(slim_node)
        .reflect(node_writer)
        .applied_objects();
    // Pods: names, namespaces and labels are all the API needs.
    let pod_index = Arc::new(index::PodIndex::default());
    let pod_api: Api<PartialObjectMeta<Pod>> = Api::all(client.clone());
    let pod_task = tokio::spawn(pod_index.clone().run(pod_api));
    let informers = tokio::spawn(async move {
        node_stream.for_each(|_| async {}).await;
    });

    let health = Arc::new(Health::new(args.metric_resolution, rt.admin.ready.clone()));
    let ready_check = rt
        .admin
        .ready
        .check("metric-informer-sync", "informers not synced");
    let storage_check = rt
        .admin
        .ready
        .check("metric-storage-ready", "no metrics to serve yet");

    // Metrics under upstream's names.
    let scrape_metrics = scraper::ScrapeMetrics::new();
    let tick = Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0]);
    let points: Family<TypeLabel, Gauge> = Family::default();
    rt.admin.with_registry(|r| {
        let r = r.sub_registry_with_prefix("metrics_server");
        r.register(
            "kubelet_request_duration_seconds",
            "Duration of requests to kubelet API in seconds",
            scrape_metrics.request_duration.clone(),
        );
        r.register(
            "kubelet_request",
            "Number of requests sent to kubelet API",
            scrape_metrics.request_total.clone(),
        );
        r.register(
            "kubelet_last_request_time_seconds",
            "Time of last request performed to kubelet API since unix epoch in seconds",
            scrape_metrics.last_request_time.clone(),
        );
        r.register(
            "manager_tick_duration_seconds",
            "The total time spent collecting and storing metrics in seconds",
            tick.clone(),
        );
        r.register(
            "storage_points",
            "Number of metrics points stored",
            points.clone(),
        );
    });

    let client_cert = match (&args.kubelet_client_certificate, &args.kubelet_client_key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    let kubelet_tls = tls::kubelet_client_config(
        args.kubelet_certificate_authority.as_deref(),
        args.kubelet_insecure_tls,
        client_cert,
    )
    .map_err(|e| Error::Tls(e.to_string()))?;
    let bearer_token = if client_cert.is_none() {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/token")
            .ok()
            .map(|t| t.trim().to_string())
    } else {
        None
    };
    let scraper = scraper::Scraper::new(
        kubelet_tls,
        scraper::ScrapeConfig {
            preferred_address_types: args.kubelet_preferred_address_types.clone(),
            kubelet_port: args.kubelet_port,
            use_node_status_port: args.kubelet_use_node_status_port,
            request_timeout: args.kubelet_request_timeout,
            bearer_token,
            max_stagger: Duration::from_secs(4),
            concurrency: args.max_concurrent_scrapes,
        },
        scrape_metrics,
    );

    let store = Arc::new(RwLock::new(store::Store::new(args.metric_resolution)));
    let (updates, _) = tokio::sync::watch::channel(0u64);
    let authn = Arc::new(auth::Authenticator::from_cluster(client.clone()).await?);
    let authz = Arc::new(auth::Authorizer::new(client.clone()));
    let (chain, key) = tls::serving_identity(
        args.tls_cert_file.as_deref(),
        args.tls_private_key_file.as_deref(),
        &[
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "metrics-server.kube-system.svc".to_string(),
        ],
    )
    .map_err(|e| Error::Tls(e.to_string()))?;
    let tls_cfg = server::tls_config(chain, key, &authn.all_roots)?;
    let state = api::ApiState {
        store: store.clone(),
        nodes: node_store.clone(),
        pods: pod_index.clone(),
        authn,
        authz,
        always_allow: Arc::new(args.authorization_always_allow_paths.clone()),
        health: health.clone(),
        updates: updates.clone(),
        shutdown: rt.shutdown.clone(),
    };
    let addr = SocketAddr::new(args.bind_address, args.secure_port);
    let server = tokio::spawn(server::serve(
        addr,
        tls_cfg,
        api::router(state),
        rt.shutdown.clone(),
    ));

    // Wait for the informers, then scrape every resolution.
    tokio::select! {
        _ = rt.shutdown.cancelled() => {}
        r = async { futures::join!(node_store.wait_until_ready(), pod_index.wait_until_ready()) } => {
            let _ = r;
            ready_check.ok();
        }
    }
    let mut interval = tokio::time::interval(args.metric_resolution);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !rt.shutdown.is_cancelled() {
        tokio::select! {
            _ = rt.shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        if let Ok(mut t) = health.last_tick.lock() {
            *t = Instant::now();
        }
        let started = Instant::now();
        let nodes = node_store.state();
        let count = nodes.len();
        store.write_locked().begin();
        let scraped =
            match tokio::time::timeout(args.metric_resolution, scraper.scrape(nodes, &store)).await
            {
                Ok(n) => n,
                Err(_) => {
                    tracing::warn!(
                        "scrape cycle did not finish within the resolution; keeping what arrived"
                    );
                    0
                }
            };
        {
            let mut s = store.write_locked();
            s.end();
            let (n, c) = s.points();
            points
                .get_or_create(&TypeLabel {
                    r#type: "node".into(),
                })
                .set(n as i64);
            points
                .get_or_create(&TypeLabel {
                    r#type: "container".into(),
                })
                .set(c as i64);
            if s.ready() {
                storage_check.ok();
            }
        }
        updates.send_modify(|g| *g += 1);
        tick.observe(started.elapsed().as_secs_f64());
        tracing::debug!(nodes = count, scraped, took = ?started.elapsed(), "scrape cycle");
    }
    informers.abort();
    pod_task.abort();
    match server.await {
        Ok(r) => r,
        Err(e) => Err(Error::Tls(format!("server task: {e}"))),
    }
}
