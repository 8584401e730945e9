#!/usr/bin/env python3
"""The instance joiner: plays the part of an EC2 instance booting its kubelet.

This belongs to the local environment, not to Outrigger. On a real cluster an
EC2 instance boots, its kubelet registers a Node and keeps it alive. Here moto
runs no machines, so this loop does that part: for every running instance
tagged ``kubernetes.io/cluster/<cluster>`` it registers a kwok-managed Node

- named like the instance's private DNS name
  (``ip-10-0-1-23.ap-southeast-1.compute.internal``),
- with ``spec.providerID: aws:///<zone>/<instance-id>``,
- with the well-known labels a kubelet and the EKS AMI set (instance type,
  zone, region, arch, os, hostname, capacity type, node group),
- plus the ``--node-labels`` and ``--register-with-taints`` kubelet flags
  found in the instance's user data, as a real bootstrap script passes them,
- with capacity and allocatable computed from the instance type the way the
  EKS AMI's kubelet reports them (VM memory overhead, kube-reserved, eviction
  threshold, max pods from the ENI limits),

and deletes the Node when the instance stops or terminates. kwok then keeps
each Node Ready and plays its kubelet (pods, ``/metrics/resource``).

All kwok nodes answer on kwok's one kubelet endpoint, so every Node's
InternalIP is 127.0.0.1 (the instance's private IP is in its name and in the
``InternalDNS`` address); traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import os
import re
import shlex
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread

import boto3

JOINED_ANNOTATION = "testenv.outrigger.dev/joined-by"
ARCH = {"x86_64": "amd64", "arm64": "arm64", "i386": "386"}
LOG = logging.getLogger("joiner")


# --- instance type -> what a kubelet on the EKS AMI reports -----------------

def max_pods(enis: int, ips_per_eni: int) -> int:
    """The EKS AMI's max-pods rule: ENIs * (IPv4 addresses per ENI - 1) + 2."""
    return enis * (ips_per_eni - 1) + 2


def kube_reserved_cpu_millis(vcpus: int) -> int:
    """kube-reserved CPU of the EKS AMI: 6% of the first core, 1% of the
    second, 0.5% of the third and fourth, 0.25% of each further core."""
    m = 0.0
    for core in range(1, vcpus + 1):
        m += 60 if core == 1 else 10 if core == 2 else 5 if core <= 4 else 2.5
    return int(math.ceil(m))


def node_resources(vcpus: int, mem_mib: int, pods: int) -> tuple[dict, dict]:
    """(capacity, allocatable) of a node of this shape.

    memory capacity: the instance memory less 7.5% VM overhead (what the
    kubelet sees on an EC2 VM); allocatable: less kube-reserved
    (11 MiB per pod + 255 MiB) and the 100 MiB hard eviction threshold.
    """
    mem_cap = mem_mib - int(math.ceil(mem_mib * 0.075))
    mem_alloc = mem_cap - (11 * pods + 255) - 100
    cpu_alloc = vcpus * 1000 - kube_reserved_cpu_millis(vcpus)
    storage_gib = 20
    capacity = {
        "cpu": str(vcpus),
        "memory": f"{mem_cap}Mi",
        "pods": str(pods),
        "ephemeral-storage": f"{storage_gib}Gi",
    }
    allocatable = {
        "cpu": f"{cpu_alloc}m",
        "memory": f"{mem_alloc}Mi",
        "pods": str(pods),
        # 1 GiB kube-reserved storage and the 10% nodefs eviction threshold
        "ephemeral-storage": f"{int(storage_gib * 1024 * 0.9) - 1024}Mi",
    }
    return capacity, allocatable


def parse_kubelet_flags(user_data: str) -> tuple[dict, list]:
    """Labels and taints from ``--node-labels=`` and ``--register-with-taints=``
    anywhere in the user data (bootstrap.sh --kubelet-extra-args, nodeadm, ...)."""
    labels: dict[str, str] = {}
    taints: list[dict] = []
    for m in re.finditer(r"--node-labels[= ]([^\s'\"]+)", user_data):
        for kv in m.group(1).split(","):
            if "=" in kv:
                k, v = kv.split("=", 1)
                labels[k] = v
    for m in re.finditer(r"--register-with-taints[= ]([^\s'\"]+)", user_data):
        for t in m.group(1).split(","):
            if ":" not in t:
                continue
            kv, effect = t.rsplit(":", 1)
            k, _, v = kv.partition("=")
            taint = {"key": k, "effect": effect}
            if v:
                taint["value"] = v
            taints.append(taint)
    return labels, taints


def node_name(private_ip: str, region: str) -> str:
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{private_ip.replace('.', '-')}.{suffix}"


def build_node(inst: dict, itype: dict, region: str, user_data: str, kwok_port: int) -> dict:
    name = node_name(inst["PrivateIpAddress"], region)
    zone = inst["Placement"]["AvailabilityZone"]
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    vcpus = itype["VCpuInfo"]["DefaultVCpus"]
    mem = itype["MemoryInfo"]["SizeInMiB"]
    net = itype.get("NetworkInfo", {})
    pods = max_pods(net.get("MaximumNetworkInterfaces", 3), net.get("Ipv4AddressesPerInterface", 10))
    capacity, allocatable = node_resources(vcpus, mem, pods)
    archs = itype.get("ProcessorInfo", {}).get("SupportedArchitectures", ["x86_64"])
    arch = ARCH.get(archs[0], "amd64")
    spot = inst.get("InstanceLifecycle") == "spot"
    labels = {
        "kubernetes.io/arch": arch,
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": inst["InstanceType"],
        "beta.kubernetes.io/instance-type": inst["InstanceType"],
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": region,
        "karpenter.sh/capacity-type": "spot" if spot else "on-demand",
        "type": "kwok",
    }
    if "eks:nodegroup-name" in tags:
        labels["eks.amazonaws.com/nodegroup"] = tags["eks:nodegroup-name"]
        labels["eks.amazonaws.com/capacityType"] = "SPOT" if spot else "ON_DEMAND"
    extra_labels, taints = parse_kubelet_flags(user_data)
    labels.update(extra_labels)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
                JOINED_ANNOTATION: "testenv-joiner",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/{inst['InstanceId']}", "taints": taints},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kwok_port}},
            "nodeInfo": {
                "architecture": arch,
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023 (kwok)",
                "kubeletVersion": os.environ.get("KUBELET_VERSION", "v0.0.0"),
                "containerRuntimeVersion": "kwok",
                "kernelVersion": "kwok",
                "kubeProxyVersion": "",
                "machineID": inst["InstanceId"],
                "systemUUID": inst["InstanceId"],
                "bootID": inst["InstanceId"],
            },
        },
    }


# --- Kubernetes REST, with the environment's client certificate -------------

class Kube:
    def __init__(self, server: str, ca: str, cert: str, key: str):
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def req(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.server + path, data=data, method=method)
        r.add_header("Content-Type", "application/json")
        r.add_header("Accept", "application/json")
        with urllib.request.urlopen(r, context=self.ctx, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")


class Joiner:
    def __init__(self, args):
        self.args = args
        session = boto3.session.Session(region_name=args.region)
        self.ec2 = session.client("ec2", endpoint_url=args.aws_endpoint)
        self.kube = Kube(args.server, args.ca, args.cert, args.key)
        self.itypes: dict[str, dict] = {}
        self.user_data: dict[str, str] = {}
        self.healthy = False
        self.joined_total = 0
        self.removed_total = 0

    def instance_type(self, name: str) -> dict:
        if name not in self.itypes:
            out = self.ec2.describe_instance_types(InstanceTypes=[name])["InstanceTypes"]
            if not out:
                raise ValueError(f"unknown instance type {name}")
            self.itypes[name] = out[0]
        return self.itypes[name]

    def instance_user_data(self, iid: str) -> str:
        if iid not in self.user_data:
            try:
                v = self.ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
                raw = (v.get("UserData") or {}).get("Value") or ""
                self.user_data[iid] = base64.b64decode(raw).decode("utf-8", "replace") if raw else ""
            except Exception as e:  # moto or the instance may not have it
                LOG.debug("no user data for %s: %s", iid, e)
                self.user_data[iid] = ""
        return self.user_data[iid]

    def step(self) -> None:
        key = f"kubernetes.io/cluster/{self.args.cluster}"
        running: dict[str, dict] = {}
        paginator = self.ec2.get_paginator("describe_instances")
        for page in paginator.paginate(Filters=[{"Name": "tag-key", "Values": [key]}]):
            for res in page["Reservations"]:
                for inst in res["Instances"]:
                    if inst["State"]["Name"] in ("pending", "running") and inst.get("PrivateIpAddress"):
                        running[inst["InstanceId"]] = inst
        nodes = self.kube.req("GET", "/api/v1/nodes")["items"]
        by_instance = {}
        for n in nodes:
            pid = n.get("spec", {}).get("providerID", "")
            if pid.startswith("aws:///"):
                by_instance[pid.rsplit("/", 1)[-1]] = n
        for iid, inst in sorted(running.items()):
            if iid in by_instance:
                continue
            node = build_node(inst, self.instance_type(inst["InstanceType"]), self.args.region,
                              self.instance_user_data(iid), self.args.kwok_port)
            try:
                self.kube.req("POST", "/api/v1/nodes", node)
                self.joined_total += 1
                LOG.info("registered node %s for instance %s (%s, %s)", node["metadata"]["name"], iid,
                         inst["InstanceType"], inst["Placement"]["AvailabilityZone"])
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
        for iid, n in by_instance.items():
            ann = n["metadata"].get("annotations", {})
            if ann.get(JOINED_ANNOTATION) != "testenv-joiner" or iid in running:
                continue
            name = n["metadata"]["name"]
            try:
                self.kube.req("DELETE", f"/api/v1/nodes/{name}")
                self.removed_total += 1
                self.user_data.pop(iid, None)
                LOG.info("removed node %s: instance %s is gone", name, iid)
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise

    def run(self) -> None:
        stop = False

        def on_term(*_):
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        while not stop:
            try:
                self.step()
                self.healthy = True
            except Exception as e:
                self.healthy = False
                LOG.warning("sync failed: %s", e)
            time.sleep(self.args.interval)


def serve_health(j: Joiner, port: int) -> None:
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/metrics":
                body = (f"testenv_joiner_nodes_registered_total {j.joined_total}\n"
                        f"testenv_joiner_nodes_removed_total {j.removed_total}\n").encode()
                code = 200
            else:
                code = 200 if j.healthy else 503
                body = b"ok" if j.healthy else b"not synced"
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", port), H)
    Thread(target=srv.serve_forever, daemon=True).start()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cluster", default="demo")
    p.add_argument("--region", default="ap-southeast-1")
    p.add_argument("--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    p.add_argument("--server", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--kwok-port", type=int, default=10247)
    p.add_argument("--health-port", type=int, default=0)
    p.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    j = Joiner(args)
    if args.health_port:
        serve_health(j, args.health_port)
    LOG.info("joining instances tagged kubernetes.io/cluster/%s from %s", args.cluster, args.aws_endpoint)
    j.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
