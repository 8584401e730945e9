#!/usr/bin/env bash
# Benchmark: `outrigger metrics-server` (release build) against upstream
# metrics-server v0.8.0 (built from the Go module proxy), side by side in one
# run, scraping the same kwok nodes of the running local environment.
#
#   NODES=1000 PODS_PER_NODE=30 CYCLES=6 bash bench/metrics-server.sh
#
# For each process: resident memory (mean and peak over the measured cycles,
# from /proc) and CPU seconds per scrape cycle (utime+stime over CYCLES
# cycles of --metric-resolution 15s, after two warm-up cycles). Prints a
# Markdown section for bench/RESULTS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
NODES="${NODES:-1000}"
PODS_PER_NODE="${PODS_PER_NODE:-30}"
CYCLES="${CYCLES:-6}"
RES=15
UPSTREAM_VERSION=v0.8.0
UPSTREAM="$BIN/metrics-server-$UPSTREAM_VERSION"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
OURS="$CARGO_TARGET_DIR/release/outrigger"
WORK="$STATE/bench"
mkdir -p "$WORK"

bash "$TESTENV/scripts/status.sh" >/dev/null || die "the local environment is not running: make up"
source "$STATE/env"

if [[ ! -x "$UPSTREAM" ]]; then
  log "building upstream metrics-server $UPSTREAM_VERSION from the Go module proxy"
  (cd "$REPO/bench/go/metrics-server" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$UPSTREAM" sigs.k8s.io/metrics-server/cmd/metrics-server)
fi
log "building outrigger (release)"
(cd "$REPO" && cargo build -q --release -p outrigger)
(cd "$REPO" && cargo build -q -p outrigger-e2e --bin outrigger-bench-populate)

log "populating $NODES nodes x $PODS_PER_NODE pods"
"$CARGO_TARGET_DIR/debug/outrigger-bench-populate" --nodes "$NODES" --pods-per-node "$PODS_PER_NODE" --kwok-port "$KWOK_PORT"
want=$((NODES * PODS_PER_NODE))
deadline=$((SECONDS + 900))
until [[ $(kubectl get pods -n bench --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l) -ge $want ]]; do
  (( SECONDS > deadline )) && die "pods did not all become Running within 15 minutes"
  sleep 5
done
log "all $want pods Running"

# The environment's own metrics server would add load to kwok: pause it.
bash "$TESTENV/scripts/components.sh" down >/dev/null 2>&1 || true

log "starting upstream metrics-server and outrigger metrics-server"
"$UPSTREAM" --kubeconfig "$STATE/admin.kubeconfig" \
  --authentication-kubeconfig "$STATE/admin.kubeconfig" --authorization-kubeconfig "$STATE/admin.kubeconfig" \
  --secure-port 10360 --bind-address 127.0.0.1 --cert-dir "$WORK/upstream-certs" \
  --metric-resolution ${RES}s --kubelet-use-node-status-port --kubelet-preferred-address-types InternalIP \
  --kubelet-certificate-authority "$PKI/ca.crt" \
  --authorization-always-allow-paths /healthz,/readyz,/livez,/metrics >"$WORK/upstream.log" 2>&1 &
UP_PID=$!
"$OURS" metrics-server --kubeconfig "$STATE/admin.kubeconfig" --admin-address 127.0.0.1:10371 \
  --secure-port 10370 --bind-address 127.0.0.1 \
  --metric-resolution ${RES}s --kubelet-use-node-status-port --kubelet-preferred-address-types InternalIP \
  --kubelet-certificate-authority "$PKI/ca.crt" --log-format plain >"$WORK/outrigger.log" 2>&1 &
OUR_PID=$!
cleanup() {
  kill "$UP_PID" "$OUR_PID" 2>/dev/null || true
  wait "$UP_PID" "$OUR_PID" 2>/dev/null || true
  bash "$TESTENV/scripts/components.sh" up >/dev/null 2>&1 || true
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
TCK=$(getconf CLK_TCK)

log "warming up for two cycles"
sleep $((2 * RES + 5))
c0_up=$(cpu_ticks $UP_PID); c0_our=$(cpu_ticks $OUR_PID)
sum_up=0; sum_our=0; n=0; peak_up=0; peak_our=0
end=$((SECONDS + CYCLES * RES))
while (( SECONDS < end )); do
  r1=$(rss_kib $UP_PID); r2=$(rss_kib $OUR_PID)
  sum_up=$((sum_up + r1)); sum_our=$((sum_our + r2)); n=$((n + 1))
  (( r1 > peak_up )) && peak_up=$r1; (( r2 > peak_our )) && peak_our=$r2
  sleep 1
done
c1_up=$(cpu_ticks $UP_PID); c1_our=$(cpu_ticks $OUR_PID)
hwm_up=$(hwm_kib $UP_PID); hwm_our=$(hwm_kib $OUR_PID)

cpu_up=$(echo "scale=3; ($c1_up - $c0_up) / $TCK / $CYCLES" | bc)
cpu_our=$(echo "scale=3; ($c1_our - $c0_our) / $TCK / $CYCLES" | bc)
mib() { echo "scale=1; $1 / 1024" | bc; }
mean_up=$((sum_up / n)); mean_our=$((sum_our / n))
ratio_mem=$(echo "scale=3; $mean_our / $mean_up" | bc)
ratio_cpu=$(echo "scale=3; $cpu_our / $cpu_up" | bc)

# What each one stored: both must have scraped every node.
up_points=$(curl -sk https://127.0.0.1:10360/metrics | awk '/^metrics_server_storage_points/{s+=$2} END{print s+0}')
our_points=$(curl -s http://127.0.0.1:10371/metrics | awk '/^metrics_server_storage_points/{s+=$2} END{print s+0}')
our_tick=$(curl -s http://127.0.0.1:10371/metrics | awk '/^metrics_server_manager_tick_duration_seconds_(sum|count)/{v[$1]=$2} END{if (v["metrics_server_manager_tick_duration_seconds_count"]>0) printf "%.2f", v["metrics_server_manager_tick_duration_seconds_sum"]/v["metrics_server_manager_tick_duration_seconds_count"]}')
up_tick=$(curl -sk https://127.0.0.1:10360/metrics | awk '/^metrics_server_manager_tick_duration_seconds_(sum|count)/{v[$1]=$2} END{if (v["metrics_server_manager_tick_duration_seconds_count"]>0) printf "%.2f", v["metrics_server_manager_tick_duration_seconds_sum"]/v["metrics_server_manager_tick_duration_seconds_count"]}')

cat <<MD
### metrics-server: $NODES nodes x $PODS_PER_NODE pods, $(date -u +%Y-%m-%d)

| | upstream metrics-server $UPSTREAM_VERSION | outrigger metrics-server | ratio (outrigger / upstream) |
|---|---|---|---|
| resident memory, mean over $CYCLES cycles | $(mib $mean_up) MiB | $(mib $mean_our) MiB | $ratio_mem |
| resident memory, peak (VmHWM) | $(mib $hwm_up) MiB | $(mib $hwm_our) MiB | $(echo "scale=3; $hwm_our / $hwm_up" | bc) |
| CPU seconds per scrape cycle | $cpu_up | $cpu_our | $ratio_cpu |
| mean scrape cycle (manager tick) | ${up_tick:-?} s | ${our_tick:-?} s | |
| points stored (metrics_server_storage_points) | $up_points | $our_points | |

Command: \`NODES=$NODES PODS_PER_NODE=$PODS_PER_NODE CYCLES=$CYCLES bash bench/metrics-server.sh\` on the running
local environment (\`make up\`), both processes at \`--metric-resolution=${RES}s\`, scraping kwok's kubelet
emulation over HTTPS on loopback, measured from /proc in the same run. Machine: $(nproc) cores, $(free -g | awk '/^Mem/{print $2}') GiB.
MD
