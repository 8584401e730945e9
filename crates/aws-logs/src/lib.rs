//! CloudWatch Logs through the official AWS SDK for Rust, for the node
//! agent.
//!
//! - [`Logs::create_group`] and [`Logs::create_stream`]: created on demand,
//!   "already exists" being success; a retention set on a new group;
//! - [`Logs::put`]: one PutLogEvents call (the caller keeps batches within
//!   the limits, `outrigger_logs_core::batch`) with a [`PutBody`] written
//!   once, its failure sorted into
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
};
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use outrigger_aws::{ApiError, Calls, SdkConfig};

/// A PutLogEvents request's JSON body, written once into a buffer of its
/// exact size (the SDK's serializer grows its buffer by doubling, up to
/// twice a batch, beside the events it copied): what the SDK would write,
/// `{"logGroupName":…,"logStreamName":…,"logEvents":[{"timestamp":…,"message":…},…]}`,
/// its strings escaped as the SDK escapes them.
#[derive(Clone, Debug)]
pub struct PutBody {
    group: String,
    stream: String,
    bytes: Bytes,
    events: usize,
}

impl PutBody {
    /// The body of `events` (time in ms, message), in time order.
    pub fn new<'a, I>(group: &str, stream: &str, events: I) -> Self
    where
        I: IntoIterator<Item = (i64, &'a str)>,
        I::IntoIter: Clone,
    {
        let events = events.into_iter();
        let mut len = r#"{"logGroupName":,"logStreamName":,"logEvents":[]}"#.len()
            + escaped_len(group)
            + escaped_len(stream);
        let mut n: usize = 0;
        for (ts, m) in events.clone() {
            len += r#"{"timestamp":,"message":}"#.len() + digits(ts) + escaped_len(m);
            n += 1;
        }
        // The commas between events.
        len += n.saturating_sub(1);
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(br#"{"logGroupName":"#);
        push_escaped(&mut out, group);
        out.extend_from_slice(br#","logStreamName":"#);
        push_escaped(&mut out, stream);
        out.extend_from_slice(br#","logEvents":["#);
        for (i, (ts, m)) in events.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"timestamp":"#);
            out.extend_from_slice(ts.to_string().as_bytes());
            out.extend_from_slice(br#","message":"#);
            push_escaped(&mut out, m);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        // Sized exactly: never grown (checked by the tests' debug build).
        debug_assert_eq!((out.len(), out.capacity()), (len, len));
        PutBody {
            group: group.to_string(),
            stream: stream.to_string(),
            bytes: Bytes::from(out),
            events: n,
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// How many events it holds.
    pub fn events(&self) -> usize {
        self.events
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What a byte becomes in a JSON string, as the SDK writes it.
fn escape(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x0C => b"\\f",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        _ => return None,
    })
}

fn escaped_len(s: &str) -> usize {
    let mut n = s.len() + 2;
    for &b in s.as_bytes() {
        if b < 0x20 || b == b'"' || b == b'\\' {
            n += escape(b).map_or(5, |e| e.len() - 1);
        }
    }
    n
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[from..i]);
        match escape(b) {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

fn digits(n: i64) -> usize {
    let sign = usize::from(n < 0);
    sign + n
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1)
}

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

    /// One PutLogEvents call with `body` (the group, the stream and the
    /// events are in it). The SDK builds, signs and sends the request as
    /// for any call; only its body is the one written before, so a batch
    /// in flight is held once, and a retry sends the same bytes.
    pub async fn put(&self, body: &PutBody) -> Result<Rejected, PutError> {
        let (bytes, len) = (body.bytes.clone(), body.bytes.len());
        match self
            .client
            .put_log_events()
            .log_group_name(&body.group)
            .log_stream_name(&body.stream)
            .customize()
            // Before signing: the signature covers this body.
            .mutate_request(move |req| {
                *req.body_mut() = SdkBody::from(bytes.clone());
                req.headers_mut().insert("content-length", len.to_string());
            })
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

    /// The SDK's own serializer's output for the same input (its shape
    /// functions, as generated for PutLogEvents, through the public JSON
    /// writer they use).
    fn sdk_body(group: &str, stream: &str, events: &[(i64, &str)]) -> String {
        use aws_smithy_json::serialize::JsonObjectWriter;
        let mut out = String::new();
        let mut object = JsonObjectWriter::new(&mut out);
        object.key("logGroupName").string(group);
        object.key("logStreamName").string(stream);
        let mut array = object.key("logEvents").start_array();
        for (ts, m) in events {
            let mut e = array.value().start_object();
            e.key("timestamp")
                .number(aws_smithy_types::Number::NegInt(*ts));
            e.key("message").string(m);
            e.finish();
        }
        array.finish();
        object.finish();
        out
    }

    #[test]
    fn the_body_is_what_the_sdk_writes_in_a_buffer_of_its_size() {
        let cases: Vec<Vec<(i64, &str)>> = vec![
            vec![],
            vec![(0, "")],
            vec![(
                1_764_000_000_123,
                r#"{"log":"a \"quoted\" \\ line\n","stream":"stdout"}"#,
            )],
            vec![
                (-5, "tab\there\r\n\u{8}\u{c}\u{1}\u{1f}\u{7f} é ☃"),
                (9, "x"),
            ],
            vec![(10, "plain"); 100],
        ];
        for events in cases {
            let body = PutBody::new("/aws/g \"q\"", "n1.host.messages", events.iter().copied());
            let want = sdk_body("/aws/g \"q\"", "n1.host.messages", &events);
            assert_eq!(std::str::from_utf8(body.as_bytes()).expect("utf-8"), want);
            assert_eq!(body.len(), want.len());
            assert_eq!(body.events(), events.len());
        }
        for n in [0i64, 9, 10, 99, 100, -1, -10, i64::MAX, i64::MIN] {
            assert_eq!(digits(n), n.to_string().len(), "{n}");
        }
    }

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
