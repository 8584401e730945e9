//! Times one scale-up estimate and one scale-down evaluation on the
//! benchmark's shape, in memory (no cluster): 1,000 nodes of 8 cpu in four
//! groups, 30 pods each (250m; every other node of the last group 20m),
//! 500 pending pods of 500m for the first three groups.
//!
//!   cargo run --release -p outrigger-node-groups --example loop_shape [ROUNDS]

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use outrigger_node_groups::{
    group::{NodeGroup, Template},
    scaledown::{self, Config, NodeFacts, PodFacts},
    scaleup::{self, Input, Limits, Totals},
};
use outrigger_scheduling::{
    model::{Labels, Node, Pod, Toleration},
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
};

fn res(cpu: i64, mem_mi: i64) -> Resources {
    Resources {
        cpu_millis: cpu,
        memory_bytes: mem_mi << 20,
        pods: 1,
        ..Default::default()
    }
}

fn labels(g: usize) -> Labels {
    let mut l = Labels::new();
    l.insert("kwok-nodegroup".into(), format!("bench-g{g}"));
    l.insert("kubernetes.io/os".into(), "linux".into());
    l.insert("kubernetes.io/arch".into(), "amd64".into());
    l
}

fn alloc() -> Resources {
    Resources {
        cpu_millis: 7910,
        memory_bytes: 30 << 30,
        pods: 58,
        ..Default::default()
    }
}

fn main() {
    let nodes_n = 1000;
    let groups_n = 4;
    let mut nodes = vec![];
    let mut facts = vec![];
    for i in 0..nodes_n {
        let g = i * groups_n / nodes_n;
        let light = g == groups_n - 1 && i % 2 == 0;
        let pods: Vec<Pod> = (0..30)
            .map(|j| {
                let mut p = Pod::new(
                    "bench",
                    &format!("p-{i:05}-{j:02}"),
                    res(if light { 20 } else { 250 }, 256),
                );
                p.labels.insert("app".into(), format!("app-{}", j % 10));
                p.tolerations.push(Toleration {
                    key: Some("outrigger.dev/bench".into()),
                    exists: true,
                    value: String::new(),
                    effect: None,
                });
                p
            })
            .collect();
        let mut l = labels(g);
        l.insert("kubernetes.io/hostname".into(), format!("bench-{i:05}"));
        facts.push(NodeFacts {
            name: format!("bench-{i:05}"),
            group: Some(g),
            ready: true,
            allocatable: alloc(),
            capacity: alloc(),
            pods: pods
                .iter()
                .map(|p| PodFacts {
                    key: p.key(),
                    namespace: p.namespace.clone(),
                    requests: p.requests.clone(),
                    controller: Some("ReplicaSet".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        nodes.push(Node {
            name: format!("bench-{i:05}"),
            labels: l,
            taints: vec![],
            allocatable: alloc(),
            pods,
            in_flight: false,
            pool: None,
            price: None,
            do_not_disrupt: false,
        });
    }
    let groups: Vec<NodeGroup> = (0..groups_n)
        .map(|g| NodeGroup {
            id: format!("bench-g{g}"),
            min: 0,
            max: 400,
            target: 250,
            instances: vec![],
            template: Some(Template {
                instance_type: "kwok".into(),
                labels: labels(g),
                taints: vec![],
                capacity: alloc(),
                allocatable: alloc(),
                price: None,
            }),
        })
        .collect();
    let mut term = Requirements::default();
    term.add(
        "kwok-nodegroup",
        Requirement::new(
            "kwok-nodegroup",
            Operator::In,
            &["bench-g0", "bench-g1", "bench-g2"],
        )
        .expect("a valid requirement"),
    );
    let pending: Vec<Pod> = (0..500)
        .map(|k| {
            let mut p = Pod::new("bench", &format!("pending-{k}"), res(500, 512));
            p.required_terms = vec![term.clone()];
            p
        })
        .collect();
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let (mut up, mut down) = (Duration::MAX, Duration::MAX);
    let (mut plan, mut found) = (None, None);
    for _ in 0..rounds {
        let t = Instant::now();
        plan = Some(scaleup::estimate(&Input {
            pods: &pending,
            nodes: &nodes,
            groups: &groups,
            backoff: &BTreeSet::new(),
            daemonsets: &[],
            limits: Limits::default(),
            totals: Totals::default(),
        }));
        up = up.min(t.elapsed());
        let t = Instant::now();
        found = Some(scaledown::find_unneeded(
            &nodes,
            &facts,
            &groups,
            &Config::default(),
        ));
        down = down.min(t.elapsed());
    }
    let (plan, found) = (plan.expect("a round"), found.expect("a round"));
    let opts: BTreeMap<usize, i64> = plan.options.iter().map(|o| (o.group, o.nodes)).collect();
    println!(
        "best of {rounds}: estimate: {up:?} (options {opts:?}); find_unneeded: {down:?} ({} unneeded, {} kept)",
        found.unneeded.len(),
        found.kept.len()
    );
}
