//! The systemd journal of the node: the kubelet's, containerd's and
//! docker's entries to the dataplane group, as the quickstart's `systemd`
//! input (`Systemd_Filter _SYSTEMD_UNIT=…`, `Path /var/log/journal`,
//! `Read_From_Tail`) and its `modify` filter ship them.
//!
//! The journal is read through `journalctl --output=json --follow` (as
//! Vector's and the OpenTelemetry Collector's journald sources do):
//! journalctl owns the binary format, its rotations and its cursors. Its
//! output is read within the agent's memory bound (journalctl waits on the
//! pipe meanwhile; the journal itself is the buffer). Entries are numbered
//! from the checkpoint's cursor and acknowledged through the same line
//! ledger as a file's lines, so the checkpoint is the cursor of the last
//! entry delivered with all before it, plus the numbers past it delivered
//! too (one unit's stream can be ahead of another's): a restart resumes
//! after that cursor and skips those, neither losing nor repeating. If
//! journalctl exits it is started again after the last entry read.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use outrigger_logs_core::{Marks, journal::parse_entry};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    sync::mpsc,
};

use crate::{
    checkpoint::JournalState,
    ledger::{Ledger, Ranges, Skip},
    metrics::Metrics,
    tail::Event,
};

/// What is read, and how.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// The journal's directory (`/var/log/journal`; journalctl reads its
    /// machine-ID subdirectories too).
    pub directory: PathBuf,
    /// `_SYSTEMD_UNIT` values whose entries are read.
    pub units: Vec<String>,
    /// The journalctl binary.
    pub journalctl: PathBuf,
}

/// Where reading starts without a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The journal's first entry (`Read_From_Tail Off`).
    Head,
    /// Its end (`Read_From_Tail On`, the quickstart's): entries written
    /// from now on. A run that read none leaves no cursor, so the next
    /// starts at the end again.
    Tail,
}

enum Msg {
    Line(Vec<u8>),
    /// A line longer than [`MAX_LINE`] (its length), dropped.
    TooLong(usize),
    Exited(String),
}

/// A journal entry read, for its unit's stream.
pub struct Read {
    pub unit: Option<String>,
    pub event: Event,
}

pub struct Journal {
    pub id: u64,
    cfg: JournalConfig,
    start: Start,
    /// The cursor of the entry before number `first` (`None`: before the
    /// journal's first entry).
    base: Option<String>,
    first: u64,
    /// Cursors of the entries numbered `first..next`.
    cursors: VecDeque<String>,
    next: u64,
    pub ledger: Ledger,
    skip: Skip,
    rx: Option<mpsc::Receiver<Msg>>,
    restart_at: Option<Instant>,
    backoff: Duration,
}

/// Longest line taken from journalctl (an entry's fields, JSON-escaped);
/// a longer one is dropped, counted.
const MAX_LINE: usize = 4 << 20;

impl Journal {
    pub fn new(id: u64, cfg: JournalConfig, state: JournalState, start: Start) -> Self {
        Journal {
            id,
            cfg,
            start,
            base: state.cursor,
            first: 0,
            cursors: VecDeque::new(),
            next: 0,
            ledger: Ledger::new(0),
            skip: Skip::new(state.skip),
            rx: None,
            restart_at: None,
            backoff: Duration::from_millis(500),
        }
    }

    /// The checkpoint: the cursor of the last entry delivered with all
    /// before it, and the numbers (after it) of those delivered past it.
    pub fn state(&self) -> JournalState {
        let w = self.ledger.watermark();
        let cursor = match w.checked_sub(1) {
            Some(last) if last >= self.first => self
                .cursors
                .get((last - self.first) as usize)
                .cloned()
                .or_else(|| self.base.clone()),
            _ => self.base.clone(),
        };
        let mut skip = self.skip.clone();
        skip.add(&self.ledger.skipped());
        skip.drop_before(w);
        JournalState {
            cursor,
            skip: rebase(skip.ranges(), w),
        }
    }

    /// In-flight ranges (numbers of this run) as the checkpoint numbers
    /// them (from its cursor).
    pub fn rebase(&self, ranges: &Ranges) -> Ranges {
        rebase(ranges, self.ledger.watermark())
    }

    /// Entries of a batch found landed after a restart (numbered from the
    /// checkpoint's cursor): skipped when read.
    pub fn landed(&mut self, ranges: &Ranges) {
        self.skip.add(ranges);
    }

    /// Forgets the cursors of entries behind the watermark.
    fn trim(&mut self) {
        let w = self.ledger.watermark();
        while self.first + 1 < w {
            match self.cursors.pop_front() {
                Some(c) => self.base = Some(c),
                None => break,
            }
            self.first += 1;
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--directory={}", self.cfg.directory.display()),
            "--output=json".to_string(),
            "--follow".to_string(),
            "--all".to_string(),
            "--no-pager".to_string(),
            "--quiet".to_string(),
        ];
        let last_read = self.cursors.back().or(self.base.as_ref());
        match (last_read, &self.start) {
            (Some(c), _) => {
                args.push(format!("--after-cursor={c}"));
                args.push("--no-tail".to_string());
            }
            (None, Start::Tail) => args.push("--lines=0".to_string()),
            (None, Start::Head) => args.push("--no-tail".to_string()),
        }
        args.extend(self.cfg.units.iter().map(|u| format!("_SYSTEMD_UNIT={u}")));
        args
    }

    fn spawn(&mut self) {
        let args = self.args();
        tracing::info!(journalctl = %self.cfg.journalctl.display(), ?args, "reading the journal");
        let mut cmd = tokio::process::Command::new(&self.cfg.journalctl);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.failed(format!("cannot start journalctl: {e}"));
                return;
            }
        };
        let (tx, rx) = mpsc::channel(512);
        self.rx = Some(rx);
        let (Some(stdout), stderr) = (child.stdout.take(), child.stderr.take()) else {
            self.failed("journalctl has no output".into());
            return;
        };
        tokio::spawn(async move {
            let mut out = BufReader::with_capacity(64 << 10, stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match (&mut out)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) => break,
                    Ok(n) if n > MAX_LINE && !line.ends_with(b"\n") => {
                        // Too long: the rest of it is read and dropped.
                        let mut total = n;
                        loop {
                            line.clear();
                            match (&mut out)
                                .take(MAX_LINE as u64)
                                .read_until(b'\n', &mut line)
                                .await
                            {
                                Ok(0) | Err(_) => break,
                                Ok(n) => total += n,
                            }
                            if line.ends_with(b"\n") {
                                break;
                            }
                        }
                        if tx.send(Msg::TooLong(total)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {
                        if tx.send(Msg::Line(std::mem::take(&mut line))).await.is_err() {
                            // The agent stopped reading: the child is killed
                            // when dropped.
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Msg::Exited(format!("reading journalctl: {e}")))
                            .await;
                        return;
                    }
                }
            }
            let mut err = String::new();
            if let Some(mut s) = stderr {
                let _ = s.read_to_string(&mut err).await;
            }
            let status = child.wait().await;
            let _ = tx
                .send(Msg::Exited(format!(
                    "journalctl exited ({}): {}",
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    err.trim()
                )))
                .await;
        });
    }

    fn failed(&mut self, why: String) {
        tracing::warn!(error = %why, retry_in = ?self.backoff, "the journal cannot be read now; trying again");
        self.rx = None;
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
    }

    /// Up to `max` entries read, as events for their units' streams;
    /// journalctl is (re)started when it is not running.
    pub fn read(&mut self, max: usize, out: &mut Vec<Read>, m: &Metrics) {
        self.trim();
        if self.rx.is_none() {
            if self.restart_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            self.spawn();
        }
        let mut taken = 0;
        while taken < max {
            let Some(rx) = self.rx.as_mut() else {
                return;
            };
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.failed("journalctl's reader stopped".into());
                    return;
                }
            };
            match msg {
                Msg::Exited(why) => {
                    self.failed(why);
                    return;
                }
                Msg::TooLong(bytes) => {
                    m.lines_read.inc();
                    m.bytes_read.inc_by(bytes as u64);
                    Metrics::reason(&m.events_dropped, "journal_too_long").inc();
                    tracing::warn!(bytes, "a journal entry over 4 MiB is dropped");
                }
                Msg::Line(line) => {
                    taken += 1;
                    self.entry(&line, out, m);
                }
            }
        }
    }

    /// A line of journalctl's: numbered, and an event unless it was
    /// delivered before.
    fn entry(&mut self, line: &[u8], out: &mut Vec<Read>, m: &Metrics) {
        m.lines_read.inc();
        m.bytes_read.inc_by(line.len() as u64);
        let entry = match parse_entry(line.trim_ascii_end()) {
            Ok(e) => e,
            Err(e) => {
                Metrics::reason(&m.events_dropped, "journal_not_an_entry").inc();
                tracing::warn!(error = %e, "journalctl wrote a line that is not an entry");
                return;
            }
        };
        self.backoff = Duration::from_millis(500);
        let k = self.next;
        self.next += 1;
        self.cursors.push_back(entry.cursor);
        let index = self.ledger.push(k, k + 1);
        if self.skip.contains(k) {
            self.ledger.ack(index);
            return;
        }
        out.push(Read {
            unit: entry.unit,
            event: Event {
                ts: entry.ts_ms,
                message: entry.record,
                file: self.id,
                marks: Marks::one(index),
            },
        });
    }
}

/// `ranges` (numbers of this run) from number `w` on, renumbered from 0.
fn rebase(ranges: &Ranges, w: u64) -> Ranges {
    ranges
        .iter()
        .filter(|(_, b)| *b >= w)
        .map(|(a, b)| (a.saturating_sub(w), b - w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: u64) -> Vec<u8> {
        format!(
            r#"{{"__CURSOR":"c{i}","__REALTIME_TIMESTAMP":"{}","_SYSTEMD_UNIT":"u{}.service","MESSAGE":"m{i}"}}"#,
            1_000 * i,
            i % 2
        )
        .into_bytes()
    }

    fn journal(state: JournalState) -> Journal {
        let cfg = JournalConfig {
            directory: "/nowhere".into(),
            units: vec![],
            journalctl: "journalctl".into(),
        };
        Journal::new(7, cfg, state, Start::Head)
    }

    /// What a restart resumes from: the cursor of the last entry delivered
    /// with all before it; the entries past it delivered already (one
    /// unit's stream ahead of the other's) are skipped, numbered from that
    /// cursor; the batch in flight is numbered as the checkpoint is.
    #[test]
    fn the_checkpoint_is_a_cursor_and_the_entries_delivered_past_it() {
        let m = Metrics::default();
        let mut j = journal(JournalState::default());
        assert_eq!(j.state(), JournalState::default());
        let mut out = vec![];
        for i in 0..6 {
            j.entry(&line(i), &mut out, &m);
        }
        assert_eq!(out.len(), 6);
        let index: Vec<u64> = out
            .iter()
            .map(|r| r.event.marks.iter().next().expect("mark"))
            .collect();
        // Entries 0, 1 and 3 delivered; 2 in flight, 4 and 5 waiting.
        for k in [0, 1, 3] {
            j.ledger.ack(index[k]);
        }
        let state = j.state();
        assert_eq!(
            state,
            JournalState {
                cursor: Some("c1".into()),
                skip: vec![(1, 1)],
            }
        );
        // The batch in flight (entry 2), as the checkpoint numbers it.
        assert_eq!(j.rebase(&j.ledger.ranges([index[2]])), vec![(0, 0)]);
        // Trimming the cursors behind the watermark changes nothing.
        j.trim();
        assert_eq!(j.state(), state);

        // The restart: journalctl gives the entries after c1; the one
        // delivered (3) is skipped, and the batch of entry 2 found landed
        // is skipped too.
        let mut j = journal(state);
        j.landed(&vec![(0, 0)]);
        let mut out = vec![];
        for i in 2..6 {
            j.entry(&line(i), &mut out, &m);
        }
        let messages: Vec<&str> = out.iter().map(|r| r.event.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("m4") && messages[1].contains("m5"));
        assert_eq!(out[0].unit.as_deref(), Some("u0.service"));
        // Nothing delivered yet in this run: it resumes after entry 3.
        assert_eq!(j.state().cursor.as_deref(), Some("c3"));
        assert_eq!(j.state().skip, vec![]);
        for r in &out {
            j.ledger.ack(r.event.marks.iter().next().expect("mark"));
        }
        assert_eq!(
            j.state(),
            JournalState {
                cursor: Some("c5".into()),
                skip: vec![],
            }
        );
    }

    #[test]
    fn journalctl_resumes_after_the_last_entry_read() {
        let m = Metrics::default();
        let mut j = journal(JournalState::default());
        assert!(j.args().contains(&"--no-tail".to_string()));
        assert!(!j.args().iter().any(|a| a.starts_with("--after-cursor")));
        let mut tail = journal(JournalState::default());
        tail.start = Start::Tail;
        assert!(tail.args().contains(&"--lines=0".to_string()));
        j.entry(&line(0), &mut vec![], &m);
        j.entry(br#"-- not json --"#, &mut vec![], &m);
        assert!(j.args().contains(&"--after-cursor=c0".to_string()));
        assert_eq!(
            Metrics::reason(&m.events_dropped, "journal_not_an_entry").get(),
            1
        );
        let resumed = journal(JournalState {
            cursor: Some("c9".into()),
            skip: vec![],
        });
        assert!(resumed.args().contains(&"--after-cursor=c9".to_string()));
    }
}
