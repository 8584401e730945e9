//! The systemd journal as the quickstart's dataplane pipeline ships it: an
//! entry of `journalctl --output=json` (kubelet, containerd and docker
//! units) becomes the record its `modify` filter leaves — `_HOSTNAME` as
//! `hostname`, `_SYSTEMD_UNIT` as `systemd_unit`, `MESSAGE` as `message`,
//! every other field removed — at the entry's realtime timestamp, in the
//! stream `<host>-dataplane.systemd.<unit>` (the `systemd` input's tag
//! `dataplane.systemd.*` takes the unit for its star).

use serde::Deserialize;
use serde_json::Value;

use crate::record::push_json_str;

/// One entry, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// Where it is in the journal (`--after-cursor` resumes after it).
    pub cursor: String,
    /// Milliseconds since the epoch.
    pub ts_ms: i64,
    /// `_SYSTEMD_UNIT`, if it has one.
    pub unit: Option<String>,
    /// The record: `{"hostname":…,"systemd_unit":…,"message":…}`, the
    /// fields it has.
    pub record: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JournalError {
    #[error("not a journal entry: {0}")]
    Json(String),
    #[error("an entry without {0}")]
    Missing(&'static str),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "__CURSOR")]
    cursor: Option<String>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<String>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<Value>,
    #[serde(rename = "_SYSTEMD_UNIT")]
    unit: Option<Value>,
    #[serde(rename = "MESSAGE")]
    message: Option<Value>,
}

/// A field's value as `journalctl --output=json` writes it: a string; an
/// array of bytes when it is not printable UTF-8; an array of those when
/// the field repeats (the first is kept); `null` when it was too large to
/// show (dropped).
fn field(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|b| b as u8)
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => items.first().and_then(field),
        _ => None,
    }
}

/// Parses one line of `journalctl --output=json`.
pub fn parse_entry(line: &[u8]) -> Result<JournalEntry, JournalError> {
    let raw: Raw = serde_json::from_slice(line).map_err(|e| JournalError::Json(e.to_string()))?;
    let cursor = raw.cursor.ok_or(JournalError::Missing("__CURSOR"))?;
    let micros: i64 = raw
        .realtime
        .as_deref()
        .and_then(|t| t.parse().ok())
        .ok_or(JournalError::Missing("__REALTIME_TIMESTAMP"))?;
    let hostname = raw.hostname.as_ref().and_then(field);
    let unit = raw.unit.as_ref().and_then(field);
    let message = raw.message.as_ref().and_then(field);
    let mut record = String::with_capacity(64 + message.as_ref().map_or(0, String::len));
    record.push('{');
    for (key, value) in [
        ("hostname", &hostname),
        ("systemd_unit", &unit),
        ("message", &message),
    ] {
        if let Some(v) = value {
            if record.len() > 1 {
                record.push(',');
            }
            push_json_str(&mut record, key);
            record.push(':');
            push_json_str(&mut record, v);
        }
    }
    record.push('}');
    Ok(JournalEntry {
        cursor,
        ts_ms: micros / 1000,
        unit,
        record,
    })
}

/// The stream of a unit's entries: `<host>-dataplane.systemd.<unit>`
/// (`unknown` for an entry without a unit, as Fluent Bit's `systemd`
/// input tags it).
pub fn stream(host: &str, unit: Option<&str>) -> String {
    format!("{host}-dataplane.systemd.{}", unit.unwrap_or("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_becomes_the_modify_filters_record() {
        let line = br#"{"__CURSOR":"s=abc;i=1f","__REALTIME_TIMESTAMP":"1764500000123456","__MONOTONIC_TIMESTAMP":"5","_HOSTNAME":"ip-10-0-1-1","_SYSTEMD_UNIT":"kubelet.service","MESSAGE":"I1130 \"quoted\" line","PRIORITY":"6","_PID":"812"}"#;
        let e = parse_entry(line).expect("entry");
        assert_eq!(e.cursor, "s=abc;i=1f");
        assert_eq!(e.ts_ms, 1_764_500_000_123);
        assert_eq!(e.unit.as_deref(), Some("kubelet.service"));
        assert_eq!(
            e.record,
            r#"{"hostname":"ip-10-0-1-1","systemd_unit":"kubelet.service","message":"I1130 \"quoted\" line"}"#
        );
        let v: Value = serde_json::from_str(&e.record).expect("json");
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
        assert_eq!(
            stream("ip-10-0-1-1", e.unit.as_deref()),
            "ip-10-0-1-1-dataplane.systemd.kubelet.service"
        );
        assert_eq!(stream("h", None), "h-dataplane.systemd.unknown");
    }

    #[test]
    fn binary_repeated_and_missing_fields() {
        // MESSAGE as bytes (not valid UTF-8), _HOSTNAME repeated, no unit.
        let line = br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"2000","_HOSTNAME":["a","b"],"MESSAGE":[104,105,255]}"#;
        let e = parse_entry(line).expect("entry");
        assert_eq!(e.ts_ms, 2);
        assert_eq!(e.unit, None);
        assert_eq!(e.record, "{\"hostname\":\"a\",\"message\":\"hi\u{fffd}\"}");
        // A field too large to show is null: left out.
        let e = parse_entry(br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":null}"#)
            .expect("entry");
        assert_eq!(e.record, "{}");
    }

    #[test]
    fn what_is_not_an_entry_is_an_error() {
        assert!(matches!(
            parse_entry(b"-- No entries --"),
            Err(JournalError::Json(_))
        ));
        assert_eq!(
            parse_entry(br#"{"__REALTIME_TIMESTAMP":"1"}"#),
            Err(JournalError::Missing("__CURSOR"))
        );
        assert_eq!(
            parse_entry(br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"soon"}"#),
            Err(JournalError::Missing("__REALTIME_TIMESTAMP"))
        );
    }
}
