//! One line of a container log file.
//!
//! CRI (containerd, CRI-O): `<RFC 3339 time> <stdout|stderr> <tags> <content>`,
//! the tags `F` (the line is whole, or the last piece of a long one) or `P`
//! (a piece; more follow), further tags after `:` ignored.
//! Docker's json-file driver: `{"log":"...\n","stream":"stdout","time":"..."}`,
//! a piece of a long line being a `log` without the final newline.

use std::borrow::Cow;

/// Which of the container's outputs the line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn parse(s: &[u8]) -> Option<Stream> {
        match s {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// How the file's lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cri,
    Docker,
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The runtime's timestamp, as written (RFC 3339, nanoseconds).
    pub time: Cow<'a, str>,
    pub stream: Stream,
    /// A piece of a longer line: the next line of the same stream goes on.
    pub partial: bool,
    /// What the container wrote, without the newline.
    pub content: Cow<'a, [u8]>,
    pub format: Format,
}

/// Why a line could not be read; the line is then delivered as it is or
/// counted as dropped by the caller, with this as the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty line")]
    Empty,
    #[error("CRI line: {0}")]
    Cri(&'static str),
    #[error("CRI line: time {0:?} is not an RFC 3339 time")]
    CriTime(String),
    #[error("Docker JSON line: {0}")]
    Docker(String),
}

/// Parses one line (without its final newline; a trailing `\n` or `\r\n`
/// is dropped if there). A line starting with `{` is read as Docker JSON,
/// any other as CRI.
pub fn parse(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.first() {
        None => Err(ParseError::Empty),
        Some(b'{') => docker(line),
        Some(_) => cri(line),
    }
}

fn cri(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = parts.next().ok_or(ParseError::Cri("no time"))?;
    let stream = parts.next().ok_or(ParseError::Cri("no stream"))?;
    let tags = parts.next().ok_or(ParseError::Cri("no tags"))?;
    // `... stdout F` with nothing after: an empty line.
    let content = parts.next().unwrap_or(b"");
    let time = std::str::from_utf8(time).map_err(|_| ParseError::Cri("time is not UTF-8"))?;
    if crate::time::millis(time).is_none() {
        return Err(ParseError::CriTime(time.chars().take(64).collect()));
    }
    let stream =
        Stream::parse(stream).ok_or(ParseError::Cri("stream is neither stdout nor stderr"))?;
    let partial = match tags.split(|b| *b == b':').next() {
        Some(b"F") => false,
        Some(b"P") => true,
        _ => return Err(ParseError::Cri("tag is neither F nor P")),
    };
    Ok(Line {
        time: Cow::Borrowed(time),
        stream,
        partial,
        content: Cow::Borrowed(content),
        format: Format::Cri,
    })
}

#[derive(serde::Deserialize)]
struct DockerLine {
    log: String,
    stream: String,
    #[serde(default)]
    time: String,
}

fn docker(line: &[u8]) -> Result<Line<'static>, ParseError> {
    let d: DockerLine =
        serde_json::from_slice(line).map_err(|e| ParseError::Docker(e.to_string()))?;
    let stream = Stream::parse(d.stream.as_bytes())
        .ok_or_else(|| ParseError::Docker(format!("stream {:?}", d.stream)))?;
    let mut log = d.log.into_bytes();
    let partial = log.last() != Some(&b'\n');
    if !partial {
        log.pop();
    }
    Ok(Line {
        time: Cow::Owned(d.time),
        stream,
        partial,
        content: Cow::Owned(log),
        format: Format::Docker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_whole_partial_and_empty() {
        let l = parse(b"2026-11-30T10:00:00.123456789Z stdout F hello world\n").expect("parses");
        assert_eq!(l.time, "2026-11-30T10:00:00.123456789Z");
        assert_eq!(l.stream, Stream::Stdout);
        assert!(!l.partial);
        assert_eq!(&*l.content, b"hello world");
        assert_eq!(l.format, Format::Cri);
        let l = parse(b"2026-11-30T10:00:00+01:00 stderr P  two  spaces ").expect("parses");
        assert!(l.partial);
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(&*l.content, b" two  spaces ");
        let l = parse(b"2026-11-30T10:00:00Z stdout F").expect("parses");
        assert_eq!(&*l.content, b"");
        let l = parse(b"2026-11-30T10:00:00Z stdout F:x content").expect("extra tags");
        assert_eq!(&*l.content, b"content");
    }

    #[test]
    fn cri_content_need_not_be_utf8() {
        let l = parse(b"2026-11-30T10:00:00Z stdout F \xff\xfe bytes").expect("parses");
        assert_eq!(&*l.content, b"\xff\xfe bytes");
    }

    #[test]
    fn bad_cri_lines_say_why() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"\n"), Err(ParseError::Empty));
        assert_eq!(parse(b"garbage"), Err(ParseError::Cri("no stream")));
        assert!(matches!(
            parse(b"yesterday stdout F x"),
            Err(ParseError::CriTime(t)) if t == "yesterday"
        ));
        assert_eq!(
            parse(b"2026-11-30T10:00:00Z stdin F x"),
            Err(ParseError::Cri("stream is neither stdout nor stderr"))
        );
        assert_eq!(
            parse(b"2026-11-30T10:00:00Z stdout X x"),
            Err(ParseError::Cri("tag is neither F nor P"))
        );
    }

    #[test]
    fn docker_lines_whole_and_partial() {
        let l = parse(
            br#"{"log":"hello \"you\"\n","stream":"stderr","time":"2026-11-30T10:00:00.5Z"}"#,
        )
        .expect("parses");
        assert_eq!(&*l.content, br#"hello "you""#);
        assert!(!l.partial);
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.time, "2026-11-30T10:00:00.5Z");
        assert_eq!(l.format, Format::Docker);
        let l = parse(br#"{"log":"piece","stream":"stdout","time":"t"}"#).expect("parses");
        assert!(l.partial);
        assert!(matches!(parse(b"{not json"), Err(ParseError::Docker(_))));
        assert!(matches!(
            parse(br#"{"log":"x\n","stream":"stdin"}"#),
            Err(ParseError::Docker(m)) if m.contains("stdin")
        ));
    }
}
