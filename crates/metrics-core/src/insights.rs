//! Container Insights' performance events: what the CloudWatch agent
//! writes to `/aws/containerinsights/<cluster>/performance` as embedded
//! metric format (EMF) events, computed from two kubelet samples, the
//! node's pods and its Node object. No I/O.
//!
//! Names, units and formulas are the agent's (CloudWatch's "Container
//! Insights metrics for Amazon EKS"): CPU in millicores, `*_utilization`
//! and `*_reserved_capacity` in percent of the node's capacity
//! (`pod_cpu_utilization = pod_cpu_usage_total / node_cpu_limit`),
//! `*_over_pod_limit` in percent of the pod's limits (only when every
//! container has one), memory the working set in bytes, network in bytes
//! per second. Each event carries `Type` (`Node`, `NodeFS`, `NodeNet`,
//! `Pod`, `PodNet`, `Container`, `Cluster`, `ClusterNamespace`,
//! `ClusterService`), its dimension fields, the `kubernetes` object, and
//! `_aws.CloudWatchMetrics` naming the metrics CloudWatch extracts and the
//! dimension sets it extracts them under (at most 9 keys each).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ContainerInsights";

/// What the Node object says.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub cluster: String,
    pub name: String,
    pub instance_id: String,
    pub instance_type: String,
    /// Capacity (what the CloudWatch agent calls the node's limit).
    pub cpu_cores: f64,
    pub memory_bytes: f64,
}

#[derive(Clone, Debug, Default)]
pub struct ContainerInfo {
    pub name: String,
    pub cpu_request: f64,
    pub cpu_limit: Option<f64>,
    pub memory_request: f64,
    pub memory_limit: Option<f64>,
    pub restarts: i64,
    pub running: bool,
}

/// A pod of the node, from its spec and status.
#[derive(Clone, Debug, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// Services selecting it.
    pub services: Vec<String>,
    /// Its owner references: (kind, name).
    pub owners: Vec<(String, String)>,
    pub phase: String,
    pub containers: Vec<ContainerInfo>,
}

/// One kubelet sample of the node.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub time_ms: i64,
    pub node_cpu_seconds: Option<f64>,
    pub node_memory: Option<f64>,
    /// (namespace, pod, container) -> (cpu seconds, working set bytes)
    pub containers: HashMap<(String, String, String), (f64, f64)>,
    /// (namespace, pod) -> (rx bytes, tx bytes), cumulative.
    pub pod_network: HashMap<(String, String), (f64, f64)>,
    /// interface -> (rx bytes, tx bytes), cumulative.
    pub node_network: BTreeMap<String, (f64, f64)>,
    /// (device, used bytes, capacity bytes)
    pub filesystem: Option<(String, f64, f64)>,
}

/// The last sample, for rates, and the last restart counts, for their
/// increase.
#[derive(Debug, Default)]
pub struct Perf {
    prev: Option<Sample>,
    restarts: HashMap<(String, String, String), i64>,
}

/// The `PodName` dimension as the CloudWatch agent writes it: the
/// workload's name for a pod with an owner (the Deployment behind a
/// ReplicaSet, the CronJob behind a Job, a DaemonSet, StatefulSet or
/// ReplicationController as named), `kube-proxy` for the kube-proxy pods
/// (static pods without owners), else the pod's own name.
pub fn workload_name(pod: &PodInfo) -> String {
    for (kind, name) in &pod.owners {
        match kind.as_str() {
            "ReplicaSet" => {
                return strip_suffix(name, |s| {
                    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            }
            "Job" => {
                return strip_suffix(name, |s| {
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
                });
            }
            "DaemonSet" | "StatefulSet" | "ReplicationController" => return name.clone(),
            _ => {}
        }
    }
    if pod.name.starts_with("kube-proxy") {
        return "kube-proxy".to_string();
    }
    pod.name.clone()
}

/// `name` without its last `-suffix` when `is_generated(suffix)`.
fn strip_suffix(name: &str, is_generated: impl Fn(&str) -> bool) -> String {
    match name.rsplit_once('-') {
        Some((base, suffix)) if !base.is_empty() && is_generated(suffix) => base.to_string(),
        _ => name.to_string(),
    }
}

/// A sum that is 0.0 (not -0.0) when empty.
fn total(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |a, b| a + b)
}

fn rate(now: Option<f64>, prev: Option<f64>, seconds: f64) -> Option<f64> {
    let (n, p) = (now?, prev?);
    (seconds > 0.0 && n >= p).then(|| (n - p) / seconds)
}

fn pct(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b * 100.0)
}

/// One EMF event: `fields`, the metrics that have a value, and
/// `_aws` naming them under `dimensions`.
pub fn emf(
    time_ms: i64,
    mut fields: Map<String, Value>,
    metrics: &[(&str, &str, Option<f64>)],
    dimensions: &[Vec<&str>],
) -> String {
    let mut declared = vec![];
    for (name, unit, value) in metrics {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            fields.insert((*name).to_string(), json!(v));
            declared.push(json!({"Name": name, "Unit": unit}));
        }
    }
    if !declared.is_empty() {
        fields.insert(
            "_aws".into(),
            json!({
                "Timestamp": time_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": declared,
                }],
            }),
        );
    }
    Value::Object(fields).to_string()
}

fn base(kind: &str, cluster: &str, time_ms: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Type".into(), json!(kind));
    m.insert("ClusterName".into(), json!(cluster));
    m.insert("Timestamp".into(), json!(time_ms.to_string()));
    m.insert("Version".into(), json!("0"));
    m
}

fn node_fields(kind: &str, node: &NodeInfo, time_ms: i64) -> Map<String, Value> {
    let mut m = base(kind, &node.cluster, time_ms);
    m.insert("NodeName".into(), json!(node.name));
    m.insert("InstanceId".into(), json!(node.instance_id));
    m.insert("InstanceType".into(), json!(node.instance_type));
    m.insert("kubernetes".into(), json!({"host": node.name}));
    m
}

const NODE_DIMS: &[&[&str]] = &[&["ClusterName", "InstanceId", "NodeName"], &["ClusterName"]];

fn dims(sets: &[&[&'static str]]) -> Vec<Vec<&'static str>> {
    sets.iter().map(|s| s.to_vec()).collect()
}

impl Perf {
    /// The node's events for `sample`; nothing for the first one (rates
    /// need two).
    pub fn events(&mut self, node: &NodeInfo, pods: &[PodInfo], sample: Sample) -> Vec<String> {
        let Some(prev) = self.prev.replace(sample) else {
            return vec![];
        };
        let Some(now) = self.prev.as_ref() else {
            return vec![];
        };
        let secs = (now.time_ms - prev.time_ms) as f64 / 1000.0;
        let t = now.time_ms;
        let mut out = vec![];
        let cpu_limit = node.cpu_cores * 1000.0;
        let mem_limit = node.memory_bytes;
        let running: Vec<&PodInfo> = pods.iter().filter(|p| p.phase == "Running").collect();
        let running_containers: usize = running
            .iter()
            .map(|p| p.containers.iter().filter(|c| c.running).count())
            .sum();
        // Requests hold capacity until the pod ends: Pending pods count.
        let holding = || {
            pods.iter()
                .filter(|p| p.phase != "Succeeded" && p.phase != "Failed")
                .flat_map(|p| &p.containers)
        };
        let cpu_request = total(holding().map(|c| c.cpu_request * 1000.0));
        let mem_request = total(holding().map(|c| c.memory_request));
        let node_cpu = rate(now.node_cpu_seconds, prev.node_cpu_seconds, secs).map(|r| r * 1000.0);
        let net: Vec<(f64, f64)> = now
            .node_network
            .iter()
            .filter_map(|(i, (rx, tx))| {
                let (prx, ptx) = prev.node_network.get(i)?;
                Some((
                    rate(Some(*rx), Some(*prx), secs)?,
                    rate(Some(*tx), Some(*ptx), secs)?,
                ))
            })
            .collect();
        let (rx, tx) = if net.is_empty() {
            (None, None)
        } else {
            (
                Some(net.iter().map(|n| n.0).sum()),
                Some(net.iter().map(|n| n.1).sum()),
            )
        };
        let node_dims = dims(NODE_DIMS);
        out.push(emf(
            t,
            node_fields("Node", node, t),
            &[
                ("node_cpu_usage_total", "None", node_cpu),
                ("node_cpu_limit", "None", Some(cpu_limit)),
                ("node_cpu_request", "None", Some(cpu_request)),
                (
                    "node_cpu_utilization",
                    "Percent",
                    node_cpu.and_then(|c| pct(c, cpu_limit)),
                ),
                (
                    "node_cpu_reserved_capacity",
                    "Percent",
                    pct(cpu_request, cpu_limit),
                ),
                ("node_memory_working_set", "Bytes", now.node_memory),
                ("node_memory_limit", "Bytes", Some(mem_limit)),
                ("node_memory_request", "Bytes", Some(mem_request)),
                (
                    "node_memory_utilization",
                    "Percent",
                    now.node_memory.and_then(|m| pct(m, mem_limit)),
                ),
                (
                    "node_memory_reserved_capacity",
                    "Percent",
                    pct(mem_request, mem_limit),
                ),
                ("node_network_rx_bytes", "Bytes/Second", rx),
                ("node_network_tx_bytes", "Bytes/Second", tx),
                (
                    "node_network_total_bytes",
                    "Bytes/Second",
                    rx.zip(tx).map(|(r, x)| r + x),
                ),
                (
                    "node_number_of_running_pods",
                    "Count",
                    Some(running.len() as f64),
                ),
                (
                    "node_number_of_running_containers",
                    "Count",
                    Some(running_containers as f64),
                ),
            ],
            &node_dims,
        ));
        if let Some((device, used, capacity)) = &now.filesystem {
            let mut f = node_fields("NodeFS", node, t);
            f.insert("device".into(), json!(device));
            out.push(emf(
                t,
                f,
                &[
                    (
                        "node_filesystem_utilization",
                        "Percent",
                        pct(*used, *capacity),
                    ),
                    ("node_filesystem_usage", "Bytes", Some(*used)),
                    ("node_filesystem_capacity", "Bytes", Some(*capacity)),
                    ("node_filesystem_available", "Bytes", Some(capacity - used)),
                ],
                &node_dims,
            ));
        }
        for (iface, (irx, itx)) in &now.node_network {
            let Some((prx, ptx)) = prev.node_network.get(iface) else {
                continue;
            };
            let mut f = node_fields("NodeNet", node, t);
            f.insert("interface".into(), json!(iface));
            out.push(emf(
                t,
                f,
                &[
                    (
                        "node_interface_network_rx_bytes",
                        "Bytes/Second",
                        rate(Some(*irx), Some(*prx), secs),
                    ),
                    (
                        "node_interface_network_tx_bytes",
                        "Bytes/Second",
                        rate(Some(*itx), Some(*ptx), secs),
                    ),
                ],
                &[],
            ));
        }
        // Restarts are reported as their increase since the last sample
        // (nothing the first time a container is seen).
        let mut restarts: HashMap<(String, String, String), i64> = HashMap::new();
        let mut increases: HashMap<(String, String, String), i64> = HashMap::new();
        for p in pods {
            for c in &p.containers {
                let k = (p.namespace.clone(), p.name.clone(), c.name.clone());
                if let Some(before) = self.restarts.get(&k) {
                    increases.insert(k.clone(), (c.restarts - before).max(0));
                }
                restarts.insert(k, c.restarts);
            }
        }
        self.restarts = restarts;
        for p in &running {
            out.extend(self.pod_events(node, p, &prev, secs, t, cpu_limit, mem_limit, &increases));
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn pod_events(
        &self,
        node: &NodeInfo,
        p: &PodInfo,
        prev: &Sample,
        secs: f64,
        t: i64,
        cpu_limit: f64,
        mem_limit: f64,
        increases: &HashMap<(String, String, String), i64>,
    ) -> Vec<String> {
        let Some(now) = self.prev.as_ref() else {
            return vec![];
        };
        let mut out = vec![];
        let key = |c: &str| (p.namespace.clone(), p.name.clone(), c.to_string());
        let mut pod_cpu = Some(0.0);
        let mut pod_mem = Some(0.0);
        let pod_name = workload_name(p);
        let mut kubernetes = json!({
            "host": node.name,
            "namespace_name": p.namespace,
            "pod_name": p.name,
            "pod_id": p.uid,
        });
        if !p.labels.is_empty() {
            kubernetes["labels"] = json!(p.labels);
        }
        if !p.owners.is_empty() {
            kubernetes["pod_owners"] = json!(
                p.owners
                    .iter()
                    .map(|(k, n)| json!({"owner_kind": k, "owner_name": n}))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(s) = p.services.first() {
            kubernetes["service_name"] = json!(s);
        }
        let restarts_of = |c: &str| {
            increases
                .get(&(p.namespace.clone(), p.name.clone(), c.to_string()))
                .copied()
        };
        for c in &p.containers {
            let (cpu, mem) = match (
                now.containers.get(&key(&c.name)),
                prev.containers.get(&key(&c.name)),
            ) {
                (Some((cn, mn)), Some((cp, _))) => (
                    rate(Some(*cn), Some(*cp), secs).map(|r| r * 1000.0),
                    Some(*mn),
                ),
                (Some((_, mn)), None) => (None, Some(*mn)),
                _ => (None, None),
            };
            pod_cpu = pod_cpu.zip(cpu).map(|(a, b)| a + b);
            pod_mem = pod_mem.zip(mem).map(|(a, b)| a + b);
            let mut f = base("Container", &node.cluster, t);
            f.insert("NodeName".into(), json!(node.name));
            f.insert("Namespace".into(), json!(p.namespace));
            f.insert("PodName".into(), json!(pod_name));
            f.insert("FullPodName".into(), json!(p.name));
            f.insert("ContainerName".into(), json!(c.name));
            if let Some(s) = p.services.first() {
                f.insert("Service".into(), json!(s));
            }
            let mut k = kubernetes.clone();
            k["container_name"] = json!(c.name);
            f.insert("kubernetes".into(), k);
            out.push(emf(
                t,
                f,
                &[
                    ("container_cpu_usage_total", "None", cpu),
                    (
                        "container_cpu_utilization",
                        "Percent",
                        cpu.and_then(|v| pct(v, cpu_limit)),
                    ),
                    (
                        "container_cpu_request",
                        "None",
                        Some(c.cpu_request * 1000.0),
                    ),
                    (
                        "container_cpu_limit",
                        "None",
                        c.cpu_limit.map(|l| l * 1000.0),
                    ),
                    ("container_memory_working_set", "Bytes", mem),
                    (
                        "container_memory_utilization",
                        "Percent",
                        mem.and_then(|v| pct(v, mem_limit)),
                    ),
                    ("container_memory_request", "Bytes", Some(c.memory_request)),
                    ("container_memory_limit", "Bytes", c.memory_limit),
                    (
                        "number_of_container_restarts",
                        "Count",
                        restarts_of(&c.name).map(|r| r as f64),
                    ),
                ],
                &[vec!["ClusterName", "Namespace", "PodName", "ContainerName"]],
            ));
        }
        let requests_cpu = total(p.containers.iter().map(|c| c.cpu_request * 1000.0));
        let requests_mem = total(p.containers.iter().map(|c| c.memory_request));
        let limits_cpu: Option<f64> = p
            .containers
            .iter()
            .map(|c| c.cpu_limit.map(|l| l * 1000.0))
            .sum();
        let limits_mem: Option<f64> = p.containers.iter().map(|c| c.memory_limit).sum();
        let pk = (p.namespace.clone(), p.name.clone());
        let (prx, ptx) = match (now.pod_network.get(&pk), prev.pod_network.get(&pk)) {
            (Some((rx, tx)), Some((orx, otx))) => (
                rate(Some(*rx), Some(*orx), secs),
                rate(Some(*tx), Some(*otx), secs),
            ),
            _ => (None, None),
        };
        let mut f = base("Pod", &node.cluster, t);
        f.insert("NodeName".into(), json!(node.name));
        f.insert("Namespace".into(), json!(p.namespace));
        f.insert("PodName".into(), json!(pod_name));
        f.insert("FullPodName".into(), json!(p.name));
        let mut dimension_sets = vec![
            vec!["ClusterName", "Namespace", "PodName"],
            vec!["ClusterName", "Namespace"],
            vec!["ClusterName"],
        ];
        if let Some(s) = p.services.first() {
            f.insert("Service".into(), json!(s));
            dimension_sets.insert(1, vec!["ClusterName", "Namespace", "Service"]);
        }
        f.insert("kubernetes".into(), kubernetes);
        let restarts: Option<i64> = p.containers.iter().map(|c| restarts_of(&c.name)).sum();
        out.push(emf(
            t,
            f,
            &[
                ("pod_cpu_usage_total", "None", pod_cpu),
                (
                    "pod_cpu_utilization",
                    "Percent",
                    pod_cpu.and_then(|c| pct(c, cpu_limit)),
                ),
                (
                    "pod_cpu_utilization_over_pod_limit",
                    "Percent",
                    pod_cpu.zip(limits_cpu).and_then(|(c, l)| pct(c, l)),
                ),
                ("pod_cpu_request", "None", Some(requests_cpu)),
                ("pod_cpu_limit", "None", limits_cpu),
                (
                    "pod_cpu_reserved_capacity",
                    "Percent",
                    pct(requests_cpu, cpu_limit),
                ),
                ("pod_memory_working_set", "Bytes", pod_mem),
                (
                    "pod_memory_utilization",
                    "Percent",
                    pod_mem.and_then(|m| pct(m, mem_limit)),
                ),
                (
                    "pod_memory_utilization_over_pod_limit",
                    "Percent",
                    pod_mem.zip(limits_mem).and_then(|(m, l)| pct(m, l)),
                ),
                ("pod_memory_request", "Bytes", Some(requests_mem)),
                ("pod_memory_limit", "Bytes", limits_mem),
                (
                    "pod_memory_reserved_capacity",
                    "Percent",
                    pct(requests_mem, mem_limit),
                ),
                ("pod_network_rx_bytes", "Bytes/Second", prx),
                ("pod_network_tx_bytes", "Bytes/Second", ptx),
                (
                    "pod_number_of_containers",
                    "Count",
                    Some(p.containers.len() as f64),
                ),
                (
                    "pod_number_of_running_containers",
                    "Count",
                    Some(p.containers.iter().filter(|c| c.running).count() as f64),
                ),
                (
                    "pod_number_of_container_restarts",
                    "Count",
                    restarts.map(|r| r as f64),
                ),
            ],
            &dimension_sets,
        ));
        if prx.is_some() {
            let mut f = base("PodNet", &node.cluster, t);
            f.insert("NodeName".into(), json!(node.name));
            f.insert("Namespace".into(), json!(p.namespace));
            f.insert("PodName".into(), json!(pod_name));
            f.insert("FullPodName".into(), json!(p.name));
            f.insert("interface".into(), json!("eth0"));
            out.push(emf(
                t,
                f,
                &[
                    ("pod_interface_network_rx_bytes", "Bytes/Second", prx),
                    ("pod_interface_network_tx_bytes", "Bytes/Second", ptx),
                ],
                &[],
            ));
        }
        out
    }
}

/// The cluster-wide events one agent (the leader) writes: node counts,
/// running pods per namespace and per service.
pub fn cluster_events(
    cluster: &str,
    time_ms: i64,
    nodes_ready: &[bool],
    running_per_namespace: &BTreeMap<String, usize>,
    running_per_service: &BTreeMap<(String, String), usize>,
) -> Vec<String> {
    let mut out = vec![];
    let failed = nodes_ready.iter().filter(|r| !**r).count();
    out.push(emf(
        time_ms,
        base("Cluster", cluster, time_ms),
        &[
            (
                "cluster_node_count",
                "Count",
                Some(nodes_ready.len() as f64),
            ),
            ("cluster_failed_node_count", "Count", Some(failed as f64)),
        ],
        &[vec!["ClusterName"]],
    ));
    for (ns, n) in running_per_namespace {
        let mut f = base("ClusterNamespace", cluster, time_ms);
        f.insert("Namespace".into(), json!(ns));
        f.insert("kubernetes".into(), json!({"namespace_name": ns}));
        out.push(emf(
            time_ms,
            f,
            &[("namespace_number_of_running_pods", "Count", Some(*n as f64))],
            &[vec!["ClusterName", "Namespace"], vec!["ClusterName"]],
        ));
    }
    for ((ns, svc), n) in running_per_service {
        let mut f = base("ClusterService", cluster, time_ms);
        f.insert("Namespace".into(), json!(ns));
        f.insert("Service".into(), json!(svc));
        f.insert(
            "kubernetes".into(),
            json!({"namespace_name": ns, "service_name": svc}),
        );
        out.push(emf(
            time_ms,
            f,
            &[("service_number_of_running_pods", "Count", Some(*n as f64))],
            &[
                vec!["ClusterName", "Namespace", "Service"],
                vec!["ClusterName"],
            ],
        ));
    }
    out
}

/// Checks an event against the EMF specification's limits: `None` when it
/// is valid, else why not. (Tests and the cluster tests use it.)
pub fn emf_problem(event: &str) -> Option<String> {
    let v: Value = match serde_json::from_str(event) {
        Ok(v) => v,
        Err(e) => return Some(format!("not JSON: {e}")),
    };
    // An event without `_aws` is a plain log event: nothing to check.
    let aws = v.get("_aws")?;
    if !aws["Timestamp"].is_i64() {
        return Some("_aws.Timestamp is not an integer".into());
    }
    let Some(directives) = aws["CloudWatchMetrics"].as_array() else {
        return Some("_aws.CloudWatchMetrics is not an array".into());
    };
    for d in directives {
        if d["Namespace"].as_str().is_none_or(str::is_empty) {
            return Some("a directive without Namespace".into());
        }
        let Some(sets) = d["Dimensions"].as_array() else {
            return Some("Dimensions is not an array".into());
        };
        for set in sets {
            let Some(keys) = set.as_array() else {
                return Some("a dimension set is not an array".into());
            };
            if keys.len() > 9 {
                return Some(format!("a dimension set has {} keys", keys.len()));
            }
            for k in keys {
                let Some(k) = k.as_str() else {
                    return Some("a dimension key is not a string".into());
                };
                if !v[k].is_string() {
                    return Some(format!("dimension {k} is not a string field"));
                }
            }
        }
        let Some(metrics) = d["Metrics"].as_array() else {
            return Some("Metrics is not an array".into());
        };
        if metrics.len() > 100 {
            return Some(format!("{} metrics in one directive", metrics.len()));
        }
        for m in metrics {
            let Some(name) = m["Name"].as_str() else {
                return Some("a metric without Name".into());
            };
            if !v[name].is_number() {
                return Some(format!("metric {name} is not a number in the event"));
            }
        }
    }
    if event.len() > 256 * 1024 {
        return Some("over 256 KB".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            cluster: "demo".into(),
            name: "n1".into(),
            instance_id: "i-1".into(),
            instance_type: "m5.large".into(),
            cpu_cores: 2.0,
            memory_bytes: 8.0 * 1024.0 * 1024.0 * 1024.0,
        }
    }

    fn pod() -> PodInfo {
        PodInfo {
            namespace: "default".into(),
            name: "web".into(),
            uid: "u".into(),
            services: vec!["web-svc".into()],
            phase: "Running".into(),
            containers: vec![ContainerInfo {
                name: "app".into(),
                cpu_request: 0.5,
                cpu_limit: Some(1.0),
                memory_request: 256.0 * 1024.0 * 1024.0,
                memory_limit: Some(512.0 * 1024.0 * 1024.0),
                restarts: 2,
                running: true,
            }],
            ..Default::default()
        }
    }

    fn sample(t: i64, node_cpu: f64, c_cpu: f64) -> Sample {
        let mut s = Sample {
            time_ms: t,
            node_cpu_seconds: Some(node_cpu),
            node_memory: Some(1024.0 * 1024.0 * 1024.0),
            filesystem: Some(("/dev/nvme0n1p1".into(), 20.0e9, 80.0e9)),
            ..Default::default()
        };
        s.containers.insert(
            ("default".into(), "web".into(), "app".into()),
            (c_cpu, 128.0 * 1024.0 * 1024.0),
        );
        s.pod_network
            .insert(("default".into(), "web".into()), (t as f64, t as f64 / 2.0));
        s.node_network
            .insert("eth0".into(), (t as f64 * 2.0, t as f64));
        s
    }

    fn by_type(events: &[String], t: &str) -> Vec<Value> {
        events
            .iter()
            .map(|e| serde_json::from_str::<Value>(e).expect("json"))
            .filter(|v| v["Type"] == t)
            .collect()
    }

    #[test]
    fn node_and_pod_metrics_as_the_cloudwatch_agent_computes_them() {
        let mut p = Perf::default();
        assert!(
            p.events(&node(), &[pod()], sample(0, 100.0, 10.0))
                .is_empty()
        );
        // 60 s later: the node used 30 core-seconds (500m), the pod 6 (100m).
        let ev = p.events(&node(), &[pod()], sample(60_000, 130.0, 16.0));
        for e in &ev {
            assert_eq!(emf_problem(e), None, "{e}");
        }
        let n = &by_type(&ev, "Node")[0];
        assert_eq!(n["node_cpu_usage_total"], 500.0);
        assert_eq!(n["node_cpu_limit"], 2000.0);
        assert_eq!(n["node_cpu_utilization"], 25.0);
        assert_eq!(n["node_cpu_reserved_capacity"], 25.0);
        assert_eq!(n["node_memory_utilization"], 12.5);
        assert_eq!(n["node_number_of_running_pods"], 1.0);
        assert_eq!(n["node_number_of_running_containers"], 1.0);
        // rx 2 B/ms = 2000 B/s, tx 1000 B/s.
        assert_eq!(n["node_network_total_bytes"], 3000.0);
        assert_eq!(n["NodeName"], "n1");
        assert_eq!(
            n["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["ClusterName", "InstanceId", "NodeName"], ["ClusterName"]])
        );
        let fs = &by_type(&ev, "NodeFS")[0];
        assert_eq!(fs["node_filesystem_utilization"], 25.0);
        let pd = &by_type(&ev, "Pod")[0];
        assert_eq!(pd["pod_cpu_usage_total"], 100.0);
        assert_eq!(pd["pod_cpu_utilization"], 5.0);
        assert_eq!(pd["pod_cpu_utilization_over_pod_limit"], 10.0);
        assert_eq!(pd["pod_cpu_reserved_capacity"], 25.0);
        assert_eq!(pd["pod_memory_utilization_over_pod_limit"], 25.0);
        // Restarts: their increase since the last sample; none in the first
        // event (as the CloudWatch agent).
        assert!(pd.get("pod_number_of_container_restarts").is_none());
        assert_eq!(pd["pod_network_rx_bytes"], 1000.0);
        assert_eq!(pd["Service"], "web-svc");
        assert_eq!(
            pd["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([
                ["ClusterName", "Namespace", "PodName"],
                ["ClusterName", "Namespace", "Service"],
                ["ClusterName", "Namespace"],
                ["ClusterName"]
            ])
        );
        assert_eq!(by_type(&ev, "Container").len(), 1);
        assert_eq!(by_type(&ev, "PodNet").len(), 1);
        assert_eq!(by_type(&ev, "NodeNet").len(), 1);
    }

    #[test]
    fn over_limit_only_when_every_container_has_a_limit() {
        let mut pd = pod();
        pd.containers.push(ContainerInfo {
            name: "side".into(),
            running: true,
            ..Default::default()
        });
        let mut p = Perf::default();
        p.events(&node(), &[pd.clone()], sample(0, 1.0, 1.0));
        let ev = p.events(&node(), &[pd], sample(10_000, 2.0, 2.0));
        let v = &by_type(&ev, "Pod")[0];
        assert!(v.get("pod_cpu_utilization_over_pod_limit").is_none());
        // The sidecar has no sample: the pod's usage is unknown, not 0.
        assert!(v.get("pod_cpu_usage_total").is_none());
        assert_eq!(emf_problem(&ev[0]), None);
    }

    #[test]
    fn cluster_events_count_nodes_pods_and_services() {
        let ev = cluster_events(
            "demo",
            5,
            &[true, true, false],
            &[("default".to_string(), 4)].into(),
            &[(("default".to_string(), "web".to_string()), 2)].into(),
        );
        for e in &ev {
            assert_eq!(emf_problem(e), None, "{e}");
        }
        let c = &by_type(&ev, "Cluster")[0];
        assert_eq!(c["cluster_node_count"], 3.0);
        assert_eq!(c["cluster_failed_node_count"], 1.0);
        assert_eq!(
            by_type(&ev, "ClusterNamespace")[0]["namespace_number_of_running_pods"],
            4.0
        );
        assert_eq!(
            by_type(&ev, "ClusterService")[0]["service_number_of_running_pods"],
            2.0
        );
    }

    #[test]
    fn emf_problems_are_found() {
        assert!(emf_problem("{").is_some());
        assert_eq!(emf_problem(r#"{"Type":"NodeNet"}"#), None);
        let bad = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["A"]],"Metrics":[{"Name":"m"}]}]},"A":"x","m":"1"}"#;
        assert_eq!(
            emf_problem(bad).as_deref(),
            Some("metric m is not a number in the event")
        );
        let bad = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["A","B","C","D","E","F","G","H","I","J"]],"Metrics":[]}]}}"#;
        assert!(emf_problem(bad).is_some_and(|p| p.contains("10 keys")));
    }
}
