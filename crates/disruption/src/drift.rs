//! Drift (`nodeclaim/disruption/drift.go`, `disruption/drift.go`): a claim
//! whose pool's template changed (its hash, which leaves out the
//! requirements and the budgets) or whose labels no longer meet its pool's
//! requirements is `Drifted`, and is replaced: the drift method takes
//! drifted candidates oldest drift first, empty ones before the others,
//! within the pool's `Drifted` budget, and launches what the candidate's
//! pods need (any number of nodes) before it goes. Drift is eventual: a
//! claim with a `terminationGracePeriod` is a candidate even with pods
//! that would block it.

use std::{
    collections::BTreeMap,
    hash::{Hash, Hasher},
};

use outrigger_scheduling::{requirements::Requirements, solver::simulate_removal};
use serde_json::Value;

use crate::{
    NodeFacts, PoolPolicy,
    candidate::{Candidate, candidate},
    consolidate::{
        Budgets, Command, Input, Method, Outcome, Replacement, order_by_price, price_under,
    },
};

/// `karpenter.sh/nodepool-hash-version` as Outrigger writes it: Karpenter's
/// hash (`v3`) cannot be reproduced outside Go, so ours has its own
/// version, and a claim carrying another version is re-stamped, not
/// drifted (as Karpenter does when its hash version changes).
pub const HASH_VERSION: &str = "outrigger-v1";

/// Why a claim drifted (the `Drifted` condition's reason): its pool
/// changed, or (the cloud provider's, Karpenter AWS's reasons) its
/// instance no longer matches what its node class resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftReason {
    NodePoolDrifted,
    RequirementsDrifted,
    AmiDrift,
    SubnetDrift,
    SecurityGroupDrift,
}

impl DriftReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftReason::NodePoolDrifted => "NodePoolDrifted",
            DriftReason::RequirementsDrifted => "RequirementsDrifted",
            DriftReason::AmiDrift => "AMIDrift",
            DriftReason::SubnetDrift => "SubnetDrift",
            DriftReason::SecurityGroupDrift => "SecurityGroupDrift",
        }
    }
}

/// What an instance was launched with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    pub image: String,
    pub subnet: String,
    pub security_groups: Vec<String>,
}

/// What the instance's node class resolves to now: the images it would
/// launch, every subnet and security group its selectors find.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeClassNow {
    pub images: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

/// Karpenter AWS's drift of an instance against its node class, in its
/// order: the image is not one the class resolves to (`AMIDrift`), its
/// subnet is not one the class selects (`SubnetDrift`), its security
/// groups are not exactly the class's set (`SecurityGroupDrift`). What the
/// class resolves to nothing for is not judged (Karpenter returns an error
/// and decides nothing until it resolves), nor is an instance whose facts
/// are unknown.
pub fn cloud_drift(instance: &InstanceFacts, now: &NodeClassNow) -> Option<DriftReason> {
    if !now.images.is_empty() && !instance.image.is_empty() && !now.images.contains(&instance.image)
    {
        return Some(DriftReason::AmiDrift);
    }
    if !now.subnets.is_empty()
        && !instance.subnet.is_empty()
        && !now.subnets.contains(&instance.subnet)
    {
        return Some(DriftReason::SubnetDrift);
    }
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    if !now.security_groups.is_empty()
        && set(&now.security_groups) != set(&instance.security_groups)
    {
        return Some(DriftReason::SecurityGroupDrift);
    }
    None
}

/// The hash of a NodePool's `spec.template` (as JSON) with what drift does
/// not count left out (`spec.requirements`, `spec.resources`), slices
/// taken as sets and empty values as absent, as Karpenter's hashstructure
/// options: FNV-1a over a canonical form, printed as a decimal `u64`.
pub fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("requirements");
        spec.remove("resources");
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    canonical(&t).hash(&mut h);
    h.finish().to_string()
}

/// Objects with sorted keys and no empty members, arrays sorted (sets).
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let inner: BTreeMap<&String, String> = m
                .iter()
                .filter(|(_, x)| !empty(x))
                .map(|(k, x)| (k, canonical(x)))
                .collect();
            let parts: Vec<String> = inner
                .into_iter()
                .map(|(k, x)| format!("{k:?}:{x}"))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => {
            let mut parts: Vec<String> = a.iter().filter(|x| !empty(x)).map(canonical).collect();
            parts.sort();
            parts.dedup();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(empty),
        Value::Object(m) => m.values().all(empty),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Whether a claim's labels fall outside its pool's requirements (a label
/// the pool constrains with a value the pool no longer allows).
pub fn requirements_drifted(pool: &Requirements, labels: &BTreeMap<String, String>) -> bool {
    pool.0
        .iter()
        .any(|(k, r)| labels.get(k).is_some_and(|v| !r.allows(Some(v))))
}

/// A claim's drift: the pool's template hash against the claim's (same
/// version only), then its labels against the pool's requirements.
pub fn drift(
    pool_hash: &str,
    claim_hash: Option<(&str, &str)>,
    pool_requirements: &Requirements,
    claim_labels: &BTreeMap<String, String>,
) -> Option<DriftReason> {
    if let Some((hash, version)) = claim_hash
        && version == HASH_VERSION
        && hash != pool_hash
    {
        return Some(DriftReason::NodePoolDrifted);
    }
    requirements_drifted(pool_requirements, claim_labels)
        .then_some(DriftReason::RequirementsDrifted)
}

/// The drift method: the first drifted candidate (oldest drift first,
/// empty ones first) within its pool's budget whose pods all find a place
/// on the other nodes or on new ones; the command launches those.
pub fn drift_method(input: &Input, budgets: &mut Budgets) -> Outcome {
    let mut out = Outcome::default();
    let mut drifted: Vec<(Candidate, &NodeFacts)> = input
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.drifted)
        .filter_map(|(i, n)| candidate(i, n, input.pools, true).ok().map(|c| (c, n)))
        .collect();
    drifted.sort_by(|(a, na), (b, nb)| {
        (a.reschedulable > 0)
            .cmp(&(b.reschedulable > 0))
            .then(na.drifted_since.cmp(&nb.drifted_since))
            .then(a.node.cmp(&b.node))
    });
    for (c, _) in drifted {
        let pool: &PoolPolicy = &input.pools[c.pool];
        if budgets.get(&pool.name).copied().unwrap_or(0) == 0 {
            out.constrained_by_budgets = true;
            continue;
        }
        let cmd = match compute(input, c.node) {
            Ok(cmd) => cmd,
            Err(why) => {
                out.unconsolidatable.push((c.node, why));
                continue;
            }
        };
        if let Some(left) = budgets.get_mut(&pool.name) {
            *left -= 1;
        }
        out.command = Some(cmd);
        return out;
    }
    out
}

/// Replacing the drifted node at `node` (an index into the facts): where
/// its pods go, and the new nodes they need; or why they cannot all go.
pub fn compute(input: &Input, node: usize) -> Result<Command, String> {
    let n = &input.nodes[node];
    let Some(k) = n.problem_index else {
        return Err(format!("Node {} is not in the simulation", n.name));
    };
    let removal = simulate_removal(input.problem, &[k]);
    if let Some(u) = removal.plan.unplaced.first() {
        return Err(format!(
            "Not all pods would schedule, {} => {}",
            removal.problem.pods[u.pod].key(),
            u.reason
        ));
    }
    let replacements = removal
        .plan
        .claims
        .iter()
        .map(|claim| {
            let mut claim = claim.clone();
            order_by_price(input.problem, &mut claim);
            let price = claim
                .instance_types
                .first()
                .and_then(|&t| price_under(input.problem, t, &claim.requirements))
                .unwrap_or(0.0);
            claim.price = price;
            Replacement { claim, price }
        })
        .collect();
    let moves = (0..removal.problem.pods.len())
        .map(|i| {
            (
                removal.problem.pods[i].key(),
                removal.destination(i).unwrap_or_default(),
            )
        })
        .collect();
    Ok(Command {
        method: Method::Drift,
        candidates: vec![node],
        replacements,
        removed_price: crate::consolidate::node_price(input.problem, n).unwrap_or(0.0),
        moves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrigger_scheduling::requirements::{Operator, Requirement};
    use serde_json::json;

    #[test]
    fn the_hash_leaves_out_requirements_and_takes_slices_as_sets() {
        let a = json!({"metadata": {"labels": {"team": "a"}}, "spec": {
            "requirements": [{"key": "x", "operator": "In", "values": ["1"]}],
            "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}],
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "expireAfter": "720h"}});
        let mut b = a.clone();
        b["spec"]["requirements"] = json!([{"key": "y", "operator": "In", "values": ["2"]}]);
        b["spec"]["taints"] =
            json!([{"key": "b", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]);
        b["spec"]["startupTaints"] = json!([]);
        assert_eq!(template_hash(&a), template_hash(&b));
        let mut c = a.clone();
        c["spec"]["expireAfter"] = json!("24h");
        assert_ne!(template_hash(&a), template_hash(&c));
        let mut d = a.clone();
        d["metadata"]["labels"]["team"] = json!("b");
        assert_ne!(template_hash(&a), template_hash(&d));
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_instance_drifts_from_its_node_class_by_image_then_subnet_then_security_groups() {
        let i = InstanceFacts {
            image: "ami-1".into(),
            subnet: "subnet-a".into(),
            security_groups: strings(&["sg-1", "sg-2"]),
        };
        let now = NodeClassNow {
            images: strings(&["ami-1", "ami-arm"]),
            subnets: strings(&["subnet-a", "subnet-b"]),
            security_groups: strings(&["sg-2", "sg-1"]),
        };
        assert_eq!(cloud_drift(&i, &now), None);
        let all_changed = NodeClassNow {
            images: strings(&["ami-2"]),
            subnets: strings(&["subnet-b"]),
            security_groups: strings(&["sg-1"]),
        };
        assert_eq!(cloud_drift(&i, &all_changed), Some(DriftReason::AmiDrift));
        let mut n = now.clone();
        n.subnets = strings(&["subnet-b"]);
        n.security_groups = strings(&["sg-1"]);
        assert_eq!(cloud_drift(&i, &n), Some(DriftReason::SubnetDrift));
        // A security group added or removed: the set differs.
        let mut n = now.clone();
        n.security_groups = strings(&["sg-1", "sg-2", "sg-3"]);
        assert_eq!(cloud_drift(&i, &n), Some(DriftReason::SecurityGroupDrift));
        n.security_groups = strings(&["sg-1"]);
        assert_eq!(cloud_drift(&i, &n), Some(DriftReason::SecurityGroupDrift));
        // Nothing resolved (the selectors find nothing for now): no verdict.
        assert_eq!(cloud_drift(&i, &NodeClassNow::default()), None);
        assert_eq!(DriftReason::AmiDrift.as_str(), "AMIDrift");
    }

    #[test]
    fn drift_is_the_hash_of_the_same_version_then_the_requirements() {
        let mut req = Requirements::default();
        req.add(
            "node.kubernetes.io/instance-type",
            Requirement::new(
                "node.kubernetes.io/instance-type",
                Operator::In,
                &["m7i.large"],
            )
            .expect("a requirement"),
        );
        let labels: BTreeMap<String, String> = [(
            "node.kubernetes.io/instance-type".to_string(),
            "m6i.large".to_string(),
        )]
        .into();
        assert_eq!(
            drift("1", Some(("1", HASH_VERSION)), &req, &labels),
            Some(DriftReason::RequirementsDrifted)
        );
        assert_eq!(
            drift("1", Some(("2", HASH_VERSION)), &req, &labels),
            Some(DriftReason::NodePoolDrifted)
        );
        // Another version (Karpenter's v3): not drifted by its hash.
        assert_eq!(
            drift("1", Some(("2", "v3")), &Requirements::default(), &labels),
            None
        );
        assert_eq!(drift("1", None, &Requirements::default(), &labels), None);
    }
}
