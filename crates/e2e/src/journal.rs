//! A node's systemd journal in the local environment: kwok nodes run no
//! journald, so entries are appended to journal files by
//! systemd-journal-remote (Debian's `systemd-journal-remote`, installed by
//! `scripts/deps.sh`), which writes the same file format journald does;
//! journalctl reads them as it reads a node's.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// An entry to append.
pub struct Entry<'a> {
    pub unit: &'a str,
    pub message: &'a str,
}

/// The node's journal directory under its `/var/log`: `journal/<machine
/// ID>`, the ID made from the node's name.
pub fn directory(var_log: &Path, node: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    var_log
        .join("journal")
        .join(format!("{h:016x}{:016x}", h.rotate_left(17)))
}

/// Appends `entries` to `<directory>/<file>` (created if missing), now,
/// from `hostname`. One writer per file at a time: the environment's
/// writer and a test each use their own file.
pub fn append(
    directory: &Path,
    file: &str,
    hostname: &str,
    entries: &[Entry<'_>],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as u64;
    let boot = directory
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut export = String::new();
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={boot}\n_HOSTNAME={hostname}\n_SYSTEMD_UNIT={}\n_PID=2101\nPRIORITY=6\nMESSAGE={}\n\n",
            now + i,
            now + i,
            e.unit,
            e.message.replace('\n', " "),
        ));
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", directory.join(file).display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "{JOURNAL_REMOTE}: {e} (scripts/deps.sh installs systemd-journal-remote)"
            )
        })?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?
        .write_all(export.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "{JOURNAL_REMOTE}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
