//! The log pipeline of one node: files found, read within a memory bound,
//! events batched per stream (one request in flight per stream, many
//! streams at once), delivered, acknowledged line by line, checkpointed.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use outrigger_logs_core::{ContainerFile, StartRule, batch::Limits, names};

pub use crate::journal::JournalConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    checkpoint::{self, FileKey, FileState, InFlight, JOURNAL_KEY, Probe, State, hash},
    held::Held,
    journal::{self, Journal},
    ledger::Skip,
    metrics::Metrics,
    pods::Pods,
    sink::{Batch, Outcome, Sink},
    tail::{Event, Kind, Tailed, same_head},
};

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub cluster: String,
    pub host: String,
    /// `/var/log` (the node's; a directory per node in the local
    /// environment).
    pub log_root: PathBuf,
    /// First start: read existing files from their start (else from their
    /// end). Files that appear later are always read from their start.
    pub read_from_head: bool,
    pub multiline: Option<StartRule>,
    /// Longest an event waits for its batch.
    pub flush: Duration,
    /// How often the directories are listed.
    pub refresh: Duration,
    /// How long a rotated file is still read after it moved.
    pub rotate_wait: Duration,
    /// Events in memory (waiting or in flight), at most.
    pub mem_buf_limit: usize,
    /// A file whose pod is not known yet waits this long for it.
    pub metadata_wait: Duration,
    /// Time to deliver what is read once told to stop.
    pub grace: Duration,
    /// Bytes not yet delivered in files deleted from the disk (held open
    /// by the agent: the on-disk buffer beyond the kubelet's own rotation
    /// budget), at most; past it the oldest are given up, counted.
    pub buffer_max: u64,
    /// Where files being read are hard-linked so that a deleted one
    /// outlives a restart of the agent ([`crate::held`]); on the logs'
    /// mount. `None`: open descriptors only.
    pub buffer_dir: Option<PathBuf>,
    /// The systemd journal's units to the dataplane group; `None`: not
    /// read.
    pub journal: Option<JournalConfig>,
    /// What the quickstart's `aws` filter adds to host and dataplane
    /// records (`outrigger_logs_core::record::aws_fields`).
    pub aws_fields: Option<String>,
}

struct StreamState {
    group: String,
    name: String,
    pending: VecDeque<Event>,
    pending_bytes: usize,
    oldest: Option<Instant>,
    in_flight: Option<(InFlight, usize)>,
    /// A host or dataplane stream: its records get the `aws` filter's
    /// fields.
    aws_fields: bool,
    /// Its request gave up because the agent is stopping (the record stays
    /// in the checkpoint, checked at the next start).
    abandoned: bool,
}

/// A batch ready to leave.
struct Send {
    stream: usize,
    batch: Batch,
    acks: Vec<(u64, outrigger_logs_core::Marks)>,
    bytes: usize,
}

struct Done {
    stream: usize,
    outcome: Outcome,
    acks: Vec<(u64, outrigger_logs_core::Marks)>,
    bytes: usize,
    events: usize,
}

pub struct Agent {
    cfg: Config,
    sink: Sink,
    pods: Pods,
    m: Metrics,
    store: checkpoint::Store,
    files: BTreeMap<u64, Tailed>,
    next_id: u64,
    streams: Vec<StreamState>,
    by_name: HashMap<String, usize>,
    /// Checkpoint entries not matched to an open file yet (the first
    /// listing after a start).
    restored: Option<Vec<FileState>>,
    first_run: bool,
    first_listing: bool,
    waiting_meta: HashMap<PathBuf, Instant>,
    in_memory: usize,
    /// Batches in flight when the agent last stopped, to check first.
    recover: Vec<InFlight>,
    tx: mpsc::UnboundedSender<Done>,
    rx: mpsc::UnboundedReceiver<Done>,
    /// The read buffer of every file.
    scratch: Vec<u8>,
    held: Held,
    journal: Option<Journal>,
}

const READ_CHUNK: usize = 256 << 10;

/// A stream's waiting events, at most, before its files are read further
/// (more than a batch, so the next request is ready when one returns).
const STREAM_PENDING_LIMIT: usize = 3 << 19;

impl Agent {
    pub fn new(
        cfg: Config,
        sink: Sink,
        pods: Pods,
        m: Metrics,
        store: checkpoint::Store,
    ) -> Result<Self, checkpoint::CheckpointError> {
        let state = store.load()?;
        let first_run = state.is_none();
        let (tx, rx) = mpsc::unbounded_channel();
        let held = Held::new(cfg.buffer_dir.clone());
        let mut a = Agent {
            cfg,
            sink,
            pods,
            m,
            store,
            files: BTreeMap::new(),
            next_id: 1,
            streams: vec![],
            by_name: HashMap::new(),
            restored: None,
            first_run,
            first_listing: true,
            waiting_meta: HashMap::new(),
            in_memory: 0,
            recover: vec![],
            tx,
            rx,
            scratch: Vec::new(),
            held,
            journal: None,
        };
        let mut journal_state = None;
        if let Some(s) = state {
            a.recover = s.in_flight;
            a.restored = Some(s.files);
            journal_state = s.journal;
        }
        if let Some(jc) = a.cfg.journal.clone() {
            let start = if a.cfg.read_from_head {
                journal::Start::Head
            } else {
                journal::Start::Tail
            };
            let id = a.new_id();
            a.journal = Some(Journal::new(
                id,
                jc,
                journal_state.unwrap_or_default(),
                start,
            ));
        }
        Ok(a)
    }

    /// Runs until `stop`, then delivers what it can within the grace time
    /// and writes the checkpoint.
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), checkpoint::CheckpointError> {
        self.recover_in_flight(&stop).await;
        self.save()?;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_refresh: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(done) = self.rx.recv() => {
                    self.done(done);
                    self.save()?;
                    // A stream whose request finished goes on at once, not
                    // at the next tick.
                    self.read_all();
                    self.send_ready(false, &stop)?;
                }
                _ = tick.tick() => {
                    if last_refresh.is_none_or(|t| t.elapsed() >= self.cfg.refresh) {
                        self.discover();
                        last_refresh = Some(Instant::now());
                    }
                    self.read_all();
                    self.send_ready(false, &stop)?;
                    self.gauges();
                }
            }
        }
        // Stopping: what is read goes out, within the grace time.
        let deadline = tokio::time::Instant::now() + self.cfg.grace;
        let sends = CancellationToken::new();
        let guard = sends.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            guard.cancel();
        });
        self.send_ready(true, &sends)?;
        while self
            .streams
            .iter()
            .any(|s| s.in_flight.is_some() && !s.abandoned)
        {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                Some(done) = self.rx.recv() => {
                    self.done(done);
                    self.send_ready(true, &sends)?;
                }
            }
        }
        self.save()
    }

    /// A batch in flight when the agent last stopped: read back from the
    /// sink; if it landed, its lines are skipped when read again.
    async fn recover_in_flight(&mut self, stop: &CancellationToken) {
        let mut delay = Duration::from_millis(500);
        let recover = std::mem::take(&mut self.recover);
        for f in recover {
            let landed = loop {
                match self.sink.landed(&f.group, &f.stream, f.first, f.last).await {
                    Ok(l) => break l,
                    Err(e) => {
                        tracing::warn!(group = %f.group, stream = %f.stream, error = %e, "checking the batch in flight at the last stop failed; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => { self.recover.push(f.clone()); return; }
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            };
            Metrics::result(
                &self.m.batches_recovered,
                if landed { "landed" } else { "resent" },
            )
            .inc();
            tracing::info!(group = %f.group, stream = %f.stream, events = f.events, landed, "batch in flight at the last stop");
            if landed && let Some(j) = self.journal.as_mut() {
                for (_, ranges) in f.lines.iter().filter(|(k, _)| *k == JOURNAL_KEY) {
                    j.landed(ranges);
                }
            }
            if landed && let Some(restored) = self.restored.as_mut() {
                for (key, ranges) in &f.lines {
                    if let Some(fs) = restored.iter_mut().find(|s| &s.key == key) {
                        let mut skip = Skip::new(std::mem::take(&mut fs.skip));
                        skip.add(ranges);
                        fs.skip = skip.ranges().clone();
                    }
                }
            }
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn stream(&mut self, group: &str, name: &str) -> usize {
        if let Some(i) = self.by_name.get(name) {
            return *i;
        }
        self.streams.push(StreamState {
            group: group.to_string(),
            name: name.to_string(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            oldest: None,
            in_flight: None,
            aws_fields: group.ends_with("/host") || group.ends_with("/dataplane"),
            abandoned: false,
        });
        let i = self.streams.len() - 1;
        self.by_name.insert(name.to_string(), i);
        i
    }

    /// Lists the log directories: new files opened (from the checkpoint,
    /// their start, or their end on a first start without
    /// `read_from_head`), moved files marked rotated.
    fn discover(&mut self) {
        let mut seen: Vec<u64> = vec![];
        let containers = self.cfg.log_root.join("containers");
        let mut found: Vec<(String, PathBuf)> = match std::fs::read_dir(&containers) {
            Ok(d) => d
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.ends_with(".log").then(|| (name, e.path()))
                })
                .collect(),
            Err(_) => vec![],
        };
        found.sort();
        for (name, link) in found {
            let Ok(target) = std::fs::canonicalize(&link) else {
                continue;
            };
            let dataplane = names::is_dataplane(&name);
            let group = names::log_group(
                &self.cfg.cluster,
                if dataplane {
                    "dataplane"
                } else {
                    "application"
                },
            );
            let stream_name = names::container_stream(&self.cfg.host, dataplane, &name);
            let Some(kind) = self.container_kind(&name, &target) else {
                continue;
            };
            if let Some(id) = self.track(&group, &stream_name, &target, kind) {
                seen.push(id);
            }
        }
        for (file, kind) in [
            ("messages", Kind::Syslog),
            ("secure", Kind::Syslog),
            ("dmesg", Kind::Dmesg),
        ] {
            let path = self.cfg.log_root.join(file);
            if !path.exists() {
                continue;
            }
            let group = names::log_group(&self.cfg.cluster, "host");
            let stream_name = names::host_stream(&self.cfg.host, file);
            if let Some(id) = self.track(&group, &stream_name, &path, kind) {
                seen.push(id);
            }
        }
        // Current files no longer listed: gone with their pod, or moved.
        let now = Instant::now();
        for t in self.files.values_mut() {
            if t.rotated_at.is_none() && !seen.contains(&t.id) {
                t.rotated_at = Some(now);
            }
        }
        if let Some(restored) = self.restored.take() {
            self.reopen_moved(restored);
        }
        if self.first_listing {
            // Links of files the last run finished with, or that are in
            // no checkpoint any more.
            let keep: Vec<&Path> = self
                .files
                .values()
                .filter_map(|t| t.held.as_deref())
                .collect();
            let removed = self.held.sweep(&keep);
            if removed > 0 {
                tracing::info!(
                    removed,
                    "links of files delivered before the last stop removed from the on-disk buffer"
                );
            }
        }
        self.first_listing = false;
    }

    /// The `kubernetes` object of a container's file; `None` while its pod
    /// is not known and the file is new (it is looked up again at the next
    /// listing).
    fn container_kind(&mut self, name: &str, target: &Path) -> Option<Kind> {
        // A file being read at this path (the same file, or the one a
        // rotation replaces): the same container, the same object.
        if let Some(t) = self
            .files
            .values()
            .find(|t| t.path == target && t.rotated_at.is_none())
        {
            return Some(t.kind.clone());
        }
        let Some(cf) = ContainerFile::parse(name) else {
            return Some(Kind::Container { kubernetes: None });
        };
        // The first listing after a start does not wait (the pods were
        // listed before it; a file of the checkpoint is resumed at once).
        let k = match self.pods.lookup(&cf) {
            Some(k) => k,
            None if self.restored.is_some() || self.first_listing => self.pods.from_name(&cf),
            None => {
                let first = *self
                    .waiting_meta
                    .entry(target.to_path_buf())
                    .or_insert_with(Instant::now);
                if first.elapsed() < self.cfg.metadata_wait {
                    return None;
                }
                self.pods.from_name(&cf)
            }
        };
        self.waiting_meta.remove(target);
        Some(Kind::Container {
            kubernetes: Some(Arc::from(k.to_json())),
        })
    }

    /// Keeps reading `path` for `stream`; returns the open file's id.
    fn track(&mut self, group: &str, stream_name: &str, path: &Path, kind: Kind) -> Option<u64> {
        let meta = std::fs::metadata(path).ok()?;
        use std::os::unix::fs::MetadataExt;
        let (dev, ino) = (meta.dev(), meta.ino());
        let stream = self.stream(group, stream_name);
        if let Some(t) = self.files.values().find(|t| {
            t.stream == stream && t.rotated_at.is_none() && t.key.dev == dev && t.key.ino == ino
        }) {
            return Some(t.id);
        }
        // A new file for the stream: the one read so far moved away.
        let now = Instant::now();
        for t in self.files.values_mut() {
            if t.stream == stream && t.rotated_at.is_none() {
                t.rotated_at = Some(now);
            }
        }
        let (offset, skip) = self.start_of(dev, ino, path, meta.len());
        let id = self.new_id();
        match Tailed::open(
            id,
            path,
            stream,
            offset,
            skip,
            kind,
            self.cfg.multiline.as_ref(),
        ) {
            Ok(mut t) => {
                tracing::info!(path = %path.display(), stream = %stream_name, offset, "reading");
                t.held = self.held.link(path, &t.key);
                self.files.insert(id, t);
                Some(id)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open a log file");
                None
            }
        }
    }

    /// Where to start reading a file: its checkpoint, else its start (or,
    /// on a first start without `read_from_head`, its end).
    fn start_of(&mut self, dev: u64, ino: u64, path: &Path, len: u64) -> (u64, Skip) {
        if let Some(restored) = self.restored.as_mut()
            && let Some(i) = restored.iter().position(|s| {
                s.key.dev == dev
                    && s.key.ino == ino
                    && std::fs::File::open(path).is_ok_and(|f| same_head(&f, &s.key))
            })
        {
            let s = restored.swap_remove(i);
            return (s.offset, Skip::new(s.skip));
        }
        // Tail semantics only for what is there at the very first start:
        // a file that appears later (a new pod, a rotation) is read whole.
        if self.first_run && self.first_listing && !self.cfg.read_from_head {
            (len, Skip::default())
        } else {
            (0, Skip::default())
        }
    }

    /// Checkpointed files not found where they were: rotated (renamed, or
    /// copied by a copytruncate) into their directory while the agent was
    /// down. They are read to their end; files gone are reported.
    fn reopen_moved(&mut self, restored: Vec<FileState>) {
        for s in restored {
            let dir = s.path.parent().map(Path::to_path_buf).unwrap_or_default();
            let candidates: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            let fits = |p: &Path| {
                std::fs::File::open(p).is_ok_and(|f| {
                    same_head(&f, &s.key) && f.metadata().is_ok_and(|m| m.len() >= s.offset)
                })
            };
            // Renamed within its directory, else deleted and held by its
            // link in the on-disk buffer.
            let found = candidates
                .into_iter()
                .find(|p| !self.files.values().any(|t| &t.path == p) && fits(p))
                .or_else(|| self.held.path_of(&s.key).filter(|p| fits(p)));
            let Some(path) = found else {
                tracing::warn!(path = %s.path.display(), stream = %s.stream, offset = s.offset, "a file being read at the last stop is gone: what it held past the checkpoint is lost");
                self.m.files_gone.inc();
                continue;
            };
            let group = group_of(&self.cfg.cluster, &s.stream);
            let stream = self.stream(&group, &s.stream);
            let kind = if s.stream.contains(".host.dmesg") {
                Kind::Dmesg
            } else if s.stream.contains(".host.") {
                Kind::Syslog
            } else {
                let name = s.stream.rsplit("containers.").next().unwrap_or_default();
                let k = ContainerFile::parse(name).map(|cf| {
                    self.pods
                        .lookup(&cf)
                        .unwrap_or_else(|| self.pods.from_name(&cf))
                });
                Kind::Container {
                    kubernetes: k.map(|k| Arc::from(k.to_json())),
                }
            };
            let id = self.new_id();
            match Tailed::open(
                id,
                &path,
                stream,
                s.offset,
                Skip::new(s.skip),
                kind,
                self.cfg.multiline.as_ref(),
            ) {
                Ok(mut t) => {
                    tracing::info!(path = %path.display(), stream = %s.stream, offset = s.offset, "reading a file rotated while the agent was down");
                    t.rotated_at = Some(Instant::now());
                    t.held = self.held.link(&path, &t.key);
                    self.files.insert(id, t);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot open a rotated log file")
                }
            }
        }
    }

    /// Reads every file whose stream has room, oldest files of a stream
    /// first, within the memory bound.
    fn read_all(&mut self) {
        let ids: Vec<u64> = self.files.keys().copied().collect();
        let mut out: Vec<Event> = vec![];
        for id in ids {
            self.check_truncated(id);
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            if t.finished {
                continue;
            }
            let stream = t.stream;
            loop {
                if self.streams[stream].pending_bytes >= STREAM_PENDING_LIMIT
                    || self.in_memory >= self.cfg.mem_buf_limit
                {
                    break;
                }
                let n = match t.read(READ_CHUNK, &mut self.scratch, &mut out, &self.m) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(path = %t.path.display(), error = %e, "reading a log file failed");
                        0
                    }
                };
                if n > 0 {
                    t.refresh_key(t.pos);
                }
                enqueue(
                    &mut self.streams[stream],
                    &mut self.in_memory,
                    &mut out,
                    self.cfg.aws_fields.as_deref(),
                );
                if n == 0 {
                    break;
                }
            }
            t.flush_idle(Duration::from_secs(1), &mut out);
            if let Some(at) = t.rotated_at
                && at.elapsed() >= self.cfg.rotate_wait
                && t.pos >= t.file.metadata().map(|m| m.len()).unwrap_or(0)
            {
                t.finish(&mut out, &self.m);
            }
            enqueue(
                &mut self.streams[stream],
                &mut self.in_memory,
                &mut out,
                self.cfg.aws_fields.as_deref(),
            );
        }
        self.read_journal();
    }

    /// The journal's entries, within the memory bound, each to its unit's
    /// stream.
    fn read_journal(&mut self) {
        const AT_ONCE: usize = 256;
        if self.journal.is_none() {
            return;
        }
        let mut reads = vec![];
        let group = names::log_group(&self.cfg.cluster, "dataplane");
        loop {
            if self.in_memory >= self.cfg.mem_buf_limit {
                return;
            }
            let Some(j) = self.journal.as_mut() else {
                return;
            };
            j.read(AT_ONCE, &mut reads, &self.m);
            let n = reads.len();
            for r in reads.drain(..) {
                let name = outrigger_logs_core::journal::stream(&self.cfg.host, r.unit.as_deref());
                let i = self.stream(&group, &name);
                let mut one = vec![r.event];
                enqueue(
                    &mut self.streams[i],
                    &mut self.in_memory,
                    &mut one,
                    self.cfg.aws_fields.as_deref(),
                );
            }
            if n < AT_ONCE {
                return;
            }
        }
    }

    /// A copytruncate: the file is shorter than what was read, or its first
    /// bytes changed. What was not read yet is in the copy (a file of the
    /// same directory starting with the same bytes): the reader moves to
    /// the copy and reads it to its end; the truncated file is read anew
    /// from its start.
    fn check_truncated(&mut self, id: u64) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        if t.rotated_at.is_some() {
            return;
        }
        let Ok(meta) = std::fs::metadata(&t.path) else {
            return;
        };
        use std::os::unix::fs::MetadataExt;
        if meta.ino() != t.key.ino {
            return;
        }
        let truncated = meta.len() < t.pos || (t.key.fp_len > 0 && !same_head(&t.file, &t.key));
        if !truncated {
            // The first bytes pinned as soon as there are some, read or
            // not: a file its backlogged stream has not read yet can be
            // copied and truncated before it is, and they find the copy.
            if u64::from(t.key.fp_len) < crate::tail::FINGERPRINT_BYTES
                && meta.len() > u64::from(t.key.fp_len)
            {
                t.refresh_key(meta.len());
            }
            return;
        }
        let dir = t.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let open_paths: Vec<PathBuf> = self.files.values().map(|t| t.path.clone()).collect();
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        let copy = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p != &t.path && !open_paths.contains(p))
            .find_map(|p| {
                let f = std::fs::File::open(&p).ok()?;
                let len = f.metadata().ok()?.len();
                (len >= t.pos && same_head(&f, &t.key)).then_some((p, f))
            });
        let live = t.path.clone();
        let stream = t.stream;
        let kind = t.kind.clone();
        // The live file's link goes with the live file (the same inode).
        let live_link = t.held.take();
        match copy {
            Some((p, f)) => {
                tracing::info!(path = %live.display(), copy = %p.display(), "copytruncate: reading the rest from the copy");
                if let Ok(k) = crate::tail::key_of(&f, t.pos) {
                    t.key.dev = k.dev;
                    t.key.ino = k.ino;
                }
                t.file = f;
                t.held = self.held.link(&p, &t.key);
                t.path = p;
            }
            None => {
                let lost = t
                    .file
                    .metadata()
                    .map(|m| m.len())
                    .unwrap_or(0)
                    .saturating_sub(t.pos);
                tracing::warn!(path = %live.display(), "truncated, and no copy found: lines written since the last read are lost");
                Metrics::reason(&self.m.bytes_lost, "truncated").inc_by(lost);
            }
        }
        t.rotated_at = Some(Instant::now());
        let new_id = self.new_id();
        match Tailed::open(
            new_id,
            &live,
            stream,
            0,
            Skip::default(),
            kind,
            self.cfg.multiline.as_ref(),
        ) {
            Ok(mut n) => {
                n.held = live_link;
                self.files.insert(new_id, n);
            }
            Err(e) => {
                if let Some(l) = live_link {
                    self.held.release(&l);
                }
                tracing::warn!(path = %live.display(), error = %e, "cannot reopen a truncated log file")
            }
        }
    }

    /// Streams with events old enough, or a full batch, and no request in
    /// flight: their next batch goes out (all of them when `all`).
    fn send_ready(
        &mut self,
        all: bool,
        stop: &CancellationToken,
    ) -> Result<(), checkpoint::CheckpointError> {
        let mut ready = vec![];
        for i in 0..self.streams.len() {
            let s = &self.streams[i];
            if s.in_flight.is_some() || s.abandoned || s.pending.is_empty() {
                continue;
            }
            let due = all
                || s.pending_bytes >= outrigger_logs_core::batch::MAX_BATCH_BYTES / 2
                || s.oldest.is_some_and(|o| o.elapsed() >= self.cfg.flush);
            if !due {
                continue;
            }
            if let Some(send) = self.take_batch(i) {
                // Its copies in flight count against the memory bound too.
                self.in_memory += send.bytes * (self.sink.in_flight_copies() - 1);
                ready.push(send);
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        // In flight in the checkpoint before any request leaves: a batch
        // that lands is always one the next start can look for.
        self.save()?;
        for send in ready {
            let (sink, m, tx, stop) = (
                self.sink.clone(),
                self.m.clone(),
                self.tx.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let events = send.batch.events.len();
                let outcome = sink.deliver(send.batch, &m, &stop).await;
                let _ = tx.send(Done {
                    stream: send.stream,
                    outcome,
                    acks: send.acks,
                    bytes: send.bytes,
                    events,
                });
            });
        }
        Ok(())
    }

    /// The stream's next batch, recorded as in flight.
    fn take_batch(&mut self, i: usize) -> Option<Send> {
        let s = &mut self.streams[i];
        let mut limits = Limits::default();
        let mut events: Vec<Event> = vec![];
        while let Some(e) = s.pending.front() {
            if !limits.fits(e.message.len(), e.ts) {
                break;
            }
            limits.add(e.message.len(), e.ts);
            let Some(e) = s.pending.pop_front() else {
                break;
            };
            s.pending_bytes -= e.message.len();
            events.push(e);
        }
        s.oldest = if s.pending.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        // CloudWatch wants a request's events in time order.
        events.sort_by_key(|e| e.ts);
        let bytes: usize = events.iter().map(|e| e.message.len()).sum();
        let probe = |e: &Event| Probe {
            ts: e.ts,
            hash: hash(e.message.as_bytes()),
        };
        let (Some(first), Some(last)) = (events.first().map(probe), events.last().map(probe))
        else {
            return None;
        };
        let mut per_file: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for e in &events {
            per_file.entry(e.file).or_default().extend(e.marks.iter());
        }
        let lines: Vec<(FileKey, crate::ledger::Ranges)> = per_file
            .iter()
            .filter_map(|(f, ix)| match self.files.get(f) {
                Some(t) => Some((t.key, t.ledger.ranges(ix.iter().copied()))),
                None => {
                    let j = self.journal.as_ref().filter(|j| j.id == *f)?;
                    Some((JOURNAL_KEY, j.ledger.ranges(ix.iter().copied())))
                }
            })
            .collect();
        let record = InFlight {
            group: s.group.clone(),
            stream: s.name.clone(),
            events: events.len(),
            first,
            last,
            lines,
        };
        s.in_flight = Some((record, bytes));
        let n = events.len();
        let mut acks = Vec::with_capacity(n);
        let mut batch_events = Vec::with_capacity(n);
        for e in events {
            if !e.marks.is_empty() {
                acks.push((e.file, e.marks));
            }
            batch_events.push((e.ts, e.message));
        }
        let batch = Batch {
            group: s.group.clone(),
            stream: s.name.clone(),
            events: batch_events,
        };
        Some(Send {
            stream: i,
            batch,
            acks,
            bytes,
        })
    }

    fn done(&mut self, d: Done) {
        let s = &mut self.streams[d.stream];
        let group = s.group.clone();
        match d.outcome {
            Outcome::Stopped => {
                s.abandoned = true;
                return;
            }
            Outcome::Delivered(rejected) => {
                let dropped: usize = rejected.iter().map(|(_, n)| n).sum();
                for (reason, n) in rejected {
                    Metrics::reason(&self.m.events_dropped, reason).inc_by(n as u64);
                    tracing::warn!(group = %group, stream = %s.name, reason, events = n, "CloudWatch Logs set events aside");
                }
                Metrics::group(&self.m.events_delivered, &group)
                    .inc_by(d.events.saturating_sub(dropped) as u64);
                Metrics::group(&self.m.bytes_delivered, &group).inc_by(d.bytes as u64);
            }
            Outcome::Refused(reason) => {
                Metrics::reason(&self.m.events_dropped, "refused").inc_by(d.events as u64);
                tracing::error!(group = %group, stream = %s.name, events = d.events, error = %reason, "CloudWatch Logs refused a batch; its events are dropped");
            }
        }
        s.in_flight = None;
        self.in_memory = self
            .in_memory
            .saturating_sub(d.bytes * self.sink.in_flight_copies());
        for (file, marks) in d.acks {
            if let Some(t) = self.files.get_mut(&file) {
                for i in marks.iter() {
                    t.ledger.ack(i);
                }
            } else if let Some(j) = self.journal.as_mut().filter(|j| j.id == file) {
                for i in marks.iter() {
                    j.ledger.ack(i);
                }
            }
        }
        let held = &self.held;
        self.files.retain(|_, t| {
            let keep = !(t.finished && t.ledger.is_done());
            if !keep {
                tracing::info!(path = %t.path.display(), "read and delivered; closed");
                if let Some(l) = t.held.take() {
                    held.release(&l);
                }
            }
            keep
        });
    }

    fn state(&self) -> State {
        let mut files: Vec<FileState> = self
            .files
            .values()
            .map(|t| {
                let offset = t.ledger.watermark();
                let mut skip = t.skip.clone();
                skip.add(&t.ledger.skipped());
                skip.drop_before(offset);
                FileState {
                    key: t.key,
                    path: t.path.clone(),
                    stream: self.streams[t.stream].name.clone(),
                    offset,
                    skip: skip.ranges().clone(),
                }
            })
            .collect();
        // Files of the last run not opened yet stay in the checkpoint.
        if let Some(r) = &self.restored {
            files.extend(r.iter().cloned());
        }
        let mut in_flight: Vec<InFlight> = self
            .streams
            .iter()
            .filter_map(|s| s.in_flight.as_ref().map(|(r, _)| r.clone()))
            .collect();
        // The journal's entries numbered from the cursor saved with them.
        if let Some(j) = &self.journal {
            for f in &mut in_flight {
                for (key, ranges) in &mut f.lines {
                    if *key == JOURNAL_KEY {
                        *ranges = j.rebase(ranges);
                    }
                }
            }
        }
        in_flight.extend(self.recover.iter().cloned());
        State {
            files,
            in_flight,
            journal: self.journal.as_ref().map(Journal::state),
        }
    }

    fn save(&self) -> Result<(), checkpoint::CheckpointError> {
        self.store.save(&self.state())
    }

    /// The gauges, and the on-disk buffer's bound: deleted files held open
    /// with more undelivered bytes than `buffer_max` in all are given up,
    /// oldest first, what they still held counted as lost.
    fn gauges(&mut self) {
        use std::os::unix::fs::MetadataExt;
        self.m.files_open.set(self.files.len() as i64);
        self.m.pending_bytes.set(self.in_memory as i64);
        let mut buffer = 0u64;
        let mut deleted: Vec<(u64, u64)> = vec![];
        for t in self.files.values() {
            let Ok(meta) = t.file.metadata() else {
                continue;
            };
            let held = meta.len().saturating_sub(t.ledger.watermark());
            buffer += held;
            // Deleted: no name left but the agent's own link.
            if meta.nlink() <= u64::from(t.held.is_some()) && !t.finished {
                deleted.push((t.id, held));
            }
        }
        self.m.buffer_bytes.set(buffer as i64);
        let mut held: u64 = deleted.iter().map(|d| d.1).sum();
        let mut out = vec![];
        for (id, bytes) in deleted {
            if held <= self.cfg.buffer_max {
                break;
            }
            held -= bytes;
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            let unread = t.give_up(&mut out, &self.m);
            tracing::warn!(path = %t.path.display(), unread, limit = self.cfg.buffer_max, "the on-disk buffer is full: a deleted file is given up");
            Metrics::reason(&self.m.bytes_lost, "buffer_full").inc_by(unread);
            if let Some(l) = t.held.take() {
                self.held.release(&l);
            }
            let stream = t.stream;
            enqueue(
                &mut self.streams[stream],
                &mut self.in_memory,
                &mut out,
                self.cfg.aws_fields.as_deref(),
            );
        }
    }
}

/// Events read into their stream's queue.
fn enqueue(s: &mut StreamState, in_memory: &mut usize, out: &mut Vec<Event>, aws: Option<&str>) {
    for mut e in out.drain(..) {
        if let Some(f) = aws.filter(|_| s.aws_fields) {
            outrigger_logs_core::record::append_fields(&mut e.message, f);
        }
        s.pending_bytes += e.message.len();
        *in_memory += e.message.len();
        s.oldest.get_or_insert_with(Instant::now);
        s.pending.push_back(e);
    }
}

/// The group a stream of this agent belongs to.
fn group_of(cluster: &str, stream: &str) -> String {
    let kind = if stream.contains("-dataplane.") {
        "dataplane"
    } else if stream.contains(".host.") {
        "host"
    } else {
        "application"
    };
    names::log_group(cluster, kind)
}
