#!/usr/bin/env bash
# Benchmark: `outrigger cluster-autoscaler` (release build) against upstream
# Cluster Autoscaler 1.34.5 (bench/cluster-autoscaler-anchor.sh), one after
# the other in one run, on the same kwok node groups of the running local
# environment (upstream's kwok cloud provider and its ConfigMap format, which
# both understand).
#
#   NODES=1000 PODS_PER_NODE=30 PENDING=500 LOOPS=4 bash bench/cluster-autoscaler.sh
#
# The shape: NODES nodes in 4 groups (max 400 each), PODS_PER_NODE pods on
# each (250m / 256Mi, owned by ReplicaSets), so the first three groups are
# full; in the last group every other node holds only 20m pods (the
# scale-down candidates). PENDING pods (500m / 512Mi, a ReplicaSet) may only
# run on the first three groups, so they need new nodes. Each autoscaler
# starts from that state (the nodes the previous one added are deleted and
# the pending pods are pending again), runs LOOPS loops with a 10 s scan
# interval and an unneeded time of one hour (nothing is removed), and is
# killed (SIGKILL: upstream's kwok provider deletes every node of its groups
# on a clean exit).
#
# Per autoscaler, from its own cluster_autoscaler_function_duration_seconds
# (histogram sum and count, read every 0.25 s, so each loop's time is
# exact): the scale-up decision of the first loop (function "scaleUp"), the
# scale-down evaluation (function "findUnneeded", mean of the later loops),
# a whole loop ("main"), how many nodes were added, and
# memory (VmRSS at the end, VmHWM) from /proc. Prints a Markdown section for
# bench/RESULTS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
source "$REPO/bench/lib.sh"
NODES="${NODES:-1000}"
PODS_PER_NODE="${PODS_PER_NODE:-30}"
PENDING="${PENDING:-500}"
LOOPS="${LOOPS:-4}"
GROUPS_N=4
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
WORK="$STATE/bench/cluster-autoscaler"
mkdir -p "$WORK"
UP_PORT=10380
OUR_PORT=10381

bash "$TESTENV/scripts/status.sh" >/dev/null || die "the local environment is not running: make up"
source "$STATE/env"
export KUBECONFIG="$STATE/admin.kubeconfig"

UPSTREAM="$(bash "$REPO/bench/cluster-autoscaler-anchor.sh" build)"
release_binary
(cd "$REPO" && cargo build -q -p outrigger-e2e --bin outrigger-bench-populate)

# The environment's own autoscalers would act on the pending pods: pause them.
bash "$TESTENV/scripts/components.sh" down >/dev/null 2>&1 || true
trap 'bash "$TESTENV/scripts/components.sh" up >/dev/null 2>&1 || true' EXIT

# A population left by an earlier run of the same size is used as it is.
if [[ $(kubectl get nodes -l outrigger.dev/bench --no-headers 2>/dev/null | wc -l) -eq $NODES ]]; then
  log "using the $NODES benchmark nodes already there"
else
  log "populating $NODES nodes x $PODS_PER_NODE pods in $GROUPS_N kwok groups"
  "$CARGO_TARGET_DIR/debug/outrigger-bench-populate" --nodes "$NODES" --pods-per-node "$PODS_PER_NODE" \
    --kwok-port "$KWOK_PORT" --kwok-groups "$GROUPS_N" --pod-cpu 250m --pod-memory 256Mi \
    --light-every 2 --light-pod-cpu 20m
fi
want=$((NODES * PODS_PER_NODE))
deadline=$((SECONDS + 900))
until [[ $(kubectl get pods -n bench -l 'app' --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l) -ge $want ]]; do
  (( SECONDS > deadline )) && die "pods did not all become Running within 15 minutes"
  sleep 5
done
log "all $want pods Running"

templates() {
  for g in $(seq 0 $((GROUPS_N - 1))); do
    cat <<YAML
    ---
    apiVersion: v1
    kind: Node
    metadata:
      name: bench-g$g-template
      labels:
        kwok-nodegroup: bench-g$g
        type: kwok
        kubernetes.io/os: linux
        kubernetes.io/arch: amd64
      annotations:
        cluster-autoscaler.kwok.nodegroup/min-count: "0"
        cluster-autoscaler.kwok.nodegroup/max-count: "400"
    spec:
      taints: [{key: outrigger.dev/bench, value: "true", effect: NoSchedule}]
    status:
      capacity: {cpu: "8", memory: 31Gi, pods: "58"}
      allocatable: {cpu: 7910m, memory: 30Gi, pods: "58"}
YAML
  done
}
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: kwok-provider-config, namespace: kube-system}
data:
  config: |
    apiVersion: v1alpha1
    readNodesFrom: configmap
    nodegroups:
      fromNodeLabelKey: kwok-nodegroup
    nodes:
      skipTaint: true
    configmap:
      name: kwok-provider-templates
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kwok-provider-templates, namespace: kube-system}
data:
  templates: |
$(templates)
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: bench-pending, namespace: bench}
spec:
  replicas: $PENDING
  selector: {matchLabels: {app: bench-pending}}
  template:
    metadata: {labels: {app: bench-pending}}
    spec:
      tolerations: [{key: outrigger.dev/bench, operator: Exists}]
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: kwok-nodegroup, operator: In, values: [bench-g0, bench-g1, bench-g2]}
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: 500m, memory: 512Mi}}
YAML

# Back to the starting state: no added node, every pending pod pending and
# marked unschedulable, no soft taint left.
reset() {
  kubectl delete nodes -l 'kwok-nodegroup,!outrigger.dev/bench' --wait=false >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 600))
  while :; do
    local added unsched
    added=$(kubectl get nodes -l 'kwok-nodegroup,!outrigger.dev/bench' --no-headers 2>/dev/null | wc -l)
    unsched=$(kubectl get pods -n bench -l app=bench-pending -o json |
      python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["items"] if not p["spec"].get("nodeName") and any(c.get("reason")=="Unschedulable" for c in p.get("status",{}).get("conditions",[]))))')
    (( added == 0 && unsched >= PENDING )) && break
    (( SECONDS > deadline )) && die "could not get back to the starting state ($added added nodes, $unsched unschedulable pods)"
    sleep 3
  done
  kubectl taint nodes -l outrigger.dev/bench DeletionCandidateOfClusterAutoscaler- >/dev/null 2>&1 || true
}

run_one() { # name pid port
  python3 "$REPO/bench/cluster_autoscaler.py" sample --name "$1" --pid "$2" \
    --url "http://127.0.0.1:$3/metrics" --loops "$LOOPS" --out "$WORK/$1.json"
  kill -KILL "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null || true
  kubectl get nodes -l 'kwok-nodegroup,!outrigger.dev/bench' --no-headers 2>/dev/null | wc -l >"$WORK/$1.added"
}

COMMON=(--cloud-provider=kwok --kubeconfig "$STATE/admin.kubeconfig" --namespace kube-system
  --scan-interval=10s --scale-down-unneeded-time=1h --expander=least-waste
  --skip-nodes-with-local-storage=false --leader-elect=false)

log "upstream Cluster Autoscaler: resetting"
reset
log "upstream Cluster Autoscaler: running $LOOPS loops"
POD_NAMESPACE=kube-system KWOK_PROVIDER_MODE=local \
  "$UPSTREAM" "${COMMON[@]}" --v=1 --address "127.0.0.1:$UP_PORT" >"$WORK/upstream.log" 2>&1 &
run_one upstream $! $UP_PORT

log "outrigger cluster-autoscaler: resetting"
reset
log "outrigger cluster-autoscaler: running $LOOPS loops"
POD_NAMESPACE=kube-system "$OUTRIGGER_RELEASE" cluster-autoscaler "${COMMON[@]}" \
  --address "127.0.0.1:$OUR_PORT" >"$WORK/outrigger.log" 2>&1 &
run_one outrigger $! $OUR_PORT

reset
python3 "$REPO/bench/cluster_autoscaler.py" report --nodes "$NODES" --pods-per-node "$PODS_PER_NODE" \
  --pending "$PENDING" --added "$(cat "$WORK/upstream.added")" "$(cat "$WORK/outrigger.added")" \
  "$WORK/upstream.json" "$WORK/outrigger.json" | tee "$REPO/bench/last-cluster-autoscaler.md"
