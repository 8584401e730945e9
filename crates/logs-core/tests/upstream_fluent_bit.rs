//! Upstream's own test cases for container log lines, ported onto
//! `outrigger_logs_core`.
//!
//! Upstream: fluent/fluent-bit, the stored snapshot at commit
//! d55459d492c5c019c0f7dc24db42e69ef47a5437 (2026-08-21):
//!
//! - `tests/internal/multiline.c` (the built-in `docker` and `cri`
//!   multiline parsers, the language parsers, custom rules, buffer limits);
//! - `tests/runtime/filter_kubernetes.c` with its data under
//!   `tests/runtime/data/kubernetes/{log,out}/` (the record after the
//!   `kubernetes` filter);
//! - `tests/runtime/out_cloudwatch.c` with
//!   `plugins/out_cloudwatch_logs/cloudwatch_api.h` (`MAX_EVENT_LEN`).
//!
//! Tally, over the 134 cases of those three `TEST_LIST`s (22 + 96 + 16):
//!
//! - ported: 27 cases, one test each;
//! - passing as upstream expects: 11 tests (six of them compare after
//!   dropping one final newline, see below; `event_size_at_limit` was a bug
//!   this port found, fixed: an event now takes 1,000,000 bytes, as
//!   CloudWatch and Fluent Bit do, where we cut at the old 256 KiB);
//! - pinned where we differ on purpose (`// Differs from upstream:`): 16
//!   tests;
//! - not ported: 107 cases, listed at the top of each module.
//!
//! One difference runs through every module: Fluent Bit keeps a line's
//! final newline in `log` (a Docker `log` ends in `\n`, and its joiner ends
//! each joined line with one); we hold what the container wrote without its
//! line terminator (`Line::content`, `Entry::content`), CRI and Docker
//! alike, so upstream's expected strings are compared through [`chomp`].
//! That alone does not make a case "differing".
//!
//! Stream names (`log_stream_prefix` + tag, `names::*`): no upstream test
//! asserts a stream name (`out_cloudwatch.c` runs its API mocks with
//! `from-fluent-` and tag `test` but checks only the calls), so there is
//! nothing to port; `names` is covered by our own tests.

use outrigger_logs_core::{
    Entry, Format, Marks, Multiline, ParseError, Reassembler, StartRule, Stream, batch, parse,
    record, time,
};
use serde_json::{Value, json};

/// Upstream's expected string without its final newline.
fn chomp(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// What comes out of a file's lines, in delivery order: the entries the
/// reassembler completes, and (as the agent does) an unparsable line
/// delivered at once as it is, then what is still held at the end.
fn read_file(lines: &[&str]) -> Vec<(Option<Stream>, String)> {
    let mut r = Reassembler::new(1 << 20);
    let mut out = vec![];
    let text = |e: Entry| {
        (
            Some(e.stream),
            String::from_utf8_lossy(&e.content).into_owned(),
        )
    };
    for (i, l) in lines.iter().enumerate() {
        match parse(l.as_bytes()) {
            Ok(line) => out.extend(r.push(&line, i as u64).into_iter().map(text)),
            Err(ParseError::Empty) => {}
            Err(_) => out.push((None, l.to_string())),
        }
    }
    out.extend(r.flush().into_iter().map(text));
    out
}

fn contents(out: &[(Option<Stream>, String)]) -> Vec<&str> {
    out.iter().map(|(_, s)| s.as_str()).collect()
}

/// A whole line as the reassembler gives it to the joiner (the file's line
/// terminator dropped).
fn entry(line: &str, stream: Stream, mark: u64) -> Entry {
    Entry {
        time: "2026-11-30T10:00:00Z".into(),
        stream,
        content: chomp(line).as_bytes().to_vec(),
        split: false,
        marks: Marks::one(mark),
    }
}

/// The entries `rule` makes of `lines`, bounded at `max` bytes.
fn join(rule: StartRule, max: usize, lines: &[&str]) -> Vec<String> {
    let mut m = Multiline::new(rule, max);
    let mut out: Vec<Entry> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| m.push(entry(l, Stream::Stdout, i as u64)))
        .collect();
    out.extend(m.flush());
    out.iter()
        .map(|e| String::from_utf8_lossy(&e.content).into_owned())
        .collect()
}

fn regex(r: &str) -> StartRule {
    StartRule::Regex(regex::Regex::new(r).unwrap_or_else(|e| panic!("{r}: {e}")))
}

mod multiline_c {
    //! `tests/internal/multiline.c`.
    //!
    //! Not ported:
    //! - `endswith`: a line ending in `\` continues on the next; we have no
    //!   ends-with rule (`StartRule` is not-indented or a first-line regex).
    //! - `issue_4949`: `parser_python`'s input and expectation with a `java`
    //!   parser loaded on a second stream; nothing more for us than
    //!   `test_parser_python`.
    //! - `issue_5504`: the flush timer's bookkeeping; our joiner is flushed
    //!   by its caller, there is no timer in it.
    //! - `buffer_limit_disabled`: parsing the `multiline_buffer_limit`
    //!   setting (`false` → unlimited); no such setting string here.
    //! - `known_bug_multi_group_flush_only_first_group`,
    //!   `known_bug_truncation_drops_overflow_line`,
    //!   `known_bug_empty_context_flush_crashes`,
    //!   `known_bug_empty_context_append_crashes`: disabled upstream (they
    //!   only print "skipped"), nothing to port.

    use super::*;

    /// `docker_input`, its fourth line's newline written escaped (`\n`, as
    /// Docker writes it); upstream's has a raw line feed inside the JSON
    /// string, which `test_parser_docker` pins separately.
    const DOCKER_INPUT: [&str; 7] = [
        r#"{"log": "aa\n", "stream": "stdout", "time": "2021-02-01T16:45:03.01231z"}"#,
        r#"{"log": "aa\n", "stream": "stderr", "time": "2021-02-01T16:45:03.01231z"}"#,
        r#"{"log": "bb", "stream": "stdout", "time": "2021-02-01T16:45:03.01232z"}"#,
        r#"{"log": "cc\n", "stream": "stdout", "time": "2021-02-01T16:45:03.01233z"}"#,
        r#"{"log": "dd", "stream": "stderr", "time": "2021-02-01T16:45:03.01233z"}"#,
        "single line to force pending flush of the previous line",
        r#"{"log": "ee\n", "stream": "stderr", "time": "2021-02-01T16:45:03.01234z"}"#,
    ];

    const DOCKER_OUTPUT: [&str; 6] = [
        "aa\n",
        "aa\n",
        "bbcc\n",
        "dd",
        "single line to force pending flush of the previous line",
        "ee\n",
    ];

    const CRI_INPUT: [&str; 16] = [
        "2019-05-07T18:57:50.904275087+00:00 stdout P 1a. some ",
        "2019-05-07T18:57:51.904275088+00:00 stdout P multiline ",
        "2019-05-07T18:57:52.904275089+00:00 stdout F log",
        "2019-05-07T18:57:50.904275087+00:00 stderr P 1b. some ",
        "2019-05-07T18:57:51.904275088+00:00 stderr P multiline ",
        "2019-05-07T18:57:52.904275089+00:00 stderr F log",
        "2019-05-07T18:57:53.904275090+00:00 stdout P 2a. another ",
        "2019-05-07T18:57:54.904275091+00:00 stdout P multiline ",
        "2019-05-07T18:57:55.904275092+00:00 stdout F log",
        "2019-05-07T18:57:53.904275090+00:00 stderr P 2b. another ",
        "2019-05-07T18:57:54.904275091+00:00 stderr P multiline ",
        "2019-05-07T18:57:55.904275092+00:00 stderr F log",
        "2019-05-07T18:57:56.904275093+00:00 stdout F 3a. non multiline 1",
        "2019-05-07T18:57:57.904275094+00:00 stdout F 4a. non multiline 2",
        "2019-05-07T18:57:56.904275093+00:00 stderr F 3b. non multiline 1",
        "2019-05-07T18:57:57.904275094+00:00 stderr F 4b. non multiline 2",
    ];

    const CRI_OUTPUT: [&str; 8] = [
        "1a. some multiline log",
        "1b. some multiline log",
        "2a. another multiline log",
        "2b. another multiline log",
        "3a. non multiline 1",
        "4a. non multiline 2",
        "3b. non multiline 1",
        "4b. non multiline 2",
    ];

    #[test]
    fn test_parser_docker() {
        let out = read_file(&DOCKER_INPUT);
        // The first three records are upstream's.
        assert_eq!(
            contents(&out)[..3],
            DOCKER_OUTPUT[..3]
                .iter()
                .map(|s| chomp(s))
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(out[0].0, Some(Stream::Stdout));
        assert_eq!(out[1].0, Some(Stream::Stderr));
        assert_eq!(out[2].0, Some(Stream::Stdout));
        // Differs from upstream: a line that is neither Docker JSON nor CRI
        // does not end the pieces held for a stream; it is delivered as it is
        // (by the agent: `parse` says why it is not a line) and stderr's `dd`
        // still joins its `ee`, giving `ddee` where upstream flushes `dd` alone
        // and then `ee\n`; because the pieces of one stream are consecutive in
        // that stream, whatever else the file holds between them.
        assert_eq!(
            contents(&out)[3..],
            [
                "single line to force pending flush of the previous line",
                "ddee"
            ]
        );
        assert_eq!(out[3].0, None);
        assert_eq!(out[4].0, Some(Stream::Stderr));

        // Differs from upstream: a raw line feed inside a JSON string (the
        // fourth line of upstream's input, fed to it as one record) is not
        // JSON, so the line is refused; it cannot come from a file anyway,
        // where that line feed ends the line.
        let raw =
            "{\"log\": \"cc\n\", \"stream\": \"stdout\", \"time\": \"2021-02-01T16:45:03.01233z\"}";
        assert!(matches!(parse(raw.as_bytes()), Err(ParseError::Docker(_))));

        // The record keeps the time Fluent Bit's docker parser keeps
        // (`time keep` on) and, as everywhere here, no final newline in `log`.
        let first = parse(DOCKER_INPUT[0].as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.time, "2021-02-01T16:45:03.01231z");
        // Upstream checks every record has a time; so does ours (RFC 3339
        // allows the lower-case `z`).
        assert_eq!(time::millis(&first.time), Some(1_612_197_903_012));
        let mut r = Reassembler::new(1 << 20);
        let e = r.push(&first, 0).remove(0);
        let v: Value = serde_json::from_str(&record::container(&e, Format::Docker, None))
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            v,
            json!({"time": "2021-02-01T16:45:03.01231z", "stream": "stdout", "log": "aa"})
        );
    }

    #[test]
    fn test_parser_cri() {
        let out = read_file(&CRI_INPUT);
        assert_eq!(contents(&out), CRI_OUTPUT);
        let streams: Vec<Option<Stream>> = out.iter().map(|(s, _)| *s).collect();
        let (o, e) = (Some(Stream::Stdout), Some(Stream::Stderr));
        assert_eq!(streams, [o, e, o, e, o, o, e, e]);

        // Upstream checks each record has a time: ours is the first piece's.
        let mut r = Reassembler::new(1 << 20);
        let mut done = vec![];
        for (i, l) in CRI_INPUT[..3].iter().enumerate() {
            done.extend(r.push(
                &parse(l.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                i as u64,
            ));
        }
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].time, "2019-05-07T18:57:50.904275087+00:00");
        assert_eq!(time::millis(&done[0].time), Some(1_557_255_470_904));
        assert_eq!(done[0].marks.iter().collect::<Vec<_>>(), [0, 1, 2]);
    }

    /// `container_mix_input`, its sixth line's newline written escaped (see
    /// `DOCKER_INPUT`).
    #[test]
    fn test_container_mix() {
        let input = [
            r#"{"log": "a1\n", "stream": "stdout", "time": "2021-02-01T16:45:03.01231z"}"#,
            r#"{"log": "a2\n", "stream": "stderr", "time": "2021-02-01T16:45:03.01231z"}"#,
            r#"{"log": "bb", "stream": "stdout", "time": "2021-02-01T16:45:03.01232z"}"#,
            r#"{"log": "cc", "stream": "stdout", "time": "2021-02-01T16:45:03.01233z"}"#,
            r#"{"log": "dd", "stream": "stderr", "time": "2021-02-01T16:45:03.01232z"}"#,
            r#"{"log": "ee\n", "stream": "stderr", "time": "2021-02-01T16:45:03.01233z"}"#,
            "2019-05-07T18:57:52.904275089+00:00 stdout F single full",
            "2019-05-07T18:57:50.904275087+00:00 stdout P 1a. some ",
            "2019-05-07T18:57:51.904275088+00:00 stdout P multiline ",
            "2019-05-07T18:57:52.904275089+00:00 stdout F log",
            "2019-05-07T18:57:50.904275087+00:00 stderr P 1b. some ",
            "2019-05-07T18:57:51.904275088+00:00 stderr P multiline ",
            "2019-05-07T18:57:52.904275089+00:00 stderr F log",
            r#"{"log": "dd-out\n", "stream": "stdout", "time": "2021-02-01T16:45:03.01234z"}"#,
            r#"{"log": "dd-err\n", "stream": "stderr", "time": "2021-02-01T16:45:03.01234z"}"#,
        ];
        let upstream = [
            "a1\n",
            "a2\n",
            "ddee\n",
            "single full",
            "1a. some multiline log",
            "1b. some multiline log",
            "bbccdd-out\n",
            "dd-err\n",
        ];
        let out = read_file(&input);
        // Differs from upstream: stdout's Docker pieces `bb` `cc` are
        // completed by the next stdout line whatever its format (`bbccsingle
        // full`), and `dd-out` stands alone; upstream keeps Docker and CRI
        // pieces apart. Because the reassembler holds pieces per stream only:
        // one file is written by one runtime, in one format, so a file mixing
        // the two does not occur.
        assert_eq!(
            contents(&out),
            [
                "a1",
                "a2",
                "ddee",
                "bbccsingle full",
                "1a. some multiline log",
                "1b. some multiline log",
                "dd-out",
                "dd-err",
            ]
        );
        // Everything else is upstream's, in upstream's order.
        let same = [0, 1, 2, 4, 5, 7];
        for i in same {
            assert_eq!(contents(&out)[i], chomp(upstream[i]));
        }
    }

    #[test]
    fn test_parser_docker_cri_chain() {
        let out = read_file(&[
            "2025-09-22T19:07:06.115398289Z stdout F first message",
            "2025-09-22T19:07:06.116725604Z stdout F second message",
            "2025-09-22T19:07:08.582112316Z stdout F third message",
        ]);
        assert_eq!(
            contents(&out),
            ["first message", "second message", "third message"]
        );
    }

    #[test]
    fn test_parser_java() {
        let input = [
            "Exception in thread \"main\" java.lang.IllegalStateException: ..null property\n",
            "     at com.example.myproject.Author.getBookIds(xx.java:38)\n",
            "     at com.example.myproject.Bootstrap.main(Bootstrap.java:14)\n",
            "Caused by: java.lang.NullPointerException\n",
            "     at com.example.myproject.Book.getId(Book.java:22)\n",
            "     at com.example.myproject.Author.getBookIds(Author.java:35)\n",
            "     ... 1 more\n",
            "single line\n",
        ];
        // Upstream (its `java` parser): the trace, `Caused by:` included, then
        // `single line`.
        // Differs from upstream: `Caused by:` starts an entry of its own,
        // because our joiner has no language parsers: its rule (the
        // quickstart's) is that a line not starting with a space or tab
        // starts an entry.
        assert_eq!(
            join(StartRule::NotIndented, 1 << 20, &input),
            [
                "Exception in thread \"main\" java.lang.IllegalStateException: ..null property\n     at com.example.myproject.Author.getBookIds(xx.java:38)\n     at com.example.myproject.Bootstrap.main(Bootstrap.java:14)",
                "Caused by: java.lang.NullPointerException\n     at com.example.myproject.Book.getId(Book.java:22)\n     at com.example.myproject.Author.getBookIds(Author.java:35)\n     ... 1 more",
                "single line",
            ]
        );
    }

    #[test]
    fn test_parser_python() {
        let input = [
            "Traceback (most recent call last):\n",
            "  File \"/base/data/home/runtimes/python27/python27_lib/versions/third_party/webapp2-2.5.2/webapp2.py\", line 1535, in __call__\n",
            "    rv = self.handle_exception(request, response, e)\n",
            "  File \"/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py\", line 17, in start\n",
            "    return get()\n",
            "  File \"/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py\", line 5, in get\n",
            "    raise Exception('spam', 'eggs')\n",
            "Exception: ('spam', 'eggs')\n",
            "hello world, not multiline\n",
        ];
        let out = join(StartRule::NotIndented, 1 << 20, &input);
        // Differs from upstream: the closing `Exception: ('spam', 'eggs')`
        // line is an entry of its own (upstream's `python` parser ends the
        // traceback with it), because our rule is the not-indented one, with
        // no language parsers.
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0],
            input[..7]
                .iter()
                .map(|l| chomp(l))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(out[1], "Exception: ('spam', 'eggs')");
        assert_eq!(out[2], "hello world, not multiline");
    }

    #[test]
    fn test_parser_ruby() {
        let input = [
            "/app/config/routes.rb:6:in `/': divided by 0 (ZeroDivisionError)",
            "\tfrom /app/config/routes.rb:6:in `block in <main>'",
            "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:428:in `instance_exec'",
            "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:428:in `eval_block'",
            "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:410:in `draw'",
            "\tfrom /app/config/routes.rb:1:in `<main>'",
            "hello world, not multiline\n",
        ];
        let upstream = [
            concat!(
                "/app/config/routes.rb:6:in `/': divided by 0 (ZeroDivisionError)\n",
                "\tfrom /app/config/routes.rb:6:in `block in <main>'\n",
                "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:428:in `instance_exec'\n",
                "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:428:in `eval_block'\n",
                "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:410:in `draw'\n",
                "\tfrom /app/config/routes.rb:1:in `<main>'\n",
            ),
            "hello world, not multiline\n",
        ];
        assert_eq!(
            join(StartRule::NotIndented, 1 << 20, &input),
            upstream.map(chomp)
        );
    }

    /// Upstream's custom rules: a line starting with `[` starts, lines
    /// starting with whitespace continue; ours is the not-indented rule,
    /// the same on this input.
    #[test]
    fn test_parser_elastic() {
        let input = [
            "[some weird test] IndexNotFoundException[no such index]\n",
            "    at org.elasticsearch.cluster.metadata.IndexNameExpressionResolver....\n",
            "    at org.elasticsearch.cluster.metadata.IndexNameExpressionResolver.java:133)\n",
            "    at org.elasticsearch.action.admin.indices.delete.java:75)\n",
            "another separate log line\n",
        ];
        let upstream = [
            concat!(
                "[some weird test] IndexNotFoundException[no such index]\n",
                "    at org.elasticsearch.cluster.metadata.IndexNameExpressionResolver....\n",
                "    at org.elasticsearch.cluster.metadata.IndexNameExpressionResolver.java:133)\n",
                "    at org.elasticsearch.action.admin.indices.delete.java:75)\n",
            ),
            "another separate log line\n",
        ];
        assert_eq!(
            join(StartRule::NotIndented, 1 << 20, &input),
            upstream.map(chomp)
        );
    }

    #[test]
    fn test_parser_go() {
        // Upstream's `go_input`: a panic and four goroutines' stacks, 52
        // lines, the last one unrelated.
        let input = [
            "panic: my panic\n",
            "\n",
            "goroutine 4 [running]:\n",
            "panic(0x45cb40, 0x47ad70)\n",
            "\t/usr/local/go/src/runtime/panic.go:542 +0x46c fp=0xc42003f7b8 sp=0xc42003f710 pc=0x422f7c\n",
            "main.main.func1(0xc420024120)\n",
            "\tfoo.go:6 +0x39 fp=0xc42003f7d8 sp=0xc42003f7b8 pc=0x451339\n",
            "runtime.goexit()\n",
            "\t/usr/local/go/src/runtime/asm_amd64.s:2337 +0x1 fp=0xc42003f7e0 sp=0xc42003f7d8 pc=0x44b4d1\n",
            "created by main.main\n",
            "\tfoo.go:5 +0x58\n",
            "\n",
            "goroutine 1 [chan receive]:\n",
            "runtime.gopark(0x4739b8, 0xc420024178, 0x46fcd7, 0xc, 0xc420028e17, 0x3)\n",
            "\t/usr/local/go/src/runtime/proc.go:280 +0x12c fp=0xc420053e30 sp=0xc420053e00 pc=0x42503c\n",
            "runtime.goparkunlock(0xc420024178, 0x46fcd7, 0xc, 0x1000f010040c217, 0x3)\n",
            "\t/usr/local/go/src/runtime/proc.go:286 +0x5e fp=0xc420053e70 sp=0xc420053e30 pc=0x42512e\n",
            "runtime.chanrecv(0xc420024120, 0x0, 0xc420053f01, 0x4512d8)\n",
            "\t/usr/local/go/src/runtime/chan.go:506 +0x304 fp=0xc420053f20 sp=0xc420053e70 pc=0x4046b4\n",
            "runtime.chanrecv1(0xc420024120, 0x0)\n",
            "\t/usr/local/go/src/runtime/chan.go:388 +0x2b fp=0xc420053f50 sp=0xc420053f20 pc=0x40439b\n",
            "main.main()\n",
            "\tfoo.go:9 +0x6f fp=0xc420053f80 sp=0xc420053f50 pc=0x4512ef\n",
            "runtime.main()\n",
            "\t/usr/local/go/src/runtime/proc.go:185 +0x20d fp=0xc420053fe0 sp=0xc420053f80 pc=0x424bad\n",
            "runtime.goexit()\n",
            "\t/usr/local/go/src/runtime/asm_amd64.s:2337 +0x1 fp=0xc420053fe8 sp=0xc420053fe0 pc=0x44b4d1\n",
            "\n",
            "goroutine 2 [force gc (idle)]:\n",
            "runtime.gopark(0x4739b8, 0x4ad720, 0x47001e, 0xf, 0x14, 0x1)\n",
            "\t/usr/local/go/src/runtime/proc.go:280 +0x12c fp=0xc42003e768 sp=0xc42003e738 pc=0x42503c\n",
            "runtime.goparkunlock(0x4ad720, 0x47001e, 0xf, 0xc420000114, 0x1)\n",
            "\t/usr/local/go/src/runtime/proc.go:286 +0x5e fp=0xc42003e7a8 sp=0xc42003e768 pc=0x42512e\n",
            "runtime.forcegchelper()\n",
            "\t/usr/local/go/src/runtime/proc.go:238 +0xcc fp=0xc42003e7e0 sp=0xc42003e7a8 pc=0x424e5c\n",
            "runtime.goexit()\n",
            "\t/usr/local/go/src/runtime/asm_amd64.s:2337 +0x1 fp=0xc42003e7e8 sp=0xc42003e7e0 pc=0x44b4d1\n",
            "created by runtime.init.4\n",
            "\t/usr/local/go/src/runtime/proc.go:227 +0x35\n",
            "\n",
            "goroutine 3 [GC sweep wait]:\n",
            "runtime.gopark(0x4739b8, 0x4ad7e0, 0x46fdd2, 0xd, 0x419914, 0x1)\n",
            "\t/usr/local/go/src/runtime/proc.go:280 +0x12c fp=0xc42003ef60 sp=0xc42003ef30 pc=0x42503c\n",
            "runtime.goparkunlock(0x4ad7e0, 0x46fdd2, 0xd, 0x14, 0x1)\n",
            "\t/usr/local/go/src/runtime/proc.go:286 +0x5e fp=0xc42003efa0 sp=0xc42003ef60 pc=0x42512e\n",
            "runtime.bgsweep(0xc42001e150)\n",
            "\t/usr/local/go/src/runtime/mgcsweep.go:52 +0xa3 fp=0xc42003efd8 sp=0xc42003efa0 pc=0x419973\n",
            "runtime.goexit()\n",
            "\t/usr/local/go/src/runtime/asm_amd64.s:2337 +0x1 fp=0xc42003efe0 sp=0xc42003efd8 pc=0x44b4d1\n",
            "created by runtime.gcenable\n",
            "\t/usr/local/go/src/runtime/mgc.go:216 +0x58\n",
            "one more line, no multiline",
        ];
        assert_eq!(input.len(), 52);
        let out = join(StartRule::NotIndented, 1 << 20, &input);
        // Upstream (its `go` parser): lines 1 to 51 as one record, then
        // `one more line, no multiline`.
        // Differs from upstream: every line not starting with a tab starts
        // an entry, the empty ones included (a function name keeps its
        // indented location line), so the panic comes out as 30 entries;
        // because our joiner has the not-indented rule and no language
        // parsers. Nothing is lost or reordered.
        assert_eq!(out.len(), 31);
        assert_eq!(out[0], "panic: my panic");
        assert_eq!(out[1], "");
        assert_eq!(out[2], "goroutine 4 [running]:");
        assert_eq!(
            out[3],
            "panic(0x45cb40, 0x47ad70)\n\t/usr/local/go/src/runtime/panic.go:542 +0x46c fp=0xc42003f7b8 sp=0xc42003f710 pc=0x422f7c"
        );
        assert_eq!(out[30], "one more line, no multiline");
        assert_eq!(
            out.join("\n"),
            input
                .iter()
                .map(|l| chomp(l))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// CRI lines, then upstream's custom rules: a line ending in `- `
    /// starts a message, lines starting with a digit continue it.
    #[test]
    fn test_issue_3817_1() {
        let input = [
            "2021-05-17T17:35:01.184675702Z stdout F [DEBUG] 1 start multiline - ",
            "2021-05-17T17:35:01.184747208Z stdout F 1 cont A",
            "2021-05-17T17:35:01.184675702Z stdout F [DEBUG] 2 start multiline - ",
            "2021-05-17T17:35:01.184747208Z stdout F 2 cont B",
            "another isolated line",
        ];
        let upstream = [
            "[DEBUG] 1 start multiline - \n1 cont A",
            "[DEBUG] 2 start multiline - \n2 cont B",
            "another isolated line",
        ];
        let mut m = Multiline::new(regex("- $"), 1 << 20);
        let mut r = Reassembler::new(1 << 20);
        let mut out = vec![];
        for (i, l) in input.iter().enumerate() {
            match parse(l.as_bytes()) {
                Ok(line) => {
                    for e in r.push(&line, i as u64) {
                        out.extend(
                            m.push(e)
                                .map(|e| String::from_utf8_lossy(&e.content).into_owned()),
                        );
                    }
                }
                Err(_) => out.push(l.to_string()),
            }
        }
        out.extend(
            m.flush()
                .map(|e| String::from_utf8_lossy(&e.content).into_owned()),
        );
        // Differs from upstream: the same three records, but the line that is
        // not CRI is delivered when it is read, before the message still
        // being joined; because the agent hands an unparsable line on at once
        // (it is not part of any stream's message).
        assert_eq!(out, [upstream[0], upstream[2], upstream[1]]);
    }

    /// `cri_input` handed to the `cri` parser as records (`{"log": line}`)
    /// rather than text; the same lines for us.
    #[test]
    fn test_issue_4034() {
        assert_eq!(contents(&read_file(&CRI_INPUT)), CRI_OUTPUT);
    }

    /// Upstream's rules match every line (start and continuation `/./`);
    /// here no line matches the start rule (`^$`, none is empty), so every
    /// line continues the entry, and the bound is 80 bytes.
    #[test]
    fn test_buffer_limit_truncation() {
        let line1 = r#"{"log": "12345678901234567890", "stream": "stdout"}"#;
        let line2 = r#"{"log": "abcdefghijklmnopqrstuvwxyz", "stream": "stdout"}"#;
        // Upstream: the second line makes the joined buffer pass 80 bytes;
        // the append reports FLB_MULTILINE_TRUNCATED and the record is cut.
        // Differs from upstream: nothing is cut; the entry is closed before
        // the line that would pass the bound, which starts the next one;
        // because an entry is never truncated or dropped (multiline.rs).
        assert_eq!(join(regex("^$"), 80, &[line1, line2]), [line1, line2]);
    }

    #[test]
    fn test_issue_10576() {
        let lines = [
            "Mon Dec  1 17:33:44 UTC 2025 Likely to fail",
            "Mon Dec  1 17:33:49 UTC 2025 Likely to fail",
            "[2025-12-01T17:33:54.551Z] should be ok",
            "Mon Dec  1 17:33:59 UTC 2025 Likely to fail",
            "Mon Dec  1 17:34:04 UTC 2025 Likely to fail",
            "[2025-12-01T17:34:09.555Z] should be ok",
        ];
        let mut m = Multiline::new(
            regex(r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\]"),
            1 << 20,
        );
        // Flushed after every line: each line is its own record, and each
        // keeps its stream (the file is the joiner's own).
        let mut out = vec![];
        for (i, l) in lines.iter().enumerate() {
            assert!(m.push(entry(l, Stream::Stdout, i as u64)).is_none());
            out.extend(m.flush());
        }
        assert!(m.flush().is_none());
        assert_eq!(out.len(), lines.len());
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e.stream, Stream::Stdout);
            assert_eq!(e.content, lines[i].as_bytes());
            assert_eq!(e.marks.iter().collect::<Vec<_>>(), [i as u64]);
        }
    }

    #[test]
    fn test_issue_truncation_10576() {
        let start = regex(r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\]");
        let mut m = Multiline::new(start, 80);
        let long_line = "X".repeat(199);
        let mut out = vec![];
        out.extend(m.push(entry(
            "[2025-12-01T17:33:54.551Z] First line",
            Stream::Stdout,
            0,
        )));
        out.extend(m.push(entry(&long_line, Stream::Stdout, 1)));
        out.extend(m.push(entry(
            "[2025-12-01T17:34:00.000Z] Second line",
            Stream::Stderr,
            2,
        )));
        out.extend(m.flush());
        // Upstream: two records, the first truncated at 80 bytes (first line
        // and the start of the X's, stdout), the second stderr's.
        // Differs from upstream: three records, nothing cut: the first line
        // alone, the X line (it would pass the bound, so it starts an entry),
        // then the second line; because an entry is never truncated. Each
        // record keeps its own stream, which is the point of the case.
        let got: Vec<(Stream, String)> = out
            .iter()
            .map(|e| (e.stream, String::from_utf8_lossy(&e.content).into_owned()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Stream::Stdout,
                    "[2025-12-01T17:33:54.551Z] First line".to_string()
                ),
                (Stream::Stdout, long_line.clone()),
                (
                    Stream::Stderr,
                    "[2025-12-01T17:34:00.000Z] Second line".to_string()
                ),
            ]
        );
    }
}

mod filter_kubernetes_c {
    //! `tests/runtime/filter_kubernetes.c`: a Docker JSON file read by
    //! `tail`, through the `kubernetes` filter, then compared with the
    //! `.out` file. Our `record::container` writes the quickstart's record:
    //! its filter configuration is fixed (`Merge_Log On`, `Merge_Log_Key
    //! log_processed`, `Keep_Log` and `Merge_Log_Trim` at their defaults,
    //! On), and the `kubernetes` object is given to it.
    //!
    //! Not ported (86):
    //! - `kube_options_merge_log_disabled_json`,
    //!   `kube_options_merge_log_trim_disabled_json`,
    //!   `kube_options_keep_log_disabled_json`: `Merge_Log Off`,
    //!   `Merge_Log_Trim Off`, `Keep_Log Off` are not settings of ours.
    //! - `kube_core_base_with_namespace_labels_and_annotations`,
    //!   `kube_core_base_with_owner_references`,
    //!   `kube_options_use-kubelet_enabled_json`,
    //!   `kube_options_use-kubelet_disabled_json`,
    //!   `kube_short_prefix_uat_podname`, `kube_local_fluentbit_logs`,
    //!   `kube_pod_association_multiple_instances`, `kube_systemd_logs`:
    //!   where the metadata comes from (namespace objects, owners, the
    //!   kubelet or the API server, the tag, systemd); ours is handed in.
    //! - the 4 `kube_options_k8s_logging_*` and the 71 `kube_annotations_*`
    //!   cases: pod annotations choosing a parser or excluding logs
    //!   (`fluentbit.io/parser`, `fluentbit.io/exclude`), not implemented.

    use super::*;
    use outrigger_logs_core::record::Kubernetes;

    /// The record for one Docker JSON line of a test's `.log` file.
    fn record_of(docker_line: &str, kubernetes: &Kubernetes) -> Value {
        let line = parse(docker_line.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let mut r = Reassembler::new(1 << 20);
        let entries = r.push(&line, 0);
        assert_eq!(entries.len(), 1);
        let k = kubernetes.to_json();
        let text = record::container(&entries[0], Format::Docker, Some(&k));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The tag-derived `kubernetes` object of the options and core tests.
    fn from_tag(namespace: &str, pod: &str, container: &str) -> Kubernetes {
        Kubernetes {
            pod_name: pod.into(),
            namespace_name: namespace.into(),
            container_name: container.into(),
            ..Default::default()
        }
    }

    const JSON_LINE: &str = r#"{"log":"{\"text\":\"Simple text\"}\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;
    const TEXT_LINE: &str =
        r#"{"log":"Simple text\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;

    #[test]
    fn kube_core_base() {
        let line = r#"{"log":"Fluent Bit is logging\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;
        let k = Kubernetes {
            pod_name: "base".into(),
            namespace_name: "core".into(),
            pod_id: "e9f2963f-55f2-11e9-84c5-02e422b8a84a".into(),
            labels: [(
                "app.kubernetes.io/name".to_string(),
                "fluent-bit".to_string(),
            )]
            .into(),
            annotations: [
                ("prometheus.io/path", "/api/v1/metrics/prometheus"),
                ("prometheus.io/port", "2020"),
                ("prometheus.io/scrape", "true"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .into(),
            host: "ip-10-49-18-80.eu-west-1.compute.internal".into(),
            container_name: "fluent-bit".into(),
            docker_id: "c9898099f6d235126d564ed38a020007ea7a6fac6e25e718de683c9dd0076c16".into(),
            container_hash: "fluent/fluent-bit@sha256:7ac0fd3569af866e9a6a22eb592744200d2dbe098cf066162453f8d0b06c531f".into(),
            container_image: "fluent/fluent-bit:latest".into(),
        };
        // Upstream's `kubernetes` object, byte for byte (the test looks for
        // the `.out` text in the record), without `pod_ip`.
        // Differs from upstream: no `"pod_ip":"100.116.192.42"` after `host`,
        // because our `Kubernetes` has no pod IP field (the agent fills it
        // from the file's name and the node's pod list).
        assert_eq!(
            k.to_json(),
            r#"{"pod_name":"base","namespace_name":"core","pod_id":"e9f2963f-55f2-11e9-84c5-02e422b8a84a","labels":{"app.kubernetes.io/name":"fluent-bit"},"annotations":{"prometheus.io/path":"/api/v1/metrics/prometheus","prometheus.io/port":"2020","prometheus.io/scrape":"true"},"host":"ip-10-49-18-80.eu-west-1.compute.internal","container_name":"fluent-bit","docker_id":"c9898099f6d235126d564ed38a020007ea7a6fac6e25e718de683c9dd0076c16","container_hash":"fluent/fluent-bit@sha256:7ac0fd3569af866e9a6a22eb592744200d2dbe098cf066162453f8d0b06c531f","container_image":"fluent/fluent-bit:latest"}"#
        );
        let v = record_of(line, &k);
        assert_eq!(v["log"], chomp("Fluent Bit is logging\n"));
        assert_eq!(v["stream"], "stdout");
        // Differs from upstream: the record keeps `time`, because the
        // quickstart reads with the `docker`/`cri` multiline parsers, which
        // keep it (time keep on); this test's classic `docker` parser moves
        // it into the record's timestamp.
        assert_eq!(v["time"], "2019-04-01T17:58:33.598656444Z");
        assert!(v.get("log_processed").is_none());
    }

    #[test]
    fn kube_core_no_meta() {
        let v = record_of(TEXT_LINE, &from_tag("core", "no-meta", "text"));
        assert_eq!(v["log"], "Simple text");
        assert_eq!(v["stream"], "stdout");
        // Differs from upstream: `docker_id` is always written (here empty),
        // where upstream's object holds only what its tag gave (pod,
        // namespace, container); because ours always comes from the file's
        // name, which holds the container ID (Fluent Bit's default tag regex
        // reads it too; this test's custom one does not).
        assert_eq!(
            v["kubernetes"],
            json!({"pod_name": "no-meta", "namespace_name": "core", "container_name": "text", "docker_id": ""})
        );
    }

    #[test]
    fn kube_core_unescaping_text() {
        let line = r#"{"log":"Text with embedded quoted \"text with embedded quoted \\\"text with embedded quoted \\\\\\\"text\\\\\\\"\\\"\"\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;
        let v = record_of(line, &from_tag("core", "unescaping", "text"));
        // The `.out` record's `log`, decoded.
        let want: Value = serde_json::from_str(
            r#""Text with embedded quoted \"text with embedded quoted \\\"text with embedded quoted \\\\\\\"text\\\\\\\"\\\"\"\n""#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["log"], chomp(want.as_str().unwrap_or_default()));
        assert!(v.get("log_processed").is_none());
    }

    #[test]
    fn kube_core_unescaping_json() {
        let line = r#"{"log":"{\"stringified-json\":\"{\\\"stringified-json\\\":\\\"{\\\\\\\"stringified-json\\\\\\\":\\\\\\\"\\\\\\\"}\\\"}\",\"text\":\"quoted \\\"text with embedded quoted \\\\\\\"text\\\\\\\"\\\"\"}\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;
        let v = record_of(line, &from_tag("core", "unescaping", "json"));
        let want: Value = serde_json::from_str(
            r#""{\"stringified-json\":\"{\\\"stringified-json\\\":\\\"{\\\\\\\"stringified-json\\\\\\\":\\\\\\\"\\\\\\\"}\\\"}\",\"text\":\"quoted \\\"text with embedded quoted \\\\\\\"text\\\\\\\"\\\"\"}\n""#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let log = chomp(want.as_str().unwrap_or_default());
        assert_eq!(v["log"], log);
        // Differs from upstream: the JSON object is also merged under
        // `log_processed` (this test runs with `Merge_Log` off); because our
        // record is the quickstart's, which merges. The nested strings stay
        // strings, unescaped once, as upstream's merge would leave them.
        let merged: Value = serde_json::from_str(log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["log_processed"], merged);
        assert_eq!(
            v["log_processed"]["text"],
            r#"quoted "text with embedded quoted \"text\"""#
        );
    }

    #[test]
    fn kube_options_merge_log_key_json() {
        // Upstream's `Merge_Log_Key` is `merge-log-key`; ours is the
        // quickstart's `log_processed`, the same setting with another value.
        let v = record_of(JSON_LINE, &from_tag("options", "merge-log-key", "json"));
        assert_eq!(v["log"], chomp("{\"text\":\"Simple text\"}\n"));
        assert_eq!(v["stream"], "stdout");
        assert_eq!(v["log_processed"], json!({"text": "Simple text"}));
        assert_eq!(
            v["kubernetes"]["pod_name"], "merge-log-key",
            "the object is copied in as given"
        );
    }

    #[test]
    fn kube_options_merge_log_enabled_json() {
        let v = record_of(JSON_LINE, &from_tag("options", "merge-log-enabled", "json"));
        // Differs from upstream: the fields go under `log_processed`, not at
        // the record's root (`"text":"Simple text"`), because the quickstart
        // sets `Merge_Log_Key log_processed`.
        assert_eq!(v["log_processed"], json!({"text": "Simple text"}));
        assert!(v.get("text").is_none());
        assert_eq!(v["log"], "{\"text\":\"Simple text\"}");
    }

    #[test]
    fn kube_options_merge_log_enabled_text() {
        let v = record_of(TEXT_LINE, &from_tag("options", "merge-log-enabled", "text"));
        assert_eq!(v["log"], chomp("Simple text\n"));
        assert_eq!(v["stream"], "stdout");
        assert!(v.get("log_processed").is_none());
    }

    #[test]
    fn kube_options_merge_log_enabled_invalid_json() {
        let line = r#"{"log":"{\"text\":\"Simple text\"]\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;
        let v = record_of(
            line,
            &from_tag("options", "merge-log-enabled", "invalid-json"),
        );
        assert_eq!(v["log"], chomp("{\"text\":\"Simple text\"]\n"));
        assert!(v.get("log_processed").is_none());
        assert!(v.get("text").is_none());
    }

    #[test]
    fn kube_options_merge_log_trim_enabled_json() {
        // The log is `{"text":"Simple text<LF>"}<LF>`: a raw line feed inside
        // the JSON string.
        let line = r#"{"log":"{\"text\":\"Simple text\n\"}\n","stream":"stdout","time":"2019-04-01T17:58:33.598656444Z"}"#;
        let v = record_of(line, &from_tag("options", "merge-log-trim-enabled", "json"));
        assert_eq!(v["log"], "{\"text\":\"Simple text\n\"}");
        // Upstream merges `"text":"Simple text"` (its JSON reader takes the
        // raw line feed, and Merge_Log_Trim drops it).
        // Differs from upstream: nothing is merged, because a raw control
        // character inside a string is not JSON and we merge JSON objects
        // only (serde_json's strict reading); a runtime cannot write this
        // line anyway, the line feed would end it.
        assert!(v.get("log_processed").is_none());
    }

    #[test]
    fn kube_options_keep_log_enabled_json() {
        let v = record_of(JSON_LINE, &from_tag("options", "keep-log-enabled", "json"));
        // `Keep_Log` On: `log` stays beside the merged fields.
        assert_eq!(v["log"], chomp("{\"text\":\"Simple text\"}\n"));
        assert_eq!(v["stream"], "stdout");
        // Differs from upstream: merged under `log_processed`, not at the
        // root (see `kube_options_merge_log_enabled_json`).
        assert_eq!(v["log_processed"], json!({"text": "Simple text"}));
        assert!(v.get("text").is_none());
    }
}

mod out_cloudwatch_c {
    //! `tests/runtime/out_cloudwatch.c`: the event size limit. Our
    //! `batch::split_message` cuts a message into events of at most
    //! `batch::MAX_MESSAGE_BYTES`; upstream truncates an event to
    //! `MAX_EVENT_LEN` (`cloudwatch_api.h`: 1,000,000 since c994082fd,
    //! 2025-11-12, "increase MAX_EVENT_LEN to 1MB", CloudWatch's limit being
    //! 1 MiB).
    //!
    //! Not ported (13):
    //! - `success`, `success_with_metrics`, `group_already_exists`,
    //!   `stream_already_exists`, `create_group_error`,
    //!   `create_stream_error`, `put_log_events_error`,
    //!   `put_log_events_not_found`, `put_retention_policy_success`,
    //!   `already_exists_create_group_put_retention_policy`,
    //!   `error_put_retention_policy`: the plugin's API calls against mocked
    //!   responses (I/O, done by `outrigger-aws-logs` and the agent, not this
    //!   crate); they assert nothing about names or records.
    //! - `create_stream_escapes_json`, `put_events_escapes_stream_name`: the
    //!   JSON request bodies, built outside this crate.

    use super::*;

    /// Upstream's `create_large_json_message`: `{"message":"AAA…"}` of
    /// exactly `size` bytes.
    fn large_json_message(size: usize) -> String {
        let (prefix, suffix) = ("{\"message\":\"", "\"}");
        format!(
            "{prefix}{}{suffix}",
            "A".repeat(size - prefix.len() - suffix.len())
        )
    }

    const MAX_EVENT_LEN: usize = 1_000_000;

    #[test]
    fn event_size_at_limit() {
        let m = large_json_message(MAX_EVENT_LEN);
        assert_eq!(m.len(), MAX_EVENT_LEN);
        let pieces = batch::split_message(&m);
        assert_eq!(pieces.len(), 1, "cut into {} events", pieces.len());
        assert_eq!(pieces[0].len(), m.len());
    }

    #[test]
    fn event_size_over_limit() {
        let m = large_json_message(MAX_EVENT_LEN + 1);
        let pieces = batch::split_message(&m);
        // Differs from upstream: the message is cut into events, all of it
        // delivered, where upstream truncates it to MAX_EVENT_LEN and drops
        // the rest; because no log byte is dropped (batch.rs).
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= batch::MAX_MESSAGE_BYTES));
        assert_eq!(pieces.concat(), m);
    }

    #[test]
    fn event_truncation_with_backslash() {
        // Upstream's message: MAX_EVENT_LEN + 100 bytes, an escaped backslash
        // pair every 100 bytes of the data and one at the truncation point.
        let mut m = large_json_message(MAX_EVENT_LEN + 100).into_bytes();
        let (prefix, suffix) = ("{\"message\":\"".len(), "\"}".len());
        let data_len = m.len() - prefix - suffix;
        let mut i = 98;
        while i < data_len - 1 {
            m[prefix + i] = b'\\';
            m[prefix + i + 1] = b'\\';
            i += 100;
        }
        let boundary = MAX_EVENT_LEN - 1;
        if boundary + 1 < m.len() - suffix {
            m[boundary] = b'\\';
            m[boundary + 1] = b'\\';
        }
        let m = String::from_utf8(m).unwrap_or_else(|e| panic!("{e}"));
        // Upstream: truncated at MAX_EVENT_LEN without leaving half an
        // escape sequence, so the event is still valid JSON.
        // Differs from upstream: cut into events (nothing dropped, see
        // `event_size_over_limit`), each a plain string that the request
        // escapes; a backslash at a cut is an ordinary character, each
        // piece encodes and decodes to itself.
        let pieces = batch::split_message(&m);
        assert_eq!(pieces.concat(), m);
        for p in &pieces {
            assert!(p.len() <= batch::MAX_MESSAGE_BYTES);
            let encoded = serde_json::to_string(p).unwrap_or_else(|e| panic!("{e}"));
            let back: String = serde_json::from_str(&encoded).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&back, p);
        }
    }
}
