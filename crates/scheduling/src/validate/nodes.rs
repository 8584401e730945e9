//! Check 2, existing nodes: taints, node affinity, resources and host
//! ports of the pods the plan puts on nodes that are already there.

use super::{Check, Rule, pod_mismatch};
use crate::{
    model::{Pod, Target, untolerated},
    resources::Resources,
};

impl Check<'_> {
    // --- 2. existing nodes -----------------------------------------------------

    pub(super) fn existing_nodes(&mut self, targets: &[Option<Target>]) {
        let p = self.p;
        let mut on_node: Vec<Vec<usize>> = vec![vec![]; p.nodes.len()];
        for (pod, t) in targets.iter().enumerate() {
            if let Some(Target::Node(i)) = t {
                on_node[*i].push(pod);
            }
        }
        for (ni, node) in p.nodes.iter().enumerate() {
            if on_node[ni].is_empty() {
                continue;
            }
            let at = Some(self.at(Target::Node(ni)));
            for &i in &on_node[ni] {
                let pod = &p.pods[i];
                if let Some(t) = untolerated(&node.taints, &pod.tolerations, false) {
                    self.push(
                        Rule::Taint,
                        Some(pod.key()),
                        at.clone(),
                        format!("does not tolerate taint {t}"),
                    );
                }
                if !pod.matches_node(&node.labels) {
                    self.push(
                        Rule::NodeAffinity,
                        Some(pod.key()),
                        at.clone(),
                        pod_mismatch(pod, &node.labels),
                    );
                }
            }
            let total = Resources::sum(
                node.pods
                    .iter()
                    .map(|q| &q.requests)
                    .chain(on_node[ni].iter().map(|i| &p.pods[*i].requests)),
            );
            let over = total.exceeding(&node.allocatable);
            if !over.is_empty() {
                self.push(
                    Rule::Resources,
                    None,
                    at.clone(),
                    format!(
                        "requests {total} exceed allocatable {} ({})",
                        node.allocatable,
                        over.join(", ")
                    ),
                );
            }
            let mut holders: Vec<(String, bool, &Pod)> =
                node.pods.iter().map(|q| (q.key(), false, q)).collect();
            holders.extend(
                on_node[ni]
                    .iter()
                    .map(|i| (p.pods[*i].key(), true, &p.pods[*i])),
            );
            self.host_ports(&holders, at);
        }
    }

    /// Host-port conflicts between `holders` (name, placed by the plan, pod)
    /// where at least one side is placed by the plan.
    pub(super) fn host_ports(&mut self, holders: &[(String, bool, &Pod)], at: Option<String>) {
        for (a, (an, ap, apod)) in holders.iter().enumerate() {
            for (bn, bp, bpod) in &holders[a + 1..] {
                if !ap && !bp {
                    continue;
                }
                let clash = apod
                    .host_ports
                    .iter()
                    .find(|x| bpod.host_ports.iter().any(|y| x.conflicts(y)));
                if let Some(port) = clash {
                    let (pod, other) = if *bp { (bn, an) } else { (an, bn) };
                    self.push(
                        Rule::HostPort,
                        Some(pod.clone()),
                        at.clone(),
                        format!(
                            "host port {}/{} conflicts with {other}",
                            port.port, port.protocol
                        ),
                    );
                }
            }
        }
    }
}
