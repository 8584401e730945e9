#!/usr/bin/env bash
# Benchmark: disruption side by side with Karpenter v1.12.1's own controller
# (its kwok provider) on the local environment: a pool of NODES (500) nodes
# left over-provisioned, consolidated until the cluster settles
# (bench/disruption.py says how). Both controllers run alone, one after the
# other, from the same catalogue: Outrigger's kwok catalogue, written in
# Karpenter's kwok format (outrigger-bench-catalogue) and given to Karpenter
# with --instance-types-file-path, so nodes and prices compare directly.
#
#   bash bench/disruption.sh                     # 500 nodes, both
#   NODES=100 bash bench/disruption.sh
#   KARPENTER=0 bash bench/disruption.sh         # Outrigger alone
#   OUTRIGGER_RELEASE=path/to/outrigger bash bench/disruption.sh  # no build
#
# Results go into bench/RESULTS.md between the disruption markers; the raw
# figures into .testenv/bench/disruption/.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
NODES="${NODES:-500}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
WORK="$STATE/bench/disruption"
rm -rf "$WORK" && mkdir -p "$WORK"

bash "$TESTENV/scripts/up.sh" >/dev/null
source "$STATE/env"
source "$REPO/bench/lib.sh"
release_binary
(cd "$REPO" && cargo run -q -p outrigger-e2e --bin outrigger-bench-catalogue) >"$WORK/types.json"

POOL=bench-disruption
pool() { # the pool, consolidation held until the benchmark lets it go
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
      - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
  disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: Never}
  limits: {cpu: "100000"}
YAML
}

provisioner_bench "$POOL"

log "outrigger: $NODES nodes over-provisioned, consolidated"
pool
start_release_provisioner "$WORK/outrigger.log"
python3 "$REPO/bench/disruption.py" --impl outrigger --log "$WORK/outrigger.log" --pid "$BENCH_PID" \
  --metrics "http://127.0.0.1:$PROVISIONER_ADMIN_PORT/metrics" --types "$WORK/types.json" \
  --nodes "$NODES" --pool "$POOL" --namespace bench-disruption-o | tee "$WORK/outrigger.json"
stop_pid "$BENCH_PID"
BENCH_PID=
kubectl delete nodepool "$POOL" --wait=true >/dev/null

if [[ "${KARPENTER:-1}" != 0 ]] && bash "$REPO/bench/karpenter-kwok.sh" build; then
  log "karpenter v1.12.1 (kwok): $NODES nodes over-provisioned, consolidated"
  pool
  bash "$REPO/bench/karpenter-kwok.sh" run "$WORK/karpenter.log" --instance-types-file-path "$WORK/types.json" &
  BENCH_PID=$!
  wait_until "karpenter's provisioner" 120 "$BENCH_PID" grep -q '"message":"Starting workers","controller":"provisioner"' "$WORK/karpenter.log"
  python3 "$REPO/bench/disruption.py" --impl karpenter --log "$WORK/karpenter.log" --pid "$BENCH_PID" \
    --metrics "http://127.0.0.1:${KARPENTER_METRICS_PORT:-10370}/metrics" --types "$WORK/types.json" \
    --nodes "$NODES" --pool "$POOL" --namespace bench-disruption-k | tee "$WORK/karpenter.json"
  stop_pid "$BENCH_PID"
  BENCH_PID=
fi

python3 "$REPO/bench/disruption_report.py" "$WORK" "$NODES" "$(nproc)" "$REPO/bench/RESULTS.md"
log "wrote bench/RESULTS.md (raw figures in $WORK)"
