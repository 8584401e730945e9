//! `--balance-similar-node-groups`: which node groups are similar (their
//! nodes alike but for the zone and a few labels that name a node or its
//! group), and how a scale-up is split between similar groups (one node at
//! a time to the smallest, each group within its maximum).

use std::collections::BTreeSet;

use outrigger_scheduling::{
    model::{LABEL_HOSTNAME, LABEL_REGION, LABEL_ZONE, Labels},
    resources::{CPU, EPHEMERAL_STORAGE, MEMORY, PODS, Resources},
};

/// Labels that never make two groups different: the node's name, its zone
/// and region (old and new keys), and two labels whose value varies by
/// group (fluentd's migration marker, kops' instance group).
pub const BASIC_IGNORED_LABELS: [&str; 7] = [
    LABEL_HOSTNAME,
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    LABEL_ZONE,
    LABEL_REGION,
    "beta.kubernetes.io/fluentd-ds-ready",
    "kops.k8s.io/instancegroup",
];

/// Labels AWS's comparator ignores on top of the basic ones: eksctl's
/// instance and node group names, EKS's node group, the VPC CNI's ENI
/// config, `lifecycle` (spot), the EBS CSI driver's zone, the zone ID.
pub const AWS_IGNORED_LABELS: [&str; 7] = [
    "alpha.eksctl.io/instance-id",
    "alpha.eksctl.io/nodegroup-name",
    "eks.amazonaws.com/nodegroup",
    "k8s.amazonaws.com/eniConfig",
    "lifecycle",
    "topology.ebs.csi.aws.com/zone",
    "topology.k8s.aws/zone-id",
];

/// How much two similar groups' nodes may differ, as a share of the larger
/// value: allocatable, free (allocatable less the requests of the pods a
/// new node starts with) and memory capacity. Other capacity must match
/// exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratios {
    pub allocatable: f64,
    pub free: f64,
    pub capacity_memory: f64,
}

impl Ratios {
    /// Every value must match exactly.
    pub const EXACT: Ratios = Ratios {
        allocatable: 0.0,
        free: 0.0,
        capacity_memory: 0.0,
    };
}

impl Default for Ratios {
    /// Upstream's defaults: 5% allocatable and free, 1.5% memory capacity.
    fn default() -> Self {
        Self {
            allocatable: 0.05,
            free: 0.05,
            capacity_memory: 0.015,
        }
    }
}

/// What the comparison looks at of a group's template node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shape {
    pub labels: Labels,
    pub capacity: Resources,
    pub allocatable: Resources,
    /// Requests of the pods a new node starts with (daemonsets).
    pub requested: Resources,
}

/// Decides whether two groups are similar.
#[derive(Clone, Debug, PartialEq)]
pub enum Comparator {
    /// Resources within the ratios, and every label but the ignored ones
    /// equal (present on both with the same value, or on neither).
    Generic {
        ignored: BTreeSet<String>,
        ratios: Ratios,
    },
    /// `--balancing-label`: these labels present on both and equal,
    /// nothing else compared.
    Labels(Vec<String>),
}

impl Comparator {
    /// The generic comparator, ignoring the basic labels and `extra`
    /// (`--balancing-ignore-label`).
    pub fn generic(extra: &[&str], ratios: Ratios) -> Self {
        Self::Generic {
            ignored: BASIC_IGNORED_LABELS
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect(),
            ratios,
        }
    }

    /// AWS's: the generic one also ignoring [`AWS_IGNORED_LABELS`].
    pub fn aws(extra: &[&str], ratios: Ratios) -> Self {
        let extra: Vec<&str> = AWS_IGNORED_LABELS.iter().chain(extra).copied().collect();
        Self::generic(&extra, ratios)
    }

    pub fn labels(labels: &[&str]) -> Self {
        Self::Labels(labels.iter().map(|s| s.to_string()).collect())
    }

    pub fn similar(&self, a: &Shape, b: &Shape) -> bool {
        match self {
            Self::Labels(keys) => keys
                .iter()
                .all(|k| match (a.labels.get(k), b.labels.get(k)) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }),
            Self::Generic { ignored, ratios } => {
                resources_similar(a, b, ratios) && labels_equal(&a.labels, &b.labels, ignored)
            }
        }
    }
}

/// Whether `x` and `y` differ by at most `ratio` of the larger.
fn within(x: i64, y: i64, ratio: f64) -> bool {
    let (larger, smaller) = (x.max(y) as f64, x.min(y) as f64);
    larger - smaller <= larger * ratio
}

/// Every resource either list has (an absent one is 0).
fn names<'a>(a: &'a Resources, b: &'a Resources) -> Vec<&'a str> {
    let mut out = vec![CPU, MEMORY, PODS, EPHEMERAL_STORAGE];
    out.extend(a.extended.keys().map(String::as_str));
    out.extend(b.extended.keys().map(String::as_str));
    out.sort_unstable();
    out.dedup();
    out
}

fn resources_similar(a: &Shape, b: &Shape, r: &Ratios) -> bool {
    for name in names(&a.capacity, &b.capacity) {
        let (x, y) = (a.capacity.get(name), b.capacity.get(name));
        let ok = if name == MEMORY {
            within(x, y, r.capacity_memory)
        } else {
            x == y
        };
        if !ok {
            return false;
        }
    }
    if !names(&a.allocatable, &b.allocatable)
        .into_iter()
        .all(|n| within(a.allocatable.get(n), b.allocatable.get(n), r.allocatable))
    {
        return false;
    }
    // Free: allocatable less what the node's pods request (a pod count is
    // not a request: free pods are the allocatable ones).
    let free = |s: &Shape, n: &str| {
        if n == PODS {
            s.allocatable.pods
        } else {
            s.allocatable.get(n) - s.requested.get(n)
        }
    };
    names(&a.allocatable, &b.allocatable)
        .into_iter()
        .chain(names(&a.requested, &b.requested))
        .all(|n| within(free(a, n), free(b, n), r.free))
}

fn labels_equal(a: &Labels, b: &Labels, ignored: &BTreeSet<String>) -> bool {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| !ignored.contains(k.as_str()))
        .all(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        })
}

/// The groups similar to `chosen` (indices into `shapes`, `None` for a
/// group without a template), in order, `chosen` left out.
pub fn find_similar(
    comparator: &Comparator,
    shapes: &[Option<Shape>],
    chosen: usize,
) -> Vec<usize> {
    let Some(Some(me)) = shapes.get(chosen) else {
        return vec![];
    };
    shapes
        .iter()
        .enumerate()
        .filter(|(i, s)| *i != chosen && s.as_ref().is_some_and(|s| comparator.similar(me, s)))
        .map(|(i, _)| i)
        .collect()
}

/// One group's part of a balanced scale-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleUpInfo {
    /// The caller's index of the group.
    pub group: usize,
    pub current: i64,
    pub new: i64,
    pub max: i64,
}

/// Splits `new_nodes` between groups given as (index, target size, max
/// size): one node at a time to the smallest group below its maximum, in
/// the order given among equals, so that sizes end as even as the maxima
/// allow. More nodes than the groups have room for are capped to that
/// room. Only the groups that grow are returned, in the order given.
pub fn balance_scale_up(
    groups: &[(usize, i64, i64)],
    new_nodes: i64,
) -> Result<Vec<ScaleUpInfo>, String> {
    if groups.is_empty() {
        return Err("can't balance a scale-up between 0 groups".into());
    }
    let mut infos: Vec<ScaleUpInfo> = groups
        .iter()
        .filter(|(_, current, max)| current != max)
        .map(|&(group, current, max)| ScaleUpInfo {
            group,
            current,
            new: current,
            max,
        })
        .collect();
    let room: i64 = infos.iter().map(|i| (i.max - i.current).max(0)).sum();
    for _ in 0..new_nodes.min(room) {
        let Some(next) = infos
            .iter_mut()
            .filter(|i| i.new < i.max)
            .min_by_key(|i| i.new)
        else {
            break;
        };
        next.new += 1;
    }
    Ok(infos.into_iter().filter(|i| i.new != i.current).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(cpu: i64, mem: i64) -> Shape {
        let r = Resources {
            cpu_millis: cpu,
            memory_bytes: mem,
            pods: 110,
            ..Default::default()
        };
        Shape {
            labels: Labels::new(),
            capacity: r.clone(),
            allocatable: r,
            requested: Resources::default(),
        }
    }

    #[test]
    fn zone_and_group_labels_aside_alike_groups_are_similar() {
        let mut a = shape(2000, 8 << 30);
        let mut b = a.clone();
        a.labels.insert(LABEL_ZONE.into(), "z1".into());
        b.labels.insert(LABEL_ZONE.into(), "z2".into());
        a.labels
            .insert("eks.amazonaws.com/nodegroup".into(), "a".into());
        b.labels
            .insert("eks.amazonaws.com/nodegroup".into(), "b".into());
        assert!(Comparator::aws(&[], Ratios::default()).similar(&a, &b));
        assert!(!Comparator::generic(&[], Ratios::default()).similar(&a, &b));
        assert!(!Comparator::aws(&[], Ratios::default()).similar(&a, &shape(4000, 8 << 30)));
    }

    #[test]
    fn a_scale_up_goes_to_the_smallest_first() {
        let out = balance_scale_up(&[(0, 3, 10), (1, 1, 10), (2, 2, 3)], 5).unwrap();
        let new: Vec<(usize, i64)> = out.iter().map(|i| (i.group, i.new)).collect();
        assert_eq!(new, [(0, 4), (1, 4), (2, 3)]);
        assert!(balance_scale_up(&[], 1).is_err());
    }
}
