//! Scale-up, carried out: the estimates of `outrigger-node-groups` over the
//! loop's snapshot, the expanders' choice, similar groups balanced when
//! asked, the new targets set through the provider, Events on the pods
//! (`TriggeredScaleUp`, `NotTriggerScaleUp` with each group's reason) and
//! on the status ConfigMap (`ScaledUpGroup`); groups whose scale-up failed
//! (the cloud says so, or their instances never registered) back off.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Resource, runtime::events::EventType};
use outrigger_node_groups::{
    balance::{Comparator, Ratios, Shape, balance_scale_up, find_similar},
    expander,
    group::NodeGroup,
    scaleup::{self, Input, Totals},
    upstream,
};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::{
    model::{Pod, untolerated},
    resources::Resources,
};

use crate::{Ctx, Error, snapshot::Snapshot};

/// First and longest backoff of a group whose scale-up failed.
const BACKOFF_FIRST: Duration = Duration::from_secs(300);
const BACKOFF_MAX: Duration = Duration::from_secs(1800);
/// A NotTriggerScaleUp Event is not repeated for a pod within this.
const EVENT_DEDUP: Duration = Duration::from_secs(300);

/// The status ConfigMap, for the Events upstream puts on it.
pub fn status_ref(ctx: &Ctx) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(ctx.args.status_config_map_name.clone()),
        namespace: Some(ctx.args.namespace.clone()),
        ..Default::default()
    }
}

/// The priority expander's ConfigMap, for the warnings upstream puts on it.
fn priority_ref(ctx: &Ctx) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(upstream::PRIORITY_CONFIGMAP.into()),
        namespace: Some(ctx.args.namespace.clone()),
        ..Default::default()
    }
}

/// Backs the group off after a failure: 5 minutes, doubling to 30.
pub fn back_off(ctx: &Ctx, group: &str, why: &str) {
    let mut mem = ctx.memory.locked();
    let failures = mem.backoff.get(group).map_or(0, |b| b.1) + 1;
    let d = (BACKOFF_FIRST * 2u32.saturating_pow(failures - 1)).min(BACKOFF_MAX);
    mem.backoff.insert(
        group.to_string(),
        (Instant::now() + d, failures, why.to_string()),
    );
    mem.last_failure = Some(Instant::now());
    drop(mem);
    tracing::warn!(
        group,
        reason = why,
        backoff_seconds = d.as_secs(),
        "node group backs off after a failed scale-up"
    );
    ctx.metrics
        .failed_scale_ups
        .get_or_create(&vec![(
            "reason".to_string(),
            "cloudProviderError".to_string(),
        )])
        .inc();
}

/// Instances asked for that did not register as nodes within
/// `--max-node-provision-time` are given back; their group backs off.
/// A group whose cloud reports a failed scale-up backs off at once (and
/// its target comes back to what registered).
pub async fn give_back_unregistered(ctx: &Ctx, snap: &Snapshot) {
    let registered: BTreeSet<&str> = snap.provider_ids.iter().map(String::as_str).collect();
    let now = Instant::now();
    let mut late: Vec<(String, String)> = vec![];
    {
        let mut mem = ctx.memory.locked();
        let mut seen = BTreeSet::new();
        for g in &snap.groups {
            for pid in &g.instances {
                if registered.contains(pid.as_str())
                    || snap.provider_ids.iter().any(|r| same_instance(r, pid))
                {
                    continue;
                }
                seen.insert(pid.clone());
                let since = *mem.unregistered.entry(pid.clone()).or_insert(now);
                if now.duration_since(since) >= ctx.args.max_node_provision_time {
                    late.push((g.id.clone(), pid.clone()));
                }
            }
        }
        mem.unregistered.retain(|p, _| seen.contains(p));
    }
    for (group, pid) in late {
        tracing::warn!(group = %group, instance = %pid, "instance did not register within --max-node-provision-time; giving it back");
        if let Err(e) = ctx.provider.delete_instance(&group, &pid).await {
            tracing::warn!(group = %group, instance = %pid, error = %e, "giving back an unregistered instance");
        }
        ctx.memory.locked().unregistered.remove(&pid);
        back_off(
            ctx,
            &group,
            "the group's instances did not register in time",
        );
    }
    // Groups scaled up lately: did the cloud fail to launch?
    let recent: Vec<(String, jiff::Timestamp)> = {
        let mut mem = ctx.memory.locked();
        let horizon = ctx.args.max_node_provision_time;
        mem.scaling_up.retain(|_, (at, _)| at.elapsed() < horizon);
        mem.scaling_up
            .iter()
            .map(|(g, (_, since))| (g.clone(), *since))
            .collect()
    };
    for (group, since) in recent {
        let Some(gi) = snap.groups.iter().position(|g| g.id == group) else {
            continue;
        };
        match ctx.provider.scale_up_failure(&group, since).await {
            Ok(Some(why)) => {
                ctx.memory.locked().scaling_up.remove(&group);
                back_off(ctx, &group, &why);
                let registered = snap.registered.get(&gi).map_or(0, |r| r.0);
                let g = &snap.groups[gi];
                let target = registered.max(g.min);
                if target < g.target
                    && let Err(e) = ctx.provider.set_target(&group, target).await
                {
                    tracing::warn!(group = %group, error = %e, "bringing the target back after a failed scale-up");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(group = %group, error = %e, "reading the group's scaling activities")
            }
        }
    }
}

/// Whether two provider IDs name the same instance.
fn same_instance(a: &str, b: &str) -> bool {
    a == b || (a.rsplit('/').next() == b.rsplit('/').next() && a.contains('/') && b.contains('/'))
}

/// The label the kwok provider names a node's group with.
const KWOK_GROUP_LABEL: &str = "kwok-nodegroup";

/// How groups are compared for `--balance-similar-node-groups`: AWS's
/// comparator for Auto Scaling groups. For kwok groups, the generic one
/// also ignoring the kwok group label, deliberately: upstream's generic
/// comparator compares it, so kwok groups would never be similar.
/// `--balancing-ignore-label` adds to the labels ignored.
fn comparator(cloud_provider: &str, ignore: &[String]) -> Comparator {
    let mut extra: Vec<&str> = ignore.iter().map(|s| s.as_str()).collect();
    if cloud_provider == "kwok" {
        extra.push(KWOK_GROUP_LABEL);
        Comparator::generic(&extra, Ratios::default())
    } else {
        Comparator::aws(&extra, Ratios::default())
    }
}

/// A group's template as the comparison sees it: the daemonsets that
/// would run on a new node count as requested.
fn shape(g: &NodeGroup, daemonsets: &[Pod]) -> Option<Shape> {
    let t = g.template.as_ref()?;
    let requested = Resources::sum(
        daemonsets
            .iter()
            .filter(|d| untolerated(&t.taints, &d.tolerations, false).is_none())
            .filter(|d| d.matches_node(&t.labels))
            .map(|d| &d.requests),
    );
    Some(Shape {
        labels: t.labels.clone(),
        capacity: t.capacity.clone(),
        allocatable: t.allocatable.clone(),
        requested,
    })
}

/// `nodes` new nodes for `chosen`, split over it and the groups similar to
/// it that are not backing off and whose nodes the chosen option's `pods`
/// could go to (selectors and taints), the smallest first (group index ->
/// nodes to add).
fn balance(
    comparator: &Comparator,
    groups: &[NodeGroup],
    daemonsets: &[Pod],
    chosen: usize,
    nodes: i64,
    backoff: &BTreeSet<usize>,
    pods: &[&Pod],
) -> BTreeMap<usize, i64> {
    let shapes: Vec<Option<Shape>> = groups.iter().map(|g| shape(g, daemonsets)).collect();
    let takes_pods = |g: &NodeGroup| {
        g.template.as_ref().is_some_and(|t| {
            pods.iter().all(|p| {
                p.matches_node(&t.labels) && untolerated(&t.taints, &p.tolerations, false).is_none()
            })
        })
    };
    let mut set: Vec<(usize, i64, i64)> = vec![(chosen, groups[chosen].target, groups[chosen].max)];
    set.extend(
        find_similar(comparator, &shapes, chosen)
            .into_iter()
            .filter(|i| !backoff.contains(i) && takes_pods(&groups[*i]))
            .map(|i| (i, groups[i].target, groups[i].max)),
    );
    balance_scale_up(&set, nodes)
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.group, i.new - i.current))
        .collect()
}

/// Pseudo-random tie breaking for the `random` expander.
fn pick(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos as usize % n
}

/// Scales up if pending pods need it; `Ok(true)` if it did.
pub async fn run(ctx: &Ctx, snap: &Snapshot) -> Result<bool, Error> {
    if snap.pending.is_empty() {
        return Ok(false);
    }
    let now = Instant::now();
    let backoff: BTreeSet<usize> = {
        let mem = ctx.memory.locked();
        snap.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                mem.backoff
                    .get(&g.id)
                    .is_some_and(|(until, _, _)| *until > now)
            })
            .map(|(i, _)| i)
            .collect()
    };
    let pods: Vec<_> = snap.pending.iter().map(|(_, m)| m.clone()).collect();
    let upcoming: i64 = snap.upcoming.values().sum();
    // Against --cores-total and --memory-total, as upstream: each group's
    // target size times its template, and the nodes of no group (or of a
    // group without a template) on their own.
    let others = snap
        .nodes
        .iter()
        .zip(&snap.provider_ids)
        .filter(|(_, pid)| {
            snap.groups
                .iter()
                .find(|g| g.has(pid))
                .is_none_or(|g| g.template.is_none())
        })
        .map(|(n, _)| &n.allocatable);
    let totals = Totals::of_groups(&snap.groups, others, snap.total_nodes + upcoming);
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &snap.nodes,
        groups: &snap.groups,
        backoff: &backoff,
        daemonsets: &snap.daemonsets,
        limits: ctx.settings.limits,
        totals,
    });
    // Pods nothing helps: say why, once in a while.
    for (p, reasons) in &plan.not_helped {
        let (pod, _) = &snap.pending[*p];
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let fresh = {
            let mut mem = ctx.memory.locked();
            mem.not_triggered.retain(|_, at| at.elapsed() < EVENT_DEDUP);
            mem.not_triggered
                .insert(uid.clone(), Instant::now())
                .is_none()
        };
        if fresh {
            let note = upstream::pod_did_not_trigger_scale_up(&scaleup::reasons_text(
                reasons,
                &snap.groups,
            ));
            ctx.events
                .publish_later(
                    pod.object_ref(&()),
                    EventType::Normal,
                    upstream::NOT_TRIGGER_SCALE_UP,
                    "ScaleUp",
                    note,
                )
                .await;
        }
    }
    let priorities = ctx.priorities();
    let Some(choice) = expander::choose(
        &ctx.settings.expanders,
        &plan.options,
        &expander::Context {
            groups: &snap.groups,
            priorities: &priorities,
            cluster_nodes: usize::try_from(snap.total_nodes).unwrap_or(0),
            pricing: expander::PodPricing::default(),
        },
        pick,
    ) else {
        return Ok(false);
    };
    // The priority expander warns on its ConfigMap of each option's group
    // no priority matches.
    if ctx
        .settings
        .expanders
        .contains(&expander::Expander::Priority)
        && !priorities.is_empty()
    {
        let ids = plan
            .options
            .iter()
            .filter_map(|o| snap.groups.get(o.group))
            .map(|g| g.id.as_str());
        for g in priorities.unmatched(ids) {
            ctx.events
                .publish(
                    priority_ref(ctx),
                    EventType::Warning,
                    expander::PRIORITY_NOT_MATCHED_REASON,
                    "ScaleUp",
                    expander::not_matched_message(g),
                )
                .await;
        }
    }
    let best = &plan.options[choice];
    let adds = if ctx.args.balance_similar_node_groups {
        let chosen_pods: Vec<&Pod> = best.pods.iter().map(|p| &pods[*p]).collect();
        balance(
            &comparator(&ctx.args.cloud_provider, &ctx.args.balancing_ignore_label),
            &snap.groups,
            &snap.daemonsets,
            best.group,
            best.nodes,
            &backoff,
            &chosen_pods,
        )
    } else {
        BTreeMap::from([(best.group, best.nodes)])
    };
    let mut items = vec![];
    let mut done = 0;
    for (gi, add) in &adds {
        let g = &snap.groups[*gi];
        let to = (g.target + add).min(g.max);
        if to <= g.target {
            continue;
        }
        tracing::info!(
            "{}",
            upstream::setting_group_size(&g.id, g.target, to, g.max)
        );
        match ctx.provider.set_target(&g.id, to).await {
            Ok(()) => {
                items.push(upstream::scale_up_item(&g.id, g.target, to, g.max));
                done += to - g.target;
                ctx.memory
                    .locked()
                    .scaling_up
                    .insert(g.id.clone(), (Instant::now(), jiff::Timestamp::now()));
                ctx.events
                    .publish(
                        status_ref(ctx),
                        EventType::Normal,
                        upstream::SCALED_UP_GROUP,
                        "ScaleUp",
                        upstream::setting_group_size(&g.id, g.target, to, g.max),
                    )
                    .await;
            }
            Err(e) => {
                tracing::warn!(group = %g.id, error = %e, "scale-up failed");
                back_off(ctx, &g.id, &e.to_string());
            }
        }
    }
    if done == 0 {
        return Ok(false);
    }
    tracing::info!("Final scale-up plan: [{}]", items.join(" "));
    ctx.metrics.scaled_up_nodes.inc_by(done as u64);
    {
        let mut mem = ctx.memory.locked();
        mem.last_scale_up = Some(Instant::now());
        mem.last_scale_up_time = Some(jiff::Timestamp::now().to_string());
    }
    let note = upstream::pod_triggered_scale_up(&items);
    for p in &best.pods {
        let (pod, _) = &snap.pending[*p];
        ctx.events
            .publish_later(
                pod.object_ref(&()),
                EventType::Normal,
                upstream::TRIGGERED_SCALE_UP,
                "ScaleUp",
                note.clone(),
            )
            .await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrigger_node_groups::group::Template;
    use outrigger_scheduling::model::{LABEL_ZONE, Labels};

    fn group(id: &str, zone: &str, target: i64, max: i64) -> NodeGroup {
        let mut labels = Labels::new();
        labels.insert(LABEL_ZONE.into(), zone.into());
        labels.insert("node.kubernetes.io/instance-type".into(), "m5.large".into());
        labels.insert(KWOK_GROUP_LABEL.into(), id.into());
        let r = Resources {
            cpu_millis: 2000,
            memory_bytes: 8 << 30,
            pods: 29,
            ..Default::default()
        };
        NodeGroup {
            id: id.into(),
            min: 0,
            max,
            target,
            instances: vec![],
            template: Some(Template {
                instance_type: "m5.large".into(),
                labels,
                taints: vec![],
                capacity: r.clone(),
                allocatable: r,
                price: None,
            }),
        }
    }

    #[test]
    fn similar_groups_share_a_scale_up_smallest_first() {
        let groups = vec![
            group("a", "z1", 3, 10),
            group("b", "z2", 1, 10),
            group("c", "z3", 2, 3),
        ];
        let kwok = comparator("kwok", &[]);
        let add = balance(&kwok, &groups, &[], 0, 5, &BTreeSet::new(), &[]);
        // b: 1 -> 4, c: 2 -> 3 (its max), a: 3 -> 4.
        assert_eq!(add, BTreeMap::from([(0, 1), (1, 3), (2, 1)]));
        // A group in backoff is left out.
        let add = balance(&kwok, &groups, &[], 0, 2, &BTreeSet::from([1]), &[]);
        assert_eq!(add, BTreeMap::from([(0, 1), (2, 1)]));
        // With AWS's comparator the kwok group label tells them apart.
        let add = balance(
            &comparator("aws", &[]),
            &groups,
            &[],
            0,
            2,
            &BTreeSet::new(),
            &[],
        );
        assert_eq!(add, BTreeMap::from([(0, 2)]));
        // A group whose nodes the pods cannot go to is left out.
        let mut p = Pod::new("default", "p", Resources::default());
        p.node_selector.insert(LABEL_ZONE.into(), "z1".into());
        let g2 = vec![group("a", "z1", 3, 10), group("b", "z2", 1, 10)];
        let add = balance(&kwok, &g2, &[], 0, 2, &BTreeSet::new(), &[&p]);
        assert_eq!(add, BTreeMap::from([(0, 2)]));
    }
}
