#!/usr/bin/env bash
# Stops every process the local environment started, by pid (and its process
# group), newest first, and checks that no listener is left behind.
# `down.sh --purge` also deletes the state (etcd data, certificates, logs).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

stop() { # name
  local f; f=$(pidfile "$1")
  [[ -f "$f" ]] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "   $1 (pid $pid) did not stop on SIGTERM; killing" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    echo ">> stopped $1 (pid $pid)" >&2
  fi
  rm -f "$f"
}

if [[ -d "$PIDS" ]]; then
  bash "$TESTENV/scripts/components.sh" down || true
  for name in joiner moto kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop "$name"
  done
  for f in "$PIDS"/*.pid; do [[ -e "$f" ]] && stop "$(basename "$f" .pid)"; done
fi

left=()
for p in "$METRICS_SERVER_PORT" "$METRICS_SERVER_ADMIN_PORT" "$PROVISIONER_ADMIN_PORT" "$LB_CONTROLLER_ADMIN_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT" "$MOTO_PORT" "$JOINER_PORT"; do
  port_in_use "$p" && left+=("$p")
done
if (( ${#left[@]} )); then
  echo "warning: still listening on port(s) ${left[*]}: not started by this environment, or started by another checkout" >&2
fi
if [[ "${1:-}" == "--purge" ]]; then
  rm -rf "$STATE"
  echo ">> removed $STATE" >&2
fi
