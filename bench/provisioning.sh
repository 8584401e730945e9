#!/usr/bin/env bash
# Benchmark: provisioning latency, from a batch window closing to every
# NodeClaim of its plan created, for rounds of 1,000 pending pods on the
# local environment (real kube-apiserver and kube-scheduler, kwok nodes).
#
#   bash bench/provisioning.sh                 # 5 rounds of 1000 pods, per window
#   ROUNDS=3 PODS=500 WINDOWS="1s/10s" bash bench/provisioning.sh
#   KARPENTER=0 WINDOWS=3s/30s bash bench/provisioning.sh   # Outrigger alone
#   OUTRIGGER_RELEASE=path/to/outrigger bash bench/provisioning.sh  # no build
#
# Outrigger's provisioner runs as a release build with the environment's
# flags (the environment's debug one is stopped for the run and started
# again after). Karpenter's own kwok controller (v1.12.1, from the Go module
# proxy; bench/karpenter-kwok.sh) runs the same rounds after it, alone
# against the same cluster, when it builds here. Both read their timings
# from their own logs (bench/provisioning.py). Results go into
# bench/RESULTS.md between the provisioning markers.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
ROUNDS="${ROUNDS:-5}"
PODS="${PODS:-1000}"
WINDOWS="${WINDOWS:-1s/10s 3s/30s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
WORK="$STATE/bench/provisioning"
rm -rf "$WORK" && mkdir -p "$WORK"

bash "$TESTENV/scripts/up.sh" >/dev/null
source "$STATE/env"
source "$REPO/bench/lib.sh"
release_binary

POOL=bench-provisioning
kubectl apply -f - >/dev/null <<YAML
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: $POOL}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.kwok.sh, kind: KWOKNodeClass, name: default}
      requirements:
      - {key: kubernetes.io/arch, operator: In, values: [amd64]}
      - {key: kubernetes.io/os, operator: In, values: [linux]}
  # Between rounds every empty node goes in one decision (Karpenter's default
  # budget, 10%, would take a round's nodes a few at a time).
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 0s
    budgets: [{nodes: "100%"}]
YAML

provisioner_bench "$POOL"

run_window() { # idle max: both programs, one after the other
  local idle="$1" max="$2" tag="$1-$2"
  export BATCH_IDLE_DURATION="$idle" BATCH_MAX_DURATION="$max"
  log "outrigger, batch window $idle idle / $max max: $ROUNDS rounds of $PODS pods"
  start_release_provisioner "$WORK/outrigger-$tag.log"
  python3 "$REPO/bench/provisioning.py" --impl outrigger --log "$WORK/outrigger-$tag.log" \
    --rounds "$ROUNDS" --pods "$PODS" --pool "$POOL" --namespace "bench-prov-o-$idle" | tee "$WORK/outrigger-$tag.jsonl"
  echo "{\"vmhwm_kib\": $(awk '/VmHWM/ {print $2}' "/proc/$BENCH_PID/status")}" >"$WORK/outrigger-$tag-mem.json"
  stop_pid "$BENCH_PID"
  BENCH_PID=
  # Karpenter's own controller (kwok provider), alone against the same cluster.
  if [[ "$KARPENTER_BUILT" == 1 ]]; then
    log "karpenter v1.12.1 (kwok), batch window $idle idle / $max max: $ROUNDS rounds of $PODS pods"
    bash "$REPO/bench/karpenter-kwok.sh" run "$WORK/karpenter-$tag.log" &
    BENCH_PID=$!
    wait_until "karpenter's provisioner" 120 "$BENCH_PID" grep -q '"message":"Starting workers","controller":"provisioner"' "$WORK/karpenter-$tag.log"
    python3 "$REPO/bench/provisioning.py" --impl karpenter --log "$WORK/karpenter-$tag.log" \
      --rounds "$ROUNDS" --pods "$PODS" --pool "$POOL" --namespace "bench-prov-k-$idle" | tee "$WORK/karpenter-$tag.jsonl"
    echo "{\"vmhwm_kib\": $(awk '/VmHWM/ {print $2}' "/proc/$BENCH_PID/status")}" >"$WORK/karpenter-$tag-mem.json"
    stop_pid "$BENCH_PID"
    BENCH_PID=
  fi
}

KARPENTER_BUILT=0
if [[ "${KARPENTER:-1}" == 0 ]]; then
  log "KARPENTER=0: Outrigger alone"
elif bash "$REPO/bench/karpenter-kwok.sh" build; then
  KARPENTER_BUILT=1
else
  log "Karpenter's kwok controller did not build; the table has Outrigger alone"
fi
# The default window (1 s idle, 10 s max): the pods arrive while the batch
# closes, so the API server is busy with them during the creates. A 3 s idle
# window: one batch of all the pods, against a quiet API server.
for w in $WINDOWS; do
  run_window "${w%/*}" "${w#*/}"
done

python3 "$REPO/bench/provisioning_report.py" "$WORK" "$ROUNDS" "$PODS" "$(nproc)" "$REPO/bench/RESULTS.md" $WINDOWS
log "wrote bench/RESULTS.md (raw figures in $WORK)"
