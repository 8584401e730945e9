//! Label selectors: `metav1.LabelSelector` (match labels and match
//! expressions) and the string form of list requests
//! (`app=web,tier!=db,env in (a,b),!legacy`), with one matcher for both.

use std::{collections::BTreeMap, fmt};

/// A match-expression operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SelectorOp {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl SelectorOp {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "In" => Self::In,
            "NotIn" => Self::NotIn,
            "Exists" => Self::Exists,
            "DoesNotExist" => Self::DoesNotExist,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "In",
            Self::NotIn => "NotIn",
            Self::Exists => "Exists",
            Self::DoesNotExist => "DoesNotExist",
        }
    }
}

/// One match expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SelectorExpr {
    pub key: String,
    pub op: SelectorOp,
    pub values: Vec<String>,
}

impl SelectorExpr {
    pub fn new(key: &str, op: SelectorOp, values: &[&str]) -> Self {
        Self {
            key: key.to_string(),
            op,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn matches(&self, have: Option<&str>) -> bool {
        match self.op {
            SelectorOp::In => have.is_some_and(|v| self.values.iter().any(|x| x == v)),
            SelectorOp::NotIn => have.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            SelectorOp::Exists => have.is_some(),
            SelectorOp::DoesNotExist => have.is_none(),
        }
    }
}

/// A `metav1.LabelSelector`. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<SelectorExpr>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid selector {input:?}: {reason}")]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> SelectorError {
    SelectorError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl LabelSelector {
    /// A selector of exact labels.
    pub fn labels(pairs: &[(&str, &str)]) -> Self {
        Self {
            match_labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            match_expressions: vec![],
        }
    }

    /// True if it matches everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Matches labels looked up through `get`.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self
                .match_expressions
                .iter()
                .all(|e| e.matches(get(&e.key)))
    }

    /// Parses the string form of a list request's `labelSelector`:
    /// `k=v` / `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
    /// comma-separated. Empty selects everything.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let s = input.trim();
        let mut out = Self::default();
        if s.is_empty() {
            return Ok(out);
        }
        for part in split_top(s)? {
            let p = part.trim();
            if p.is_empty() {
                return Err(err(input, "empty requirement"));
            }
            let (key, op, values, single) = if let Some(k) = p.strip_prefix('!') {
                (k.trim(), SelectorOp::DoesNotExist, vec![], false)
            } else if let Some((k, v)) = p.split_once("!=") {
                (
                    k.trim(),
                    SelectorOp::NotIn,
                    vec![v.trim().to_string()],
                    true,
                )
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                (k.trim(), SelectorOp::In, vec![v.trim().to_string()], true)
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                (k.trim(), SelectorOp::NotIn, set_values(input, rest)?, false)
            } else if let Some((k, rest)) = p.split_once(" in ") {
                (k.trim(), SelectorOp::In, set_values(input, rest)?, false)
            } else {
                (p, SelectorOp::Exists, vec![], false)
            };
            if !valid_key(key) {
                return Err(err(input, format!("invalid label key {key:?}")));
            }
            if single && let Some(v) = values.iter().find(|v| !valid_value(v)) {
                return Err(err(input, format!("invalid label value {v:?}")));
            }
            out.match_expressions.push(SelectorExpr {
                key: key.to_string(),
                op,
                values,
            });
        }
        Ok(out)
    }
}

/// The string form (`a=b,c in (x,y),!d`); empty for the empty selector.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for e in &self.match_expressions {
            parts.push(match e.op {
                SelectorOp::In => format!("{} in ({})", e.key, e.values.join(",")),
                SelectorOp::NotIn => format!("{} notin ({})", e.key, e.values.join(",")),
                SelectorOp::Exists => e.key.clone(),
                SelectorOp::DoesNotExist => format!("!{}", e.key),
            });
        }
        write!(f, "{}", parts.join(","))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = vec![];
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(err(s, "unbalanced ')'"));
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(err(s, "unbalanced '('"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn set_values(input: &str, rest: &str) -> Result<Vec<String>, SelectorError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| err(input, "expected a parenthesised value list"))?;
    let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if vals.iter().any(|v| !valid_value(v)) {
        return Err(err(input, "invalid value in set"));
    }
    Ok(vals)
}

#[cfg(feature = "k8s")]
mod k8s {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

    use super::*;

    impl TryFrom<&meta::LabelSelector> for LabelSelector {
        type Error = String;

        /// A selector as the API holds it; an unknown operator is an error
        /// naming it (Kubernetes' own validation refuses it too).
        fn try_from(s: &meta::LabelSelector) -> Result<Self, String> {
            let mut out = LabelSelector {
                match_labels: s.match_labels.clone().unwrap_or_default(),
                match_expressions: vec![],
            };
            for e in s.match_expressions.iter().flatten() {
                let op = SelectorOp::parse(&e.operator).ok_or_else(|| {
                    format!(
                        "unknown label selector operator {:?} (In, NotIn, Exists, DoesNotExist)",
                        e.operator
                    )
                })?;
                out.match_expressions.push(SelectorExpr {
                    key: e.key.clone(),
                    op,
                    values: e.values.clone().unwrap_or_default(),
                });
            }
            Ok(out)
        }
    }

    /// Whether the API's selector selects these labels; a selector with an
    /// unknown operator selects nothing.
    pub fn selects(s: &meta::LabelSelector, labels: &BTreeMap<String, String>) -> bool {
        LabelSelector::try_from(s).is_ok_and(|s| s.matches(labels))
    }
}

#[cfg(feature = "k8s")]
pub use k8s::selects;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches() {
        let s =
            LabelSelector::parse("app=web,tier!=db,env in (prod, staging),!legacy,team").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "a")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("team", "a"),
            ("legacy", "1")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        let s = LabelSelector::parse("env notin (a,b)").unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("env", "a")])));
        assert!(
            LabelSelector::parse("")
                .unwrap()
                .matches(&labels(&[("x", "y")]))
        );
        assert!(
            LabelSelector::parse("app==web")
                .unwrap()
                .matches(&labels(&[("app", "web")]))
        );
        // Two values for one key in the string form: nothing matches both.
        assert!(
            !LabelSelector::parse("a=b,a=c")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(LabelSelector::parse("a in (b").is_err());
        assert!(LabelSelector::parse("a=b,,c").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn match_labels_and_expressions() {
        let mut s = LabelSelector::labels(&[("app", "web")]);
        s.match_expressions
            .push(SelectorExpr::new("zone", SelectorOp::In, &["a", "b"]));
        s.match_expressions
            .push(SelectorExpr::new("legacy", SelectorOp::DoesNotExist, &[]));
        assert!(s.matches(&labels(&[("app", "web"), ("zone", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("zone", "c")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("zone", "a"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("zone", "a")])));
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert_eq!(s.to_string(), "app=web,zone in (a,b),!legacy");
    }

    #[cfg(feature = "k8s")]
    #[test]
    fn from_the_api() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        let api = meta::LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![meta::LabelSelectorRequirement {
                key: "env".into(),
                operator: "NotIn".into(),
                values: Some(vec!["dev".into()]),
            }]),
        };
        assert!(selects(&api, &labels(&[("app", "web"), ("env", "prod")])));
        assert!(!selects(&api, &labels(&[("app", "web"), ("env", "dev")])));
        let bad = meta::LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![meta::LabelSelectorRequirement {
                key: "env".into(),
                operator: "Like".into(),
                values: None,
            }]),
        };
        assert!(!selects(&bad, &labels(&[])));
        assert!(
            LabelSelector::try_from(&bad)
                .unwrap_err()
                .contains("\"Like\"")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = LabelSelector::parse(&s);
        }

        #[test]
        fn string_form_round_trips(
            keys in proptest::collection::vec("[a-z]{1,5}", 0..4),
            vals in proptest::collection::vec("[a-z0-9]{1,4}", 1..3),
        ) {
            let mut s = LabelSelector::default();
            for (i, k) in keys.iter().enumerate() {
                let op = [SelectorOp::In, SelectorOp::NotIn, SelectorOp::Exists, SelectorOp::DoesNotExist][i % 4];
                let values = if matches!(op, SelectorOp::In | SelectorOp::NotIn) { vals.clone() } else { vec![] };
                s.match_expressions.push(SelectorExpr { key: k.clone(), op, values });
            }
            prop_assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
        }
    }
}
