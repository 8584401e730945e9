#!/usr/bin/env bash
# Benchmark: Outrigger's scheduling solver against Karpenter's, side by side
# in one run, on the shape of Karpenter's own scheduling benchmark (400
# generated instance types, diverse pods, seed 42).
#
#   bash bench/scheduling.sh            # sizes 1 100 1000 5000 10000 20000
#   SIZES="1000 5000" bash bench/scheduling.sh
#
# - Outrigger: `crates/scheduling/examples/bench.rs` (release build), one
#   process per size so each peak resident memory (VmHWM) is that solve's.
#   Both shapes: `six` (the issue's six groups) and `karpenter` (Karpenter
#   v1.12's five), plus a first-fit-decreasing baseline price (`--baseline`).
# - Karpenter v1.12.1: its `BenchmarkScheduling<N>` (scheduler.Solve only,
#   fake cloud provider, build tag test_performance), built from the Go
#   module proxy into ~/.cache/outrigger/bin; peak memory from the kernel's
#   ru_maxrss of the benchmark process.
#
# Prints a Markdown section and writes it into bench/RESULTS.md between the
# scheduling markers.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
SIZES="${SIZES:-1 100 1000 5000 10000 20000}"
KARPENTER_VERSION=v1.12.1
KARPENTER="$BIN/karpenter-scheduling-$KARPENTER_VERSION.test"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
OURS="$CARGO_TARGET_DIR/release/examples/bench"
WORK="$STATE/bench/scheduling"
rm -rf "$WORK" && mkdir -p "$WORK"

if [[ ! -x "$KARPENTER" ]]; then
  log "building Karpenter $KARPENTER_VERSION's scheduling benchmark from the Go module proxy"
  mkdir -p "$BIN"
  (cd "$REPO/bench/go/karpenter" && go test -c -tags=test_performance -o "$KARPENTER" \
    sigs.k8s.io/karpenter/pkg/controllers/provisioning/scheduling)
fi
log "building the solver benchmark (release)"
(cd "$REPO" && cargo build -q --release -p outrigger-scheduling --features testgen --example bench)

# Runs a command and prints its peak resident memory (KiB) on stderr's last
# line: ru_maxrss of the child, from the kernel.
maxrss() {
  python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
sys.stdout.write(r.stdout)
print("maxrss_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(r.returncode)' "$@"
}

for n in $SIZES; do
  log "$n pods: outrigger (six groups, with the FFD baseline)"
  "$OURS" --pods "$n" --shape six --baseline >>"$WORK/ours-six.jsonl"
  log "$n pods: outrigger (Karpenter v1.12 shape, with the FFD baseline)"
  "$OURS" --pods "$n" --shape karpenter --repeat 3 --baseline >>"$WORK/ours-karpenter.jsonl"
  log "$n pods: karpenter $KARPENTER_VERSION"
  maxrss "$KARPENTER" -test.run='^$' -test.bench="^BenchmarkScheduling${n}\$" -test.benchtime=1x \
    >"$WORK/k-$n.out" 2>"$WORK/k-$n.err" || die "karpenter's benchmark failed: $(tail -5 "$WORK/k-$n.out")"
  line=$(grep "^BenchmarkScheduling${n}-" "$WORK/k-$n.out" || true)
  [[ -n "$line" ]] || die "karpenter's benchmark has no BenchmarkScheduling${n}"
  echo "$n $(tail -1 "$WORK/k-$n.err" | awk '{print $2}') $line" >>"$WORK/karpenter.txt"
done

python3 "$REPO/bench/scheduling_report.py" "$WORK" "$KARPENTER_VERSION" "$(nproc)" \
  "$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)" "$REPO/bench/RESULTS.md"
log "wrote bench/RESULTS.md (raw figures in $WORK)"
