"""Load balancer controller benchmark: 200 Ingresses in 20 IngressGroups,
reconciled from nothing against the local environment (moto as AWS).

Measures the time from `kubectl apply` to every Ingress having an ADDRESS,
the controller's ELBv2 and EC2 calls per Ingress (its
`outrigger_lb_aws_calls` metric, before and after), then the same for
deleting them all (until nothing tagged for the stacks is left).

Usage: lb.py --admin URL --ingresses 200 --groups 20 --out FILE.json
"""
import argparse
import json
import subprocess
import sys
import time
import urllib.request

NS = "bench-lb"


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def calls(admin):
    text = urllib.request.urlopen(f"{admin}/metrics", timeout=5).read().decode()
    out = {"elbv2": 0, "ec2": 0}
    for line in text.splitlines():
        if line.startswith("outrigger_lb_aws_calls{"):
            service = line.split('service="')[1].split('"')[0]
            out[service] = int(float(line.rsplit(" ", 1)[1]))
    return out


def manifests(n, groups):
    docs = [f"""apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{namespace: {NS}, name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{namespace: {NS}, name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 80}}]
"""]
    for i in range(n):
        docs.append(f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  namespace: {NS}
  name: ing-{i:03d}
  annotations:
    alb.ingress.kubernetes.io/group.name: bench-g{i % groups:02d}
    alb.ingress.kubernetes.io/group.order: "{i // groups}"
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/scheme: internet-facing
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /app-{i:03d}, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
""")
    return "---\n".join(docs)


def addressed():
    v = json.loads(kubectl("-n", NS, "get", "ingress", "-o", "json"))
    return sum(1 for i in v["items"] if (i.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("hostname"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--admin", required=True)
    p.add_argument("--ingresses", type=int, default=200)
    p.add_argument("--groups", type=int, default=20)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    subprocess.run(["kubectl", "delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=300s"], check=False)
    before = calls(a.admin)
    t0 = time.monotonic()
    kubectl("apply", "-f", "-", stdin=manifests(a.ingresses, a.groups))
    applied = time.monotonic() - t0
    while True:
        n = addressed()
        if n >= a.ingresses:
            break
        if time.monotonic() - t0 > 900:
            sys.exit(f"only {n} of {a.ingresses} ingresses got an address in 900 s")
        time.sleep(0.5)
    create_s = time.monotonic() - t0
    after = calls(a.admin)
    # Deleting: every Ingress gone (finalizers released once the ALBs are).
    t1 = time.monotonic()
    kubectl("-n", NS, "delete", "ingress", "--all", "--wait=false")
    while True:
        left = json.loads(kubectl("-n", NS, "get", "ingress", "-o", "json"))["items"]
        if not left:
            break
        if time.monotonic() - t1 > 900:
            sys.exit(f"{len(left)} ingresses still there after 900 s")
        time.sleep(0.5)
    delete_s = time.monotonic() - t1
    end = calls(a.admin)
    result = {
        "ingresses": a.ingresses,
        "groups": a.groups,
        "apply_s": round(applied, 2),
        "create_s": round(create_s, 2),
        "create_elbv2_calls": after["elbv2"] - before["elbv2"],
        "create_ec2_calls": after["ec2"] - before["ec2"],
        "delete_s": round(delete_s, 2),
        "delete_elbv2_calls": end["elbv2"] - after["elbv2"],
        "delete_ec2_calls": end["ec2"] - after["ec2"],
    }
    print(json.dumps(result))
    with open(a.out, "w") as f:
        json.dump(result, f)
    subprocess.run(["kubectl", "delete", "namespace", NS, "--wait=false"], check=False)


if __name__ == "__main__":
    main()
