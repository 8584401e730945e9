//! What every AWS product crate (`outrigger-aws-ec2`, `outrigger-aws-elb`,
//! and the next ones) shares, so each of them pulls only its own SDK crate:
//!
//! - [`config`]: the SDK configuration from the environment (region,
//!   credentials, `AWS_ENDPOINT_URL`) with one retry policy: standard mode,
//!   10 attempts with exponential backoff and jitter, so throttling and
//!   transient errors are retried the same way by every component;
//! - [`Calls`]: one interceptor that counts every API call by service and
//!   operation (executions, not retry attempts), attached to each client;
//! - [`ApiError`]: an AWS error code and message with the operation that
//!   failed, read the same way from every service's errors;
//! - [`iam`]: the IAM action of each call and whether a policy document
//!   allows it (the components' policies in `deploy/iam` are checked
//!   against the calls they make).

pub mod iam;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{Intercept, context::BeforeSerializationInterceptorContextRef},
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::{config_bag::ConfigBag, error::metadata::ProvideErrorMetadata};
use outrigger_runtime::sync::LockExt;

pub use aws_config::SdkConfig;

/// Attempts per call, the first included (the AWS Load Balancer
/// Controller's and Karpenter's choice for throttled APIs).
pub const MAX_ATTEMPTS: u32 = 10;

/// The SDK configuration from the environment, with [`MAX_ATTEMPTS`]
/// standard-mode retries.
pub async fn config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}

/// Counts API calls by (service, operation) as the SDK names them
/// (`EC2`/`CreateFleet`, `Elastic Load Balancing v2`/`CreateRule`). Cheap
/// to clone; every clone counts into the same table. Attach it to a client
/// with its config builder's `.interceptor(calls.clone())`.
#[derive(Clone, Debug)]
pub struct Calls(Arc<Mutex<Table>>);

type Table = BTreeMap<(String, String), u64>;

/// Every [`Calls`] table of the process, for [`AllCalls`].
static LIVE: Mutex<Vec<std::sync::Weak<Mutex<Table>>>> = Mutex::new(Vec::new());

impl Default for Calls {
    fn default() -> Self {
        let table = Arc::new(Mutex::new(Table::new()));
        let mut live = LIVE.locked();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&table));
        Self(table)
    }
}

impl Calls {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls made to `service` so far.
    pub fn total(&self, service: &str) -> u64 {
        self.0
            .locked()
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every (service, operation) and its count.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.0.locked().clone()
    }

    fn count(&self, service: &str, operation: &str) {
        *self
            .0
            .locked()
            .entry((service.to_string(), operation.to_string()))
            .or_insert(0) += 1;
    }
}

/// `outrigger_aws_api_calls_total{service, operation}`: the calls every
/// client of the process has made so far (the sum of its [`Calls`]
/// tables), for a component's `/metrics`:
/// `registry.register_collector(Box::new(AllCalls))`. The IAM policy
/// documents are checked against it.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllCalls;

impl AllCalls {
    /// The process's calls by (service, operation), summed over its tables.
    pub fn snapshot() -> Table {
        let tables: Vec<Arc<Mutex<Table>>> = LIVE
            .locked()
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        let mut sum = Table::new();
        for t in tables {
            for (k, n) in t.locked().iter() {
                *sum.entry(k.clone()).or_insert(0) += n;
            }
        }
        sum
    }
}

impl prometheus_client::collector::Collector for AllCalls {
    fn encode(
        &self,
        mut enc: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{
            encoding::EncodeMetric,
            metrics::{TypedMetric, counter::ConstCounter},
        };
        let calls = Self::snapshot();
        let mut family = enc.encode_descriptor(
            "outrigger_aws_api_calls",
            "AWS API calls made since start, by service and operation as the SDK names them",
            None,
            <ConstCounter<u64> as TypedMetric>::TYPE,
        )?;
        for ((service, operation), n) in &calls {
            let labels = [
                ("service", service.as_str()),
                ("operation", operation.as_str()),
            ];
            ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "OutriggerCallCounter"
    }

    // Once per execution (not per retry attempt), and after the operation's
    // own configuration (its `Metadata`) is in the bag: a client
    // interceptor's `read_before_execution` runs before it is, and saw no
    // operation at all.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.count(m.service(), m.name());
        }
        Ok(())
    }
}

/// An AWS API error: the operation, the service's error code
/// (`InsufficientInstanceCapacity`, `TooManyRules`, `ValidationError`...)
/// and its message (at most 400 characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {code}: {message}")]
pub struct ApiError {
    pub op: &'static str,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// Reads any SDK error (`SdkError<E, R>` of every service implements
    /// both traits).
    pub fn from_sdk<E: ProvideErrorMetadata + std::fmt::Display>(op: &'static str, e: E) -> Self {
        Self {
            op,
            code: e.code().unwrap_or("Unknown").to_string(),
            message: e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
                .chars()
                .take(400)
                .collect(),
        }
    }
}

/// `map_err(api("CreateFleet"))`: an SDK error as an [`ApiError`] converted
/// into the caller's error type.
pub fn api<E, T>(op: &'static str) -> impl FnOnce(E) -> T
where
    E: ProvideErrorMetadata + std::fmt::Display,
    T: From<ApiError>,
{
    move |e| T::from(ApiError::from_sdk(op, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_count_by_service_and_operation() {
        let c = Calls::new();
        let d = c.clone();
        c.count("EC2", "CreateFleet");
        d.count("EC2", "CreateFleet");
        c.count("EC2", "DescribeSubnets");
        c.count("Elastic Load Balancing v2", "CreateRule");
        assert_eq!(c.total("EC2"), 3);
        assert_eq!(c.total("Elastic Load Balancing v2"), 1);
        assert_eq!(c.total("Auto Scaling"), 0);
        assert_eq!(
            c.snapshot()[&("EC2".to_string(), "CreateFleet".to_string())],
            2
        );
    }

    #[test]
    fn all_calls_sums_the_live_tables_on_metrics() {
        let a = Calls::new();
        let b = Calls::new();
        a.count("SQS", "TestOnlyOperation");
        b.count("SQS", "TestOnlyOperation");
        b.count("SQS", "TestOnlyOther");
        let key = |op: &str| ("SQS".to_string(), op.to_string());
        // Other tests' tables count other operations.
        assert_eq!(AllCalls::snapshot()[&key("TestOnlyOperation")], 2);
        let mut r = prometheus_client::registry::Registry::default();
        r.register_collector(Box::new(AllCalls));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains(
                r#"outrigger_aws_api_calls_total{service="SQS",operation="TestOnlyOperation"} 2"#
            ),
            "{text}"
        );
        // A dropped client's table is no longer summed.
        drop(b);
        assert_eq!(AllCalls::snapshot()[&key("TestOnlyOperation")], 1);
        assert!(!AllCalls::snapshot().contains_key(&key("TestOnlyOther")));
    }
}
