"""Writes the load balancer controller's figures into bench/RESULTS.md
(between the lb markers).

Usage: lb_report.py WORK CPUS RESULTS
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from results import write_section  # noqa: E402


def main():
    work, cpus, results = sys.argv[1], sys.argv[2], sys.argv[3]
    r = json.load(open(os.path.join(work, "result.json")))
    mem = json.load(open(os.path.join(work, "mem.json")))["vmhwm_kib"] / 1024
    n = r["ingresses"]
    section = f"""## Load balancer controller: {n} Ingresses in {r["groups"]} IngressGroups from nothing (`make bench-lb`)

`bench/lb.sh` on the local environment (moto as ELBv2 and EC2, {cpus} cores): one `kubectl apply` of {n}
Ingresses (one Prefix path each, ip targets, one Service of 3 pods) in {r["groups"]} groups; timed until
every Ingress has an ADDRESS, then until every Ingress is deleted (finalizers released after the ALBs are).
Calls are the controller's own count (`outrigger_lb_aws_calls`), release build, one run.

| phase | time s | ELBv2 calls | per Ingress | EC2 calls | peak RSS MiB |
|---|---:|---:|---:|---:|---:|
| create | {r["create_s"]} | {r["create_elbv2_calls"]} | {r["create_elbv2_calls"] / n:.2f} | {r["create_ec2_calls"]} | {mem:.0f} |
| delete | {r["delete_s"]} | {r["delete_elbv2_calls"]} | {r["delete_elbv2_calls"] / n:.2f} | {r["delete_ec2_calls"]} | |

No anchor ran beside it (the AWS Load Balancer Controller needs EC2 instance metadata and its webhooks);
its users report 900+ Ingresses taking over 1.5 hours to reconcile after a restart
(kubernetes-sigs/aws-load-balancer-controller#3540) and throttling on Describe* calls (#1871, #3167)."""
    write_section(results, "lb", section)


if __name__ == "__main__":
    main()
