//! One consistent view of the cluster for a loop, from the watched stores:
//! the pending pods that may trigger a scale-up, the nodes as the solver
//! sees them (with their pods), the same nodes' facts for the scale-down's
//! rules, each node's group, and the groups' upcoming nodes.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::ResourceExt;
use outrigger_node_groups::{
    group::{NodeGroup, Template},
    scaledown::{NodeFacts, PodFacts},
};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::{model, resources::Resources};
use outrigger_scheduling_kube as kube_model;

use crate::{Ctx, facts};

/// The watched objects a snapshot is built from.
pub struct Cluster {
    pub pods: Vec<Arc<Pod>>,
    pub nodes: Vec<Arc<Node>>,
    pub daemonsets: Vec<Arc<DaemonSet>>,
    pub pdbs: Vec<Arc<PodDisruptionBudget>>,
}

/// The flags a snapshot reads.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `--expendable-pods-priority-cutoff`.
    pub cutoff: i32,
    /// `--new-pod-scale-up-delay`.
    pub delay: Duration,
}

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
    /// Per registered node, its [`fingerprint`] when it can be taken again
    /// as it is (ready, no taint of its state).
    fingerprints: Vec<Option<u64>>,
}

fn priority(p: &Pod) -> i32 {
    p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// How long the pod has been pending at `now`.
fn pending_for(p: &Pod, now: jiff::Timestamp) -> Duration {
    let since = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.last_transition_time.as_ref())
        .or(p.metadata.creation_timestamp.as_ref())
        .map(|t| t.0);
    since
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or_default()
}

/// Upstream's `--max-node-startup-time` default: an unready node younger
/// than this is still starting.
const MAX_NODE_STARTUP: Duration = Duration::from_secs(15 * 60);

/// Whether an unready node is still starting (created less than
/// [`MAX_NODE_STARTUP`] ago).
fn starting(n: &Node, now: jiff::Timestamp) -> bool {
    n.metadata.creation_timestamp.as_ref().is_some_and(|t| {
        Duration::try_from(now.duration_since(t.0)).is_ok_and(|age| age < MAX_NODE_STARTUP)
    })
}

/// What a snapshot reads of a pod that changes only with the pod: kept
/// from loop to loop by UID while the pod's resourceVersion stays (pods
/// are most of a loop's reading: 33,500 at the benchmark's size).
struct Entry {
    resource_version: String,
    priority: i32,
    provisionable: bool,
    /// Its `cluster-autoscaler.kubernetes.io/pod-scale-up-delay`, if valid.
    scale_up_delay: Option<Duration>,
    /// As the solver sees it: a pod to place if provisionable, a node's
    /// load if bound; `None` if it cannot be read.
    model: Option<model::Pod>,
    /// For a bound pod, what the drain rules read of it that changes only
    /// with the pod.
    facts: Option<PodFacts>,
}

impl Entry {
    fn read(p: &Pod) -> Entry {
        let provisionable = kube_model::is_provisionable(p);
        let bound = p.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        Entry {
            resource_version: p.metadata.resource_version.clone().unwrap_or_default(),
            priority: priority(p),
            provisionable,
            scale_up_delay: p
                .annotations()
                .get(outrigger_node_groups::upstream::POD_SCALE_UP_DELAY)
                .and_then(|d| outrigger_values::duration::parse(d).ok()),
            model: if provisionable {
                kube_model::pod(p).ok()
            } else if bound {
                kube_model::bound_pod(p).ok()
            } else {
                None
            },
            facts: bound.then(|| facts::static_pod_facts(p)),
        }
    }
}

/// What the last snapshot read of each pod, by UID, and the snapshot that
/// last saw it.
#[derive(Default)]
pub struct Cache {
    pods: hashbrown::HashMap<String, (u64, Arc<Entry>)>,
    generation: u64,
    /// The last snapshot's registered nodes, by name, given back by
    /// [`Cache::keep`]: a node whose fingerprint has not changed is taken
    /// as it was (moved, not built again).
    nodes: hashbrown::HashMap<String, Kept>,
    hasher: hashbrown::DefaultHashBuilder,
}

struct Kept {
    fingerprint: u64,
    model: model::Node,
    facts: NodeFacts,
}

/// What a registered node's model and facts are built from: the node's
/// fields the snapshot reads, and its pods (UID and resourceVersion, in
/// order).
fn fingerprint(hasher: &hashbrown::DefaultHashBuilder, n: &Node, pods: &[(&Pod, &Entry)]) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = hasher.build_hasher();
    n.metadata.name.hash(&mut h);
    n.metadata.labels.hash(&mut h);
    n.metadata.deletion_timestamp.is_some().hash(&mut h);
    n.annotations()
        .get(outrigger_node_groups::upstream::SCALE_DOWN_DISABLED)
        .hash(&mut h);
    if let Some(spec) = &n.spec {
        spec.provider_id.hash(&mut h);
        spec.unschedulable.hash(&mut h);
        for t in spec.taints.iter().flatten() {
            (&t.key, &t.value, &t.effect).hash(&mut h);
        }
    }
    if let Some(status) = &n.status {
        for (k, v) in status.allocatable.iter().flatten() {
            (k, &v.0).hash(&mut h);
        }
        0xa1u8.hash(&mut h);
        for (k, v) in status.capacity.iter().flatten() {
            (k, &v.0).hash(&mut h);
        }
    }
    facts::ready(n).hash(&mut h);
    for (p, e) in pods {
        (&p.metadata.uid, &e.resource_version).hash(&mut h);
    }
    h.finish()
}

impl Cache {
    /// Keeps the snapshot's registered nodes for the next one.
    pub fn keep(&mut self, snap: Snapshot) {
        self.nodes.clear();
        for ((m, f), fp) in snap
            .nodes
            .into_iter()
            .zip(snap.facts)
            .zip(snap.fingerprints)
        {
            if let Some(fingerprint) = fp {
                self.nodes.insert(
                    f.name.clone(),
                    Kept {
                        fingerprint,
                        model: m,
                        facts: f,
                    },
                );
            }
        }
    }

    /// The pod's entry, read again only if the pod changed; marked seen.
    fn entry(&mut self, p: &Pod) -> Arc<Entry> {
        let generation = self.generation;
        let (Some(uid), Some(rv)) = (
            p.metadata.uid.as_deref(),
            p.metadata.resource_version.as_deref(),
        ) else {
            return Arc::new(Entry::read(p));
        };
        match self.pods.get_mut(uid) {
            Some((seen, e)) => {
                *seen = generation;
                if e.resource_version != rv {
                    *e = Arc::new(Entry::read(p));
                }
                e.clone()
            }
            None => {
                let e = Arc::new(Entry::read(p));
                self.pods.insert(uid.to_string(), (generation, e.clone()));
                e
            }
        }
    }
}

/// Builds the loop's view from the watch caches. `groups` come from the
/// provider.
pub(crate) fn take(ctx: &Ctx, groups: Vec<NodeGroup>) -> Snapshot {
    let cluster = Cluster {
        pods: ctx.pods.state(),
        nodes: ctx.nodes.state(),
        daemonsets: ctx.daemonsets.state(),
        pdbs: ctx.pdbs.state(),
    };
    let options = Options {
        cutoff: ctx.args.expendable_pods_priority_cutoff,
        delay: ctx.args.new_pod_scale_up_delay,
    };
    let mut cache = ctx.snapshot_cache.locked();
    build(
        &cluster,
        options,
        groups,
        jiff::Timestamp::now(),
        &mut cache,
    )
}

/// Builds the loop's view of `cluster` at `now`. `groups` come from the
/// provider; a group with a ready node takes its template from that node.
/// What `cache` holds of a pod whose resourceVersion has not changed is
/// not read again; the cache is left with this cluster's pods.
pub fn build(
    cluster: &Cluster,
    options: Options,
    mut groups: Vec<NodeGroup>,
    now: jiff::Timestamp,
    cache: &mut Cache,
) -> Snapshot {
    let all_pods = &cluster.pods;
    let pdbs = &cluster.pdbs;
    let Options { cutoff, delay } = options;
    cache.generation += 1;
    let entries: Vec<Arc<Entry>> = all_pods.iter().map(|p| cache.entry(p)).collect();
    let generation = cache.generation;
    cache.pods.retain(|_, (seen, _)| *seen == generation);
    let mut pending = vec![];
    for (p, e) in all_pods.iter().zip(&entries) {
        if !e.provisionable || e.priority < cutoff {
            continue;
        }
        if pending_for(p, now) < e.scale_up_delay.unwrap_or(delay) {
            continue;
        }
        if let Some(m) = &e.model {
            pending.push((p.clone(), m.clone()));
        }
    }
    let mut by_node: hashbrown::HashMap<&str, Vec<(&Pod, &Entry)>> = hashbrown::HashMap::new();
    for (p, e) in all_pods.iter().zip(entries.iter().map(Arc::as_ref)) {
        if !kube_model::is_active(p) {
            continue;
        }
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            by_node.entry(n).or_default().push((p, e));
        }
    }
    let mut snap = Snapshot {
        pending,
        nodes: vec![],
        facts: vec![],
        provider_ids: vec![],
        daemonsets: cluster
            .daemonsets
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
        fingerprints: vec![],
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
    for n in cluster.nodes.iter().cloned() {
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
        let mine = n
            .metadata
            .name
            .as_deref()
            .and_then(|name| by_node.remove(name))
            .unwrap_or_default();
        // A ready node without a taint of its state, and its pods, as in
        // the last snapshot: taken as it was, its pods' facts brought to
        // now.
        let reusable = is_ready
            && !n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| ts.iter().any(|t| facts::state_taint(&t.key)));
        let fp = reusable.then(|| fingerprint(&cache.hasher, &n, &mine));
        let kept = fp.and_then(|fp| {
            let k = cache.nodes.remove(n.metadata.name.as_deref()?)?;
            (k.fingerprint == fp).then_some(k)
        });
        let (m, mut node_facts) = match kept {
            Some(Kept {
                model: m,
                facts: mut f,
                ..
            }) => {
                for (pf, (p, _)) in f.pods.iter_mut().zip(&mine) {
                    facts::refresh_pod_facts(pf, p, pdbs, now);
                }
                (m, f)
            }
            None => {
                let models: Vec<model::Pod> = mine
                    .iter()
                    .filter(|(_, e)| e.priority >= cutoff)
                    .filter_map(|(_, e)| e.model.clone())
                    .collect();
                let mut m = kube_model::node(&n, models);
                // A group's node that has not become ready since it was
                // created (within upstream's --max-node-startup-time, 15
                // min), or is ready but still carries a taint of its state
                // (the node lifecycle controller removes `not-ready` a
                // moment later), is an upcoming node: pods count on it,
                // without those taints.
                let state_tainted = m.taints.iter().any(|t| facts::state_taint(&t.key));
                if (!is_ready || state_tainted) && group.is_some() && starting(&n, now) {
                    m.in_flight = true;
                    m.taints.retain(|t| !facts::state_taint(&t.key));
                }
                let pods = mine
                    .iter()
                    .filter_map(|(p, e)| {
                        let mut f = e.facts.clone()?;
                        facts::refresh_pod_facts(&mut f, p, pdbs, now);
                        Some(f)
                    })
                    .collect();
                let f = NodeFacts {
                    pods,
                    ..facts::node_facts_without_pods(&n, m.allocatable.clone())
                };
                (m, f)
            }
        };
        node_facts.group = group;
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
        snap.facts.push(node_facts);
        snap.fingerprints.push(fp);
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
    // Nodes of the last snapshot not taken again are gone or changed.
    cache.nodes.clear();
    snap
}
