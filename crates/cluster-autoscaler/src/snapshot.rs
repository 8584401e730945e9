//! One consistent view of the cluster for a loop, from the watched stores:
//! the pending pods that may trigger a scale-up, the nodes as the solver
//! sees them (with their pods), the same nodes' facts for the scale-down's
//! rules, each node's group, and the groups' upcoming nodes.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use outrigger_node_groups::{
    group::{NodeGroup, Template},
    scaledown::NodeFacts,
};
use outrigger_scheduling::{model, resources::Resources};
use outrigger_scheduling_kube as kube_model;

use crate::{Ctx, facts};

pub struct Snapshot {
    /// Pending pods that may trigger a scale-up, and their models.
    pub pending: Vec<(Arc<Pod>, model::Pod)>,
    /// Every node with its pods (a group's node still starting as an
    /// in-flight node), then one in-flight template node per upcoming node
    /// of each group that has not registered.
    pub nodes: Vec<model::Node>,
    /// `facts[i]` is `nodes[i]`'s, for the registered nodes.
    pub facts: Vec<NodeFacts>,
    /// The registered nodes' provider IDs (same order).
    pub provider_ids: Vec<String>,
    pub daemonsets: Vec<model::Pod>,
    pub groups: Vec<NodeGroup>,
    /// Per group: registered nodes, ready ones.
    pub registered: BTreeMap<usize, (i64, i64)>,
    /// Per group: nodes asked for that have not registered.
    pub upcoming: BTreeMap<usize, i64>,
    /// Every node in the cluster, ready or not.
    pub total_nodes: i64,
    pub ready_nodes: i64,
    pub unready_nodes: i64,
    pub total_cpu_millis: i64,
    pub total_memory_bytes: i64,
}

fn priority(p: &Pod) -> i32 {
    p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// How long the pod has been pending.
fn pending_for(p: &Pod) -> Duration {
    let since = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.last_transition_time.as_ref())
        .or(p.metadata.creation_timestamp.as_ref())
        .map(|t| t.0);
    since
        .and_then(|t| Duration::try_from(jiff::Timestamp::now().duration_since(t)).ok())
        .unwrap_or_default()
}

/// Upstream's `--max-node-startup-time` default: an unready node younger
/// than this is still starting.
const MAX_NODE_STARTUP: Duration = Duration::from_secs(15 * 60);

/// Whether an unready node is still starting (created less than
/// [`MAX_NODE_STARTUP`] ago).
fn starting(n: &k8s_openapi::api::core::v1::Node, now: jiff::Timestamp) -> bool {
    n.metadata.creation_timestamp.as_ref().is_some_and(|t| {
        Duration::try_from(now.duration_since(t.0)).is_ok_and(|age| age < MAX_NODE_STARTUP)
    })
}

/// Builds the loop's view. `groups` come from the provider; a group with a
/// ready node takes its template from that node.
pub fn take(ctx: &Ctx, mut groups: Vec<NodeGroup>) -> Snapshot {
    let all_pods = ctx.pods.state();
    let pdbs = ctx.pdbs.state();
    let now = jiff::Timestamp::now();
    let cutoff = ctx.args.expendable_pods_priority_cutoff;
    let delay = ctx.args.new_pod_scale_up_delay;
    let mut pending = vec![];
    for p in all_pods.iter().filter(|p| kube_model::is_provisionable(p)) {
        if priority(p) < cutoff {
            continue;
        }
        let own_delay = p
            .annotations()
            .get(outrigger_node_groups::upstream::POD_SCALE_UP_DELAY)
            .and_then(|d| outrigger_values::duration::parse(d).ok())
            .unwrap_or(delay);
        if pending_for(p) < own_delay {
            continue;
        }
        if let Ok(m) = kube_model::pod(p) {
            pending.push((p.clone(), m));
        }
    }
    let mut by_node: BTreeMap<String, Vec<&Arc<Pod>>> = BTreeMap::new();
    for p in all_pods.iter().filter(|p| kube_model::is_active(p)) {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let mut snap = Snapshot {
        pending,
        nodes: vec![],
        facts: vec![],
        provider_ids: vec![],
        daemonsets: ctx
            .daemonsets
            .state()
            .iter()
            .filter_map(|d| kube_model::daemonset_pod(d).ok())
            .collect(),
        groups: vec![],
        registered: BTreeMap::new(),
        upcoming: BTreeMap::new(),
        total_nodes: 0,
        ready_nodes: 0,
        unready_nodes: 0,
        total_cpu_millis: 0,
        total_memory_bytes: 0,
    };
    let mut templates: BTreeMap<usize, Template> = BTreeMap::new();
    // Instance ID (the provider ID's last part) -> its group (the first
    // that has it), as `NodeGroup::has` matches.
    let mut by_instance: std::collections::HashMap<String, usize> = Default::default();
    for (g, group) in groups.iter().enumerate() {
        for p in &group.instances {
            by_instance
                .entry(p.rsplit('/').next().unwrap_or(p).to_string())
                .or_insert(g);
        }
    }
    for n in ctx.nodes.state() {
        snap.total_nodes += 1;
        let is_ready = facts::ready(&n);
        if is_ready {
            snap.ready_nodes += 1;
        } else {
            snap.unready_nodes += 1;
        }
        let pid = n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        let group = by_instance
            .get(pid.rsplit('/').next().unwrap_or(&pid))
            .copied();
        let mine: Vec<&Arc<Pod>> = by_node.remove(&n.name_any()).unwrap_or_default();
        let models: Vec<model::Pod> = mine
            .iter()
            .filter(|p| priority(p) >= cutoff)
            .filter_map(|p| kube_model::bound_pod(p).ok())
            .collect();
        let mut m = kube_model::node(&n, models);
        // A group's node that has not become ready since it was created
        // (within upstream's --max-node-startup-time, 15 min), or is ready
        // but still carries a taint of its state (the node lifecycle
        // controller removes `not-ready` a moment later), is an upcoming
        // node: pods count on it, without those taints.
        let state_tainted = m.taints.iter().any(|t| facts::state_taint(&t.key));
        if (!is_ready || state_tainted) && group.is_some() && starting(&n, now) {
            m.in_flight = true;
            m.taints.retain(|t| !facts::state_taint(&t.key));
        }
        snap.total_cpu_millis += m.allocatable.cpu_millis;
        snap.total_memory_bytes += m.allocatable.memory_bytes;
        if let Some(g) = group {
            let e = snap.registered.entry(g).or_insert((0, 0));
            e.0 += 1;
            if is_ready {
                e.1 += 1;
                if let std::collections::btree_map::Entry::Vacant(slot) = templates.entry(g) {
                    let capacity = n
                        .status
                        .as_ref()
                        .and_then(|s| s.capacity.as_ref())
                        .map(|c| {
                            Resources::parse(c.iter().map(|(k, v)| (k.as_str(), v.0.as_str())))
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    let mut t =
                        Template::from_node(None, &m.labels, &m.taints, &capacity, &m.allocatable);
                    t.price = groups[g].template.as_ref().and_then(|t| t.price);
                    slot.insert(t);
                }
            }
        }
        let mine: Vec<&Pod> = mine.iter().map(|p| p.as_ref()).collect();
        snap.facts.push(NodeFacts {
            group,
            ..facts::node_facts(&n, &mine, &pdbs, now)
        });
        snap.provider_ids.push(pid);
        snap.nodes.push(m);
    }
    for (g, t) in templates {
        groups[g].template = Some(t);
    }
    // Upcoming nodes: asked for, not registered yet; they take pending
    // pods before any new scale-up.
    for (gi, g) in groups.iter().enumerate() {
        let registered = snap.registered.get(&gi).map_or(0, |r| r.0);
        let upcoming = (g.target - registered).max(0);
        if upcoming == 0 {
            continue;
        }
        snap.upcoming.insert(gi, upcoming);
        if let Some(t) = &g.template {
            for k in 0..upcoming {
                snap.nodes.push(model::Node {
                    name: format!("{}-upcoming-{k}", g.id),
                    labels: t.labels.clone(),
                    taints: t.taints.clone(),
                    allocatable: t.allocatable.clone(),
                    pods: snap
                        .daemonsets
                        .iter()
                        .filter(|d| {
                            model::untolerated(&t.taints, &d.tolerations, false).is_none()
                                && d.matches_node(&t.labels)
                        })
                        .cloned()
                        .collect(),
                    in_flight: true,
                    pool: None,
                    price: None,
                    do_not_disrupt: false,
                });
            }
        }
    }
    snap.groups = groups;
    snap
}
