#!/usr/bin/env bash
# Karpenter's own controller with its kwok cloud provider (Go package main
# sigs.k8s.io/karpenter/kwok, v1.12.1): the anchor of the side-by-side
# provisioning-latency benchmark, run against the local environment.
#
#   bash bench/karpenter-kwok.sh build            # idempotent; cached by version in ~/.cache/outrigger/bin
#   bash bench/karpenter-kwok.sh run LOGFILE [FLAG...]
#
# `run` builds if needed, then runs the controller in the foreground (exec: the
# process keeps this script's pid; stop it with SIGTERM) with its JSON log in
# LOGFILE (stdout and stderr). Extra FLAGs go to the controller, after ours,
# e.g. --log-level debug, --batch-idle-duration 1s, --batch-max-duration 10s.
#
# Settings (environment):
#   KUBECONFIG                  default: the environment's admin kubeconfig.
#                               Karpenter's own flag parser rejects --kubeconfig,
#                               so controller-runtime only sees KUBECONFIG.
#   KARPENTER_METRICS_PORT      default 10370 (Karpenter's default 8080)
#   KARPENTER_HEALTH_PORT       default 10371 (Karpenter's default 8081)
#                               Both are bound on all interfaces (":PORT").
#   KARPENTER_LEADER_ELECTION   0 (default): --disable-leader-election;
#                               1: Lease kube-system/karpenter-kwok-leader-election.
#                               Karpenter installs no signal handler: SIGTERM ends it
#                               at once without releasing the Lease, so a restart
#                               within 15s would wait for the old Lease to expire.
#
# The controllers run once the log shows "Starting workers" for controller
# "provisioner" (/readyz answers ok earlier, before that).
#
# Karpenter v1.12 has no webhooks and no cluster-name setting (CLUSTER_NAME is
# an AWS-provider option), so neither is configured here. Its kwok provider
# creates the Node of each NodeClaim itself (annotated kwok.x-k8s.io/node=fake,
# which the environment's kwok manages) from its embedded catalogue of 144
# instance types ({c,s,m}-{1..256}x-{amd64,arm64}-{linux,windows}, zones
# test-zone-{a..d}, spot and on-demand); it needs a KWOKNodeClass whose Ready
# condition is True (Outrigger's CRD defaults it, as Karpenter's does).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
KARPENTER_VERSION=v1.12.1
KARPENTER_KWOK="$BIN/karpenter-kwok-$KARPENTER_VERSION"
KARPENTER_METRICS_PORT="${KARPENTER_METRICS_PORT:-10370}"
KARPENTER_HEALTH_PORT="${KARPENTER_HEALTH_PORT:-10371}"
KARPENTER_LEADER_ELECTION="${KARPENTER_LEADER_ELECTION:-0}"

build() {
  [[ -x "$KARPENTER_KWOK" ]] && return 0
  log "building Karpenter $KARPENTER_VERSION's kwok controller from the Go module proxy"
  mkdir -p "$BIN"
  # Build to a temporary name so an interrupted build never leaves a cached binary.
  (cd "$REPO/bench/go/karpenter" && go build -o "$KARPENTER_KWOK.tmp" sigs.k8s.io/karpenter/kwok)
  mv "$KARPENTER_KWOK.tmp" "$KARPENTER_KWOK"
}

run() { # logfile [flags...]
  local logfile="${1:?usage: $0 run LOGFILE [FLAG...]}"; shift
  build
  export KUBECONFIG="${KUBECONFIG:-$STATE/admin.kubeconfig}"
  [[ -r "$KUBECONFIG" ]] || die "no kubeconfig at $KUBECONFIG; is the environment up ('make up')?"
  require_free_port "karpenter-kwok metrics" "$KARPENTER_METRICS_PORT" KARPENTER_METRICS_PORT
  require_free_port "karpenter-kwok health probes" "$KARPENTER_HEALTH_PORT" KARPENTER_HEALTH_PORT
  local le=(--leader-election-namespace kube-system --leader-election-name karpenter-kwok-leader-election)
  [[ "$KARPENTER_LEADER_ELECTION" == 1 ]] || le=(--disable-leader-election)
  mkdir -p "$(dirname "$logfile")"
  log "running Karpenter $KARPENTER_VERSION (kwok) against $KUBECONFIG; log in $logfile; health http://127.0.0.1:$KARPENTER_HEALTH_PORT/healthz"
  exec "$KARPENTER_KWOK" \
    --metrics-port "$KARPENTER_METRICS_PORT" \
    --health-probe-port "$KARPENTER_HEALTH_PORT" \
    "${le[@]}" \
    --log-level info \
    "$@" >>"$logfile" 2>&1
}

case "${1:-}" in
  build) build ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 build | run LOGFILE [FLAG...]" ;;
esac
