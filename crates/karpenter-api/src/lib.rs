//! Karpenter's APIs as Rust types: `karpenter.sh/v1` NodePool and
//! NodeClaim, the seed's `karpenter.sh/v1alpha5` Provisioner, and the node
//! classes (`karpenter.k8s.aws/v1` EC2NodeClass, `karpenter.kwok.sh/v1alpha1`
//! KWOKNodeClass); the CRDs generated from them (committed under
//! `deploy/crds/`, checked for drift by this crate's tests); and their
//! mapping onto the scheduling model ([`convert`]).

pub mod convert;
pub mod nodeclass;
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
        kwok_node_class_crd(),
    ]
}

/// A KWOKNodeClass is Ready from the start (as upstream's CRD defaults its
/// status): no cloud to resolve anything in.
fn kwok_node_class_crd() -> CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;
    let mut crd = nodeclass::KWOKNodeClass::crd();
    for v in &mut crd.spec.versions {
        if let Some(status) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"))
        {
            status.default = Some(JSON(serde_json::json!({
                "conditions": [{
                    "type": "Ready",
                    "status": "True",
                    "reason": "Ready",
                    "message": "",
                    "lastTransitionTime": "2024-01-01T01:01:01Z",
                }]
            })));
        }
    }
    crd
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
