# Shared by the benchmarks that run an Outrigger component on the local
# environment (source after testenv/scripts/lib.sh).

# The release binary: $OUTRIGGER_RELEASE if set (no build), else built now.
release_binary() {
  if [[ -z "${OUTRIGGER_RELEASE:-}" ]]; then
    log "building outrigger (release)"
    (cd "$REPO" && cargo build -q --release -p outrigger)
    OUTRIGGER_RELEASE="$CARGO_TARGET_DIR/release/outrigger"
  fi
}

# SIGTERM, then SIGKILL after 10 s.
stop_pid() { # pid
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
}

# The environment's own instance of a component steps aside for the run.
step_aside() { # component (outrigger-<name>) lease
  if is_running "$1"; then
    stop_pid "$(cat "$PIDS/$1.pid")"
    rm -f "$PIDS/$1.pid"
  fi
  kubectl -n kube-system delete lease "$2" --ignore-not-found >/dev/null
}

# Waits until a command succeeds, while the process `pid` lives.
wait_until() { # what timeout-seconds pid command...
  local what="$1" deadline=$((SECONDS + $2)) pid="$3"; shift 3
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$what exited during start"
    (( SECONDS > deadline )) && die "$what not ready in time"
    sleep 0.5
  done
}

# The provisioner benchmarks: the environment's provisioner steps aside for
# the run (one provisioner at a time) and is started again at the end, with
# the benchmark's pool deleted and its own program stopped (BENCH_PID).
provisioner_bench() { # pool
  BENCH_POOL="$1"
  trap restore_provisioner EXIT
  step_aside outrigger-provisioner outrigger-provisioner
}

restore_provisioner() {
  [[ -n "${BENCH_PID:-}" ]] && stop_pid "$BENCH_PID"
  kubectl delete nodepool "$BENCH_POOL" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  bash "$TESTENV/scripts/components.sh" up >/dev/null 2>&1 || true
}

# Outrigger's release provisioner (kwok provider, the environment's flags)
# in the background, its JSON log in LOGFILE; returns once it is ready, with
# its pid in BENCH_PID.
start_release_provisioner() { # logfile
  AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION="$AWS_REGION_DEFAULT" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing OUTRIGGER_LOG_FORMAT=json \
    "$OUTRIGGER_RELEASE" provisioner --kubeconfig "$STATE/provisioner.kubeconfig" \
    --leader-elect-namespace kube-system --cluster-name "$CLUSTER_NAME" \
    --providers kwok --kwok-kubelet-port "$KWOK_PORT" \
    --admin-address "127.0.0.1:$PROVISIONER_ADMIN_PORT" >"$1" 2>&1 &
  BENCH_PID=$!
  wait_until "outrigger provisioner (release)" 60 "$BENCH_PID" curl -sf "http://127.0.0.1:$PROVISIONER_ADMIN_PORT/readyz"
}
