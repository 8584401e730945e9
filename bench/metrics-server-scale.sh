#!/usr/bin/env bash
# Scale check: can one `outrigger metrics-server` scrape NODES nodes within
# one 15 s resolution? The nodes' kubelet is a synthetic farm (one HTTPS
# server answering every node's /metrics/resource with PODS pods), because
# kwok on a two-core machine cannot emulate thousands of busy kubelets.
# Upstream metrics-server v0.8.0 scrapes the same nodes in the same run.
#
#   NODES=5000 PODS=30 bash bench/metrics-server-scale.sh
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
NODES="${NODES:-5000}"
PODS="${PODS:-30}"
CYCLES="${CYCLES:-4}"
RES=15
FARM_PORT=10390
UPSTREAM="$BIN/metrics-server-v0.8.0"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
WORK="$STATE/bench-scale"
mkdir -p "$WORK"
bash "$TESTENV/scripts/status.sh" >/dev/null || die "the local environment is not running: make up"
source "$STATE/env"
[[ -x "$UPSTREAM" ]] || (cd "$REPO/bench/go/metrics-server" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$UPSTREAM" sigs.k8s.io/metrics-server/cmd/metrics-server)
(cd "$REPO" && cargo build -q --release -p outrigger && cargo build -q -p outrigger-e2e --bins)

"$CARGO_TARGET_DIR/debug/outrigger-bench-kubelet-farm" --listen "127.0.0.1:$FARM_PORT" --pods "$PODS" \
  --tls-cert-file "$PKI/kubelet-serving.crt" --tls-private-key-file "$PKI/kubelet-serving.key" >"$WORK/farm.log" 2>&1 &
FARM=$!
"$CARGO_TARGET_DIR/debug/outrigger-bench-populate" --nodes "$NODES" --pods-per-node 0 --kwok-port "$FARM_PORT" --unmanaged
common=(--metric-resolution ${RES}s --kubelet-use-node-status-port --kubelet-preferred-address-types InternalIP
        --kubelet-certificate-authority "$PKI/ca.crt" --node-selector outrigger.dev/bench=true)
PIDS_RUNNING=("$FARM")
cleanup() {
  kill "${PIDS_RUNNING[@]}" 2>/dev/null || true
  wait "${PIDS_RUNNING[@]}" 2>/dev/null || true
  "$CARGO_TARGET_DIR/debug/outrigger-bench-populate" --delete >/dev/null 2>&1 || true
}
trap cleanup EXIT

tick() { # url [curl flag]: "N cycles, mean X s, all <= Y s"
  curl -s ${2:-} "$1" | awk '
    /^metrics_server_manager_tick_duration_seconds_sum/ {sum=$2}
    /^metrics_server_manager_tick_duration_seconds_count/ {n=$2}
    /^metrics_server_manager_tick_duration_seconds_bucket/ {
      match($0, /le="[^"]+"/); b[++i]=substr($0, RSTART+4, RLENGTH-5); v[i]=$2 }
    END { max="?"; for (j=1;j<=i;j++) if (v[j]==n) { max=b[j]; break }
          if (n>0) printf "%d cycles, mean %.2f s, each <= %s s", n, sum/n, max }'
}
points() { curl -s ${2:-} "$1" | awk '/^metrics_server_storage_points/{match($0, /type="[a-z]+"/); printf "%s %s ", substr($0, RSTART+6, RLENGTH-7), $2}'; }
rss() { awk '/^VmRSS/{printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
failed() { local n; n=$(grep -c 'Failed to scrape' "$1" || true); echo "${n:-0}"; }

# One at a time, each alone with the farm, for CYCLES cycles.
"$CARGO_TARGET_DIR/release/outrigger" metrics-server --kubeconfig "$STATE/admin.kubeconfig" \
  --admin-address 127.0.0.1:10381 --secure-port 10380 --bind-address 127.0.0.1 "${common[@]}" \
  --log-format plain >"$WORK/outrigger.log" 2>&1 &
OURS=$!; PIDS_RUNNING+=("$OURS")
sleep $(( (CYCLES + 1) * RES + 5 ))
our_tick=$(tick http://127.0.0.1:10381/metrics); our_points=$(points http://127.0.0.1:10381/metrics); our_rss=$(rss $OURS)
kill "$OURS"; wait "$OURS" 2>/dev/null || true
our_failed=$(failed "$WORK/outrigger.log")

"$UPSTREAM" --kubeconfig "$STATE/admin.kubeconfig" --authentication-kubeconfig "$STATE/admin.kubeconfig" \
  --authorization-kubeconfig "$STATE/admin.kubeconfig" --secure-port 10382 --bind-address 127.0.0.1 \
  --cert-dir "$WORK/upstream-certs" --authorization-always-allow-paths /healthz,/readyz,/livez,/metrics \
  "${common[@]}" >"$WORK/upstream.log" 2>&1 &
UP=$!; PIDS_RUNNING+=("$UP")
sleep $(( (CYCLES + 1) * RES + 5 ))
up_tick=$(tick https://127.0.0.1:10382/metrics -k); up_points=$(points https://127.0.0.1:10382/metrics -k); up_rss=$(rss $UP)
kill "$UP"; wait "$UP" 2>/dev/null || true
up_failed=$(failed "$WORK/upstream.log")

cat <<MD
### metrics-server at scale: $NODES nodes x $PODS pods (synthetic kubelets), $(date -u +%Y-%m-%d)

| | upstream metrics-server v0.8.0 | outrigger metrics-server |
|---|---|---|
| scrape cycles (manager tick) | $up_tick | $our_tick |
| points stored | $up_points | $our_points |
| resident memory at the end | $up_rss | $our_rss |
| failed scrapes logged | $up_failed | $our_failed |

Command: \`NODES=$NODES PODS=$PODS bash bench/metrics-server-scale.sh\`; each for $CYCLES cycles at
\`--metric-resolution=${RES}s\` with \`--node-selector outrigger.dev/bench=true\`, one after the other in the
same run (each alone with the farm: together they starve it), against one synthetic HTTPS kubelet farm on loopback
(crates/e2e/src/bin/outrigger-bench-kubelet-farm.rs) sharing the machine's $(nproc) cores.
MD
