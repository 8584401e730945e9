//! NodeClaim lifecycle: launch through the provider, register (link the
//! Node by providerID), initialize; empty-node TTL; termination through
//! the `karpenter.sh/termination` finalizer (cordon, evict, delete).

use outrigger_runtime::sync::LockExt;
use std::{sync::Arc, time::Duration};

use k8s_openapi::{api::core::v1::Node, apimachinery::pkg::apis::meta::v1::Condition};
use kube::{
    Api, ResourceExt,
    api::{EvictParams, Patch, PatchParams},
    runtime::{Controller, controller::Action, watcher},
};
use outrigger_karpenter_api::v1::NodeClaim;
use outrigger_runtime::conditions::{self, Desired, Status};
use outrigger_scheduling::model::{
    LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE,
};
use outrigger_scheduling_kube as pods;
use tokio_util::sync::CancellationToken;

use crate::{Ctx, metrics::labels, pools, provider::to_quantities};

pub const FINALIZER: &str = "karpenter.sh/termination";
const EMPTINESS: &str = "karpenter.sh/emptiness-timestamp";
const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("provider: {0}")]
    Provider(#[from] crate::provider::ProviderError),
    #[error("condition: {0}")]
    Condition(#[from] conditions::ConditionError),
}

pub async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctx);
    futures::StreamExt::for_each(controller, |_| async {}).await;
}

fn error_policy(claim: Arc<NodeClaim>, e: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(nodeclaim = %claim.name_any(), error = %e, "reconciling nodeclaim");
    Action::requeue(Duration::from_secs(2))
}

fn pool_of(ctx: &Ctx, claim: &NodeClaim) -> Option<pools::Pool> {
    let name = claim.labels().get(LABEL_NODEPOOL)?;
    let kind = claim
        .annotations()
        .get("karpenter.sh/nodepool-kind")
        .map(String::as_str);
    if kind == Some("provisioner") {
        let p = ctx.provisioners.find(|p| p.name_any() == *name)?;
        pools::from_provisioner(&p).ok()
    } else {
        let p = ctx.nodepools.find(|p| p.name_any() == *name)?;
        pools::from_nodepool(&p).ok()
    }
}

/// ("provisioner" or "nodepool", its name), for log fields.
fn pool_field(claim: &NodeClaim) -> (&'static str, String) {
    let name = claim
        .labels()
        .get(LABEL_NODEPOOL)
        .cloned()
        .unwrap_or_default();
    match claim
        .annotations()
        .get("karpenter.sh/nodepool-kind")
        .map(String::as_str)
    {
        Some("provisioner") => ("provisioner", name),
        _ => ("nodepool", name),
    }
}

async fn set_conditions(
    ctx: &Ctx,
    claim: &NodeClaim,
    set: &[(&str, Status, &str, String)],
) -> Result<(), Error> {
    // From the server, not the cache: a condition set a moment ago must
    // not be lost (one reconcile per claim runs at a time).
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let fresh = api.get_status(&claim.name_any()).await?;
    let mut conds: Vec<Condition> = fresh
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for (t, s, reason, message) in set {
        changed |= conditions::set(
            &mut conds,
            Desired {
                type_: t,
                status: *s,
                reason,
                message: message.clone(),
                observed_generation: claim.metadata.generation,
            },
            jiff::Timestamp::now(),
        )?;
    }
    if changed {
        conditions::patch_status(&api, &claim.name_any(), &conds).await?;
    }
    Ok(())
}

async fn reconcile(claim: Arc<NodeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let name = claim.name_any();
    if claim.metadata.deletion_timestamp.is_some() {
        return terminate(&ctx, &claim).await;
    }
    if !claim.finalizers().iter().any(|f| f == FINALIZER) {
        let mut f = claim.finalizers().to_vec();
        f.push(FINALIZER.to_string());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": f}})),
        )
        .await?;
    }
    let status = claim.status.clone().unwrap_or_default();
    let (kind, pool) = pool_field(&claim);
    // Launch.
    let Some(provider_id) = status.provider_id.clone() else {
        let mut node_labels = claim.labels().clone();
        node_labels.remove("karpenter.sh/nodepool-kind");
        // A launch whose status has not come back through the watch yet is
        // not launched twice.
        let earlier = ctx.launched.locked().get(&name).cloned();
        let relaunch = earlier.is_some();
        let result = match earlier {
            Some(l) => Ok(l),
            None => launch(&ctx, &claim, &node_labels, &pool).await,
        };
        let launched = match result {
            Ok(l) => {
                ctx.launched.locked().insert(name.clone(), l.clone());
                l
            }
            Err(e) => {
                set_conditions(
                    &ctx,
                    &claim,
                    &[("Launched", Status::False, "LaunchFailed", e.to_string())],
                )
                .await?;
                ctx.events
                    .warning(claim.as_ref(), "LaunchFailed", "Launch", e.to_string())
                    .await;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        };
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {
                LABEL_INSTANCE_TYPE: launched.instance_type,
                LABEL_ZONE: launched.zone,
                LABEL_CAPACITY_TYPE: launched.capacity_type,
            }}})),
        )
        .await?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {
                "providerID": launched.provider_id,
                "capacity": to_quantities(&launched.capacity),
                "allocatable": to_quantities(&launched.allocatable),
            }})),
        )
        .await?;
        set_conditions(
            &ctx,
            &claim,
            &[("Launched", Status::True, "Launched", String::new())],
        )
        .await?;
        if relaunch {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        ctx.metrics
            .launched
            .get_or_create(&labels(&[("nodepool", pool.as_str())]))
            .inc();
        tracing::info!(
            pool = %pool,
            kind,
            nodeclaim = %name,
            "Launched instance: {}, hostname: {}, type: {}, zone: {}, capacityType: {}",
            launched.instance_id,
            launched.node_name,
            launched.instance_type,
            launched.zone,
            launched.capacity_type
        );
        return Ok(Action::requeue(Duration::from_millis(500)));
    };
    ctx.launched.locked().remove(&name);
    // Register: the Node with our providerID.
    let node = ctx.nodes.find(|n| {
        n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id.as_str())
    });
    let Some(node) = node else {
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let node_name = node.name_any();
    if status.node_name.as_deref() != Some(node_name.as_str()) {
        // The claim's labels on the node (the pool's, nodepool,
        // provisioner-name), as Karpenter's registration does.
        let mut labels = claim.labels().clone();
        labels.remove("karpenter.sh/nodepool-kind");
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        nodes
            .patch(
                &node_name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"labels": labels}})),
            )
            .await?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"nodeName": node_name}})),
        )
        .await?;
        set_conditions(
            &ctx,
            &claim,
            &[("Registered", Status::True, "Registered", String::new())],
        )
        .await?;
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready && !conditions::is_true(&status.conditions, "Initialized") {
        set_conditions(
            &ctx,
            &claim,
            &[
                ("Initialized", Status::True, "Initialized", String::new()),
                ("Ready", Status::True, "Ready", String::new()),
            ],
        )
        .await?;
    }
    // Emptiness counts once the node has had a moment to take the pods
    // it was launched for.
    let settled = conditions::get(&status.conditions, "Initialized").is_some_and(|c| {
        c.status == "True"
            && jiff::Timestamp::now()
                .duration_since(c.last_transition_time.0)
                .as_secs_f64()
                >= 5.0
    });
    if ready
        && settled
        && let Some(p) = pool_of(&ctx, &claim)
    {
        emptiness(&ctx, &claim, &node, &p, kind).await?;
    }
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// The empty-node TTL: stamp an empty node, delete it once empty for the
/// pool's TTL, unstamp it if a pod arrives.
async fn emptiness(
    ctx: &Ctx,
    claim: &NodeClaim,
    node: &Node,
    pool: &pools::Pool,
    kind: &str,
) -> Result<(), Error> {
    let Some(ttl) = pool.empty_ttl else {
        return Ok(());
    };
    let node_name = node.name_any();
    let busy = ctx.pods.state().iter().any(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str())
            && pods::is_active(p)
            && !pods::is_daemon(p)
    });
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let stamp = node.annotations().get(EMPTINESS).cloned();
    match (busy, stamp) {
        (true, Some(_)) => {
            nodes
                .patch(
                    &node_name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        serde_json::json!({"metadata": {"annotations": {EMPTINESS: null}}}),
                    ),
                )
                .await?;
            tracing::info!(pool = %pool.model.name, kind, node = %node_name, "Removed emptiness TTL from node");
        }
        (false, None) => {
            let now = jiff::Timestamp::now();
            nodes
                .patch(
                    &node_name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"metadata": {"annotations": {EMPTINESS: now.to_string()}}})),
                )
                .await?;
            tracing::info!(pool = %pool.model.name, kind, node = %node_name, "Added TTL to empty node");
        }
        (false, Some(s)) => {
            let since: jiff::Timestamp = s.parse().unwrap_or_else(|_| jiff::Timestamp::now());
            let empty_for = jiff::Timestamp::now().duration_since(since);
            if empty_for.as_secs_f64() >= ttl.as_secs_f64() {
                tracing::info!(
                    pool = %pool.model.name,
                    kind,
                    node = %node_name,
                    "Triggering termination after {}s for empty node",
                    ttl.as_secs()
                );
                ctx.metrics
                    .terminated
                    .get_or_create(&labels(&[
                        ("nodepool", pool.model.name.as_str()),
                        ("reason", "empty"),
                    ]))
                    .inc();
                let api: Api<NodeClaim> = Api::all(ctx.client.clone());
                match api.delete(&claim.name_any(), &Default::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        (true, None) => {}
    }
    Ok(())
}

/// The finalizer: cordon and taint the node, evict its pods (PDBs decide),
/// delete the instance and the node, then let the claim go.
async fn terminate(ctx: &Ctx, claim: &NodeClaim) -> Result<Action, Error> {
    let (kind, pool) = pool_field(claim);
    let name = claim.name_any();
    // No longer capacity for the next batch, even if no batch ran since it
    // was created.
    ctx.created.locked().retain(|(_, c)| c.name_any() != name);
    let node_name = claim
        .status
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_else(|| name.clone());
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    if let Some(node) = ctx.nodes.find(|n| n.name_any() == node_name) {
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == DISRUPTED_TAINT));
        if !cordoned {
            let mut taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            taints.push(k8s_openapi::api::core::v1::Taint {
                key: DISRUPTED_TAINT.into(),
                effect: "NoSchedule".into(),
                value: None,
                time_added: None,
            });
            nodes
                .patch(
                    &node_name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        serde_json::json!({"spec": {"unschedulable": true, "taints": taints}}),
                    ),
                )
                .await?;
            tracing::info!(pool = %pool, kind, node = %node_name, "Cordoned node");
        }
        // Evict what is left (daemonset pods go with the node).
        let mut left = 0;
        for p in ctx.pods.state().iter().filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str())
                && pods::is_active(p)
                && !pods::is_daemon(p)
        }) {
            left += 1;
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let api: Api<k8s_openapi::api::core::v1::Pod> =
                Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
            match api.evict(&p.name_any(), &EvictParams::default()).await {
                Ok(_) => {}
                // 429: a PodDisruptionBudget says not now.
                Err(kube::Error::Api(e)) if e.code == 429 || e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        if left > 0 {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        delete(ctx, claim, &node_name).await?;
        tracing::info!(pool = %pool, kind, node = %node_name, "Deleted node");
    } else if claim
        .status
        .as_ref()
        .and_then(|s| s.provider_id.as_ref())
        .is_some()
    {
        // Launched but never registered: the instance still goes.
        delete(ctx, claim, &node_name).await?;
    }
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let f: Vec<String> = claim
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    match api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": f}})),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

/// Launches a claim through its node class's provider.
async fn launch(
    ctx: &Ctx,
    claim: &NodeClaim,
    labels: &outrigger_scheduling::model::Labels,
    nodepool: &str,
) -> Result<crate::provider::Launched, crate::provider::ProviderError> {
    use crate::provider::{ProviderError, Which, which};
    match which(&claim.spec.node_class_ref) {
        Which::Kwok => match &ctx.kwok {
            Some(k) => k.create(claim, labels).await,
            None => Err(ProviderError::NodeClass(
                "the kwok provider is not enabled".into(),
            )),
        },
        Which::Aws => match &ctx.aws {
            Some(a) => {
                let class =
                    aws_class(ctx, &claim.spec.node_class_ref).map_err(ProviderError::NodeClass)?;
                a.create(claim, &class, labels, nodepool).await
            }
            None => Err(ProviderError::NodeClass(
                "the aws provider is not enabled".into(),
            )),
        },
    }
}

async fn delete(
    ctx: &Ctx,
    claim: &NodeClaim,
    node_name: &str,
) -> Result<(), crate::provider::ProviderError> {
    use crate::provider::{Which, which};
    match which(&claim.spec.node_class_ref) {
        Which::Kwok => match &ctx.kwok {
            Some(k) => k.delete(node_name).await,
            None => Ok(()),
        },
        Which::Aws => {
            let pid = claim
                .status
                .as_ref()
                .and_then(|s| s.provider_id.clone())
                .unwrap_or_default();
            match &ctx.aws {
                Some(a) if !pid.is_empty() => a.delete(&pid, node_name).await,
                _ => Ok(()),
            }
        }
    }
}

fn string_map(v: Option<&serde_json::Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Where an AWS claim launches: a v1alpha5 Provisioner's inline provider
/// (subnetSelector, securityGroupSelector, instanceProfile, tags) or an
/// EC2NodeClass.
pub(crate) fn aws_class(
    ctx: &Ctx,
    r: &outrigger_karpenter_api::v1::NodeClassReference,
) -> Result<outrigger_aws_ec2::NodeClass, String> {
    match r.kind.as_str() {
        "Provisioner" => {
            let p = ctx
                .provisioners
                .find(|p| p.name_any() == r.name)
                .ok_or_else(|| format!("provisioner {} not found", r.name))?;
            let provider = p
                .spec
                .provider
                .as_ref()
                .ok_or_else(|| format!("provisioner {} has no provider", r.name))?;
            let subnets = string_map(provider.get("subnetSelector"));
            let groups = string_map(provider.get("securityGroupSelector"));
            if subnets.is_empty() || groups.is_empty() {
                return Err(format!(
                    "provisioner {}: provider.subnetSelector and provider.securityGroupSelector are required",
                    r.name
                ));
            }
            Ok(outrigger_aws_ec2::NodeClass {
                name: r.name.clone(),
                subnet_tags: vec![subnets],
                security_group_tags: vec![groups],
                instance_profile: provider
                    .get("instanceProfile")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                tags: string_map(provider.get("tags")),
                ..Default::default()
            })
        }
        "EC2NodeClass" => {
            let nc = ctx
                .ec2nodeclasses
                .find(|n| n.name_any() == r.name)
                .ok_or_else(|| format!("EC2NodeClass {} not found", r.name))?;
            let spec = &nc.spec;
            Ok(outrigger_aws_ec2::NodeClass {
                name: r.name.clone(),
                subnet_tags: spec
                    .subnet_selector_terms
                    .iter()
                    .filter(|t| !t.tags.is_empty())
                    .map(|t| t.tags.clone())
                    .collect(),
                subnet_ids: spec
                    .subnet_selector_terms
                    .iter()
                    .filter_map(|t| t.id.clone())
                    .collect(),
                security_group_tags: spec
                    .security_group_selector_terms
                    .iter()
                    .filter(|t| !t.tags.is_empty())
                    .map(|t| t.tags.clone())
                    .collect(),
                security_group_ids: spec
                    .security_group_selector_terms
                    .iter()
                    .filter_map(|t| t.id.clone())
                    .collect(),
                ami_id: spec.ami_selector_terms.iter().find_map(|t| t.id.clone()),
                instance_profile: spec.instance_profile.clone().or_else(|| spec.role.clone()),
                user_data: spec.user_data.clone(),
                tags: spec.tags.clone(),
            })
        }
        other => Err(format!(
            "node class kind {other} is not served (use a v1alpha5 Provisioner's inline provider or an EC2NodeClass)"
        )),
    }
}

/// Every 30 s: instances tagged for the cluster by the provisioner whose
/// NodeClaim is gone (for longer than a grace period) are terminated.
pub async fn garbage_collect(ctx: Arc<Ctx>, stop: CancellationToken) {
    let Some(aws) = &ctx.aws else {
        return;
    };
    // Since when each instance has had no claim, and each launched claim no
    // instance; acted on after a grace period (EC2's lists are eventually
    // consistent, and a launch may be between CreateFleet and its status).
    let mut orphans: std::collections::HashMap<String, std::time::Instant> = Default::default();
    let mut lost: std::collections::HashMap<String, std::time::Instant> = Default::default();
    const GRACE: Duration = Duration::from_secs(30);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        let instances = match aws.aws.cluster_instances().await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "listing the cluster's instances");
                continue;
            }
        };
        let claims = ctx.claims.state();
        let instance_of = |c: &NodeClaim| {
            c.status
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .and_then(|p| p.rsplit('/').next())
                .map(str::to_string)
        };
        // An instance is an orphan when no claim has it as its instance and
        // its own claim is gone or has launched another (a launch repeated
        // across a restart); a claim still launching may yet adopt it.
        let mut seen = std::collections::HashSet::new();
        for (id, claim) in &instances {
            if claims
                .iter()
                .any(|c| instance_of(c).as_deref() == Some(id.as_str()))
            {
                continue;
            }
            let adoptable = claims
                .iter()
                .any(|c| c.name_any() == *claim && instance_of(c).is_none());
            if adoptable {
                continue;
            }
            seen.insert(id.clone());
            let since = *orphans
                .entry(id.clone())
                .or_insert_with(std::time::Instant::now);
            if since.elapsed() >= GRACE {
                match aws.aws.terminate(id).await {
                    Ok(()) => {
                        tracing::info!(instance = %id, nodeclaim = %claim, "garbage collected an instance with no nodeclaim")
                    }
                    Err(e) => {
                        tracing::warn!(instance = %id, error = %e, "terminating an orphan instance")
                    }
                }
            }
        }
        orphans.retain(|id, _| seen.contains(id));
        // A launched AWS claim whose instance is no longer live (terminated
        // outside Outrigger, reclaimed spot) is deleted, and with it its node.
        let mut missing = std::collections::HashSet::new();
        let api: Api<NodeClaim> = Api::all(ctx.client.clone());
        for c in claims.iter().filter(|c| {
            c.metadata.deletion_timestamp.is_none()
                && crate::provider::which(&c.spec.node_class_ref) == crate::provider::Which::Aws
        }) {
            let Some(id) = instance_of(c) else { continue };
            if instances.iter().any(|(i, _)| *i == id) {
                continue;
            }
            let name = c.name_any();
            missing.insert(name.clone());
            let since = *lost
                .entry(name.clone())
                .or_insert_with(std::time::Instant::now);
            if since.elapsed() >= GRACE {
                tracing::info!(nodeclaim = %name, instance = %id, "garbage collecting nodeclaim with no cloudprovider representation");
                match api.delete(&name, &Default::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(nodeclaim = %name, error = %e, "deleting a nodeclaim whose instance is gone")
                    }
                }
            }
        }
        lost.retain(|n, _| missing.contains(n));
    }
}
