//! The scheduling benchmark, shaped like Karpenter's
//! (`pkg/controllers/provisioning/scheduling/scheduling_benchmark_test.go`):
//! 400 generated instance types (`fake-it-N`: N+1 cpu, 2(N+1) GiB, 10(N+1)
//! pods, 100m/10Mi kube-reserved, spot in two zones and on-demand in three,
//! price 0.1/cpu + 0.1/GB), one node pool, and diverse pods with cpu drawn
//! from {100, 250, 500, 1000, 1500}m and memory from {100, 256, 512, 1024,
//! 2048, 4096}Mi.
//!
//! Shapes:
//! - `six` (the issue's): six equal groups: no constraints; zonal spread;
//!   hostname spread; zonal pod affinity; hostname pod affinity; hostname
//!   pod anti-affinity. Spread and affinity selectors draw a random label
//!   value, as Karpenter's benchmark first did.
//! - `karpenter` (Karpenter v1.12's `makeDiversePods`): five groups (no
//!   hostname pod affinity) and self-affinity, for the head-to-head run.
//!
//! One solve per process, so the peak resident memory is the solve's:
//!
//!     cargo run --release -p outrigger-scheduling --features testgen --example bench -- --pods 20000
//!
//! prints one JSON line. `--baseline` also solves with first-fit-decreasing
//! into bins of a single instance type (the same constraints, one bin size
//! per run, best of a ladder of sizes) and reports its price.
//!
//! The random sequence is splitmix64 seeded 42 (`testgen::Rng`), not Go's
//! math/rand, so the draws match Karpenter's in distribution, not one by
//! one. Needs the `testgen` feature (bench/scheduling.sh passes it).

use std::time::Instant;

use outrigger_scheduling::{
    model::*,
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
    solver::{Options, solve, solve_with},
    testgen::Rng,
};

const GI: i64 = 1 << 30;
const MI: i64 = 1 << 20;

fn instance_types(n: usize) -> Vec<InstanceType> {
    (0..n)
        .map(|i| {
            let cpu = (i + 1) as i64;
            let capacity = Resources {
                cpu_millis: cpu * 1000,
                memory_bytes: 2 * cpu * GI,
                pods: 10 * cpu,
                ..Default::default()
            };
            let price = 0.1 * cpu as f64 + 0.1 * (2 * cpu * GI) as f64 / 1e9;
            let offering = |zone: &str, ct: &str| Offering {
                zone: zone.into(),
                capacity_type: ct.into(),
                price,
                available: true,
            };
            let name = format!("fake-it-{i}");
            let mut requirements = Requirements::default();
            for (k, v) in [
                (LABEL_INSTANCE_TYPE, name.as_str()),
                (LABEL_ARCH, "amd64"),
                ("integer", &cpu.to_string()),
            ] {
                requirements.add(
                    k,
                    Requirement::new(k, Operator::In, &[v]).expect("one value"),
                );
            }
            requirements.add(
                LABEL_OS,
                Requirement::new(LABEL_OS, Operator::In, &["darwin", "linux", "windows"])
                    .expect("three values"),
            );
            InstanceType {
                name,
                requirements,
                capacity,
                overhead: Resources {
                    cpu_millis: 100,
                    memory_bytes: 10 * MI,
                    ..Default::default()
                },
                offerings: vec![
                    offering("test-zone-1", CAPACITY_SPOT),
                    offering("test-zone-2", CAPACITY_SPOT),
                    offering("test-zone-1", CAPACITY_ON_DEMAND),
                    offering("test-zone-2", CAPACITY_ON_DEMAND),
                    offering("test-zone-3", CAPACITY_ON_DEMAND),
                ],
            }
        })
        .collect()
}

const VALUES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

fn labels(rng: &mut Rng, key: &str) -> Labels {
    Labels::from([(key.to_string(), rng.pick(&VALUES).to_string())])
}

fn pod(rng: &mut Rng, n: usize, labels: Labels) -> Pod {
    let cpu = *rng.pick(&[100i64, 250, 500, 1000, 1500]);
    let mem = *rng.pick(&[100i64, 256, 512, 1024, 2048, 4096]);
    let mut p = Pod::new(
        "default",
        &format!("pod-{n}"),
        Resources {
            cpu_millis: cpu,
            memory_bytes: mem * MI,
            pods: 1,
            ..Default::default()
        },
    );
    p.labels = labels;
    p
}

fn term(sel: Labels, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: LabelSelector {
            match_labels: sel.into_iter().collect(),
            match_expressions: vec![],
        },
        namespaces: vec![],
        topology_key: key.into(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Six,
    Karpenter,
}

fn pods(count: usize, shape: Shape, rng: &mut Rng) -> Vec<Pod> {
    let groups = if shape == Shape::Six { 6 } else { 5 };
    let per = count / groups;
    let mut out = vec![];
    let mut n = 0;
    let mut next = |rng: &mut Rng, l: Labels| {
        n += 1;
        pod(rng, n, l)
    };
    for _ in 0..per {
        let l = labels(rng, "my-label");
        out.push(next(rng, l));
    }
    for key in [LABEL_ZONE, LABEL_HOSTNAME] {
        for _ in 0..per {
            let l = labels(rng, "my-label");
            let mut p = next(rng, l);
            let sel = labels(rng, "my-label");
            p.spread.push(TopologySpread {
                max_skew: 1,
                topology_key: key.into(),
                required: true,
                selector: LabelSelector {
                    match_labels: sel.into_iter().collect(),
                    match_expressions: vec![],
                },
            });
            out.push(p);
        }
    }
    let affinity_keys: &[&str] = if shape == Shape::Six {
        &[LABEL_ZONE, LABEL_HOSTNAME]
    } else {
        &[LABEL_ZONE]
    };
    for key in affinity_keys {
        for _ in 0..per {
            let l = labels(rng, "my-affininity");
            let sel = if shape == Shape::Six {
                labels(rng, "my-affininity")
            } else {
                l.clone()
            };
            let mut p = next(rng, l);
            p.affinity.push(term(sel, key));
            out.push(p);
        }
    }
    for _ in 0..per {
        let l = Labels::from([("app".to_string(), "nginx".to_string())]);
        let mut p = next(rng, l.clone());
        p.anti_affinity.push(term(l, LABEL_HOSTNAME));
        out.push(p);
    }
    while out.len() < count {
        let l = labels(rng, "my-label");
        out.push(next(rng, l));
    }
    out
}

fn problem(count: usize, shape: Shape) -> Problem {
    let mut rng = Rng(42);
    Problem {
        pods: pods(count, shape, &mut rng),
        nodes: vec![],
        pools: vec![NodePool {
            name: "default".into(),
            limits: [
                ("cpu".to_string(), 10_000_000 * 1000),
                ("memory".to_string(), 10_000_000 * GI),
            ]
            .into(),
            ..Default::default()
        }],
        instance_types: instance_types(400),
        daemonsets: vec![],
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let count: usize = arg("--pods").and_then(|v| v.parse().ok()).unwrap_or(1000);
    let shape = match arg("--shape").as_deref() {
        Some("karpenter") => Shape::Karpenter,
        _ => Shape::Six,
    };
    let repeat: usize = arg("--repeat").and_then(|v| v.parse().ok()).unwrap_or(1);
    let p = problem(count, shape);
    let rss_before = peak_rss_kib();
    let start = Instant::now();
    let plan = solve(&p);
    let mut best = start.elapsed().as_secs_f64();
    // The peak of one solve (the problem included); repeats only time.
    let peak = peak_rss_kib();
    for _ in 1..repeat.max(1) {
        let start = Instant::now();
        drop(solve(&p));
        best = best.min(start.elapsed().as_secs_f64());
    }
    let mut baseline = String::new();
    if args.iter().any(|a| a == "--baseline") {
        // First-fit-decreasing with the same constraint checks: each new
        // node fixed at the cheapest type that fits its first pod; and into
        // bins of one instance type, for a ladder of sizes. The best run:
        // fewest pods left out, then cheapest.
        let mut runs = vec![(
            "cheapest type fitting the first pod".to_string(),
            solve_with(&p, &Options { fixed_bins: true }),
        )];
        for size in [2usize, 4, 8, 16, 32, 64, 128, 256, 400] {
            let mut q = p.clone();
            q.instance_types = vec![p.instance_types[size - 1].clone()];
            runs.push((q.instance_types[0].name.clone(), solve(&q)));
        }
        let (name, best_run) = runs
            .iter()
            .min_by(|a, b| {
                a.1.unplaced
                    .len()
                    .cmp(&b.1.unplaced.len())
                    .then(a.1.price().total_cmp(&b.1.price()))
            })
            .expect("at least one run");
        baseline = format!(
            r#","ffd_price":{:.4},"ffd_unplaced":{},"ffd_type":"{name}""#,
            best_run.price(),
            best_run.unplaced.len()
        );
    }
    if args.iter().any(|a| a == "--explain") {
        for u in plan.unplaced.iter().take(3) {
            eprintln!("{}: {}", p.pods[u.pod].key(), u.reason);
        }
    }
    let placed = plan.placements.len();
    println!(
        r#"{{"pods":{count},"shape":"{}","seconds":{best:.6},"pods_per_sec":{:.0},"placed":{placed},"unplaced":{},"claims":{},"price":{:.4},"peak_rss_mib":{:.1},"input_rss_mib":{:.1}{baseline}}}"#,
        if shape == Shape::Six {
            "six"
        } else {
            "karpenter"
        },
        count as f64 / best,
        plan.unplaced.len(),
        plan.claims.len(),
        plan.price(),
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
}
