//! One log file being read: its bytes cut into lines from where delivery
//! stopped, each line parsed and pieced together into entries, each entry
//! made a record.

use std::{
    fs::File,
    os::unix::fs::{FileExt, MetadataExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use outrigger_logs_core::{
    Entry, Format, Marks, Multiline, ParseError, Reassembler, StartRule, Stream, batch, parse,
    record,
};

use crate::{
    checkpoint::{FileKey, hash},
    ledger::{Ledger, Skip},
    metrics::Metrics,
};

/// Leading bytes that identify a file's content.
pub const FINGERPRINT_BYTES: u64 = 256;
/// A line longer than this without a newline is cut here (its rest read as
/// the next line): memory stays bounded whatever a file holds.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Lines pieced together up to this size (longer ones are delivered in
/// pieces); with its record around it, an entry stays within CloudWatch's
/// event limit (`batch::MAX_MESSAGE_BYTES`) unless escaping grows it.
pub const MAX_ENTRY_BYTES: usize = 960 << 10;

/// What a file holds, and so how its lines become records.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A container's log (CRI or Docker JSON), with its `kubernetes`
    /// object as JSON.
    Container { kubernetes: Option<Arc<str>> },
    /// `/var/log/dmesg`: `{"message":…}`.
    Dmesg,
    /// `/var/log/messages`, `/var/log/secure`: the syslog parser's fields.
    Syslog,
}

/// An event waiting for its batch.
#[derive(Debug)]
pub struct Event {
    pub ts: i64,
    pub message: String,
    /// The file and the lines this event acknowledges.
    pub file: u64,
    pub marks: Marks,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn now_rfc3339() -> String {
    format_rfc3339(std::time::SystemTime::now())
}

fn format_rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// H. Hinnant's inverse of days_from_civil.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The key of an open file: device, inode, and the hash of its first
/// bytes (up to [`FINGERPRINT_BYTES`]).
pub fn key_of(file: &File, size: u64) -> std::io::Result<FileKey> {
    let meta = file.metadata()?;
    let len = size.min(FINGERPRINT_BYTES) as usize;
    let mut head = vec![0u8; len];
    file.read_exact_at(&mut head, 0)?;
    Ok(FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        fp_len: len as u32,
        fp_hash: hash(&head),
    })
}

/// Whether `file`'s first bytes still hash as `key` says.
pub fn same_head(file: &File, key: &FileKey) -> bool {
    let mut head = vec![0u8; key.fp_len as usize];
    file.read_exact_at(&mut head, 0).is_ok() && hash(&head) == key.fp_hash
}

pub struct Tailed {
    pub id: u64,
    pub key: FileKey,
    pub path: PathBuf,
    pub stream: usize,
    pub file: File,
    /// Bytes of the file consumed (the carry included).
    pub pos: u64,
    carry: Vec<u8>,
    pub ledger: Ledger,
    pub skip: Skip,
    reassembler: Reassembler,
    multiline: Option<[Multiline; 2]>,
    pub kind: Kind,
    /// Moved away or truncated: read to its end, then closed.
    pub rotated_at: Option<Instant>,
    /// Read to its end and flushed: closed once its lines are delivered.
    pub finished: bool,
    pub last_data: Instant,
    format: Format,
    /// Its hard link in the on-disk buffer's directory ([`crate::held`]).
    pub held: Option<PathBuf>,
}

impl Tailed {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        id: u64,
        path: &Path,
        stream: usize,
        offset: u64,
        skip: Skip,
        kind: Kind,
        multiline: Option<&StartRule>,
    ) -> std::io::Result<Tailed> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        let key = key_of(&file, size)?;
        let offset = offset.min(size);
        Ok(Tailed {
            id,
            key,
            path: path.to_path_buf(),
            stream,
            file,
            pos: offset,
            carry: Vec::new(),
            ledger: Ledger::new(offset),
            skip,
            reassembler: Reassembler::new(MAX_ENTRY_BYTES),
            multiline: multiline.map(|r| {
                [
                    Multiline::new(r.clone(), MAX_ENTRY_BYTES),
                    Multiline::new(r.clone(), MAX_ENTRY_BYTES),
                ]
            }),
            kind,
            rotated_at: None,
            finished: false,
            last_data: Instant::now(),
            format: Format::Cri,
            held: None,
        })
    }

    /// The file's first bytes hashed again now that more are there (a file
    /// opened short).
    pub fn refresh_key(&mut self, size: u64) {
        if u64::from(self.key.fp_len) < FINGERPRINT_BYTES
            && size > u64::from(self.key.fp_len)
            && let Ok(k) = key_of(&self.file, size)
        {
            self.key = k;
        }
    }

    /// Reads up to `max` bytes through `scratch` (one buffer for all
    /// files: a file keeps only its unfinished line between reads);
    /// returns how many were read (0 at the end).
    pub fn read(
        &mut self,
        max: usize,
        scratch: &mut Vec<u8>,
        out: &mut Vec<Event>,
        m: &Metrics,
    ) -> std::io::Result<usize> {
        // The buffer is zeroed once, when it grows, not at every read (an
        // idle file is asked at every tick).
        let carry = self.carry.len();
        if scratch.len() < carry + max {
            scratch.resize(carry + max, 0);
        }
        let n = self
            .file
            .read_at(&mut scratch[carry..carry + max], self.pos)?;
        if n == 0 {
            return Ok(0);
        }
        scratch[..carry].copy_from_slice(&self.carry);
        let scratch = &scratch[..carry + n];
        self.pos += n as u64;
        self.last_data = Instant::now();
        m.bytes_read.inc_by(n as u64);
        let base = self.pos - scratch.len() as u64;
        let mut at = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', &scratch[at..]) {
            let end = at + nl + 1;
            self.line(
                base + at as u64,
                base + end as u64,
                &scratch[at..end],
                out,
                m,
            );
            at = end;
        }
        if scratch.len() - at > MAX_LINE_BYTES {
            let end = scratch.len();
            self.line(
                base + at as u64,
                base + end as u64,
                &scratch[at..end],
                out,
                m,
            );
            at = end;
        }
        self.carry.clear();
        self.carry.extend_from_slice(&scratch[at..]);
        // A long line's room is not kept once it is done.
        if self.carry.capacity() > 64 << 10 && self.carry.len() < 16 << 10 {
            self.carry.shrink_to_fit();
        }
        Ok(n)
    }

    fn line(&mut self, start: u64, end: u64, bytes: &[u8], out: &mut Vec<Event>, m: &Metrics) {
        m.lines_read.inc();
        if self.skip.contains(start) {
            self.ledger.push_done(start, end);
            return;
        }
        match &self.kind {
            Kind::Container { .. } => match parse(bytes) {
                Ok(line) => {
                    self.format = line.format;
                    let index = self.ledger.push(start, end);
                    for e in self.reassembler.push(&line, index) {
                        self.entry(e, out);
                    }
                }
                Err(ParseError::Empty) => self.ledger.push_done(start, end),
                Err(e) => {
                    let reason = match e {
                        ParseError::Docker(_) => "docker",
                        ParseError::CriTime(_) => "cri_time",
                        _ => "cri",
                    };
                    Metrics::reason(&m.lines_unparsed, reason).inc();
                    let index = self.ledger.push(start, end);
                    let content = bytes.strip_suffix(b"\n").unwrap_or(bytes).to_vec();
                    let entry = Entry {
                        time: now_rfc3339(),
                        stream: Stream::Stdout,
                        content,
                        split: false,
                        marks: Marks::one(index),
                    };
                    self.emit(entry, Format::Docker, out);
                }
            },
            Kind::Dmesg | Kind::Syslog => {
                let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                if text.is_empty() {
                    self.ledger.push_done(start, end);
                    return;
                }
                let index = self.ledger.push(start, end);
                let dmesg = matches!(self.kind, Kind::Dmesg);
                fit(
                    text,
                    Marks::one(index),
                    self.id,
                    now_ms(),
                    out,
                    &|piece: &[u8]| {
                        if dmesg {
                            record::dmesg(piece)
                        } else {
                            record::syslog(piece)
                        }
                    },
                );
            }
        }
    }

    fn entry(&mut self, e: Entry, out: &mut Vec<Event>) {
        let format = self.format;
        let done = match &mut self.multiline {
            Some(ms) => {
                let i = usize::from(e.stream == Stream::Stderr);
                ms[i].push(e)
            }
            None => Some(e),
        };
        if let Some(d) = done {
            self.emit(d, format, out);
        }
    }

    fn emit(&self, e: Entry, format: Format, out: &mut Vec<Event>) {
        let ts = outrigger_logs_core::time::millis(&e.time).unwrap_or_else(now_ms);
        let kubernetes = match &self.kind {
            Kind::Container { kubernetes } => kubernetes.as_deref(),
            _ => None,
        };
        let Entry {
            time,
            stream,
            content,
            split: _,
            marks,
        } = e;
        fit(&content, marks, self.id, ts, out, &|piece: &[u8]| {
            let mut record = String::new();
            record::container_into(&mut record, &time, stream, piece, format, kubernetes);
            record
        });
    }

    /// Entries being joined that no line came to finish for `idle`.
    pub fn flush_idle(&mut self, idle: std::time::Duration, out: &mut Vec<Event>) {
        if self.last_data.elapsed() < idle {
            return;
        }
        self.flush_joined(out);
    }

    /// The entries being joined, out as they are.
    fn flush_joined(&mut self, out: &mut Vec<Event>) {
        let format = self.format;
        let done: Vec<Entry> = match &mut self.multiline {
            Some(ms) => ms.iter_mut().filter_map(Multiline::flush).collect(),
            None => vec![],
        };
        for d in done {
            self.emit(d, format, out);
        }
    }

    /// Reading stops here for good (the on-disk buffer is full): the
    /// piece of a line after the last newline is dropped with the rest of
    /// the file; returns how many bytes that leaves unread.
    pub fn give_up(&mut self, out: &mut Vec<Event>, m: &Metrics) -> u64 {
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(self.pos);
        let unread = len.saturating_sub(self.pos) + self.carry.len() as u64;
        self.carry.clear();
        self.finish(out, m);
        unread
    }

    /// The file ended (rotated away and read to its end): whatever is held
    /// goes out as it is.
    pub fn finish(&mut self, out: &mut Vec<Event>, m: &Metrics) {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            let start = self.pos - carry.len() as u64;
            self.line(start, self.pos, &carry, out, m);
        }
        for e in self.reassembler.flush() {
            self.entry(e, out);
        }
        self.flush_joined(out);
        self.finished = true;
    }
}

/// The record of `content` as one event, or, when CloudWatch would refuse
/// it whole, the records of its halves (recursively, cut between UTF-8
/// characters): each piece a valid record, the lines acknowledged by the
/// last piece.
fn fit(
    content: &[u8],
    marks: Marks,
    file: u64,
    ts: i64,
    out: &mut Vec<Event>,
    make: &dyn Fn(&[u8]) -> String,
) {
    let message = make(content);
    if message.len() <= batch::MAX_MESSAGE_BYTES || content.len() < 2 {
        out.push(Event {
            ts,
            message,
            file,
            marks,
        });
        return;
    }
    drop(message);
    let mut mid = content.len() / 2;
    while mid > 1 && (content[mid] & 0xC0) == 0x80 {
        mid -= 1;
    }
    fit(&content[..mid], Marks::default(), file, ts, out, make);
    fit(&content[mid..], marks, file, ts, out, make);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn open(path: &Path, offset: u64) -> Tailed {
        Tailed::open(
            1,
            path,
            0,
            offset,
            Skip::default(),
            Kind::Container { kubernetes: None },
            Some(&StartRule::NotIndented),
        )
        .expect("opens")
    }

    #[test]
    fn lines_become_events_and_partial_lines_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.log");
        let mut f = File::create(&p).expect("create");
        f.write_all(b"2026-11-30T10:00:00Z stdout F first\n2026-11-30T10:00:01Z stdout F   indented\n2026-11-30T10:00:02Z stdout P sec")
            .expect("write");
        let mut t = open(&p, 0);
        let m = Metrics::default();
        let mut out = vec![];
        t.read(1 << 20, &mut vec![], &mut out, &m).expect("read");
        assert!(out.is_empty(), "the entry waits for its next line");
        f.write_all(b"ond\n2026-11-30T10:00:03Z stdout F third\n")
            .expect("write");
        // `P sec` + `ond` is no line: the runtime wrote `sec` and `ond`
        // as the same line's bytes; here the carry joins them.
        t.read(1 << 20, &mut vec![], &mut out, &m).expect("read");
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&out[0].message).expect("json");
        assert_eq!(v["log"], "first\n  indented");
        assert_eq!(
            out[0].ts,
            outrigger_logs_core::time::millis("2026-11-30T10:00:00Z").expect("t")
        );
        let marks: Vec<u64> = out[0].marks.iter().collect();
        assert_eq!(marks, vec![0, 1]);
        t.finish(&mut out, &m);
        let logs: Vec<String> = out
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.message).expect("json")["log"]
                    .as_str()
                    .expect("str")
                    .to_string()
            })
            .collect();
        assert_eq!(logs, vec!["first\n  indented", "secondthird"]);
        for e in &out {
            for i in e.marks.iter() {
                t.ledger.ack(i);
            }
        }
        assert_eq!(t.ledger.watermark(), t.pos);
    }

    #[test]
    fn bad_lines_are_delivered_as_they_are_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.log");
        std::fs::write(&p, b"not a cri line \xff\n\n").expect("write");
        let mut t = open(&p, 0);
        let m = Metrics::default();
        let mut out = vec![];
        t.read(1 << 20, &mut vec![], &mut out, &m).expect("read");
        t.finish(&mut out, &m);
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&out[0].message).expect("json");
        assert_eq!(v["log"], "not a cri line \u{fffd}");
        assert_eq!(Metrics::reason(&m.lines_unparsed, "cri_time").get(), 1);
    }

    #[test]
    fn a_huge_line_is_delivered_in_pieces_within_cloudwatchs_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.log");
        let mut content = b"2026-11-30T10:00:00Z stdout F ".to_vec();
        content.extend(std::iter::repeat_n(b'x', 1 << 20));
        content.push(b'\n');
        std::fs::write(&p, &content).expect("write");
        let mut t = open(&p, 0);
        let m = Metrics::default();
        let mut out = vec![];
        while t.read(1 << 16, &mut vec![], &mut out, &m).expect("read") > 0 {}
        t.finish(&mut out, &m);
        assert!(out.len() >= 2);
        assert!(
            out.iter()
                .all(|e| e.message.len() <= batch::MAX_MESSAGE_BYTES)
        );
        let total: usize = out
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.message).expect("json")["log"]
                    .as_str()
                    .expect("s")
                    .len()
            })
            .sum();
        assert_eq!(total, 1 << 20);
        assert_eq!(out.iter().filter(|e| !e.marks.is_empty()).count(), 1);
    }

    #[test]
    fn times_print_as_rfc3339() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_032_800_123);
        assert_eq!(format_rfc3339(t), "2026-11-30T10:00:00.123000000Z");
    }
}
