//! Scale-up estimates and scale-down decisions on the walkthrough's shapes:
//! the managed node group `ng-1` of m5.large (1930m, 6903Mi, 29 pods
//! allocatable on EKS) running EKS's daemonsets (155m, 120Mi).

#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use outrigger_node_groups::{
    group::{NodeGroup, Template},
    scaledown::{self, Config, NodeFacts, PodFacts, Removal},
    scaleup::{self, Input, Limits, Totals},
    upstream::MAX_GROUP_SIZE_REACHED,
};
use outrigger_scheduling::{
    eks,
    model::{Labels, Node, Pod},
    resources::Resources,
};

fn template() -> Template {
    let shape = eks::shape("m5.large").unwrap();
    let mut extra = Labels::new();
    extra.insert("eks.amazonaws.com/nodegroup".into(), "ng-1".into());
    Template::from_tags(&shape, Some("ap-southeast-1a"), &BTreeMap::new(), &extra).unwrap()
}

fn group(target: i64, min: i64, max: i64) -> NodeGroup {
    NodeGroup {
        id: "eks-ng-1-demo".into(),
        min,
        max,
        target,
        instances: (0..target)
            .map(|i| format!("aws:///ap-southeast-1a/i-{i}"))
            .collect(),
        template: Some(template()),
    }
}

fn res(cpu: i64, mem_mi: i64) -> Resources {
    Resources {
        cpu_millis: cpu,
        memory_bytes: mem_mi << 20,
        pods: 1,
        ..Default::default()
    }
}

fn nginx(i: usize) -> Pod {
    let mut p = Pod::new("default", &format!("nginx-to-scaleout-{i}"), res(500, 512));
    p.labels.insert("app".into(), "nginx".into());
    p
}

fn daemonsets() -> Vec<Pod> {
    let mut ds = Pod::new("kube-system", "eks-daemonsets", res(155, 120));
    ds.daemon = true;
    vec![ds]
}

/// A node of the group with the daemonsets and these pods.
fn node(i: usize, pods: Vec<Pod>) -> Node {
    let t = template();
    let mut all = daemonsets();
    all.extend(pods);
    Node {
        name: format!("ip-172-31-0-{i}"),
        labels: t.labels.clone(),
        taints: vec![],
        allocatable: t.allocatable.clone(),
        pods: all,
        in_flight: false,
        pool: None,
        price: None,
        do_not_disrupt: false,
    }
}

#[test]
fn the_seeds_twenty_replicas_need_four_more_m5_large() {
    // One replica runs; 19 are pending. Each m5.large takes 3 (1775m left
    // after the daemonsets): 2 more on the node with one, 3 on each of the
    // two others, 11 left for new nodes: 4.
    let nodes = vec![node(0, vec![nginx(0)]), node(1, vec![]), node(2, vec![])];
    let pods: Vec<Pod> = (1..20).map(nginx).collect();
    let groups = vec![group(3, 3, 10)];
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &nodes,
        groups: &groups,
        backoff: &BTreeSet::new(),
        daemonsets: &daemonsets(),
        limits: Limits::default(),
        totals: Totals::default(),
    });
    assert_eq!(plan.fits_existing.len(), 8);
    assert_eq!(plan.options.len(), 1);
    assert_eq!(plan.options[0].nodes, 4);
    assert_eq!(plan.options[0].pods.len(), 11);
    assert!(plan.not_helped.is_empty());
}

#[test]
fn a_group_at_its_maximum_says_so_and_a_capped_group_takes_what_it_can() {
    let nodes = vec![node(0, vec![])];
    let pods: Vec<Pod> = (0..12).map(nginx).collect();
    // At max: nothing.
    let groups = vec![group(1, 1, 1)];
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &nodes,
        groups: &groups,
        backoff: &BTreeSet::new(),
        daemonsets: &daemonsets(),
        limits: Limits::default(),
        totals: Totals::default(),
    });
    assert!(plan.options.is_empty());
    let (_, why) = &plan.not_helped.values().next().unwrap()[0];
    assert_eq!(why, MAX_GROUP_SIZE_REACHED);
    // Room for two more: two nodes, six pods; the rest say why.
    let groups = vec![group(1, 1, 3)];
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &nodes,
        groups: &groups,
        backoff: &BTreeSet::new(),
        daemonsets: &daemonsets(),
        limits: Limits::default(),
        totals: Totals::default(),
    });
    assert_eq!(plan.options[0].nodes, 2);
    assert_eq!(plan.options[0].pods.len(), 6);
    assert_eq!(plan.not_helped.len(), 3);
}

#[test]
fn the_cluster_limits_cap_a_scale_up() {
    let nodes = vec![node(0, vec![])];
    let pods: Vec<Pod> = (0..12).map(nginx).collect();
    let groups = vec![group(1, 1, 10)];
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &nodes,
        groups: &groups,
        backoff: &BTreeSet::new(),
        daemonsets: &daemonsets(),
        limits: Limits {
            max_nodes: 2,
            ..Default::default()
        },
        totals: Totals {
            nodes: 1,
            ..Default::default()
        },
    });
    assert_eq!(plan.options[0].nodes, 1);
}

#[test]
fn a_pod_no_group_can_fit_gets_each_groups_reason() {
    let nodes = vec![node(0, vec![])];
    let pods = vec![Pod::new("default", "huge", res(8000, 512))];
    let groups = vec![group(1, 1, 10)];
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &nodes,
        groups: &groups,
        backoff: &BTreeSet::from([]),
        daemonsets: &daemonsets(),
        limits: Limits::default(),
        totals: Totals::default(),
    });
    assert!(plan.options.is_empty());
    let reasons = &plan.not_helped[&0];
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].1.contains("cpu"), "{reasons:?}");
    let text = scaleup::reasons_text(reasons, &groups);
    assert!(
        text.starts_with("1 ") && text.contains("(eks-ng-1-demo)"),
        "{text}"
    );
    // In backoff: said so.
    let plan = scaleup::estimate(&Input {
        pods: &pods,
        nodes: &nodes,
        groups: &groups,
        backoff: &BTreeSet::from([0]),
        daemonsets: &daemonsets(),
        limits: Limits::default(),
        totals: Totals::default(),
    });
    assert_eq!(plan.not_helped[&0][0].1, "in backoff after failed scale-up");
}

fn facts(nodes: &[Node], group_of: &[Option<usize>]) -> Vec<NodeFacts> {
    nodes
        .iter()
        .zip(group_of)
        .map(|(n, g)| NodeFacts {
            name: n.name.clone(),
            group: *g,
            ready: true,
            allocatable: n.allocatable.clone(),
            pods: n
                .pods
                .iter()
                .map(|p| PodFacts {
                    key: p.key(),
                    namespace: p.namespace.clone(),
                    requests: p.requests.clone(),
                    daemon: p.daemon,
                    controller: Some(if p.daemon { "DaemonSet" } else { "ReplicaSet" }.into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

#[test]
fn after_the_seed_the_added_nodes_are_unneeded_and_go_down_to_the_minimum() {
    // Seven nodes, the deployment gone: every node is empty.
    let nodes: Vec<Node> = (0..7).map(|i| node(i, vec![])).collect();
    let groups = vec![group(7, 3, 10)];
    let f = facts(&nodes, &[Some(0); 7]);
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &Config::default());
    assert_eq!(found.unneeded.len(), 7);
    assert!(found.unneeded.iter().all(|u| u.empty));
    let since: BTreeMap<usize, Duration> = (0..7).map(|i| (i, Duration::from_secs(20))).collect();
    let (empty, drain) = scaledown::choose_removals(
        &found,
        &since,
        &f,
        &groups,
        &BTreeMap::new(),
        &Removal {
            unneeded_time: Duration::from_secs(10),
            max_empty_bulk: 10,
            ..Removal::default()
        },
    );
    // Never below the group's minimum of 3.
    assert_eq!(empty.len(), 4);
    assert_eq!(drain, None);
    // Not unneeded for long enough yet: nothing.
    let early: BTreeMap<usize, Duration> = (0..7).map(|i| (i, Duration::from_secs(5))).collect();
    let (empty, drain) = scaledown::choose_removals(
        &found,
        &early,
        &f,
        &groups,
        &BTreeMap::new(),
        &Removal {
            unneeded_time: Duration::from_secs(10),
            max_empty_bulk: 10,
            ..Removal::default()
        },
    );
    assert!(empty.is_empty() && drain.is_none());
}

#[test]
fn an_unready_node_goes_after_the_unready_time_not_the_unneeded_time() {
    let nodes: Vec<Node> = (0..5).map(|i| node(i, vec![])).collect();
    let groups = vec![group(5, 3, 10)];
    let mut f = facts(&nodes, &[Some(0); 5]);
    f[4].ready = false;
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &Config::default());
    assert!(found.unneeded.iter().any(|u| u.node == 4));
    let removal = Removal {
        unneeded_time: Duration::from_secs(10),
        unready_time: Duration::from_secs(60),
        ..Removal::default()
    };
    // Unneeded for 20 s: the ready ones may go, the unready one not yet.
    let since: BTreeMap<usize, Duration> = (0..5).map(|i| (i, Duration::from_secs(20))).collect();
    let (empty, _) =
        scaledown::choose_removals(&found, &since, &f, &groups, &BTreeMap::new(), &removal);
    assert!(!empty.contains(&4) && !empty.is_empty());
    // Unready for 2 minutes: it goes.
    let since: BTreeMap<usize, Duration> = [(4, Duration::from_secs(120))].into();
    let (empty, _) =
        scaledown::choose_removals(&found, &since, &f, &groups, &BTreeMap::new(), &removal);
    assert_eq!(empty, vec![4]);
    // --scale-down-unready-enabled=false keeps it.
    let cfg = Config {
        unready_enabled: false,
        ..Config::default()
    };
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &cfg);
    assert_eq!(found.kept[&4], "the node is not ready");
}

#[test]
fn the_cluster_minimums_of_cores_and_memory_stop_removals() {
    let nodes: Vec<Node> = (0..7).map(|i| node(i, vec![])).collect();
    let groups = vec![group(7, 0, 10)];
    let mut f = facts(&nodes, &[Some(0); 7]);
    for x in &mut f {
        x.capacity.cpu_millis = 2000;
        x.capacity.memory_bytes = 8 << 30;
    }
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &Config::default());
    let since: BTreeMap<usize, Duration> = (0..7).map(|i| (i, Duration::from_secs(700))).collect();
    // 14 cores, at least 9: two nodes (4 cores) may go, a third would leave 8.
    let removal = Removal {
        left_above_min: (Some(14_000 - 9_000), None),
        ..Removal::default()
    };
    let (empty, _) =
        scaledown::choose_removals(&found, &since, &f, &groups, &BTreeMap::new(), &removal);
    assert_eq!(empty.len(), 2);
    // 56 GiB, at least 40: two nodes (16 GiB).
    let removal = Removal {
        left_above_min: (None, Some((56 - 40) << 30)),
        ..Removal::default()
    };
    let (empty, _) =
        scaledown::choose_removals(&found, &since, &f, &groups, &BTreeMap::new(), &removal);
    assert_eq!(empty.len(), 2);
    // At the minimum: nothing.
    let removal = Removal {
        left_above_min: (Some(0), None),
        ..Removal::default()
    };
    let (empty, drain) =
        scaledown::choose_removals(&found, &since, &f, &groups, &BTreeMap::new(), &removal);
    assert!(empty.is_empty() && drain.is_none());
}

#[test]
fn an_underutilized_node_goes_if_its_pods_fit_elsewhere_and_stays_if_not() {
    // Node 0 has one pod (500m of 1930m: 26% + daemonsets 8% < 50%); node 1
    // has room for it.
    let nodes = vec![node(0, vec![nginx(0)]), node(1, vec![nginx(1)])];
    let groups = vec![group(2, 0, 10)];
    let f = facts(&nodes, &[Some(0), Some(0)]);
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &Config::default());
    // One of the two goes (its pod moves to the other); then the other has
    // nowhere for its pods.
    assert_eq!(found.unneeded.len(), 1, "{found:?}");
    assert_eq!(found.unneeded[0].moves.len(), 1);
    let kept = found.kept.values().next().unwrap();
    assert!(kept.contains("nowhere to go"), "{kept}");
}

#[test]
fn what_keeps_a_node() {
    let mut nodes = vec![node(0, vec![nginx(0)]), node(1, vec![]), node(2, vec![])];
    let big = Pod::new("default", "big", res(1500, 512));
    nodes[2].pods.push(big);
    let groups = vec![group(3, 0, 10)];
    let mut f = facts(&nodes, &[Some(0), Some(0), Some(0)]);
    f[0].pods[1].safe_to_evict = Some(false);
    f[1].scale_down_disabled = true;
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &Config::default());
    assert!(found.kept[&0].contains("safe-to-evict"));
    assert!(found.kept[&1].contains("scale-down is disabled"));
    assert!(found.kept[&2].contains("not underutilized"));
    assert!(found.unneeded.is_empty());
    // A node no group has is not considered at all.
    let f = facts(&nodes, &[None, None, None]);
    let found = scaledown::find_unneeded(&nodes, &f, &groups, &Config::default());
    assert!(found.kept.is_empty() && found.unneeded.is_empty());
}
