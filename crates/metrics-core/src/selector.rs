//! Field selectors in the string form of list requests
//! (`?fieldSelector=metadata.name=web-1`); label selectors
//! (`?labelSelector=app=web,env in (a,b)`) are `outrigger-values`'.

pub use outrigger_values::selector::{LabelSelector, SelectorError};

fn err(input: &str, reason: impl Into<String>) -> SelectorError {
    SelectorError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// A field selector over `metadata.name` and `metadata.namespace`, the fields
/// metrics-server supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let s = input.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut out = vec![];
        for part in s.split(',') {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(err(input, "expected field=value or field!=value"));
            };
            let k = k.trim();
            if k != "metadata.name" && k != "metadata.namespace" {
                return Err(err(
                    input,
                    format!(
                        "field {k:?} is not supported (supported: metadata.name, metadata.namespace)"
                    ),
                ));
            }
            out.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(Self(out))
    }

    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let actual = if k == "metadata.name" {
                name
            } else {
                namespace
            };
            (actual == v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_garbage() {
        assert!(FieldSelector::parse("spec.nodeName=x").is_err());
    }

    #[test]
    fn field_selector() {
        let f =
            FieldSelector::parse("metadata.name=web-1,metadata.namespace!=kube-system").unwrap();
        assert!(f.matches("web-1", "default"));
        assert!(!f.matches("web-1", "kube-system"));
        assert!(!f.matches("web-2", "default"));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(&s);
        }
    }
}
