//! From the API objects to the scheduling model: a v1 NodePool and a
//! v1alpha5 Provisioner become the same [`model::NodePool`]. Anything the
//! solver could not honour is an error naming the field, so a bad pool is
//! reported on the object and launches nothing.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Taint, apimachinery::pkg::api::resource::Quantity};
use outrigger_scheduling::{
    model::{self, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_PROVISIONER, TaintEffect, normalize_key},
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
};

use crate::{v1, v1alpha5};

/// One problem with a pool, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Labels Karpenter sets itself; a pool may not require or set them.
const RESTRICTED: &[&str] = &[LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_PROVISIONER];

fn op_v1(op: v1::Operator) -> (Operator, i64) {
    // Gte n is Gt n-1 and Lte n is Lt n+1 on integers.
    match op {
        v1::Operator::In => (Operator::In, 0),
        v1::Operator::NotIn => (Operator::NotIn, 0),
        v1::Operator::Exists => (Operator::Exists, 0),
        v1::Operator::DoesNotExist => (Operator::DoesNotExist, 0),
        v1::Operator::Gt => (Operator::Gt, 0),
        v1::Operator::Lt => (Operator::Lt, 0),
        v1::Operator::Gte => (Operator::Gt, -1),
        v1::Operator::Lte => (Operator::Lt, 1),
    }
}

fn op_v1alpha5(op: v1alpha5::Operator) -> Operator {
    match op {
        v1alpha5::Operator::In => Operator::In,
        v1alpha5::Operator::NotIn => Operator::NotIn,
        v1alpha5::Operator::Exists => Operator::Exists,
        v1alpha5::Operator::DoesNotExist => Operator::DoesNotExist,
        v1alpha5::Operator::Gt => Operator::Gt,
        v1alpha5::Operator::Lt => Operator::Lt,
    }
}

/// A requirement as written; `shift` moves a Gt/Lt bound (Gte, Lte).
struct Raw<'a> {
    key: &'a str,
    op: Operator,
    shift: i64,
    values: &'a [String],
    min_values: Option<i64>,
}

/// Adds one requirement of a pool to `out`, or says what is wrong with it.
fn requirement(field: &str, raw: Raw<'_>, out: &mut Requirements) -> Result<(), FieldError> {
    add_requirement(field, raw, out, true)
}

/// Adds one requirement to `out`; `restricted`: refuse the labels
/// Karpenter sets itself (a pool may not name them, a NodeClaim does).
fn add_requirement(
    field: &str,
    raw: Raw<'_>,
    out: &mut Requirements,
    restricted: bool,
) -> Result<(), FieldError> {
    let key = normalize_key(raw.key);
    if restricted && RESTRICTED.contains(&key) {
        return Err(err(
            field,
            format!("label {key} is restricted: Karpenter sets it"),
        ));
    }
    let mut values: Vec<String> = raw.values.to_vec();
    if raw.shift != 0 {
        let [v] = raw.values else {
            return Err(err(field, "needs exactly one integer value"));
        };
        let n: i64 = v
            .parse()
            .map_err(|_| err(field, format!("{key}: {v:?} is not an integer")))?;
        values = vec![(n + raw.shift).to_string()];
    }
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut r = Requirement::new(key, raw.op, &refs).map_err(|e| err(field, e.to_string()))?;
    if let Some(m) = raw.min_values {
        if m < 1 {
            return Err(err(field, "minValues must be at least 1"));
        }
        if raw.op == Operator::In && (values.len() as i64) < m {
            return Err(err(
                field,
                format!(
                    "minValues {m} needs at least {m} values, got {}",
                    values.len()
                ),
            ));
        }
        r.min_values = Some(m as usize);
    }
    out.add(key, r);
    if out.get(key).is_some_and(Requirement::is_unsatisfiable) {
        return Err(err(
            field,
            format!("contradicts an earlier requirement on {key}"),
        ));
    }
    Ok(())
}

fn taints(field: &str, list: &[Taint], errors: &mut Vec<FieldError>) -> Vec<model::Taint> {
    let mut out = vec![];
    for (i, t) in list.iter().enumerate() {
        match TaintEffect::parse(&t.effect) {
            Some(effect) => out.push(model::Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect,
            }),
            None => errors.push(err(
                format!("{field}[{i}].effect"),
                format!(
                    "unknown effect {:?} (NoSchedule, PreferNoSchedule, NoExecute)",
                    t.effect
                ),
            )),
        }
    }
    out
}

fn limits(
    field: &str,
    list: &BTreeMap<String, Quantity>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (name, q) in list {
        match Resources::parse([(name.as_str(), q.0.as_str())]) {
            Ok(r) => {
                out.insert(name.clone(), r.get(name));
            }
            Err(e) => errors.push(err(format!("{field}.{name}"), e.to_string())),
        }
    }
    out
}

fn labels(
    field: &str,
    list: &BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) -> model::Labels {
    for k in list.keys() {
        if RESTRICTED.contains(&normalize_key(k)) {
            errors.push(err(
                format!("{field}.{k}"),
                format!("label {k} is restricted: Karpenter sets it"),
            ));
        }
    }
    list.clone()
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// A NodeClaim's requirements in the solver's algebra, the inclusive
/// operators shifted as for pools (`Gte 4` is `Gt 3`, `Lte 8` is `Lt 9`).
/// A requirement that cannot be read is left out (the claim was written by
/// the provisioner; the API server validated it).
pub fn nodeclaim_requirements(claim: &v1::NodeClaim) -> Requirements {
    let mut reqs = Requirements::default();
    for r in &claim.spec.requirements {
        let (op, shift) = op_v1(r.operator);
        let raw = Raw {
            key: &r.key,
            op,
            shift,
            values: &r.values,
            min_values: None,
        };
        let _ = add_requirement("spec.requirements", raw, &mut reqs, false);
    }
    reqs
}

/// A v1 NodePool as the solver's pool.
pub fn nodepool(np: &v1::NodePool) -> Result<model::NodePool, Vec<FieldError>> {
    let mut errors = vec![];
    let spec = &np.spec.template.spec;
    let mut reqs = Requirements::default();
    for (i, r) in spec.requirements.iter().enumerate() {
        let (op, shift) = op_v1(r.operator);
        let raw = Raw {
            key: &r.key,
            op,
            shift,
            values: &r.values,
            min_values: r.min_values,
        };
        if let Err(e) = requirement(
            &format!("spec.template.spec.requirements[{i}]"),
            raw,
            &mut reqs,
        ) {
            errors.push(e);
        }
    }
    let pool = model::NodePool {
        name: name_of(&np.metadata),
        weight: np.spec.weight.unwrap_or(0),
        requirements: reqs,
        labels: labels(
            "spec.template.metadata.labels",
            &np.spec.template.metadata.labels,
            &mut errors,
        ),
        taints: taints("spec.template.spec.taints", &spec.taints, &mut errors),
        limits: limits("spec.limits", &np.spec.limits, &mut errors),
        usage: Resources::default(),
        instance_types: None,
    };
    if errors.is_empty() {
        Ok(pool)
    } else {
        Err(errors)
    }
}

/// A v1alpha5 Provisioner as the solver's pool. Its nodes are labelled
/// `karpenter.sh/provisioner-name` (so pods may select it, as the seed
/// suggests) as well as `karpenter.sh/nodepool`.
pub fn provisioner(p: &v1alpha5::Provisioner) -> Result<model::NodePool, Vec<FieldError>> {
    let mut errors = vec![];
    let mut reqs = Requirements::default();
    for (i, r) in p.spec.requirements.iter().enumerate() {
        let raw = Raw {
            key: &r.key,
            op: op_v1alpha5(r.operator),
            shift: 0,
            values: &r.values,
            min_values: None,
        };
        if let Err(e) = requirement(&format!("spec.requirements[{i}]"), raw, &mut reqs) {
            errors.push(e);
        }
    }
    let name = name_of(&p.metadata);
    let mut pool_labels = labels("spec.labels", &p.spec.labels, &mut errors);
    pool_labels.insert(LABEL_PROVISIONER.to_string(), name.clone());
    let pool = model::NodePool {
        name,
        weight: p.spec.weight.unwrap_or(0),
        requirements: reqs,
        labels: pool_labels,
        taints: taints("spec.taints", &p.spec.taints, &mut errors),
        limits: p
            .spec
            .limits
            .as_ref()
            .map(|l| limits("spec.limits.resources", &l.resources, &mut errors))
            .unwrap_or_default(),
        usage: Resources::default(),
        instance_types: None,
    };
    if errors.is_empty() {
        Ok(pool)
    } else {
        Err(errors)
    }
}
