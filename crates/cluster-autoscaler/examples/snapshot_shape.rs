//! Times the loop's snapshot (from the watched objects to the solver's
//! nodes and the scale-down's facts) on the benchmark's shape, in memory
//! (no cluster): 1,000 kwok nodes of 8 cpu in four groups, 30 pods each
//! owned by ReplicaSets plus 3 daemonset pods, 500 pending pods, objects
//! as the API server gives them.
//!
//!   cargo run --release -p outrigger-cluster-autoscaler --example snapshot_shape [ROUNDS]

use std::{sync::Arc, time::Instant};

use k8s_openapi::api::{apps::v1::DaemonSet, core::v1::Node, core::v1::Pod};
use outrigger_cluster_autoscaler::snapshot::{self, Cluster, Options};
use outrigger_node_groups::group::NodeGroup;
use serde_json::json;

/// As the `outrigger` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NODES: usize = 1000;
const GROUPS: usize = 4;

fn node(i: usize) -> Node {
    let g = i * GROUPS / NODES;
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("bench-{i:05}"),
            "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "resourceVersion": "1000",
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "labels": {
                "kwok-nodegroup": format!("bench-g{g}"),
                "type": "kwok",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": format!("bench-{i:05}"),
                "outrigger.dev/bench": "true",
            },
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "providerID": format!("kwok:bench-{i:05}"),
            "taints": [{"key": "outrigger.dev/bench", "value": "true", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": {"cpu": "8", "memory": "31Gi", "pods": "58"},
            "allocatable": {"cpu": "7910m", "memory": "30Gi", "pods": "58"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "lastHeartbeatTime": "2026-11-30T10:00:00Z", "lastTransitionTime": "2026-11-30T10:00:00Z"},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "lastHeartbeatTime": "2026-11-30T10:00:00Z", "lastTransitionTime": "2026-11-30T10:00:00Z"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
                 "lastHeartbeatTime": "2026-11-30T10:00:00Z", "lastTransitionTime": "2026-11-30T10:00:00Z"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
                 "lastHeartbeatTime": "2026-11-30T10:00:00Z", "lastTransitionTime": "2026-11-30T10:00:00Z"},
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "kwok",
                "kernelVersion": "", "kubeProxyVersion": "kwok", "kubeletVersion": "kwok",
                "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""},
        },
    }))
    .expect("a node")
}

fn pod(name: &str, node: Option<&str>, owner: (&str, &str), cpu: &str, mem: &str) -> Pod {
    let mut status = json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1000 nodes are available", "lastTransitionTime": "2026-11-30T10:00:00Z"}],
    });
    if node.is_some() {
        let conditions: Vec<_> = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
            .iter()
            .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"}))
            .collect();
        status = json!({
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.0.0.2",
            "startTime": "2026-11-30T10:00:00Z",
            "conditions": conditions,
            "containerStatuses": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "imageID": "",
                "ready": true, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": "2026-11-30T10:00:00Z"}}}],
        });
    }
    let affinity = if node.is_none() {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "kwok-nodegroup", "operator": "In",
                "values": ["bench-g0", "bench-g1", "bench-g2"]}]}]}}})
    } else {
        json!(null)
    };
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": format!("uid-{name}"),
            "resourceVersion": "2000",
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "generateName": format!("{}-", owner.1),
            "labels": {"app": owner.1, "pod-template-hash": "5d4f8b9c7"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                "uid": format!("uid-{}", owner.1), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": cpu, "memory": mem}},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}],
            "tolerations": [
                {"key": "outrigger.dev/bench", "operator": "Exists"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "affinity": affinity,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "securityContext": {},
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ]}}],
        },
        "status": status,
    }))
    .expect("a pod")
}

fn daemonset(i: usize) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": format!("ds-{i}"), "namespace": "bench", "uid": format!("uid-ds-{i}")},
        "spec": {
            "selector": {"matchLabels": {"app": format!("ds-{i}")}},
            "template": {
                "metadata": {"labels": {"app": format!("ds-{i}")}},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                },
            },
        },
    }))
    .expect("a daemonset")
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let nodes: Vec<Arc<Node>> = (0..NODES).map(|i| Arc::new(node(i))).collect();
    let mut pods = vec![];
    for i in 0..NODES {
        let g = i * GROUPS / NODES;
        let light = g == GROUPS - 1 && i % 2 == 0;
        let name = format!("bench-{i:05}");
        for j in 0..30 {
            let cpu = if light { "20m" } else { "250m" };
            pods.push(Arc::new(pod(
                &format!("p-{i:05}-{j:02}"),
                Some(&name),
                ("ReplicaSet", &format!("rs-{}", j % 10)),
                cpu,
                "256Mi",
            )));
        }
        for d in 0..3 {
            pods.push(Arc::new(pod(
                &format!("ds-{d}-{i:05}"),
                Some(&name),
                ("DaemonSet", &format!("ds-{d}")),
                "10m",
                "16Mi",
            )));
        }
    }
    for k in 0..500 {
        pods.push(Arc::new(pod(
            &format!("pending-{k:03}"),
            None,
            ("ReplicaSet", "bench-pending"),
            "500m",
            "512Mi",
        )));
    }
    let cluster = Cluster {
        pods,
        nodes,
        daemonsets: (0..3).map(|i| Arc::new(daemonset(i))).collect(),
        pdbs: vec![],
    };
    let groups: Vec<NodeGroup> = (0..GROUPS)
        .map(|g| NodeGroup {
            id: format!("bench-g{g}"),
            min: 0,
            max: 400,
            target: (NODES / GROUPS) as i64,
            instances: (g * NODES / GROUPS..(g + 1) * NODES / GROUPS)
                .map(|i| format!("kwok:bench-{i:05}"))
                .collect(),
            template: None,
        })
        .collect();
    let options = Options {
        cutoff: -10,
        delay: std::time::Duration::ZERO,
    };
    let now = jiff::Timestamp::now();
    let mut cache = snapshot::Cache::default();
    let mut times = vec![];
    for round in 0..rounds {
        let start = Instant::now();
        let snap = snapshot::build(&cluster, options, groups.clone(), now, &mut cache);
        let took = start.elapsed();
        assert_eq!(snap.pending.len(), 500);
        assert_eq!(snap.facts.len(), NODES);
        assert!(snap.groups.iter().all(|g| g.template.is_some()));
        cache.keep(snap);
        if round == 0 {
            println!(
                "first snapshot (nothing cached): {:.1} ms",
                took.as_secs_f64() * 1e3
            );
            continue;
        }
        times.push(took);
    }
    let best = times.iter().min().expect("a round");
    let mean = times.iter().sum::<std::time::Duration>() / times.len() as u32;
    println!(
        "later snapshots of {NODES} nodes, {} pods: best {:.1} ms, mean {:.1} ms over {} rounds",
        cluster.pods.len(),
        best.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        times.len()
    );
}
