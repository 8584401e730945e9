//! One autoscaling loop, in upstream's order: list the groups, snapshot the
//! cluster, stop if too many nodes are unready, give back instances that
//! never registered, scale up, scale down, write the status.

use std::{sync::Arc, time::Instant};

use outrigger_runtime::sync::LockExt;

use crate::{Ctx, Error, scaledown, scaleup, snapshot, status};

/// More unready nodes than this share (and than 3) halt autoscaling, as
/// upstream's `--max-total-unready-percentage` 45 and
/// `--ok-total-unready-count` 3.
const MAX_UNREADY_SHARE: f64 = 0.45;
const OK_UNREADY_COUNT: i64 = 3;

pub async fn run_once(ctx: &Arc<Ctx>) -> Result<(), Error> {
    let start = Instant::now();
    let groups = ctx.provider.groups().await?;
    ctx.metrics
        .observe("cloudProviderRefresh", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let snap = snapshot::take(ctx, groups);
    let m = &ctx.metrics;
    m.observe("snapshot", start.elapsed().as_secs_f64());
    m.nodes_count
        .get_or_create(&vec![("state".to_string(), "ready".to_string())])
        .set(snap.ready_nodes);
    m.nodes_count
        .get_or_create(&vec![("state".to_string(), "unready".to_string())])
        .set(snap.unready_nodes);
    m.node_groups_count
        .get_or_create(&vec![(
            "node_group_type".to_string(),
            "autoscaled".to_string(),
        )])
        .set(snap.groups.len() as i64);
    m.unschedulable_pods.set(snap.pending.len() as i64);
    let unhealthy = snap.unready_nodes > OK_UNREADY_COUNT
        && snap.unready_nodes as f64 > MAX_UNREADY_SHARE * snap.total_nodes as f64;
    if unhealthy {
        tracing::warn!(
            unready = snap.unready_nodes,
            total = snap.total_nodes,
            "Cluster has too many unready nodes; autoscaling is halted"
        );
        m.safe_to_autoscale.set(0);
        status::write(ctx, &snap, "Unhealthy", &Default::default());
        return Ok(());
    }
    m.safe_to_autoscale.set(1);
    scaleup::give_back_unregistered(ctx, &snap).await;
    let start = Instant::now();
    let scaled_up = scaleup::run(ctx, &snap).await?;
    m.observe("scaleUp", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let unneeded = if ctx.args.scale_down_enabled {
        scaledown::run(ctx, &snap, scaled_up).await?
    } else {
        Default::default()
    };
    m.observe("scaleDown", start.elapsed().as_secs_f64());
    let start = Instant::now();
    status::write(ctx, &snap, "Healthy", &unneeded);
    m.observe("writeStatus", start.elapsed().as_secs_f64());
    // What did not change is taken as it is by the next loop.
    ctx.snapshot_cache.locked().keep(snap);
    Ok(())
}
