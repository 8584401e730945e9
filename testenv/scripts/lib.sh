# Shared settings and helpers of the local environment (sourced).
TESTENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$TESTENV/.." && pwd)"
source "$TESTENV/scripts/versions.sh"
CACHE="${OUTRIGGER_CACHE:-$HOME/.cache/outrigger}"
BIN="$CACHE/bin"
STATE="${OUTRIGGER_STATE:-$REPO/.testenv}"
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
CLUSTER_NAME="${CLUSTER_NAME:-demo}"
AWS_REGION_DEFAULT="${AWS_REGION:-ap-southeast-1}"

ETCD_PORT="${ETCD_PORT:-2379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-2380}"
APISERVER_PORT="${APISERVER_PORT:-6443}"
KCM_PORT="${KCM_PORT:-10257}"
SCHEDULER_PORT="${SCHEDULER_PORT:-10259}"
KWOK_PORT="${KWOK_PORT:-10247}"
KWOK_METRICS_PORT="${KWOK_METRICS_PORT:-10248}"
MOTO_PORT="${MOTO_PORT:-5000}"
JOINER_PORT="${JOINER_PORT:-10249}"

die() { echo "error: $*" >&2; exit 1; }
log() { echo ">> $*" >&2; }

pidfile() { echo "$PIDS/$1.pid"; }

is_running() { # name
  local f pid; f=$(pidfile "$1")
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  # A killed process not reaped yet is a zombie: not running.
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

port_in_use() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

require_free_port() { # name port
  if port_in_use "$2"; then
    local who; who=$(ss -ltnp "sport = :$2" 2>/dev/null | awk 'NR>1{print $NF}' | head -1)
    die "port $2 (for $1) is already in use${who:+ by $who}. Stop that process, or run 'make down' if it is a previous environment, or pick another port with ${3:-the matching *_PORT variable}."
  fi
}

# start NAME LOGFILE CMD...: runs CMD in the background with its own session,
# records its pid.
start_bg() {
  local name="$1"; shift
  local logf="$LOGS/$name.log"
  : >"$logf"
  setsid "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# wait_for NAME TIMEOUT_S CMD...: polls CMD until it succeeds; on timeout or if
# the process died, prints the tail of its log and exits.
wait_for() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      echo "error: $name exited during start. Last lines of $LOGS/$name.log:" >&2
      tail -n 25 "$LOGS/$name.log" >&2
      exit 1
    fi
    if (( SECONDS > deadline )); then
      echo "error: $name did not become ready within ${timeout}s. Last lines of $LOGS/$name.log:" >&2
      tail -n 25 "$LOGS/$name.log" >&2
      exit 1
    fi
    sleep 0.3
  done
}

KUBECTL="$BIN/kubectl-v$K8S_VERSION"
kc() { "$KUBECTL" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }
METRICS_SERVER_PORT="${METRICS_SERVER_PORT:-10350}"
METRICS_SERVER_ADMIN_PORT="${METRICS_SERVER_ADMIN_PORT:-10351}"
PROVISIONER_ADMIN_PORT="${PROVISIONER_ADMIN_PORT:-10352}"
LB_CONTROLLER_ADMIN_PORT="${LB_CONTROLLER_ADMIN_PORT:-10353}"
CLUSTER_AUTOSCALER_ADMIN_PORT="${CLUSTER_AUTOSCALER_ADMIN_PORT:-10354}"
# The node agents' admin servers: this port and the next two (a node each).
NODE_AGENT_ADMIN_PORT="${NODE_AGENT_ADMIN_PORT:-10360}"
# Which node autoscaler `make up` runs: provisioner (Karpenter-compatible, the
# default) or cluster-autoscaler (the walkthrough says: pick one).
AUTOSCALER="${AUTOSCALER:-provisioner}"
