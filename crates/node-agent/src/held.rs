//! The on-disk buffer's crash safety: a hard link to every file being
//! read, in a directory of the agent's beside the logs.
//!
//! When the kubelet rotates a container's log and later deletes the old
//! file (or removes a deleted pod's logs) while the agent is behind — a
//! slow or throttled CloudWatch — the agent keeps reading it through its
//! open descriptor. An open descriptor does not outlive the process,
//! though: killed at that moment, the agent would find the file gone. A
//! hard link does: the file's blocks stay on disk, under
//! `<dir>/<dev>-<ino>`, until the agent has delivered it and removes the
//! link (or gives it up past `--buffer-max-mib`). A restart finds a file
//! of its checkpoint there when it is no longer in the log directory.
//!
//! A hard link cannot cross mount points (`EXDEV`), so the directory lives
//! under the log root (the DaemonSet mounts `/var/log` writable for it).
//! Where links cannot be made the agent says so once and goes on with
//! open descriptors alone: the buffer then survives rotations and
//! deletions, not a kill.

use std::{
    io::ErrorKind,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::checkpoint::FileKey;

#[derive(Debug)]
pub struct Held {
    dir: Option<PathBuf>,
}

impl Held {
    /// Links in `dir` (created if missing); `None`: no links.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.and_then(|d| match std::fs::create_dir_all(&d) {
            Ok(()) => Some(d),
            Err(e) => {
                tracing::warn!(dir = %d.display(), error = %e, "cannot create the on-disk buffer's directory: files the kubelet deletes survive rotations but not a restart of the agent");
                None
            }
        });
        Held { dir }
    }

    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The link a file with this identity would have.
    pub fn path_of(&self, key: &FileKey) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}", key.dev, key.ino)))
    }

    /// Links the file at `path` (whose identity is `key`); the link's path,
    /// or `None` when it could not be made (the file is gone already, or
    /// links are not possible here: then no more are tried).
    pub fn link(&mut self, path: &Path, key: &FileKey) -> Option<PathBuf> {
        let link = self.path_of(key)?;
        match std::fs::symlink_metadata(&link) {
            // A link to this very inode already (kept from the last run, or
            // made for the file before a copytruncate): the inode cannot
            // have been reused while a link holds it.
            Ok(m) if m.dev() == key.dev && m.ino() == key.ino => return Some(link),
            Ok(_) => {
                let _ = std::fs::remove_file(&link);
            }
            Err(_) => {}
        }
        match std::fs::hard_link(path, &link) {
            Ok(()) => Some(link),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), link = %link.display(), error = %e, "cannot hard-link a log file into the on-disk buffer's directory (it must be on the same mount as the logs): files the kubelet deletes survive rotations but not a restart of the agent");
                self.dir = None;
                None
            }
        }
    }

    /// The link is not needed any more (its file is delivered, or given
    /// up).
    pub fn release(&self, link: &Path) {
        if let Err(e) = std::fs::remove_file(link)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(link = %link.display(), error = %e, "cannot remove a link of the on-disk buffer");
        }
    }

    /// Removes the links not in `keep` (left by a run that stopped before
    /// it could remove them, their files delivered or given up).
    pub fn sweep(&self, keep: &[&Path]) -> usize {
        let Some(dir) = &self.dir else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if !keep.contains(&p.as_path()) {
                self.release(&p);
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(p: &Path) -> FileKey {
        let m = std::fs::metadata(p).expect("stat");
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            ..FileKey::default()
        }
    }

    #[test]
    fn a_linked_file_outlives_its_deletion_until_released() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("0.log");
        std::fs::write(&file, "line\n").expect("write");
        let key = key_of(&file);
        let mut held = Held::new(Some(tmp.path().join(".buffer")));
        let link = held.link(&file, &key).expect("linked");
        // Linking again finds the same link.
        assert_eq!(held.link(&file, &key), Some(link.clone()));
        std::fs::remove_file(&file).expect("the kubelet deletes it");
        assert_eq!(std::fs::read_to_string(&link).expect("held"), "line\n");
        held.release(&link);
        assert!(!link.exists());
        // A file gone before it is linked: no link, links still made.
        let key2 = FileKey { ino: 1, ..key };
        assert_eq!(held.link(&tmp.path().join("gone.log"), &key2), None);
        assert!(held.enabled());
    }

    #[test]
    fn a_stale_link_of_another_inode_is_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a.log"), tmp.path().join("b.log"));
        std::fs::write(&a, "a\n").expect("write");
        std::fs::write(&b, "b\n").expect("write");
        let mut held = Held::new(Some(tmp.path().join(".buffer")));
        // A link named for b's inode that holds a's (an inode number
        // reused after the last run's link was removed by hand).
        let key_b = key_of(&b);
        let name = held.path_of(&key_b).expect("enabled");
        std::fs::hard_link(&a, &name).expect("link");
        let link = held.link(&b, &key_b).expect("linked");
        assert_eq!(std::fs::read_to_string(link).expect("read"), "b\n");
    }

    #[test]
    fn sweep_removes_what_no_file_uses() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut held = Held::new(Some(tmp.path().join(".buffer")));
        let mut links = vec![];
        for n in ["a", "b", "c"] {
            let p = tmp.path().join(n);
            std::fs::write(&p, n).expect("write");
            links.push(held.link(&p, &key_of(&p)).expect("linked"));
        }
        assert_eq!(held.sweep(&[links[1].as_path()]), 2);
        assert!(!links[0].exists() && links[1].exists() && !links[2].exists());
    }

    #[test]
    fn without_a_directory_nothing_is_linked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("0.log");
        std::fs::write(&file, "x").expect("write");
        let mut held = Held::new(None);
        assert_eq!(held.link(&file, &key_of(&file)), None);
        assert_eq!(held.sweep(&[]), 0);
        // A directory that cannot be made (its parent is a file).
        let held = Held::new(Some(file.join("sub")));
        assert!(!held.enabled());
    }
}
