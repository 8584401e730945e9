//! Container logs as the kubelet's container runtime writes them, read
//! without I/O: one line of a `/var/log/containers/*.log` file parsed
//! ([`parse`]: the CRI format of containerd and CRI-O, or Docker's JSON
//! lines), a long line the runtime split into partial lines put back
//! together ([`Reassembler`]), lines of one entry (a stack trace) joined
//! ([`Multiline`]), and the pod, namespace, container and container ID read
//! from the file's name ([`ContainerFile`]); an entry of the systemd
//! journal as the dataplane group's record ([`journal`]).
//!
//! Bytes stay bytes: a line's content is not required to be UTF-8 (the
//! agent decides what to do with invalid UTF-8 when it writes it out).

pub mod batch;
mod file;
pub mod journal;
mod line;
mod multiline;
pub mod names;
mod reassemble;
pub mod record;
pub mod time;

pub use file::ContainerFile;
pub use line::{Format, Line, ParseError, Stream, parse};
pub use multiline::{Multiline, StartRule};
pub use reassemble::{Entry, Marks, Reassembler};
