//! Node groups and their template nodes.
//!
//! Every node of a group is assumed identical to its template: taken from a
//! node of the group when it has one (its labels, taints and allocatable,
//! with what is particular to that node removed), else built from the
//! group's instance type with the EKS allocatable formula and the
//! `k8s.io/cluster-autoscaler/node-template/{label,taint,resources}/` tags.

use std::collections::BTreeMap;

use outrigger_scheduling::{
    eks::{self, Ec2Shape},
    model::{
        CAPACITY_ON_DEMAND, InstanceType, LABEL_ARCH, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME,
        LABEL_INSTANCE_TYPE, LABEL_OS, LABEL_REGION, LABEL_ZONE, Labels, Offering, Taint,
        TaintEffect,
    },
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
};

use crate::upstream::{
    DELETION_CANDIDATE_TAINT, TEMPLATE_LABEL_TAG, TEMPLATE_RESOURCES_TAG, TEMPLATE_TAINT_TAG,
    TO_BE_DELETED_TAINT,
};

/// What every node of a group looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub instance_type: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub capacity: Resources,
    pub allocatable: Resources,
    /// Hourly price of a node, if known (the `price` expander).
    pub price: Option<f64>,
}

/// A group of identical nodes the autoscaler may resize.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeGroup {
    /// The Auto Scaling group's (or kwok group's) name.
    pub id: String,
    pub min: i64,
    pub max: i64,
    /// The size the cloud is asked for (desired capacity).
    pub target: i64,
    /// Provider IDs of its instances (`aws:///zone/i-...`).
    pub instances: Vec<String>,
    /// `None`: the autoscaler cannot tell what a new node would be.
    pub template: Option<Template>,
}

/// Labels particular to one node, not to its group.
const NODE_SPECIFIC_LABELS: [&str; 2] = [LABEL_HOSTNAME, "kubernetes.io/hostname"];

/// Taints particular to one node's state, not to its group.
fn state_taint(key: &str) -> bool {
    key == TO_BE_DELETED_TAINT
        || key == DELETION_CANDIDATE_TAINT
        || key.starts_with("node.kubernetes.io/")
        || key.starts_with("node.cloudprovider.kubernetes.io/")
        || key == "karpenter.sh/disrupted"
}

impl Template {
    /// A template from one of the group's nodes: its labels but the
    /// hostname, its taints but those of its state (not ready, being
    /// deleted, cordoned...), its capacity and allocatable.
    pub fn from_node(
        instance_type: Option<&str>,
        labels: &Labels,
        taints: &[Taint],
        capacity: &Resources,
        allocatable: &Resources,
    ) -> Self {
        let mut labels = labels.clone();
        for k in NODE_SPECIFIC_LABELS {
            labels.remove(k);
        }
        Self {
            instance_type: instance_type
                .map(str::to_string)
                .or_else(|| labels.get(LABEL_INSTANCE_TYPE).cloned())
                .unwrap_or_default(),
            labels,
            taints: taints
                .iter()
                .filter(|t| !state_taint(&t.key))
                .cloned()
                .collect(),
            capacity: capacity.clone(),
            allocatable: allocatable.clone(),
            price: None,
        }
    }

    /// A template for a group with no node, as upstream's AWS provider
    /// builds one: its instance type's shape (the first type of a
    /// mixed-instances group) with EKS's allocatable (upstream: allocatable
    /// = capacity, 110 pods), the generic labels (arch, os, instance type,
    /// zone, region, the EBS CSI driver's zone; no hostname: a template is
    /// no node), then what the group's tags add: `eks:<name>` tags as
    /// `<name>` labels, `node-template/label/` labels, `node-template/taint/`
    /// taints (`value:Effect`) and `node-template/resources/` quantities
    /// (which replace capacity and allocatable). Tags upstream ignores (a
    /// taint without a known effect, a quantity that does not parse) are
    /// skipped ([`skipped_tags`] names them); the error is kept for callers.
    pub fn from_tags(
        shape: &Ec2Shape,
        zone: Option<&str>,
        tags: &BTreeMap<String, String>,
        extra_labels: &Labels,
    ) -> Result<Self, String> {
        let it = eks::instance_type(shape, &eks::Kubelet::default(), vec![]);
        let mut labels: Labels = it.requirements.single_values();
        labels.insert(LABEL_ARCH.into(), shape.arch.clone());
        labels.insert(LABEL_OS.into(), "linux".into());
        labels.insert(LABEL_INSTANCE_TYPE.into(), shape.name.clone());
        labels.insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_ON_DEMAND.into());
        if let Some(z) = zone {
            labels.insert(LABEL_ZONE.into(), z.to_string());
            labels.insert(LABEL_EBS_CSI_ZONE.into(), z.to_string());
            labels.insert(LABEL_REGION.into(), region_of(z));
        }
        labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        labels.extend(labels_from_tags(tags));
        let mut capacity = it.capacity.clone();
        let mut allocatable = it.allocatable();
        for (r, q) in resources_from_tags(tags) {
            // Out of range for a node: skipped, as a tag that does not parse.
            if capacity.set(&r, q).is_ok() {
                let _ = allocatable.set(&r, q);
            }
        }
        Ok(Self {
            instance_type: shape.name.clone(),
            labels,
            taints: taints_from_tags(tags),
            capacity,
            allocatable,
            price: Some(eks::on_demand_price(&shape.name, shape.vcpus)),
        })
    }

    /// The template as the solver's instance type: its allocatable, one
    /// offering (its zone and capacity type).
    pub fn instance_type(&self) -> InstanceType {
        let mut requirements = Requirements::default();
        if let Ok(r) = Requirement::new(LABEL_INSTANCE_TYPE, Operator::In, &[&self.instance_type]) {
            requirements.add(LABEL_INSTANCE_TYPE, r);
        }
        InstanceType {
            name: self.instance_type.clone(),
            requirements,
            capacity: self.capacity.clone(),
            overhead: self.capacity.minus(&self.allocatable),
            offerings: vec![Offering {
                zone: self.labels.get(LABEL_ZONE).cloned().unwrap_or_default(),
                capacity_type: self
                    .labels
                    .get(LABEL_CAPACITY_TYPE)
                    .cloned()
                    .unwrap_or_else(|| CAPACITY_ON_DEMAND.to_string()),
                price: self.price.unwrap_or(0.0),
                available: true,
            }],
        }
    }

    /// The template's labels as the solver's pool requirements (each label
    /// exactly its value), so pods' selectors and affinity are checked
    /// against them.
    pub fn requirements(&self) -> Requirements {
        let mut r = Requirements::default();
        for (k, v) in &self.labels {
            if let Ok(x) = Requirement::new(k, Operator::In, &[v.as_str()]) {
                r.add(k, x);
            }
        }
        r
    }
}

/// The EBS CSI driver's zone label, which upstream puts on templates.
pub const LABEL_EBS_CSI_ZONE: &str = "topology.ebs.csi.aws.com/zone";
/// EKS labels a managed node group's nodes with its name.
pub const LABEL_EKS_NODEGROUP: &str = "eks.amazonaws.com/nodegroup";
/// The tag EKS puts on a managed node group's Auto Scaling group.
pub const TAG_EKS_NODEGROUP: &str = "eks:nodegroup-name";

/// `us-east-1a` -> `us-east-1`: the zone but its last letter, as upstream.
fn region_of(zone: &str) -> String {
    let mut r = zone.to_string();
    r.pop();
    r
}

/// The text after the first `marker` in `key` (up to a second one), as
/// upstream splits tag keys; `None` when absent or empty.
fn after<'a>(key: &'a str, marker: &str) -> Option<&'a str> {
    key.split(marker).nth(1).filter(|s| !s.is_empty())
}

/// The labels a group's tags give its nodes: `node-template/label/<name>`
/// tags, and `eks:<name>` tags as `<name>` (upstream's
/// `nodegroup-name`, `cluster-name`); EKS's own node group label too.
pub fn labels_from_tags(tags: &BTreeMap<String, String>) -> Labels {
    let mut out = Labels::new();
    if let Some(ng) = tags.get(TAG_EKS_NODEGROUP).filter(|v| !v.is_empty()) {
        out.insert(LABEL_EKS_NODEGROUP.into(), ng.clone());
    }
    // `eks:` ones first: a `node-template/label/` tag wins over them.
    for (k, v) in tags {
        if !k.contains(TEMPLATE_LABEL_TAG)
            && let Some(l) = after(k, "eks:")
        {
            out.insert(l.to_string(), v.clone());
        }
    }
    for (k, v) in tags {
        if let Some(l) = after(k, TEMPLATE_LABEL_TAG) {
            out.insert(l.to_string(), v.clone());
        }
    }
    out
}

/// The taints a group's `node-template/taint/<key>` tags give its nodes;
/// values not `value:Effect` with a known effect are skipped, as upstream.
pub fn taints_from_tags(tags: &BTreeMap<String, String>) -> Vec<Taint> {
    tags.iter()
        .filter_map(|(k, v)| parse_taint(after(k, TEMPLATE_TAINT_TAG)?, v).ok())
        .collect()
}

/// The quantities of a group's `node-template/resources/<name>` tags;
/// values that do not parse are skipped, as upstream.
pub fn resources_from_tags(
    tags: &BTreeMap<String, String>,
) -> BTreeMap<String, outrigger_values::Quantity> {
    tags.iter()
        .filter_map(|(k, v)| {
            let r = after(k, TEMPLATE_RESOURCES_TAG)?;
            Some((r.to_string(), outrigger_values::Quantity::parse(v).ok()?))
        })
        .collect()
}

/// The `node-template` taint and resources tags [`Template::from_tags`]
/// skips, each with why (for a warning).
pub fn skipped_tags(tags: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = vec![];
    for (k, v) in tags {
        if let Some(t) = after(k, TEMPLATE_TAINT_TAG) {
            if let Err(e) = parse_taint(t, v) {
                out.push(e);
            }
        } else if after(k, TEMPLATE_RESOURCES_TAG).is_some()
            && let Err(e) = outrigger_values::Quantity::parse(v)
        {
            out.push(format!("tag {k}: {e}"));
        }
    }
    out
}

/// A `node-template/taint/<key>` tag's value: `value:Effect` (or
/// `:Effect`), split at the first colon as upstream.
pub fn parse_taint(key: &str, value: &str) -> Result<Taint, String> {
    let (v, effect) = value
        .split_once(':')
        .ok_or_else(|| format!("taint tag {key}: {value:?} is not value:Effect"))?;
    let effect = TaintEffect::parse(effect).ok_or_else(|| {
        format!(
            "taint tag {key}: unknown effect {effect:?} (NoSchedule, PreferNoSchedule, NoExecute)"
        )
    })?;
    Ok(Taint {
        key: key.to_string(),
        value: v.to_string(),
        effect,
    })
}

impl NodeGroup {
    /// Nodes it may still add.
    pub fn headroom(&self) -> i64 {
        (self.max - self.target).max(0)
    }

    /// Whether a node (by provider ID) is one of its instances.
    pub fn has(&self, provider_id: &str) -> bool {
        let id = provider_id.rsplit('/').next().unwrap_or(provider_id);
        self.instances
            .iter()
            .any(|p| p == provider_id || p.rsplit('/').next() == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m5_large() -> Ec2Shape {
        eks::shape("m5.large").expect("a known shape")
    }

    #[test]
    fn a_group_at_zero_is_its_instance_type_with_its_tags() {
        let tags = BTreeMap::from([
            (format!("{TEMPLATE_LABEL_TAG}team"), "web".to_string()),
            (
                format!("{TEMPLATE_TAINT_TAG}dedicated"),
                "web:NoSchedule".to_string(),
            ),
            (
                format!("{TEMPLATE_RESOURCES_TAG}ephemeral-storage"),
                "100G".to_string(),
            ),
            (
                "k8s.io/cluster-autoscaler/enabled".to_string(),
                "true".to_string(),
            ),
        ]);
        let t = Template::from_tags(&m5_large(), Some("ap-southeast-1a"), &tags, &Labels::new())
            .unwrap();
        assert_eq!(t.labels["node.kubernetes.io/instance-type"], "m5.large");
        assert_eq!(t.labels["topology.kubernetes.io/zone"], "ap-southeast-1a");
        assert_eq!(t.labels["topology.kubernetes.io/region"], "ap-southeast-1");
        assert_eq!(t.labels["team"], "web");
        assert_eq!(t.taints[0].key, "dedicated");
        assert_eq!(t.taints[0].effect, TaintEffect::NoSchedule);
        // EKS's allocatable for an m5.large: 1930m, 29 pods.
        assert_eq!(t.allocatable.cpu_millis, 1930);
        assert_eq!(t.allocatable.pods, 29);
        assert_eq!(t.allocatable.ephemeral_bytes, 100_000_000_000);
        assert!(t.price.unwrap() > 0.0);
    }

    #[test]
    fn a_bad_taint_tag_is_skipped_and_named() {
        let tags = BTreeMap::from([(format!("{TEMPLATE_TAINT_TAG}x"), "y:Sometimes".to_string())]);
        let t = Template::from_tags(&m5_large(), None, &tags, &Labels::new()).unwrap();
        assert!(t.taints.is_empty());
        let skipped = skipped_tags(&tags);
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].contains("taint tag x") && skipped[0].contains("Sometimes"),
            "{skipped:?}"
        );
    }

    #[test]
    fn a_template_from_a_node_drops_what_is_particular_to_it() {
        let labels = Labels::from([
            ("kubernetes.io/hostname".to_string(), "ip-1".to_string()),
            (
                "node.kubernetes.io/instance-type".to_string(),
                "m5.large".to_string(),
            ),
        ]);
        let taints = vec![
            Taint {
                key: TO_BE_DELETED_TAINT.into(),
                value: "1".into(),
                effect: TaintEffect::NoSchedule,
            },
            Taint {
                key: "dedicated".into(),
                value: "web".into(),
                effect: TaintEffect::NoSchedule,
            },
        ];
        let r = Resources::default();
        let t = Template::from_node(None, &labels, &taints, &r, &r);
        assert_eq!(t.instance_type, "m5.large");
        assert!(!t.labels.contains_key("kubernetes.io/hostname"));
        assert_eq!(t.taints.len(), 1);
        assert_eq!(t.taints[0].key, "dedicated");
    }
}
