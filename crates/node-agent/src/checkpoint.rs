//! What the agent keeps on disk between runs: for each file it reads, how
//! far its lines are delivered; for each stream with a batch in flight,
//! enough to learn after a crash whether that batch landed.
//!
//! The file is rewritten whole (a temporary file renamed over it) before
//! each batch is sent and after each is delivered, so a SIGKILL at any
//! point leaves either the state before or the state after. Without
//! `fsync`: a killed process loses nothing the kernel has; a power loss
//! may take the last writes back (lines then repeat, none are lost).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::ledger::Ranges;

/// A file's identity: device and inode, and its first bytes' hash (after
/// a copytruncate the inode holds other content).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    /// How many leading bytes `hash` covers (the file may have been
    /// shorter than the usual count when first read).
    pub fp_len: u32,
    pub fp_hash: u64,
}

/// A file's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileState {
    pub key: FileKey,
    /// Where it was last seen (its directory is searched when it moved).
    pub path: PathBuf,
    /// The stream its lines go to.
    pub stream: String,
    /// Every line before this offset is delivered.
    pub offset: u64,
    /// Lines past `offset` already delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Ranges,
}

/// An event of a batch, recognisable when read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    pub ts: i64,
    pub hash: u64,
}

/// A batch sent and not yet known delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InFlight {
    pub group: String,
    pub stream: String,
    pub events: usize,
    /// The batch's first and last events (in time order).
    pub first: Probe,
    pub last: Probe,
    /// Its lines, per file.
    pub lines: Vec<(FileKey, Ranges)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub files: Vec<FileState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<InFlight>,
    /// The systemd journal's progress ([`crate::journal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalState>,
}

/// Where reading the journal resumes: after `cursor` (none: at the
/// journal's end, or its start when reading from head), entries numbered
/// from 0 after it, those in `skip` delivered already.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JournalState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Ranges,
}

/// The key an in-flight record gives the journal's entries.
pub const JOURNAL_KEY: FileKey = FileKey {
    dev: u64::MAX,
    ino: u64::MAX,
    fp_len: 0,
    fp_hash: 0,
};

/// FNV-1a, 64 bits: stable across builds and versions (the checkpoint
/// outlives the binary that wrote it).
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The checkpoint file in a state directory.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    tmp: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Store {
            path: dir.join("checkpoint.json"),
            tmp: dir.join("checkpoint.json.tmp"),
        })
    }

    /// The last state written; `None` on the first run. A file that cannot
    /// be read is an error: starting over would send everything again or
    /// skip what was not sent.
    pub fn load(&self) -> Result<Option<State>, CheckpointError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| CheckpointError::Json {
                        path: self.path.clone(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CheckpointError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn save(&self, state: &State) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: self.tmp.clone(),
            source,
        };
        let bytes = serde_json::to_vec(state).map_err(|source| CheckpointError::Json {
            path: self.path.clone(),
            source,
        })?;
        let mut f = std::fs::File::create(&self.tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path).map_err(|source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_first_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::new(dir.path()).expect("store");
        assert_eq!(s.load().expect("load"), None);
        let state = State {
            files: vec![FileState {
                key: FileKey {
                    dev: 1,
                    ino: 2,
                    fp_len: 64,
                    fp_hash: hash(b"x"),
                },
                path: "/var/log/pods/a/0.log".into(),
                stream: "s".into(),
                offset: 10,
                skip: vec![(20, 30)],
            }],
            in_flight: vec![InFlight {
                group: "g".into(),
                stream: "s".into(),
                events: 2,
                ..Default::default()
            }],
            journal: Some(JournalState {
                cursor: Some("s=1;i=2".into()),
                skip: vec![(3, 4)],
            }),
        };
        s.save(&state).expect("save");
        assert_eq!(s.load().expect("load"), Some(state));
        std::fs::write(dir.path().join("checkpoint.json"), b"{").expect("write");
        assert!(s.load().is_err(), "a damaged checkpoint is not a first run");
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
