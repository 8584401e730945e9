//! The agent's own metrics (`outrigger_node_agent_*` on `/metrics`): every
//! line read, every event delivered, retried or dropped (with the reason),
//! and what waits: a loss is never silent.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub lines_read: Counter,
    pub bytes_read: Counter,
    pub lines_unparsed: Family<ReasonLabel, Counter>,
    pub events_delivered: Family<GroupLabel, Counter>,
    pub bytes_delivered: Family<GroupLabel, Counter>,
    pub events_dropped: Family<ReasonLabel, Counter>,
    pub bytes_lost: Family<ReasonLabel, Counter>,
    pub requests: Family<ResultLabel, Counter>,
    pub retries: Family<ReasonLabel, Counter>,
    pub files_open: Gauge,
    pub files_gone: Counter,
    pub buffer_bytes: Gauge,
    pub pending_bytes: Gauge,
    pub batches_recovered: Family<ResultLabel, Counter>,
}

impl Metrics {
    pub fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("outrigger_node_agent");
        r.register(
            "lines_read",
            "Lines read from log files",
            self.lines_read.clone(),
        );
        r.register(
            "bytes_read",
            "Bytes read from log files",
            self.bytes_read.clone(),
        );
        r.register(
            "lines_unparsed",
            "Lines not in the CRI or Docker format, delivered as they are, by reason",
            self.lines_unparsed.clone(),
        );
        r.register(
            "events_delivered",
            "Events the sink accepted, by log group",
            self.events_delivered.clone(),
        );
        r.register(
            "bytes_delivered",
            "Message bytes the sink accepted, by log group",
            self.bytes_delivered.clone(),
        );
        r.register(
            "events_dropped",
            "Events not delivered, for good, by reason (too_old, too_new, expired: CloudWatch set them aside; refused: a request CloudWatch refused)",
            self.events_dropped.clone(),
        );
        r.register(
            "bytes_lost",
            "Bytes of log files never read, by reason (truncated: a copytruncate whose copy was not found; gone: deleted while the agent was down)",
            self.bytes_lost.clone(),
        );
        r.register(
            "requests",
            "Sink requests, by result (ok, throttled, server_error, missing, transport, refused)",
            self.requests.clone(),
        );
        r.register(
            "retries",
            "Batches sent again, by reason",
            self.retries.clone(),
        );
        r.register(
            "files_open",
            "Log files being read",
            self.files_open.clone(),
        );
        r.register(
            "files_gone",
            "Files being read at the last stop and found nowhere at the start (what they held past the checkpoint is lost)",
            self.files_gone.clone(),
        );
        r.register(
            "buffer_bytes",
            "Bytes in log files not yet delivered (the on-disk buffer: files are held open until delivered)",
            self.buffer_bytes.clone(),
        );
        r.register(
            "pending_bytes",
            "Bytes of events in memory waiting for, or in, a request",
            self.pending_bytes.clone(),
        );
        r.register(
            "batches_recovered",
            "Batches in flight at the last stop, checked at start, by result (landed, resent)",
            self.batches_recovered.clone(),
        );
    }

    pub fn reason(f: &Family<ReasonLabel, Counter>, reason: &str) -> Counter {
        f.get_or_create(&ReasonLabel {
            reason: reason.to_string(),
        })
        .clone()
    }

    pub fn result(f: &Family<ResultLabel, Counter>, result: &str) -> Counter {
        f.get_or_create(&ResultLabel {
            result: result.to_string(),
        })
        .clone()
    }

    pub fn group(f: &Family<GroupLabel, Counter>, group: &str) -> Counter {
        f.get_or_create(&GroupLabel {
            group: group.to_string(),
        })
        .clone()
    }
}
