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
