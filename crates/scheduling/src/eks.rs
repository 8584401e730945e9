//! EC2 instance types as Karpenter sees them on EKS: capacity, labels, and
//! allocatable after the kubelet's reservations.
//!
//! The formula (Karpenter's AWS provider for the EKS-optimized AMIs, which
//! bake the same numbers into bootstrap.sh / nodeadm):
//!
//! - **pods** (max-pods): with the VPC CNI each pod takes a secondary IP, so
//!   `ENIs * (IPv4 addresses per ENI - 1) + 2` (the `+ 2` is for the
//!   host-network pods aws-node and kube-proxy). A kubelet `maxPods`
//!   overrides it; `podsPerCore` caps it at `podsPerCore * vCPUs`.
//! - **memory capacity**: the instance's memory less the VM overhead the
//!   kubelet never sees, `ceil(MiB * 7.5%)` (`vmMemoryOverheadPercent`).
//! - **kube-reserved**: cpu 6% of the first core, 1% of the second, 0.5% of
//!   the third and fourth, 0.25% of every further core; memory
//!   `11 MiB * max-pods + 255 MiB`; ephemeral-storage 1 GiB.
//! - **eviction threshold**: `memory.available` 100 MiB and
//!   `nodefs.available` 10% of the root volume.
//! - **system-reserved**: none unless configured.
//!
//! allocatable = capacity - kube-reserved - system-reserved - eviction.
//! Example: m6i.xlarge (4 vCPU, 16 GiB, 4 ENIs x 15 IPv4) has 58 pods,
//! cpu 4000m - 80m = 3920m, memory 16384 - 1229 - 893 - 100 = 14162 MiB.

use crate::{
    model::{
        InstanceType, LABEL_ARCH, LABEL_INSTANCE_CATEGORY, LABEL_INSTANCE_CPU,
        LABEL_INSTANCE_FAMILY, LABEL_INSTANCE_GENERATION, LABEL_INSTANCE_MEMORY,
        LABEL_INSTANCE_SIZE, LABEL_INSTANCE_TYPE, LABEL_OS, Offering,
    },
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
};

const MI: i64 = 1 << 20;
const GI: i64 = 1 << 30;

/// What EC2 says about an instance type (DescribeInstanceTypes).
#[derive(Clone, Debug, PartialEq)]
pub struct Ec2Shape {
    pub name: String,
    pub vcpus: i64,
    pub memory_mib: i64,
    pub max_enis: i64,
    pub ipv4_per_eni: i64,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// e.g. ("nvidia.com/gpu", 1).
    pub gpus: Vec<(String, i64)>,
}

/// The kubelet settings that change allocatable (a NodePool's / an
/// EC2NodeClass's `kubelet` block).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kubelet {
    pub max_pods: Option<i64>,
    pub pods_per_core: Option<i64>,
    pub system_reserved: Resources,
    /// Root volume size; default 20 GiB.
    pub root_volume_bytes: Option<i64>,
}

/// `ENIs * (IPv4 per ENI - 1) + 2`, or the kubelet's overrides.
pub fn max_pods(shape: &Ec2Shape, kubelet: &Kubelet) -> i64 {
    let mut pods = kubelet
        .max_pods
        .unwrap_or(shape.max_enis * (shape.ipv4_per_eni - 1) + 2);
    if let Some(ppc) = kubelet.pods_per_core.filter(|p| *p > 0) {
        pods = pods.min(ppc * shape.vcpus);
    }
    pods.max(0)
}

/// kube-reserved cpu in millicores: 6% of the first core, 1% of the second,
/// 0.5% of cores 3-4, 0.25% of the rest (rounded up to whole millicores).
pub fn kube_reserved_cpu_millis(vcpus: i64) -> i64 {
    // In hundredths of a millicore so 0.25% (2.5m) stays exact.
    let mut c = 0;
    for core in 1..=vcpus {
        c += match core {
            1 => 6000,
            2 => 1000,
            3 | 4 => 500,
            _ => 250,
        };
    }
    (c + 99) / 100
}

/// Capacity and overhead of a node of this shape.
pub fn capacity_and_overhead(shape: &Ec2Shape, kubelet: &Kubelet) -> (Resources, Resources) {
    let pods = max_pods(shape, kubelet);
    let root = kubelet.root_volume_bytes.unwrap_or(20 * GI);
    let vm_overhead_mib = (shape.memory_mib * 75 + 999) / 1000;
    let mut capacity = Resources {
        cpu_millis: shape.vcpus * 1000,
        memory_bytes: (shape.memory_mib - vm_overhead_mib) * MI,
        pods,
        ephemeral_bytes: root,
        ..Default::default()
    };
    for (name, n) in &shape.gpus {
        capacity.extended.insert(name.clone(), *n);
    }
    let mut overhead = Resources {
        cpu_millis: kube_reserved_cpu_millis(shape.vcpus),
        memory_bytes: (11 * pods + 255) * MI + 100 * MI,
        pods: 0,
        ephemeral_bytes: GI + root / 10,
        ..Default::default()
    };
    overhead.add(&kubelet.system_reserved);
    (capacity, overhead)
}

fn single(key: &str, value: &str) -> (String, Requirement) {
    (
        key.to_string(),
        Requirement::new(key, Operator::In, &[value]).expect("one value is valid"),
    )
}

/// The labels Karpenter gives a node of this type: instance-type, arch, os,
/// and the `karpenter.k8s.aws/instance-*` family, category, generation,
/// size, cpu and memory.
pub fn requirements(shape: &Ec2Shape) -> Requirements {
    let (family, size) = shape.name.split_once('.').unwrap_or((&shape.name, ""));
    let category: String = family
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let generation: String = family
        .chars()
        .skip_while(|c| c.is_ascii_alphabetic())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let mut r = Requirements::default();
    for (k, v) in [
        single(LABEL_INSTANCE_TYPE, &shape.name),
        single(LABEL_ARCH, &shape.arch),
        single(LABEL_OS, "linux"),
        single(LABEL_INSTANCE_FAMILY, family),
        single(LABEL_INSTANCE_CATEGORY, &category),
        single(LABEL_INSTANCE_GENERATION, &generation),
        single(LABEL_INSTANCE_SIZE, size),
        single(LABEL_INSTANCE_CPU, &shape.vcpus.to_string()),
        single(LABEL_INSTANCE_MEMORY, &shape.memory_mib.to_string()),
    ] {
        if !k.is_empty() {
            r.add(&k, v);
        }
    }
    r
}

pub fn instance_type(
    shape: &Ec2Shape,
    kubelet: &Kubelet,
    offerings: Vec<Offering>,
) -> InstanceType {
    let (capacity, overhead) = capacity_and_overhead(shape, kubelet);
    InstanceType {
        name: shape.name.clone(),
        requirements: requirements(shape),
        capacity,
        overhead,
        offerings,
    }
}

/// On-demand $/vCPU-hour by instance family, the one price table (a
/// bundled list in the style of the region's price list: the Pricing API
/// lives in a few regions only, and clusters without a cloud need prices
/// too). Graviton families cost a fifth less.
fn on_demand_per_vcpu(name: &str) -> f64 {
    let family = name.split('.').next().unwrap_or("");
    let category: String = family
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let graviton = family.ends_with('g') || family.contains("gd") || family.contains("gn");
    let base = match category.as_str() {
        "c" => 0.0425,
        "m" => 0.048,
        "r" => 0.063,
        "t" => 0.0208,
        "x" | "z" => 0.10,
        "g" | "p" | "inf" | "trn" => 0.25,
        "i" | "d" | "h" => 0.078,
        _ => 0.05,
    };
    if graviton { base * 0.8 } else { base }
}

/// The on-demand price per hour of an instance type with `vcpus` vCPUs,
/// rounded to 1/10,000 of a dollar.
pub fn on_demand_price(name: &str, vcpus: i64) -> f64 {
    (on_demand_per_vcpu(name) * vcpus as f64 * 1e4).round() / 1e4
}

/// A catalogue shaped like EC2's general-purpose, compute and memory
/// families (x86 and Graviton, two generations), with on-demand prices per
/// hour in the style of us-east-1's: for clusters without a cloud (the
/// kwok provider) and for tests. Spot is offered at a third of on-demand.
pub fn catalogue() -> Vec<(Ec2Shape, f64)> {
    // family, memory GiB per vCPU, arch
    let families: [(&str, i64, &str); 8] = [
        ("c5", 2, "amd64"),
        ("c6i", 2, "amd64"),
        ("c6g", 2, "arm64"),
        ("m5", 4, "amd64"),
        ("m6i", 4, "amd64"),
        ("m6g", 4, "arm64"),
        ("r5", 8, "amd64"),
        ("r6i", 8, "amd64"),
    ];
    // size, vCPUs, ENIs, IPv4 per ENI
    let sizes: [(&str, i64, i64, i64); 6] = [
        ("large", 2, 3, 10),
        ("xlarge", 4, 4, 15),
        ("2xlarge", 8, 4, 15),
        ("4xlarge", 16, 8, 30),
        ("8xlarge", 32, 8, 30),
        ("16xlarge", 64, 15, 50),
    ];
    let mut out = vec![];
    for (family, gib_per_cpu, arch) in families {
        for (size, vcpus, enis, ips) in sizes {
            let shape = Ec2Shape {
                name: format!("{family}.{size}"),
                vcpus,
                memory_mib: vcpus * gib_per_cpu * 1024,
                max_enis: enis,
                ipv4_per_eni: ips,
                arch: arch.to_string(),
                gpus: vec![],
            };
            let price = on_demand_price(&shape.name, vcpus);
            out.push((shape, price));
        }
    }
    out
}

/// A few real shapes, for tests and the seed example.
pub fn shape(name: &str) -> Option<Ec2Shape> {
    let (vcpus, mem, enis, ips) = match name {
        "m5.large" | "m6i.large" => (2, 8192, 3, 10),
        "m5.xlarge" | "m6i.xlarge" => (4, 16384, 4, 15),
        "m5.2xlarge" | "m6i.2xlarge" => (8, 32768, 4, 15),
        "c6i.large" => (2, 4096, 3, 10),
        "c6i.xlarge" => (4, 8192, 4, 15),
        "r6i.large" => (2, 16384, 3, 10),
        "t3.medium" => (2, 4096, 3, 6),
        "m6g.large" => (2, 8192, 3, 10),
        "g4dn.xlarge" => (4, 16384, 3, 10),
        _ => return None,
    };
    Some(Ec2Shape {
        name: name.to_string(),
        vcpus,
        memory_mib: mem,
        max_enis: enis,
        ipv4_per_eni: ips,
        arch: if name.starts_with("m6g") {
            "arm64"
        } else {
            "amd64"
        }
        .to_string(),
        gpus: if name.starts_with("g4dn") {
            vec![("nvidia.com/gpu".to_string(), 1)]
        } else {
            vec![]
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_allocatable_matches_the_ami() {
        let k = Kubelet::default();
        let it = instance_type(&shape("m6i.xlarge").unwrap(), &k, vec![]);
        let a = it.allocatable();
        assert_eq!(a.pods, 58);
        assert_eq!(a.cpu_millis, 3920);
        assert_eq!(a.memory_bytes, 14162 * MI);
        let large = instance_type(&shape("m5.large").unwrap(), &k, vec![]).allocatable();
        // What the EKS AMI's kubelet reports for an m5.large (and what the
        // test environment's joiner gives its nodes).
        assert_eq!((large.pods, large.cpu_millis), (29, 1930));
        assert_eq!(large.memory_bytes, (8192 - 615 - 574 - 100) * MI);
        assert_eq!(kube_reserved_cpu_millis(1), 60);
        assert_eq!(kube_reserved_cpu_millis(8), 90);
        assert_eq!(kube_reserved_cpu_millis(5), 83);
    }

    #[test]
    fn kubelet_overrides_max_pods() {
        let s = shape("m6i.large").unwrap();
        let k = Kubelet {
            max_pods: Some(110),
            pods_per_core: Some(10),
            ..Default::default()
        };
        assert_eq!(max_pods(&s, &k), 20);
        let k = Kubelet {
            max_pods: Some(110),
            ..Default::default()
        };
        assert_eq!(max_pods(&s, &k), 110);
    }

    #[test]
    fn prices_follow_the_family() {
        assert!((on_demand_price("m6i.xlarge", 4) - 0.192).abs() < 1e-9);
        assert!(on_demand_price("m6g.xlarge", 4) < on_demand_price("m6i.xlarge", 4));
        assert!(on_demand_price("r6i.large", 2) > on_demand_price("c6i.large", 2));
    }

    #[test]
    fn catalogue_has_the_seeds_types() {
        let c = catalogue();
        assert_eq!(c.len(), 48);
        let (xl, price) = c.iter().find(|(s, _)| s.name == "m6i.xlarge").unwrap();
        assert_eq!(Some(xl.clone()), shape("m6i.xlarge"));
        assert!((price - 0.192).abs() < 1e-9);
    }

    #[test]
    fn labels_of_a_type() {
        let r = requirements(&shape("m6i.xlarge").unwrap());
        let v = r.single_values();
        assert_eq!(v[LABEL_INSTANCE_FAMILY], "m6i");
        assert_eq!(v[LABEL_INSTANCE_CATEGORY], "m");
        assert_eq!(v[LABEL_INSTANCE_GENERATION], "6");
        assert_eq!(v[LABEL_INSTANCE_SIZE], "xlarge");
        assert_eq!(v[LABEL_INSTANCE_CPU], "4");
        assert_eq!(v[LABEL_INSTANCE_MEMORY], "16384");
    }
}
