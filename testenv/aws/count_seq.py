"""Counts the sequence numbers of container log records in CloudWatch Logs.

The environment's log writer (crates/e2e/src/bin/outrigger-e2e-kubelet-logs.rs)
writes `seq=<n>` lines, n from 1 per container; the node agent delivers each
as a record whose `log` field holds it. This reads every event of the streams
whose names start with each prefix (boto3, GetLogEvents page by page) and
prints, as JSON, per prefix: events, distinct sequence numbers, the highest,
how many of 1..highest are missing and how many came more than once (with
the first few of each), and records without a sequence number. With
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


def messages(logs: Any, group: str, stream: str):
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        page = logs.get_log_events(**kwargs)
        for e in page.get("events", []):
            yield e["message"]
        token = page.get("nextForwardToken")
        if not page.get("events") or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token


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
