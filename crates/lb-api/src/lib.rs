//! The AWS Load Balancer Controller's APIs as Rust types:
//! `elbv2.k8s.aws/v1beta1` IngressClassParams (what an IngressClass of
//! controller `ingress.k8s.aws/alb` sets for all its Ingresses) and
//! TargetGroupBinding (a target group kept in step with a Service port),
//! with upstream's field names, enums and printer columns; and the CRDs
//! generated from them (committed under `deploy/crds/`, checked for drift
//! by this crate's tests).

pub mod v1beta1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of both kinds.
pub const GROUP: &str = "elbv2.k8s.aws";

/// Every CRD, in the order they are applied.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        v1beta1::IngressClassParams::crd(),
        v1beta1::TargetGroupBinding::crd(),
    ]
}

/// The file a CRD is committed as: `<group>_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// A CRD as committed YAML.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!(
        "# Generated from crates/lb-api by `outrigger crds`; do not edit.\n{}",
        serde_saphyr::to_string(crd)?
    ))
}
