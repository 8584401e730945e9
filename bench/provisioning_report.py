"""Summarises bench/provisioning.sh's rounds into a Markdown section of
bench/RESULTS.md (between the provisioning markers).

Usage: provisioning_report.py WORK ROUNDS PODS CPUS RESULTS WINDOW...
(WINDOW: idle/max, as bench/provisioning.sh ran them)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import write_section  # noqa: E402

work, rounds, pods, cpus, results = sys.argv[1:6]
windows = sys.argv[6:] or ["1s/10s"]


def load(impl):
    path = os.path.join(work, f"{impl}.jsonl")
    if not os.path.exists(path):
        return None
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if not rows:
        return None
    mem = os.path.join(work, f"{impl}-mem.json")
    rss = json.load(open(mem)).get("vmhwm_kib") if os.path.exists(mem) else None
    return rows, rss


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    # Nearest rank.
    k = max(0, min(len(xs) - 1, -(-len(xs) * p // 100) - 1))
    return xs[int(k)]


def summary(impl, label):
    got = load(impl)
    if got is None:
        return None
    rows, rss = got
    batches = [b for r in rows for b in r["batches"]]
    secs = [b["seconds"] for b in batches]
    # A round's latency: its slowest batch (all of the round's pods claimed).
    per_round = [max(b["seconds"] for b in r["batches"]) for r in rows if r["batches"]]
    claims = [sum(b["nodeclaims"] for b in r["batches"]) for r in rows]
    bound = [r["all_bound_s"] for r in rows]
    return {
        "label": label,
        "rounds": len(rows),
        "batches": len(batches),
        "p50": pct(secs, 50) * 1000,
        "p99": pct(secs, 99) * 1000,
        "max": max(secs) * 1000 if secs else float("nan"),
        "round_p99": pct(per_round, 99) * 1000,
        "claims": sum(claims) / max(1, len(claims)),
        "bound": pct(bound, 50),
        "rss": rss / 1024 if rss else None,
    }


out = ["## Provisioning latency: batch window closed -> every NodeClaim created", ""]
out.append(
    f"{rounds} rounds of {pods} pending pods (cpu 100m-1500m, memory 100Mi-4Gi, seeded) per batch window, one "
    f"NodePool of kwok nodes, the local environment (real kube-apiserver and kube-scheduler) on {cpus} cores; each "
    "program alone against the cluster, the same pods. Reproduce: `make bench-provisioning` (or "
    "`ROUNDS=3 WINDOWS=1s/10s bash bench/provisioning.sh`)."
)
out.append("")
out.append(
    "| batch window (idle / max) | program | rounds | batches | p50 ms | p99 ms | max ms | NodeClaims per round | all pods bound s (p50) | peak RSS MiB |"
)
out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
ratios = []
for w in windows:
    tag = w.replace("/", "-")
    ours = summary(f"outrigger-{tag}", "Outrigger (release)")
    theirs = summary(f"karpenter-{tag}", "Karpenter v1.12.1 (kwok)")
    for s in (ours, theirs):
        if s is None:
            continue
        rss = f"{s['rss']:.0f}" if s["rss"] else "-"
        out.append(
            f"| {w.replace('/', ' / ')} | {s['label']} | {s['rounds']} | {s['batches']} | {s['p50']:.0f} | {s['p99']:.0f} | "
            f"{s['max']:.0f} | {s['claims']:.0f} | {s['bound']:.1f} | {rss} |"
        )
    if ours and theirs:
        ratios.append(
            f"{w}: Karpenter / Outrigger p50 {theirs['p50'] / max(ours['p50'], 0.001):.1f}x, "
            f"p99 {theirs['p99'] / max(ours['p99'], 0.001):.1f}x"
        )
if ratios:
    out.append("")
    out.append("Ratios: " + "; ".join(ratios) + ".")
out.append("")
out.append(
    "What is measured: Outrigger logs `created nodeclaim(s) for the batch` with the time from its batch window "
    "closing through the snapshot, the solve and every NodeClaim create (16 at a time) acknowledged by the API "
    "server. Karpenter's figure is from its own log: `found provisionable pod(s)` is logged after its solve with "
    "the time since scheduling started (`duration`), which dates the window's close; the batch ends at its last "
    "`created nodeclaim` of the same reconcile. Both take BATCH_IDLE_DURATION / BATCH_MAX_DURATION. With the "
    "default window (1 s idle) a round's pods arrive in two or three batches while kubectl is still creating "
    "them and kube-scheduler marking them, so the creates meet a busy API server; with a 3 s idle window the "
    "1,000 pods close as one batch on a quiet one. Every batch counts in the percentiles (percentiles of a few "
    "dozen batches: p99 is close to the max). \"All pods bound\" is from the first pod created to none left "
    "unbound (pod creation, nodes registering through kwok, kube-scheduler) and is context, not the target. Peak "
    "RSS is the provisioner process's VmHWM at the end of its rounds (Karpenter's includes its controllers' "
    "caches; so does Outrigger's)."
)
section = "\n".join(out)
print(section)
write_section(results, "provisioning", section)
