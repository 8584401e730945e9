//! Which lines of a file are delivered: the offset a restart reads from,
//! and the lines past it already delivered (skipped on the way).
//!
//! Each line read gets an index; an entry (one line, a long line's pieces,
//! a stack trace's lines) is acknowledged by its lines' indexes once its
//! batch is delivered. The file's checkpoint is the start of the first
//! line not yet acknowledged (the *watermark*), plus the lines after it
//! that were (an entry of stdout finished while one of stderr was still
//! being joined). Restarting from the watermark and skipping those lines
//! reads every line not delivered, once.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug)]
struct Line {
    start: u64,
    acked: bool,
}

/// Starts of lines, as inclusive ranges of offsets (`(a, b)`: every line
/// starting in `a..=b` that the file holds).
pub type Ranges = Vec<(u64, u64)>;

#[derive(Clone, Debug)]
pub struct Ledger {
    /// Index of `lines[0]`.
    base: u64,
    lines: VecDeque<Line>,
    /// End of the last whole line read.
    read_pos: u64,
    /// Acknowledged lines still held (behind a pending one).
    acked_behind: usize,
}

impl Ledger {
    /// Reading starts at `offset` (a line's start).
    pub fn new(offset: u64) -> Self {
        Ledger {
            base: 0,
            lines: VecDeque::new(),
            read_pos: offset,
            acked_behind: 0,
        }
    }

    /// A line read from `start` to `end` (its newline included); returns
    /// its index.
    pub fn push(&mut self, start: u64, end: u64) -> u64 {
        let index = self.base + self.lines.len() as u64;
        self.lines.push_back(Line {
            start,
            acked: false,
        });
        self.read_pos = end;
        index
    }

    /// A line read and already delivered (skipped after a restart), or one
    /// with nothing to deliver (an empty line).
    pub fn push_done(&mut self, start: u64, end: u64) {
        let i = self.push(start, end);
        self.ack(i);
    }

    /// The line `index` is delivered (or dropped, counted, for good).
    pub fn ack(&mut self, index: u64) {
        let Some(pos) = index.checked_sub(self.base) else {
            return;
        };
        let Some(line) = self.lines.get_mut(pos as usize) else {
            return;
        };
        if line.acked {
            return;
        }
        line.acked = true;
        self.acked_behind += 1;
        while self.lines.front().is_some_and(|l| l.acked) {
            self.lines.pop_front();
            self.base += 1;
            self.acked_behind -= 1;
        }
    }

    /// Where a restart reads from.
    pub fn watermark(&self) -> u64 {
        self.lines.front().map_or(self.read_pos, |l| l.start)
    }

    /// End of the last whole line read.
    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }

    /// Lines read and not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.lines.iter().filter(|l| !l.acked).count()
    }

    /// Nothing read is waiting for delivery.
    pub fn is_done(&self) -> bool {
        self.lines.is_empty()
    }

    /// The acknowledged lines past the watermark.
    pub fn skipped(&self) -> Ranges {
        if self.acked_behind == 0 {
            return vec![];
        }
        self.ranges_where(|_, l| l.acked)
    }

    /// The starts of the lines `indexes` (in any order), as ranges: lines
    /// with consecutive indexes share one.
    pub fn ranges(&self, indexes: impl IntoIterator<Item = u64>) -> Ranges {
        let mut positions: Vec<usize> = indexes
            .into_iter()
            .filter_map(|i| i.checked_sub(self.base))
            .map(|p| p as usize)
            .filter(|p| *p < self.lines.len())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        let mut out: Ranges = vec![];
        let mut last: Option<usize> = None;
        for p in positions {
            let start = self.lines[p].start;
            match (last, out.last_mut()) {
                (Some(l), Some(r)) if l + 1 == p => r.1 = start,
                _ => out.push((start, start)),
            }
            last = Some(p);
        }
        out
    }

    fn ranges_where(&self, pick: impl Fn(usize, &Line) -> bool) -> Ranges {
        let mut out: Ranges = vec![];
        let mut open = false;
        for (p, l) in self.lines.iter().enumerate() {
            if pick(p, l) {
                match (open, out.last_mut()) {
                    (true, Some(r)) => r.1 = l.start,
                    _ => out.push((l.start, l.start)),
                }
                open = true;
            } else {
                open = false;
            }
        }
        out
    }
}

/// Lines to skip when reading a file again after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skip(Ranges);

impl Skip {
    pub fn new(mut ranges: Ranges) -> Self {
        ranges.sort_unstable();
        let mut out: Ranges = vec![];
        for (a, b) in ranges {
            match out.last_mut() {
                Some(r) if a <= r.1 => r.1 = r.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Skip(out)
    }

    pub fn add(&mut self, ranges: &[(u64, u64)]) {
        let mut all = std::mem::take(&mut self.0);
        all.extend_from_slice(ranges);
        *self = Skip::new(all);
    }

    /// Whether the line starting at `start` was delivered.
    pub fn contains(&self, start: u64) -> bool {
        let i = self.0.partition_point(|r| r.1 < start);
        self.0.get(i).is_some_and(|r| r.0 <= start)
    }

    /// Forgets ranges wholly before `offset`.
    pub fn drop_before(&mut self, offset: u64) {
        self.0.retain(|r| r.1 >= offset);
    }

    pub fn ranges(&self) -> &Ranges {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_watermark_is_the_first_line_not_delivered() {
        let mut l = Ledger::new(100);
        assert_eq!(l.watermark(), 100);
        let a = l.push(100, 110);
        let b = l.push(110, 120);
        let c = l.push(120, 130);
        assert_eq!(l.watermark(), 100);
        l.ack(b);
        assert_eq!(l.watermark(), 100);
        assert_eq!(l.skipped(), vec![(110, 110)]);
        l.ack(a);
        assert_eq!(l.watermark(), 120);
        assert!(l.skipped().is_empty());
        l.ack(c);
        assert_eq!(l.watermark(), 130);
        assert!(l.is_done());
        l.ack(c);
        l.ack(a);
        assert_eq!(l.watermark(), 130);
    }

    #[test]
    fn ranges_merge_consecutive_lines() {
        let mut l = Ledger::new(0);
        let ix: Vec<u64> = (0..5).map(|i| l.push(i * 10, i * 10 + 10)).collect();
        assert_eq!(l.ranges([ix[0], ix[1], ix[3]]), vec![(0, 10), (30, 30)]);
        assert_eq!(l.ranges([ix[4], ix[2], ix[3]]), vec![(20, 40)]);
    }

    #[test]
    fn skip_sets() {
        let s = Skip::new(vec![(30, 40), (0, 10), (5, 20)]);
        assert_eq!(s.ranges(), &vec![(0, 20), (30, 40)]);
        assert!(s.contains(0) && s.contains(20) && s.contains(35));
        assert!(!s.contains(21) && !s.contains(41));
    }

    proptest! {
        /// Whatever order entries are acknowledged in, and wherever the
        /// agent stops: reading again from the checkpoint (watermark, then
        /// skipping what it lists) yields exactly the lines not delivered.
        #[test]
        fn a_restart_reads_each_undelivered_line_once(
            n in 1usize..60,
            order in proptest::collection::vec(any::<u16>(), 0..60),
            stop in 0usize..60,
        ) {
            let mut l = Ledger::new(0);
            let starts: Vec<u64> = (0..n as u64).map(|i| i * 7).collect();
            let ix: Vec<u64> = starts.iter().map(|s| l.push(*s, s + 7)).collect();
            let mut acked = vec![false; n];
            for o in order.iter().take(stop) {
                let k = *o as usize % n;
                l.ack(ix[k]);
                acked[k] = true;
            }
            let skip = Skip::new(l.skipped());
            let w = l.watermark();
            let reread: Vec<usize> = (0..n)
                .filter(|k| starts[*k] >= w && !skip.contains(starts[*k]))
                .collect();
            let undelivered: Vec<usize> = (0..n).filter(|k| !acked[*k]).collect();
            prop_assert_eq!(reread, undelivered);
        }
    }
}
