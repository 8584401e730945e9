//! Long lines put back together: a runtime writes a line longer than its
//! buffer (16 KiB for containerd and Docker) as partial pieces, each but
//! the last marked partial; the pieces of one stream are consecutive.

use crate::line::{Line, Stream};

/// One whole line of a container's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The time of its first piece.
    pub time: String,
    pub stream: Stream,
    pub content: Vec<u8>,
    /// Cut from a longer line at the size limit (every piece of that line
    /// is delivered, in order, each marked so).
    pub split: bool,
    /// The caller's marks of the file lines this entry holds (the agent
    /// marks each line with its index in the file, to know which lines a
    /// delivered entry acknowledges). A line cut at the size limit gives
    /// its marks to its last piece only.
    pub marks: Marks,
}

/// The marks of an entry's lines: one without allocating, more in `rest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub first: Option<u64>,
    pub rest: Vec<u64>,
}

impl Marks {
    pub fn one(mark: u64) -> Self {
        Marks {
            first: Some(mark),
            rest: Vec::new(),
        }
    }

    pub fn push(&mut self, mark: u64) {
        match self.first {
            None => self.first = Some(mark),
            Some(_) => self.rest.push(mark),
        }
    }

    pub fn append(&mut self, other: Marks) {
        if let Some(f) = other.first {
            self.push(f);
        }
        self.rest.extend(other.rest);
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

/// Joins partial pieces per stream, up to `max_bytes` a line: longer lines
/// are delivered in `max_bytes` pieces, never dropped.
#[derive(Debug)]
pub struct Reassembler {
    max_bytes: usize,
    /// stdout's, stderr's pieces so far.
    pending: [Option<Entry>; 2],
}

fn slot(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Reassembler {
    /// `max_bytes` at least 1.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes: max_bytes.max(1),
            pending: [None, None],
        }
    }

    /// Takes the next line of the file, with the caller's mark for it;
    /// returns the lines it completes, in order (more than one only when a
    /// line is longer than the limit).
    pub fn push(&mut self, line: &Line<'_>, mark: u64) -> Vec<Entry> {
        let max = self.max_bytes;
        let current = self.pending[slot(line.stream)].get_or_insert_with(|| Entry {
            time: line.time.to_string(),
            stream: line.stream,
            content: Vec::new(),
            split: false,
            marks: Marks::default(),
        });
        current.content.extend_from_slice(&line.content);
        current.marks.push(mark);
        let mut out = vec![];
        while current.content.len() > max {
            let rest = current.content.split_off(max);
            out.push(Entry {
                time: current.time.clone(),
                stream: current.stream,
                content: std::mem::replace(&mut current.content, rest),
                split: true,
                marks: Marks::default(),
            });
            current.split = true;
        }
        if !line.partial
            && let Some(done) = self.pending[slot(line.stream)].take()
        {
            out.push(done);
        }
        out
    }

    /// The pieces held (the file ended in the middle of a line: it was
    /// deleted, or the agent stops), delivered as they are.
    pub fn flush(&mut self) -> Vec<Entry> {
        self.pending.iter_mut().filter_map(Option::take).collect()
    }

    /// Bytes held in unfinished lines.
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().flatten().map(|e| e.content.len()).sum()
    }

    /// Whether a line is held (the file's read position is past lines not
    /// yet delivered).
    pub fn is_empty(&self) -> bool {
        self.pending.iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::parse;

    fn feed(r: &mut Reassembler, lines: &[&[u8]]) -> Vec<Entry> {
        lines
            .iter()
            .enumerate()
            .flat_map(|(i, l)| r.push(&parse(l).expect("a valid line"), i as u64))
            .collect()
    }

    #[test]
    fn pieces_join_per_stream() {
        let mut r = Reassembler::new(1 << 20);
        let out = feed(
            &mut r,
            &[
                b"2026-11-30T10:00:00Z stdout P hel",
                b"2026-11-30T10:00:01Z stderr F oops",
                b"2026-11-30T10:00:02Z stdout P lo ",
                b"2026-11-30T10:00:03Z stdout F world",
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].stream, &out[0].content[..]),
            (Stream::Stderr, &b"oops"[..])
        );
        assert_eq!(out[1].content, b"hello world");
        assert_eq!(out[1].time, "2026-11-30T10:00:00Z");
        assert!(!out[1].split);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn a_line_over_the_limit_comes_in_pieces_none_lost() {
        let mut r = Reassembler::new(4);
        let out = feed(
            &mut r,
            &[
                b"2026-11-30T10:00:00Z stdout P abcde",
                b"2026-11-30T10:00:00Z stdout F fghij",
            ],
        );
        let pieces: Vec<&[u8]> = out.iter().map(|e| &e.content[..]).collect();
        assert_eq!(pieces, [&b"abcd"[..], b"efgh", b"ij"]);
        assert!(out.iter().all(|e| e.split));
    }

    #[test]
    fn an_unfinished_line_is_flushed_as_it_is() {
        let mut r = Reassembler::new(100);
        assert!(feed(&mut r, &[b"2026-11-30T10:00:00Z stdout P half"]).is_empty());
        assert_eq!(r.pending_bytes(), 4);
        let out = r.flush();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].content, b"half");
        assert!(r.flush().is_empty());
    }
}
