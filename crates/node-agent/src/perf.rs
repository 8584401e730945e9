//! Container Insights' performance events, the CloudWatch agent's part:
//! every `--metrics-collection-interval` the node's kubelet is scraped
//! (`/metrics/resource`, and `/metrics/cadvisor` for network and
//! filesystem), joined with the node's pods and Node object, and the events
//! (`outrigger_metrics_core::insights`) go to
//! `/aws/containerinsights/<cluster>/performance`, one stream per node. One
//! agent of the cluster, elected on a Lease, adds the cluster-wide events
//! (node counts, running pods per namespace and per service).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::{
    Api,
    runtime::{reflector::Store, watcher},
};
use outrigger_metrics_core::{
    insights::{self, ContainerInfo, NodeInfo, Perf, PodInfo, Sample},
    parse,
};
use outrigger_values::Quantity;
use tokio_util::sync::CancellationToken;

use crate::{
    metrics::Metrics,
    sink::{Batch, Sink},
    tail::now_ms,
};

/// Annotation that overrides the path of a node's resource metrics (as
/// metrics-server reads it); the cAdvisor path is the same with
/// `cadvisor` for `resource`.
pub const PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";

#[derive(Clone, Debug)]
pub struct PerfConfig {
    pub cluster: String,
    pub host: String,
    pub interval: Duration,
    pub kubelet_port: u16,
    pub use_node_status_port: bool,
    pub bearer_token: Option<String>,
    pub timeout: Duration,
    /// Namespace of the Lease the cluster-wide events are elected on.
    pub lease_namespace: String,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub struct PerfAgent {
    cfg: PerfConfig,
    http: HttpsClient,
    node: Store<Node>,
    pods: Store<Pod>,
    services: Store<Service>,
    sink: Sink,
    m: Metrics,
    perf: Perf,
}

fn group(cluster: &str) -> String {
    outrigger_logs_core::names::log_group(cluster, "performance")
}

/// A quantity in units (cores, bytes).
fn cores(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> f64 {
    q.and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| q.nanos() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// The kubelet URLs of the node: (resource, cadvisor).
pub fn node_urls(node: &Node, port: u16, use_status_port: bool) -> Option<(String, String)> {
    let status = node.status.as_ref()?;
    let addr = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == *t && !a.address.is_empty())
                .map(|a| a.address.clone())
        })?;
    let port = if use_status_port {
        status
            .daemon_endpoints
            .as_ref()
            .and_then(|d| d.kubelet_endpoint.as_ref())
            .and_then(|e| u16::try_from(e.port).ok())
            .filter(|p| *p > 0)
            .unwrap_or(port)
    } else {
        port
    };
    let path = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PATH_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| "/metrics/resource".to_string());
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr
    };
    let cadvisor = match path.strip_suffix("/resource") {
        Some(p) => format!("{p}/cadvisor"),
        None => "/metrics/cadvisor".to_string(),
    };
    Some((
        format!("https://{host}:{port}{path}"),
        format!("https://{host}:{port}{cadvisor}"),
    ))
}

/// What a Node says for the events.
pub fn node_info(cluster: &str, node: &Node) -> NodeInfo {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let capacity = node.status.as_ref().and_then(|s| s.capacity.as_ref());
    NodeInfo {
        cluster: cluster.to_string(),
        name: node.metadata.name.clone().unwrap_or_default(),
        instance_id: node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or_default()
            .to_string(),
        instance_type: labels
            .get("node.kubernetes.io/instance-type")
            .cloned()
            .unwrap_or_default(),
        cpu_cores: cores(capacity.and_then(|c| c.get("cpu"))),
        memory_bytes: cores(capacity.and_then(|c| c.get("memory"))),
    }
}

/// The `aws` filter's fields for the node's host and dataplane records:
/// its zone (the `topology.kubernetes.io/zone` label, else the provider
/// ID's) and instance ID (`aws:///<zone>/<instance ID>`), read from its Node
/// where the filter asks the instance metadata service.
pub fn node_aws_fields(node: &Node) -> Option<String> {
    let provider = node.spec.as_ref().and_then(|s| s.provider_id.as_deref());
    let parts: Vec<&str> = provider
        .and_then(|p| p.strip_prefix("aws://"))
        .map(|p| p.trim_start_matches('/').split('/').collect())
        .unwrap_or_default();
    let labels = node.metadata.labels.as_ref();
    let az = labels
        .and_then(|l| {
            l.get("topology.kubernetes.io/zone")
                .or_else(|| l.get("failure-domain.beta.kubernetes.io/zone"))
        })
        .map(String::as_str)
        .or_else(|| (parts.len() == 2).then(|| parts[0]));
    let instance = parts.last().copied().filter(|i| i.starts_with("i-"));
    outrigger_logs_core::record::aws_fields(az, instance)
}

fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if sel.is_empty() || svc.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A pod as the events read it.
pub fn pod_info(pod: &Pod, services: &[Arc<Service>]) -> PodInfo {
    let spec = pod.spec.as_ref();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    PodInfo {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        services: services
            .iter()
            .filter(|s| selects(s, pod))
            .filter_map(|s| s.metadata.name.clone())
            .collect(),
        owners: pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| (o.kind.clone(), o.name.clone()))
            .collect(),
        phase: pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default(),
        containers: spec
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let r = c.resources.as_ref();
                let req = r.and_then(|r| r.requests.as_ref());
                let lim = r.and_then(|r| r.limits.as_ref());
                let st = statuses.iter().find(|s| s.name == c.name);
                ContainerInfo {
                    name: c.name.clone(),
                    cpu_request: cores(req.and_then(|q| q.get("cpu"))),
                    cpu_limit: lim.and_then(|q| q.get("cpu")).map(|q| cores(Some(q))),
                    memory_request: cores(req.and_then(|q| q.get("memory"))),
                    memory_limit: lim.and_then(|q| q.get("memory")).map(|q| cores(Some(q))),
                    restarts: st.map(|s| i64::from(s.restart_count)).unwrap_or(0),
                    running: st
                        .is_some_and(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
                        || (st.is_none()
                            && pod.status.as_ref().and_then(|s| s.phase.as_deref())
                                == Some("Running")),
                }
            })
            .collect(),
    }
}

/// A kubelet sample from `/metrics/resource` and, if served,
/// `/metrics/cadvisor`.
pub fn sample(resource: &str, cadvisor: Option<&str>, time_ms: i64) -> Sample {
    let scrape = parse::parse(resource);
    let mut s = Sample {
        time_ms,
        node_cpu_seconds: scrape.node_cpu.map(|x| x.value),
        node_memory: scrape.node_memory.map(|x| x.value),
        ..Default::default()
    };
    for ((ns, pod, c), series) in &scrape.containers {
        if let (Some(cpu), Some(mem)) = (series.cpu, series.memory) {
            s.containers.insert(
                (ns.to_string(), pod.to_string(), c.to_string()),
                (cpu.value, mem.value),
            );
        }
    }
    let Some(body) = cadvisor else {
        return s;
    };
    let rx = "container_network_receive_bytes_total";
    let tx = "container_network_transmit_bytes_total";
    let fs_used = "container_fs_usage_bytes";
    let fs_limit = "container_fs_limit_bytes";
    let mut fs: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for x in parse::series(body, &[rx, tx, fs_used, fs_limit]) {
        let l = |k: &str| x.labels.get(k).map(String::as_str).unwrap_or("");
        let (pod, ns) = (l("pod"), l("namespace"));
        let root = l("id") == "/" || (pod.is_empty() && ns.is_empty());
        match x.name.as_str() {
            n if n == rx || n == tx => {
                let slot = if root {
                    s.node_network
                        .entry(l("interface").to_string())
                        .or_default()
                } else {
                    s.pod_network
                        .entry((ns.to_string(), pod.to_string()))
                        .or_default()
                };
                if n == rx {
                    slot.0 += x.value;
                } else {
                    slot.1 += x.value;
                }
            }
            n if root && n == fs_used => fs.entry(l("device").to_string()).or_default().0 = x.value,
            n if root && n == fs_limit => {
                fs.entry(l("device").to_string()).or_default().1 = x.value
            }
            _ => {}
        }
    }
    // The root filesystem: the largest device.
    s.filesystem = fs
        .into_iter()
        .filter(|(_, (_, cap))| *cap > 0.0)
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(d, (used, cap))| (d, used, cap));
    s
}

impl PerfAgent {
    pub fn new(
        client: kube::Client,
        cfg: PerfConfig,
        tls: rustls::ClientConfig,
        pods: Store<Pod>,
        sink: Sink,
        m: Metrics,
        stop: CancellationToken,
    ) -> Self {
        let node = outrigger_runtime::watch::store_selected(
            Api::<Node>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={}", cfg.host)),
            stop.clone(),
            |_| {},
        );
        let services = outrigger_runtime::watch::store(Api::<Service>::all(client), stop);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new()).build(https);
        PerfAgent {
            cfg,
            http,
            node,
            pods,
            services,
            sink,
            m,
            perf: Perf::default(),
        }
    }

    async fn get(&self, url: &str) -> Result<String, String> {
        let mut req = hyper::Request::get(url);
        if let Some(t) = &self.cfg.bearer_token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), 64 << 20)
                .collect()
                .await
                .map_err(|e| format!("{url}: reading the body: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("{url}: {status}"));
            }
            String::from_utf8(body.to_vec()).map_err(|_| format!("{url}: not UTF-8"))
        };
        tokio::time::timeout(self.cfg.timeout, fut)
            .await
            .map_err(|_| format!("{url}: timeout after {:?}", self.cfg.timeout))?
    }

    /// The node's events for this interval.
    async fn node_events(&mut self) -> Result<Vec<String>, String> {
        let _ = self.node.wait_until_ready().await;
        let node = self
            .node
            .state()
            .into_iter()
            .next()
            .ok_or_else(|| format!("node {} not found", self.cfg.host))?;
        let (resource, cadvisor) =
            node_urls(&node, self.cfg.kubelet_port, self.cfg.use_node_status_port)
                .ok_or_else(|| format!("node {} has no address", self.cfg.host))?;
        let time_ms = now_ms();
        let body = self.get(&resource).await?;
        let cadvisor = match self.get(&cadvisor).await {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::debug!(error = %e, "no cAdvisor metrics: no network or filesystem figures");
                None
            }
        };
        let s = sample(&body, cadvisor.as_deref(), time_ms);
        let services = self.services.state();
        let pods: Vec<PodInfo> = self
            .pods
            .state()
            .iter()
            .map(|p| pod_info(p, &services))
            .collect();
        let info = node_info(&self.cfg.cluster, &node);
        Ok(self.perf.events(&info, &pods, s))
    }

    async fn send(&self, events: Vec<String>, stop: &CancellationToken) {
        if events.is_empty() {
            return;
        }
        let mut limits = outrigger_logs_core::batch::Limits::default();
        let ts = now_ms();
        let mut batch = vec![];
        for e in events {
            if !limits.fits(e.len(), ts) {
                self.deliver(std::mem::take(&mut batch), stop).await;
                limits = Default::default();
            }
            limits.add(e.len(), ts);
            batch.push((ts, e));
        }
        self.deliver(batch, stop).await;
    }

    async fn deliver(&self, events: Vec<(i64, String)>, stop: &CancellationToken) {
        let b = Batch {
            group: group(&self.cfg.cluster),
            stream: self.cfg.host.clone(),
            events,
        };
        let (n, group) = (b.events.len(), b.group.clone());
        match self.sink.deliver(b, &self.m, stop).await {
            crate::sink::Outcome::Delivered(_) => {
                Metrics::group(&self.m.events_delivered, &group).inc_by(n as u64);
            }
            crate::sink::Outcome::Refused(e) => {
                Metrics::reason(&self.m.events_dropped, "refused").inc_by(n as u64);
                tracing::error!(error = %e, "CloudWatch Logs refused performance events");
            }
            crate::sink::Outcome::Stopped => {}
        }
    }

    /// Runs until `stop`; `leading` says when this agent writes the
    /// cluster-wide events.
    pub async fn run(
        mut self,
        client: kube::Client,
        leading: tokio::sync::watch::Receiver<bool>,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mut events = match self.node_events().await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "collecting the node's performance metrics failed");
                    vec![]
                }
            };
            if *leading.borrow() {
                match cluster_events(&client, &self.cfg.cluster, &self.services).await {
                    Ok(e) => events.extend(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "collecting the cluster's performance metrics failed")
                    }
                }
            }
            self.send(events, &stop).await;
        }
    }
}

/// Node counts, running pods per namespace and per service.
async fn cluster_events(
    client: &kube::Client,
    cluster: &str,
    services: &Store<Service>,
) -> Result<Vec<String>, kube::Error> {
    let node_objs = Api::<Node>::all(client.clone())
        .list(&Default::default())
        .await?;
    let ready: Vec<bool> = node_objs
        .items
        .iter()
        .map(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True")
        })
        .collect();
    let pods = Api::<Pod>::all(client.clone())
        .list(&kube::api::ListParams::default().fields("status.phase=Running"))
        .await?;
    let mut per_ns: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_svc: BTreeMap<(String, String), usize> = BTreeMap::new();
    let svcs = services.state();
    let mut by_ns: HashMap<String, Vec<Arc<Service>>> = HashMap::new();
    for s in svcs {
        by_ns
            .entry(s.metadata.namespace.clone().unwrap_or_default())
            .or_default()
            .push(s);
    }
    for p in &pods.items {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        *per_ns.entry(ns.clone()).or_default() += 1;
        for s in by_ns.get(&ns).into_iter().flatten() {
            if selects(s, p) {
                *per_svc
                    .entry((ns.clone(), s.metadata.name.clone().unwrap_or_default()))
                    .or_default() += 1;
            }
        }
    }
    Ok(insights::cluster_events(
        cluster,
        now_ms(),
        &ready,
        &per_ns,
        &per_svc,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_and_cadvisor_samples() {
        let resource = "node_cpu_usage_seconds_total 12.5 1000\nnode_memory_working_set_bytes 1.5e9 1000\ncontainer_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 3 1000\ncontainer_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web\"} 1e8 1000\n";
        let cadvisor = "# HELP x\ncontainer_network_receive_bytes_total{container=\"\",id=\"/\",interface=\"eth0\",namespace=\"\",pod=\"\"} 1000\ncontainer_network_transmit_bytes_total{container=\"\",id=\"/\",interface=\"eth0\",namespace=\"\",pod=\"\"} 500\ncontainer_network_receive_bytes_total{container=\"\",id=\"/kubepods/x\",interface=\"eth0\",namespace=\"default\",pod=\"web\"} 40\ncontainer_fs_usage_bytes{container=\"\",device=\"/dev/nvme0n1p1\",id=\"/\"} 2e10\ncontainer_fs_limit_bytes{container=\"\",device=\"/dev/nvme0n1p1\",id=\"/\"} 8e10\n";
        let s = sample(resource, Some(cadvisor), 5);
        assert_eq!(s.node_cpu_seconds, Some(12.5));
        assert_eq!(
            s.containers[&("default".into(), "web".into(), "app".into())],
            (3.0, 1e8)
        );
        assert_eq!(s.node_network["eth0"], (1000.0, 500.0));
        assert_eq!(
            s.pod_network[&("default".into(), "web".into())],
            (40.0, 0.0)
        );
        assert_eq!(
            s.filesystem,
            Some(("/dev/nvme0n1p1".to_string(), 2e10, 8e10))
        );
    }

    #[test]
    fn urls_follow_the_path_annotation_and_status_port() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "annotations": {PATH_ANNOTATION: "/metrics/nodes/n1/metrics/resource"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10247}}}
        }))
        .expect("node");
        assert_eq!(
            node_urls(&node, 10250, true),
            Some((
                "https://127.0.0.1:10247/metrics/nodes/n1/metrics/resource".into(),
                "https://127.0.0.1:10247/metrics/nodes/n1/metrics/cadvisor".into()
            ))
        );
    }

    #[test]
    fn the_aws_filters_fields_come_from_the_node() {
        let node = |provider: Option<&str>, zone: Option<&str>| Node {
            metadata: kube::api::ObjectMeta {
                labels: zone
                    .map(|z| [("topology.kubernetes.io/zone".to_string(), z.to_string())].into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::NodeSpec {
                provider_id: provider.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            node_aws_fields(&node(
                Some("aws:///ap-southeast-1b/i-0abc"),
                Some("ap-southeast-1a")
            ))
            .as_deref(),
            Some(r#","az":"ap-southeast-1a","ec2_instance_id":"i-0abc""#)
        );
        assert_eq!(
            node_aws_fields(&node(Some("aws:///ap-southeast-1b/i-0abc"), None)).as_deref(),
            Some(r#","az":"ap-southeast-1b","ec2_instance_id":"i-0abc""#)
        );
        assert_eq!(node_aws_fields(&node(Some("kwok://n1"), None)), None);
        assert_eq!(node_aws_fields(&node(None, None)), None);
    }
}
