//! CloudWatch Logs through the official AWS SDK for Rust, for the node
//! agent.
//!
//! - [`Logs::create_group`] and [`Logs::create_stream`]: created on demand,
//!   "already exists" being success; a retention set on a new group;
//! - [`Logs::put`]: one PutLogEvents call (the caller keeps batches within
//!   the limits, `outrigger_logs_core::batch`), its failure sorted into
//!   [`PutError`]: retry later (throttling, 5xx, the network), the group or
//!   stream is missing (create it and send again), or refused (a bad
//!   request: retrying would not help); events CloudWatch set aside as too
//!   old or too new are reported, not hidden;
//! - [`Logs::events`]: a stream's events in a time range, read back after
//!   a restart to learn whether the batch in flight when the agent died
//!   had landed.
//!
//! The SDK's own retries are off for this client: the agent retries
//! itself, with backoff, forever for what can succeed later, and counts
//! every retry in its metrics.

use aws_sdk_cloudwatchlogs::{
    Client,
    config::http::HttpResponse,
    error::{ProvideErrorMetadata, SdkError},
    types::InputLogEvent,
};
use outrigger_aws::{ApiError, Calls, SdkConfig};

/// The SDK's name for the service in [`Calls`].
pub const SERVICE: &str = "CloudWatch Logs";

/// Why a call failed, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Throttled, a server error, or no answer: send the same batch again
    /// after a while.
    #[error("retryable: {0}")]
    Retryable(ApiError),
    /// The group or the stream does not exist: create it, send again.
    #[error("missing group or stream: {0}")]
    Missing(ApiError),
    /// CloudWatch refused the request itself; sending it again would not
    /// help.
    #[error("refused: {0}")]
    Refused(ApiError),
}

impl PutError {
    pub fn api(&self) -> &ApiError {
        match self {
            PutError::Retryable(e) | PutError::Missing(e) | PutError::Refused(e) => e,
        }
    }
}

/// Codes worth sending again (the SDK's standard retry classes).
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "LimitExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
];

fn classify<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> PutError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let transport = matches!(
        e,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    );
    let api = ApiError::from_sdk(op, e);
    if api.code == "ResourceNotFoundException" {
        PutError::Missing(api)
    } else if transport
        || status.is_some_and(|s| s >= 500)
        || RETRYABLE_CODES.contains(&api.code.as_str())
    {
        PutError::Retryable(api)
    } else {
        PutError::Refused(api)
    }
}

/// What CloudWatch set aside from an accepted batch (indexes into it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Events before this index were too old for the group.
    pub too_old_end: Option<usize>,
    /// Events before this index were past the group's retention.
    pub expired_end: Option<usize>,
    /// Events from this index on were too far in the future.
    pub too_new_start: Option<usize>,
}

impl Rejected {
    /// How many events of a batch of `n` were set aside, and why.
    pub fn counts(&self, n: usize) -> Vec<(&'static str, usize)> {
        let mut out = vec![];
        let old = self
            .too_old_end
            .unwrap_or(0)
            .max(self.expired_end.unwrap_or(0));
        if let Some(e) = self.expired_end.filter(|e| *e > 0) {
            out.push(("expired", e.min(n)));
        }
        if let Some(e) = self
            .too_old_end
            .filter(|e| *e > self.expired_end.unwrap_or(0))
        {
            out.push(("too_old", e.min(n) - self.expired_end.unwrap_or(0).min(n)));
        }
        if let Some(s) = self.too_new_start.filter(|s| *s < n) {
            out.push(("too_new", n - s.max(old)));
        }
        out
    }
}

/// CloudWatch Logs for the agent.
#[derive(Clone, Debug)]
pub struct Logs {
    client: Client,
    calls: Calls,
}

impl Logs {
    /// A client from a loaded configuration, counting into `calls`, with
    /// the SDK's retries off (the caller retries).
    pub fn with_config(conf: &SdkConfig, calls: Calls) -> Self {
        let client = Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(conf)
                .retry_config(
                    aws_sdk_cloudwatchlogs::config::retry::RetryConfig::standard()
                        .with_max_attempts(1),
                )
                .interceptor(calls.clone())
                .build(),
        );
        Self { client, calls }
    }

    /// A client from the environment, counting its own calls.
    pub async fn new() -> Self {
        Self::with_config(&outrigger_aws::config().await, Calls::new())
    }

    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// Creates the group (success if it exists); a new group gets the
    /// retention, if one is given.
    pub async fn create_group(
        &self,
        group: &str,
        retention_days: Option<i32>,
    ) -> Result<(), PutError> {
        match self
            .client
            .create_log_group()
            .log_group_name(group)
            .send()
            .await
        {
            Ok(_) => {
                if let Some(days) = retention_days {
                    self.client
                        .put_retention_policy()
                        .log_group_name(group)
                        .retention_in_days(days)
                        .send()
                        .await
                        .map_err(|e| classify("PutRetentionPolicy", e))?;
                }
                Ok(())
            }
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(()),
            Err(e) => Err(classify("CreateLogGroup", e)),
        }
    }

    /// Creates the stream (success if it exists).
    pub async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError> {
        match self
            .client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(()),
            Err(e) => Err(classify("CreateLogStream", e)),
        }
    }

    /// One PutLogEvents call: `events` (time in ms, message) in time order.
    pub async fn put(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> Result<Rejected, PutError> {
        let events: Vec<InputLogEvent> = events
            .iter()
            .filter_map(|(ts, m)| {
                InputLogEvent::builder()
                    .timestamp(*ts)
                    .message(m.clone())
                    .build()
                    .ok()
            })
            .collect();
        match self
            .client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
        {
            Ok(out) => Ok(out
                .rejected_log_events_info()
                .map(|r| Rejected {
                    too_old_end: r.too_old_log_event_end_index().map(|i| i as usize),
                    expired_end: r.expired_log_event_end_index().map(|i| i as usize),
                    too_new_start: r.too_new_log_event_start_index().map(|i| i as usize),
                })
                .unwrap_or_default()),
            // From the time of sequence tokens: the batch was taken before.
            Err(e) if e.code() == Some("DataAlreadyAcceptedException") => Ok(Rejected::default()),
            Err(e) => Err(classify("PutLogEvents", e)),
        }
    }

    /// The stream's events with `start_ms <= time <= end_ms`, oldest first,
    /// every page.
    pub async fn events(
        &self,
        group: &str,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, String)>, PutError> {
        let mut out = vec![];
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_time(start_ms)
                .end_time(end_ms + 1)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| classify("GetLogEvents", e))?;
            let events = page.events();
            out.extend(events.iter().map(|e| {
                (
                    e.timestamp().unwrap_or(0),
                    e.message().unwrap_or("").to_string(),
                )
            }));
            let next = page.next_forward_token().map(str::to_string);
            // The last page repeats its token.
            if events.is_empty() || next.is_none() || next == token {
                return Ok(out);
            }
            token = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_counts() {
        let r = Rejected {
            too_old_end: Some(3),
            expired_end: Some(1),
            too_new_start: Some(8),
        };
        assert_eq!(
            r.counts(10),
            vec![("expired", 1), ("too_old", 2), ("too_new", 2)]
        );
        assert!(Rejected::default().counts(10).is_empty());
    }
}
