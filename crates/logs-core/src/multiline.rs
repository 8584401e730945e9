//! Lines of one log entry joined, as the Container Insights quickstart
//! joins them: a line starting with whitespace (a stack trace's frames)
//! continues the entry before it; any other line starts a new entry. The
//! rule can be a regular expression for the first line instead.

use crate::reassemble::Entry;

/// What makes a line the first of an entry.
#[derive(Clone, Debug)]
pub enum StartRule {
    /// Not starting with a space or a tab.
    NotIndented,
    /// Matching this expression (on the line read as UTF-8, invalid bytes
    /// replaced).
    Regex(regex::Regex),
}

impl StartRule {
    fn starts(&self, content: &[u8]) -> bool {
        match self {
            StartRule::NotIndented => !matches!(content.first(), Some(b' ' | b'\t')),
            StartRule::Regex(r) => r.is_match(&String::from_utf8_lossy(content)),
        }
    }
}

/// Joins the lines of one stream of one file into entries, up to
/// `max_bytes` an entry (a line that would pass it starts a new one).
#[derive(Debug)]
pub struct Multiline {
    rule: StartRule,
    max_bytes: usize,
    current: Option<Entry>,
}

impl Multiline {
    pub fn new(rule: StartRule, max_bytes: usize) -> Self {
        Self {
            rule,
            max_bytes,
            current: None,
        }
    }

    /// Takes the next line; returns the entry it completes, if any.
    pub fn push(&mut self, line: Entry) -> Option<Entry> {
        match &mut self.current {
            Some(cur)
                if !self.rule.starts(&line.content)
                    && cur.content.len() + 1 + line.content.len() <= self.max_bytes =>
            {
                cur.content.push(b'\n');
                cur.content.extend_from_slice(&line.content);
                cur.split |= line.split;
                cur.marks.append(line.marks);
                None
            }
            _ => self.current.replace(line),
        }
    }

    /// The entry being joined (no line came for a while, or the file
    /// ended).
    pub fn flush(&mut self) -> Option<Entry> {
        self.current.take()
    }

    /// Whether an entry is being joined.
    pub fn is_empty(&self) -> bool {
        self.current.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::Stream;

    fn e(s: &str) -> Entry {
        Entry {
            time: "t".into(),
            stream: Stream::Stdout,
            content: s.as_bytes().to_vec(),
            split: false,
            marks: Default::default(),
        }
    }

    fn join(m: &mut Multiline, lines: &[&str]) -> Vec<String> {
        let mut out: Vec<Entry> = lines.iter().filter_map(|l| m.push(e(l))).collect();
        out.extend(m.flush());
        out.iter()
            .map(|x| String::from_utf8_lossy(&x.content).into_owned())
            .collect()
    }

    #[test]
    fn indented_lines_continue_the_entry() {
        let mut m = Multiline::new(StartRule::NotIndented, 1 << 20);
        let out = join(
            &mut m,
            &[
                "Exception in thread main",
                "\tat a.b(C.java:1)",
                "    at d.e(F.java:2)",
                "next entry",
                "third",
            ],
        );
        assert_eq!(
            out,
            [
                "Exception in thread main\n\tat a.b(C.java:1)\n    at d.e(F.java:2)",
                "next entry",
                "third"
            ]
        );
    }

    #[test]
    fn a_regex_start_rule_and_the_size_bound() {
        let rule = StartRule::Regex(regex::Regex::new(r"^\d{4}-").expect("a valid regex"));
        let mut m = Multiline::new(rule, 40);
        let out = join(
            &mut m,
            &[
                "2026-11-30 first",
                "continued",
                "2026-11-30 second",
                "this one is too long to fit",
            ],
        );
        assert_eq!(
            out,
            [
                "2026-11-30 first\ncontinued",
                "2026-11-30 second",
                "this one is too long to fit"
            ]
        );
    }
}
