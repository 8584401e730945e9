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
        CAPACITY_ON_DEMAND, InstanceType, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_INSTANCE_TYPE,
        LABEL_ZONE, Labels, Offering, Taint, TaintEffect,
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

    /// A template for a group with no node: its instance type's shape (the
    /// first type of a mixed-instances group), EKS's allocatable, the
    /// well-known labels, the group's first zone, and what the group's
    /// `node-template` tags add: labels, taints (`value:Effect`) and
    /// resources (which replace the computed capacity and allocatable).
    pub fn from_tags(
        shape: &Ec2Shape,
        zone: Option<&str>,
        tags: &BTreeMap<String, String>,
        extra_labels: &Labels,
    ) -> Result<Self, String> {
        let it = eks::instance_type(shape, &eks::Kubelet::default(), vec![]);
        let mut labels: Labels = it.requirements.single_values();
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert(LABEL_CAPACITY_TYPE.into(), CAPACITY_ON_DEMAND.into());
        if let Some(z) = zone {
            labels.insert(LABEL_ZONE.into(), z.to_string());
            labels.insert("topology.kubernetes.io/region".into(), region_of(z));
        }
        labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut taints = vec![];
        let mut capacity = it.capacity.clone();
        let mut allocatable = it.allocatable();
        for (k, v) in tags {
            if let Some(l) = k.strip_prefix(TEMPLATE_LABEL_TAG) {
                labels.insert(l.to_string(), v.clone());
            } else if let Some(t) = k.strip_prefix(TEMPLATE_TAINT_TAG) {
                taints.push(parse_taint(t, v)?);
            } else if let Some(r) = k.strip_prefix(TEMPLATE_RESOURCES_TAG) {
                let q =
                    outrigger_values::Quantity::parse(v).map_err(|e| format!("tag {k}: {e}"))?;
                capacity.set(r, q).map_err(|e| format!("tag {k}: {e}"))?;
                allocatable.set(r, q).map_err(|e| format!("tag {k}: {e}"))?;
            }
        }
        Ok(Self {
            instance_type: shape.name.clone(),
            labels,
            taints,
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

/// `us-east-1a` -> `us-east-1`.
fn region_of(zone: &str) -> String {
    zone.trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .to_string()
}

/// A `node-template/taint/<key>` tag's value: `value:Effect` (or
/// `:Effect`).
pub fn parse_taint(key: &str, value: &str) -> Result<Taint, String> {
    let (v, effect) = value
        .rsplit_once(':')
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
    fn a_bad_taint_tag_is_an_error_naming_it() {
        let tags = BTreeMap::from([(format!("{TEMPLATE_TAINT_TAG}x"), "y:Sometimes".to_string())]);
        let e = Template::from_tags(&m5_large(), None, &tags, &Labels::new()).unwrap_err();
        assert!(e.contains("taint tag x") && e.contains("Sometimes"), "{e}");
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
