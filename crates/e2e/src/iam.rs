//! The IAM policy documents (`deploy/iam`) against the AWS calls a running
//! component made: its `outrigger_aws_api_calls_total{service, operation}`
//! (every SDK call since it started, counted by the SDK call interceptor)
//! must each be an action its policy allows.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use outrigger_aws::iam::{Policy, action};

/// A policy document of `deploy/iam`, from the source tree.
pub fn policy(file: &str) -> Result<Policy> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/iam")
        .join(file);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Policy::parse(&text).with_context(|| path.display().to_string())
}

/// `outrigger_aws_api_calls_total{service="EC2",operation="CreateFleet"} 3`
/// lines of a `/metrics` page: (service, operation) -> calls.
pub fn calls(metrics: &str) -> BTreeMap<(String, String), u64> {
    let label = |labels: &str, key: &str| {
        let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
        let end = labels[start..].find('"')? + start;
        Some(labels[start..end].to_string())
    };
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("outrigger_aws_api_calls_total{")?;
            let (labels, value) = rest.split_once("} ")?;
            Some((
                (label(labels, "service")?, label(labels, "operation")?),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// The calls of the component serving its admin endpoints on `port`,
/// each checked against `deploy/iam/<policy_file>`. Fails on a call the
/// policy does not allow, and on none at all (every AWS component calls
/// AWS from its start: no vacuous pass). Returns a summary line.
pub async fn check_calls(component: &str, port: u16, policy_file: &str) -> Result<String> {
    let p = policy(policy_file)?;
    let (code, body) = crate::http_get(port, "/metrics")
        .await
        .with_context(|| format!("{component}'s /metrics on {port}"))?;
    if code != 200 {
        bail!("{component}'s /metrics: HTTP {code}");
    }
    let made = calls(&body);
    if made.is_empty() {
        bail!("{component} reports no AWS call: is outrigger_aws_api_calls_total on its /metrics?");
    }
    let mut refused = vec![];
    for ((service, op), n) in &made {
        match action(service, op) {
            Some(a) if p.allows(&a) => {}
            Some(a) => refused.push(format!(
                "{component}: {a} ({n} calls) is not allowed by deploy/iam/{policy_file}"
            )),
            None => refused.push(format!(
                "{component}: {service} {op}: no IAM service prefix known"
            )),
        }
    }
    if !refused.is_empty() {
        bail!("{}", refused.join("\n"));
    }
    Ok(format!(
        "{component}: {} actions, {} calls, all allowed by deploy/iam/{policy_file}: {}",
        made.len(),
        made.values().sum::<u64>(),
        made.keys()
            .filter_map(|(s, o)| action(s, o))
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_lines_are_read() {
        let text = "# TYPE outrigger_aws_api_calls counter\n\
            outrigger_aws_api_calls_total{service=\"EC2\",operation=\"CreateFleet\"} 3\n\
            outrigger_aws_api_calls_total{service=\"Elastic Load Balancing v2\",operation=\"CreateRule\"} 12\n\
            outrigger_leader 1\n";
        let c = calls(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[&("EC2".to_string(), "CreateFleet".to_string())], 3);
        assert_eq!(
            action("Elastic Load Balancing v2", "CreateRule").as_deref(),
            Some("elasticloadbalancing:CreateRule")
        );
    }
}
