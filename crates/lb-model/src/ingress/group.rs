//! IngressGroups: `group.name` / `group.order`, which Ingresses are
//! members, and the inactive members (being deleted, or gone from the
//! group while still holding its finalizer).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use outrigger_lb_api::v1beta1::IngressClassParams;

use super::class::classify;
use super::{Group, MAX_GROUP_ORDER, MIN_GROUP_ORDER, Member};
use crate::annotations::{self as a, Annotations, ing_key};
use crate::model::{FINALIZER_GROUP_PREFIX, FINALIZER_INGRESS, StackId};
use crate::{Config, ModelError};

/// Whether a group name is one the controller takes: lower-case letters,
/// digits, `-` and `.`, starting and ending with a letter or digit, at
/// most 63 characters.
pub fn is_valid_group_name(name: &str) -> bool {
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && ok_char(b[0])
        && ok_char(b[b.len() - 1])
        && b.iter().all(|&c| ok_char(c) || c == b'-' || c == b'.')
}

/// Which Ingresses are ours and how they group: an Ingress is ours if its
/// `spec.ingressClassName` names an IngressClass whose controller is
/// `ingress.k8s.aws/alb`, or its `kubernetes.io/ingress.class` annotation
/// is the controller's class (the annotation decides when both are set).
/// Ingresses sharing a group name (the IngressClassParams' `group.name`,
/// else the `group.name` annotation) form one group; any other is a group
/// of its own. `namespace_labels` gives each namespace's labels (for
/// IngressClassParams namespace selectors). Groups come sorted by id;
/// groups with only inactive members are included (their stack goes).
pub fn groups(
    ingresses: &[Ingress],
    classes: &[IngressClass],
    params: &[IngressClassParams],
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    cfg: &Config,
) -> Vec<Group> {
    fn entry<'m>(out: &'m mut BTreeMap<StackId, Group>, id: &StackId) -> &'m mut Group {
        out.entry(id.clone()).or_insert_with(|| Group {
            id: id.clone(),
            members: vec![],
            inactive_members: vec![],
        })
    }
    let mut out: BTreeMap<StackId, Group> = BTreeMap::new();
    for ing in ingresses {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let name = ing.metadata.name.as_deref().unwrap_or_default();
        let implicit = StackId::Ingress {
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let deleting = ing.metadata.deletion_timestamp.is_some();
        let mut current = None;
        if let Some(c) = classify(ing, classes, params, namespace_labels, cfg) {
            let empty = Annotations::new();
            let ann = ing.metadata.annotations.as_ref().unwrap_or(&empty);
            let mut problem = c.problem;
            let group_key = ing_key("group.name");
            let group_name = c
                .params
                .and_then(|p| p.spec.group.as_ref())
                .map(|g| g.name.as_str())
                .or_else(|| a::string(ann, &group_key));
            let id = match group_name {
                Some(g) if is_valid_group_name(g) => StackId::IngressGroup {
                    name: g.to_string(),
                },
                Some(g) => {
                    problem.get_or_insert_with(|| {
                        ModelError::invalid(
                            &group_key,
                            g,
                            "names of lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters",
                        )
                    });
                    implicit.clone()
                }
                None => implicit.clone(),
            };
            let order = match a::int_in(
                ann,
                &ing_key("group.order"),
                MIN_GROUP_ORDER,
                MAX_GROUP_ORDER,
            ) {
                Ok(o) => o.unwrap_or(0),
                Err(e) => {
                    problem.get_or_insert(e);
                    0
                }
            };
            if deleting {
                entry(&mut out, &id).inactive_members.push(ing.clone());
            } else {
                entry(&mut out, &id).members.push(Member {
                    ingress: ing.clone(),
                    params: c.params.cloned(),
                    order,
                    problem,
                });
            }
            current = Some(id);
        }
        // Groups the Ingress left (or is leaving) but still holds a
        // finalizer of.
        for f in ing.metadata.finalizers.iter().flatten() {
            let id = if f == FINALIZER_INGRESS {
                implicit.clone()
            } else if let Some(g) = f.strip_prefix(FINALIZER_GROUP_PREFIX) {
                StackId::IngressGroup {
                    name: g.to_string(),
                }
            } else {
                continue;
            };
            if current.as_ref() != Some(&id) {
                entry(&mut out, &id).inactive_members.push(ing.clone());
            }
        }
    }
    let mut groups: Vec<Group> = out.into_values().collect();
    for g in &mut groups {
        g.members
            .sort_by(|x, y| x.order.cmp(&y.order).then_with(|| x.key().cmp(&y.key())));
        let key = |i: &Ingress| {
            format!(
                "{}/{}",
                i.metadata.namespace.as_deref().unwrap_or("default"),
                i.metadata.name.as_deref().unwrap_or_default()
            )
        };
        g.inactive_members.sort_by_key(key);
        g.inactive_members.dedup_by(|x, y| key(x) == key(y));
    }
    groups
}
