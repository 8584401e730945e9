"""Provisioning latency: from a batch window closing to every NodeClaim of
its plan created, for batches of pending pods, against the local
environment's kube-apiserver (kwok nodes).

Each round creates `--pods` pending pods (seeded, diverse requests: cpu from
{100, 250, 500, 1000, 1500}m, memory from {100, 256, 512, 1024, 2048,
4096}Mi, as the scheduling benchmark) pinned to the benchmark's NodePool,
waits until the provisioner has claimed nodes for all of them, reads the
batch timings from the provisioner's log, then deletes the pods and waits
for the NodeClaims and nodes to go before the next round.

The timings come from the provisioner's own log, for both programs:
- Outrigger: `created nodeclaim(s) for the batch` carries `duration_ms`
  from the window closing (snapshot, solve, every create) and `pods`.
- Karpenter: `found provisionable pod(s)`, logged after its solve with the
  time since scheduling started (`duration`), dates the window's close;
  the batch ends at the last `created nodeclaim` of the same reconcile.

Writes one JSON line per round to stdout.
"""

import argparse
import json
import random
import subprocess
import sys
import time
from datetime import datetime

CPU = [100, 250, 500, 1000, 1500]
MEM = [100, 256, 512, 1024, 2048, 4096]


def kubectl(*args, stdin=None, check=True):
    r = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True
    )
    if check and r.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def pods_yaml(ns, pool, n, seed):
    rng = random.Random(seed)
    items = []
    for i in range(n):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"p{seed}-{i}",
                    "namespace": ns,
                    "labels": {"app": "bench-provisioning"},
                },
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "nodeSelector": {"karpenter.sh/nodepool": pool},
                    "containers": [
                        {
                            "name": "c",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {
                                "requests": {
                                    "cpu": f"{rng.choice(CPU)}m",
                                    "memory": f"{rng.choice(MEM)}Mi",
                                }
                            },
                        }
                    ],
                },
            }
        )
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def ts(s):
    # 2026-11-26T06:00:55.516002Z, or with more digits.
    s = s.rstrip("Z")
    if "." in s:
        head, frac = s.split(".")
        s = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(s).timestamp()


def read_log(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def ours_batches(lines):
    """[(pods, nodeclaims, seconds)] from Outrigger's log."""
    out = []
    for l in lines:
        if l.get("message") == "created nodeclaim(s) for the batch":
            f = l.get("fields", l)
            out.append((int(f["pods"]), int(f["nodeclaims"]), int(f["duration_ms"]) / 1000))
    return out


def go_duration(s):
    """Go's time.Duration text ("8.065458ms", "1.2s", "350µs") in seconds."""
    for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * scale
    return 0.0


def karpenter_batches(lines):
    """[(pods, nodeclaims, seconds)] from Karpenter's log, per reconcile:
    the window closed at `found provisionable pod(s)`'s time minus its
    `duration` (it is logged after the solve, timed from the start of
    scheduling), the batch ends at the last `created nodeclaim` of the same
    reconcileID."""
    batches = {}
    order = []
    for l in lines:
        msg = l.get("message") or l.get("msg") or ""
        rid = l.get("reconcileID")
        t = l.get("time") or l.get("ts") or l.get("timestamp")
        if not rid or not t:
            continue
        if msg == "found provisionable pod(s)":
            start = ts(t) - go_duration(l.get("duration", "0s"))
            batches[rid] = {"start": start, "last": None, "claims": 0, "pods": 0}
            order.append(rid)
        elif msg == "computed new nodeclaim(s) to fit pod(s)" and rid in batches:
            batches[rid]["pods"] = int(l.get("pods", 0))
        elif msg == "created nodeclaim" and rid in batches:
            batches[rid]["claims"] += 1
            batches[rid]["last"] = ts(t)
    return [
        (b["pods"], b["claims"], b["last"] - b["start"])
        for b in (batches[r] for r in order)
        if b["claims"]
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=["outrigger", "karpenter"], required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--pool", default="bench-provisioning")
    ap.add_argument("--namespace", default="bench-provisioning")
    a = ap.parse_args()
    parse = ours_batches if a.impl == "outrigger" else karpenter_batches
    ns, pool = a.namespace, a.pool
    kubectl("create", "namespace", ns, check=False)
    for r in range(a.rounds):
        offset = open(a.log, "rb").seek(0, 2)
        t0 = time.time()
        kubectl("create", "-f", "-", stdin=pods_yaml(ns, pool, a.pods, 42 + r))
        created = time.time() - t0
        # Claimed: every pod nominated to a NodeClaim or bound; read from
        # the log until the batches cover every pod.
        deadline = time.time() + 300
        batches = []
        while time.time() < deadline:
            batches = parse(read_log(a.log, offset))
            pending = len(
                kubectl(
                    "get", "pods", "-n", ns, "--field-selector=spec.nodeName=", "-o", "name"
                ).split()
            )
            if batches and pending == 0:
                break
            time.sleep(1)
        else:
            raise SystemExit(f"round {r}: pods still pending after 300 s: {batches}")
        bound = time.time() - t0
        print(
            json.dumps(
                {
                    "impl": a.impl,
                    "round": r,
                    "pods": a.pods,
                    "create_s": round(created, 2),
                    "all_bound_s": round(bound, 2),
                    "batches": [
                        {"pods": p, "nodeclaims": c, "seconds": round(s, 4)}
                        for p, c, s in batches
                    ],
                }
            ),
            flush=True,
        )
        kubectl("delete", "pods", "-n", ns, "--all", "--grace-period=0", "--force", "--wait=false")
        deadline = time.time() + 300
        while time.time() < deadline:
            left = kubectl(
                "get", "nodeclaims,nodes", "-l", f"karpenter.sh/nodepool={pool}", "-o", "name"
            ).split()
            left += kubectl("get", "pods", "-n", ns, "-o", "name").split()
            if not left:
                break
            time.sleep(1)
        else:
            raise SystemExit(f"round {r}: still there after 300 s: {left[:5]}")
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


if __name__ == "__main__":
    sys.exit(main())
