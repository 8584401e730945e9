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
/// changed, or (the cloud provider's, Karpenter AWS's reasons) its node
/// class's static fields changed or its instance no longer matches what
/// its node class resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftReason {
    NodePoolDrifted,
    RequirementsDrifted,
    NodeClassDrift,
    AmiDrift,
    StaleInstanceTypeDrift,
    SubnetDrift,
    SecurityGroupDrift,
}

impl DriftReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftReason::NodePoolDrifted => "NodePoolDrifted",
            DriftReason::RequirementsDrifted => "RequirementsDrifted",
            DriftReason::NodeClassDrift => "NodeClassDrift",
            DriftReason::AmiDrift => "AMIDrift",
            DriftReason::StaleInstanceTypeDrift => "StaleInstanceTypeDrift",
            DriftReason::SubnetDrift => "SubnetDrift",
            DriftReason::SecurityGroupDrift => "SecurityGroupDrift",
        }
    }
}

/// `karpenter.k8s.aws/ec2nodeclass-hash` and its version, as Outrigger
/// writes them on EC2NodeClasses and on the claims launched from them.
pub const NODECLASS_HASH: &str = "karpenter.k8s.aws/ec2nodeclass-hash";
pub const NODECLASS_HASH_VERSION: &str = "karpenter.k8s.aws/ec2nodeclass-hash-version";

/// The EC2NodeClass's fields whose change is dynamic drift (judged against
/// what they resolve to), not static: left out of its hash.
const DYNAMIC_FIELDS: [&str; 5] = [
    "subnetSelectorTerms",
    "securityGroupSelectorTerms",
    "amiSelectorTerms",
    "amiFamily",
    "capacityReservationSelectorTerms",
];

/// The hash of an EC2NodeClass's `spec` (as JSON) over its static fields
/// (user data, tags, role or instance profile, block devices, metadata
/// options, kubelet, monitoring, public addresses, context, instance store
/// policy): a change of any of them drifts the claims launched before it
/// (`NodeClassDrift`). Canonical as [`template_hash`].
pub fn nodeclass_hash(spec: &Value) -> String {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        for f in DYNAMIC_FIELDS {
            m.remove(f);
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    canonical(&s).hash(&mut h);
    h.finish().to_string()
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

/// A claim's side of cloud drift: its instance, its instance-type label,
/// the image it launched with and the node-class hash it was stamped with.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClaimCloudFacts<'a> {
    pub provider_id: Option<&'a str>,
    pub instance_type: Option<&'a str>,
    /// `status.imageID`.
    pub image_id: Option<&'a str>,
    pub class_hash: Option<&'a str>,
    pub class_hash_version: Option<&'a str>,
}

/// The node class's side: its hash and version, what it resolves to now.
#[derive(Clone, Copy, Debug)]
pub struct ClassCloudFacts<'a> {
    pub hash: Option<&'a str>,
    pub hash_version: Option<&'a str>,
    pub now: &'a NodeClassNow,
}

/// Why cloud drift could not be judged (Karpenter returns these as
/// errors and decides nothing until they clear).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudDriftError {
    #[error("nodeclaim has no provider id")]
    NoProviderId,
    #[error("getting instance, instance not found")]
    InstanceNotFound,
    #[error("calculating ami drift, nodeclaim doesn't have instance type label")]
    NoInstanceType,
    #[error("calculating ami drift, nodeclaim has no image id")]
    NoImage,
    #[error("calculating ami drift, no amis exist given constraints")]
    NoImages,
    #[error("calculating securitygroup drift, no security groups are present in the status")]
    NoSecurityGroups,
    #[error("calculating subnet drift, no subnets are discovered")]
    NoSubnets,
}

/// Static drift: the claim was stamped with another hash of its node
/// class's static fields, of the same hash version. Any of the four
/// annotations missing, or versions that differ: not drifted.
pub fn static_drift(claim: &ClaimCloudFacts, class: &ClassCloudFacts) -> Option<DriftReason> {
    let (Some(ch), Some(cv), Some(nh), Some(nv)) = (
        claim.class_hash,
        claim.class_hash_version,
        class.hash,
        class.hash_version,
    ) else {
        return None;
    };
    (cv == nv && ch != nh).then_some(DriftReason::NodeClassDrift)
}

/// Karpenter AWS's `IsDrifted` for a claim: no node class, no verdict;
/// then static drift (before any cloud call); then, for its instance, the
/// image (`AMIDrift`; `StaleInstanceTypeDrift` when its type is no longer
/// offered), the security groups (`SecurityGroupDrift`: not exactly the
/// class's set) and the subnet (`SubnetDrift`), each judged and the first
/// in that order reported. Anything unknown (no instance, no type label,
/// nothing resolved) is an error, not a verdict, whatever else drifted.
/// The image is the claim's `status.imageID`; claims that do not record
/// one are judged by their instance's image.
pub fn cloud_drift(
    claim: &ClaimCloudFacts,
    class: Option<&ClassCloudFacts>,
    instance: Option<&InstanceFacts>,
    type_offered: impl Fn(&str) -> bool,
) -> Result<Option<DriftReason>, CloudDriftError> {
    let Some(class) = class else {
        return Ok(None);
    };
    if let Some(r) = static_drift(claim, class) {
        return Ok(Some(r));
    }
    if claim.provider_id.is_none_or(str::is_empty) {
        return Err(CloudDriftError::NoProviderId);
    }
    let instance = instance.ok_or(CloudDriftError::InstanceNotFound)?;
    let now = class.now;
    // The image.
    let it = claim.instance_type.ok_or(CloudDriftError::NoInstanceType)?;
    let ami = if !type_offered(it) {
        Some(DriftReason::StaleInstanceTypeDrift)
    } else {
        if now.images.is_empty() {
            return Err(CloudDriftError::NoImages);
        }
        let image = claim
            .image_id
            .filter(|i| !i.is_empty())
            .or(Some(instance.image.as_str()).filter(|i| !i.is_empty()))
            .ok_or(CloudDriftError::NoImage)?;
        (!now.images.iter().any(|i| i == image)).then_some(DriftReason::AmiDrift)
    };
    // The security groups: exactly the class's set.
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    if now.security_groups.is_empty() {
        return Err(CloudDriftError::NoSecurityGroups);
    }
    let groups = (set(&now.security_groups) != set(&instance.security_groups))
        .then_some(DriftReason::SecurityGroupDrift);
    // The subnet.
    if now.subnets.is_empty() {
        return Err(CloudDriftError::NoSubnets);
    }
    let subnet = (!now.subnets.contains(&instance.subnet)).then_some(DriftReason::SubnetDrift);
    Ok(ami.or(groups).or(subnet))
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
