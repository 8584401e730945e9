//! Scale-down: which nodes are unneeded — requests below the utilization
//! threshold for cpu and memory, and every pod on them able to move to
//! another node (the shared solver, over the remaining nodes only: a
//! scale-down never counts on a new node) — what keeps the others, and
//! which unneeded nodes to remove now.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use outrigger_scheduling::{
    model::{Node, Problem, Target},
    resources::Resources,
    solver::solve,
};

use crate::group::NodeGroup;

/// `--scale-down-*` and `--skip-nodes-*` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `--scale-down-utilization-threshold` (0.5).
    pub threshold: f64,
    /// `--skip-nodes-with-local-storage` (true).
    pub skip_local_storage: bool,
    /// `--skip-nodes-with-system-pods` (true).
    pub skip_system_pods: bool,
    /// `--ignore-daemonsets-utilization` (false).
    pub ignore_daemonsets_utilization: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            skip_local_storage: true,
            skip_system_pods: true,
            ignore_daemonsets_utilization: false,
        }
    }
}

/// What the drain rules need of a pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodFacts {
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub requests: Resources,
    pub daemon: bool,
    /// A static pod (its mirror on the API server).
    pub mirror: bool,
    /// The kind of its controlling owner, if any.
    pub controller: Option<String>,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict`.
    pub safe_to_evict: Option<bool>,
    /// Its hostPath and non-memory emptyDir volumes.
    pub local_volumes: Vec<String>,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes`.
    pub safe_local_volumes: Vec<String>,
    /// A PodDisruptionBudget selects it.
    pub has_pdb: bool,
    /// A PodDisruptionBudget selecting it allows no disruption now.
    pub pdb_blocks: bool,
    /// Succeeded or Failed: it holds nothing.
    pub terminal: bool,
}

/// What the scale-down needs of a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    /// Index into the groups, if a group has it.
    pub group: Option<usize>,
    pub ready: bool,
    /// `cluster-autoscaler.kubernetes.io/scale-down-disabled: "true"`.
    pub scale_down_disabled: bool,
    /// Being deleted, or already tainted for deletion.
    pub deleting: bool,
    pub allocatable: Resources,
    pub pods: Vec<PodFacts>,
}

/// Why a pod keeps its node (upstream's drain rules), if it does.
pub fn drain_blocker(p: &PodFacts, cfg: &Config) -> Option<String> {
    if p.terminal || p.daemon || p.mirror {
        return None;
    }
    if p.safe_to_evict == Some(false) {
        return Some(format!(
            "pod {} is annotated cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\"",
            p.key
        ));
    }
    if p.pdb_blocks {
        return Some(format!(
            "pod {}: not enough pod disruption budget to move it",
            p.key
        ));
    }
    if p.safe_to_evict == Some(true) {
        return None;
    }
    if p.controller.is_none() {
        return Some(format!("pod {} is not replicated (no controller)", p.key));
    }
    if cfg.skip_system_pods && p.namespace == "kube-system" && !p.has_pdb {
        return Some(format!(
            "non-daemonset, non-mirrored kube-system pod {} has no pod disruption budget",
            p.key
        ));
    }
    if cfg.skip_local_storage {
        let unsafe_volumes: Vec<&String> = p
            .local_volumes
            .iter()
            .filter(|v| !p.safe_local_volumes.contains(v))
            .collect();
        if !unsafe_volumes.is_empty() {
            return Some(format!(
                "pod {} has local storage ({})",
                p.key,
                unsafe_volumes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    None
}

/// Requests over allocatable, the larger of cpu and memory (daemonset
/// pods left out with `ignore_daemonsets_utilization`; finished pods always).
pub fn utilization(n: &NodeFacts, cfg: &Config) -> f64 {
    let mut req = Resources::default();
    for p in n
        .pods
        .iter()
        .filter(|p| !(p.terminal || (p.daemon && cfg.ignore_daemonsets_utilization)))
    {
        req.add(&p.requests);
    }
    let r = |a: i64, b: i64| if b <= 0 { 0.0 } else { a as f64 / b as f64 };
    r(req.cpu_millis, n.allocatable.cpu_millis).max(r(req.memory_bytes, n.allocatable.memory_bytes))
}

/// A node that can go.
#[derive(Clone, Debug, PartialEq)]
pub struct Unneeded {
    /// Index into the nodes.
    pub node: usize,
    pub utilization: f64,
    /// No pod to move.
    pub empty: bool,
    /// Where each pod would go: (pod key, node name).
    pub moves: Vec<(String, String)>,
}

/// The nodes that can go, and why each other node of a group stays.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub unneeded: Vec<Unneeded>,
    /// Node index -> why it stays.
    pub kept: BTreeMap<usize, String>,
}

/// Finds the unneeded nodes. `nodes` are the solver's view of the
/// cluster's nodes (with their pods), `facts[i]` the same node's facts.
/// Nodes are tried least utilized first; once one is found unneeded, its
/// pods are counted on the nodes they would move to and it takes no pods,
/// so two unneeded nodes never count on the same room.
pub fn find_unneeded(
    nodes: &[Node],
    facts: &[NodeFacts],
    groups: &[NodeGroup],
    cfg: &Config,
) -> Found {
    let mut found = Found::default();
    let mut order = vec![];
    for (i, f) in facts.iter().enumerate() {
        let Some(g) = f.group else { continue };
        let why = if f.deleting {
            Some("the node is being deleted".to_string())
        } else if f.scale_down_disabled {
            Some("scale-down is disabled on the node (cluster-autoscaler.kubernetes.io/scale-down-disabled)".to_string())
        } else if !f.ready {
            Some("the node is not ready".to_string())
        } else if groups.get(g).is_some_and(|g| g.target <= g.min) {
            Some("its node group is at its minimum size".to_string())
        } else {
            None
        };
        if let Some(w) = why {
            found.kept.insert(i, w);
            continue;
        }
        let u = utilization(f, cfg);
        let empty = f.pods.iter().all(|p| p.terminal || p.daemon || p.mirror);
        if !empty && u >= cfg.threshold {
            found.kept.insert(
                i,
                format!(
                    "the node is not underutilized: {:.0}% of its cpu or memory is requested (threshold {:.0}%)",
                    u * 100.0,
                    cfg.threshold * 100.0
                ),
            );
            continue;
        }
        if let Some(b) = f.pods.iter().find_map(|p| drain_blocker(p, cfg)) {
            found.kept.insert(i, b);
            continue;
        }
        order.push((u, empty, i));
    }
    // Empty nodes first, then least utilized.
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)).then(a.2.cmp(&b.2)));
    let mut snapshot: Vec<Node> = nodes.to_vec();
    let mut gone: BTreeSet<usize> = BTreeSet::new();
    for (u, empty, i) in order {
        if empty {
            gone.insert(i);
            found.unneeded.push(Unneeded {
                node: i,
                utilization: u,
                empty: true,
                moves: vec![],
            });
            continue;
        }
        let movable: Vec<_> = snapshot[i]
            .pods
            .iter()
            .filter(|p| !p.daemon)
            .cloned()
            .collect();
        let remaining: Vec<usize> = (0..snapshot.len())
            .filter(|j| *j != i && !gone.contains(j))
            .collect();
        let problem = Problem {
            pods: movable,
            nodes: remaining.iter().map(|j| snapshot[*j].clone()).collect(),
            pools: vec![],
            instance_types: vec![],
            daemonsets: vec![],
        };
        let plan = solve(&problem);
        if let Some(u0) = plan.unplaced.first() {
            found.kept.insert(
                i,
                format!(
                    "pod {} has nowhere to go: {}",
                    problem.pods[u0.pod].key(),
                    u0.reason
                ),
            );
            continue;
        }
        let mut moves = vec![];
        for (p, t) in &plan.placements {
            if let Target::Node(n) = t {
                let dest = remaining[*n];
                moves.push((problem.pods[*p].key(), snapshot[dest].name.clone()));
                snapshot[dest].pods.push(problem.pods[*p].clone());
            }
        }
        gone.insert(i);
        found.unneeded.push(Unneeded {
            node: i,
            utilization: u,
            empty: false,
            moves,
        });
    }
    found
}

/// Timing and bounds of removals.
#[derive(Clone, Debug, PartialEq)]
pub struct Removal {
    /// `--scale-down-unneeded-time` (10 min).
    pub unneeded_time: Duration,
    /// `--max-empty-bulk-delete` (10).
    pub max_empty_bulk: usize,
}

/// What to remove now: empty nodes unneeded for long enough in bulk, else
/// one non-empty node; never a group below its minimum (nodes already
/// being deleted counted).
pub fn choose_removals(
    found: &Found,
    since: &BTreeMap<usize, Duration>,
    facts: &[NodeFacts],
    groups: &[NodeGroup],
    deleting_per_group: &BTreeMap<usize, i64>,
    r: &Removal,
) -> (Vec<usize>, Option<usize>) {
    let mut left: BTreeMap<usize, i64> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                i,
                g.target - deleting_per_group.get(&i).copied().unwrap_or(0) - g.min,
            )
        })
        .collect();
    let ripe = |u: &Unneeded| since.get(&u.node).is_some_and(|d| *d >= r.unneeded_time);
    let mut empty = vec![];
    for u in found.unneeded.iter().filter(|u| u.empty && ripe(u)) {
        if empty.len() >= r.max_empty_bulk {
            break;
        }
        let Some(g) = facts[u.node].group else {
            continue;
        };
        let room = left.entry(g).or_insert(0);
        if *room > 0 {
            *room -= 1;
            empty.push(u.node);
        }
    }
    if !empty.is_empty() {
        return (empty, None);
    }
    let drain = found
        .unneeded
        .iter()
        .filter(|u| !u.empty && ripe(u))
        .find(|u| {
            facts[u.node]
                .group
                .is_some_and(|g| left.get(&g).copied().unwrap_or(0) > 0)
        })
        .map(|u| u.node);
    (vec![], drain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(key: &str) -> PodFacts {
        PodFacts {
            key: format!("default/{key}"),
            namespace: "default".into(),
            controller: Some("ReplicaSet".into()),
            ..Default::default()
        }
    }

    #[test]
    fn drain_rules_as_upstream() {
        let cfg = Config::default();
        assert_eq!(drain_blocker(&pod("a"), &cfg), None);
        let mut p = pod("a");
        p.safe_to_evict = Some(false);
        assert!(drain_blocker(&p, &cfg).unwrap().contains("safe-to-evict"));
        let mut p = pod("a");
        p.controller = None;
        assert!(drain_blocker(&p, &cfg).unwrap().contains("not replicated"));
        p.safe_to_evict = Some(true);
        assert_eq!(drain_blocker(&p, &cfg), None);
        let mut p = pod("a");
        p.namespace = "kube-system".into();
        assert!(drain_blocker(&p, &cfg).unwrap().contains("kube-system"));
        p.has_pdb = true;
        assert_eq!(drain_blocker(&p, &cfg), None);
        let mut p = pod("a");
        p.local_volumes = vec!["cache".into(), "data".into()];
        assert!(drain_blocker(&p, &cfg).unwrap().contains("cache, data"));
        p.safe_local_volumes = vec!["cache".into(), "data".into()];
        assert_eq!(drain_blocker(&p, &cfg), None);
        let mut p = pod("a");
        p.local_volumes = vec!["cache".into()];
        let relaxed = Config {
            skip_local_storage: false,
            ..Config::default()
        };
        assert_eq!(drain_blocker(&p, &relaxed), None);
        let mut p = pod("a");
        p.pdb_blocks = true;
        assert!(
            drain_blocker(&p, &cfg)
                .unwrap()
                .contains("disruption budget")
        );
        // Daemonset and mirror pods never block.
        let mut p = pod("a");
        p.controller = None;
        p.daemon = true;
        assert_eq!(drain_blocker(&p, &cfg), None);
    }

    #[test]
    fn utilization_is_the_larger_of_cpu_and_memory() {
        let mut n = NodeFacts {
            allocatable: Resources {
                cpu_millis: 2000,
                memory_bytes: 4 << 30,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut p = pod("a");
        p.requests = Resources {
            cpu_millis: 500,
            memory_bytes: 3 << 30,
            ..Default::default()
        };
        n.pods.push(p);
        let mut ds = pod("ds");
        ds.daemon = true;
        ds.requests.cpu_millis = 500;
        n.pods.push(ds);
        let cfg = Config::default();
        assert!((utilization(&n, &cfg) - 0.75).abs() < 1e-9);
        let ignore = Config {
            ignore_daemonsets_utilization: true,
            ..Config::default()
        };
        assert!((utilization(&n, &ignore) - 0.75).abs() < 1e-9);
        n.pods[0].requests.memory_bytes = 1 << 30;
        assert!((utilization(&n, &cfg) - 0.5).abs() < 1e-9);
        assert!((utilization(&n, &ignore) - 0.25).abs() < 1e-9);
    }
}
