//! `outrigger why-pending`: why is this pod pending, in the solver's words.
//!
//! Lists what the provisioner watches (pods, nodes, NodeClaims, pools,
//! daemonsets), builds the same snapshot it builds, solves, and tells where
//! the pod would go (a node, a NodeClaim being launched, a new node from a
//! pool) or why it cannot go anywhere: kube-scheduler's verdict on the
//! existing nodes and one reason per pool. Pools the provisioner reports as
//! not ready (their status) are named and left out, as it leaves them out.

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Event, Node, Pod},
};
use kube::{Api, Client, ResourceExt, api::ListParams};
use outrigger_karpenter_api::{
    nodeclass::{EC2NodeClass, KWOKNodeClass},
    v1::{NodeClaim, NodePool},
    v1alpha5::Provisioner,
};
use outrigger_runtime::conditions;
use outrigger_scheduling::{
    model::Target,
    solver::{claim_line, solve},
};

use crate::{
    ProviderKind,
    cloud::{CloudProvider, Providers},
    pools::{self, Pool},
    provision::{Snapshot, World, snapshot},
};

/// Flags of `outrigger why-pending`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    /// The pod (its name).
    pub pod: String,
    /// Its namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// The providers whose instance types to consider, as the provisioner's
    /// `--providers`.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "kwok,aws")]
    pub providers: Vec<ProviderKind>,
    /// The cluster's name (AWS discovery), as the provisioner's.
    #[arg(long, env = "CLUSTER_NAME", default_value = "demo")]
    pub cluster_name: String,
    /// Zones of the kwok provider's nodes, as the provisioner's.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ap-southeast-1a,ap-southeast-1b,ap-southeast-1c"
    )]
    pub kwok_zones: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("pod {0} not found")]
    NotFound(String),
}

async fn list<K>(client: &Client) -> Result<Vec<Arc<K>>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// A store holding these objects (the listed state, for the providers).
fn store_of<K>(items: Vec<Arc<K>>) -> kube::runtime::reflector::Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let (reader, mut writer) = kube::runtime::reflector::store();
    for o in items {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(o.as_ref().clone()));
    }
    reader
}

/// A pool's status says it cannot launch: why.
fn not_ready(
    conditions_: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Option<String> {
    conditions::get(conditions_, "Ready")
        .filter(|c| c.status == "False")
        .map(|_| {
            ["ValidationSucceeded", "NodeClassReady"]
                .iter()
                .filter_map(|t| conditions::get(conditions_, t))
                .filter(|c| c.status == "False")
                .map(|c| c.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// The answer, as text for a terminal.
pub async fn why_pending(client: Client, args: &ExplainArgs) -> Result<String, ExplainError> {
    let key = format!("{}/{}", args.namespace, args.pod);
    let pod = Api::<Pod>::namespaced(client.clone(), &args.namespace)
        .get_opt(&args.pod)
        .await?
        .ok_or_else(|| ExplainError::NotFound(key.clone()))?;
    let mut out = String::new();
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        let _ = writeln!(out, "pod {key} is {phase} on node {node}: not pending.");
        return Ok(out);
    }
    let _ = writeln!(out, "pod {key}: {phase}");
    let scheduled = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    match scheduled {
        Some(c) if c.reason.as_deref() == Some("Unschedulable") => {
            let _ = writeln!(
                out,
                "kube-scheduler: {}",
                c.message.as_deref().unwrap_or("unschedulable")
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "kube-scheduler: has not marked it unschedulable (yet); the provisioner only acts on pods it has"
            );
        }
    }
    let (world, left_out, notes) = gather(
        &client,
        &args.providers,
        &args.cluster_name,
        &args.kwok_zones,
        pod.metadata.uid.clone(),
    )
    .await?;
    for n in &notes {
        let _ = writeln!(out, "{n}");
    }
    let Snapshot {
        problem,
        batch,
        unreadable,
    } = snapshot(&world);
    if let Some((_, e)) = unreadable.iter().find(|(p, _)| p.uid() == pod.uid()) {
        let _ = writeln!(out, "provisioner: cannot read the pod: {e}");
        return Ok(out);
    }
    let Some(me) = batch.iter().position(|p| p.uid() == pod.uid()) else {
        let _ = writeln!(out, "provisioner: the pod is not pending");
        return Ok(out);
    };
    let plan = solve(&problem);
    let placed = plan.placements.iter().find(|(p, _)| *p == me);
    match placed {
        Some((_, Target::Node(n))) => {
            let node = &problem.nodes[*n];
            if node.in_flight {
                let _ = writeln!(
                    out,
                    "provisioner: fits on nodeclaim/{}, which is being launched; the pod waits for it",
                    node.name
                );
            } else {
                let _ = writeln!(
                    out,
                    "provisioner: fits on node {} as things stand now; kube-scheduler should bind it at its next attempt",
                    node.name
                );
            }
        }
        Some((_, Target::Claim(c))) => {
            let claim = &plan.claims[*c];
            let pool = &world.pools[claim.pool];
            let _ = writeln!(
                out,
                "provisioner: a new node from {} \"{}\": {}",
                pool.kind(),
                pool.model.name,
                claim_line(&problem, claim)
            );
        }
        None => {
            let why = plan
                .unplaced
                .iter()
                .find(|u| u.pod == me)
                .map(|u| u.reason.clone())
                .unwrap_or_else(|| "not placed".into());
            let _ = writeln!(out, "provisioner: cannot place it: {why}");
        }
    }
    for (_, what) in plan.relaxed.iter().filter(|(p, _)| *p == me) {
        let _ = writeln!(out, "  gave up the preference: {what}");
    }
    for l in &left_out {
        let _ = writeln!(out, "  left out: {l}");
    }
    // What was said about it lately.
    let events = Api::<Event>::namespaced(client.clone(), &args.namespace)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={},involvedObject.kind=Pod",
            args.pod
        )))
        .await?;
    let items: Vec<&Event> = events
        .items
        .iter()
        .filter(|e| e.involved_object.uid == pod.metadata.uid)
        .collect();
    write_recent_events(&mut out, items);
    Ok(out)
}

/// What the provisioner watches, listed now, as it would take it: the
/// pools (those it leaves out, and why), the providers' instance types,
/// nodes, claims, pods, daemonsets; notes for what could not be had.
pub(crate) async fn gather(
    client: &Client,
    providers_: &[ProviderKind],
    cluster_name: &str,
    kwok_zones: &[String],
    also: Option<String>,
) -> Result<(World, Vec<String>, Vec<String>), kube::Error> {
    let mut notes: Vec<String> = vec![];
    let mut pools_: Vec<Pool> = vec![];
    let mut left_out: Vec<String> = vec![];
    for np in list::<NodePool>(client).await? {
        let status = np.status.clone().unwrap_or_default();
        match pools::from_nodepool(&np) {
            Ok(p) => match not_ready(&status.conditions) {
                None => pools_.push(p),
                Some(why) => left_out.push(format!("nodepool \"{}\": {why}", np.name_any())),
            },
            Err(errs) => left_out.push(format!(
                "nodepool \"{}\" is invalid: {}",
                np.name_any(),
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
    for pr in list::<Provisioner>(client).await? {
        let status = pr.status.clone().unwrap_or_default();
        match pools::from_provisioner(&pr) {
            Ok(p) => match not_ready(&status.conditions) {
                None => pools_.push(p),
                Some(why) => left_out.push(format!("provisioner \"{}\": {why}", pr.name_any())),
            },
            Err(errs) => left_out.push(format!(
                "provisioner \"{}\" is invalid: {}",
                pr.name_any(),
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
    // Instance types of the providers the pools use (the nodes and node
    // classes as listed now stand in for the provisioner's watches).
    let nodes = list::<Node>(client).await?;
    let mut providers: Vec<Arc<dyn CloudProvider>> = vec![];
    let kwok_class = |p: &Pool| p.node_class.kind == crate::cloud::kwok::KIND;
    if providers_.contains(&ProviderKind::Kwok) && pools_.iter().any(kwok_class) {
        providers.push(Arc::new(crate::cloud::kwok::Kwok::new(
            client.clone(),
            kwok_zones,
            10250,
            store_of(list::<KWOKNodeClass>(client).await?),
            store_of(nodes.clone()),
        )));
    }
    if providers_.contains(&ProviderKind::Aws) && pools_.iter().any(|p| !kwok_class(p)) {
        match crate::cloud::aws::Aws::new(
            client.clone(),
            cluster_name,
            store_of(list::<Provisioner>(client).await?),
            store_of(list::<EC2NodeClass>(client).await?),
        )
        .await
        {
            Ok(a) => providers.push(Arc::new(a)),
            Err(e) => {
                notes.push(format!(
                    "note: AWS instance types unavailable ({e}); AWS pools are judged without them"
                ));
            }
        }
    }
    let catalogue = Providers::new(providers).catalogue();
    let claims: BTreeMap<String, NodeClaim> = list::<NodeClaim>(client)
        .await?
        .iter()
        .map(|c| (c.name_any(), c.as_ref().clone()))
        .collect();
    let world = World {
        pods: list::<Pod>(client).await?,
        nodes,
        claims,
        daemonsets: list::<DaemonSet>(client).await?,
        pools: pools_,
        catalogue,
        also,
    };
    Ok((world, left_out, notes))
}

/// The last five Events, oldest first, as `  Type Reason (component): message`.
pub(crate) fn write_recent_events(out: &mut String, mut items: Vec<&Event>) {
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "events:");
    for e in items.iter().rev().take(5).rev() {
        let _ = writeln!(
            out,
            "  {} {} ({}): {}",
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.reporting_component
                .as_deref()
                .filter(|s| !s.is_empty())
                .or(e.source.as_ref().and_then(|s| s.component.as_deref()))
                .unwrap_or(""),
            e.message.as_deref().unwrap_or("")
        );
    }
}
