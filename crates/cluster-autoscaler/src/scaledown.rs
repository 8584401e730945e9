//! Scale-down, carried out: the unneeded nodes of `outrigger-node-groups`
//! remembered from loop to loop (and on the nodes themselves, in the soft
//! taint `DeletionCandidateOfClusterAutoscaler=<unix time>`, so a restart
//! keeps the timers), and once unneeded for `--scale-down-unneeded-time`
//! removed: empty ones in bulk, others one at a time after a drain
//! (`ToBeDeletedByClusterAutoscaler`, evictions through the Eviction API so
//! PDBs decide), each instance taken out of its group with its target
//! decremented.

use futures::StreamExt;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, EvictParams, Patch, PatchParams},
    runtime::reflector::ObjectRef,
};
use outrigger_node_groups::{
    scaledown::{self, Found, Removal},
    upstream::{
        DELETION_CANDIDATE_TAINT, NODE_MARKED, POD_DELETED, SCALE_DOWN, SCALE_DOWN_EMPTY,
        SCALE_DOWN_FAILED, TO_BE_DELETED_TAINT,
    },
};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling_kube as kube_model;

use crate::{Ctx, Error, scaleup::status_ref, snapshot::Snapshot};

/// Most soft taints added in one loop (upstream's `--max-bulk-soft-taint-count`).
const MAX_SOFT_TAINTS: usize = 10;
/// How long evictions are retried (upstream's `--max-pod-eviction-time`).
const MAX_EVICTION_TIME: Duration = Duration::from_secs(120);

/// A node from the cache, by name (a hash look-up).
fn node_named(ctx: &Ctx, name: &str) -> Option<Arc<Node>> {
    ctx.nodes.get(&ObjectRef::new(name))
}

fn taints_of(n: &Node) -> Vec<Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

/// Sets or removes one taint on a node (by key), with the node's
/// resourceVersion so a concurrent change is not lost: first from the
/// cached node (one request), then, if the cache was behind (a conflict),
/// has no such node or shows nothing to change, from the node read afresh.
async fn set_taint(
    ctx: &Ctx,
    node: &str,
    key: &str,
    taint: Option<Taint>,
) -> Result<bool, kube::Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    if let Some(cached) = node_named(ctx, node)
        && taints_of(&cached).iter().any(|t| t.key == key) != taint.is_some()
    {
        match patch_taint(&api, &cached, key, taint.clone()).await {
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            done => return done,
        }
    }
    let Some(n) = api.get_opt(node).await? else {
        return Ok(false);
    };
    patch_taint(&api, &n, key, taint).await
}

/// [`set_taint`] on `n` as given (its taints, its resourceVersion).
async fn patch_taint(
    api: &Api<Node>,
    n: &Node,
    key: &str,
    taint: Option<Taint>,
) -> Result<bool, kube::Error> {
    let mut taints = taints_of(n);
    let had = taints.iter().any(|t| t.key == key);
    if had == taint.is_some() {
        return Ok(false);
    }
    taints.retain(|t| t.key != key);
    taints.extend(taint);
    api.patch(
        &n.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"resourceVersion": n.metadata.resource_version},
            "spec": {"taints": taints},
        })),
    )
    .await?;
    Ok(true)
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        value: Some(jiff::Timestamp::now().as_second().to_string()),
        effect: effect.to_string(),
        time_added: None,
    }
}

/// At start: a `ToBeDeletedByClusterAutoscaler` taint left by a process
/// that died mid-removal is taken off (the node is looked at again; a
/// removal that reached the cloud has its node going anyway).
pub async fn clean_up_taints(ctx: &Ctx) {
    for n in ctx.nodes.state() {
        if taints_of(&n).iter().any(|t| t.key == TO_BE_DELETED_TAINT) {
            match set_taint(ctx, &n.name_any(), TO_BE_DELETED_TAINT, None).await {
                Ok(_) => {
                    tracing::info!(node = %n.name_any(), "removed a ToBeDeletedByClusterAutoscaler taint left by an earlier run")
                }
                Err(e) => {
                    tracing::warn!(node = %n.name_any(), error = %e, "removing a leftover ToBeDeletedByClusterAutoscaler taint")
                }
            }
        }
    }
}

/// Finds the unneeded nodes, keeps their timers and soft taints, and
/// removes those whose time has come (unless a scale-up, a removal or a
/// failure was too recent). Returns what it found, for the status.
pub async fn run(ctx: &Arc<Ctx>, snap: &Snapshot, scaled_up_now: bool) -> Result<Found, Error> {
    let registered = snap.facts.len();
    let start = Instant::now();
    let found = scaledown::find_unneeded(
        &snap.nodes[..registered],
        &snap.facts,
        &snap.groups,
        &ctx.settings.scale_down,
    );
    ctx.metrics
        .observe("findUnneeded", start.elapsed().as_secs_f64());
    ctx.metrics.unneeded_nodes.set(found.unneeded.len() as i64);
    // Timers: kept from the last loop, else from the soft taint's value
    // (a restart), else now.
    let now = jiff::Timestamp::now();
    let names: Vec<String> = found
        .unneeded
        .iter()
        .map(|u| snap.facts[u.node].name.clone())
        .collect();
    let mut since: BTreeMap<usize, Duration> = BTreeMap::new();
    {
        let mut mem = ctx.memory.locked();
        mem.unneeded.retain(|n, _| names.contains(n));
        for u in &found.unneeded {
            let name = &snap.facts[u.node].name;
            let t = *mem.unneeded.entry(name.clone()).or_insert_with(|| {
                node_named(ctx, name)
                    .and_then(|n| {
                        taints_of(&n)
                            .into_iter()
                            .find(|t| t.key == DELETION_CANDIDATE_TAINT)
                            .and_then(|t| t.value)
                            .and_then(|v| v.parse::<i64>().ok())
                            .and_then(|s| jiff::Timestamp::from_second(s).ok())
                    })
                    .unwrap_or(now)
            });
            since.insert(
                u.node,
                Duration::try_from(now.duration_since(t)).unwrap_or_default(),
            );
        }
    }
    // Soft taints follow the unneeded set: at most MAX_SOFT_TAINTS changes
    // a loop (as upstream's --max-bulk-soft-taint-count), made together.
    let unneeded_set: BTreeSet<usize> = found.unneeded.iter().map(|u| u.node).collect();
    let mut changes: Vec<(String, Option<Taint>)> = vec![];
    for (i, f) in snap.facts.iter().enumerate() {
        if changes.len() >= MAX_SOFT_TAINTS {
            break;
        }
        let unneeded = unneeded_set.contains(&i);
        let has = node_named(ctx, &f.name).is_some_and(|n| {
            taints_of(&n)
                .iter()
                .any(|t| t.key == DELETION_CANDIDATE_TAINT)
        });
        if unneeded && !has && !f.deleting {
            let t = Taint {
                value: ctx
                    .memory
                    .locked()
                    .unneeded
                    .get(&f.name)
                    .map(|t| t.as_second().to_string()),
                ..taint(DELETION_CANDIDATE_TAINT, "PreferNoSchedule")
            };
            changes.push((f.name.clone(), Some(t)));
        } else if !unneeded && has {
            changes.push((f.name.clone(), None));
        }
    }
    // Written off the loop (they are a hint to kube-scheduler and the
    // timers' copy on the nodes, not part of a decision); while the last
    // loop's are still being written, none change.
    {
        let mut mem = ctx.memory.locked();
        if mem.soft_taints.as_ref().is_some_and(|h| !h.is_finished()) {
            tracing::debug!("the last loop's soft taints are still being written");
        } else if !changes.is_empty() {
            let c = ctx.clone();
            mem.soft_taints = Some(tokio::spawn(async move {
                let ctx = &c;
                futures::stream::iter(changes)
                    .for_each_concurrent(MAX_SOFT_TAINTS, |(name, t)| async move {
                        let adding = t.is_some();
                        if let Err(e) = set_taint(ctx, &name, DELETION_CANDIDATE_TAINT, t).await {
                            tracing::debug!(node = %name, error = %e, adding, "changing the soft taint");
                        }
                    })
                    .await;
            }));
        }
    }
    for (i, why) in &found.kept {
        tracing::debug!(node = %snap.facts[*i].name, reason = %why, "node is not removable");
    }
    // Cooldowns.
    let cooling = {
        let mem = ctx.memory.locked();
        let after_delete = ctx
            .args
            .scale_down_delay_after_delete
            .unwrap_or(ctx.args.scan_interval);
        scaled_up_now
            || mem
                .last_scale_up
                .is_some_and(|t| t.elapsed() < ctx.args.scale_down_delay_after_add)
            || mem
                .last_scale_down
                .is_some_and(|t| t.elapsed() < after_delete)
            || mem
                .last_failure
                .is_some_and(|t| t.elapsed() < ctx.args.scale_down_delay_after_failure)
            || mem.draining.is_some()
    };
    if cooling {
        return Ok(found);
    }
    let mut deleting: BTreeMap<usize, i64> = BTreeMap::new();
    for f in snap.facts.iter().filter(|f| f.deleting) {
        if let Some(g) = f.group {
            *deleting.entry(g).or_insert(0) += 1;
        }
    }
    let (empty, drain) = scaledown::choose_removals(
        &found,
        &since,
        &snap.facts,
        &snap.groups,
        &deleting,
        &Removal {
            unneeded_time: ctx.args.scale_down_unneeded_time,
            unready_time: ctx.args.scale_down_unready_time,
            max_empty_bulk: ctx.args.max_empty_bulk_delete,
            left_above_min: left_above_minimums(ctx, snap),
        },
    );
    for i in empty {
        let f = &snap.facts[i];
        let Some(g) = f.group else { continue };
        let group = snap.groups[g].id.clone();
        let pid = snap.provider_ids[i].clone();
        tracing::info!("Scale-down: removing empty node {:?}", f.name);
        if let Err(e) = remove(ctx, &f.name, &group, &pid).await {
            tracing::warn!(node = %f.name, error = %e, "removing an empty node");
            fail(ctx, &f.name, &e.to_string()).await;
            continue;
        }
        ctx.events
            .publish(
                status_ref(ctx),
                kube::runtime::events::EventType::Normal,
                SCALE_DOWN_EMPTY,
                "ScaleDown",
                format!("Scale-down: removing empty node {:?}", f.name),
            )
            .await;
        ctx.metrics
            .scaled_down_nodes
            .get_or_create(&vec![("reason".to_string(), "empty".to_string())])
            .inc();
        done(ctx);
    }
    if let Some(i) = drain {
        let f = &snap.facts[i];
        let Some(g) = f.group else {
            return Ok(found);
        };
        let u = found.unneeded.iter().find(|u| u.node == i);
        tracing::info!(
            "Scale-down: removing node {}, utilization: {:.2}, pods to reschedule: {}",
            f.name,
            u.map_or(0.0, |u| u.utilization),
            u.map(|u| u
                .moves
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(","))
                .unwrap_or_default()
        );
        ctx.memory.locked().draining = Some(f.name.clone());
        let (node, group, pid) = (
            f.name.clone(),
            snap.groups[g].id.clone(),
            snap.provider_ids[i].clone(),
        );
        // The drain runs on its own (evictions wait for PDBs and grace
        // periods); the loop goes on meanwhile, counting the node as being
        // deleted, and starts no other removal until it ends.
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match drain_and_remove(&ctx, &node, &group, &pid).await {
                Ok(()) => {
                    ctx.metrics
                        .scaled_down_nodes
                        .get_or_create(&vec![("reason".to_string(), "underutilized".to_string())])
                        .inc();
                    done(&ctx);
                }
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "scale-down failed");
                    fail(&ctx, &node, &e).await;
                }
            }
            ctx.memory.locked().draining = None;
            // The next loop need not wait for the scan interval.
            ctx.queue.add(crate::Key::Loop);
        });
    }
    Ok(found)
}

/// What the `--cores-total` / `--memory-total` minimums leave to remove:
/// the capacity of the nodes not being deleted, less the minimum.
fn left_above_minimums(ctx: &Ctx, snap: &Snapshot) -> (Option<i64>, Option<i64>) {
    let live = snap.facts.iter().filter(|f| !f.deleting);
    let (cpu, mem) = live.fold((0i64, 0i64), |(c, m), f| {
        (c + f.capacity.cpu_millis, m + f.capacity.memory_bytes)
    });
    let s = &ctx.settings;
    (
        (s.min_cores > 0).then(|| cpu - s.min_cores * 1000),
        (s.min_memory_gib > 0).then(|| mem - (s.min_memory_gib << 30)),
    )
}

fn done(ctx: &Ctx) {
    let mut mem = ctx.memory.locked();
    mem.last_scale_down = Some(Instant::now());
    mem.last_scale_down_time = Some(jiff::Timestamp::now().to_string());
}

/// A failed removal: the taint goes, the node says why.
async fn fail(ctx: &Ctx, node: &str, why: &str) {
    ctx.memory.locked().last_failure = Some(Instant::now());
    let _ = set_taint(ctx, node, TO_BE_DELETED_TAINT, None).await;
    if let Some(n) = node_named(ctx, node) {
        ctx.events
            .warning(
                n.as_ref(),
                SCALE_DOWN_FAILED,
                "ScaleDown",
                format!("failed to remove the node: {why}"),
            )
            .await;
    }
}

/// Taints the node for deletion and takes its instance out of the group.
async fn remove(ctx: &Ctx, node: &str, group: &str, provider_id: &str) -> Result<(), Error> {
    set_taint(
        ctx,
        node,
        TO_BE_DELETED_TAINT,
        Some(taint(TO_BE_DELETED_TAINT, "NoSchedule")),
    )
    .await?;
    tracing::info!("Successfully added ToBeDeletedTaint on node {node}");
    if let Some(n) = node_named(ctx, node) {
        ctx.events
            .normal(n.as_ref(), SCALE_DOWN, "ScaleDown", NODE_MARKED.to_string())
            .await;
    }
    ctx.provider.delete_instance(group, provider_id).await?;
    ctx.memory.locked().unneeded.remove(node);
    Ok(())
}

/// The pods a drain moves: on the node, active, not a daemonset's or a
/// static pod's.
fn movable(ctx: &Ctx, node: &str) -> Vec<Arc<Pod>> {
    ctx.pods
        .state()
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|p| kube_model::is_active(p) && !kube_model::is_daemon(p))
        .filter(|p| !p.annotations().contains_key("kubernetes.io/config.mirror"))
        .collect()
}

/// Taints, evicts every movable pod (retrying what a PDB refuses for up to
/// two minutes), waits for them to go, then removes the instance.
async fn drain_and_remove(
    ctx: &Ctx,
    node: &str,
    group: &str,
    provider_id: &str,
) -> Result<(), String> {
    set_taint(
        ctx,
        node,
        TO_BE_DELETED_TAINT,
        Some(taint(TO_BE_DELETED_TAINT, "NoSchedule")),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!("Successfully added ToBeDeletedTaint on node {node}");
    if let Some(n) = node_named(ctx, node) {
        ctx.events
            .normal(n.as_ref(), SCALE_DOWN, "ScaleDown", NODE_MARKED.to_string())
            .await;
    }
    let start = Instant::now();
    let grace = ctx.args.max_graceful_termination_sec.max(0);
    loop {
        let pods = movable(ctx, node);
        if pods.is_empty() {
            break;
        }
        let mut blocked = vec![];
        for p in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let api: Api<Pod> =
                Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
            let own = p
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30);
            let params = EvictParams {
                delete_options: Some(DeleteParams {
                    grace_period_seconds: Some(own.min(grace) as u32),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match api.evict(&p.name_any(), &params).await {
                Ok(_) => {
                    ctx.metrics.evicted_pods.inc();
                    ctx.events
                        .normal(p.as_ref(), SCALE_DOWN, "ScaleDown", POD_DELETED.to_string())
                        .await;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(kube::Error::Api(e)) if e.code == 429 => blocked.push(kube_model::key(p)),
                Err(e) => return Err(format!("evicting {}: {e}", kube_model::key(p))),
            }
        }
        if start.elapsed() > MAX_EVICTION_TIME + Duration::from_secs(grace as u64) {
            return Err(format!(
                "pods still on the node after {}s: {}",
                start.elapsed().as_secs(),
                if blocked.is_empty() {
                    movable(ctx, node)
                        .iter()
                        .map(|p| kube_model::key(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    format!(
                        "{} (a PodDisruptionBudget allows no eviction)",
                        blocked.join(", ")
                    )
                }
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ctx.provider
        .delete_instance(group, provider_id)
        .await
        .map_err(|e| e.to_string())?;
    ctx.memory.locked().unneeded.remove(node);
    Ok(())
}
