//! Helpers of the load balancer controller's tests: what ELBv2 and EC2 hold
//! (through the AWS CLI against moto), and addresses in object status.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::TestEnv;

fn json(env: &TestEnv, args: &[&str]) -> Result<Value> {
    let out = env.aws(args)?;
    serde_json::from_str(&out)
        .with_context(|| format!("parsing the output of aws {}", args.join(" ")))
}

/// The load balancer with this DNS name, if any.
pub fn load_balancer_by_dns(env: &TestEnv, dns: &str) -> Result<Option<Value>> {
    let v = json(
        env,
        &["elbv2", "describe-load-balancers", "--output", "json"],
    )?;
    Ok(v["LoadBalancers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["DNSName"].as_str().map(str::to_lowercase).as_deref() == Some(dns))
        .cloned())
}

pub fn target_groups_of(env: &TestEnv, lb_arn: &str) -> Result<Vec<Value>> {
    let v = json(
        env,
        &[
            "elbv2",
            "describe-target-groups",
            "--load-balancer-arn",
            lb_arn,
            "--output",
            "json",
        ],
    )?;
    Ok(v["TargetGroups"].as_array().cloned().unwrap_or_default())
}

/// The registered targets' IDs.
pub fn targets(env: &TestEnv, tg_arn: &str) -> Result<BTreeSet<String>> {
    let v = json(
        env,
        &[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            tg_arn,
            "--output",
            "json",
        ],
    )?;
    Ok(v["TargetHealthDescriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["Target"]["Id"].as_str().map(str::to_string))
        .collect())
}

pub fn listeners(env: &TestEnv, lb_arn: &str) -> Result<Vec<Value>> {
    let v = json(
        env,
        &[
            "elbv2",
            "describe-listeners",
            "--load-balancer-arn",
            lb_arn,
            "--output",
            "json",
        ],
    )?;
    Ok(v["Listeners"].as_array().cloned().unwrap_or_default())
}

/// A listener's rules other than the default, by priority.
pub fn rules(env: &TestEnv, listener_arn: &str) -> Result<Vec<Value>> {
    let v = json(
        env,
        &[
            "elbv2",
            "describe-rules",
            "--listener-arn",
            listener_arn,
            "--output",
            "json",
        ],
    )?;
    let mut rules: Vec<Value> = v["Rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["IsDefault"].as_bool() != Some(true))
        .cloned()
        .collect();
    rules.sort_by_key(|r| {
        r["Priority"]
            .as_str()
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(0)
    });
    Ok(rules)
}

pub fn load_balancer_attribute(env: &TestEnv, lb_arn: &str, key: &str) -> Result<Option<String>> {
    let v = json(
        env,
        &[
            "elbv2",
            "describe-load-balancer-attributes",
            "--load-balancer-arn",
            lb_arn,
            "--output",
            "json",
        ],
    )?;
    Ok(v["Attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["Key"].as_str() == Some(key))
        .and_then(|a| a["Value"].as_str().map(str::to_string)))
}

/// Everything tagged with `key=value`: load balancers and target groups
/// (ELBv2 ARNs) and security groups (EC2 IDs).
pub fn tagged(env: &TestEnv, key: &str, value: &str) -> Result<Vec<String>> {
    let mut arns: Vec<String> = vec![];
    let lbs = json(
        env,
        &["elbv2", "describe-load-balancers", "--output", "json"],
    )?;
    arns.extend(
        lbs["LoadBalancers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["LoadBalancerArn"].as_str().map(str::to_string)),
    );
    let tgs = json(
        env,
        &["elbv2", "describe-target-groups", "--output", "json"],
    )?;
    arns.extend(
        tgs["TargetGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["TargetGroupArn"].as_str().map(str::to_string)),
    );
    let mut out = vec![];
    for chunk in arns.chunks(20) {
        let mut args = vec![
            "elbv2",
            "describe-tags",
            "--output",
            "json",
            "--resource-arns",
        ];
        args.extend(chunk.iter().map(String::as_str));
        let v = json(env, &args)?;
        for d in v["TagDescriptions"].as_array().into_iter().flatten() {
            let hit = d["Tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["Key"].as_str() == Some(key) && t["Value"].as_str() == Some(value));
            if hit && let Some(a) = d["ResourceArn"].as_str() {
                out.push(a.to_string());
            }
        }
    }
    let filter = format!("Name=tag:{key},Values={value}");
    let sgs = json(
        env,
        &[
            "ec2",
            "describe-security-groups",
            "--filters",
            &filter,
            "--output",
            "json",
        ],
    )?;
    out.extend(
        sgs["SecurityGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["GroupId"].as_str().map(str::to_string)),
    );
    Ok(out)
}

/// `status.loadBalancer.ingress[0].hostname` of a Service or an Ingress.
pub fn hostname(obj: &Value) -> Option<String> {
    obj["status"]["loadBalancer"]["ingress"][0]["hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}
