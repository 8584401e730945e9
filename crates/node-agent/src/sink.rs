//! Where batches go: CloudWatch Logs, or a local file per log group.
//!
//! [`Sink::deliver`] returns only when the batch is delivered or refused
//! for good: throttling, server errors and network failures are retried
//! with backoff (200 ms doubling to 30 s, with jitter) for as long as it
//! takes, the tailers meanwhile held back by the agent's memory bound; a
//! missing group or stream is created and the batch sent again.

use std::{
    io::{Read, Seek, SeekFrom, Write},
    path::PathBuf,
    time::Duration,
};

use outrigger_aws_logs::{Logs, PutBody, PutError};
use tokio_util::sync::CancellationToken;

use crate::{
    checkpoint::{Probe, hash},
    metrics::Metrics,
};

/// One request's worth of events of one stream, in time order.
#[derive(Clone, Debug)]
pub struct Batch {
    pub group: String,
    pub stream: String,
    pub events: Vec<(i64, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; some events may have been set aside (reason, count).
    Delivered(Vec<(&'static str, usize)>),
    /// Refused for good (the reason).
    Refused(String),
    /// The agent is stopping; the batch stays in flight.
    Stopped,
}

#[derive(Clone, Debug)]
pub enum Sink {
    CloudWatch {
        logs: Logs,
        retention_days: Option<i32>,
    },
    File {
        dir: PathBuf,
    },
}

impl Sink {
    pub fn describe(&self) -> String {
        match self {
            Sink::CloudWatch { .. } => "CloudWatch Logs".to_string(),
            Sink::File { dir } => format!("files in {}", dir.display()),
        }
    }

    /// How many times a request in flight holds its events, counted
    /// against the memory bound: to CloudWatch twice (the batch and its
    /// body while the body is written, then the body alone, escaped and a
    /// little larger); to a file three times (the batch, and the text
    /// written, each event with its stream and time: about half as large
    /// again).
    pub fn in_flight_copies(&self) -> usize {
        match self {
            Sink::CloudWatch { .. } => 2,
            Sink::File { .. } => 3,
        }
    }

    /// Delivers `b`. To CloudWatch, its request body is written first and
    /// the events dropped: while in flight, and through its retries, a
    /// batch is held once, as that body.
    pub async fn deliver(&self, b: Batch, m: &Metrics, stop: &CancellationToken) -> Outcome {
        let (group, stream) = (b.group.clone(), b.stream.clone());
        let payload = match self {
            Sink::CloudWatch {
                logs,
                retention_days,
            } => {
                let body = PutBody::new(
                    &b.group,
                    &b.stream,
                    b.events.iter().map(|(ts, m)| (*ts, m.as_str())),
                );
                // The events live on in the body alone.
                drop(b);
                Payload::CloudWatch {
                    logs,
                    retention_days: *retention_days,
                    body,
                }
            }
            Sink::File { dir } => Payload::File { dir, batch: b },
        };
        let mut delay = Duration::from_millis(200);
        loop {
            let result = match &payload {
                Payload::CloudWatch {
                    logs,
                    retention_days,
                    body,
                } => match logs.put(body).await {
                    Err(PutError::Missing(_)) => {
                        Metrics::result(&m.requests, "missing").inc();
                        match create(logs, &group, &stream, *retention_days).await {
                            Ok(()) => continue,
                            Err(e) => Err(e),
                        }
                    }
                    other => other.map(|r| r.counts(body.events())),
                },
                Payload::File { dir, batch } => {
                    write_file(dir, batch).map(|()| vec![]).map_err(|e| {
                        PutError::Retryable(outrigger_aws::ApiError {
                            op: "write",
                            code: "IoError".into(),
                            message: e.to_string(),
                        })
                    })
                }
            };
            match result {
                Ok(rejected) => {
                    Metrics::result(&m.requests, "ok").inc();
                    return Outcome::Delivered(rejected);
                }
                Err(PutError::Refused(e)) => {
                    Metrics::result(&m.requests, "refused").inc();
                    return Outcome::Refused(e.to_string());
                }
                Err(e) => {
                    let reason = retry_reason(&e);
                    Metrics::result(&m.requests, reason).inc();
                    Metrics::reason(&m.retries, reason).inc();
                    tracing::warn!(group = %group, stream = %stream, error = %e, retry_in = ?delay, "sending a batch failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return Outcome::Stopped,
                        _ = tokio::time::sleep(jitter(delay)) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Whether a batch whose first and last events are these is in the
    /// stream (read back after a restart).
    pub async fn landed(
        &self,
        group: &str,
        stream: &str,
        first: Probe,
        last: Probe,
    ) -> Result<bool, String> {
        let events: Vec<(i64, String)> = match self {
            Sink::CloudWatch { logs, .. } => {
                match logs.events(group, stream, first.ts, last.ts).await {
                    Ok(e) => e,
                    Err(PutError::Missing(_)) => return Ok(false),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Sink::File { dir } => read_file_tail(dir, group, stream).map_err(|e| e.to_string())?,
        };
        let found = |p: Probe| {
            events
                .iter()
                .any(|(ts, m)| *ts == p.ts && hash(m.as_bytes()) == p.hash)
        };
        Ok(found(first) && found(last))
    }
}

/// What a delivery sends on each attempt: a batch's request body (its
/// events dropped once it is written), or the batch for the file sink.
enum Payload<'a> {
    CloudWatch {
        logs: &'a Logs,
        retention_days: Option<i32>,
        body: PutBody,
    },
    File {
        dir: &'a std::path::Path,
        batch: Batch,
    },
}

async fn create(
    logs: &Logs,
    group: &str,
    stream: &str,
    retention_days: Option<i32>,
) -> Result<(), PutError> {
    logs.create_group(group, retention_days).await?;
    logs.create_stream(group, stream).await
}

fn retry_reason(e: &PutError) -> &'static str {
    let code = e.api().code.as_str();
    if code.contains("Throttl")
        || code.contains("TooManyRequests")
        || code.contains("LimitExceeded")
    {
        "throttled"
    } else if code == "IoError" {
        "io"
    } else if code == "Unknown" {
        "transport"
    } else {
        "server_error"
    }
}

fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    // 75% to 125% of the delay.
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}

/// The file of a group: `/aws/containerinsights/demo/application` ->
/// `aws_containerinsights_demo_application.log`, one JSON object a line:
/// `{"stream":…,"timestamp":…,"message":…}`, the message (a record or an
/// EMF event, JSON objects both) embedded as it is, not as a string.
pub fn group_file(dir: &std::path::Path, group: &str) -> PathBuf {
    let name: String = group
        .trim_start_matches('/')
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    dir.join(format!("{name}.log"))
}

#[derive(serde::Deserialize)]
struct FileEvent<'a> {
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    timestamp: i64,
    #[serde(borrow)]
    message: &'a serde_json::value::RawValue,
}

fn write_file(dir: &std::path::Path, b: &Batch) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut stream = String::new();
    outrigger_logs_core::record::push_json_str(&mut stream, &b.stream);
    let mut out = String::with_capacity(b.events.iter().map(|e| e.1.len() + 64).sum());
    for (ts, m) in &b.events {
        out.push_str("{\"stream\":");
        out.push_str(&stream);
        out.push_str(",\"timestamp\":");
        out.push_str(&ts.to_string());
        out.push_str(",\"message\":");
        // The agent's messages are JSON objects; anything else is written
        // as a string.
        if m.starts_with('{') && m.ends_with('}') {
            out.push_str(m);
        } else {
            outrigger_logs_core::record::push_json_str(&mut out, m);
        }
        out.push_str("}\n");
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(group_file(dir, &b.group))?;
    f.write_all(out.as_bytes())
}

/// The last few MiB of a group's file, the stream's events in it (a batch
/// in flight at a crash was the last written, if it was).
fn read_file_tail(
    dir: &std::path::Path,
    group: &str,
    stream: &str,
) -> std::io::Result<Vec<(i64, String)>> {
    let mut f = match std::fs::File::open(group_file(dir, group)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let from = len.saturating_sub(8 << 20);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = vec![];
    f.read_to_end(&mut bytes)?;
    Ok(bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<FileEvent<'_>>(l).ok())
        .filter(|e| e.stream == stream)
        .map(|e| {
            let raw = e.message.get();
            // A message written as a string reads back as that string.
            let m = if raw.starts_with('"') {
                serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string())
            } else {
                raw.to_string()
            };
            (e.timestamp, m)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_sink_writes_and_finds_a_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = Sink::File {
            dir: dir.path().to_path_buf(),
        };
        let b = Batch {
            group: "/aws/containerinsights/demo/application".into(),
            stream: "n1-application.x".into(),
            events: vec![(1, r#"{"log":"one"}"#.into()), (2, "two \"2\"".into())],
        };
        let probe = |ts, m: &str| Probe {
            ts,
            hash: hash(m.as_bytes()),
        };
        let (first, last) = (probe(1, r#"{"log":"one"}"#), probe(2, "two \"2\""));
        assert_eq!(
            sink.landed(&b.group, &b.stream, first, last).await,
            Ok(false)
        );
        let out = sink
            .deliver(b.clone(), &Metrics::default(), &CancellationToken::new())
            .await;
        assert_eq!(out, Outcome::Delivered(vec![]));
        assert_eq!(
            sink.landed(&b.group, &b.stream, first, last).await,
            Ok(true)
        );
        assert_eq!(sink.landed(&b.group, "other", first, last).await, Ok(false));
        let text = std::fs::read_to_string(
            dir.path()
                .join("aws_containerinsights_demo_application.log"),
        )
        .expect("file");
        assert_eq!(text.lines().count(), 2);
    }
}
