//! The systemd journal against the file sink, no cluster: entries of the
//! kubelet's and containerd's units written into a real journal file (by
//! systemd-journal-remote, as a node's journald would) while the agent is
//! killed at random points (its task aborted: what it wrote to disk is all
//! that is left, as after SIGKILL) arrive exactly once, each in its unit's
//! stream of the dataplane group, as the quickstart's record.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use outrigger_node_agent::agent::{Config, JournalConfig};

mod common;
use common::start;

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const UNITS: [&str; 3] = ["kubelet.service", "containerd.service", "sshd.service"];

/// Appends entries `from..to` to the journal file, unit by turns (the
/// third unit is one the agent does not read).
fn write_entries(journal: &Path, from: u64, to: u64) {
    let mut export = String::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    for seq in from..to {
        let unit = UNITS[(seq % 3) as usize];
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=n1\n_SYSTEMD_UNIT={unit}\n_PID=42\nPRIORITY=6\nMESSAGE=seq={seq} unit={unit} \"quoted\"\n\n",
            now + seq,
            seq + 1,
        ));
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", journal.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-journal-remote (make deps installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(export.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
}

fn config(root: &Path, journal_dir: &Path, read_from_head: bool) -> Config {
    Config {
        cluster: "demo".into(),
        host: "n1".into(),
        log_root: root.to_path_buf(),
        read_from_head,
        multiline: None,
        flush: Duration::from_millis(100),
        refresh: Duration::from_millis(100),
        rotate_wait: Duration::from_millis(300),
        mem_buf_limit: 256 << 10,
        metadata_wait: Duration::from_secs(0),
        grace: Duration::from_secs(2),
        buffer_max: 1 << 30,
        buffer_dir: None,
        journal: Some(JournalConfig {
            directory: journal_dir.to_path_buf(),
            units: vec!["kubelet.service".into(), "containerd.service".into()],
            journalctl: "journalctl".into(),
        }),
        aws_fields: outrigger_logs_core::record::aws_fields(
            Some("ap-southeast-1a"),
            Some("i-0123"),
        ),
    }
}

/// seq -> (times seen, the stream it came in), from the dataplane group.
fn delivered(out: &Path) -> BTreeMap<u64, (usize, String)> {
    let lines = common::sink_lines(out, "/aws/containerinsights/demo/dataplane");
    let mut seen: BTreeMap<u64, (usize, String)> = BTreeMap::new();
    for line in &lines {
        let e: serde_json::Value = serde_json::from_str(line).expect("sink line");
        let record = &e["message"];
        let unit = record["systemd_unit"].as_str().expect("unit").to_string();
        assert_eq!(record["hostname"], "n1", "{record}");
        // The modify filter's fields and the aws filter's (a map sorted by
        // key).
        assert_eq!(
            record
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(
                [
                    "az",
                    "ec2_instance_id",
                    "hostname",
                    "message",
                    "systemd_unit"
                ]
                .map(String::from)
                .to_vec()
            ),
            "{record}"
        );
        assert_eq!(record["az"], "ap-southeast-1a");
        assert_eq!(record["ec2_instance_id"], "i-0123");
        let message = record["message"].as_str().expect("message");
        let seq: u64 = message
            .strip_prefix("seq=")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no sequence: {message:?}"));
        assert!(
            message.ends_with(&format!("unit={unit} \"quoted\"")),
            "{message}"
        );
        let stream = e["stream"].as_str().expect("stream").to_string();
        assert_eq!(stream, format!("n1-dataplane.systemd.{unit}"));
        let entry = seen.entry(seq).or_insert((0, stream));
        entry.0 += 1;
    }
    seen
}

/// The sequence numbers of entries the agent reads (not sshd's).
fn wanted(from: u64, to: u64) -> Vec<u64> {
    (from..to).filter(|s| s % 3 != 2).collect()
}

async fn wait_for(out: &Path, want: &[u64]) -> BTreeMap<u64, (usize, String)> {
    let mut seen = BTreeMap::new();
    for _ in 0..300 {
        seen = delivered(out);
        if want.iter().all(|s| seen.contains_key(s)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("log");
    let journal = root.join("journal/0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&journal).expect("mkdir");
    let (state, out) = (tmp.path().join("state"), tmp.path().join("out"));
    let file = journal.join("system.journal");
    (tmp, root, state, out, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_entries_arrive_once_across_kills() {
    let (_tmp, root, state, out, file) = dirs();
    let jdir = root.join("journal");
    write_entries(&file, 0, 300);
    let mut agent = start(config(&root, &jdir, true), &state, &out);
    let mut next = 300;
    // Entries keep coming; the agent is killed and started again, five
    // times, at points that fall where they fall.
    for round in 0..5u64 {
        tokio::time::sleep(Duration::from_millis(150 + 170 * round)).await;
        write_entries(&file, next, next + 3000);
        next += 3000;
        tokio::time::sleep(Duration::from_millis(100 + 90 * round)).await;
        agent.kill().await;
        agent = start(config(&root, &jdir, true), &state, &out);
    }
    let want = wanted(0, next);
    let seen = wait_for(&out, &want).await;
    agent.stop().await;
    let missing: Vec<&u64> = want.iter().filter(|s| !seen.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "missing {} of {}: {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(10)]
    );
    let repeated: Vec<(&u64, &(usize, String))> = seen.iter().filter(|(_, v)| v.0 > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} repeated, from {:?} to {:?}",
        repeated.len(),
        repeated.first(),
        repeated.last()
    );
    assert!(seen.keys().all(|s| s % 3 != 2), "an unread unit's entries");
}

/// Without a cursor the agent starts at the journal's end unless told to
/// read from head; a later start resumes after what it delivered, even
/// entries written while it was stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_reads_from_the_tail_then_resumes() {
    let (_tmp, root, state, out, file) = dirs();
    let jdir = root.join("journal");
    write_entries(&file, 0, 30);
    let agent = start(config(&root, &jdir, false), &state, &out);
    tokio::time::sleep(Duration::from_millis(800)).await;
    write_entries(&file, 30, 60);
    let seen = wait_for(&out, &wanted(30, 60)).await;
    agent.stop().await;
    assert!(
        seen.keys().all(|s| *s >= 30),
        "read from the tail: {:?}",
        seen.keys().next()
    );
    write_entries(&file, 60, 90);
    let agent = start(config(&root, &jdir, false), &state, &out);
    let want = wanted(30, 90);
    let seen = wait_for(&out, &want).await;
    agent.stop().await;
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), want);
    assert!(seen.values().all(|v| v.0 == 1));
}
