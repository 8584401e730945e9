#!/usr/bin/env bash
# Runs every fuzz target of every crate (crates/*/fuzz) briefly (FUZZ_SECONDS each, default 15) with
# cargo-fuzz (libFuzzer; needs the nightly toolchain, which rustup installs
# beside stable). Without a nightly toolchain it says so and exits 0: the
# targets' inputs are still exercised by the crates' property tests.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_EACH="${FUZZ_SECONDS:-15}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped, no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo ">> cargo install cargo-fuzz" >&2
  cargo install --quiet --locked cargo-fuzz >&2
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/outrigger/fuzz-target}"
for dir in "$REPO"/crates/*/fuzz; do
crate="$(dirname "$dir")"
cd "$crate"
for t in $(cargo +nightly fuzz list); do
  corpus="$HOME/.cache/outrigger/fuzz-corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [[ -d "fuzz/corpus/$t" ]] && seeds=("fuzz/corpus/$t")
  echo ">> fuzzing $t for ${SECONDS_EACH}s" >&2
  if ! cargo +nightly fuzz run "$t" "$corpus" "${seeds[@]}" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 2>"$corpus.log"; then
    tail -n 40 "$corpus.log" >&2
    if grep -q "failed to build fuzz script" "$corpus.log"; then
      echo "fuzz: $t does not build (see above)" >&2
    else
      echo "fuzz: $t found a crash (see above; artifacts in ${crate#"$REPO"/}/fuzz/artifacts/$t)" >&2
    fi
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$corpus.log" | grep -oE '[0-9]+$' || echo '?')
  echo "fuzz: $t ran $runs inputs without a crash"
done
done
