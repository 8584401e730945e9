//! Records as Fluent Bit's quickstart pipeline writes them to CloudWatch
//! Logs, so Logs Insights queries written for it keep working:
//!
//! - a container line (`tail` with the `cri`/`docker` multiline parsers, then
//!   the `kubernetes` filter with `Merge_Log On`, key `log_processed`):
//!   `{"time":…,"stream":"stdout","_p":"F","log":…,"log_processed":{…},"kubernetes":{…}}`
//!   (`_p` for CRI files only; `log_processed` when the line is a JSON
//!   object);
//! - a host line: `{"message":…}` for `dmesg`, and the `syslog` parser's
//!   `{"host":…,"ident":…,"pid":…,"message":…}` for `messages` and `secure`.
//!
//! Content that is not UTF-8 is written with U+FFFD in place of the bad
//! bytes (CloudWatch Logs takes UTF-8 only).

use std::collections::BTreeMap;

use crate::{Format, reassemble::Entry};

/// What the `kubernetes` filter adds, for one container's file.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Kubernetes {
    pub pod_name: String,
    pub namespace_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod_id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub container_name: String,
    pub docker_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_hash: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_image: String,
}

impl Kubernetes {
    /// The object as JSON, written once per file and copied into each of
    /// its records.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Appends `s` as a JSON string (quotes included), escaped as JSON
/// requires (`"`, `\\`, control characters; the rest as it is).
pub fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte escaped is ASCII: the slices end on character
        // boundaries.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// One container entry as a record. `kubernetes` is [`Kubernetes::to_json`]
/// of its file (or `None` when the pod is not known: the record then has
/// no `kubernetes` key, as Fluent Bit's when its lookup fails).
pub fn container(entry: &Entry, format: Format, kubernetes: Option<&str>) -> String {
    let mut out = String::new();
    container_into(
        &mut out,
        &entry.time,
        entry.stream,
        &entry.content,
        format,
        kubernetes,
    );
    out
}

/// [`container`]'s record of an entry's parts, appended to `out`.
pub fn container_into(
    out: &mut String,
    time: &str,
    stream: crate::Stream,
    content: &[u8],
    format: Format,
    kubernetes: Option<&str>,
) {
    let log = String::from_utf8_lossy(content);
    out.reserve(log.len() + 96 + kubernetes.map_or(0, str::len));
    out.push_str("{\"time\":");
    push_json_str(out, time);
    out.push_str(",\"stream\":\"");
    out.push_str(stream.as_str());
    out.push('"');
    if format == Format::Cri {
        out.push_str(",\"_p\":\"F\"");
    }
    out.push_str(",\"log\":");
    push_json_str(out, &log);
    if log.starts_with('{') && is_json_object(&log) {
        out.push_str(",\"log_processed\":");
        out.push_str(log.trim_end());
    }
    if let Some(k) = kubernetes {
        out.push_str(",\"kubernetes\":");
        out.push_str(k);
    }
    out.push('}');
}

/// The fields the quickstart's `aws` filter adds to host and dataplane
/// records (its defaults: `az`, `ec2_instance_id`), as a fragment to
/// append to a record; `None` when neither is known.
pub fn aws_fields(az: Option<&str>, ec2_instance_id: Option<&str>) -> Option<String> {
    let mut out = String::new();
    for (key, value) in [("az", az), ("ec2_instance_id", ec2_instance_id)] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push(',');
            push_json_str(&mut out, key);
            out.push(':');
            push_json_str(&mut out, v);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `fields` (from [`aws_fields`]) added at the end of the JSON object
/// `record`.
pub fn append_fields(record: &mut String, fields: &str) {
    if record.ends_with('}') {
        record.pop();
        if record.len() == 1 {
            // `{}`: no comma before the first field.
            record.push_str(&fields[1..]);
        } else {
            record.push_str(fields);
        }
        record.push('}');
    }
}

/// Valid JSON, starting with `{` (checked without building it).
fn is_json_object(s: &str) -> bool {
    s.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

/// A `dmesg` line: `{"message":…}`.
pub fn dmesg(line: &[u8]) -> String {
    let mut out = String::from("{\"message\":");
    push_json_str(&mut out, &String::from_utf8_lossy(line));
    out.push('}');
    out
}

/// A syslog line (`/var/log/messages`, `/var/log/secure`) as the
/// quickstart's `syslog` parser reads it:
/// `<Mon> <day> <HH:MM:SS> <host> <ident>[<pid>]: <message>`; a line that
/// does not match is kept whole as `{"log":…}` (Fluent Bit keeps unparsed
/// records under its input key, `log`).
pub fn syslog(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::from("{");
    match parse_syslog(&text) {
        Some(s) => {
            out.push_str("\"host\":");
            push_json_str(&mut out, s.host);
            out.push_str(",\"ident\":");
            push_json_str(&mut out, s.ident);
            if let Some(pid) = s.pid {
                out.push_str(",\"pid\":");
                push_json_str(&mut out, pid);
            }
            out.push_str(",\"message\":");
            push_json_str(&mut out, s.message);
        }
        None => {
            out.push_str("\"log\":");
            push_json_str(&mut out, &text);
        }
    }
    out.push('}');
    out
}

/// The fields of a syslog line.
#[derive(Debug, PartialEq, Eq)]
pub struct Syslog<'a> {
    /// `Nov 30 10:00:00` (the year is not written).
    pub time: &'a str,
    pub host: &'a str,
    pub ident: &'a str,
    pub pid: Option<&'a str>,
    pub message: &'a str,
}

/// Reads `<time> <host> <ident>[<pid>]: <message>`, the time being three
/// words with the day possibly space-padded (`Nov  3 10:00:00`).
pub fn parse_syslog(line: &str) -> Option<Syslog<'_>> {
    let month_end = line.find(' ')?;
    let after_month = line[month_end..].trim_start_matches(' ');
    let day_end = after_month.find(' ')?;
    let after_day = &after_month[day_end + 1..];
    let clock_end = after_day.find(' ')?;
    let time_len = line.len() - after_day.len() + clock_end;
    let time = &line[..time_len];
    let rest = &after_day[clock_end + 1..];
    let (host, rest) = rest.split_once(' ')?;
    let ident_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"_/.-".contains(b))
        .count();
    let ident = &rest[..ident_len];
    let mut rest = &rest[ident_len..];
    let mut pid = None;
    if let Some(r) = rest.strip_prefix('[')
        && let Some((p, r)) = r.split_once(']')
        && !p.is_empty()
        && p.bytes().all(|b| b.is_ascii_digit())
    {
        pid = Some(p);
        rest = r;
    }
    // Up to and including the first `:`, then spaces.
    let message = match rest.split_once(':') {
        Some((_, m)) => m.trim_start_matches(' '),
        None => rest.trim_start_matches(' '),
    };
    (!host.is_empty() && !ident.is_empty()).then_some(Syslog {
        time,
        host,
        ident,
        pid,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Marks, Stream};

    fn entry(content: &[u8]) -> Entry {
        Entry {
            time: "2026-11-30T10:00:00.1Z".into(),
            stream: Stream::Stderr,
            content: content.to_vec(),
            split: false,
            marks: Marks::default(),
        }
    }

    #[test]
    fn container_records_as_fluent_bit_writes_them() {
        let k = Kubernetes {
            pod_name: "web-1".into(),
            namespace_name: "default".into(),
            pod_id: "uid".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            host: "n1".into(),
            container_name: "nginx".into(),
            docker_id: "abc".into(),
            ..Default::default()
        }
        .to_json();
        let r = container(&entry(b"hello \"x\""), Format::Cri, Some(&k));
        assert_eq!(
            r,
            r#"{"time":"2026-11-30T10:00:00.1Z","stream":"stderr","_p":"F","log":"hello \"x\"","kubernetes":{"pod_name":"web-1","namespace_name":"default","pod_id":"uid","labels":{"app":"web"},"host":"n1","container_name":"nginx","docker_id":"abc"}}"#
        );
        let r = container(&entry(br#"{"level":"info"}"#), Format::Docker, None);
        assert_eq!(
            r,
            r#"{"time":"2026-11-30T10:00:00.1Z","stream":"stderr","log":"{\"level\":\"info\"}","log_processed":{"level":"info"}}"#
        );
        let v: serde_json::Value =
            serde_json::from_str(&container(&entry(b"bad \xff utf8"), Format::Cri, None))
                .expect("valid JSON");
        assert_eq!(v["log"], "bad \u{fffd} utf8");
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for t in [
            "plain",
            "q\"b\\s",
            "nl\ncr\rtab\t",
            "ctl\u{1}\u{1f}\u{8}\u{c}",
            "é ü 日本",
            "",
        ] {
            let mut ours = String::new();
            push_json_str(&mut ours, t);
            assert_eq!(ours, serde_json::to_string(t).expect("json"), "{t:?}");
        }
    }

    #[test]
    fn syslog_lines() {
        let s = parse_syslog("Nov  3 10:00:01 ip-10-0-1-1 systemd[1]: Started Session 5.")
            .expect("parses");
        assert_eq!(s.time, "Nov  3 10:00:01");
        assert_eq!(s.host, "ip-10-0-1-1");
        assert_eq!(s.ident, "systemd");
        assert_eq!(s.pid, Some("1"));
        assert_eq!(s.message, "Started Session 5.");
        let s = parse_syslog("Nov 30 10:00:01 h kernel: eth0: link up").expect("parses");
        assert_eq!(
            (s.ident, s.pid, s.message),
            ("kernel", None, "eth0: link up")
        );
        assert_eq!(
            syslog(b"Nov 30 10:00:01 h sshd[42]: Accepted key"),
            r#"{"host":"h","ident":"sshd","pid":"42","message":"Accepted key"}"#
        );
        assert_eq!(syslog(b"nonsense"), r#"{"log":"nonsense"}"#);
        assert_eq!(dmesg(b"[0.0] Linux"), r#"{"message":"[0.0] Linux"}"#);
    }

    #[test]
    fn the_aws_filters_fields_end_the_record() {
        let f = aws_fields(Some("ap-southeast-1a"), Some("i-0abc")).expect("fields");
        let mut r = r#"{"message":"x"}"#.to_string();
        append_fields(&mut r, &f);
        assert_eq!(
            r,
            r#"{"message":"x","az":"ap-southeast-1a","ec2_instance_id":"i-0abc"}"#
        );
        let mut empty = "{}".to_string();
        append_fields(&mut empty, &aws_fields(None, Some("i-1")).expect("one"));
        assert_eq!(empty, r#"{"ec2_instance_id":"i-1"}"#);
        assert_eq!(aws_fields(None, Some("")), None);
        let mut not_json = "plain".to_string();
        append_fields(&mut not_json, &f);
        assert_eq!(not_json, "plain");
    }
}
