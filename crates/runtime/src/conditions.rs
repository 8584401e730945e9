//! Status conditions in the `metav1.Condition` shape.
//!
//! [`set`] is pure: it updates a condition list the way the Kubernetes API
//! conventions ask (one entry per type, `lastTransitionTime` moved only when the
//! status changes) and reports whether anything changed, so a controller writes
//! status only when it must. [`patch_status`] writes the list with a merge patch
//! on the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Api, Resource, api::PatchParams};
use serde::de::DeserializeOwned;

/// The status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(b: bool) -> Self {
        if b { Status::True } else { Status::False }
    }
}

/// What a controller wants a condition to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: Status,
    /// CamelCase, non-empty.
    pub reason: &'a str,
    pub message: String,
    pub observed_generation: Option<i64>,
}

/// Error for a condition that breaks the API conventions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConditionError {
    #[error("condition type {0:?} is not CamelCase")]
    BadType(String),
    #[error("condition reason {0:?} must be non-empty CamelCase")]
    BadReason(String),
}

fn camel_case(s: &str) -> bool {
    // metav1.Condition: reason matches ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'))
        && !s.ends_with([',', ':'])
}

fn valid_type(s: &str) -> bool {
    // Either CamelCase or a prefixed name such as foo.example.com/CamelCase.
    let name = s.rsplit_once('/').map_or(s, |(_, n)| n);
    !s.is_empty() && s.len() <= 316 && camel_case(name)
}

/// Sets one condition in `conditions`. Returns `Ok(true)` if the list changed.
///
/// `lastTransitionTime` is set to `now` only when the condition is new or its
/// status changes; a change of reason, message or observed generation alone
/// keeps the old transition time.
pub fn set(
    conditions: &mut Vec<Condition>,
    d: Desired<'_>,
    now: jiff::Timestamp,
) -> Result<bool, ConditionError> {
    if !valid_type(d.type_) {
        return Err(ConditionError::BadType(d.type_.to_string()));
    }
    if !camel_case(d.reason) {
        return Err(ConditionError::BadReason(d.reason.to_string()));
    }
    let status = d.status.as_str();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == d.type_) {
        let mut changed = false;
        if c.status != status {
            c.status = status.to_string();
            c.last_transition_time = Time(now);
            changed = true;
        }
        if c.reason != d.reason {
            c.reason = d.reason.to_string();
            changed = true;
        }
        if c.message != d.message {
            c.message = d.message;
            changed = true;
        }
        if c.observed_generation != d.observed_generation {
            c.observed_generation = d.observed_generation;
            changed = true;
        }
        return Ok(changed);
    }
    conditions.push(Condition {
        type_: d.type_.to_string(),
        status: status.to_string(),
        reason: d.reason.to_string(),
        message: d.message,
        observed_generation: d.observed_generation,
        last_transition_time: Time(now),
    });
    Ok(true)
}

/// Finds a condition by type.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True if the condition of that type exists with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Writes `status.conditions` of a namespaced or cluster object through a
/// merge patch on its status subresource.
pub async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    conditions: &[Condition],
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({ "status": { "conditions": conditions } });
    api.patch_status(
        name,
        &PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap()
    }

    fn ready(status: Status, reason: &str, msg: &str) -> Desired<'static> {
        Desired {
            type_: "Ready",
            status,
            reason: Box::leak(reason.to_string().into_boxed_str()),
            message: msg.to_string(),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn adds_new_condition() {
        let mut cs = vec![];
        assert_eq!(
            set(&mut cs, ready(Status::True, "Launched", "ok"), t(10)),
            Ok(true)
        );
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].status, "True");
        assert_eq!(cs[0].last_transition_time, Time(t(10)));
    }

    #[test]
    fn same_status_keeps_transition_time() {
        let mut cs = vec![];
        set(&mut cs, ready(Status::False, "Pending", "a"), t(10)).unwrap();
        assert_eq!(
            set(&mut cs, ready(Status::False, "StillPending", "b"), t(20)),
            Ok(true)
        );
        assert_eq!(cs[0].last_transition_time, Time(t(10)));
        assert_eq!(cs[0].reason, "StillPending");
        assert_eq!(
            set(&mut cs, ready(Status::False, "StillPending", "b"), t(30)),
            Ok(false)
        );
        assert_eq!(
            set(&mut cs, ready(Status::True, "Ready", "b"), t(40)),
            Ok(true)
        );
        assert_eq!(cs[0].last_transition_time, Time(t(40)));
    }

    #[test]
    fn rejects_bad_reason_and_type() {
        let mut cs = vec![];
        assert!(set(&mut cs, ready(Status::True, "", "x"), t(1)).is_err());
        assert!(set(&mut cs, ready(Status::True, "has space", "x"), t(1)).is_err());
        let mut d = ready(Status::True, "Ok", "x");
        d.type_ = "9bad";
        assert!(set(&mut cs, d, t(1)).is_err());
        let mut d = ready(Status::True, "Ok", "x");
        d.type_ = "karpenter.sh/Ready";
        assert_eq!(set(&mut cs, d, t(1)), Ok(true));
        assert!(cs.iter().all(|c| c.type_ != "9bad"));
    }

    proptest! {
        /// Whatever sequence of updates: one entry per type, and the
        /// transition time is the time of the last status change.
        #[test]
        fn one_entry_per_type(ops in proptest::collection::vec((0usize..3, 0usize..3, 0usize..2), 0..40)) {
            let types = ["Ready", "Launched", "Registered"];
            let statuses = [Status::True, Status::False, Status::Unknown];
            let reasons = ["A", "B"];
            let mut cs = vec![];
            let mut last_change = std::collections::HashMap::new();
            let mut last_status = std::collections::HashMap::new();
            for (i, (ty, st, re)) in ops.into_iter().enumerate() {
                let now = t(i as i64 + 1);
                set(&mut cs, Desired { type_: types[ty], status: statuses[st], reason: reasons[re], message: String::new(), observed_generation: None }, now).unwrap();
                if last_status.get(&ty) != Some(&st) {
                    last_status.insert(ty, st);
                    last_change.insert(ty, now);
                }
            }
            let mut seen = std::collections::HashSet::new();
            for c in &cs {
                prop_assert!(seen.insert(c.type_.clone()));
                let ty = types.iter().position(|x| *x == c.type_).unwrap();
                prop_assert_eq!(&c.last_transition_time, &Time(last_change[&ty]));
                prop_assert_eq!(c.status.as_str(), statuses[last_status[&ty]].as_str());
            }
        }
    }
}
