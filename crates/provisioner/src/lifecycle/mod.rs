//! The NodeClaim lifecycle, one claim per reconcile: launch through its
//! node class's provider, register (link the Node by providerID, sync its
//! labels), initialize (Ready node, startup and ephemeral taints gone),
//! the empty-node TTL, and termination
//! through the `karpenter.sh/termination` finalizer (taint and cordon the
//! node, evict its pods through the Eviction API so PDBs decide, delete
//! the instance, let the claim go).
//!
//! Keys come from watches (the claim, its Node, the pods on it); a
//! reconcile asks to run again only for what no watch announces (a TTL
//! running out, a node settling, an eviction a PDB refused).

#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::{
    api::core::v1::{Node, Taint},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::ResourceExt;
use outrigger_karpenter_api::v1::NodeClaim;
use outrigger_runtime::{
    Action, ErrorKind,
    conditions::{self, Desired, Status},
    sync::LockExt,
};
use outrigger_scheduling::model::{
    LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE,
};
use outrigger_scheduling_kube::{self as pods, to_quantities};

use crate::{
    Ctx,
    cloud::{CloudError, Launched},
    cluster::{Eviction, reference},
    metrics::labels,
    pools, upstream,
};

/// How long an initialized node has to take the pods it was launched for
/// before emptiness counts.
const SETTLE: Duration = Duration::from_secs(5);
/// A launched claim whose Node has not registered is looked at again this
/// often (the Node watch usually wakes it first).
const REGISTRATION_CHECK: Duration = Duration::from_secs(10);
/// A termination waiting on evictions a PDB refused tries again after this.
const EVICTION_RETRY: Duration = Duration::from_secs(2);
/// Pod events closer than this to the last are not recorded (Karpenter's
/// `dedupeTimeout`).
const POD_EVENT_DEDUPE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("provider: {0}")]
    Cloud(#[from] CloudError),
    #[error("condition: {0}")]
    Condition(#[from] conditions::ConditionError),
}

impl ErrorKind for Error {
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(e) => e.kind(),
            Error::Cloud(e) => e.kind(),
            Error::Condition(_) => "InvalidCondition",
        }
    }
}

fn pool_of(ctx: &Ctx, claim: &NodeClaim) -> Option<pools::Pool> {
    let name = claim.labels().get(LABEL_NODEPOOL)?;
    if claim
        .annotations()
        .get(upstream::POOL_KIND)
        .map(String::as_str)
        == Some("provisioner")
    {
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
        .get(upstream::POOL_KIND)
        .map(String::as_str)
    {
        Some("provisioner") => ("provisioner", name),
        _ => ("nodepool", name),
    }
}

/// Sets conditions on the freshest copy of the claim (one set a moment
/// ago is not lost: one reconcile per claim runs at a time).
async fn set_conditions(
    ctx: &Ctx,
    claim: &NodeClaim,
    set: &[(&str, Status, &str, String)],
) -> Result<(), Error> {
    let Some(fresh) = ctx.cluster.get_claim(&claim.name_any()).await? else {
        return Ok(());
    };
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
        ctx.cluster
            .patch_claim_status(
                &claim.name_any(),
                serde_json::json!({"status": {"conditions": conds}}),
            )
            .await?;
    }
    Ok(())
}

/// Sets one condition on the claim (a no-op when it already says so).
pub(crate) async fn set_condition(
    ctx: &Ctx,
    claim: &NodeClaim,
    type_: &str,
    status: Status,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    set_conditions(ctx, claim, &[(type_, status, reason, message)]).await
}

/// Removes a condition from the claim (Karpenter clears `Consolidatable`
/// and `DisruptionReason` rather than setting them False).
pub(crate) async fn clear_condition(
    ctx: &Ctx,
    claim: &NodeClaim,
    type_: &str,
) -> Result<(), Error> {
    let Some(fresh) = ctx.cluster.get_claim(&claim.name_any()).await? else {
        return Ok(());
    };
    let conds: Vec<Condition> = fresh
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if !conds.iter().any(|c| c.type_ == type_) {
        return Ok(());
    }
    let kept: Vec<Condition> = conds.into_iter().filter(|c| c.type_ != type_).collect();
    ctx.cluster
        .patch_claim_status(
            &claim.name_any(),
            serde_json::json!({"status": {"conditions": kept}}),
        )
        .await?;
    Ok(())
}

/// The Node of a claim: the one with its providerID.
fn node_of(ctx: &Ctx, provider_id: &str) -> Option<std::sync::Arc<Node>> {
    ctx.nodes
        .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
}

/// Whether a non-daemonset pod is on the node (or on its way off it).
fn busy(ctx: &Ctx, node: &str) -> bool {
    ctx.pods.state().iter().any(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
            && pods::is_active(p)
            && !pods::is_daemon(p)
    })
}

/// One claim, one step of its lifecycle.
pub async fn reconcile(ctx: &Ctx, name: &str) -> Result<Action, Error> {
    let Some(claim) = ctx
        .claims
        .get(&kube::runtime::reflector::ObjectRef::new(name))
    else {
        ctx.launched.locked().remove(name);
        return Ok(Action::Done);
    };
    if claim.metadata.deletion_timestamp.is_some() {
        return terminate(ctx, &claim).await;
    }
    ctx.cluster
        .add_finalizer(&claim, upstream::FINALIZER)
        .await?;
    // expireAfter: forceful, whatever the budgets.
    let expires_in = claim.metadata.creation_timestamp.as_ref().and_then(|t| {
        outrigger_disruption::expire::expires_in(
            t.0,
            crate::disruption::facts::expire_after(&claim),
            jiff::Timestamp::now(),
        )
    });
    if expires_in == Some(Duration::ZERO) {
        return expire(ctx, &claim).await;
    }
    let action = step(ctx, &claim).await?;
    Ok(match (action, expires_in) {
        (Action::Done, Some(d)) => Action::requeue(d),
        (Action::RequeueAfter(a), Some(d)) => Action::requeue(a.min(d)),
        (a, None) => a,
    })
}

/// Deletes an expired claim (its node drains through the finalizer).
async fn expire(ctx: &Ctx, claim: &NodeClaim) -> Result<Action, Error> {
    let (kind, pool) = pool_field(claim);
    set_conditions(
        ctx,
        claim,
        &[(upstream::EXPIRED, Status::True, "Expired", String::new())],
    )
    .await?;
    ctx.cluster.delete_claim(&claim.name_any()).await?;
    tracing::info!(pool = %pool, kind, nodeclaim = %claim.name_any(), "{}", upstream::EXPIRED_CLAIM);
    ctx.metrics
        .disrupted
        .get_or_create(&labels(&[
            ("reason", "expired"),
            ("nodepool", pool.as_str()),
            (
                "capacity_type",
                claim
                    .labels()
                    .get(LABEL_CAPACITY_TYPE)
                    .map(String::as_str)
                    .unwrap_or_default(),
            ),
        ]))
        .inc();
    Ok(Action::Done)
}

/// A Ready node's taint that keeps it from being initialized, in
/// Karpenter's words (reason, message): one of the claim's startup taints,
/// or a known ephemeral one (matched by key and effect).
pub(crate) fn still_tainted(claim: &NodeClaim, node: &Node) -> Option<(&'static str, String)> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref())?;
    let text = |t: &Taint| match t.value.as_deref() {
        Some(v) if !v.is_empty() => format!("{}={}:{}", t.key, v, t.effect),
        _ => format!("{}:{}", t.key, t.effect),
    };
    if let Some(t) = taints.iter().find(|t| {
        claim
            .spec
            .startup_taints
            .iter()
            .any(|s| s.key == t.key && s.effect == t.effect)
    }) {
        return Some((
            "StartupTaintsExist",
            format!("StartupTaint \"{}\" still exists", text(t)),
        ));
    }
    taints
        .iter()
        .find(|t| upstream::EPHEMERAL_TAINTS.contains(&(t.key.as_str(), t.effect.as_str())))
        .map(|t| {
            (
                "KnownEphemeralTaintsExist",
                format!("KnownEphemeralTaint \"{}\" still exists", text(t)),
            )
        })
}

/// One step of a live claim's lifecycle: launch, register, initialize,
/// then its pods' events, `Consolidatable`, and the empty-node TTL.
async fn step(ctx: &Ctx, claim: &std::sync::Arc<NodeClaim>) -> Result<Action, Error> {
    let name = claim.name_any();
    let name = name.as_str();
    let claim = claim.clone();
    let status = claim.status.clone().unwrap_or_default();
    let Some(provider_id) = status.provider_id.clone() else {
        return launch(ctx, &claim).await;
    };
    ctx.launched.locked().remove(name);
    drift(ctx, &claim).await?;
    // Register: the Node with our providerID.
    let Some(node) = node_of(ctx, &provider_id) else {
        return Ok(Action::requeue(REGISTRATION_CHECK));
    };
    let node_name = node.name_any();
    if status.node_name.as_deref() != Some(node_name.as_str()) {
        // The claim's labels on the node (the pool's, nodepool,
        // provisioner-name), as Karpenter's registration does.
        let mut labels = claim.labels().clone();
        labels.remove(upstream::POOL_KIND);
        labels.insert(upstream::REGISTERED_LABEL.into(), "true".into());
        ctx.cluster
            .patch_node(
                &node_name,
                serde_json::json!({"metadata": {"labels": labels}}),
            )
            .await?;
        ctx.cluster
            .patch_claim_status(name, serde_json::json!({"status": {"nodeName": node_name}}))
            .await?;
        set_conditions(
            ctx,
            &claim,
            &[(
                upstream::REGISTERED,
                Status::True,
                "Registered",
                String::new(),
            )],
        )
        .await?;
        return Ok(Action::Done);
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if !ready {
        return Ok(Action::Done);
    }
    if !conditions::is_true(&status.conditions, upstream::INITIALIZED) {
        // Ready is not enough: until the node's startup taints and the
        // taints the control plane puts on a node not ready yet are gone,
        // the pods it was launched for cannot land (Karpenter's
        // initialization). The Node watch brings it back here.
        if let Some((reason, message)) = still_tainted(&claim, &node) {
            set_conditions(
                ctx,
                &claim,
                &[(upstream::INITIALIZED, Status::Unknown, reason, message)],
            )
            .await?;
            return Ok(Action::Done);
        }
        ctx.cluster
            .patch_node(
                &node_name,
                serde_json::json!({"metadata": {"labels": {upstream::INITIALIZED_LABEL: "true"}}}),
            )
            .await?;
        set_conditions(
            ctx,
            &claim,
            &[
                (
                    upstream::INITIALIZED,
                    Status::True,
                    "Initialized",
                    String::new(),
                ),
                (upstream::READY, Status::True, "Ready", String::new()),
            ],
        )
        .await?;
        return Ok(Action::requeue(SETTLE));
    }
    // Emptiness counts once the node has had a moment to take the pods
    // it was launched for.
    let since = conditions::get(&status.conditions, upstream::INITIALIZED)
        .map(|c| since(c.last_transition_time.0))
        .unwrap_or_default();
    if since < SETTLE {
        return Ok(Action::requeue(SETTLE - since));
    }
    let Some(p) = pool_of(ctx, &claim) else {
        return Ok(Action::Done);
    };
    let consolidatable_in = consolidatable(ctx, &claim, &node, &p).await?;
    let action = emptiness(ctx, &claim, &node, &p).await?;
    Ok(match (action, consolidatable_in) {
        (Action::Done, Some(d)) => Action::requeue(d),
        (Action::RequeueAfter(a), Some(d)) => Action::requeue(a.min(d)),
        (a, None) => a,
    })
}

/// Drift: the claim's pool changed (its template hash) or no longer allows
/// the claim's labels: `Drifted` with the reason, removed when neither
/// holds. A claim stamped with another hash version (Karpenter's, or none)
/// is stamped with the pool's hash instead of drifting, as Karpenter does
/// when its hash version changes. Provisioners' claims do not drift.
async fn drift(ctx: &Ctx, claim: &NodeClaim) -> Result<(), Error> {
    use outrigger_disruption::drift::{HASH_VERSION, drift};
    let Some(pool) = pool_of(ctx, claim) else {
        return Ok(());
    };
    let name = claim.name_any();
    let a = claim.annotations();
    // The pool's side: its template hash (NodePools), its requirements.
    let mut reason = None;
    if let Some(hash) = pool.hash.as_deref() {
        if a.get(upstream::NODEPOOL_HASH_VERSION).map(String::as_str) != Some(HASH_VERSION) {
            ctx.cluster
                .patch_claim(
                    &name,
                    serde_json::json!({"metadata": {"annotations": {
                        upstream::NODEPOOL_HASH: hash,
                        upstream::NODEPOOL_HASH_VERSION: HASH_VERSION,
                    }}}),
                )
                .await?;
            return Ok(());
        }
        reason = drift(
            hash,
            a.get(upstream::NODEPOOL_HASH)
                .map(|h| (h.as_str(), HASH_VERSION)),
            &pool.model.requirements,
            claim.labels(),
        );
    }
    // Then the cloud's: the instance against what its node class resolves
    // to now (AMI, subnets, security groups). A failed check decides
    // nothing and leaves the condition as it is.
    if reason.is_none()
        && let Some(provider) = ctx.providers.for_class(&claim.spec.node_class_ref)
    {
        match provider.drifted(claim).await {
            Ok(r) => reason = r,
            Err(e) => {
                tracing::debug!(nodeclaim = %name, error = %e, "checking the instance for drift");
                return Ok(());
            }
        }
    }
    let conds = claim.status.clone().unwrap_or_default().conditions;
    match reason {
        Some(r) => {
            let already = conditions::get(&conds, upstream::DRIFTED)
                .is_some_and(|c| c.status == "True" && c.reason == r.as_str());
            if !already {
                set_conditions(
                    ctx,
                    claim,
                    &[(
                        upstream::DRIFTED,
                        Status::True,
                        r.as_str(),
                        r.as_str().to_string(),
                    )],
                )
                .await?;
                tracing::info!(nodeclaim = %name, reason = r.as_str(), "marking drifted");
                ctx.queue.add(crate::Key::Disruption);
            }
        }
        None => {
            if conds.iter().any(|c| c.type_ == upstream::DRIFTED) {
                clear_condition(ctx, claim, upstream::DRIFTED).await?;
                tracing::info!(nodeclaim = %name, "removing drifted status condition, not drifted");
            }
        }
    }
    Ok(())
}

/// Pods scheduled to or removed from the node are events
/// (`status.lastPodEventTime`, at most every [`POD_EVENT_DEDUPE`]); the
/// claim is `Consolidatable` once its pool's `consolidateAfter` has passed
/// since the last one (or since it initialized), and the condition is
/// removed while it has not. Returns when it will have passed.
async fn consolidatable(
    ctx: &Ctx,
    claim: &NodeClaim,
    node: &Node,
    pool: &pools::Pool,
) -> Result<Option<Duration>, Error> {
    let node_name = node.name_any();
    let mut uids: Vec<&str> = vec![];
    let state = ctx.pods.state();
    for p in state.iter().filter(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str())
            && !pods::is_daemon(p)
            && pods::is_active(p)
            && p.metadata.deletion_timestamp.is_none()
    }) {
        uids.push(p.metadata.uid.as_deref().unwrap_or_default());
    }
    uids.sort_unstable();
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        uids.hash(&mut h);
        h.finish()
    };
    let name = claim.name_any();
    let before = ctx.pod_sets.locked().insert(name.clone(), digest);
    let status = claim.status.clone().unwrap_or_default();
    let mut last = status.last_pod_event_time.as_ref().map(|t| t.0);
    let now = jiff::Timestamp::now();
    if before.is_some_and(|b| b != digest) && last.is_none_or(|l| since(l) >= POD_EVENT_DEDUPE) {
        ctx.cluster
            .patch_claim_status(
                &name,
                serde_json::json!({"status": {"lastPodEventTime": now.to_string()}}),
            )
            .await?;
        last = Some(now);
    }
    let has = status
        .conditions
        .iter()
        .any(|c| c.type_ == upstream::CONSOLIDATABLE);
    let after = if pool.empty_ttl.is_some() {
        // Emptiness by the TTL; not consolidated.
        None
    } else {
        crate::disruption::facts::policy(pool)
            .ok()
            .and_then(|p| p.consolidate_after)
    };
    let Some(after) = after else {
        if has {
            clear_condition(ctx, claim, upstream::CONSOLIDATABLE).await?;
        }
        return Ok(None);
    };
    let Some(from) = last.or_else(|| {
        conditions::get(&status.conditions, upstream::INITIALIZED).map(|c| c.last_transition_time.0)
    }) else {
        return Ok(None);
    };
    let waited = since(from);
    if waited >= after {
        if !conditions::is_true(&status.conditions, upstream::CONSOLIDATABLE) {
            set_conditions(
                ctx,
                claim,
                &[(
                    upstream::CONSOLIDATABLE,
                    Status::True,
                    "Consolidatable",
                    String::new(),
                )],
            )
            .await?;
            tracing::debug!(nodeclaim = %name, "{}", upstream::MARKED_CONSOLIDATABLE);
            ctx.queue.add(crate::Key::Disruption);
        }
        return Ok(None);
    }
    if has {
        clear_condition(ctx, claim, upstream::CONSOLIDATABLE).await?;
        tracing::debug!(nodeclaim = %name, "{}", upstream::REMOVED_CONSOLIDATABLE);
    }
    Ok(Some(after - waited))
}

fn since(t: jiff::Timestamp) -> Duration {
    Duration::try_from(jiff::Timestamp::now().duration_since(t)).unwrap_or_default()
}

/// Launches the claim's instance (or takes one launched a moment ago whose
/// status the watch has not shown yet) and records it on the claim.
async fn launch(ctx: &Ctx, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let (kind, pool) = pool_field(claim);
    let earlier = ctx.launched.locked().get(&name).cloned();
    let relaunch = earlier.is_some();
    let launched = match earlier {
        Some(l) => l,
        None => match create(ctx, claim).await {
            Ok(l) => {
                ctx.launched.locked().insert(name.clone(), l.clone());
                l
            }
            Err(e) => {
                set_conditions(
                    ctx,
                    claim,
                    &[(
                        upstream::LAUNCHED,
                        Status::False,
                        "LaunchFailed",
                        e.to_string(),
                    )],
                )
                .await?;
                ctx.cluster
                    .event(
                        reference(claim),
                        true,
                        upstream::LAUNCH_FAILED,
                        "Launch",
                        e.to_string(),
                    )
                    .await;
                return Err(e.into());
            }
        },
    };
    ctx.cluster
        .patch_claim(
            &name,
            serde_json::json!({"metadata": {
                "labels": {
                    LABEL_INSTANCE_TYPE: launched.instance_type,
                    LABEL_ZONE: launched.zone,
                    LABEL_CAPACITY_TYPE: launched.capacity_type,
                },
                "annotations": launched.annotations,
            }}),
        )
        .await?;
    ctx.cluster
        .patch_claim_status(
            &name,
            serde_json::json!({"status": {
                "providerID": launched.provider_id,
                "imageID": launched.image_id,
                "capacity": to_quantities(&launched.capacity),
                "allocatable": to_quantities(&launched.allocatable),
            }}),
        )
        .await?;
    set_conditions(
        ctx,
        claim,
        &[(upstream::LAUNCHED, Status::True, "Launched", String::new())],
    )
    .await?;
    if !relaunch {
        ctx.metrics
            .launched
            .get_or_create(&labels(&[("nodepool", pool.as_str())]))
            .inc();
        tracing::info!(pool = %pool, kind, nodeclaim = %name, "{}", upstream::launched_instance(&launched));
    }
    Ok(Action::Done)
}

/// Launches through the claim's node class's provider.
async fn create(ctx: &Ctx, claim: &NodeClaim) -> Result<Launched, CloudError> {
    let provider = ctx
        .providers
        .for_class(&claim.spec.node_class_ref)
        .ok_or_else(|| {
            CloudError::NodeClassNotReady(
                ctx.providers
                    .class_problem(&claim.spec.node_class_ref)
                    .unwrap_or_default(),
            )
        })?;
    let mut labels = claim.labels().clone();
    labels.remove(upstream::POOL_KIND);
    provider.create(claim, &labels).await
}

/// The empty-node TTL: stamp an empty node, delete its claim once empty
/// for the pool's TTL, unstamp it if a pod arrives.
async fn emptiness(
    ctx: &Ctx,
    claim: &NodeClaim,
    node: &Node,
    pool: &pools::Pool,
) -> Result<Action, Error> {
    let Some(ttl) = pool.empty_ttl else {
        return Ok(Action::Done);
    };
    let (kind, _) = pool_field(claim);
    let node_name = node.name_any();
    let stamp = node.annotations().get(upstream::EMPTINESS).cloned();
    match (busy(ctx, &node_name), stamp) {
        (true, Some(_)) => {
            ctx.cluster
                .patch_node(
                    &node_name,
                    serde_json::json!({"metadata": {"annotations": {upstream::EMPTINESS: null}}}),
                )
                .await?;
            tracing::info!(pool = %pool.model.name, kind, node = %node_name, "{}", upstream::REMOVED_TTL);
            Ok(Action::Done)
        }
        (false, None) => {
            let now = jiff::Timestamp::now();
            ctx.cluster
                .patch_node(
                    &node_name,
                    serde_json::json!({"metadata": {"annotations": {upstream::EMPTINESS: now.to_string()}}}),
                )
                .await?;
            tracing::info!(pool = %pool.model.name, kind, node = %node_name, "{}", upstream::ADDED_TTL);
            Ok(Action::requeue(ttl))
        }
        (false, Some(s)) => {
            let stamped: jiff::Timestamp = s.parse().unwrap_or_else(|_| jiff::Timestamp::now());
            let empty_for = since(stamped);
            if empty_for < ttl {
                return Ok(Action::requeue(ttl - empty_for));
            }
            tracing::info!(
                pool = %pool.model.name,
                kind,
                node = %node_name,
                "{}",
                upstream::triggering_termination(ttl.as_secs())
            );
            ctx.metrics
                .terminated
                .get_or_create(&labels(&[
                    ("nodepool", pool.model.name.as_str()),
                    ("reason", "empty"),
                ]))
                .inc();
            ctx.cluster.delete_claim(&claim.name_any()).await?;
            Ok(Action::Done)
        }
        (true, None) => Ok(Action::Done),
    }
}

/// The finalizer: taint and cordon the node, evict its pods (PDBs
/// decide), delete the instance and the node, then let the claim go.
async fn terminate(ctx: &Ctx, claim: &NodeClaim) -> Result<Action, Error> {
    let (kind, pool) = pool_field(claim);
    let name = claim.name_any();
    // No longer capacity for the next batch, even if no batch ran since it
    // was created.
    ctx.created.locked().retain(|(_, c)| c.name_any() != name);
    ctx.launched.locked().remove(&name);
    ctx.pod_sets.locked().remove(&name);
    if !claim.finalizers().iter().any(|f| f == upstream::FINALIZER) {
        return Ok(Action::Done);
    }
    let status = claim.status.clone().unwrap_or_default();
    let node_name = status.node_name.clone().unwrap_or_else(|| name.clone());
    if let Some(node) = ctx.nodes.find(|n| n.name_any() == node_name) {
        let tainted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == upstream::DISRUPTED_TAINT));
        let unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !(tainted && unschedulable) {
            let mut taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            // A disruption command may have tainted it already.
            if !tainted {
                taints.push(Taint {
                    key: upstream::DISRUPTED_TAINT.into(),
                    effect: "NoSchedule".into(),
                    value: None,
                    time_added: None,
                });
            }
            ctx.cluster
                .patch_node(
                    &node_name,
                    serde_json::json!({"spec": {"unschedulable": true, "taints": taints}}),
                )
                .await?;
            tracing::info!(pool = %pool, kind, node = %node_name, "{}", upstream::CORDONED);
        }
        // Evict what is left (daemonset pods go with the node), but not
        // do-not-disrupt pods: the drain waits for them. Once the claim's
        // terminationGracePeriod is close enough that a pod's own grace
        // period would outlast it, the pod is deleted, PDBs and
        // do-not-disrupt bypassed (Karpenter's rule).
        let deadline = termination_deadline(ctx, claim, &node).await?;
        let now = jiff::Timestamp::now();
        let mut left = 0;
        let mut blocked = false;
        let mut next_delete: Option<Duration> = None;
        for p in ctx.pods.state().iter().filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str())
                && pods::is_active(p)
                && !pods::is_daemon(p)
        }) {
            left += 1;
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(d) = deadline {
                let own = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                let at = d - jiff::SignedDuration::from_secs(own);
                if now >= at {
                    let grace = (d.as_second() - now.as_second()).max(1);
                    ctx.cluster.delete_pod(p, grace).await?;
                    ctx.cluster
                        .event(
                            reference(p.as_ref()),
                            false,
                            upstream::DISRUPTED,
                            "Disrupt",
                            format!(
                                "Deleting the pod to accommodate the terminationTime {d} of the node. The pod was granted {grace} seconds of grace-period of its {own} terminationGracePeriodSeconds. This bypasses the PDB of the pod and the do-not-disrupt annotation."
                            ),
                        )
                        .await;
                    continue;
                }
                let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
                next_delete = Some(next_delete.map_or(wait, |n| n.min(wait)));
            }
            if crate::disruption::facts::do_not_disrupt(p, now) {
                continue;
            }
            blocked |= ctx.cluster.evict(p).await? == Eviction::Blocked;
        }
        if left > 0 {
            // The pods' deletions wake this claim; a refused eviction is
            // tried again on a timer, and a pod due for deletion at its
            // time.
            let after = if blocked {
                EVICTION_RETRY
            } else {
                REGISTRATION_CHECK
            };
            return Ok(Action::requeue(
                next_delete.map_or(after, |n| after.min(n + Duration::from_millis(100))),
            ));
        }
        delete_instance(ctx, claim).await?;
        tracing::info!(pool = %pool, kind, node = %node_name, "{}", upstream::DELETED_NODE);
    } else if status.provider_id.is_some() {
        // Launched but never registered (or the node is gone): the
        // instance still goes.
        delete_instance(ctx, claim).await?;
    }
    // The freshest copy: the finalizer patch is guarded by its version.
    if let Some(fresh) = ctx.cluster.get_claim(&name).await? {
        ctx.cluster
            .remove_finalizer(&fresh, upstream::FINALIZER)
            .await?;
    }
    Ok(Action::Done)
}

/// When a deleting claim's `terminationGracePeriod` runs out: its
/// `karpenter.sh/nodeclaim-termination-timestamp` annotation, written at
/// the first call (deletion time plus the period, with an Event on the
/// node). `None` without a period.
async fn termination_deadline(
    ctx: &Ctx,
    claim: &NodeClaim,
    node: &Node,
) -> Result<Option<jiff::Timestamp>, Error> {
    if let Some(v) = claim.annotations().get(upstream::TERMINATION_TIMESTAMP) {
        match v.parse::<jiff::Timestamp>() {
            Ok(t) => return Ok(Some(t)),
            Err(e) => {
                tracing::warn!(nodeclaim = %claim.name_any(), value = %v, error = %e, "ignoring an unreadable {}", upstream::TERMINATION_TIMESTAMP)
            }
        }
    }
    let Some(period) = claim
        .spec
        .termination_grace_period
        .as_deref()
        .and_then(crate::pools::duration)
    else {
        return Ok(None);
    };
    let Some(deleted) = claim.metadata.deletion_timestamp.as_ref() else {
        return Ok(None);
    };
    let period = jiff::SignedDuration::try_from(period).unwrap_or(jiff::SignedDuration::MAX);
    let at = deleted
        .0
        .checked_add(period)
        .unwrap_or(jiff::Timestamp::MAX);
    let at = jiff::Timestamp::from_second(at.as_second()).unwrap_or(at);
    ctx.cluster
        .patch_claim(
            &claim.name_any(),
            serde_json::json!({"metadata": {"annotations": {upstream::TERMINATION_TIMESTAMP: at.to_string()}}}),
        )
        .await?;
    tracing::info!(nodeclaim = %claim.name_any(), "karpenter.sh/nodeclaim-termination-timestamp" = %at, "annotated nodeclaim");
    ctx.cluster
        .event(
            reference(node),
            true,
            upstream::TGP_EXPIRING,
            "Terminate",
            format!("All pods will be deleted by {at}"),
        )
        .await;
    Ok(Some(at))
}

/// Deletes the claim's instance through its provider; gone already, or a
/// provider no longer enabled, is fine.
async fn delete_instance(ctx: &Ctx, claim: &NodeClaim) -> Result<(), Error> {
    let Some(provider) = ctx.providers.for_class(&claim.spec.node_class_ref) else {
        return Ok(());
    };
    match provider.delete(claim).await {
        Ok(()) | Err(CloudError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
