//! `outrigger provisioner`: Karpenter-compatible node provisioning.
//!
//! Pods kube-scheduler marks Unschedulable are batched (1 s idle, 10 s at
//! most), the cluster is snapshotted (nodes and their pods, claims still
//! launching, pools by weight, daemonsets, the provider's instance types)
//! and solved by `outrigger-scheduling`; each new claim becomes a NodeClaim,
//! which the lifecycle controller launches through the provider, links to
//! its Node by providerID, and marks Launched, Registered, Initialized and
//! Ready. Nodes of pools with an empty TTL are deleted once empty for it,
//! through the `karpenter.sh/termination` finalizer (cordon, evict, delete).

mod explain;
mod lifecycle;
mod metrics;
pub mod pools;
pub mod provider;
mod provision;
mod status;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Node, Pod},
};
use kube::{Api, Client, runtime::reflector::Store};
use outrigger_karpenter_api::{v1::NodeClaim, v1::NodePool, v1alpha5::Provisioner};
use outrigger_runtime::{Runtime, events::Events};

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

/// Watched state and what every task shares.
pub(crate) struct Ctx {
    pub client: Client,
    pub events: Events,
    pub kwok: Option<provider::Kwok>,
    pub aws: Option<provider::Aws>,
    pub args: Args,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub nodepools: Store<NodePool>,
    pub provisioners: Store<Provisioner>,
    pub claims: Store<NodeClaim>,
    pub daemonsets: Store<DaemonSet>,
    pub ec2nodeclasses: Store<outrigger_karpenter_api::nodeclass::EC2NodeClass>,
    pub kwoknodeclasses: Store<outrigger_karpenter_api::nodeclass::KWOKNodeClass>,
    pub metrics: metrics::Metrics,
    /// Claims created but not yet seen by the watch (so the next solve
    /// counts them).
    pub created: std::sync::Mutex<Vec<(std::time::Instant, NodeClaim)>>,
    /// Launches whose status the watch has not shown yet, by claim name.
    pub launched: std::sync::Mutex<std::collections::HashMap<String, provider::Launched>>,
    /// Pools whose limits kept pending pods from a node at the last solve:
    /// (kind, name) -> the limit and how many pods.
    pub limited: std::sync::Mutex<std::collections::BTreeMap<(String, String), String>>,
}

impl Ctx {
    /// Every provider's instance types in one list, and which pools may use
    /// which: (types, kwok's indices, aws's indices).
    pub fn catalogue(
        &self,
    ) -> (
        Vec<outrigger_scheduling::model::InstanceType>,
        std::collections::BTreeSet<usize>,
        std::collections::BTreeSet<usize>,
    ) {
        let mut all = vec![];
        let mut kwok = std::collections::BTreeSet::new();
        let mut aws = std::collections::BTreeSet::new();
        if let Some(k) = &self.kwok {
            for t in k.instance_types() {
                kwok.insert(all.len());
                all.push(t.clone());
            }
        }
        if let Some(a) = &self.aws {
            for t in a.instance_types().iter() {
                aws.insert(all.len());
                all.push(t.clone());
            }
        }
        (all, kwok, aws)
    }
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
    let pods = outrigger_runtime::watch::store(Api::<Pod>::all(client.clone()), stop.clone());
    let nodes = outrigger_runtime::watch::store(Api::<Node>::all(client.clone()), stop.clone());
    let nodepools =
        outrigger_runtime::watch::store(Api::<NodePool>::all(client.clone()), stop.clone());
    let provisioners =
        outrigger_runtime::watch::store(Api::<Provisioner>::all(client.clone()), stop.clone());
    let claims =
        outrigger_runtime::watch::store(Api::<NodeClaim>::all(client.clone()), stop.clone());
    let daemonsets =
        outrigger_runtime::watch::store(Api::<DaemonSet>::all(client.clone()), stop.clone());
    let ec2nodeclasses = outrigger_runtime::watch::store(
        Api::<outrigger_karpenter_api::nodeclass::EC2NodeClass>::all(client.clone()),
        stop.clone(),
    );
    let kwoknodeclasses = outrigger_runtime::watch::store(
        Api::<outrigger_karpenter_api::nodeclass::KWOKNodeClass>::all(client.clone()),
        stop.clone(),
    );
    let synced = async {
        tokio::try_join!(
            pods.wait_until_ready(),
            nodes.wait_until_ready(),
            nodepools.wait_until_ready(),
            provisioners.wait_until_ready(),
            claims.wait_until_ready(),
            daemonsets.wait_until_ready(),
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
    let kwok = args
        .providers
        .contains(&ProviderKind::Kwok)
        .then(|| provider::Kwok::new(client.clone(), &args.kwok_zones, args.kwok_kubelet_port));
    let aws = if args.providers.contains(&ProviderKind::Aws) {
        let aws_check = rt
            .admin
            .ready
            .check("aws", "instance types not discovered yet");
        loop {
            let found = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = provider::Aws::new(client.clone(), &args.cluster_name) => r,
            };
            match found {
                Ok(a) => {
                    aws_check.ok();
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
    let ctx = Arc::new(Ctx {
        client,
        events: rt.events.clone(),
        kwok,
        aws,
        args,
        pods,
        nodes,
        nodepools,
        provisioners,
        claims,
        daemonsets,
        ec2nodeclasses,
        kwoknodeclasses,
        metrics,
        created: std::sync::Mutex::new(vec![]),
        launched: std::sync::Mutex::new(Default::default()),
        limited: std::sync::Mutex::new(Default::default()),
    });
    if stop.is_cancelled() {
        return Ok(());
    }
    tracing::info!(providers = ?ctx.args.providers, "provisioner started");
    let prov = tokio::spawn(provision::run(ctx.clone(), stop.clone()));
    let life = tokio::spawn(lifecycle::run(ctx.clone(), stop.clone()));
    let gc = tokio::spawn(lifecycle::garbage_collect(ctx.clone(), stop.clone()));
    let st = tokio::spawn(status::run(ctx.clone(), stop.clone()));
    let _ = prov.await;
    let _ = st.await;
    let _ = life.await;
    let _ = gc.await;
    Ok(())
}
