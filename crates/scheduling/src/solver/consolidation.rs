//! Consolidation: what removing some nodes would do.

use hashbrown::HashSet;

use super::solve;
use crate::model::{Plan, Problem, Target};

/// What removing some nodes would do.
#[derive(Clone, Debug)]
pub struct Removal {
    /// The problem solved: the remaining nodes, and as pods the removed
    /// nodes' pods (daemonset pods left out).
    pub problem: Problem,
    pub plan: Plan,
    /// For each moved pod: (removed node name, pod key).
    pub moved: Vec<(String, String)>,
    /// Hourly price of the removed nodes (nodes without a price count 0).
    pub removed_price: f64,
    /// Hourly price of the claims the plan opens.
    pub replacement_price: f64,
}

impl Removal {
    /// Every moved pod has a place.
    pub fn feasible(&self) -> bool {
        self.plan.unplaced.is_empty()
    }
    pub fn savings(&self) -> f64 {
        self.removed_price - self.replacement_price
    }
    /// Where pod `i` of `problem.pods` would go: a node name or a new claim.
    pub fn destination(&self, i: usize) -> Option<String> {
        match self.plan.target_of(i)? {
            Target::Node(n) => Some(self.problem.nodes[n].name.clone()),
            Target::Claim(c) => Some(format!(
                "new node {} ({})",
                self.plan.claims[c].hostname,
                self.plan.claims[c]
                    .instance_types
                    .first()
                    .map_or("", |t| self.problem.instance_types[*t].name.as_str())
            )),
        }
    }
}

/// If `remove` (indices into `problem.nodes`) were removed, where would
/// their pods go, and what would it cost? The pending pods of `problem`
/// are left out: this answers for the moved pods only.
pub fn simulate_removal(problem: &Problem, remove: &[usize]) -> Removal {
    let gone: HashSet<usize> = remove.iter().copied().collect();
    let mut sub = Problem {
        pods: vec![],
        nodes: vec![],
        pools: problem.pools.clone(),
        instance_types: problem.instance_types.clone(),
        daemonsets: problem.daemonsets.clone(),
    };
    let mut moved = vec![];
    let mut removed_price = 0.0;
    for (i, n) in problem.nodes.iter().enumerate() {
        if gone.contains(&i) {
            removed_price += n.price.unwrap_or(0.0);
            for pod in n.pods.iter().filter(|p| !p.daemon) {
                moved.push((n.name.clone(), pod.key()));
                sub.pods.push(pod.clone());
            }
        } else {
            sub.nodes.push(n.clone());
        }
    }
    let plan = solve(&sub);
    let replacement_price = plan.price();
    Removal {
        problem: sub,
        plan,
        moved,
        removed_price,
        replacement_price,
    }
}
