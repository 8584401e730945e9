//! Karpenter's APIs as Rust types: `karpenter.sh/v1` NodePool and
//! NodeClaim, the seed's `karpenter.sh/v1alpha5` Provisioner, and the node
//! classes (`karpenter.k8s.aws/v1` EC2NodeClass, `karpenter.kwok.sh/v1alpha1`
//! KWOKNodeClass); the CRDs generated from them (committed under
//! `deploy/crds/`, checked for drift by this crate's tests); and their
//! mapping onto the scheduling model ([`convert`]).

pub mod convert;
pub mod nodeclass;
pub mod pods;
pub mod v1;
pub mod v1alpha5;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD, in the order they are applied.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        v1::NodePool::crd(),
        v1::NodeClaim::crd(),
        v1alpha5::Provisioner::crd(),
        nodeclass::EC2NodeClass::crd(),
        nodeclass::KWOKNodeClass::crd(),
    ]
}

/// The file a CRD is committed as: `<group>_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// A CRD as committed YAML.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!(
        "# Generated from crates/karpenter-api by `outrigger crds`; do not edit.\n{}",
        serde_saphyr::to_string(crd)?
    ))
}
