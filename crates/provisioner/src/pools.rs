//! The pools the provisioner launches from: v1 NodePools and v1alpha5
//! Provisioners, mapped onto one model.

use std::time::Duration;

use outrigger_karpenter_api::{
    convert::{self, FieldError},
    v1::{NodeClassReference, NodePool},
    v1alpha5::Provisioner,
};
use outrigger_scheduling::model;

/// Which API a pool came from.
#[derive(Clone, Debug)]
pub enum Source {
    NodePool(NodePool),
    Provisioner(Provisioner),
}

#[derive(Clone, Debug)]
pub struct Pool {
    pub model: model::NodePool,
    pub source: Source,
    pub node_class: NodeClassReference,
    /// Delete a node this long after its last non-daemonset pod left: a
    /// v1alpha5 Provisioner's `ttlSecondsAfterEmpty` (no budgets).
    pub empty_ttl: Option<Duration>,
    /// A NodePool's template hash (drift); none for a Provisioner.
    pub hash: Option<String>,
}

impl Pool {
    pub fn kind(&self) -> &'static str {
        match self.source {
            Source::NodePool(_) => "nodepool",
            Source::Provisioner(_) => "provisioner",
        }
    }
}

/// Karpenter's duration fields (`30s`, `1h30m`); `None` for `Never` or
/// anything that is not a duration.
pub fn duration(s: &str) -> Option<Duration> {
    outrigger_values::duration::parse_or_never(s).ok().flatten()
}

pub fn from_nodepool(np: &NodePool) -> Result<Pool, Vec<FieldError>> {
    let m = convert::nodepool(np)?;
    Ok(Pool {
        model: m,
        source: Source::NodePool(np.clone()),
        node_class: np.spec.template.spec.node_class_ref.clone(),
        // `WhenEmpty` NodePools are the disruption controller's (empty
        // nodes within the pool's budgets), as Karpenter v1 does.
        empty_ttl: None,
        hash: serde_json::to_value(&np.spec.template)
            .ok()
            .map(|t| outrigger_disruption::drift::template_hash(&t)),
    })
}

pub fn from_provisioner(p: &Provisioner) -> Result<Pool, Vec<FieldError>> {
    let m = convert::provisioner(p)?;
    let node_class = match &p.spec.provider_ref {
        Some(r) => NodeClassReference {
            group: "karpenter.k8s.aws".into(),
            kind: r.kind.clone().unwrap_or_else(|| "AWSNodeTemplate".into()),
            name: r.name.clone(),
        },
        None => NodeClassReference {
            group: "karpenter.sh".into(),
            kind: "Provisioner".into(),
            name: m.name.clone(),
        },
    };
    Ok(Pool {
        model: m,
        source: Source::Provisioner(p.clone()),
        node_class,
        empty_ttl: p
            .spec
            .ttl_seconds_after_empty
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        hash: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(duration("Never"), None);
        assert_eq!(duration("5"), None);
        assert_eq!(duration("5d"), None);
    }
}
