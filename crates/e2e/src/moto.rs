//! The test environment's moto extensions (`testenv/aws/README.md`), for
//! behaviours of AWS that moto lacks.

use anyhow::{Context, Result};
use serde_json::Value;

use crate::TestEnv;

const INSUFFICIENT_CAPACITY: &str = "/outrigger-ext/insufficient-capacity";

/// Calls the insufficient-capacity endpoint: `POST` adds an entry, `DELETE`
/// removes every entry the pattern covers, `GET` lists them. Returns the
/// set afterwards.
pub fn insufficient_capacity(env: &TestEnv, method: &str, pattern: &Value) -> Result<Vec<Value>> {
    let v = call(env, INSUFFICIENT_CAPACITY, method, pattern)?;
    v["insufficientCapacity"]
        .as_array()
        .cloned()
        .with_context(|| format!("{method} {INSUFFICIENT_CAPACITY}: {v}"))
}

/// `curl -X <method>` of an extension endpoint with a JSON body; its JSON
/// answer.
fn call(env: &TestEnv, path: &str, method: &str, body: &Value) -> Result<Value> {
    let url = format!(
        "{}{path}",
        env.vars
            .get("AWS_ENDPOINT_URL")
            .context("AWS_ENDPOINT_URL is not in the environment's env file")?
    );
    let body = body.to_string();
    let out = env.run(
        "curl",
        &[
            "-sS",
            "--fail-with-body",
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            &url,
        ],
    )?;
    serde_json::from_str(&out).with_context(|| format!("{method} {url}: {out}"))
}

/// Offerings without capacity while it lives: EC2's CreateFleet (type
/// `instant`) reports `InsufficientInstanceCapacity` for them. Dropping it
/// removes what it added, also when the test fails.
pub struct NoCapacity<'a> {
    env: &'a TestEnv,
    pattern: Value,
}

impl<'a> NoCapacity<'a> {
    /// `pattern`: `{"instanceType", "zone", "capacityType"}`, each `"*"` or
    /// left out for any. Use an instance type no concurrent test launches.
    pub fn inject(env: &'a TestEnv, pattern: Value) -> Result<Self> {
        insufficient_capacity(env, "POST", &pattern)?;
        Ok(Self { env, pattern })
    }
}

impl Drop for NoCapacity<'_> {
    fn drop(&mut self) {
        if let Err(e) = insufficient_capacity(self.env, "DELETE", &self.pattern) {
            eprintln!(
                "clearing the injected insufficient capacity {}: {e:#}",
                self.pattern
            );
        }
    }
}

const LOGS_FAULTS: &str = "/outrigger-ext/logs-faults";

/// Calls the CloudWatch Logs fault endpoint (`POST` a rule, `DELETE` rules,
/// `GET`); returns its state afterwards (`logsFaults`, `injected`,
/// `limits`).
pub fn logs_faults(env: &TestEnv, method: &str, body: &Value) -> Result<Value> {
    call(env, LOGS_FAULTS, method, body)
}

/// CloudWatch Logs faults while it lives (throttling, 5xx); dropping it
/// clears every rule, also when the test fails.
pub struct LogsFaults<'a> {
    env: &'a TestEnv,
}

impl<'a> LogsFaults<'a> {
    /// `rule`: `{"operation": "PutLogEvents", "throttle": 0.3, "serverError": 0.05}`.
    pub fn inject(env: &'a TestEnv, rule: Value) -> Result<Self> {
        logs_faults(env, "POST", &rule)?;
        Ok(Self { env })
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> Result<Value> {
        Ok(logs_faults(self.env, "GET", &Value::Null)?["injected"].clone())
    }
}

impl Drop for LogsFaults<'_> {
    fn drop(&mut self) {
        let _ = logs_faults(self.env, "DELETE", &serde_json::json!({"operation": "*"}));
    }
}
