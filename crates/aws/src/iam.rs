//! IAM, as far as Outrigger needs it to prove its policy documents
//! (`deploy/iam/*.json`) sufficient: the IAM action of an SDK call, and
//! whether a policy document allows an action.
//!
//! The evaluation is at the level of actions: an explicit `Deny` whose
//! `Action` (or `NotAction`) covers the action wins, then any `Allow` that
//! covers it. `Resource` and `Condition` narrow where an allowed action
//! applies (the Cluster Autoscaler's tag condition on its groups); they
//! are not evaluated here, so a call this says is allowed can still be
//! refused on a resource the policy does not name. Action patterns match
//! case-insensitively with IAM's `*` and `?` wildcards.

use serde_json::Value;

/// The IAM service prefix of an SDK service, by the service ID the SDK's
/// call metadata carries (`EC2`, `ElasticLoadBalancingv2`, ...).
pub fn service_prefix(sdk_service: &str) -> Option<&'static str> {
    Some(
        match sdk_service
            .to_ascii_lowercase()
            .replace([' ', '-'], "")
            .as_str()
        {
            "ec2" => "ec2",
            "elasticloadbalancingv2" | "elasticloadbalancing" => "elasticloadbalancing",
            "autoscaling" => "autoscaling",
            "cloudwatchlogs" | "logs" => "logs",
            "cloudwatch" => "cloudwatch",
            "sqs" => "sqs",
            "sts" => "sts",
            "iam" => "iam",
            "ssm" => "ssm",
            "pricing" => "pricing",
            "acm" => "acm",
            "wafv2" => "wafv2",
            "shield" => "shield",
            _ => return None,
        },
    )
}

/// The IAM action of an SDK call (`EC2`, `CreateFleet` ->
/// `ec2:CreateFleet`); `None` for a service this does not know.
pub fn action(sdk_service: &str, operation: &str) -> Option<String> {
    Some(format!("{}:{operation}", service_prefix(sdk_service)?))
}

/// What is wrong with a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("Version must be \"2012-10-17\", found {0}")]
    Version(String),
    #[error("no Statement")]
    NoStatement,
    #[error("statement {0}: Effect must be Allow or Deny")]
    Effect(usize),
    #[error("statement {0}: exactly one of Action and NotAction")]
    Action(usize),
    #[error("statement {0}: an action must be a string `service:Operation`, found {1}")]
    ActionValue(usize, String),
    #[error("statement {0}: exactly one of Resource and NotResource")]
    Resource(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    /// `Action` patterns, or `NotAction` patterns when `not`.
    patterns: Vec<String>,
    not: bool,
}

impl Statement {
    fn covers(&self, action: &str) -> bool {
        let hit = self.patterns.iter().any(|p| matches(p, action));
        hit != self.not
    }
}

/// A parsed IAM identity policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses a policy document: `Version` 2012-10-17, `Statement` an
    /// object or a list, each with `Effect`, one of `Action`/`NotAction`
    /// and one of `Resource`/`NotResource`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        match doc.get("Version") {
            Some(Value::String(v)) if v == "2012-10-17" => {}
            other => {
                return Err(PolicyError::Version(
                    other
                        .map(Value::to_string)
                        .unwrap_or_else(|| "nothing".into()),
                ));
            }
        }
        let statements: Vec<&Value> = match doc.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
            Some(s @ Value::Object(_)) => vec![s],
            _ => return Err(PolicyError::NoStatement),
        };
        let mut out = vec![];
        for (i, s) in statements.into_iter().enumerate() {
            let allow = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err(PolicyError::Effect(i)),
            };
            let (patterns, not) = match (s.get("Action"), s.get("NotAction")) {
                (Some(a), None) => (a, false),
                (None, Some(a)) => (a, true),
                _ => return Err(PolicyError::Action(i)),
            };
            let patterns: Vec<String> = match patterns {
                Value::String(p) => vec![p.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|p| p.as_str().map(str::to_string).ok_or_else(|| p.to_string()))
                    .collect::<Result<_, _>>()
                    .map_err(|v| PolicyError::ActionValue(i, v))?,
                other => return Err(PolicyError::ActionValue(i, other.to_string())),
            };
            if let Some(p) = patterns.iter().find(|p| *p != "*" && !p.contains(':')) {
                return Err(PolicyError::ActionValue(i, p.clone()));
            }
            if s.get("Resource").is_some() == s.get("NotResource").is_some() {
                return Err(PolicyError::Resource(i));
            }
            out.push(Statement {
                allow,
                patterns,
                not,
            });
        }
        Ok(Self { statements: out })
    }

    /// Whether the policy allows `action` (`ec2:CreateFleet`): no `Deny`
    /// covers it and an `Allow` does.
    pub fn allows(&self, action: &str) -> bool {
        let covering = |allow: bool| {
            self.statements
                .iter()
                .any(|s| s.allow == allow && s.covers(action))
        };
        !covering(false) && covering(true)
    }

    /// Every action pattern the policy's `Allow` statements name.
    pub fn allowed_patterns(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .filter(|s| s.allow && !s.not)
            .flat_map(|s| s.patterns.iter().map(String::as_str))
    }
}

/// IAM's action pattern match: case-insensitive, `*` any run of
/// characters, `?` any one.
pub fn matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    // Iterative wildcard match with backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < a.len() {
        if i < p.len() && (p[i] == '?' || p[i] == a[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_calls_are_named_as_iam_names_them() {
        assert_eq!(
            action("EC2", "CreateFleet").as_deref(),
            Some("ec2:CreateFleet")
        );
        assert_eq!(
            action("ElasticLoadBalancingv2", "CreateRule").as_deref(),
            Some("elasticloadbalancing:CreateRule")
        );
        assert_eq!(
            action("AutoScaling", "SetDesiredCapacity").as_deref(),
            Some("autoscaling:SetDesiredCapacity")
        );
        assert_eq!(
            action("CloudWatchLogs", "PutLogEvents").as_deref(),
            Some("logs:PutLogEvents")
        );
        assert_eq!(
            action("SQS", "ReceiveMessage").as_deref(),
            Some("sqs:ReceiveMessage")
        );
        assert_eq!(action("Nonesuch", "Do"), None);
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(matches("ec2:Describe*", "ec2:DescribeInstances"));
        assert!(matches("EC2:describe*", "ec2:DescribeInstances"));
        assert!(matches("*", "sqs:ReceiveMessage"));
        assert!(matches("ec2:*Instances", "ec2:TerminateInstances"));
        assert!(matches("ec2:Describe?nstances", "ec2:DescribeInstances"));
        assert!(matches("ec2:*a*a*", "ec2:CreateFleetAndLaunchTemplate"));
        assert!(!matches("ec2:Describe*", "ec2:CreateFleet"));
        assert!(!matches("ec2:CreateFleet", "ec2:CreateFleets"));
        assert!(!matches("ec2:Describe?", "ec2:Describe"));
        assert!(!matches("elasticloadbalancing:*", "ec2:DescribeSubnets"));
    }

    const DOC: &str = r#"{
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:CreateFleet"], "Resource": "*"},
            {"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*",
             "Condition": {"StringLike": {"ec2:ResourceTag/karpenter.sh/nodepool": "*"}}},
            {"Effect": "Deny", "Action": "ec2:DescribeSpotPriceHistory", "Resource": "*"}
        ]
    }"#;

    #[test]
    fn allow_statements_allow_and_a_deny_wins() {
        let p = Policy::parse(DOC).unwrap();
        assert!(p.allows("ec2:DescribeInstances"));
        assert!(p.allows("ec2:CreateFleet"));
        // Conditions narrow the resources; the action is allowed.
        assert!(p.allows("ec2:TerminateInstances"));
        assert!(!p.allows("ec2:DescribeSpotPriceHistory"));
        assert!(!p.allows("ec2:RunInstances"));
        assert!(!p.allows("sqs:ReceiveMessage"));
        assert_eq!(
            p.allowed_patterns().collect::<Vec<_>>(),
            ["ec2:Describe*", "ec2:CreateFleet", "ec2:TerminateInstances"]
        );
    }

    #[test]
    fn not_action_allows_everything_else() {
        let p = Policy::parse(
            r#"{"Version": "2012-10-17", "Statement":
                {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}"#,
        )
        .unwrap();
        assert!(p.allows("ec2:CreateFleet"));
        assert!(!p.allows("iam:PassRole"));
    }

    #[test]
    fn a_malformed_document_says_what_is_wrong() {
        let e = |s: &str| Policy::parse(s).unwrap_err().to_string();
        assert!(e("{").starts_with("not JSON"));
        assert_eq!(
            e(r#"{"Version": "2008-10-17", "Statement": []}"#),
            "Version must be \"2012-10-17\", found \"2008-10-17\""
        );
        assert_eq!(e(r#"{"Version": "2012-10-17"}"#), "no Statement");
        assert_eq!(
            e(
                r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]}"#
            ),
            "statement 0: Effect must be Allow or Deny"
        );
        assert_eq!(
            e(r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}"#),
            "statement 0: exactly one of Action and NotAction"
        );
        assert_eq!(
            e(
                r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "CreateFleet", "Resource": "*"}]}"#
            ),
            "statement 0: an action must be a string `service:Operation`, found CreateFleet"
        );
        assert_eq!(
            e(
                r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*"}]}"#
            ),
            "statement 0: exactly one of Resource and NotResource"
        );
    }
}
