//! Scraping kubelets' `/metrics/resource`.

use outrigger_runtime::sync::RwLockExt;
use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::Bytes;
use futures::{StreamExt, stream};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use k8s_openapi::api::core::v1::Node;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

use crate::{
    parse,
    store::{Nanos, Store},
};

/// Annotation that overrides the path of a node's resource metrics.
pub const PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";
const DEFAULT_PATH: &str = "/metrics/resource";
/// A kubelet answer larger than this is refused (a node with 250 pods of 10
/// containers is well under 2 MiB).
const MAX_BODY: usize = 32 << 20;

#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub preferred_address_types: Vec<String>,
    pub kubelet_port: u16,
    pub use_node_status_port: bool,
    pub request_timeout: Duration,
    pub bearer_token: Option<String>,
    /// Upper bound of the spread of request start times over the nodes.
    pub max_stagger: Duration,
    pub concurrency: usize,
}

/// Where to scrape a node: `https://addr:port/path`, or why not.
pub fn node_url(node: &Node, cfg: &ScrapeConfig) -> Result<String, String> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let status = node.status.as_ref();
    let addresses = status.and_then(|s| s.addresses.as_ref());
    let addr = cfg
        .preferred_address_types
        .iter()
        .find_map(|t| {
            addresses
                .into_iter()
                .flatten()
                .find(|a| &a.type_ == t && !a.address.is_empty())
        })
        .map(|a| a.address.clone())
        .ok_or_else(|| {
            format!(
                "node {name} has no address of the preferred types {}",
                cfg.preferred_address_types.join(",")
            )
        })?;
    let port = if cfg.use_node_status_port {
        status
            .and_then(|s| s.daemon_endpoints.as_ref())
            .and_then(|d| d.kubelet_endpoint.as_ref())
            .map(|e| e.port)
            .filter(|p| *p > 0)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(cfg.kubelet_port)
    } else {
        cfg.kubelet_port
    };
    let path = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PATH_ANNOTATION))
        .map(String::as_str)
        .filter(|p| p.starts_with('/'))
        .unwrap_or(DEFAULT_PATH);
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr
    };
    Ok(format!("https://{host}:{port}{path}"))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuccessLabel {
    pub success: String,
}

/// The scraper's metrics, under upstream's names.
#[derive(Clone)]
pub struct ScrapeMetrics {
    pub request_duration: Family<NodeLabel, Histogram>,
    pub request_total: Family<SuccessLabel, Counter>,
    pub last_request_time: Family<NodeLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl ScrapeMetrics {
    pub fn new() -> Self {
        Self {
            request_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
            }),
            request_total: Family::default(),
            last_request_time: Family::default(),
        }
    }
}

impl Default for ScrapeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Scrapes every node of a cycle concurrently.
#[derive(Clone)]
pub struct Scraper {
    client: HttpsClient,
    cfg: Arc<ScrapeConfig>,
    pub metrics: ScrapeMetrics,
}

fn now_nanos() -> Nanos {
    jiff::Timestamp::now().as_nanosecond() as Nanos
}

impl Scraper {
    pub fn new(tls: rustls::ClientConfig, cfg: ScrapeConfig, metrics: ScrapeMetrics) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.request_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Self {
            client,
            cfg: Arc::new(cfg),
            metrics,
        }
    }

    async fn fetch(&self, url: &str) -> Result<(String, Nanos), String> {
        let mut req = hyper::Request::get(url);
        if let Some(t) = &self.cfg.bearer_token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status();
            let at = now_nanos();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading body: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "request failed, status: {status}, body: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
            let text =
                String::from_utf8(Vec::from(body)).map_err(|_| "body is not UTF-8".to_string())?;
            Ok((text, at))
        };
        match tokio::time::timeout(self.cfg.request_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("timeout after {:?}", self.cfg.request_timeout)),
        }
    }

    /// Scrapes `nodes`, putting each answer into `store` as it arrives (the
    /// caller begins and ends the cycle); returns how many nodes answered.
    pub async fn scrape(&self, nodes: Vec<Arc<Node>>, store: &RwLock<Store>) -> usize {
        let n = nodes.len().max(1) as u32;
        let stagger = (Duration::from_millis(8) * n).min(self.cfg.max_stagger);
        let step = stagger / n;
        // Start times are spread over the stagger from the cycle's start, not
        // from when a concurrency slot frees up.
        let start = tokio::time::Instant::now();
        stream::iter(nodes.into_iter().enumerate())
            .map(|(i, node)| async move {
                tokio::time::sleep_until(start + step * i as u32).await;
                let name = node.metadata.name.clone().unwrap_or_default();
                let url = match node_url(&node, &self.cfg) {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "Failed to scrape node");
                        return false;
                    }
                };
                let start = std::time::Instant::now();
                let r = self.fetch(&url).await;
                let label = NodeLabel { node: name.clone() };
                self.metrics
                    .request_duration
                    .get_or_create(&label)
                    .observe(start.elapsed().as_secs_f64());
                self.metrics
                    .last_request_time
                    .get_or_create(&label)
                    .set(now_nanos() as f64 / 1e9);
                self.metrics
                    .request_total
                    .get_or_create(&SuccessLabel {
                        success: r.is_ok().to_string(),
                    })
                    .inc();
                match r {
                    Ok((body, at)) => {
                        let scrape = parse::parse(&body);
                        if scrape.malformed > 0 {
                            tracing::debug!(node = %name, lines = scrape.malformed, "skipped malformed metric lines");
                        }
                        store
                            .write_locked()
                            .put_scrape(&name, &scrape, at);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(node = %name, url = %url, error = %e, "Failed to scrape node");
                        false
                    }
                }
            })
            .buffer_unordered(self.cfg.concurrency.max(1))
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: serde_json::Value) -> Node {
        serde_json::from_value(json).unwrap()
    }

    fn cfg() -> ScrapeConfig {
        ScrapeConfig {
            preferred_address_types: vec![
                "InternalIP".into(),
                "ExternalIP".into(),
                "Hostname".into(),
            ],
            kubelet_port: 10250,
            use_node_status_port: false,
            request_timeout: Duration::from_secs(10),
            bearer_token: None,
            max_stagger: Duration::from_secs(4),
            concurrency: 64,
        }
    }

    #[test]
    fn url_from_preferred_address_port_and_annotation() {
        let n = node(serde_json::json!({
            "metadata": {"name": "n1", "annotations": {PATH_ANNOTATION: "/metrics/nodes/n1/metrics/resource"}},
            "status": {
                "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10247}}
            }
        }));
        assert_eq!(
            node_url(&n, &cfg()).unwrap(),
            "https://10.0.0.5:10250/metrics/nodes/n1/metrics/resource"
        );
        let mut c = cfg();
        c.use_node_status_port = true;
        c.preferred_address_types = vec!["Hostname".into()];
        assert_eq!(
            node_url(&n, &c).unwrap(),
            "https://n1:10247/metrics/nodes/n1/metrics/resource"
        );
        c.preferred_address_types = vec!["ExternalIP".into()];
        assert!(node_url(&n, &c).unwrap_err().contains("no address"));
    }

    #[test]
    fn ipv6_and_default_path() {
        let n = node(serde_json::json!({
            "metadata": {"name": "n1"},
            "status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"}]}
        }));
        assert_eq!(
            node_url(&n, &cfg()).unwrap(),
            "https://[fd00::1]:10250/metrics/resource"
        );
    }
}
