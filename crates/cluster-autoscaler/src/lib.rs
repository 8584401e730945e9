//! `outrigger cluster-autoscaler`: node groups — AWS Auto Scaling groups
//! found by tag (`--node-group-auto-discovery`) or named (`--nodes`), or
//! kwok groups declared in a ConfigMap — scaled out for pods kube-scheduler
//! cannot place and in for nodes nobody needs, with Cluster Autoscaler's
//! flags, tags, annotations, taints, status ConfigMap, Events and metrics.
//!
//! One controller key, the loop (`Key::Loop`), runs every `--scan-interval`
//! and at once when a pod becomes unschedulable (at most once a second):
//! refresh the groups through their provider ([`groups`]), snapshot the
//! watched cluster ([`snapshot`]), give back instances that never
//! registered, scale up ([`scaleup`]: the shared solver, the expanders of
//! `outrigger-node-groups`), then scale down ([`scaledown`]: unneeded nodes
//! soft-tainted, removed after `--scale-down-unneeded-time`), and write the
//! status ConfigMap ([`status`]).

mod cycle;
pub mod explain;
pub mod facts;
pub mod groups;
mod metrics;
mod scaledown;
mod scaleup;
pub mod snapshot;
mod status;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{ConfigMap, Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::{Api, Client, ResourceExt, runtime::reflector::Store};
use outrigger_node_groups::{
    expander::{Expander, Priorities},
    flags,
    scaledown::Config as ScaleDownConfig,
    scaleup::Limits,
};
use outrigger_runtime::{
    Action, Controller, ErrorKind, KeyKind, Runtime, events::Events, parse_duration, queue::Queue,
    sync::LockExt, watch::store_with_changes_trimmed,
};

use crate::groups::{GroupError, NodeGroupProvider};

/// A Go boolean flag: `--flag`, `--flag=true`, `--flag=false`.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {s:?}")),
    }
}

/// Flags of `outrigger cluster-autoscaler`: Cluster Autoscaler's names and
/// defaults, so upstream's manifests work with the image swapped.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Where node groups come from: `aws` (Auto Scaling groups) or `kwok`
    /// (groups declared in the kwok provider's ConfigMaps).
    #[arg(long, default_value = "aws", value_parser = ["aws", "kwok"])]
    pub cloud_provider: String,
    /// `asg:tag=<key>[=<value>][,<key>...]`: Auto Scaling groups carrying
    /// every key (with the value, where one is given).
    #[arg(long)]
    pub node_group_auto_discovery: Vec<String>,
    /// `<min>:<max>:<name>`: a node group by name.
    #[arg(long)]
    pub nodes: Vec<String>,
    /// The cluster's name.
    #[arg(long, env = "CLUSTER_NAME", default_value = "demo")]
    pub cluster_name: String,
    /// Which scale-up option to take: random, most-pods, least-waste,
    /// price, priority, least-nodes; a comma list chains them.
    #[arg(long, default_value = "least-waste")]
    pub expander: String,
    /// Split scale-ups across groups with the same nodes (zone aside).
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub balance_similar_node_groups: bool,
    /// How often the cluster is looked at.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub scan_interval: Duration,
    /// Most nodes in the cluster (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_nodes_total: i64,
    /// `<min>:<max>` cores in the cluster.
    #[arg(long, default_value = "0:320000")]
    pub cores_total: String,
    /// `<min>:<max>` GiB of memory in the cluster.
    #[arg(long, default_value = "0:6400000")]
    pub memory_total: String,
    /// An instance that has not registered as a node after this long is
    /// given back, and its group backs off.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub max_node_provision_time: Duration,
    /// Pods younger than this do not trigger a scale-up.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub new_pod_scale_up_delay: Duration,
    /// Pods with a priority below this neither trigger a scale-up nor keep
    /// a node.
    #[arg(long, default_value_t = -10, allow_hyphen_values = true)]
    pub expendable_pods_priority_cutoff: i32,
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub scale_down_enabled: bool,
    /// A node whose requested cpu and memory are both below this share of
    /// its allocatable may go.
    #[arg(long, default_value_t = 0.5)]
    pub scale_down_utilization_threshold: f64,
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub scale_down_unneeded_time: Duration,
    #[arg(long, default_value = "20m", value_parser = parse_duration)]
    pub scale_down_unready_time: Duration,
    /// Unready nodes may be removed (after `--scale-down-unready-time`).
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub scale_down_unready_enabled: bool,
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub scale_down_delay_after_add: Duration,
    /// Default: the scan interval.
    #[arg(long, value_parser = parse_duration)]
    pub scale_down_delay_after_delete: Option<Duration>,
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub scale_down_delay_after_failure: Duration,
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub skip_nodes_with_local_storage: bool,
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub skip_nodes_with_system_pods: bool,
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub ignore_daemonsets_utilization: bool,
    /// Pods of controllers other than ReplicaSet, ReplicationController,
    /// Job and StatefulSet keep their node.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub skip_nodes_with_custom_controller_pods: bool,
    /// A kube-system pod without a PodDisruptionBudget stops keeping its
    /// node once it is older than this (upstream's spelling).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub blocking_system_pod_distruption_timeout: Duration,
    /// Labels ignored, in addition to the usual ones, when telling similar
    /// node groups (`--balance-similar-node-groups`); repeatable.
    #[arg(long)]
    pub balancing_ignore_label: Vec<String>,
    /// Most seconds a pod gets to terminate when its node is drained.
    #[arg(long, default_value_t = 600)]
    pub max_graceful_termination_sec: i64,
    /// Most empty nodes removed at once.
    #[arg(long, default_value_t = 10)]
    pub max_empty_bulk_delete: usize,
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = go_bool)]
    pub write_status_configmap: bool,
    #[arg(long, default_value = "cluster-autoscaler-status")]
    pub status_config_map_name: String,
    /// The namespace of the status and priority ConfigMaps.
    #[arg(long, env = "POD_NAMESPACE", default_value = "kube-system")]
    pub namespace: String,
    /// Cluster Autoscaler's metrics and health address (`:8085`); the
    /// admin server moves there when it is given.
    #[arg(long)]
    pub address: Option<String>,
    /// klog's flags, accepted for upstream's manifests (logging is set by
    /// `--log-format` and `RUST_LOG`).
    #[arg(long = "v", hide = true)]
    pub verbosity: Option<String>,
    #[arg(long, hide = true)]
    pub stderrthreshold: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub logtostderr: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub alsologtostderr: Option<String>,
    /// Upstream's leader-election names, accepted (the Lease is set by
    /// `--leader-elect*` of the runtime).
    #[arg(long, hide = true)]
    pub leader_elect_resource_name: Option<String>,
    #[arg(long, hide = true)]
    pub leader_elect_resource_namespace: Option<String>,
    #[arg(long, hide = true)]
    pub leader_elect_resource_lock: Option<String>,
    #[arg(long, hide = true)]
    pub leader_elect_renew_deadline: Option<String>,
    #[arg(long, hide = true)]
    pub leader_elect_retry_period: Option<String>,
    /// kwok provider: the zones of kwok nodes without a zone label.
    #[arg(long, hide = true, default_value = "ap-southeast-1a")]
    pub kwok_default_zone: String,
}

/// What the flags mean, checked once.
#[derive(Clone, Debug)]
pub struct Settings {
    /// One tag key -> value map (`""`: any value) per discovery spec.
    pub discovery: Vec<BTreeMap<String, String>>,
    pub static_groups: Vec<flags::StaticGroup>,
    pub expanders: Vec<Expander>,
    pub limits: Limits,
    /// `--cores-total` and `--memory-total` minimums: scale-down stops there.
    pub min_cores: i64,
    pub min_memory_gib: i64,
    pub scale_down: ScaleDownConfig,
}

impl Args {
    /// Checks every flag whose value is a small language; the error names
    /// the flag.
    pub fn settings(&self) -> Result<Settings, String> {
        let discovery = self
            .node_group_auto_discovery
            .iter()
            .map(|s| flags::parse_discovery(s))
            .collect::<Result<Vec<_>, _>>()?;
        let static_groups = self
            .nodes
            .iter()
            .map(|s| flags::parse_nodes(s))
            .collect::<Result<Vec<_>, _>>()?;
        if self.cloud_provider == "aws" && discovery.is_empty() && static_groups.is_empty() {
            return Err(
                "no node group: give --node-group-auto-discovery=asg:tag=<key>,... or --nodes=<min>:<max>:<name>"
                    .into(),
            );
        }
        let expanders =
            Expander::parse_list(&self.expander).map_err(|e| format!("--expander: {e}"))?;
        let (min_cores, max_cores) = flags::parse_range("cores-total", &self.cores_total)?;
        let (min_memory, max_memory) = flags::parse_range("memory-total", &self.memory_total)?;
        if !(0.0..=1.0).contains(&self.scale_down_utilization_threshold) {
            return Err(format!(
                "--scale-down-utilization-threshold {}: must be between 0 and 1",
                self.scale_down_utilization_threshold
            ));
        }
        Ok(Settings {
            discovery,
            static_groups,
            expanders,
            limits: Limits {
                max_nodes: self.max_nodes_total,
                max_cores,
                max_memory_gib: max_memory,
            },
            min_cores,
            min_memory_gib: min_memory,
            scale_down: ScaleDownConfig {
                threshold: self.scale_down_utilization_threshold,
                skip_local_storage: self.skip_nodes_with_local_storage,
                skip_system_pods: self.skip_nodes_with_system_pods,
                ignore_daemonsets_utilization: self.ignore_daemonsets_utilization,
                skip_custom_controller_pods: self.skip_nodes_with_custom_controller_pods,
                blocking_system_pod_timeout: self.blocking_system_pod_distruption_timeout,
                unready_enabled: self.scale_down_unready_enabled,
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Groups(#[from] GroupError),
    #[error("{0}")]
    Flags(String),
}

impl ErrorKind for Error {
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(e) => e.kind(),
            Error::Groups(e) => e.kind(),
            Error::Flags(_) => "InvalidFlag",
        }
    }
}

/// What the controller works on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// One autoscaling loop.
    Loop,
}

impl KeyKind for Key {
    fn kind(&self) -> &'static str {
        "loop"
    }
}

/// What the loop remembers from one run to the next.
#[derive(Default)]
pub(crate) struct Memory {
    /// Node name -> since when it has been unneeded.
    pub unneeded: BTreeMap<String, jiff::Timestamp>,
    /// Group -> (until when it backs off, how many failures in a row, why).
    pub backoff: BTreeMap<String, (Instant, u32, String)>,
    /// Provider ID -> when the instance was first seen without a node.
    pub unregistered: BTreeMap<String, Instant>,
    pub last_scale_up: Option<Instant>,
    pub last_scale_down: Option<Instant>,
    pub last_failure: Option<Instant>,
    pub last_scale_up_time: Option<String>,
    pub last_scale_down_time: Option<String>,
    /// Groups scaled up lately, and when (their launches may yet fail).
    pub scaling_up: BTreeMap<String, (Instant, jiff::Timestamp)>,
    /// NotTriggerScaleUp Events sent: pod uid -> when (no repeat within
    /// 5 minutes, as upstream).
    pub not_triggered: BTreeMap<String, Instant>,
    /// The node being drained, if one is.
    pub draining: Option<String>,
    /// The soft taints being changed, if they are.
    pub soft_taints: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) struct Ctx {
    pub client: Client,
    pub events: Events,
    pub args: Args,
    pub settings: Settings,
    pub provider: Arc<dyn NodeGroupProvider>,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub daemonsets: Store<DaemonSet>,
    pub pdbs: Store<PodDisruptionBudget>,
    pub configmaps: Store<ConfigMap>,
    pub queue: Arc<Queue<Key>>,
    pub metrics: metrics::Metrics,
    pub memory: Mutex<Memory>,
    pub last_loop: Mutex<Option<Instant>>,
    /// What the last loop's snapshot read of each pod.
    pub snapshot_cache: Mutex<snapshot::Cache>,
    /// The latest status document, for the status writer.
    pub status: tokio::sync::watch::Sender<Option<String>>,
}

impl Ctx {
    /// The priority expander's configuration, read live from its ConfigMap.
    pub fn priorities(&self) -> Priorities {
        let cm = self.configmaps.find(|c| {
            c.name_any() == outrigger_node_groups::upstream::PRIORITY_CONFIGMAP
                && c.namespace().as_deref() == Some(self.args.namespace.as_str())
        });
        let Some(text) = cm
            .as_ref()
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get(outrigger_node_groups::upstream::PRIORITY_KEY))
        else {
            return Priorities::default();
        };
        match Priorities::parse(text) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "the priority expander's ConfigMap is invalid; priorities ignored");
                Priorities::default()
            }
        }
    }
}

/// Runs one loop, then again after the scan interval.
async fn reconcile(ctx: &Arc<Ctx>) -> Result<Action, Error> {
    // A burst of pod changes runs the loop at most once a second.
    let now = Instant::now();
    if let Some(last) = *ctx.last_loop.locked()
        && now.duration_since(last) < Duration::from_secs(1)
    {
        return Ok(Action::requeue(
            Duration::from_secs(1) - now.duration_since(last),
        ));
    }
    *ctx.last_loop.locked() = Some(now);
    let start = Instant::now();
    let result = cycle::run_once(ctx).await;
    ctx.metrics
        .function_duration
        .get_or_create(&vec![("function".to_string(), "main".to_string())])
        .observe(start.elapsed().as_secs_f64());
    ctx.metrics
        .last_activity
        .get_or_create(&vec![("activity".to_string(), "main".to_string())])
        .set(jiff::Timestamp::now().as_second());
    match result {
        Ok(()) => {}
        Err(e) => {
            ctx.metrics
                .errors
                .get_or_create(&vec![("type".to_string(), e.kind().to_string())])
                .inc();
            return Err(e);
        }
    }
    Ok(Action::requeue(ctx.args.scan_interval))
}

/// Runs the autoscaler until `rt.shutdown`.
pub async fn run(rt: Runtime, args: Args) -> Result<(), Error> {
    let settings = args.settings().map_err(Error::Flags)?;
    let ready = rt
        .admin
        .ready
        .check("caches", "watch caches not synced yet");
    let client = rt.client.clone();
    let stop = rt.shutdown.clone();
    let (pods, pods_rx) = store_with_changes_trimmed(
        Api::<Pod>::all(client.clone()),
        stop.clone(),
        facts::trim_pod,
    );
    let nodes = outrigger_runtime::watch::store(Api::<Node>::all(client.clone()), stop.clone());
    let daemonsets =
        outrigger_runtime::watch::store(Api::<DaemonSet>::all(client.clone()), stop.clone());
    let pdbs = outrigger_runtime::watch::store(
        Api::<PodDisruptionBudget>::all(client.clone()),
        stop.clone(),
    );
    let configmaps = outrigger_runtime::watch::store(
        Api::<ConfigMap>::namespaced(client.clone(), &args.namespace),
        stop.clone(),
    );
    let synced = async {
        tokio::try_join!(
            pods.wait_until_ready(),
            nodes.wait_until_ready(),
            daemonsets.wait_until_ready(),
            pdbs.wait_until_ready(),
            configmaps.wait_until_ready(),
        )
    };
    tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = synced => if r.is_err() {
            tracing::warn!("a watch cache closed before it synced");
            return Ok(());
        },
    }
    let provider: Arc<dyn NodeGroupProvider> = match args.cloud_provider.as_str() {
        "kwok" => Arc::new(groups::kwok::Kwok::new(
            client.clone(),
            &args.namespace,
            nodes.clone(),
            configmaps.clone(),
        )),
        _ => Arc::new(groups::aws::Aws::new(&settings).await),
    };
    ready.ok();
    let controller = Controller::<Key>::new(
        "cluster-autoscaler",
        "outrigger_cluster_autoscaler",
        &rt.admin,
    );
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        events: rt.events.clone(),
        metrics: metrics::Metrics::register(&rt.admin),
        args,
        settings,
        provider,
        pods,
        nodes,
        daemonsets,
        pdbs,
        configmaps,
        queue: controller.queue(),
        memory: Mutex::new(Memory::default()),
        last_loop: Mutex::new(None),
        snapshot_cache: Mutex::new(Default::default()),
        status: tokio::sync::watch::Sender::new(None),
    });
    tokio::spawn(status::writer(ctx.clone(), ctx.status.subscribe()));
    // A node tainted for deletion by a process that died: the removal is
    // not known to be going on, so the taint goes (as upstream cleans up at
    // start); the node is looked at again.
    scaledown::clean_up_taints(&ctx).await;
    let c = ctx.clone();
    let mut rx = pods_rx;
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            if outrigger_scheduling_kube::is_provisionable(&p) {
                c.queue.add(Key::Loop);
            }
        }
    });
    ctx.queue.add(Key::Loop);
    tracing::info!(provider = ctx.provider.name(), "cluster autoscaler started");
    let worker_ctx = ctx.clone();
    controller
        .run(1, stop, move |_key: Key| {
            let ctx = worker_ctx.clone();
            async move { reconcile(&ctx).await }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    #[command(args_override_self = true)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(flags: &[&str]) -> Result<Args, String> {
        let mut argv = vec!["cluster-autoscaler"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv)
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    /// The flags of upstream's cluster-autoscaler-autodiscover.yaml, as the
    /// walkthrough edits them.
    #[test]
    fn upstreams_autodiscover_manifest_flags_are_taken() {
        let a = parse(&[
            "--v=4",
            "--stderrthreshold=info",
            "--cloud-provider=aws",
            "--skip-nodes-with-local-storage=false",
            "--expander=least-waste",
            "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/demo",
            "--balance-similar-node-groups",
            "--skip-nodes-with-system-pods=false",
        ])
        .unwrap();
        let s = a.settings().unwrap();
        assert_eq!(
            s.discovery,
            [BTreeMap::from([
                (
                    "k8s.io/cluster-autoscaler/enabled".to_string(),
                    String::new()
                ),
                ("k8s.io/cluster-autoscaler/demo".to_string(), String::new())
            ])]
        );
        assert!(!a.skip_nodes_with_local_storage);
        assert!(a.balance_similar_node_groups);
        assert!(!a.skip_nodes_with_system_pods);
        assert_eq!(a.scan_interval, Duration::from_secs(10));
        assert_eq!(a.scale_down_unneeded_time, Duration::from_secs(600));
        assert_eq!(a.expendable_pods_priority_cutoff, -10);
        assert_eq!(s.expanders, [Expander::LeastWaste]);
    }

    /// As Go's pflag: a flag given twice takes the last value; list flags
    /// collect every value.
    #[test]
    fn a_repeated_flag_takes_the_last_value() {
        let a = parse(&[
            "--cloud-provider=aws",
            "--cloud-provider=kwok",
            "--nodes=1:3:a",
            "--nodes=1:3:b",
            "--scan-interval=10s",
            "--scan-interval=2s",
        ])
        .unwrap();
        assert_eq!(a.cloud_provider, "kwok");
        assert_eq!(a.nodes, ["1:3:a", "1:3:b"]);
        assert_eq!(a.scan_interval, Duration::from_secs(2));
    }

    #[test]
    fn bad_flags_are_errors_naming_them() {
        let e = parse(&["--scale-down-unneeded-tim=10m"]).unwrap_err();
        assert!(e.contains("--scale-down-unneeded-tim"), "{e}");
        let e = parse(&["--scan-interval=10"]).unwrap_err();
        assert!(e.contains("--scan-interval"), "{e}");
        let a = parse(&["--nodes=1:x:ng", "--cloud-provider=aws"]).unwrap();
        assert!(a.settings().unwrap_err().contains("--nodes"));
        let a = parse(&["--expander=cheapest", "--nodes=1:3:ng"]).unwrap();
        assert!(a.settings().unwrap_err().contains("--expander"));
        let a = parse(&[]).unwrap();
        assert!(a.settings().unwrap_err().contains("no node group"));
        let e = parse(&["--cloud-provider=gce"]).unwrap_err();
        assert!(e.contains("gce"), "{e}");
    }
}
