"""Counts the sequence numbers of container log records in CloudWatch Logs.

The environment's log writer (crates/e2e/src/bin/outrigger-e2e-kubelet-logs.rs)
writes `seq=<n>` lines, n from 1 per container; the node agent delivers each
as a record whose `log` field holds it. This reads every event of the streams
whose names start with each prefix (boto3, GetLogEvents page by page) and
prints, as JSON, per prefix: events, distinct sequence numbers, the highest,
how many of 1..highest are missing and how many came more than once (with
the first few of each), and records without a sequence number. Each stream
is read until two reads in a row agree (see `messages`). With
`--messages` it prints each prefix's messages instead (stream by stream, in
order): the tests read records this way because moto's FilterLogEvents
ignores `logStreamNamePrefix` and would page through the whole group.

    python testenv/aws/count_seq.py --group /aws/containerinsights/demo/application \\
        --prefix 'node-a-application.var.log.containers.web-0_ns_' [--prefix ...]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from typing import Any

import boto3

SEQ = re.compile(r"seq=(\d+)")


def stream_names(logs: Any, group: str, prefix: str) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": prefix}
    while True:
        page = logs.describe_log_streams(**kwargs)
        names += [s["logStreamName"] for s in page.get("logStreams", [])]
        token = page.get("nextToken")
        if not token:
            return names
        kwargs["nextToken"] = token


def read_once(logs: Any, group: str, stream: str) -> list[str]:
    out: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        page = logs.get_log_events(**kwargs)
        out += [e["message"] for e in page.get("events", [])]
        token = page.get("nextForwardToken")
        if not page.get("events") or token == kwargs.get("nextToken"):
            return out
        kwargs["nextToken"] = token


def messages(logs: Any, group: str, stream: str) -> list[str]:
    """A stream's messages, as one consistent snapshot.

    moto's GetLogEvents sorts the stream by timestamp at every call and its
    tokens are positions in that order: a batch landing between two pages
    (with timestamps earlier than the last event read) shifts the positions,
    and the next page repeats events already read and skips others. The
    stream is read until two reads in a row agree (a stream still being
    written after five reads is returned as last read: the callers wait for
    a condition and read again).
    """
    last = read_once(logs, group, stream)
    for _ in range(5):
        again = read_once(logs, group, stream)
        if again == last:
            return again
        last = again
    print(f"{stream}: still changing after 6 reads", file=sys.stderr)
    return last


def count(logs: Any, group: str, prefix: str) -> dict[str, Any]:
    seen: Counter[int] = Counter()
    events = unparsed = 0
    for stream in stream_names(logs, group, prefix):
        for m in messages(logs, group, stream):
            events += 1
            try:
                log = json.loads(m).get("log", "")
            except ValueError:
                log = m
            found = SEQ.search(log)
            if found:
                seen[int(found.group(1))] += 1
            else:
                unparsed += 1
    highest = max(seen) if seen else 0
    missing = [n for n in range(1, highest + 1) if n not in seen]
    repeated = sorted(n for n, c in seen.items() if c > 1)
    return {
        "events": events,
        "distinct": len(seen),
        "highest": highest,
        "missing": len(missing),
        "missingFirst": missing[:20],
        "repeated": len(repeated),
        "repeatedFirst": repeated[:20],
        "withoutSeq": unparsed,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", required=True)
    p.add_argument("--prefix", action="append", required=True)
    p.add_argument("--messages", action="store_true", help="print the messages, not counts")
    a = p.parse_args()
    logs = boto3.client("logs")
    if a.messages:
        print(
            json.dumps(
                {
                    prefix: [
                        m
                        for stream in stream_names(logs, a.group, prefix)
                        for m in messages(logs, a.group, stream)
                    ]
                    for prefix in a.prefix
                }
            )
        )
        return
    print(json.dumps({prefix: count(logs, a.group, prefix) for prefix in a.prefix}))


if __name__ == "__main__":
    main()
