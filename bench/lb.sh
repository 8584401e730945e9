#!/usr/bin/env bash
# Benchmark: the load balancer controller reconciling 200 Ingresses in 20
# IngressGroups from nothing, on the local environment with moto as AWS;
# then deleting them. Time until every Ingress has an ADDRESS, and ELBv2 and
# EC2 calls per Ingress, into bench/RESULTS.md (between the lb markers).
#
#   bash bench/lb.sh
#   INGRESSES=900 GROUPS_N=90 bash bench/lb.sh
#
# The controller runs as a release build with the environment's flags (the
# environment's debug one steps aside for the run). No anchor runs beside
# it: the AWS Load Balancer Controller needs AWS's instance metadata and its
# webhooks; its users' figures are quoted instead.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
INGRESSES="${INGRESSES:-200}"
GROUPS_N="${GROUPS_N:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
WORK="$STATE/bench/lb"
rm -rf "$WORK" && mkdir -p "$WORK"

bash "$TESTENV/scripts/up.sh" >/dev/null
source "$STATE/env"
source "$REPO/bench/lib.sh"
release_binary

restore() {
  [[ -n "${BENCH_PID:-}" ]] && stop_pid "$BENCH_PID"
  bash "$TESTENV/scripts/components.sh" up >/dev/null 2>&1 || true
}
trap restore EXIT

step_aside outrigger-load-balancer-controller outrigger-load-balancer-controller

log "outrigger load-balancer-controller (release): $INGRESSES ingresses in $GROUPS_N groups"
AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION="$AWS_REGION_DEFAULT" \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing OUTRIGGER_LOG_FORMAT=json \
  "$OUTRIGGER_RELEASE" load-balancer-controller --kubeconfig "$STATE/load-balancer-controller.kubeconfig" \
  --leader-elect-namespace kube-system --cluster-name "$CLUSTER_NAME" \
  --admin-address "127.0.0.1:$LB_CONTROLLER_ADMIN_PORT" >"$WORK/outrigger.log" 2>&1 &
BENCH_PID=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$LB_CONTROLLER_ADMIN_PORT/readyz" >/dev/null && break
  kill -0 "$BENCH_PID" 2>/dev/null || die "the controller exited during start"
  sleep 0.5
done
python3 "$REPO/bench/lb.py" --admin "http://127.0.0.1:$LB_CONTROLLER_ADMIN_PORT" \
  --ingresses "$INGRESSES" --groups "$GROUPS_N" --out "$WORK/result.json"
echo "{\"vmhwm_kib\": $(awk '/VmHWM/ {print $2}' "/proc/$BENCH_PID/status")}" >"$WORK/mem.json"
python3 "$REPO/bench/lb_report.py" "$WORK" "$(nproc)" "$REPO/bench/RESULTS.md"
log "wrote bench/RESULTS.md (raw figures in $WORK)"
