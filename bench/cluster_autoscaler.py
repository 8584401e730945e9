"""Samples and reports the node-group autoscaler benchmark
(bench/cluster-autoscaler.sh).

  cluster_autoscaler.py sample --name N --pid P --url URL --loops K --out F.json
  cluster_autoscaler.py report --nodes N --pods-per-node M --pending P A.json B.json

`sample` reads the autoscaler's Prometheus text every 0.25 s and turns the
growth of cluster_autoscaler_function_duration_seconds{function=...} (sum
and count) into one duration per loop and function, until K loops of
"main" are seen (or 15 minutes pass); then the process's memory from /proc.
"""

import argparse
import json
import re
import sys
import time
import urllib.request

SERIES = re.compile(
    r'^cluster_autoscaler_function_duration_seconds_(sum|count)\{([^}]*)\} ([0-9.eE+-]+)'
)
FUNCTIONS = ("main", "scaleUp", "findUnneeded", "scaleDown", "snapshot", "writeStatus", "cloudProviderRefresh")


def scrape(url):
    """{function: (sum, count)}, or None when the server does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        f = labels.get("function")
        if f not in FUNCTIONS:
            continue
        s, c = out.get(f, (0.0, 0))
        if m.group(1) == "sum":
            s = float(m.group(3))
        else:
            c = int(float(m.group(3)))
        out[f] = (s, c)
    return out


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    import os

    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def sample(a):
    seen = {}  # function -> (sum, count)
    loops = {f: [] for f in FUNCTIONS}
    start = time.monotonic()
    first_answer = None
    while time.monotonic() - start < 900:
        now = scrape(a.url)
        if now is not None and first_answer is None:
            first_answer = time.monotonic() - start
        for f, (s, c) in (now or {}).items():
            s0, c0 = seen.get(f, (0.0, 0))
            if c > c0:
                # Several loops between two reads share the growth evenly.
                per = (s - s0) / (c - c0)
                loops[f].extend([per] * (c - c0))
                seen[f] = (s, c)
        if len(loops["main"]) >= a.loops:
            break
        time.sleep(0.25)
    result = {
        "name": a.name,
        "loops": loops,
        "rss_kib": proc_kib(a.pid, "VmRSS"),
        "hwm_kib": proc_kib(a.pid, "VmHWM"),
        "cpu_seconds": cpu_seconds(a.pid),
        "metrics_after_s": first_answer,
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    if len(loops["main"]) < a.loops:
        sys.exit(f"{a.name}: only {len(loops['main'])} loops in 15 minutes")


def fmt_s(x):
    if x is None:
        return "—"
    return f"{x * 1000:.0f} ms" if x >= 0.01 else f"{x * 1000:.2f} ms"


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def report(a):
    up, ours = (json.load(open(p)) for p in a.files)

    def figures(r):
        lp = r["loops"]
        return {
            "scale-up decision, first loop (scaleUp)": lp["scaleUp"][0] if lp["scaleUp"] else None,
            "scale-down evaluation, mean of later loops (findUnneeded)": mean(
                lp["findUnneeded"][1:] or lp["findUnneeded"]
            ),
            "whole loop, first (main)": lp["main"][0] if lp["main"] else None,
            "whole loop, mean of later loops (main)": mean(lp["main"][1:]),
        }

    fu, fo = figures(up), figures(ours)
    print(
        f"### cluster-autoscaler: {a.nodes} nodes x {a.pods_per_node} pods + {a.pending} pending,"
        f" {time.strftime('%Y-%m-%d')}\n"
    )
    print("| | upstream Cluster Autoscaler 1.34.5 | outrigger cluster-autoscaler | ratio (outrigger / upstream) |")
    print("|---|---|---|---|")
    for k in fu:
        u, o = fu[k], fo[k]
        ratio = f"{o / u:.3f}" if u and o is not None else ""
        print(f"| {k} | {fmt_s(u)} | {fmt_s(o)} | {ratio} |")
    for k, label in (("rss_kib", "resident memory at the end (VmRSS)"), ("hwm_kib", "resident memory, peak (VmHWM)")):
        u, o = up[k] / 1024, ours[k] / 1024
        print(f"| {label} | {u:.1f} MiB | {o:.1f} MiB | {o / u:.3f} |")
    print(f"| nodes added for the pending pods | {a.added[0]} | {a.added[1]} | |")
    u, o = up["cpu_seconds"], ours["cpu_seconds"]
    print(f"| CPU seconds, start to end of the loops | {u:.1f} | {o:.1f} | {o / u:.3f} |")
    print()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--name", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--url", required=True)
    s.add_argument("--loops", type=int, default=4)
    s.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("--nodes", type=int)
    r.add_argument("--pods-per-node", type=int)
    r.add_argument("--pending", type=int)
    r.add_argument("--added", type=int, nargs=2, default=[0, 0])
    r.add_argument("files", nargs=2)
    a = p.parse_args()
    sample(a) if a.cmd == "sample" else report(a)


if __name__ == "__main__":
    main()
