//! The agent against the file sink, no cluster: lines written while files
//! rotate (renamed, and copied then truncated) and while the agent is
//! killed at random points (its task aborted: what it wrote to disk is
//! all that is left, as after SIGKILL) arrive exactly once.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use outrigger_node_agent::{
    agent::{Agent, Config},
    checkpoint::Store,
    metrics::Metrics,
    pods::Pods,
    sink::{Sink, group_file},
};
use tokio_util::sync::CancellationToken;

mod common;
use common::{Running, start as start_with};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Container {
    dir: PathBuf,
    seq: u64,
    file: std::fs::File,
}

impl Container {
    fn new(root: &Path, pod: &str) -> Container {
        let dir = root.join(format!("pods/default_{pod}_uid/app"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::create_dir_all(root.join("containers")).expect("mkdir");
        let file = std::fs::File::create(dir.join("0.log")).expect("create");
        std::os::unix::fs::symlink(
            dir.join("0.log"),
            root.join(format!("containers/{pod}_default_app-{ID}.log")),
        )
        .expect("symlink");
        Container { dir, seq: 0, file }
    }

    fn write(&mut self, n: u64) {
        let mut out = String::new();
        for _ in 0..n {
            self.seq += 1;
            // Every fifth entry has a continuation line, every seventh is
            // written in two partial pieces.
            if self.seq.is_multiple_of(7) {
                out.push_str(&format!(
                    "2026-11-30T10:00:00.{:09}Z stdout P seq={} pa\n2026-11-30T10:00:00.{:09}Z stdout F rt\n",
                    self.seq, self.seq, self.seq
                ));
            } else {
                out.push_str(&format!(
                    "2026-11-30T10:00:00.{:09}Z stdout F seq={} payload\n",
                    self.seq, self.seq
                ));
            }
            if self.seq.is_multiple_of(5) {
                out.push_str(&format!(
                    "2026-11-30T10:00:00.{:09}Z stdout F \tat frame {}\n",
                    self.seq, self.seq
                ));
            }
        }
        self.file.write_all(out.as_bytes()).expect("write");
    }

    /// The kubelet's rotation: renamed, a new file created.
    fn rotate_rename(&mut self, k: u32) {
        std::fs::rename(self.dir.join("0.log"), self.dir.join(format!("0.log.{k}")))
            .expect("rename");
        self.file = std::fs::File::create(self.dir.join("0.log")).expect("create");
    }

    /// copytruncate: copied, then truncated in place.
    fn rotate_copytruncate(&mut self, k: u32) {
        std::fs::copy(self.dir.join("0.log"), self.dir.join(format!("0.log.{k}"))).expect("copy");
        self.file.set_len(0).expect("truncate");
        // The writer's offset goes back to 0 as with O_APPEND.
        self.file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("0.log"))
            .expect("reopen");
    }
}

fn config(root: &Path) -> Config {
    Config {
        cluster: "demo".into(),
        host: "n1".into(),
        log_root: root.to_path_buf(),
        read_from_head: true,
        multiline: Some(outrigger_logs_core::StartRule::NotIndented),
        flush: Duration::from_millis(100),
        refresh: Duration::from_millis(100),
        rotate_wait: Duration::from_millis(300),
        mem_buf_limit: 1 << 20,
        metadata_wait: Duration::from_secs(0),
        grace: Duration::from_secs(2),
        buffer_max: 1 << 30,
        buffer_dir: Some(root.join(".outrigger-buffer")),
        journal: None,
        aws_fields: None,
    }
}

fn start(root: &Path, state: &Path, out: &Path) -> Running {
    start_with(config(root), state, out)
}

/// seq -> times seen, from the delivered records.
fn delivered(out: &Path) -> BTreeMap<u64, usize> {
    let lines = common::sink_lines(out, "/aws/containerinsights/demo/application");
    let mut seen = BTreeMap::new();
    for line in &lines {
        let e: serde_json::Value = serde_json::from_str(line).expect("sink line");
        let record = &e["message"];
        let log = record["log"].as_str().expect("log");
        let seq: u64 = log
            .strip_prefix("seq=")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a record without its sequence: {log:?}"));
        let expect_frame = seq.is_multiple_of(5);
        assert_eq!(log.contains("\tat frame"), expect_frame, "{log:?}");
        if seq.is_multiple_of(7) {
            assert!(log.starts_with(&format!("seq={seq} part")), "{log:?}");
        }
        *seen.entry(seq).or_insert(0) += 1;
    }
    seen
}

async fn wait_for(out: &Path, want: u64) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..300 {
        seen = delivered(out);
        if seen.len() as u64 >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_and_kills_lose_and_repeat_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, state, out) = (
        tmp.path().join("log"),
        tmp.path().join("state"),
        tmp.path().join("out"),
    );
    let mut c = Container::new(&root, "web");
    let mut agent = start(&root, &state, &out);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..24u32 {
        c.write(200 + next() % 400);
        tokio::time::sleep(Duration::from_millis(next() % 250)).await;
        match round % 4 {
            1 => c.rotate_rename(round),
            3 => c.rotate_copytruncate(round),
            _ => {}
        }
        c.write(next() % 300);
        if round % 3 == 2 {
            // SIGKILL: nothing of the agent runs after this point.
            agent.kill().await;
            tokio::time::sleep(Duration::from_millis(next() % 200)).await;
            agent = start(&root, &state, &out);
        }
    }
    let seen = wait_for(&out, c.seq).await;
    agent.stop().await;
    let missing: Vec<u64> = (1..=c.seq).filter(|s| !seen.contains_key(s)).collect();
    let repeated: Vec<(u64, usize)> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, n)| (*s, *n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} lost: {:?}",
        missing.len(),
        c.seq,
        &missing[..missing.len().min(20)]
    );
    assert!(
        repeated.is_empty(),
        "{} repeated: {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(20)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_reads_from_the_end_unless_told_otherwise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, state, out) = (
        tmp.path().join("log"),
        tmp.path().join("state"),
        tmp.path().join("out"),
    );
    let mut c = Container::new(&root, "web");
    c.write(10);
    let stop = CancellationToken::new();
    let mut cfg = config(&root);
    cfg.read_from_head = false;
    let agent = Agent::new(
        cfg,
        Sink::File { dir: out.clone() },
        Pods::none("n1"),
        Metrics::default(),
        Store::new(&state).expect("store"),
    )
    .expect("agent");
    let s = stop.clone();
    let h = tokio::spawn(async move { agent.run(s).await.expect("runs") });
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.write(5);
    // Files that appear later are read whole: the kubelet's next file
    // after a rotation, and a new container's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.rotate_rename(1);
    c.write(5);
    let mut other = Container::new(&root, "late");
    other.write(3);
    let seen = wait_for(&out, 13).await;
    stop.cancel();
    let _ = h.await;
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=3).chain(11..=20).collect::<Vec<_>>(),
        "web from its end at the start (11..), all of its next file, all of late's (1..3)"
    );
}

/// The checkpoint as JSON, to play the moment between a delivery and its
/// checkpoint.
fn checkpoint(state: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state.join("checkpoint.json")).expect("checkpoint"))
        .expect("json")
}

/// Killed after a batch landed and before the checkpoint said so: at the
/// next start the batch is read back, found, and its lines not sent again;
/// a batch that did not land is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_in_flight_at_a_crash_is_read_back() {
    for landed in [true, false] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (root, state, out) = (
            tmp.path().join("log"),
            tmp.path().join("state"),
            tmp.path().join("out"),
        );
        let mut c = Container::new(&root, "web");
        c.write(50);
        let agent = start(&root, &state, &out);
        let seen = wait_for(&out, 50).await;
        assert_eq!(seen.len(), 50);
        agent.stop().await;
        // Rewind: the checkpoint as it was written just before the
        // request (offset 0, the batch in flight).
        let mut ck = checkpoint(&state);
        let file = ck["files"][0].clone();
        let group = "/aws/containerinsights/demo/application";
        let sink_file = group_file(&out, group);
        let text = std::fs::read_to_string(&sink_file).expect("sink");
        // (timestamp, the message exactly as written)
        #[derive(serde::Deserialize)]
        struct Raw {
            timestamp: i64,
            message: Box<serde_json::value::RawValue>,
        }
        let events: Vec<(i64, String)> = text
            .lines()
            .map(|l| serde_json::from_str::<Raw>(l).expect("json"))
            .map(|r| (r.timestamp, r.message.get().to_string()))
            .collect();
        let probe = |e: &(i64, String)| {
            serde_json::json!({
                "ts": e.0,
                "hash": outrigger_node_agent::checkpoint::hash(e.1.as_bytes()),
            })
        };
        let size = std::fs::metadata(c.dir.join("0.log")).expect("stat").len();
        ck["files"][0]["offset"] = 0.into();
        ck["in_flight"] = serde_json::json!([{
            "group": group,
            "stream": file["stream"],
            "events": events.len(),
            "first": probe(&events[0]),
            "last": probe(&events[events.len() - 1]),
            "lines": [[file["key"], [[0, size - 1]]]],
        }]);
        if !landed {
            std::fs::write(&sink_file, "").expect("the batch never arrived");
        }
        std::fs::write(state.join("checkpoint.json"), ck.to_string()).expect("write");
        c.write(5);
        let agent = start(&root, &state, &out);
        let seen = wait_for(&out, 55).await;
        agent.stop().await;
        assert_eq!(seen.len(), 55, "landed={landed}");
        assert!(seen.values().all(|n| *n == 1), "landed={landed}: repeated");
    }
}

/// The on-disk buffer's bound: a file the kubelet deleted while it was
/// still being read is held open (read to its end) unless the undelivered
/// bytes of deleted files pass `buffer_max`; then it is given up and what
/// it held is counted as lost, never silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_files_are_read_to_their_end_within_the_buffer_bound() {
    for (bound, expect_loss) in [(1u64 << 30, false), (0, true)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (root, state, out) = (
            tmp.path().join("log"),
            tmp.path().join("state"),
            tmp.path().join("out"),
        );
        let mut c = Container::new(&root, "web");
        c.write(20_000);
        std::fs::write(&out, b"not a directory").expect("block the sink");
        let mut cfg = config(&root);
        cfg.mem_buf_limit = 64 << 10;
        cfg.buffer_max = bound;
        let m = Metrics::default();
        let agent = Agent::new(
            cfg,
            Sink::File { dir: out.clone() },
            Pods::none("n1"),
            m.clone(),
            Store::new(&state).expect("store"),
        )
        .expect("agent");
        let stop = CancellationToken::new();
        let s = stop.clone();
        let h = tokio::spawn(async move { agent.run(s).await.expect("runs") });
        // The sink cannot write yet (its directory's path is a file): the
        // agent reads up to its memory bound and waits. Then the file is
        // rotated away and deleted, and the sink recovers.
        tokio::time::sleep(Duration::from_millis(800)).await;
        c.rotate_rename(1);
        std::fs::remove_file(c.dir.join("0.log.1")).expect("delete");
        c.write(10);
        let lost = || Metrics::reason(&m.bytes_lost, "buffer_full").get();
        if expect_loss {
            for _ in 0..100 {
                if lost() > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        std::fs::remove_file(&out).expect("the sink can write");
        let seen = if expect_loss {
            let mut seen = BTreeMap::new();
            for _ in 0..300 {
                seen = delivered(&out);
                if lost() > 0 && seen.contains_key(&c.seq) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        } else {
            wait_for(&out, c.seq).await
        };
        stop.cancel();
        let _ = h.await;
        let last_ten = (c.seq - 9..=c.seq).all(|s| seen.contains_key(&s));
        assert!(last_ten, "bound {bound}: the new file is read");
        assert!(seen.values().all(|n| *n == 1), "bound {bound}: repeated");
        if expect_loss {
            assert!(lost() > 0, "bound 0: the deleted file is given up, counted");
            assert!((seen.len() as u64) < c.seq);
        } else {
            assert_eq!(lost(), 0);
            assert_eq!(seen.len() as u64, c.seq, "every line of the deleted file");
        }
    }
}

/// A file the kubelet deleted while the agent was behind outlives a kill
/// of the agent: its hard link in the buffer's directory holds it, and the
/// next start reads it from its checkpoint. Without the directory (links
/// impossible) the open descriptor held it, and died with the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_outlives_a_kill_of_the_agent() {
    for linked in [true, false] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (root, state, out) = (
            tmp.path().join("log"),
            tmp.path().join("state"),
            tmp.path().join("out"),
        );
        let mut c = Container::new(&root, "web");
        c.write(20_000);
        // The sink cannot write (its directory's path is a file): the agent
        // reads up to its memory bound and waits.
        std::fs::write(&out, b"not a directory").expect("block the sink");
        let mut cfg = config(&root);
        cfg.mem_buf_limit = 64 << 10;
        if !linked {
            cfg.buffer_dir = None;
        }
        let agent = start_with(cfg.clone(), &state, &out);
        tokio::time::sleep(Duration::from_millis(800)).await;
        // Rotated and deleted, as the kubelet does with old files.
        c.rotate_rename(1);
        std::fs::remove_file(c.dir.join("0.log.1")).expect("delete");
        c.write(10);
        tokio::time::sleep(Duration::from_millis(500)).await;
        agent.kill().await;
        std::fs::remove_file(&out).expect("the sink can write");
        let agent = start_with(cfg, &state, &out);
        let seen = if linked {
            wait_for(&out, c.seq).await
        } else {
            // The new file's ten lines, and nothing of the deleted one's
            // undelivered rest.
            let mut seen = BTreeMap::new();
            for _ in 0..300 {
                seen = delivered(&out);
                if seen.contains_key(&c.seq) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        };
        agent.stop().await;
        assert!(seen.values().all(|n| *n == 1), "linked={linked}: repeated");
        assert!(
            (c.seq - 9..=c.seq).all(|s| seen.contains_key(&s)),
            "linked={linked}: the new file is read"
        );
        let links = std::fs::read_dir(root.join(".outrigger-buffer"))
            .map(|d| d.count())
            .unwrap_or(0);
        if linked {
            assert_eq!(seen.len() as u64, c.seq, "every line of the deleted file");
            // The deleted file's link is gone once it is delivered; the
            // live file keeps its own.
            assert_eq!(links, 1);
        } else {
            assert!(
                (seen.len() as u64) < c.seq,
                "the deleted file's rest is lost"
            );
            assert_eq!(links, 0);
        }
    }
}

/// A copytruncate of a file its stream has not read a byte of yet (the
/// stream backlogged behind the copy of the last one): its first bytes,
/// pinned while unread, find its copy; nothing is lost, nothing repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_copied_and_truncated_before_it_was_read_is_read_from_its_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, state, out) = (
        tmp.path().join("log"),
        tmp.path().join("state"),
        tmp.path().join("out"),
    );
    let mut c = Container::new(&root, "web");
    c.write(5_000);
    // The sink cannot write: the agent reads up to its memory bound, then
    // waits, while the file is copied and truncated twice.
    std::fs::write(&out, b"not a directory").expect("block the sink");
    let mut cfg = config(&root);
    cfg.mem_buf_limit = 64 << 10;
    let agent = start_with(cfg, &state, &out);
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.rotate_copytruncate(1);
    // The agent reads the rest from the copy, and opens the live file
    // anew: empty, nothing of it read.
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.write(3_000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.rotate_copytruncate(2);
    c.write(100);
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::remove_file(&out).expect("the sink can write");
    let seen = wait_for(&out, c.seq).await;
    agent.stop().await;
    assert!(seen.values().all(|n| *n == 1), "repeated");
    let missing: Vec<u64> = (1..=c.seq).filter(|s| !seen.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, from {:?}",
        missing.len(),
        missing.first()
    );
}
