//! The loop's snapshot built with what the last one read (pods by UID and
//! resourceVersion, unchanged nodes taken as they were) is the snapshot
//! built from nothing, whatever changed in between: pods added, removed,
//! changed, bound, deleted; nodes relabelled, tainted, not ready; budgets
//! added; time passed.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{core::v1::Node, core::v1::Pod, policy::v1::PodDisruptionBudget};
use outrigger_cluster_autoscaler::snapshot::{self, Cache, Cluster, Options, Snapshot};
use outrigger_node_groups::group::NodeGroup;
use proptest::prelude::*;
use serde_json::json;

fn node(i: usize, label: u8, taint: bool, ready: bool) -> Arc<Node> {
    let taints = if taint {
        json!([{"key": "example.com/t", "value": "x", "effect": "NoSchedule"}])
    } else {
        json!([])
    };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("n{i}"), "resourceVersion": "1",
                "creationTimestamp": "2026-11-30T10:00:00Z",
                "labels": {"group": format!("g{}", i % 2), "l": label.to_string()}},
            "spec": {"providerID": format!("kwok:n{i}"), "taints": taints},
            "status": {
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "20"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "20"},
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        }))
        .expect("a valid object"),
    )
}

#[derive(Clone, Debug)]
struct P {
    id: usize,
    rv: u32,
    node: Option<usize>,
    cpu: u32,
    label: u8,
    deleted: bool,
}

fn pod(p: &P) -> Arc<Pod> {
    let status = if p.node.is_some() {
        json!({"phase": "Running"})
    } else {
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "lastTransitionTime": "2026-11-30T10:00:00Z"}]})
    };
    let mut meta = json!({"name": format!("p{}", p.id), "namespace": "default",
        "uid": format!("uid-{}", p.id), "resourceVersion": p.rv.to_string(),
        "creationTimestamp": "2026-11-30T10:00:00Z",
        "labels": {"app": format!("a{}", p.label)},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
            "uid": "rs", "controller": true}]});
    if p.deleted {
        meta["deletionTimestamp"] = json!("2026-11-30T11:00:00Z");
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": meta,
            "spec": {"nodeName": p.node.map(|n| format!("n{n}")),
                "containers": [{"name": "c", "resources": {"requests": {"cpu": format!("{}m", p.cpu)}}}]},
            "status": status,
        }))
        .expect("a valid object"),
    )
}

fn pdb(label: u8) -> Arc<PodDisruptionBudget> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("b{label}"), "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": format!("a{label}")}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
                "expectedPods": 1},
        }))
        .expect("a valid object"),
    )
}

/// One step of change between two loops.
#[derive(Clone, Debug)]
enum Change {
    AddPod { node: Option<usize>, cpu: u32 },
    RemovePod(usize),
    Relabel(usize, u8),
    Bind(usize, usize),
    Delete(usize),
    NodeLabel(usize, u8),
    NodeTaint(usize),
    NodeNotReady(usize),
    Budget(u8),
    Later(u64),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (proptest::option::of(0..4usize), 1..2000u32)
            .prop_map(|(node, cpu)| Change::AddPod { node, cpu }),
        (0..64usize).prop_map(Change::RemovePod),
        (0..64usize, 0..3u8).prop_map(|(i, l)| Change::Relabel(i, l)),
        (0..64usize, 0..4usize).prop_map(|(i, n)| Change::Bind(i, n)),
        (0..64usize).prop_map(Change::Delete),
        (0..4usize, 0..3u8).prop_map(|(n, l)| Change::NodeLabel(n, l)),
        (0..4usize).prop_map(Change::NodeTaint),
        (0..4usize).prop_map(Change::NodeNotReady),
        (0..3u8).prop_map(Change::Budget),
        (1..4000u64).prop_map(Change::Later),
    ]
}

struct World {
    pods: Vec<P>,
    nodes: Vec<(u8, bool, bool)>,
    budgets: Vec<u8>,
    now: jiff::Timestamp,
    next: usize,
}

impl World {
    fn apply(&mut self, c: &Change) {
        let n = self.pods.len().max(1);
        match c {
            Change::AddPod { node, cpu } => {
                self.pods.push(P {
                    id: self.next,
                    rv: 1,
                    node: *node,
                    cpu: *cpu,
                    label: 0,
                    deleted: false,
                });
                self.next += 1;
            }
            Change::RemovePod(i) if !self.pods.is_empty() => {
                self.pods.remove(i % n);
            }
            Change::Relabel(i, l) if !self.pods.is_empty() => {
                let p = &mut self.pods[i % n];
                p.label = *l;
                p.rv += 1;
            }
            Change::Bind(i, node) if !self.pods.is_empty() => {
                let p = &mut self.pods[i % n];
                p.node = Some(*node);
                p.rv += 1;
            }
            Change::Delete(i) if !self.pods.is_empty() => {
                let p = &mut self.pods[i % n];
                p.deleted = true;
                p.rv += 1;
            }
            Change::NodeLabel(i, l) => self.nodes[*i].0 = *l,
            Change::NodeTaint(i) => self.nodes[*i].1 = !self.nodes[*i].1,
            Change::NodeNotReady(i) => self.nodes[*i].2 = !self.nodes[*i].2,
            Change::Budget(l) => self.budgets.push(*l),
            Change::Later(s) => self.now += Duration::from_secs(*s),
            _ => {}
        }
    }

    fn cluster(&self) -> Cluster {
        Cluster {
            pods: self.pods.iter().map(pod).collect(),
            nodes: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, (l, t, r))| node(i, *l, *t, *r))
                .collect(),
            daemonsets: vec![],
            pdbs: self.budgets.iter().map(|l| pdb(*l)).collect(),
        }
    }
}

fn groups() -> Vec<NodeGroup> {
    (0..2)
        .map(|g| NodeGroup {
            id: format!("g{g}"),
            min: 0,
            max: 10,
            target: 3,
            instances: (0..4)
                .filter(|i| i % 2 == g)
                .map(|i| format!("kwok:n{i}"))
                .collect(),
            template: None,
        })
        .collect()
}

fn same(a: &Snapshot, b: &Snapshot) {
    let pending = |s: &Snapshot| s.pending.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>();
    assert_eq!(pending(a), pending(b));
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.facts, b.facts);
    assert_eq!(a.provider_ids, b.provider_ids);
    assert_eq!(a.registered, b.registered);
    assert_eq!(a.upcoming, b.upcoming);
    assert_eq!(
        (a.total_nodes, a.ready_nodes, a.total_cpu_millis),
        (b.total_nodes, b.ready_nodes, b.total_cpu_millis)
    );
    let templates = |s: &Snapshot| {
        s.groups
            .iter()
            .map(|g| g.template.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(templates(a), templates(b));
}

proptest! {
    #[test]
    fn a_snapshot_from_the_last_one_is_a_snapshot_from_nothing(
        steps in proptest::collection::vec(proptest::collection::vec(change(), 0..6), 1..6),
    ) {
        let mut world = World {
            pods: (0..12)
                .map(|i| P { id: i, rv: 1, node: (i % 3 != 0).then_some(i % 4), cpu: 100 + i as u32 * 50, label: (i % 3) as u8, deleted: false })
                .collect(),
            nodes: vec![(0, false, true); 4],
            budgets: vec![],
            now: "2026-11-30T12:00:00Z".parse().expect("a time"),
            next: 12,
        };
        let options = Options { cutoff: -10, delay: Duration::ZERO };
        let mut warm = Cache::default();
        for changes in steps {
            let cluster = world.cluster();
            let from_last = snapshot::build(&cluster, options, groups(), world.now, &mut warm);
            let fresh = snapshot::build(&cluster, options, groups(), world.now, &mut Cache::default());
            same(&from_last, &fresh);
            warm.keep(from_last);
            for c in &changes {
                world.apply(c);
            }
        }
    }
}

/// What the watch cache drops of a pod (`facts::trim_pod`) changes neither
/// its model nor its facts.
#[test]
fn a_trimmed_pod_reads_the_same() {
    let full: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u",
            "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes": "cache"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": "rs", "controller": true}]},
        "spec": {
            "nodeName": "n0",
            "initContainers": [
                {"name": "proxy", "image": "proxy:1", "restartPolicy": "Always",
                 "env": [{"name": "A", "value": "b"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "setup", "image": "setup:1", "command": ["sh", "-c", "true"],
                 "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
            ],
            "containers": [{"name": "app", "image": "app:1", "args": ["--serve"],
                "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}],
                "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                "resources": {"requests": {"cpu": "500m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"}}}],
            "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/var"}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "overhead": {"cpu": "10m"},
        },
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
            "containerStatuses": [{"name": "app", "image": "app:1", "imageID": "", "ready": true,
                "restartCount": 0}]},
    }))
    .expect("a valid pod");
    let mut trimmed = full.clone();
    outrigger_cluster_autoscaler::facts::trim_pod(&mut trimmed);
    assert_ne!(trimmed, full, "something was dropped");
    assert!(
        trimmed
            .spec
            .as_ref()
            .is_some_and(|s| s.containers[0].image.is_none())
    );
    assert_eq!(
        outrigger_scheduling_kube::bound_pod(&trimmed),
        outrigger_scheduling_kube::bound_pod(&full)
    );
    let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().expect("a time");
    let budgets = [pdb(0)];
    assert_eq!(
        outrigger_cluster_autoscaler::facts::pod_facts(&trimmed, &budgets, now),
        outrigger_cluster_autoscaler::facts::pod_facts(&full, &budgets, now)
    );
}
