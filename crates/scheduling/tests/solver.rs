//! The solver, one constraint at a time, and the seed's Karpenter example.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use outrigger_scheduling::{
    eks,
    model::*,
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
    solver::{claim_line, simulate_removal, solve},
};

const ZONES: [&str; 3] = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"];

fn res(pairs: &[(&str, &str)]) -> Resources {
    Resources::parse(pairs.iter().copied()).unwrap()
}

fn req(key: &str, op: Operator, values: &[&str]) -> Requirements {
    let mut r = Requirements::default();
    r.add(key, Requirement::new(key, op, values).unwrap());
    r
}

/// An EC2 type with spot and on-demand offerings in the three zones
/// (on-demand price `od`, spot 30% of it).
fn ec2(name: &str, od: f64) -> InstanceType {
    let mut offerings = vec![];
    for z in ZONES {
        offerings.push(Offering {
            zone: z.into(),
            capacity_type: CAPACITY_ON_DEMAND.into(),
            price: od,
            available: true,
        });
        offerings.push(Offering {
            zone: z.into(),
            capacity_type: CAPACITY_SPOT.into(),
            price: od * 0.3,
            available: true,
        });
    }
    eks::instance_type(
        &eks::shape(name).unwrap(),
        &eks::Kubelet::default(),
        offerings,
    )
}

fn catalogue() -> Vec<InstanceType> {
    vec![
        ec2("m6i.large", 0.096),
        ec2("m6i.xlarge", 0.192),
        ec2("m6i.2xlarge", 0.384),
        ec2("c6i.large", 0.085),
        ec2("r6i.large", 0.126),
        ec2("m6g.large", 0.077),
        ec2("g4dn.xlarge", 0.526),
    ]
}

fn pool(name: &str) -> NodePool {
    NodePool {
        name: name.into(),
        ..Default::default()
    }
}

fn pod(name: &str, cpu: &str) -> Pod {
    let mut p = Pod::new("default", name, res(&[("cpu", cpu)]));
    p.labels
        .insert("app".into(), name.trim_end_matches(char::is_numeric).into());
    p
}

fn pods(prefix: &str, n: usize, cpu: &str) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let mut p = pod(&format!("{prefix}{i}"), cpu);
            p.labels.insert("app".into(), prefix.into());
            p
        })
        .collect()
}

fn problem(pods: Vec<Pod>, pools: Vec<NodePool>) -> Problem {
    Problem {
        pods,
        nodes: vec![],
        pools,
        instance_types: catalogue(),
        daemonsets: vec![],
    }
}

fn daemonset(name: &str, cpu: &str, memory: Option<&str>) -> Pod {
    let mut r = vec![("cpu", cpu)];
    if let Some(m) = memory {
        r.push(("memory", m));
    }
    let mut p = Pod::new("kube-system", name, res(&r));
    p.daemon = true;
    // Daemonsets tolerate everything (aws-node, kube-proxy do).
    p.tolerations.push(Toleration {
        key: None,
        exists: true,
        value: String::new(),
        effect: None,
    });
    p
}

fn zone_of(plan: &Plan, c: usize) -> String {
    plan.claims[c]
        .requirements
        .get(LABEL_ZONE)
        .and_then(|r| r.single())
        .unwrap_or("?")
        .to_string()
}

/// The seed: a v1alpha5 Provisioner allowing spot m6i.large and m6i.xlarge
/// (limit 1000 cpu), and 20 `inflate` pods requesting `cpu: 1`. Karpenter
/// logged `Created node with 3 pods requesting
/// {"cpu":"3155m","memory":"120Mi","pods":"6"} from types m6i.xlarge`.
///
/// Where the numbers come from: every new node also runs the cluster's
/// three daemonsets, and Karpenter adds their requests to the node's:
/// aws-node (VPC CNI) requests cpu 25m; kube-proxy cpu 100m; the EBS CSI
/// node plugin (ebs-csi-node: node driver, registrar and liveness probe,
/// each 10m cpu and 40Mi memory) 30m and 120Mi. So 3 inflate pods + 155m
/// = 3155m cpu, 120Mi memory, 3 + 3 = 6 pods.
///
/// Why m6i.xlarge and 3 pods: allocatable cpu on EKS is capacity less
/// kube-reserved (6% of the first core, 1% of the second, 0.5% of the next
/// two): m6i.large 2000m - 70m = 1930m holds 155m + one pod only, m6i.xlarge
/// 4000m - 80m = 3920m holds 155m + 3 pods (a fourth needs 4155m). A node
/// with 2 or 3 pods is only possible as an m6i.xlarge.
#[test]
fn seed_inflate_on_spot_m6i() {
    let mut provisioner = pool("default");
    provisioner.requirements = req(LABEL_CAPACITY_TYPE, Operator::In, &["spot"]);
    provisioner.requirements.add(
        LABEL_INSTANCE_TYPE,
        Requirement::new(
            LABEL_INSTANCE_TYPE,
            Operator::In,
            &["m6i.large", "m6i.xlarge"],
        )
        .unwrap(),
    );
    provisioner.limits = BTreeMap::from([("cpu".to_string(), 1000 * 1000)]);
    let mut p = problem(pods("inflate", 20, "1"), vec![provisioner]);
    p.daemonsets = vec![
        daemonset("aws-node", "25m", None),
        daemonset("kube-proxy", "100m", None),
        daemonset("ebs-csi-node", "30m", Some("120Mi")),
    ];
    let plan = solve(&p);
    assert!(plan.unplaced.is_empty(), "{:?}", plan.unplaced);
    assert_eq!(plan.claims.len(), 7);
    let lines: Vec<String> = plan.claims.iter().map(|c| claim_line(&p, c)).collect();
    for line in &lines[..6] {
        assert_eq!(
            line,
            r#"node with 3 pods requesting {"cpu":"3155m","memory":"120Mi","pods":"6"} from types m6i.xlarge"#
        );
    }
    assert_eq!(
        lines[6],
        r#"node with 2 pods requesting {"cpu":"2155m","memory":"120Mi","pods":"5"} from types m6i.xlarge"#
    );
    for c in &plan.claims {
        let ct = c.requirements.get(LABEL_CAPACITY_TYPE).unwrap();
        assert_eq!(ct.single(), Some("spot"));
    }
}

#[test]
fn existing_capacity_first() {
    let mut p = problem(pods("web", 3, "500m"), vec![pool("default")]);
    p.nodes.push(Node {
        name: "ip-10-0-0-1".into(),
        labels: BTreeMap::from([(LABEL_ZONE.to_string(), ZONES[0].to_string())]),
        allocatable: res(&[("cpu", "1930m"), ("memory", "6903Mi"), ("pods", "29")]),
        ..Default::default()
    });
    let plan = solve(&p);
    assert!(plan.claims.is_empty());
    assert!(plan.placements.iter().all(|(_, t)| *t == Target::Node(0)));
}

#[test]
fn taints_need_tolerations() {
    let mut gpu = pool("gpu");
    gpu.taints.push(Taint {
        key: "nvidia.com/gpu".into(),
        value: "true".into(),
        effect: TaintEffect::NoSchedule,
    });
    let mut p = problem(vec![pod("plain", "1")], vec![gpu]);
    let plan = solve(&p);
    assert_eq!(plan.unplaced.len(), 1);
    assert!(
        plan.unplaced[0]
            .reason
            .contains("did not tolerate taint nvidia.com/gpu=true:NoSchedule"),
        "{}",
        plan.unplaced[0].reason
    );
    p.pods[0].tolerations.push(Toleration {
        key: Some("nvidia.com/gpu".into()),
        exists: true,
        value: String::new(),
        effect: None,
    });
    assert!(solve(&p).unplaced.is_empty());
}

#[test]
fn incompatible_capacity_type_is_explained() {
    let mut spot_only = pool("default");
    spot_only.requirements = req(LABEL_CAPACITY_TYPE, Operator::In, &["spot"]);
    let mut p = pod("db", "1");
    p.node_selector
        .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_ON_DEMAND.into());
    let plan = solve(&problem(vec![p], vec![spot_only]));
    assert_eq!(
        plan.unplaced[0].reason,
        "incompatible with nodepool \"default\": requires karpenter.sh/capacity-type In [spot], pod requires karpenter.sh/capacity-type In [on-demand]"
    );
}

#[test]
fn too_big_names_the_resource() {
    let plan = solve(&problem(vec![pod("huge", "64")], vec![pool("default")]));
    let r = &plan.unplaced[0].reason;
    assert!(r.contains("no instance type offers 64 cpu"), "{r}");
}

#[test]
fn limits_stop_new_nodes() {
    let mut limited = pool("default");
    limited.requirements = req(LABEL_INSTANCE_TYPE, Operator::In, &["m6i.xlarge"]);
    limited.limits = BTreeMap::from([("cpu".to_string(), 4000)]);
    let plan = solve(&problem(pods("w", 2, "3"), vec![limited]));
    assert_eq!(plan.claims.len(), 1);
    assert_eq!(plan.unplaced.len(), 1);
    assert_eq!(
        plan.unplaced[0].reason,
        "nodepool \"default\" limit cpu=4 reached"
    );
    // The pool is named as the one whose limit kept the pod out (its
    // status says so).
    assert_eq!(plan.unplaced[0].limited_by, vec![0]);
    // A pod too big for any type is not a limit's doing.
    let mut roomy = pool("default");
    roomy.limits = BTreeMap::from([("cpu".to_string(), 4000)]);
    let plan = solve(&problem(pods("w", 1, "64"), vec![roomy]));
    assert_eq!(plan.unplaced[0].limited_by, Vec::<usize>::new());
}

#[test]
fn unknown_label_is_not_defined_by_the_pool() {
    let mut p = pod("x", "1");
    p.node_selector.insert("team".into(), "a".into());
    let plan = solve(&problem(vec![p.clone()], vec![pool("default")]));
    assert!(
        plan.unplaced[0]
            .reason
            .contains("label team is not defined by the nodepool"),
        "{}",
        plan.unplaced[0].reason
    );
    let mut team = pool("default");
    team.labels.insert("team".into(), "a".into());
    assert!(solve(&problem(vec![p], vec![team])).unplaced.is_empty());
}

#[test]
fn hostname_anti_affinity_one_per_node() {
    let mut ps = pods("nginx", 4, "100m");
    for p in &mut ps {
        p.anti_affinity.push(PodAffinityTerm {
            selector: LabelSelector::labels(&[("app", "nginx")]),
            namespaces: vec![],
            topology_key: LABEL_HOSTNAME.into(),
        });
    }
    let plan = solve(&problem(ps, vec![pool("default")]));
    assert_eq!(plan.claims.len(), 4);
    assert!(plan.claims.iter().all(|c| c.pods.len() == 1));
}

#[test]
fn zonal_spread_balances() {
    let mut ps = pods("api", 6, "100m");
    for p in &mut ps {
        p.spread.push(TopologySpread {
            max_skew: 1,
            topology_key: LABEL_ZONE.into(),
            required: true,
            selector: LabelSelector::labels(&[("app", "api")]),
        });
    }
    let plan = solve(&problem(ps, vec![pool("default")]));
    assert!(plan.unplaced.is_empty());
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    for (ci, c) in plan.claims.iter().enumerate() {
        *per_zone.entry(zone_of(&plan, ci)).or_default() += c.pods.len();
    }
    assert_eq!(per_zone.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
}

#[test]
fn pod_affinity_shares_a_node() {
    let mut ps = pods("cache", 3, "200m");
    for p in &mut ps {
        p.affinity.push(PodAffinityTerm {
            selector: LabelSelector::labels(&[("app", "cache")]),
            namespaces: vec![],
            topology_key: LABEL_HOSTNAME.into(),
        });
    }
    let plan = solve(&problem(ps, vec![pool("default")]));
    assert_eq!(plan.claims.len(), 1);
    assert_eq!(plan.claims[0].pods.len(), 3);
}

#[test]
fn affinity_to_nothing_is_explained() {
    let mut p = pod("lonely", "200m");
    p.affinity.push(PodAffinityTerm {
        selector: LabelSelector::labels(&[("app", "ghost")]),
        namespaces: vec![],
        topology_key: LABEL_ZONE.into(),
    });
    let plan = solve(&problem(vec![p], vec![pool("default")]));
    let r = &plan.unplaced[0].reason;
    assert!(
        r.contains("pod affinity (topology.kubernetes.io/zone, app=ghost)"),
        "{r}"
    );
}

#[test]
fn preferences_are_relaxed_when_impossible() {
    let mut p = pod("pref", "1");
    p.preferred_terms
        .push((10, req(LABEL_ZONE, Operator::In, &["mars-1a"])));
    p.preferred_terms
        .push((50, req(LABEL_ZONE, Operator::In, &[ZONES[1]])));
    let plan = solve(&problem(vec![p], vec![pool("default")]));
    assert!(plan.unplaced.is_empty());
    // The weight-10 preference could never hold and is given up; the
    // weight-50 one is kept.
    assert_eq!(zone_of(&plan, 0), ZONES[1]);
    assert_eq!(plan.relaxed.len(), 1);
    assert!(plan.relaxed[0].1.contains("mars-1a"), "{:?}", plan.relaxed);
}

#[test]
fn preferred_anti_affinity_gives_way() {
    // Two pods prefer not to share a zone with each other, but the pool
    // only has one zone: the second gives the preference up.
    let mut one_zone = pool("default");
    one_zone.requirements = req(LABEL_ZONE, Operator::In, &[ZONES[0]]);
    let mut ps = pods("p", 2, "100m");
    for p in &mut ps {
        p.preferred_anti_affinity.push((
            1,
            PodAffinityTerm {
                selector: LabelSelector::labels(&[("app", "p")]),
                namespaces: vec![],
                topology_key: LABEL_ZONE.into(),
            },
        ));
    }
    let plan = solve(&problem(ps, vec![one_zone]));
    assert!(plan.unplaced.is_empty());
    assert_eq!(plan.relaxed.len(), 1);
    assert!(plan.relaxed[0].1.contains("preferred pod anti-affinity"));
}

#[test]
fn host_ports_do_not_share_a_node() {
    let mut ps = pods("ingress", 2, "100m");
    for p in &mut ps {
        p.host_ports.push(HostPort {
            port: 443,
            protocol: "TCP".into(),
            ip: String::new(),
        });
    }
    let plan = solve(&problem(ps, vec![pool("default")]));
    assert_eq!(plan.claims.len(), 2);
}

#[test]
fn gpus_pick_gpu_types() {
    let p = Pod::new("ml", "train", res(&[("cpu", "1"), ("nvidia.com/gpu", "1")]));
    let prob = problem(vec![p], vec![pool("default")]);
    let plan = solve(&prob);
    assert_eq!(plan.claims.len(), 1);
    let types: Vec<&str> = plan.claims[0]
        .instance_types
        .iter()
        .map(|t| prob.instance_types[*t].name.as_str())
        .collect();
    assert_eq!(types, ["g4dn.xlarge"]);
}

#[test]
fn arch_requirement_filters_types() {
    let mut p = pod("arm", "1");
    p.node_selector.insert(LABEL_ARCH.into(), "arm64".into());
    let prob = problem(vec![p], vec![pool("default")]);
    let plan = solve(&prob);
    let names: Vec<&str> = plan.claims[0]
        .instance_types
        .iter()
        .map(|t| prob.instance_types[*t].name.as_str())
        .collect();
    assert_eq!(names, ["m6g.large"]);
}

#[test]
fn cheapest_first_and_pool_weight() {
    let mut low = pool("a-low");
    low.weight = 1;
    let mut high = pool("z-high");
    high.weight = 10;
    let prob = problem(vec![pod("w", "500m")], vec![low, high]);
    let plan = solve(&prob);
    assert_eq!(prob.pools[plan.claims[0].pool].name, "z-high");
    let prices: Vec<f64> = plan.claims[0]
        .instance_types
        .iter()
        .map(|t| {
            prob.instance_types[*t]
                .offerings
                .iter()
                .map(|o| o.price)
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    assert!((plan.claims[0].price - prices[0]).abs() < 1e-12);
}

#[test]
fn same_input_same_output() {
    let mut ps = pods("a", 30, "700m");
    ps.extend(pods("b", 20, "1300m"));
    for (i, p) in ps.iter_mut().enumerate() {
        if i % 3 == 0 {
            p.spread.push(TopologySpread {
                max_skew: 1,
                topology_key: LABEL_ZONE.into(),
                required: true,
                selector: LabelSelector::labels(&[("app", "a")]),
            });
        }
    }
    let prob = problem(ps, vec![pool("default")]);
    assert_eq!(solve(&prob), solve(&prob));
}

#[test]
fn removal_moves_pods_and_prices_it() {
    let node = |name: &str, price: f64, pods: Vec<Pod>| Node {
        name: name.into(),
        labels: BTreeMap::from([
            (LABEL_ZONE.to_string(), ZONES[0].to_string()),
            (LABEL_HOSTNAME.to_string(), name.to_string()),
        ]),
        allocatable: res(&[("cpu", "3920m"), ("memory", "14162Mi"), ("pods", "58")]),
        pods,
        price: Some(price),
        ..Default::default()
    };
    let mut p = problem(vec![], vec![pool("default")]);
    p.nodes.push(node("a", 0.192, pods("x", 2, "1")));
    p.nodes.push(node("b", 0.192, pods("y", 1, "1")));
    let r = simulate_removal(&p, &[1]);
    assert!(r.feasible());
    assert_eq!(r.destination(0).as_deref(), Some("a"));
    assert!((r.savings() - 0.192).abs() < 1e-12);
    // Removing both needs a replacement, cheaper than the two.
    let r = simulate_removal(&p, &[0, 1]);
    assert!(r.feasible());
    assert_eq!(r.plan.claims.len(), 1);
    assert!(r.savings() > 0.0, "{}", r.savings());
}
