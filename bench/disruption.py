"""Disruption: an over-provisioned pool of `--nodes` nodes consolidated, for
one controller (Outrigger's provisioner or Karpenter's kwok controller)
running alone against the local environment.

1. `spread`: `--nodes` pods of 1 cpu / 1Gi, one per node (required
   anti-affinity on the hostname), so the controller provisions one node
   for each; then `small`: as many pods of 250m / 256Mi, which
   kube-scheduler spreads over those nodes. The pool's `consolidateAfter`
   is `Never` until then.
2. T0: `spread` is deleted and `consolidateAfter` set to `0s`: every node
   is left with about a quarter of a cpu of pods: over-provisioned.
3. Until the cluster settles (no node change for `--settle` seconds, every
   `small` pod running, nothing being deleted): the time to the first
   disruption decision (the controller's `disrupting ...` log line), the
   commands and the nodes they disrupted, the nodes and their hourly price
   (the shared catalogue, `--types`), and from the controller's own
   metrics: its decision evaluation time
   (`karpenter_voluntary_disruption_decision_evaluation_duration_seconds`),
   its API requests (Outrigger `outrigger_kube_client_requests_total`,
   Karpenter client-go's `client_go_request_total`), and its CPU time.

Prints one JSON object.
"""

import argparse
import json
import subprocess
import sys
import time
import urllib.request

from provisioning import ts


def kubectl(*args, stdin=None, check=True):
    r = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def deployment(ns, pool, name, replicas, cpu, mem, spread):
    spec = {
        "terminationGracePeriodSeconds": 0,
        "nodeSelector": {"karpenter.sh/nodepool": pool},
        "containers": [
            {
                "name": "c",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": cpu, "memory": mem}},
            }
        ],
    }
    if spread:
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": name}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
            },
        }
    )


def running(ns, app):
    out = kubectl(
        "get", "pods", "-n", ns, "-l", f"app={app}",
        "-o", "jsonpath={range .items[*]}{.status.phase}{' '}{.metadata.deletionTimestamp}{'\\n'}{end}",
    )
    return sum(1 for l in out.splitlines() if l.strip() == "Running")


def wait(what, timeout, cond):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(2)
    raise SystemExit(f"{what}: not after {timeout} s")


def nodes(pool):
    """[(name, type, zone, capacity type, tainted or cordoned)]"""
    out = json.loads(kubectl("get", "nodes", "-l", f"karpenter.sh/nodepool={pool}", "-o", "json"))
    res = []
    for n in out["items"]:
        l = n["metadata"].get("labels", {})
        spec = n.get("spec", {})
        disrupted = spec.get("unschedulable", False) or any(
            t.get("key") == "karpenter.sh/disrupted" for t in spec.get("taints", []) or []
        )
        res.append(
            (
                n["metadata"]["name"],
                l.get("node.kubernetes.io/instance-type", ""),
                l.get("topology.kubernetes.io/zone", ""),
                l.get("karpenter.sh/capacity-type", ""),
                disrupted or n["metadata"].get("deletionTimestamp") is not None,
            )
        )
    return res


def deleting_claims(pool):
    out = kubectl(
        "get", "nodeclaims", "-l", f"karpenter.sh/nodepool={pool}",
        "-o", "jsonpath={range .items[*]}{.metadata.deletionTimestamp}{'\\n'}{end}",
    )
    return sum(1 for l in out.splitlines() if l.strip())


def prices(types_file):
    table = {}
    for t in json.load(open(types_file)):
        for o in t["offerings"]:
            req = {r["key"]: r["values"][0] for r in o["Requirements"]}
            table[(t["name"], req["topology.kubernetes.io/zone"], req["karpenter.sh/capacity-type"])] = o["Price"]
    return table


def price(ns_, table):
    return sum(table.get((t, z, c), float("nan")) for _, t, z, c, _ in ns_)


def metrics(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def total(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def hwm_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def decisions(log, offset, impl):
    """[(time, nodes disrupted, decision)] from the controller's log."""
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read().decode("utf-8", "replace")
    out = []
    for line in data.splitlines():
        try:
            l = json.loads(line)
        except json.JSONDecodeError:
            continue
        msg = l.get("message") or l.get("msg") or ""
        t = l.get("timestamp") or l.get("time") or l.get("ts")
        if not t:
            continue
        if impl == "outrigger" and msg.startswith("disrupting nodeclaim(s) via"):
            n = int(msg.split("terminating ", 1)[1].split(" ", 1)[0])
            out.append((ts(t), n, l.get("decision", "")))
        elif impl == "karpenter" and msg == "disrupting node(s)":
            out.append((ts(t), int(l.get("disrupted-node-count", 0)), l.get("decision", "")))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=["outrigger", "karpenter"], required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--metrics", required=True, help="the controller's /metrics URL")
    ap.add_argument("--types", required=True, help="the shared catalogue (Karpenter kwok format)")
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--pool", default="bench-disruption")
    ap.add_argument("--namespace", default="bench-disruption")
    ap.add_argument("--settle", type=int, default=120)
    ap.add_argument("--timeout", type=int, default=2400)
    a = ap.parse_args()
    ns, pool, n = a.namespace, a.pool, a.nodes
    table = prices(a.types)
    requests = "outrigger_kube_client_requests_total" if a.impl == "outrigger" else "client_go_request_total"
    evaluation = "karpenter_voluntary_disruption_decision_evaluation_duration_seconds"

    kubectl("create", "namespace", ns, check=False)
    t = time.time()
    kubectl("apply", "-f", "-", stdin=deployment(ns, pool, "spread", n, "1", "1Gi", True))
    wait("spread pods running", 1800, lambda: running(ns, "spread") >= n)
    provisioned_s = time.time() - t
    kubectl("apply", "-f", "-", stdin=deployment(ns, pool, "small", n, "250m", "256Mi", False))
    wait("small pods running", 900, lambda: running(ns, "small") >= n)
    before = nodes(pool)
    m0 = metrics(a.metrics)
    cpu0 = cpu_seconds(a.pid)
    offset = open(a.log, "rb").seek(0, 2)

    # T0: over-provisioned, and consolidation allowed.
    t0 = time.time()
    kubectl("delete", "deployment", "spread", "-n", ns, "--wait=false")
    kubectl("patch", "nodepool", pool, "--type=merge", "-p", '{"spec":{"disruption":{"consolidateAfter":"0s"}}}')
    most_disrupted = 0
    last_change, last_count = time.time(), len(before)
    while True:
        now = time.time()
        if now - t0 > a.timeout:
            print(f"not settled after {a.timeout} s", file=sys.stderr)
            break
        cur = nodes(pool)
        most_disrupted = max(most_disrupted, sum(1 for x in cur if x[4]))
        if len(cur) != last_count or any(x[4] for x in cur):
            last_change, last_count = now, len(cur)
        busy = deleting_claims(pool) > 0 or running(ns, "small") < n
        if busy:
            last_change = now
        if now - last_change >= a.settle and decisions(a.log, offset, a.impl):
            break
        time.sleep(3)
    settled_s = last_change - t0
    after = nodes(pool)
    m1 = metrics(a.metrics)
    cpu1 = cpu_seconds(a.pid)
    ds = decisions(a.log, offset, a.impl)
    req = {
        k.split('method="', 1)[1].split('"', 1)[0]: v - m0.get(k, 0.0)
        for k, v in m1.items()
        if k.startswith(requests + "{") and 'method="' in k
    }
    merged = {}
    for k, v in req.items():
        merged[k.upper()] = merged.get(k.upper(), 0.0) + v
    ev_sum = total(m1, evaluation + "_sum") - total(m0, evaluation + "_sum")
    ev_count = total(m1, evaluation + "_count") - total(m0, evaluation + "_count")
    # Karpenter's evaluation includes the 15 s a command is held before it
    # is validated (ComputeCommands waits for it): an observation above
    # 15 s held once, and its computing is the rest.
    def le15(m):
        return sum(v for k, v in m.items() if k.startswith(evaluation + "_bucket{") and 'le="15"' in k)
    holds = (ev_count - (le15(m1) - le15(m0))) if a.impl == "karpenter" else 0
    print(
        json.dumps(
            {
                "impl": a.impl,
                "nodes_target": n,
                "provisioned_s": round(provisioned_s, 1),
                "nodes_before": len(before),
                "price_before": round(price(before, table), 4),
                "first_decision_s": round(ds[0][0] - t0, 2) if ds else None,
                "commands": len(ds),
                "nodes_disrupted": sum(x[1] for x in ds),
                "decisions": sorted({x[2] for x in ds}),
                "settled_s": round(settled_s, 1),
                "nodes_after": len(after),
                "price_after": round(price(after, table), 4),
                "types_after": sorted({x[1] for x in after}),
                "most_disrupted_at_once": most_disrupted,
                "evaluation_s_sum": round(ev_sum, 3),
                "evaluation_count": int(ev_count),
                "evaluation_holds": int(holds),
                "evaluation_compute_s": round(ev_sum - 15.0 * holds, 3),
                "api_requests": {k: int(v) for k, v in sorted(merged.items())},
                "cpu_s": round(cpu1 - cpu0, 1),
                "vmhwm_mib": round(hwm_mib(a.pid), 1),
            }
        ),
        flush=True,
    )
    # Clean up while the controller still runs: its finalizer drains and
    # terminates each node.
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    kubectl("delete", "nodeclaims", "-l", f"karpenter.sh/nodepool={pool}", "--wait=false", check=False)
    wait(
        "the pool's nodes gone",
        900,
        lambda: not kubectl("get", "nodes,nodeclaims", "-l", f"karpenter.sh/nodepool={pool}", "-o", "name").split(),
    )
    wait("the namespace gone", 600, lambda: kubectl("get", "namespace", ns, check=False) == "")


if __name__ == "__main__":
    sys.exit(main())
