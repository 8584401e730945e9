//! `outrigger provisioner`: Karpenter-compatible node provisioning.
//!
//! Pods kube-scheduler marks Unschedulable are batched (1 s idle, 10 s at
//! most), the cluster is snapshotted (nodes and their pods, claims still
//! launching, pools by weight, daemonsets, the providers' instance types)
//! and solved by `outrigger-scheduling`; each new claim becomes a NodeClaim,
//! which the lifecycle controller launches through its node class's cloud
//! provider ([`cloud`]), links to its Node by providerID, and marks
//! Launched, Registered, Initialized and Ready. Nodes of pools with an
//! empty TTL are deleted once empty for it, through the
//! `karpenter.sh/termination` finalizer (cordon, evict, delete). Claims
//! past `expireAfter` are deleted; the disruption controller
//! ([`disruption`]) consolidates the other pools' nodes within their
//! budgets.
//!
//! One controller (`outrigger_runtime::Controller`) runs four kinds of
//! keys: each NodeClaim's lifecycle, the provisioning batch, pool and node
//! class status, and garbage collection. Watches map changes to keys; every
//! write goes through [`cluster::Cluster`], so the logic runs in unit tests
//! against an in-memory cluster and the fake cloud.

pub mod cloud;
pub mod cluster;
pub mod disruption;
mod explain;
mod gc;
pub mod interruption;
mod lifecycle;
#[cfg(test)]
mod memory;
mod metrics;
pub mod pools;
mod provision;
mod status;
#[cfg(test)]
mod testing;
pub mod upstream;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::{Api, ResourceExt, runtime::reflector::Store};
use outrigger_karpenter_api::{
    nodeclass::{EC2NodeClass, KWOKNodeClass},
    v1::{NodeClaim, NodePool},
    v1alpha5::Provisioner,
};
use outrigger_runtime::{
    Action, Controller, KeyKind, Runtime, queue::Queue, watch::store_with_changes,
};
use tokio::sync::Notify;

use crate::{
    cloud::{CloudProvider, Providers},
    cluster::Cluster,
};

pub use disruption::why::{WhyKeptArgs, why_kept};
pub use explain::{ExplainArgs, ExplainError, why_pending};

/// Flags of `outrigger provisioner` (Karpenter's settings where they exist).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The cluster's name (tags, discovery).
    #[arg(long, env = "CLUSTER_NAME", default_value = "demo")]
    pub cluster_name: String,
    /// Close a batch of pending pods after this long without a new one.
    #[arg(long, env = "BATCH_IDLE_DURATION", default_value = "1s", value_parser = parse_duration)]
    pub batch_idle_duration: Duration,
    /// Close a batch after this long in any case.
    #[arg(long, env = "BATCH_MAX_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub batch_max_duration: Duration,
    /// Where nodes come from: `kwok` for pools whose node class is a
    /// KWOKNodeClass, `aws` for the others (EC2NodeClass, or a v1alpha5
    /// Provisioner's inline provider). Comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "aws")]
    pub providers: Vec<ProviderKind>,
    /// Zones of the kwok provider's nodes.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ap-southeast-1a,ap-southeast-1b,ap-southeast-1c"
    )]
    pub kwok_zones: Vec<String>,
    /// The kubelet port kwok serves for its nodes.
    #[arg(long, default_value_t = 10250)]
    pub kwok_kubelet_port: u16,
    /// The SQS queue (name or URL) EventBridge sends the cluster's
    /// interruption events to: spot interruption warnings, scheduled
    /// changes, instance state changes, rebalance recommendations. Unset:
    /// interruption handling is off (Karpenter's setting).
    #[arg(long, env = "INTERRUPTION_QUEUE")]
    pub interruption_queue: Option<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Kwok,
    Aws,
}

use outrigger_runtime::parse_duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

impl outrigger_runtime::ErrorKind for Error {
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(e) => outrigger_runtime::ErrorKind::kind(e),
        }
    }
}

/// What the controller works on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    /// One NodeClaim's lifecycle.
    Claim(String),
    /// A batch of pending pods.
    Provision,
    /// Pool and node class status.
    Status,
    /// Instances without claims, claims without instances.
    GarbageCollect,
    /// The disruption controller: one decision at a time.
    Disruption,
}

impl KeyKind for Key {
    fn kind(&self) -> &'static str {
        match self {
            Key::Claim(_) => "nodeclaim",
            Key::Provision => "provisioning",
            Key::Status => "status",
            Key::GarbageCollect => "garbagecollection",
            Key::Disruption => "disruption",
        }
    }
}

/// Watched state and what every controller shares.
pub(crate) struct Ctx {
    /// Every write to the cluster.
    pub cluster: Arc<dyn Cluster>,
    pub providers: Providers,
    /// The AWS provider, for the EC2NodeClass status (its subnets and
    /// security groups).
    pub aws: Option<Arc<cloud::aws::Aws>>,
    pub args: Args,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub nodepools: Store<NodePool>,
    pub provisioners: Store<Provisioner>,
    pub claims: Store<NodeClaim>,
    pub daemonsets: Store<DaemonSet>,
    pub pdbs: Store<PodDisruptionBudget>,
    pub ec2nodeclasses: Store<EC2NodeClass>,
    pub kwoknodeclasses: Store<KWOKNodeClass>,
    pub metrics: metrics::Metrics,
    /// Where keys go (the watches add to it too).
    pub queue: Arc<Queue<Key>>,
    /// Woken by every pod (and pool) change: the batch window watches it.
    pub pod_changes: Notify,
    /// Claims created but not yet seen by the watch (so the next solve
    /// counts them).
    pub created: Mutex<Vec<(std::time::Instant, NodeClaim)>>,
    /// Launches whose status the watch has not shown yet, by claim name.
    pub launched: Mutex<HashMap<String, cloud::Launched>>,
    /// Pools whose limits kept pending pods from a node at the last solve:
    /// (kind, name) -> the limit and how many pods.
    pub limited: Mutex<BTreeMap<(String, String), String>>,
    /// "Waiting for unschedulable pods" was logged since the last batch.
    pub idle_logged: std::sync::atomic::AtomicBool,
    /// The batcher's memory: the pods of the last batch and when it ran.
    pub last_batch: Mutex<Option<(std::collections::BTreeSet<String>, std::time::Instant)>>,
    /// Garbage collection's memory, per provider.
    pub gc: Mutex<BTreeMap<usize, gc::State>>,
    /// What each AWS node class's selectors found.
    pub discovered: Mutex<status::Found>,
    /// The disruption controller's command in flight and memory.
    pub disruption: Mutex<disruption::State>,
    /// Nodes a provisioning pass planned pending pods onto, and when.
    pub nominated: Mutex<HashMap<String, std::time::Instant>>,
    /// Each claim's pods when last seen (their changes are pod events).
    pub pod_sets: Mutex<HashMap<String, u64>>,
}

impl Ctx {
    /// The claim whose Node this is (by providerID, or the name recorded
    /// at registration).
    fn claim_of_node(&self, n: &Node) -> Option<String> {
        let pid = n.spec.as_ref().and_then(|s| s.provider_id.clone());
        let name = n.name_any();
        self.claims
            .find(|c| {
                let s = c.status.as_ref();
                (pid.is_some() && s.and_then(|s| s.provider_id.as_ref()) == pid.as_ref())
                    || s.and_then(|s| s.node_name.as_deref()) == Some(name.as_str())
            })
            .map(|c| c.name_any())
    }

    /// The claim of the node a pod is on.
    fn claim_of_pod(&self, p: &Pod) -> Option<String> {
        let node = p.spec.as_ref()?.node_name.as_deref()?;
        self.claims
            .find(|c| c.status.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .map(|c| c.name_any())
    }
}

/// Runs one key.
async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Action, lifecycle::Error> {
    match key {
        Key::Claim(name) => lifecycle::reconcile(ctx, name).await,
        Key::Provision => Ok(provision::run(ctx).await),
        Key::Status => Ok(status::run(ctx).await),
        Key::GarbageCollect => gc::run(ctx).await,
        Key::Disruption => disruption::run(ctx).await,
    }
}

/// Forwards each change of a watched kind to `f`.
fn forward<K: Send + Sync + 'static>(
    ctx: Arc<Ctx>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Arc<K>>,
    f: fn(&Ctx, &K),
) {
    tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            f(&ctx, &o);
        }
    });
}

/// Runs the provisioner until `rt.shutdown`.
pub async fn run(rt: Runtime, args: Args) -> Result<(), Error> {
    let ready = rt
        .admin
        .ready
        .check("caches", "watch caches not synced yet");
    tracing::debug!("starting watches");
    let client = rt.client.clone();
    let stop = rt.shutdown.clone();
    let (pods, pods_rx) = store_with_changes(Api::<Pod>::all(client.clone()), stop.clone());
    let (nodes, nodes_rx) = store_with_changes(Api::<Node>::all(client.clone()), stop.clone());
    let (nodepools, nodepools_rx) =
        store_with_changes(Api::<NodePool>::all(client.clone()), stop.clone());
    let (provisioners, provisioners_rx) =
        store_with_changes(Api::<Provisioner>::all(client.clone()), stop.clone());
    let (claims, claims_rx) =
        store_with_changes(Api::<NodeClaim>::all(client.clone()), stop.clone());
    let daemonsets =
        outrigger_runtime::watch::store(Api::<DaemonSet>::all(client.clone()), stop.clone());
    let (pdbs, pdbs_rx) = store_with_changes(
        Api::<PodDisruptionBudget>::all(client.clone()),
        stop.clone(),
    );
    let (ec2nodeclasses, ec2_rx) =
        store_with_changes(Api::<EC2NodeClass>::all(client.clone()), stop.clone());
    let (kwoknodeclasses, kwok_rx) =
        store_with_changes(Api::<KWOKNodeClass>::all(client.clone()), stop.clone());
    let synced = async {
        tokio::try_join!(
            pods.wait_until_ready(),
            nodes.wait_until_ready(),
            nodepools.wait_until_ready(),
            provisioners.wait_until_ready(),
            claims.wait_until_ready(),
            daemonsets.wait_until_ready(),
            pdbs.wait_until_ready(),
            ec2nodeclasses.wait_until_ready(),
            kwoknodeclasses.wait_until_ready(),
        )
    };
    tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = synced => if r.is_err() {
            tracing::warn!("a watch cache closed before it synced");
            return Ok(());
        },
    }
    ready.ok();
    let metrics = metrics::Metrics::register(&rt.admin);
    let mut providers: Vec<Arc<dyn CloudProvider>> = vec![];
    if args.providers.contains(&ProviderKind::Kwok) {
        providers.push(Arc::new(cloud::kwok::Kwok::new(
            client.clone(),
            &args.kwok_zones,
            args.kwok_kubelet_port,
            kwoknodeclasses.clone(),
            nodes.clone(),
        )));
    }
    let aws = if args.providers.contains(&ProviderKind::Aws) {
        let aws_check = rt
            .admin
            .ready
            .check("aws", "instance types not discovered yet");
        loop {
            let found = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = cloud::aws::Aws::new(
                    client.clone(),
                    &args.cluster_name,
                    provisioners.clone(),
                    ec2nodeclasses.clone(),
                ) => r,
            };
            match found {
                Ok(a) => {
                    aws_check.ok();
                    let a = Arc::new(a);
                    providers.push(a.clone());
                    break Some(a);
                }
                Err(e) => {
                    aws_check.fail(e.to_string());
                    tracing::warn!(error = %e, "discovering instance types; retrying in 5s");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    } else {
        None
    };
    let controller = Controller::<Key>::new("provisioner", "outrigger_provisioner", &rt.admin);
    let ctx = Arc::new(Ctx {
        cluster: Arc::new(cluster::Kube::new(client, rt.events.clone())),
        providers: Providers::new(providers),
        aws,
        args,
        pods,
        nodes,
        nodepools,
        provisioners,
        claims,
        daemonsets,
        pdbs,
        ec2nodeclasses,
        kwoknodeclasses,
        metrics,
        queue: controller.queue(),
        pod_changes: Notify::new(),
        created: Mutex::new(vec![]),
        launched: Mutex::new(Default::default()),
        limited: Mutex::new(Default::default()),
        idle_logged: Default::default(),
        last_batch: Mutex::new(None),
        gc: Mutex::new(Default::default()),
        discovered: Mutex::new(Default::default()),
        disruption: Mutex::new(Default::default()),
        nominated: Mutex::new(Default::default()),
        pod_sets: Mutex::new(Default::default()),
    });
    if stop.is_cancelled() {
        return Ok(());
    }
    forward(ctx.clone(), claims_rx, |ctx, c: &NodeClaim| {
        ctx.queue.add(Key::Claim(c.name_any()));
        ctx.queue.add(Key::Status);
        ctx.queue.add(Key::Disruption);
        // The pods of a node being deleted are provisioned for now.
        if c.metadata.deletion_timestamp.is_some() {
            ctx.pod_changes.notify_one();
            ctx.queue.add(Key::Provision);
        }
    });
    forward(ctx.clone(), nodes_rx, |ctx, n: &Node| {
        if let Some(c) = ctx.claim_of_node(n) {
            ctx.queue.add(Key::Claim(c));
        }
        ctx.queue.add(Key::Disruption);
    });
    forward(ctx.clone(), pdbs_rx, |ctx, _: &PodDisruptionBudget| {
        ctx.queue.add(Key::Disruption);
    });
    forward(ctx.clone(), pods_rx, |ctx, p: &Pod| {
        ctx.pod_changes.notify_one();
        if outrigger_scheduling_kube::is_provisionable(p) {
            ctx.queue.add(Key::Provision);
        }
        if let Some(c) = ctx.claim_of_pod(p) {
            ctx.queue.add(Key::Claim(c));
        }
        if disruption::relevant(p) {
            ctx.queue.add(Key::Disruption);
        }
    });
    fn pools_changed<K>(ctx: &Ctx, _: &K) {
        ctx.pod_changes.notify_one();
        ctx.queue.add(Key::Provision);
        ctx.queue.add(Key::Status);
        ctx.queue.add(Key::Disruption);
    }
    forward(ctx.clone(), nodepools_rx, |ctx, np: &NodePool| {
        pools_changed(ctx, np);
        // Its claims may have drifted.
        let name = np.name_any();
        for c in ctx.claims.state() {
            if c.labels().get(outrigger_scheduling::model::LABEL_NODEPOOL) == Some(&name) {
                ctx.queue.add(Key::Claim(c.name_any()));
            }
        }
    });
    forward(ctx.clone(), provisioners_rx, pools_changed::<Provisioner>);
    forward(ctx.clone(), ec2_rx, pools_changed::<EC2NodeClass>);
    forward(ctx.clone(), kwok_rx, pools_changed::<KWOKNodeClass>);
    ctx.queue.add(Key::Provision);
    ctx.queue.add(Key::Status);
    ctx.queue.add_after(Key::GarbageCollect, gc::PERIOD);
    ctx.queue.add(Key::Disruption);
    if let Some(name) = ctx.args.interruption_queue.clone() {
        tokio::spawn(watch_interruption_queue(ctx.clone(), name, stop.clone()));
    }
    tracing::info!(providers = ?ctx.providers.names(), "provisioner started");
    let worker_ctx = ctx.clone();
    controller
        .run(WORKERS, stop, move |key| {
            let ctx = worker_ctx.clone();
            async move { reconcile(&ctx, &key).await }
        })
        .await;
    Ok(())
}

/// Finds the interruption queue (retrying until it is there) and polls it.
async fn watch_interruption_queue(
    ctx: Arc<Ctx>,
    name: String,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let found = tokio::select! {
            _ = stop.cancelled() => return,
            q = outrigger_aws_sqs::Queue::new(&name) => q,
        };
        match found {
            Ok(q) => {
                let q: Arc<dyn interruption::MessageQueue> = Arc::new(interruption::Sqs(q));
                return interruption::run(ctx, q, stop).await;
            }
            Err(e) => {
                tracing::error!(queue = %name, error = %e, "finding the interruption queue; retrying in 10s");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        }
    }
}

/// Keys reconciled at once (launches wait on the cloud; the batch window
/// holds one worker while it is open).
const WORKERS: usize = 16;
