//! A container log file holds whatever a container wrote (and whatever a
//! broken runtime or a truncated write left): its lines, parsed, pieced
//! together and joined, must never panic, and nothing a line held is lost
//! on the way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outrigger_logs_core::{ContainerFile, Multiline, Reassembler, StartRule, parse};

fuzz_target!(|data: &[u8]| {
    let mut pieces = Reassembler::new(64);
    let mut joined = Multiline::new(StartRule::NotIndented, 256);
    let (mut read, mut out) = (0usize, 0usize);
    for line in data.split(|b| *b == b'\n') {
        let Ok(l) = parse(line) else { continue };
        read += l.content.len();
        for e in pieces.push(&l, 0) {
            assert!(e.content.len() <= 64);
            out += e.content.len();
            let _ = joined.push(e);
        }
    }
    out += pieces.flush().iter().map(|e| e.content.len()).sum::<usize>();
    assert_eq!(read, out, "every byte read comes out");
    let _ = joined.flush();
    let _ = ContainerFile::parse(&String::from_utf8_lossy(data));
});
