"""Writes bench/disruption.sh's results into bench/RESULTS.md (between the
disruption markers).

Usage: disruption_report.py WORK NODES CPUS RESULTS
"""

import json
import os
import sys
from datetime import date

from results import write_section

work, nodes, cpus, results = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def load(impl):
    p = os.path.join(work, f"{impl}.json")
    if not os.path.exists(p):
        return None
    lines = [l for l in open(p) if l.strip()]
    return json.loads(lines[-1]) if lines else None


o, k = load("outrigger"), load("karpenter")
rows = [("Outrigger (release)", o)] + ([("Karpenter v1.12.1 (kwok)", k)] if k else [])


def per_decision(r):
    return r["evaluation_compute_s"] / r["commands"] if r and r["commands"] else None


def fmt(v, f="{:.2f}"):
    return "-" if v is None else f.format(v)


def calls(r):
    return sum(r["api_requests"].values())


out = [f"## Disruption: {nodes} over-provisioned nodes consolidated, {date.today()}", ""]
out.append(
    f"One NodePool (on-demand, amd64, `WhenEmptyOrUnderutilized`, the default budget of 10%) of kwok nodes on the local "
    f"environment ({cpus} cores, real kube-apiserver and kube-scheduler); each controller alone against the cluster, "
    f"from the same catalogue (Outrigger's kwok types and prices, given to Karpenter's kwok provider with "
    f"`--instance-types-file-path`). {nodes} pods of 1 cpu, one per node (hostname anti-affinity), make the controller "
    f"provision {nodes} nodes; {nodes} pods of 250m join them; then the 1-cpu pods are deleted and `consolidateAfter` "
    f"set to `0s` (T0): every node is left with about a quarter of a cpu in use. Reproduce: `make bench-disruption` "
    f"(or `NODES=100 bash bench/disruption.sh`)."
)
out.append("")
out.append(
    "| program | nodes before | $/h before | first decision after T0 s | commands | nodes disrupted | settled after s | nodes after | $/h after | evaluation s (sum) | of it computing s | computing per command ms | API requests (T0 to settled) | CPU s | peak RSS MiB |"
)
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, r in rows:
    if not r:
        continue
    out.append(
        f"| {label} | {r['nodes_before']} | {r['price_before']:.2f} | {fmt(r['first_decision_s'], '{:.1f}')} | "
        f"{r['commands']} | {r['nodes_disrupted']} | {r['settled_s']:.0f} | {r['nodes_after']} | {r['price_after']:.2f} | "
        f"{r['evaluation_s_sum']:.3f} | {r['evaluation_compute_s']:.3f} | {fmt(per_decision(r) and per_decision(r) * 1000, '{:.1f}')} | {calls(r)} "
        f"({', '.join(f'{m} {n}' for m, n in r['api_requests'].items())}) | {r['cpu_s']:.1f} | {r['vmhwm_mib']:.0f} |"
    )
out.append("")
if o and k:
    ratios = []
    if per_decision(o) and per_decision(k):
        ratios.append(f"computing per command Karpenter / Outrigger {per_decision(k) / per_decision(o):.1f}x")
    if o["evaluation_compute_s"] and k["evaluation_compute_s"]:
        ratios.append(f"computing in all {k['evaluation_compute_s'] / o['evaluation_compute_s']:.1f}x")
    ratios.append(f"price after Outrigger / Karpenter {o['price_after'] / k['price_after']:.3f}")
    ratios.append(f"nodes after {o['nodes_after']} vs {k['nodes_after']}")
    if o["first_decision_s"] is not None and k["first_decision_s"] is not None:
        ratios.append(f"first decision {o['first_decision_s']:.1f} s vs {k['first_decision_s']:.1f} s")
    if o["cpu_s"]:
        ratios.append(f"CPU Karpenter / Outrigger {k['cpu_s'] / o['cpu_s']:.1f}x")
    out.append("Ratios: " + "; ".join(ratios) + ".")
    out.append("")
out.append(
    "What is measured: the first decision is each controller's first `disrupting ...` log line after T0 (Outrigger: "
    "`disrupting nodeclaim(s) via ...`, Karpenter v1.12: `disrupting node(s)`); both hold a consolidation command 15 s "
    "before acting, and poll every 10 s, so the first decision is bounded below by those waits, not by computing. "
    "Evaluation is `karpenter_voluntary_disruption_decision_evaluation_duration_seconds` from each one's own metrics "
    "between T0 and settling (Karpenter observes each method it runs, Outrigger each pass over all methods). "
    "Karpenter's observation includes the 15 s a consolidation command is held before its validation (inside "
    "`ComputeCommands`); Outrigger holds a command between passes, outside its observation. \"Of it computing\" takes "
    "15 s off each Karpenter observation above 15 s (from its histogram's buckets): the time spent deciding, in all "
    "and per command made. Settled: no node added or removed, tainted or cordoned, no NodeClaim "
    "being deleted and every 250m pod running, for 120 s (the time is when that quiet began). Prices are the "
    "catalogue's on-demand prices of the nodes' types. API requests are counted by each client (Outrigger "
    "`outrigger_kube_client_requests_total`, a watch counting once; Karpenter client-go's `client_go_request_total`, "
    "which is the only request counter v1.12 exposes and does not cover all of its clients: it counted 29 DELETEs "
    "in a run that removed 436 nodes, so its figure is a lower bound and no ratio is given). "
    "CPU is the controller process's user + system time from T0 to the end; peak RSS its VmHWM at the end. Allocatable "
    "differs: Karpenter's kwok provider reserves 100m and 10Mi per node, Outrigger's catalogue EKS's kubelet "
    "reservations, so the same type holds a little more for Karpenter."
)
write_section(results, "disruption", "\n".join(out))
