//! CloudWatch Logs' PutLogEvents limits, and batches kept within them.
//!
//! A call takes at most 10,000 events and 1,048,576 bytes, counted as each
//! message's UTF-8 bytes plus 26; its events span at most 24 hours and are
//! sent in time order; one event is at most 1 MB (Fluent Bit's
//! `cloudwatch_logs` sends up to 1,000,000 bytes a message since AWS raised
//! the limit from 256 KB).

/// Bytes counted per event on top of its message.
pub const EVENT_OVERHEAD: usize = 26;
/// Bytes in one PutLogEvents call (messages + overheads).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Events in one PutLogEvents call.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Time between a call's first and last event.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3_600 * 1_000;
/// Bytes of one event's message.
pub const MAX_MESSAGE_BYTES: usize = 1_000_000;

/// A batch being filled: whether the next event still fits.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    bytes: usize,
    events: usize,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

impl Limits {
    /// Whether an event of `message_len` bytes at `ms` fits.
    pub fn fits(&self, message_len: usize, ms: i64) -> bool {
        if self.events == 0 {
            return true;
        }
        let lo = self.first_ms.map_or(ms, |f| f.min(ms));
        let hi = self.last_ms.map_or(ms, |l| l.max(ms));
        self.events < MAX_BATCH_EVENTS
            && self.bytes + message_len + EVENT_OVERHEAD <= MAX_BATCH_BYTES
            && hi - lo <= MAX_BATCH_SPAN_MS
    }

    /// Counts an event in.
    pub fn add(&mut self, message_len: usize, ms: i64) {
        self.bytes += message_len + EVENT_OVERHEAD;
        self.events += 1;
        self.first_ms = Some(self.first_ms.map_or(ms, |f| f.min(ms)));
        self.last_ms = Some(self.last_ms.map_or(ms, |l| l.max(ms)));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn events(&self) -> usize {
        self.events
    }
}

/// Cuts `message` into pieces of at most [`MAX_MESSAGE_BYTES`] at UTF-8
/// character boundaries (an event CloudWatch would refuse is sent in
/// pieces, never dropped).
pub fn split_message(message: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = message;
    while rest.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let mut l = Limits::default();
        assert!(
            l.fits(MAX_BATCH_BYTES * 2, 0),
            "the first event always fits"
        );
        l.add(MAX_BATCH_BYTES - EVENT_OVERHEAD - 100, 0);
        assert!(l.fits(100 - EVENT_OVERHEAD, 0));
        assert!(!l.fits(100 - EVENT_OVERHEAD + 1, 0));
        let mut l = Limits::default();
        for _ in 0..MAX_BATCH_EVENTS {
            assert!(l.fits(1, 5));
            l.add(1, 5);
        }
        assert!(!l.fits(1, 5));
        let mut l = Limits::default();
        l.add(1, 1_000);
        assert!(l.fits(1, 1_000 + MAX_BATCH_SPAN_MS));
        assert!(!l.fits(1, 1_001 + MAX_BATCH_SPAN_MS));
        assert!(!l.fits(1, 999 - MAX_BATCH_SPAN_MS));
    }

    #[test]
    fn long_messages_split_on_characters() {
        let s = "é".repeat(MAX_MESSAGE_BYTES);
        let parts = split_message(&s);
        assert_eq!(parts.concat(), s);
        assert!(parts.iter().all(|p| p.len() <= MAX_MESSAGE_BYTES));
        assert_eq!(split_message("short"), vec!["short"]);
    }
}
