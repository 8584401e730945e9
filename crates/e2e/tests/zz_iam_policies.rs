//! The IAM policy documents (`deploy/iam`) against the AWS calls the
//! environment's long-running components really made. Cargo runs test
//! targets in name order, so this one runs after the other cluster tests:
//! each component's calls must be actions its policy allows (a call the
//! policy does not allow fails here before it would fail on EKS with
//! `AccessDenied`). The Cluster Autoscaler, which its own tests start and
//! stop, is checked at the end of its scale-out-and-in test.

use anyhow::{Context, Result, bail};
use outrigger_e2e::iam::{check_calls, policy};

/// name, policy document, admin port (the environment's defaults,
/// `testenv/scripts/lib.sh`).
fn components() -> Vec<(&'static str, &'static str, u16)> {
    let port = |var: &str, default: u16| {
        std::env::var(var)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(default)
    };
    vec![
        (
            "provisioner",
            "karpenter.json",
            port("PROVISIONER_ADMIN_PORT", 10352),
        ),
        (
            "load-balancer-controller",
            "load-balancer-controller.json",
            port("LB_CONTROLLER_ADMIN_PORT", 10353),
        ),
        (
            "node-agent-0",
            "node-agent.json",
            port("NODE_AGENT_ADMIN_PORT", 10360),
        ),
    ]
}

#[test]
fn every_policy_document_parses_and_names_each_action() -> Result<()> {
    for file in [
        "karpenter.json",
        "load-balancer-controller.json",
        "cluster-autoscaler.json",
        "node-agent.json",
    ] {
        let p = policy(file)?;
        for pattern in p.allowed_patterns() {
            let (service, op) = pattern
                .split_once(':')
                .with_context(|| format!("{file}: {pattern}"))?;
            if service.is_empty() || op.is_empty() || op.contains('*') {
                bail!("{file}: {pattern}: name each action, no wildcards");
            }
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn each_components_aws_calls_are_allowed_by_its_policy() -> Result<()> {
    // The environment, started if this runs alone.
    let _ = outrigger_e2e::env();
    let mut failed = vec![];
    for (component, file, port) in components() {
        match check_calls(component, port, file).await {
            Ok(summary) => eprintln!("{summary}"),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}
