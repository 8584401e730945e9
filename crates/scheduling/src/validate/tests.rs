//! Unit tests of the validator: one broken rule at a time, and arbitrary
//! plans judged without panicking.

use std::collections::BTreeSet;

use super::*;
use crate::{
    eks,
    model::{
        CAPACITY_ON_DEMAND, CAPACITY_SPOT, HostPort, InstanceType, LABEL_HOSTNAME,
        LABEL_INSTANCE_TYPE, LabelSelector, NewClaim, Node, NodePool, Taint, TaintEffect,
        Toleration, TopologySpread, Unplaced,
    },
    requirements::{Operator, Requirement},
};

const A: &str = "zone-a";
const B: &str = "zone-b";

fn offer(zone: &str, ct: &str, price: f64) -> Offering {
    Offering {
        zone: zone.into(),
        capacity_type: ct.into(),
        price,
        available: true,
    }
}

fn itype(name: &str, od: f64) -> InstanceType {
    eks::instance_type(
        &eks::shape(name).unwrap(),
        &Default::default(),
        vec![
            offer(A, CAPACITY_ON_DEMAND, od),
            offer(B, CAPACITY_ON_DEMAND, od),
            offer(A, CAPACITY_SPOT, od * 0.4),
            offer(B, CAPACITY_SPOT, od * 0.5),
        ],
    )
}

fn reqs(list: &[(&str, Operator, &[&str])]) -> Requirements {
    let mut r = Requirements::default();
    for (k, op, v) in list {
        r.add(k, Requirement::new(k, *op, v).unwrap());
    }
    r
}

fn zone_req(zone: &str) -> Requirements {
    if zone.is_empty() {
        Requirements::default()
    } else {
        reqs(&[(LABEL_ZONE, Operator::In, &[zone])])
    }
}

fn pod(name: &str, app: &str, cpu: i64) -> Pod {
    let mut p = Pod::new(
        "default",
        name,
        Resources {
            cpu_millis: cpu,
            ..Default::default()
        },
    );
    p.labels.insert("app".into(), app.into());
    p
}

fn term(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: LabelSelector::labels(&[("app", app)]),
        namespaces: vec![],
        topology_key: key.into(),
    }
}

fn spread(app: &str, key: &str, max_skew: u32) -> TopologySpread {
    TopologySpread {
        max_skew,
        topology_key: key.into(),
        required: true,
        selector: LabelSelector::labels(&[("app", app)]),
    }
}

fn port(n: u16) -> HostPort {
    HostPort {
        port: n,
        protocol: "TCP".into(),
        ip: String::new(),
    }
}

/// A claim with its requests and price worked out from its parts.
fn claim(
    p: &Problem,
    hostname: &str,
    requirements: Requirements,
    types: &[usize],
    pods: &[usize],
    daemonsets: &[usize],
) -> NewClaim {
    let requests = Resources::sum(
        pods.iter()
            .map(|i| &p.pods[*i].requests)
            .chain(daemonsets.iter().map(|d| &p.daemonsets[*d].requests)),
    );
    let price = p.instance_types[types[0]]
        .offerings
        .iter()
        .filter(|o| offering_allowed(&requirements, o))
        .map(|o| o.price)
        .fold(f64::INFINITY, f64::min);
    NewClaim {
        pool: 0,
        hostname: hostname.into(),
        requirements,
        instance_types: types.to_vec(),
        pods: pods.to_vec(),
        daemonsets: daemonsets.to_vec(),
        requests,
        price,
    }
}

fn catalogue() -> Problem {
    let large = itype("m6i.large", 0.096);
    let node = Node {
        name: "n1".into(),
        labels: [
            (LABEL_HOSTNAME, "n1"),
            (LABEL_ZONE, A),
            (LABEL_CAPACITY_TYPE, CAPACITY_ON_DEMAND),
            (LABEL_INSTANCE_TYPE, "m6i.large"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        allocatable: large.allocatable(),
        ..Default::default()
    };
    Problem {
        instance_types: vec![large, itype("m6i.xlarge", 0.192)],
        pools: vec![NodePool {
            name: "default".into(),
            ..Default::default()
        }],
        nodes: vec![node],
        ..Default::default()
    }
}

/// A valid plan using an existing node, two claims, a daemonset,
/// anti-affinity, affinity, spread and host ports.
fn scenario() -> (Problem, Plan) {
    let mut p = catalogue();
    let mut db0 = pod("db-0", "db", 500);
    db0.anti_affinity = vec![term("db", LABEL_HOSTNAME)];
    p.nodes[0].pods = vec![db0];
    let mut ds = pod("node-exporter", "exporter", 100);
    ds.namespace = "kube-system".into();
    ds.host_ports = vec![port(9100)];
    p.daemonsets = vec![ds];
    let web = |name| {
        let mut w = pod(name, "web", 500);
        w.anti_affinity = vec![term("web", LABEL_HOSTNAME)];
        w.spread = vec![spread("web", LABEL_ZONE, 1)];
        w.host_ports = vec![port(8080)];
        w
    };
    let mut cache = pod("cache-0", "cache", 250);
    cache.affinity = vec![term("web", LABEL_ZONE)];
    let mut db1 = pod("db-1", "db", 1000);
    db1.anti_affinity = vec![term("db", LABEL_HOSTNAME)];
    p.pods = vec![web("web-0"), web("web-1"), cache, db1];
    let claims = vec![
        claim(&p, "c0", zone_req(B), &[0, 1], &[1, 2], &[0]),
        claim(&p, "c1", zone_req(A), &[0, 1], &[3], &[0]),
    ];
    let plan = Plan {
        placements: vec![
            (0, Target::Node(0)),
            (1, Target::Claim(0)),
            (2, Target::Claim(0)),
            (3, Target::Claim(1)),
        ],
        claims,
        ..Default::default()
    };
    (p, plan)
}

/// Pods all of 100m placed in order on claims of the given zones ("":
/// no zone requirement), no daemonsets.
fn mini(pods: Vec<Pod>, zones: &[&str], order: &[(usize, usize)]) -> (Problem, Plan) {
    let mut p = catalogue();
    p.pods = pods;
    let claims = zones
        .iter()
        .enumerate()
        .map(|(ci, z)| {
            let members: Vec<usize> = order
                .iter()
                .filter(|(_, c)| *c == ci)
                .map(|(i, _)| *i)
                .collect();
            claim(&p, &format!("c{ci}"), zone_req(z), &[0, 1], &members, &[])
        })
        .collect();
    let plan = Plan {
        placements: order.iter().map(|(i, c)| (*i, Target::Claim(*c))).collect(),
        claims,
        ..Default::default()
    };
    (p, plan)
}

fn rules(v: &[Violation]) -> BTreeSet<Rule> {
    v.iter().map(|v| v.rule).collect()
}

#[track_caller]
fn only(p: &Problem, plan: &Plan, rule: Rule) -> Vec<Violation> {
    let v = validate(p, plan);
    let shown: Vec<String> = v.iter().map(|v| v.to_string()).collect();
    assert_eq!(rules(&v), [rule].into(), "{shown:#?}");
    v
}

#[test]
fn a_valid_plan_passes() {
    let (p, plan) = scenario();
    assert_eq!(validate(&p, &plan), vec![]);
    let all_unplaced = Plan {
        unplaced: (0..p.pods.len())
            .map(|pod| Unplaced {
                pool_reasons: vec![],
                pod,
                reason: "x".into(),
                limited_by: vec![],
            })
            .collect(),
        ..Default::default()
    };
    assert_eq!(validate(&p, &all_unplaced), vec![]);
}

#[test]
fn over_committed_node() {
    let (mut p, plan) = scenario();
    p.pods[0].requests.cpu_millis = 1500; // 500m of db-0 + 1500m > 1930m
    let v = only(&p, &plan, Rule::Resources);
    assert!(v[0].to_string().contains("node n1"), "{}", v[0]);
}

#[test]
fn untolerated_taints() {
    let (mut p, plan) = scenario();
    let taint = |effect| Taint {
        key: "dedicated".into(),
        value: "db".into(),
        effect,
    };
    p.nodes[0].taints = vec![taint(TaintEffect::PreferNoSchedule)];
    assert_eq!(validate(&p, &plan), vec![]);
    p.nodes[0].taints = vec![taint(TaintEffect::NoSchedule)];
    let v = only(&p, &plan, Rule::Taint);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].pod.as_deref(), Some("default/web-0"));
    assert!(
        v[0].to_string().contains("dedicated=db:NoSchedule"),
        "{}",
        v[0]
    );
    p.nodes[0].taints = vec![];
    p.pools[0].taints = vec![taint(TaintEffect::NoExecute)];
    let v = only(&p, &plan, Rule::Taint);
    assert_eq!(v.len(), 3, "the claims' pods");
    // Tolerated: fine again.
    for pod in &mut p.pods {
        pod.tolerations = vec![Toleration {
            key: Some("dedicated".into()),
            exists: true,
            value: String::new(),
            effect: None,
        }];
    }
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn node_selector_mismatch() {
    let (mut p, plan) = scenario();
    p.pods[0].node_selector.insert(LABEL_ZONE.into(), B.into());
    let v = only(&p, &plan, Rule::NodeAffinity);
    assert_eq!(v[0].pod.as_deref(), Some("default/web-0"));
    // On a claim: every node it may launch as must match (c0 may be
    // on-demand).
    let (mut p, plan) = scenario();
    p.pods[2]
        .node_selector
        .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_SPOT.into());
    let v = only(&p, &plan, Rule::NodeAffinity);
    assert!(v[0].detail.contains("on-demand"), "{}", v[0]);
    // Required node affinity, ORed terms.
    let (mut p, plan) = scenario();
    p.pods[3].required_terms = vec![
        reqs(&[(LABEL_ZONE, Operator::In, &[B])]),
        reqs(&[(
            LABEL_INSTANCE_TYPE,
            Operator::In,
            &["m6i.large", "m6i.xlarge"],
        )]),
    ];
    assert_eq!(validate(&p, &plan), vec![]);
    p.pods[3].required_terms.pop();
    only(&p, &plan, Rule::NodeAffinity);
}

#[test]
fn instance_type_too_small() {
    let (mut p, mut plan) = scenario();
    p.pods[3].requests.cpu_millis = 2500;
    plan.claims[1] = claim(&p, "c1", zone_req(A), &[0, 1], &[3], &[0]);
    let v = only(&p, &plan, Rule::InstanceType);
    assert!(v[0].detail.contains("m6i.large"), "{}", v[0]);
    plan.claims[1] = claim(&p, "c1", zone_req(A), &[1], &[3], &[0]);
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn prices_cheapest_first() {
    let (p, mut plan) = scenario();
    plan.claims[0] = claim(&p, "c0", zone_req(B), &[1, 0], &[1, 2], &[0]);
    let v = only(&p, &plan, Rule::Price);
    assert_eq!(v.len(), 1, "{v:?}");
    let (_, mut plan) = scenario();
    plan.claims[0].price = 0.096; // on-demand, but spot is allowed
    only(&p, &plan, Rule::Price);
    // Narrowed to on-demand, the on-demand price is right.
    plan.claims[0].requirements.add(
        LABEL_CAPACITY_TYPE,
        Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_ON_DEMAND]).unwrap(),
    );
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn limits_are_charged_at_the_largest_type() {
    let (mut p, plan) = scenario();
    p.pools[0].limits = [("cpu".to_string(), 8000)].into();
    assert_eq!(validate(&p, &plan), vec![]);
    p.pools[0].usage.cpu_millis = 1;
    only(&p, &plan, Rule::Limits);
    p.pools[0].usage.cpu_millis = 0;
    p.pools[0].limits = [
        ("nvidia.com/gpu".to_string(), 0),
        ("memory".to_string(), 1 << 40),
    ]
    .into();
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn anti_affinity_broken() {
    let mut b = pod("b", "web", 100);
    b.anti_affinity = vec![term("web", LABEL_HOSTNAME)];
    let pods = vec![pod("a", "web", 100), b];
    let (p, plan) = mini(pods.clone(), &[A], &[(0, 0), (1, 0)]);
    let v = only(&p, &plan, Rule::AntiAffinity);
    assert_eq!(v[0].pod.as_deref(), Some("default/b"));
    // On another host it is fine; in the same zone it is not.
    let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
    assert_eq!(validate(&p, &plan), vec![]);
    let mut pods = pods;
    pods[1].anti_affinity = vec![term("web", LABEL_ZONE)];
    let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
    only(&p, &plan, Rule::AntiAffinity);
    let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (1, 1)]);
    assert_eq!(validate(&p, &plan), vec![]);
    // Another namespace is not selected, unless the term names it.
    pods[0].namespace = "other".into();
    let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
    assert_eq!(validate(&p, &plan), vec![]);
    pods[1].anti_affinity[0].namespaces = vec!["other".into()];
    let (p, plan) = mini(pods, &[A, A], &[(0, 0), (1, 1)]);
    only(&p, &plan, Rule::AntiAffinity);
}

#[test]
fn symmetric_anti_affinity_broken() {
    let mut a = pod("a", "db", 100);
    a.anti_affinity = vec![term("web", LABEL_HOSTNAME)];
    let pods = vec![a, pod("b", "web", 100)];
    let (p, plan) = mini(pods.clone(), &[A], &[(0, 0), (1, 0)]);
    let v = only(&p, &plan, Rule::SymmetricAntiAffinity);
    assert_eq!(v[0].pod.as_deref(), Some("default/b"));
    // The existing db-0 on n1 refuses another db pod.
    let (mut p, mut plan) = scenario();
    p.pods[3].anti_affinity.clear();
    p.pods[3].requests.cpu_millis = 100;
    plan.placements[3].1 = Target::Node(0);
    plan.claims.pop();
    only(&p, &plan, Rule::SymmetricAntiAffinity);
}

#[test]
fn affinity_broken() {
    let mut b = pod("b", "cache", 100);
    b.affinity = vec![term("web", LABEL_ZONE)];
    let pods = vec![pod("a", "web", 100), b];
    let (p, plan) = mini(pods.clone(), &[A, A], &[(0, 0), (1, 1)]);
    assert_eq!(validate(&p, &plan), vec![]);
    let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (1, 1)]);
    only(&p, &plan, Rule::Affinity);
    // Placed before its target: broken too.
    let (p, plan) = mini(pods, &[A, A], &[(1, 1), (0, 0)]);
    only(&p, &plan, Rule::Affinity);
    // The first pod of a self-affine group may go anywhere; the next
    // must follow it.
    let group = |name| {
        let mut g = pod(name, "group", 100);
        g.affinity = vec![term("group", LABEL_HOSTNAME)];
        g
    };
    let (p, plan) = mini(vec![group("g0"), group("g1")], &[A], &[(0, 0), (1, 0)]);
    assert_eq!(validate(&p, &plan), vec![]);
    let (p, plan) = mini(vec![group("g0"), group("g1")], &[A, A], &[(0, 0), (1, 1)]);
    let v = only(&p, &plan, Rule::Affinity);
    assert_eq!(v[0].pod.as_deref(), Some("default/g1"));
}

#[test]
fn spread_skew_exceeded() {
    let w = |name| {
        let mut w = pod(name, "web", 100);
        w.spread = vec![spread("web", LABEL_ZONE, 1)];
        w
    };
    let pods = vec![w("w0"), w("w1"), w("w2")];
    // c1 in zone-b is an eligible, empty domain.
    let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (1, 0), (2, 1)]);
    let v = only(&p, &plan, Rule::TopologySpread);
    assert_eq!(v[0].pod.as_deref(), Some("default/w1"));
    let (p, plan) = mini(pods.clone(), &[A, B], &[(0, 0), (2, 1), (1, 0)]);
    assert_eq!(validate(&p, &plan), vec![]);
    // Existing n1 (zone-a) counts as a domain and its pods count.
    let mut pods = pods[..2].to_vec();
    let (mut p, plan) = mini(pods.clone(), &[B], &[(0, 0), (1, 0)]);
    only(&p, &plan, Rule::TopologySpread);
    p.nodes[0].pods = vec![pod("old", "web", 100)];
    assert_eq!(validate(&p, &plan), vec![]);
    // Pods on nodes the pod's node affinity excludes are not counted,
    // nor are their domains.
    for w in &mut pods {
        w.node_selector
            .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_SPOT.into());
    }
    let (mut p, mut plan) = mini(pods, &[B], &[(0, 0), (1, 0)]);
    for c in &mut plan.claims {
        c.requirements.add(
            LABEL_CAPACITY_TYPE,
            Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_SPOT]).unwrap(),
        );
        c.price = 0.048;
    }
    assert_eq!(validate(&p, &plan), vec![]);
    p.nodes[0].pods = vec![pod("old", "web", 100)];
    assert_eq!(validate(&p, &plan), vec![]);
    // Without the node selector, n1's zone-a is an eligible domain.
    p.nodes[0].pods.clear();
    for w in &mut p.pods {
        w.node_selector.clear();
    }
    only(&p, &plan, Rule::TopologySpread);
    // A bigger skew allows it.
    for w in &mut p.pods {
        w.spread[0].max_skew = 2;
    }
    assert_eq!(validate(&p, &plan), vec![]);
    // ScheduleAnyway is a preference.
    for w in &mut p.pods {
        w.spread[0].max_skew = 1;
        w.spread[0].required = false;
    }
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn undetermined_zone() {
    let mut w = pod("w", "web", 100);
    w.spread = vec![spread("web", LABEL_ZONE, 1)];
    let (p, plan) = mini(vec![w.clone()], &[""], &[(0, 0)]);
    let v = validate(&p, &plan);
    assert_eq!(rules(&v), [Rule::UndeterminedDomain].into(), "{v:?}");
    // Hostname is always determined.
    w.spread[0].topology_key = LABEL_HOSTNAME.into();
    let (p, plan) = mini(vec![w], &[""], &[(0, 0)]);
    assert_eq!(validate(&p, &plan), vec![]);
    // A pod with no constraint of its own, counted by another pod's
    // zone anti-affinity.
    let mut a = pod("a", "db", 100);
    a.anti_affinity = vec![term("web", LABEL_ZONE)];
    let (p, plan) = mini(vec![a, pod("b", "web", 100)], &[A, ""], &[(0, 0), (1, 1)]);
    let v = validate(&p, &plan);
    assert_eq!(rules(&v), [Rule::UndeterminedDomain].into(), "{v:?}");
    assert!(v.iter().all(|v| v.pod.as_deref() == Some("default/b")));
    // Offerings narrowing to one zone determine it.
    let (mut p, plan) = mini(vec![pod("x", "web", 100)], &[""], &[(0, 0)]);
    let mut w = pod("w", "other", 100);
    w.spread = vec![spread("web", LABEL_ZONE, 1)];
    p.pods.push(w);
    let mut plan = plan;
    plan.unplaced = vec![Unplaced {
        pool_reasons: vec![],
        pod: 1,
        reason: "x".into(),
        limited_by: vec![],
    }];
    only(&p, &plan, Rule::UndeterminedDomain);
    for t in &mut p.instance_types {
        t.offerings.retain(|o| o.zone == A);
    }
    plan.claims[0].price = p.instance_types[0].offerings[1].price;
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn host_port_conflict() {
    let (mut p, plan) = scenario();
    p.pods[2].host_ports = vec![port(8080)];
    let v = only(&p, &plan, Rule::HostPort);
    assert!(v[0].to_string().contains("web-1"), "{}", v[0]);
    let (mut p, plan) = scenario();
    p.pods[3].host_ports = vec![port(9100)];
    let v = only(&p, &plan, Rule::HostPort);
    assert!(v[0].to_string().contains("node-exporter"), "{}", v[0]);
    // Another protocol or address does not conflict.
    p.pods[3].host_ports[0].protocol = "UDP".into();
    assert_eq!(validate(&p, &plan), vec![]);
    // Existing pods' ports count.
    let (mut p, plan) = scenario();
    p.nodes[0].pods[0].host_ports = vec![port(8080)];
    only(&p, &plan, Rule::HostPort);
}

#[test]
fn every_pod_exactly_once() {
    let (p, mut plan) = scenario();
    plan.unplaced = vec![Unplaced {
        pool_reasons: vec![],
        pod: 0,
        reason: "no room".into(),
        limited_by: vec![],
    }];
    let v = only(&p, &plan, Rule::Bookkeeping);
    assert!(
        v[0].to_string().contains("both placed and unplaced"),
        "{}",
        v[0]
    );
    let (p, mut plan) = scenario();
    plan.placements.remove(0);
    let v = only(&p, &plan, Rule::Bookkeeping);
    assert!(v[0].to_string().contains("neither"), "{}", v[0]);
    plan.unplaced = vec![Unplaced {
        pool_reasons: vec![],
        pod: 0,
        reason: " ".into(),
        limited_by: vec![],
    }];
    only(&p, &plan, Rule::Bookkeeping);
    let (p, mut plan) = scenario();
    plan.placements.push((7, Target::Node(0)));
    plan.placements.push((0, Target::Claim(5)));
    plan.placements.push((0, Target::Node(0)));
    assert_eq!(only(&p, &plan, Rule::Bookkeeping).len(), 3);
}

#[test]
fn claims_agree_with_placements() {
    let (p, mut plan) = scenario();
    plan.claims[0].pods = vec![1];
    let v = validate(&p, &plan);
    assert!(rules(&v).contains(&Rule::Bookkeeping), "{v:?}");
    let (p, mut plan) = scenario();
    plan.claims[1].hostname = "c0".into();
    only(&p, &plan, Rule::Bookkeeping);
    plan.claims[1].hostname = "n1".into();
    let v = validate(&p, &plan);
    assert!(rules(&v).contains(&Rule::Bookkeeping), "{v:?}");
    let (p, mut plan) = scenario();
    plan.claims[1].requests.memory_bytes += 1;
    only(&p, &plan, Rule::Resources);
    let (p, mut plan) = scenario();
    plan.claims[1].instance_types.clear();
    plan.placements.pop();
    plan.claims.pop();
    plan.unplaced.push(Unplaced {
        pool_reasons: vec![],
        pod: 3,
        reason: "x".into(),
        limited_by: vec![],
    });
    assert_eq!(validate(&p, &plan), vec![]);
    let (p, mut plan) = scenario();
    plan.claims[1].instance_types.clear();
    let v = validate(&p, &plan);
    assert!(rules(&v).contains(&Rule::Bookkeeping), "{v:?}");
}

#[test]
fn undercounted_daemonset() {
    let (p, mut plan) = scenario();
    plan.claims[1] = claim(&p, "c1", zone_req(A), &[0, 1], &[3], &[]);
    let v = only(&p, &plan, Rule::Daemonsets);
    assert!(
        v[0].to_string().contains("kube-system/node-exporter"),
        "{}",
        v[0]
    );
    // A daemonset that would not run there need not be counted.
    let (mut p, plan) = scenario();
    p.daemonsets[0]
        .node_selector
        .insert(LABEL_ZONE.into(), "zone-z".into());
    let mut plan = plan;
    for c in &mut plan.claims {
        *c = claim(
            &p,
            &c.hostname,
            c.requirements.clone(),
            &[0, 1],
            &c.pods,
            &[],
        );
    }
    assert_eq!(validate(&p, &plan), vec![]);
}

#[test]
fn claim_nodes_meet_pool_requirements() {
    let (mut p, plan) = scenario();
    p.pools[0].requirements = reqs(&[(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_SPOT])]);
    only(&p, &plan, Rule::ClaimNode);
    p.pools[0].requirements = reqs(&[(LABEL_INSTANCE_TYPE, Operator::NotIn, &["m6i.large"])]);
    only(&p, &plan, Rule::ClaimNode);
    // A type the claim's requirements exclude.
    let (p, mut plan) = scenario();
    plan.claims[1].requirements.add(
        LABEL_INSTANCE_TYPE,
        Requirement::new(LABEL_INSTANCE_TYPE, Operator::In, &["m6i.xlarge"]).unwrap(),
    );
    let v = validate(&p, &plan);
    assert!(rules(&v).contains(&Rule::InstanceType), "{v:?}");
    // Unavailable offerings only: the type cannot launch.
    let (mut p, plan) = scenario();
    for o in &mut p.instance_types[1].offerings {
        if o.zone == B {
            o.available = false;
        }
    }
    let v = only(&p, &plan, Rule::InstanceType);
    assert!(v[0].detail.contains("no available offering"), "{}", v[0]);
}

#[test]
fn min_values_counts_the_claims_types() {
    let (mut p, plan) = scenario();
    let mut r = Requirement::new(LABEL_INSTANCE_TYPE, Operator::Exists, &[]).unwrap();
    r.min_values = Some(2);
    p.pools[0].requirements.add(LABEL_INSTANCE_TYPE, r);
    assert_eq!(validate(&p, &plan), vec![]);
    let mut plan = plan;
    plan.claims[1].instance_types = vec![1];
    plan.claims[1].price = 0.192 * 0.4;
    only(&p, &plan, Rule::ClaimNode);
}

fn arb_plan(p: &Problem) -> impl Strategy<Value = Plan> + use<> {
    use proptest::collection::vec;
    let (n, nodes, pools, types, ds) = (
        p.pods.len(),
        p.nodes.len(),
        p.pools.len(),
        p.instance_types.len(),
        p.daemonsets.len(),
    );
    let claim = (
        0..pools + 1,
        vec(0..types + 1, 0..4),
        vec(0..n + 1, 0..4),
        vec(0..ds + 1, 0..3),
        0usize..4,
        0i64..4000,
        0u8..3,
    )
        .prop_map(
            |(pool, instance_types, pods, daemonsets, zone, cpu, host)| {
                let zones = ["zone-a", "zone-b", "ap-southeast-1a"];
                NewClaim {
                    pool,
                    hostname: format!("h{host}"),
                    requirements: zones.get(zone).map(|z| zone_req(z)).unwrap_or_default(),
                    instance_types,
                    pods,
                    daemonsets,
                    requests: Resources {
                        cpu_millis: cpu,
                        ..Default::default()
                    },
                    price: 0.1,
                }
            },
        );
    (
        vec((0..n + 1, any::<bool>(), 0..nodes.max(3) + 1), 0..n + 2),
        vec(claim, 0..4),
        vec((0..n + 1, any::<bool>()), 0..n + 1),
    )
        .prop_map(|(placements, claims, unplaced)| Plan {
            placements: placements
                .into_iter()
                .map(|(i, node, k)| {
                    (
                        i,
                        if node {
                            Target::Node(k)
                        } else {
                            Target::Claim(k)
                        },
                    )
                })
                .collect(),
            claims,
            unplaced: unplaced
                .into_iter()
                .map(|(pod, why)| Unplaced {
                    pool_reasons: vec![],
                    pod,
                    reason: if why { "x".into() } else { String::new() },
                    limited_by: vec![],
                })
                .collect(),
            relaxed: vec![],
        })
}

use proptest::prelude::*;

proptest! {
    /// Arbitrary (mostly wrong) plans are judged without panicking, and
    /// every violation names its rule.
    #[test]
    fn never_panics((p, plan) in crate::testgen::arb_problem()
        .prop_flat_map(|p| { let s = arb_plan(&p); (Just(p), s) })) {
        for v in validate(&p, &plan) {
            prop_assert!(!v.to_string().is_empty());
        }
    }
}
