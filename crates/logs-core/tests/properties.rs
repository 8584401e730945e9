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
            out.extend(r.push(&parse(&l).expect("a runtime's line parses")));
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
            out.extend(r.push(&parse(&l).expect("a runtime's line parses")));
        }
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!(whole(&out), bytes.to_vec());
    }
}
