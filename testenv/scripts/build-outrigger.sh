#!/usr/bin/env bash
# Builds the outrigger binary (debug) into the shared Cargo target directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup"
(cd "$REPO" && cargo build -q -p outrigger) || die "building outrigger failed"
# The environment's own helper: the kubelet's part for container logs.
(cd "$REPO" && cargo build -q -p outrigger-e2e --bin outrigger-e2e-kubelet-logs) || die "building outrigger-e2e-kubelet-logs failed"
