#!/usr/bin/env python3
"""Checks the crate layering ARCHITECTURE.md describes, from each crate's
Cargo.toml [dependencies] (not dev-dependencies):

- pure crates do no I/O: no tokio, no Kubernetes client runtime, no AWS,
  no HTTP; the API crates may use `kube` for its derives only;
- each AWS SDK crate is compiled by exactly one product crate (aws-sdk-ec2
  is very heavy), and aws-config only by the shared `aws` crate.
"""
import os, re, sys, tomllib

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
PURE = {
    "outrigger-values", "outrigger-scheduling", "outrigger-scheduling-kube",
    "outrigger-metrics-core", "outrigger-lb-model", "outrigger-logs-core",
    "outrigger-karpenter-api", "outrigger-lb-api", "outrigger-disruption",
    "outrigger-node-groups",
}
API = {"outrigger-karpenter-api", "outrigger-lb-api"}
NO_IO = ("tokio", "tokio-util", "outrigger-runtime", "hyper", "hyper-util", "axum",
         "reqwest", "kube-lease-manager", "aws-config")
OWNER = {
    "aws-config": "outrigger-aws",
    "aws-sdk-ec2": "outrigger-aws-ec2",
    "aws-sdk-elasticloadbalancingv2": "outrigger-aws-elb",
    "aws-sdk-autoscaling": "outrigger-aws-autoscaling",
    "aws-sdk-cloudwatchlogs": "outrigger-aws-logs",
    "aws-sdk-sqs": "outrigger-aws-sqs",
}

problems = []
crates = os.path.join(ROOT, "crates")
for c in sorted(os.listdir(crates)):
    path = os.path.join(crates, c, "Cargo.toml")
    if not os.path.exists(path):
        continue
    with open(path, "rb") as f:
        m = tomllib.load(f)
    name = m["package"]["name"]
    deps = set(m.get("dependencies", {}))
    if name in PURE:
        for d in sorted(deps):
            if d in NO_IO or d.startswith("aws-"):
                problems.append(f"{name} is pure but depends on {d}")
            if d == "kube" and name not in API:
                problems.append(f"{name} is pure but depends on kube")
    for d, owner in OWNER.items():
        if d in deps and name != owner:
            problems.append(f"{name} depends on {d}: only {owner} may (reach it through {owner})")
for p in problems:
    print("layering:", p)
sys.exit(1 if problems else 0)
