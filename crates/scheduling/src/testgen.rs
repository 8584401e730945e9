//! Random scheduling problems for property tests: [`arb_problem`] for
//! proptest (it shrinks towards fewer, plainer pods) and [`seeded_problem`]
//! for larger deterministic runs.
//!
//! Every problem is built from small integer "specs", each field a choice
//! where 0 is the plainest (no constraint), drawn from small pools of label
//! values, zones and shapes so that constraints interact: pods select the
//! same apps, zones and capacity types the pools and offerings offer.

use std::ops::Range;

use proptest::prelude::*;

use crate::{
    eks,
    model::{
        CAPACITY_ON_DEMAND, CAPACITY_SPOT, HostPort, InstanceType, LABEL_ARCH, LABEL_CAPACITY_TYPE,
        LABEL_HOSTNAME, LABEL_INSTANCE_CATEGORY, LABEL_INSTANCE_CPU, LABEL_INSTANCE_TYPE,
        LABEL_NODEPOOL, LABEL_ZONE, LabelSelector, Labels, Node, NodePool, Offering, Pod,
        PodAffinityTerm, Problem, Taint, TaintEffect, Toleration, TopologySpread,
    },
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
};

pub const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];
pub const SHAPES: [&str; 12] = [
    "m6i.large",
    "c6i.large",
    "m6i.xlarge",
    "r6i.large",
    "m5.large",
    "c6i.xlarge",
    "t3.medium",
    "m6i.2xlarge",
    "m6g.large",
    "m5.xlarge",
    "g4dn.xlarge",
    "m5.2xlarge",
];
pub const APPS: [&str; 4] = ["web", "db", "cache", "batch"];
/// The taint of dedicated pools and nodes.
pub const DEDICATED: &str = "dedicated";
/// The label of the "team" pool.
pub const TEAM: &str = "team";

const MI: i64 = 1 << 20;

// Field ranges of each spec (value 0 is the plainest).
/// zones - 2, first shape, shape count - 3.
const TOP: [u8; 3] = [2, 12, 6];
/// unavailable offering, price jitter.
const TYPE: [u8; 2] = [8, 10];
/// capacity type, zone, instance types, taint, limits, weight, label.
const POOL: [u8; 7] = [4, 3, 5, 3, 3, 3, 2];
/// type, zone, capacity type, taint, pool, label.
const NODE: [u8; 6] = [8, 3, 2, 3, 3, 2];
/// size, tolerations, node selector, host port.
const DAEMONSET: [u8; 4] = [3, 2, 3, 2];
/// namespace, app, cpu, memory, node selector, tolerations, node affinity,
/// pod affinity, anti-affinity, spread, host port.
const POD: [u8; 11] = [4, 4, 7, 6, 8, 5, 8, 10, 8, 8, 8];

/// A problem as small integer choices.
#[derive(Clone, Debug)]
struct Spec {
    top: [u8; 3],
    types: Vec<[u8; 2]>,
    pools: Vec<[u8; 7]>,
    nodes: Vec<([u8; 6], Vec<[u8; 11]>)>,
    daemonsets: Vec<[u8; 4]>,
    pods: Vec<[u8; 11]>,
}

fn fields<const N: usize>(ranges: [u8; N]) -> [Range<u8>; N] {
    ranges.map(|n| 0..n)
}

/// A random problem: 1-3 pools, 3-8 instance types in 2-3 zones, 0-3
/// existing nodes with 0-3 pods each, 0-2 daemonsets, 1-40 pending pods.
pub fn arb_problem() -> impl Strategy<Value = Problem> {
    use proptest::collection::vec;
    (
        fields(TOP),
        vec(fields(TYPE), 8),
        vec(fields(POOL), 1..=3),
        vec((fields(NODE), vec(fields(POD), 0..=3)), 0..=3),
        vec(fields(DAEMONSET), 0..=2),
        vec(fields(POD), 1..=40),
    )
        .prop_map(|(top, types, pools, nodes, daemonsets, pods)| {
            build(&Spec {
                top,
                types,
                pools,
                nodes,
                daemonsets,
                pods,
            })
        })
}

/// splitmix64: a small deterministic generator (also the benchmark's).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }

    /// `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    fn fields<const N: usize>(&mut self, ranges: [u8; N]) -> [u8; N] {
        ranges.map(|n| self.below(u64::from(n)) as u8)
    }
}

/// A deterministic problem with `pods` pending pods, the same shape as
/// [`arb_problem`]'s (1-3 pools, 3-8 types, 0-3 nodes, 0-2 daemonsets).
pub fn seeded_problem(seed: u64, pods: usize) -> Problem {
    let mut r = Rng(seed);
    let top = r.fields(TOP);
    let types = (0..8).map(|_| r.fields(TYPE)).collect();
    let pools = (0..r.between(1, 3)).map(|_| r.fields(POOL)).collect();
    let nodes = (0..r.between(0, 3))
        .map(|_| {
            let n = r.fields(NODE);
            let on = (0..r.between(0, 3)).map(|_| r.fields(POD)).collect();
            (n, on)
        })
        .collect();
    let daemonsets = (0..r.between(0, 2)).map(|_| r.fields(DAEMONSET)).collect();
    let pods = (0..pods).map(|_| r.fields(POD)).collect();
    build(&Spec {
        top,
        types,
        pools,
        nodes,
        daemonsets,
        pods,
    })
}

fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
    Requirement::new(key, op, values).expect("generated requirements are valid")
}

fn reqs(list: &[(&str, Operator, &[&str])]) -> Requirements {
    let mut r = Requirements::default();
    for (k, op, v) in list {
        r.add(k, req(k, *op, v));
    }
    r
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect,
    }
}

fn port(n: u16, ip: &str) -> HostPort {
    HostPort {
        port: n,
        protocol: "TCP".into(),
        ip: ip.into(),
    }
}

fn term(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: LabelSelector::labels(&[("app", app)]),
        namespaces: vec![],
        topology_key: key.into(),
    }
}

fn spread(app: &str, key: &str, max_skew: u32, required: bool) -> TopologySpread {
    TopologySpread {
        max_skew,
        topology_key: key.into(),
        required,
        selector: LabelSelector::labels(&[("app", app)]),
    }
}

fn instance_type(shape: &str, zones: &[&str], s: [u8; 2]) -> InstanceType {
    let shape = eks::shape(shape).expect("SHAPES are known shapes");
    let gpus: i64 = shape.gpus.iter().map(|(_, n)| n).sum();
    let base =
        shape.vcpus as f64 * 0.04 + shape.memory_mib as f64 / 1024.0 * 0.005 + gpus as f64 * 0.35;
    let od = base * (1.0 + f64::from(s[1]) / 100.0);
    let mut offerings = vec![];
    for (zi, zone) in zones.iter().enumerate() {
        for ct in [CAPACITY_ON_DEMAND, CAPACITY_SPOT] {
            let k = offerings.len() as u8;
            let available = match s[0] {
                0 => true,
                7 => ct == CAPACITY_ON_DEMAND,
                n => n - 1 != k,
            };
            let price = if ct == CAPACITY_SPOT {
                od * (0.3 + 0.05 * ((u64::from(s[1]) + zi as u64 * 3) % 8) as f64)
            } else {
                od
            };
            offerings.push(Offering {
                zone: zone.to_string(),
                capacity_type: ct.into(),
                price,
                available,
            });
        }
    }
    eks::instance_type(&shape, &Default::default(), offerings)
}

fn pool(i: usize, s: [u8; 7]) -> NodePool {
    let mut requirements = Requirements::default();
    match s[0] {
        1 => requirements.add(
            LABEL_CAPACITY_TYPE,
            req(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_ON_DEMAND]),
        ),
        2 => requirements.add(
            LABEL_CAPACITY_TYPE,
            req(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_SPOT]),
        ),
        3 => requirements.add(
            LABEL_CAPACITY_TYPE,
            req(
                LABEL_CAPACITY_TYPE,
                Operator::In,
                &[CAPACITY_SPOT, CAPACITY_ON_DEMAND],
            ),
        ),
        _ => {}
    }
    match s[1] {
        1 => requirements.add(LABEL_ZONE, req(LABEL_ZONE, Operator::In, &ZONES[..2])),
        2 => requirements.add(LABEL_ZONE, req(LABEL_ZONE, Operator::NotIn, &[ZONES[0]])),
        _ => {}
    }
    match s[2] {
        1 => requirements.add(
            LABEL_INSTANCE_CATEGORY,
            req(LABEL_INSTANCE_CATEGORY, Operator::In, &["m", "c", "r"]),
        ),
        2 => requirements.add(LABEL_ARCH, req(LABEL_ARCH, Operator::In, &["amd64"])),
        3 => requirements.add(
            LABEL_INSTANCE_TYPE,
            req(
                LABEL_INSTANCE_TYPE,
                Operator::NotIn,
                &["t3.medium", "g4dn.xlarge"],
            ),
        ),
        4 => requirements.add(
            LABEL_INSTANCE_CPU,
            req(LABEL_INSTANCE_CPU, Operator::Gt, &["2"]),
        ),
        _ => {}
    }
    let taints = match s[3] {
        1 => vec![taint(DEDICATED, TEAM, TaintEffect::NoSchedule)],
        2 => vec![taint("batch", "", TaintEffect::PreferNoSchedule)],
        _ => vec![],
    };
    let (limits, usage) = match s[4] {
        1 => (
            [("cpu".to_string(), 16_000)].into(),
            Resources {
                cpu_millis: 2_000,
                ..Default::default()
            },
        ),
        2 => (
            [
                ("cpu".to_string(), 64_000),
                ("memory".to_string(), 256 << 30),
            ]
            .into(),
            Resources {
                cpu_millis: 8_000,
                memory_bytes: 32 << 30,
                ..Default::default()
            },
        ),
        _ => Default::default(),
    };
    NodePool {
        name: if i == 0 {
            "default".into()
        } else {
            format!("pool-{i}")
        },
        weight: [0, 10, 50][usize::from(s[5])],
        requirements,
        labels: if s[6] == 1 {
            labels(&[(TEAM, "a")])
        } else {
            Labels::new()
        },
        taints,
        limits,
        usage,
        // The third pool may only use every other type (as a pool of
        // another provider would).
        instance_types: (i == 2).then(|| (0..8).filter(|t| t % 2 == 0).collect()),
    }
}

fn daemonset(i: usize, s: [u8; 4]) -> Pod {
    let size = usize::from(s[0]);
    let mut d = Pod::new(
        "kube-system",
        &format!("ds-{i}"),
        Resources {
            cpu_millis: [50, 100, 200][size],
            memory_bytes: [64, 128, 256][size] * MI,
            ..Default::default()
        },
    );
    d.labels = labels(&[("app", &format!("ds-{i}"))]);
    if s[1] == 1 {
        d.tolerations = vec![Toleration {
            key: None,
            exists: true,
            value: String::new(),
            effect: None,
        }];
    }
    match s[2] {
        1 => {
            d.node_selector.insert(LABEL_ARCH.into(), "amd64".into());
        }
        2 => {
            d.node_selector
                .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_ON_DEMAND.into());
        }
        _ => {}
    }
    if s[3] == 1 {
        d.host_ports = vec![port(9100, "")];
    }
    d
}

fn pod(name: &str, zones: &[&str], s: [u8; 11]) -> Pod {
    let [ns, app, cpu, mem, sel, tol, naff, paff, anti, spr, hp] = s.map(usize::from);
    let app = APPS[app];
    let mut requests = Resources {
        cpu_millis: [100, 250, 500, 1000, 2000, 3500, 1000][cpu],
        memory_bytes: [128, 256, 512, 1024, 2048, 6144][mem] * MI,
        ..Default::default()
    };
    if cpu == 6 {
        requests.extended.insert("nvidia.com/gpu".into(), 1);
    }
    let mut p = Pod::new(if ns == 3 { "team" } else { "default" }, name, requests);
    p.labels = labels(&[("app", app)]);
    if app == "web" {
        p.labels.insert("tier".into(), "frontend".into());
    }
    let last_zone = zones.last().copied().unwrap_or(ZONES[0]);
    match sel {
        4 => {
            p.node_selector
                .insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_SPOT.into());
        }
        5 => {
            p.node_selector.insert(LABEL_ZONE.into(), ZONES[0].into());
        }
        6 => {
            p.node_selector.insert(LABEL_ARCH.into(), "arm64".into());
        }
        7 => {
            p.node_selector.insert(TEAM.into(), "a".into());
        }
        _ => {}
    }
    match tol {
        3 => {
            p.tolerations = vec![Toleration {
                key: Some(DEDICATED.into()),
                exists: false,
                value: TEAM.into(),
                effect: Some(TaintEffect::NoSchedule),
            }]
        }
        4 => {
            p.tolerations = vec![Toleration {
                key: None,
                exists: true,
                value: String::new(),
                effect: None,
            }]
        }
        _ => {}
    }
    match naff {
        4 => p.required_terms = vec![reqs(&[(LABEL_ZONE, Operator::In, &ZONES[..2])])],
        5 => {
            p.required_terms = vec![
                reqs(&[(LABEL_INSTANCE_CATEGORY, Operator::In, &["c", "r"])]),
                reqs(&[(LABEL_CAPACITY_TYPE, Operator::In, &[CAPACITY_ON_DEMAND])]),
            ]
        }
        6 => p.preferred_terms = vec![(50, reqs(&[(LABEL_ZONE, Operator::In, &[last_zone])]))],
        7 => p.required_terms = vec![reqs(&[(LABEL_INSTANCE_CPU, Operator::Gt, &["2"])])],
        _ => {}
    }
    match paff {
        5 => p.affinity = vec![term("web", LABEL_ZONE)],
        6 => p.affinity = vec![term(app, LABEL_HOSTNAME)],
        7 => p.preferred_affinity = vec![(50, term("db", LABEL_HOSTNAME))],
        8 => {
            let mut t = term("cache", LABEL_ZONE);
            t.namespaces = vec!["default".into(), "team".into()];
            p.affinity = vec![t];
        }
        9 => p.preferred_anti_affinity = vec![(30, term(app, LABEL_ZONE))],
        _ => {}
    }
    match anti {
        4 => p.anti_affinity.push(term(app, LABEL_HOSTNAME)),
        5 => p.anti_affinity.push(term(app, LABEL_ZONE)),
        6 => p
            .preferred_anti_affinity
            .push((100, term(app, LABEL_HOSTNAME))),
        7 => p.anti_affinity.push(term("batch", LABEL_HOSTNAME)),
        _ => {}
    }
    match spr {
        4 => p.spread = vec![spread(app, LABEL_ZONE, 1, true)],
        5 => p.spread = vec![spread(app, LABEL_HOSTNAME, 1, true)],
        6 => p.spread = vec![spread(app, LABEL_ZONE, 2, false)],
        7 => {
            p.spread = vec![
                spread(app, LABEL_ZONE, 1, true),
                spread(app, LABEL_HOSTNAME, 2, false),
            ]
        }
        _ => {}
    }
    match hp {
        6 => p.host_ports = vec![port(8080, "")],
        7 => p.host_ports = vec![port(8080, "10.0.0.1")],
        _ => {}
    }
    p
}

fn build(s: &Spec) -> Problem {
    let zones = &ZONES[..2 + usize::from(s.top[0])];
    let first = usize::from(s.top[1]);
    let count = 3 + usize::from(s.top[2]);
    let instance_types: Vec<InstanceType> = (0..count)
        .map(|k| {
            instance_type(
                SHAPES[(first + k) % SHAPES.len()],
                zones,
                s.types[k % s.types.len()],
            )
        })
        .collect();
    let pools: Vec<NodePool> = s
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| pool(i, *p))
        .collect();
    let nodes = s
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (n, on))| {
            let [ty, zone, ct, tnt, pl, lbl] = n.map(usize::from);
            let t = &instance_types[ty % instance_types.len()];
            let zone = zones[zone % zones.len()];
            let ct = [CAPACITY_ON_DEMAND, CAPACITY_SPOT][ct];
            let hostname = format!("node-{i}");
            let mut l = t.requirements.single_values();
            l.extend(labels(&[
                (LABEL_HOSTNAME, &hostname),
                (LABEL_ZONE, zone),
                (LABEL_CAPACITY_TYPE, ct),
            ]));
            let pool = pl.checked_sub(1).and_then(|k| pools.get(k));
            if let Some(pool) = pool {
                l.insert(LABEL_NODEPOOL.into(), pool.name.clone());
                l.extend(pool.labels.clone());
            }
            if lbl == 1 {
                l.insert(TEAM.into(), "a".into());
            }
            Node {
                name: hostname.clone(),
                labels: l,
                taints: if tnt == 2 {
                    vec![taint(DEDICATED, TEAM, TaintEffect::NoSchedule)]
                } else {
                    vec![]
                },
                allocatable: t.allocatable(),
                pods: on
                    .iter()
                    .enumerate()
                    .map(|(k, ps)| pod(&format!("running-{i}-{k}"), zones, *ps))
                    .collect(),
                in_flight: false,
                pool: pool.map(|p| p.name.clone()),
                price: t
                    .offerings
                    .iter()
                    .find(|o| o.zone == zone && o.capacity_type == ct)
                    .map(|o| o.price),
                do_not_disrupt: false,
            }
        })
        .collect();
    Problem {
        pods: s
            .pods
            .iter()
            .enumerate()
            .map(|(i, ps)| pod(&format!("pod-{i}"), zones, *ps))
            .collect(),
        nodes,
        pools,
        instance_types,
        daemonsets: s
            .daemonsets
            .iter()
            .enumerate()
            .map(|(i, d)| daemonset(i, *d))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{Plan, Unplaced},
        validate::validate,
    };

    fn all_unplaced(p: &Problem) -> Plan {
        Plan {
            unplaced: (0..p.pods.len())
                .map(|pod| Unplaced {
                    pool_reasons: vec![],
                    pod,
                    reason: "x".into(),
                    limited_by: vec![],
                })
                .collect(),
            ..Default::default()
        }
    }

    fn well_formed(p: &Problem) {
        assert!((1..=3).contains(&p.pools.len()));
        assert!((3..=8).contains(&p.instance_types.len()));
        assert!(p.nodes.len() <= 3 && p.daemonsets.len() <= 2);
        let names: std::collections::BTreeSet<&str> =
            p.instance_types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), p.instance_types.len(), "distinct types");
        for t in &p.instance_types {
            assert!(t.offerings.len() >= 4);
            assert!(t.offerings.iter().any(|o| o.available));
            assert!(t.offerings.iter().all(|o| o.price > 0.0));
        }
        for pool in &p.pools {
            for (name, max) in &pool.limits {
                assert!(pool.usage.get(name) <= *max);
            }
        }
    }

    proptest! {
        #[test]
        fn generated_problems_validate_with_everything_unplaced(p in arb_problem()) {
            well_formed(&p);
            prop_assert!(!p.pods.is_empty() && p.pods.len() <= 40);
            let v = validate(&p, &all_unplaced(&p));
            prop_assert!(v.is_empty(), "{:?}", v);
        }
    }

    #[test]
    fn seeded_problems_are_deterministic_and_valid_unplaced() {
        for seed in 0..50 {
            let p = seeded_problem(seed, 200);
            assert_eq!(p, seeded_problem(seed, 200));
            assert_eq!(p.pods.len(), 200);
            well_formed(&p);
            assert_eq!(validate(&p, &all_unplaced(&p)), vec![]);
        }
        assert_ne!(seeded_problem(1, 10), seeded_problem(2, 10));
    }

    /// The generator produces the constraints it is meant to, often enough.
    #[test]
    fn seeded_problems_cover_the_constraints() {
        let pods: Vec<Pod> = (0..20)
            .flat_map(|seed| seeded_problem(seed, 100).pods)
            .collect();
        let share = |f: &dyn Fn(&Pod) -> bool| pods.iter().filter(|p| f(p)).count();
        assert!(share(&|p| !p.node_selector.is_empty()) > 100);
        assert!(share(&|p| !p.tolerations.is_empty()) > 100);
        assert!(share(&|p| !p.required_terms.is_empty()) > 100);
        assert!(share(&|p| !p.affinity.is_empty()) > 100);
        assert!(share(&|p| !p.anti_affinity.is_empty()) > 100);
        assert!(share(&|p| p.spread.iter().any(|s| s.required)) > 100);
        assert!(share(&|p| !p.host_ports.is_empty()) > 50);
        assert!(share(&|p| p.requests.get("nvidia.com/gpu") > 0) > 50);
    }
}
