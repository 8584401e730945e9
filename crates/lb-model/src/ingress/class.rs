//! Which Ingresses are ours: the `kubernetes.io/ingress.class` annotation,
//! IngressClasses of our controller and their IngressClassParams (which
//! must exist and select the Ingress's namespace).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use outrigger_lb_api::v1beta1::IngressClassParams;

use super::{ANNOTATION_CLASS, CONTROLLER};
use crate::{Config, ModelError};

/// What a class says about an Ingress of ours.
pub(super) struct Classified<'a> {
    pub(super) params: Option<&'a IngressClassParams>,
    pub(super) problem: Option<ModelError>,
}

/// Whether the Ingress is ours, and its class's parameters.
pub(super) fn classify<'a>(
    ing: &Ingress,
    classes: &[IngressClass],
    params: &'a [IngressClassParams],
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    cfg: &Config,
) -> Option<Classified<'a>> {
    let by_annotation = if cfg.disable_ingress_class_annotation {
        None
    } else {
        ing.metadata
            .annotations
            .as_ref()
            .and_then(|m| m.get(ANNOTATION_CLASS))
            .map(|v| *v == cfg.ingress_class)
    };
    let mut out = Classified {
        params: None,
        problem: None,
    };
    let class_name = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let by_class = match class_name {
        None => None,
        Some(name) => {
            // A class that does not exist makes the Ingress nobody's.
            let class = classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name))?;
            let spec = class.spec.as_ref();
            let ours = spec.and_then(|s| s.controller.as_deref()) == Some(CONTROLLER);
            if ours && let Some(pref) = spec.and_then(|s| s.parameters.as_ref()) {
                if pref.api_group.as_deref() != Some(outrigger_lb_api::GROUP)
                    || pref.kind != "IngressClassParams"
                {
                    out.problem = Some(ModelError::IngressClass {
                        class: name.to_string(),
                        message: format!(
                            "parameters must be an {}/IngressClassParams, not {}/{}",
                            outrigger_lb_api::GROUP,
                            pref.api_group.as_deref().unwrap_or_default(),
                            pref.kind
                        ),
                    });
                } else if let Some(p) = params
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(&pref.name))
                {
                    let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
                    let empty = BTreeMap::new();
                    let labels = namespace_labels.get(ns).unwrap_or(&empty);
                    if p.spec
                        .namespace_selector
                        .as_ref()
                        .is_some_and(|sel| !selects(sel, labels))
                    {
                        out.problem = Some(ModelError::IngressClass {
                            class: name.to_string(),
                            message: format!(
                                "namespace {ns} is not selected by the namespaceSelector of IngressClassParams {}",
                                pref.name
                            ),
                        });
                    }
                    out.params = Some(p);
                } else {
                    out.problem = Some(ModelError::IngressClass {
                        class: name.to_string(),
                        message: format!("IngressClassParams {} not found", pref.name),
                    });
                }
            }
            Some(ours)
        }
    };
    let ours = by_annotation.or(by_class).unwrap_or(false);
    ours.then_some(out)
}

/// Whether a label selector selects these labels (empty selects all; an
/// unknown operator selects nothing).
pub use outrigger_values::selector::selects;
