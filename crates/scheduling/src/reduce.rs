//! Smaller problems for the same answer: the node autoscalers ask the
//! solver the same question many times over a large cluster (does this
//! node's pods fit on the others? which pending pods fit on the nodes
//! there are?), and most of a node's pods do not matter to the answer.
//!
//! When no pod to place has a pod affinity, pod anti-affinity or topology
//! spread term (required or preferred), an existing pod matters to
//! [`solve`](crate::solver::solve) only through its requests, its host
//! ports, and its own required anti-affinity (which keeps matching pods
//! away). [`Reduced`] keeps the pods with ports or required anti-affinity
//! and folds every other pod into its node's allocatable (what is left is
//! the same), and leaves out the nodes with room for none of the pods (each
//! pod requests at least the smallest request in every dimension). The
//! solver then places the pods exactly as it would on the full nodes:
//! first fit over the same nodes in the same order, less the nodes no pod
//! can take. With such a term, nothing is reduced.

use crate::{
    model::{Node, Pod},
    resources::Resources,
};

/// Whether a pod's placement depends on other pods' labels.
pub fn has_pod_terms(p: &Pod) -> bool {
    !(p.affinity.is_empty()
        && p.preferred_affinity.is_empty()
        && p.anti_affinity.is_empty()
        && p.preferred_anti_affinity.is_empty()
        && p.spread.is_empty())
}

/// An existing pod that constrains others beyond its requests.
fn constrains(p: &Pod) -> bool {
    !p.host_ports.is_empty() || !p.anti_affinity.is_empty()
}

/// Nodes with only the pods that matter kept; the rest of their pods
/// counted in their allocatable.
#[derive(Clone, Debug)]
pub struct Reduced {
    pub nodes: Vec<Node>,
}

impl Reduced {
    /// Every node, its pods folded where they do not constrain others.
    /// Valid for placing pods without pod terms ([`has_pod_terms`]).
    pub fn new(nodes: &[Node]) -> Self {
        Self {
            nodes: nodes.iter().map(fold).collect(),
        }
    }

    /// Adds a pod to node `i` (a pod moved there in a simulation).
    pub fn add(&mut self, i: usize, pod: Pod) {
        let n = &mut self.nodes[i];
        if constrains(&pod) {
            n.pods.push(pod);
        } else {
            n.allocatable = n.allocatable.minus(&pod.requests);
        }
    }

    /// The nodes among `candidates` (indices), none left out (for telling
    /// why a pod fits nowhere, node by node).
    pub fn all(&self, candidates: impl Iterator<Item = usize>) -> (Vec<Node>, Vec<usize>) {
        candidates.map(|i| (self.nodes[i].clone(), i)).unzip()
    }

    /// The nodes among `candidates` (indices) that have room for at least
    /// the smallest of `pods` or hold a pod with required anti-affinity, as
    /// a problem's nodes, with their indices.
    pub fn for_pods(
        &self,
        candidates: impl Iterator<Item = usize>,
        pods: &[Pod],
    ) -> (Vec<Node>, Vec<usize>) {
        let least = smallest(pods);
        candidates
            .filter(|i| self.keeps(*i, least.as_ref()))
            .map(|i| (self.nodes[i].clone(), i))
            .unzip()
    }

    /// Node `i`'s room: its allocatable less its pods' requests.
    pub fn room(&self, i: usize) -> Resources {
        let n = &self.nodes[i];
        let mut free = n.allocatable.clone();
        for p in &n.pods {
            free = free.minus(&p.requests);
        }
        free
    }

    /// Whether [`Reduced::for_pods`] keeps node `i` for pods whose
    /// smallest request ([`smallest`]) is `least`.
    pub fn keeps(&self, i: usize, least: Option<&Resources>) -> bool {
        let n = &self.nodes[i];
        n.pods.iter().any(|p| !p.anti_affinity.is_empty())
            || least.is_none_or(|l| l.fits(&self.room(i)))
    }
}

/// A node with its non-constraining pods folded into its allocatable.
fn fold(n: &Node) -> Node {
    let mut allocatable = n.allocatable.clone();
    let mut pods = vec![];
    for p in &n.pods {
        if constrains(p) {
            pods.push(p.clone());
        } else {
            allocatable = allocatable.minus(&p.requests);
        }
    }
    Node {
        name: n.name.clone(),
        labels: n.labels.clone(),
        taints: n.taints.clone(),
        allocatable,
        pods,
        in_flight: n.in_flight,
        pool: n.pool.clone(),
        price: n.price,
        do_not_disrupt: n.do_not_disrupt,
    }
}

/// The least request of any of `pods` in each of cpu, memory, pods and
/// ephemeral storage (extended resources left out: no bound); `None`
/// without pods.
pub fn smallest(pods: &[Pod]) -> Option<Resources> {
    let mut it = pods.iter();
    let first = it.next()?;
    let mut least = Resources {
        extended: Default::default(),
        ..first.requests.clone()
    };
    for p in it {
        let r = &p.requests;
        least.cpu_millis = least.cpu_millis.min(r.cpu_millis);
        least.memory_bytes = least.memory_bytes.min(r.memory_bytes);
        least.pods = least.pods.min(r.pods);
        least.ephemeral_bytes = least.ephemeral_bytes.min(r.ephemeral_bytes);
    }
    Some(least)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{HostPort, Problem, Target},
        solver::solve,
    };

    fn res(cpu: i64) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_bytes: 1 << 30,
            pods: 1,
            ..Default::default()
        }
    }

    fn node(i: usize, used: &[i64]) -> Node {
        Node {
            name: format!("n{i}"),
            allocatable: Resources {
                cpu_millis: 1000,
                memory_bytes: 8 << 30,
                pods: 10,
                ..Default::default()
            },
            pods: used
                .iter()
                .enumerate()
                .map(|(j, c)| Pod::new("default", &format!("p{i}-{j}"), res(*c)))
                .collect(),
            ..Default::default()
        }
    }

    fn placements(nodes: &[Node], index: Option<&[usize]>, pods: &[Pod]) -> Vec<(usize, String)> {
        let plan = solve(&Problem {
            pods: pods.to_vec(),
            nodes: nodes.to_vec(),
            ..Default::default()
        });
        let mut out: Vec<(usize, String)> = plan
            .placements
            .iter()
            .filter_map(|(p, t)| match t {
                Target::Node(n) => {
                    let n = index.map_or(*n, |ix| ix[*n]);
                    Some((*p, format!("n{n}")))
                }
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_same_placements_on_fewer_smaller_nodes() {
        let nodes: Vec<Node> = (0..6)
            .map(|i| node(i, &[100 * i as i64, 250, 300]))
            .collect();
        let pods: Vec<Pod> = [300, 200, 200, 150]
            .iter()
            .enumerate()
            .map(|(k, c)| Pod::new("default", &format!("new-{k}"), res(*c)))
            .collect();
        let full = placements(&nodes, None, &pods);
        let r = Reduced::new(&nodes);
        assert!(r.nodes.iter().all(|n| n.pods.is_empty()));
        let (small, index) = r.for_pods(0..nodes.len(), &pods);
        // n5 (1000m used... 500 + 550 = 1050m) and n4 (950m) take none.
        assert!(small.len() < nodes.len());
        assert_eq!(placements(&small, Some(&index), &pods), full);
    }

    #[test]
    fn pods_with_ports_or_anti_affinity_are_kept_and_moved_pods_count() {
        let mut nodes = vec![node(0, &[100]), node(1, &[100])];
        nodes[0].pods[0].host_ports.push(HostPort {
            port: 80,
            protocol: "TCP".into(),
            ip: String::new(),
        });
        let mut r = Reduced::new(&nodes);
        assert_eq!(r.nodes[0].pods.len(), 1);
        assert!(r.nodes[1].pods.is_empty());
        assert_eq!(r.nodes[1].allocatable.cpu_millis, 900);
        r.add(1, Pod::new("default", "moved", res(850)));
        let want = [Pod::new("default", "big", res(100))];
        let (small, index) = r.for_pods(0..2, &want);
        // n1 has 50m left: only n0 can take it.
        assert_eq!(index, vec![0]);
        assert_eq!(small[0].pods.len(), 1);
    }

    #[test]
    fn pod_terms_are_told() {
        let mut p = Pod::new("default", "a", res(1));
        assert!(!has_pod_terms(&p));
        p.spread.push(crate::model::TopologySpread {
            max_skew: 1,
            topology_key: "topology.kubernetes.io/zone".into(),
            required: true,
            selector: Default::default(),
        });
        assert!(has_pod_terms(&p));
    }
}
