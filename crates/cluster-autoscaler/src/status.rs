//! The status ConfigMap (`--status-config-map-name` in `--namespace`, key
//! `status`), written after every loop when `--write-status-configmap`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use outrigger_node_groups::{
    scaledown::Found,
    status::{Counts, GroupStatus, Status},
};
use outrigger_runtime::sync::LockExt;

use crate::{Ctx, snapshot::Snapshot};

/// The document for this loop.
pub fn document(ctx: &Ctx, snap: &Snapshot, health: &'static str, found: &Found) -> Status {
    let now = std::time::Instant::now();
    let mem = ctx.memory.locked();
    let mut candidates: BTreeMap<usize, i64> = BTreeMap::new();
    for u in &found.unneeded {
        if let Some(g) = snap.facts[u.node].group {
            *candidates.entry(g).or_insert(0) += 1;
        }
    }
    let groups: Vec<GroupStatus> = snap
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let (total, ready) = snap.registered.get(&i).copied().unwrap_or((0, 0));
            let backoff = mem.backoff.get(&g.id).filter(|(until, _, _)| *until > now);
            let upcoming = snap.upcoming.get(&i).copied().unwrap_or(0);
            GroupStatus {
                name: g.id.clone(),
                counts: Counts {
                    total,
                    ready,
                    not_started: upcoming,
                    unready: total - ready,
                    unregistered: upcoming,
                },
                target: g.target,
                min: g.min,
                max: g.max,
                scale_up: if backoff.is_some() {
                    "Backoff"
                } else if upcoming > 0 {
                    "InProgress"
                } else {
                    "NoActivity"
                },
                backoff_reason: backoff.map(|(_, _, why)| why.clone()),
                scale_down_candidates: candidates.get(&i).copied().unwrap_or(0),
            }
        })
        .collect();
    let upcoming: i64 = snap.upcoming.values().sum();
    Status {
        time: jiff::Timestamp::now().to_string(),
        counts: Counts {
            total: snap.total_nodes,
            ready: snap.ready_nodes,
            not_started: upcoming,
            unready: snap.unready_nodes,
            unregistered: upcoming,
        },
        health,
        scale_up: if upcoming > 0 {
            "InProgress"
        } else {
            "NoActivity"
        },
        scale_down_candidates: found.unneeded.len() as i64,
        last_scale_up: mem.last_scale_up_time.clone(),
        last_scale_down: mem.last_scale_down_time.clone(),
        groups,
    }
}

/// Hands the status ConfigMap for this loop to the writer ([`writer`]), so
/// the loop does not wait on the API server for it.
pub fn write(ctx: &Ctx, snap: &Snapshot, health: &'static str, found: &Found) {
    if !ctx.args.write_status_configmap {
        return;
    }
    let doc = document(ctx, snap, health, found).to_yaml();
    ctx.status.send_replace(Some(doc));
}

/// Writes the latest status document handed to it, one write at a time
/// (server-side apply: created when missing); a document superseded while
/// the last one was being written is skipped, never the latest. Runs until
/// the sender is dropped.
pub async fn writer(
    ctx: std::sync::Arc<Ctx>,
    mut rx: tokio::sync::watch::Receiver<Option<String>>,
) {
    while rx.changed().await.is_ok() {
        let Some(doc) = rx.borrow_and_update().clone() else {
            continue;
        };
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.args.namespace);
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": ctx.args.status_config_map_name,
                "namespace": ctx.args.namespace,
                "annotations": {"cluster-autoscaler.kubernetes.io/last-updated": jiff::Timestamp::now().to_string()},
            },
            "data": {"status": doc},
        });
        let pp = PatchParams::apply("cluster-autoscaler").force();
        if let Err(e) = api
            .patch(&ctx.args.status_config_map_name, &pp, &Patch::Apply(cm))
            .await
        {
            tracing::warn!(error = %e, "writing the status ConfigMap");
        }
    }
}
