//! What goes wrong building a stack, in words a user can act on: each
//! error names the annotation or field and, for a bad value, what would be
//! accepted.

use std::fmt;

use crate::model::StackId;

/// Why a Service's or an Ingress's stack cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A value an annotation (or an IngressClassParams field, named the
    /// same way) does not take.
    #[error(
        "invalid value \"{value}\" for annotation {annotation}: accepted values are {accepted}"
    )]
    InvalidAnnotation {
        /// The full key, e.g.
        /// `service.beta.kubernetes.io/aws-load-balancer-scheme`.
        annotation: String,
        value: String,
        /// Human text, e.g. `instance, ip`.
        accepted: String,
    },
    /// Values that are fine alone but not together (EIPs on an internal
    /// load balancer, a redirect to a port with no HTTPS listener, ...).
    #[error("annotation {annotation}: {message}")]
    AnnotationConflict { annotation: String, message: String },
    /// Members of one IngressGroup disagree on a setting that must be the
    /// same across the group.
    #[error("conflicting {setting} in IngressGroup {group}: {detail}")]
    GroupConflict {
        group: String,
        setting: String,
        detail: String,
    },
    /// A problem with the object's spec (a port, a backend, a path).
    #[error("{field}: {message}")]
    InvalidSpec { field: String, message: String },
    /// The IngressClass or its IngressClassParams cannot be used.
    #[error("IngressClass {class}: {message}")]
    IngressClass { class: String, message: String },
    /// More rules than one ALB listener takes.
    #[error(
        "IngressGroup {group} needs {rules} rules on port {port}; an ALB listener allows {limit}"
    )]
    TooManyRules {
        group: String,
        rules: usize,
        port: i32,
        limit: usize,
    },
}

impl ModelError {
    /// An [`ModelError::InvalidAnnotation`].
    pub fn invalid(annotation: &str, value: &str, accepted: impl Into<String>) -> Self {
        ModelError::InvalidAnnotation {
            annotation: annotation.to_string(),
            value: value.to_string(),
            accepted: accepted.into(),
        }
    }
    /// An [`ModelError::AnnotationConflict`].
    pub fn conflict(annotation: &str, message: impl Into<String>) -> Self {
        ModelError::AnnotationConflict {
            annotation: annotation.to_string(),
            message: message.into(),
        }
    }
    /// An [`ModelError::InvalidSpec`].
    pub fn spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError::InvalidSpec {
            field: field.into(),
            message: message.into(),
        }
    }
    /// The reason for an Event or a condition: a CamelCase word.
    pub fn reason(&self) -> &'static str {
        match self {
            ModelError::InvalidAnnotation { .. } | ModelError::AnnotationConflict { .. } => {
                "InvalidAnnotation"
            }
            ModelError::GroupConflict { .. } => "ConflictingSettings",
            ModelError::InvalidSpec { .. } => "InvalidSpec",
            ModelError::IngressClass { .. } => "InvalidIngressClass",
            ModelError::TooManyRules { .. } => "TooManyRules",
        }
    }
}

/// One Ingress and what is wrong with it (or with its group, as it
/// affects it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberError {
    pub namespace: String,
    pub name: String,
    pub error: ModelError,
}

/// Why an IngressGroup's stack cannot be built: every problem found, each
/// on the Ingress it concerns, so the controller can put an Event and a
/// condition on each. Problems of the whole group (conflicts, too many
/// rules) are on every member they involve. Nothing is built while any
/// member has an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupError {
    pub group: StackId,
    pub errors: Vec<MemberError>,
}

impl GroupError {
    /// The errors of one member.
    pub fn for_member<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ModelError> + 'a {
        self.errors
            .iter()
            .filter(move |e| e.namespace == namespace && e.name == name)
            .map(|e| &e.error)
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = self.group.tag_value();
        if self.errors.is_empty() {
            return write!(f, "IngressGroup {group} has no active member");
        }
        write!(f, "IngressGroup {group}:")?;
        for (i, e) in self.errors.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{}/{}: {}", e.namespace, e.name, e.error)?;
        }
        Ok(())
    }
}

impl std::error::Error for GroupError {}
