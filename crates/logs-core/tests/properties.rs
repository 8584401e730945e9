//! Whatever the bytes: parsing never panics, and a line written by a
//! runtime in pieces (CRI or Docker JSON, any split, any limit) comes back
//! whole and in order.

use outrigger_logs_core::{Entry, Reassembler, Stream, parse};
use proptest::prelude::*;

/// A runtime's lines for `content`, cut at `cuts`.
fn pieces(content: &[u8], cuts: &[usize], docker: bool) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (content.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    let mut bounds = vec![0];
    bounds.extend(at.into_iter().filter(|c| *c > 0 && *c < content.len()));
    bounds.push(content.len());
    bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let last = i == bounds.len() - 2;
            let piece = &content[w[0]..w[1]];
            if docker {
                let mut log = String::from_utf8(piece.to_vec()).expect("UTF-8 for Docker");
                if last {
                    log.push('\n');
                }
                serde_json::to_vec(&serde_json::json!({
                    "log": log, "stream": "stdout", "time": "2026-11-30T10:00:00Z"}))
                .expect("JSON")
            } else {
                let mut l = format!(
                    "2026-11-30T10:00:00.000000001Z stdout {} ",
                    if last { "F" } else { "P" }
                )
                .into_bytes();
                l.extend_from_slice(piece);
                l
            }
        })
        .collect()
}

fn whole(entries: &[Entry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.content.clone()).collect()
}

proptest! {
    #[test]
    fn parsing_any_bytes_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&line);
        let mut with_prefix = b"2026-11-30T10:00:00Z stdout F ".to_vec();
        with_prefix.extend_from_slice(&line);
        let _ = parse(&with_prefix);
    }

    #[test]
    fn cri_pieces_come_back_whole(
        content in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n' && *b != b'\r'), 1..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        max in 1usize..600,
    ) {
        let mut r = Reassembler::new(max);
        let mut out = vec![];
        for l in pieces(&content, &cuts, false) {
            out.extend(r.push(&parse(&l).expect("a runtime's line parses"), 0));
        }
        prop_assert_eq!(r.pending_bytes(), 0);
        prop_assert_eq!(whole(&out), content.clone());
        prop_assert!(out.iter().all(|e| e.content.len() <= max && e.stream == Stream::Stdout));
        prop_assert_eq!(out.len() == 1, content.len() <= max);
    }

    #[test]
    fn docker_pieces_come_back_whole(
        content in "[^\n\r]{1,200}",
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let bytes = content.as_bytes();
        // Docker cuts on character boundaries.
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).filter(|c| content.is_char_boundary(*c)).collect();
        let mut r = Reassembler::new(1 << 20);
        let mut out = vec![];
        for l in pieces(bytes, &cuts, true) {
            out.extend(r.push(&parse(&l).expect("a runtime's line parses"), 0));
        }
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!(whole(&out), bytes.to_vec());
    }
}

proptest! {
    /// The hand-written RFC 3339 reader agrees with jiff on every time since
    /// 1970 (before it, jiff rounds milliseconds toward zero, ours down).
    #[test]
    fn millis_agrees_with_jiff(secs in 0i64..5_000_000_000, nanos in 0u32..1_000_000_000, offset_min in -1439i32..1439, digits in 0usize..10) {
        let t = jiff::Timestamp::new(secs, nanos as i32).expect("in range");
        let offset = jiff::tz::Offset::from_seconds(offset_min * 60).expect("offset");
        let dt = offset.to_datetime(t);
        let frac = if digits == 0 { String::new() } else { format!(".{:09}", dt.subsec_nanosecond())[..digits + 1].to_string() };
        let o = if offset_min == 0 { "Z".to_string() } else {
            let a = offset_min.abs();
            format!("{}{:02}:{:02}", if offset_min < 0 { '-' } else { '+' }, a / 60, a % 60)
        };
        let s = format!("{}{frac}{o}", dt.strftime("%Y-%m-%dT%H:%M:%S"));
        let want = s.parse::<jiff::Timestamp>().expect("jiff reads it").as_millisecond();
        prop_assert_eq!(outrigger_logs_core::time::millis(&s), Some(want), "{}", s);
    }
}

proptest! {
    /// The hand-written JSON string escaper writes what serde_json does.
    #[test]
    fn json_strings_escape_as_serde_json(s in any::<String>()) {
        let mut ours = String::new();
        outrigger_logs_core::record::push_json_str(&mut ours, &s);
        prop_assert_eq!(ours, serde_json::to_string(&s).expect("json"));
    }
}
