#!/usr/bin/env bash
# Benchmark: `outrigger node-agent` (release build) against Fluent Bit built
# from its public source, both with the Container Insights quickstart's
# application-log pipeline (tail with `multiline.parser docker, cri`, the
# kubernetes filter, cloudwatch_logs), in one run on the running local
# environment (issue #13). Prints a Markdown section and writes it into
# bench/RESULTS.md (between the node-agent markers).
#
#   bash bench/node-agent.sh
#   FLUENT_BIT=/path/to/fluent-bit MIB_PER_POD=128 RATES="3 10" bash bench/node-agent.sh
#
# Fluent Bit: $FLUENT_BIT, default ~/.cache/outrigger/bin/fluent-bit-5.1.1.
# Bench only; no registry has it, so CI never builds it. How the cached one
# was built: a snapshot of github.com/fluent/fluent-bit (the search tool's
# `fetch`), tag v5.1.1 extracted into ~/.cache/outrigger/src/fluent-bit (the
# snapshot lacks lib/sqlite-amalgamation-3510100/sqlite3.c, so the system
# libsqlite3 is used), Debian's cmake flex bison libyaml-dev libssl-dev
# pkg-config libsqlite3-dev, then in build/:
#   cmake -DFLB_RELEASE=On -DFLB_JEMALLOC=On -DFLB_SIMD=On -DFLB_LOG_NO_CONTROL_CHARS=On -DFLB_MINIMAL=On -DFLB_EXAMPLES=Off -DFLB_TESTS_INTERNAL=Off \
#     -DFLB_TESTS_RUNTIME=Off -DFLB_SHARED_LIB=Off -DFLB_LUAJIT=Off -DFLB_WASM=Off -DFLB_KAFKA=Off \
#     -DFLB_PROXY_GO=Off -DFLB_PREFER_SYSTEM_LIB_SQLITE=On -DFLB_HTTP_SERVER=On -DFLB_IN_TAIL=On \
#     -DFLB_IN_STORAGE_BACKLOG=On -DFLB_IN_EMITTER=On -DFLB_FILTER_KUBERNETES=On \
#     -DFLB_OUT_CLOUDWATCH_LOGS=On -DFLB_OUT_NULL=On -DFLB_OUT_FILE=On -DFLB_OUT_STDOUT=On ..
#   make -j1 && cp bin/fluent-bit ~/.cache/outrigger/bin/fluent-bit-5.1.1
# (the release flags of upstream's dockerfiles/Dockerfile: jemalloc, SIMD; only the
# plugins used here compiled in).
#
# Two legs, on pods of namespace bench-logs bound to the third node-group
# node (kwok runs them, so both agents' kubernetes enrichment finds them):
#
# 1. Parse + enrich throughput: PODS pods x MIB_PER_POD MiB of CRI lines
#    (about 200 bytes, `seq=<n>`) pre-generated in a fresh log root laid out
#    like a node's /var/log, twice (plain lines; a mix with JSON lines and
#    lines in P/F pieces). Each agent alone, from its start, read from head,
#    to a sink that costs little: ours `--sink file:` and Fluent Bit's `file`
#    output (Format plain), both on /dev/shm. Wall time until the last record
#    is out (the agents' own counters), CPU seconds (utime+stime) and VmHWM
#    at that moment: MiB/s per core = bytes / CPU seconds.
# 2. Into CloudWatch Logs (moto) at each of RATES MB/s for SECONDS_PER_RATE s:
#    4 pods of 1,000-byte lines written by the environment's log writer
#    (kubelet rotation: 10 MiB, 5 files, rename) on that node; both agents
#    side by side on the node's log root from their end (quickstart's
#    read.head Off; new files from their head), each to its own cluster's
#    group. After the writers finish, up to DRAIN s for each to deliver
#    everything; then testenv/aws/count_seq.py counts each container's
#    sequence numbers: lost = written - distinct, duplicates = events - distinct.
#
# Fluent Bit's configuration is the quickstart's (fluent-bit.yaml of
# amazon-cloudwatch-container-insights: Flush 5, filesystem storage,
# Mem_Buf_Limit 50MB, Refresh_Interval 10, Rotate_Wait 30, Labels Off) with
# paths moved under the benchmark's directory and the kubernetes filter on
# the API server (Use_Kubelet Off: kwok serves no kubelet /pods).
# Fluent Bit's cloudwatch_logs output ignores `tls Off` (its EC2 credential
# provider sets the instance's use_tls back to true, src/aws/flb_aws_credentials_ec2.c),
# so it reaches moto through a TLS terminator (socat, a self-signed
# certificate given as tls.ca_file); ours speaks HTTP to moto directly.
# Knobs: LEGS="throughput rates" (either alone: the report is printed, not
# written into bench/RESULTS.md); OURS_FROM_CHECKPOINT=1 starts our agent
# once before each rate and again from the checkpoint it left (a node
# agent's later starts, not its first; printed, not written); PROFILE=1 keeps
# a `perf record` profile of our agent over the plain throughput run
# (perf-ours.txt in the work directory); KEEP_DATA=1 keeps the generated logs.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
FB_VERSION=5.1.1
FLUENT_BIT="${FLUENT_BIT:-$BIN/fluent-bit-$FB_VERSION}"
# The OpenTelemetry Collector for the file-to-sink leg: $OTELCOL, default
# ~/.cache/outrigger/bin/otelcol-bench-0.165, built here from the Go module
# proxy (bench/go/otelcol: the filelog receiver and the file exporter, as the
# Collector Builder assembles them) when missing; the leg is left out if it
# does not build.
OTELCOL="${OTELCOL:-$BIN/otelcol-bench-0.165}"
OTELCOL_BUILD="${OTELCOL_BUILD:-the filelog receiver and file exporter of opentelemetry-collector-contrib v0.165.1 on collector v0.165.0 (bench/go/otelcol), CGO_ENABLED=0 go build -trimpath}"
OTEL_PORT="${OTEL_PORT:-10388}"
FB_BUILD="${FB_BUILD:-tag v$FB_VERSION of github.com/fluent/fluent-bit built with the release flags of its Dockerfile (FLB_RELEASE, FLB_JEMALLOC, FLB_SIMD) and only the plugins used (FLB_MINIMAL plus tail, kubernetes, cloudwatch_logs, file), the system libsqlite3 3.40}"
PODS="${PODS:-8}"
MIB_PER_POD="${MIB_PER_POD:-128}"
RATES="${RATES:-3 10}"
SECONDS_PER_RATE="${SECONDS_PER_RATE:-60}"
DRAIN="${DRAIN:-60}"
LEGS="${LEGS:-throughput rates}"
RATE_PODS=4
LINE_BYTES=1000
NS=bench-logs
OURS_PORT="${OURS_PORT:-10385}"
FB_PORT="${FB_PORT:-10386}"
MOTO_TLS_PORT="${MOTO_TLS_PORT:-10387}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
WORK="$STATE/bench/node-agent"
SHM=/dev/shm/outrigger-bench-node-agent

[[ -x "$FLUENT_BIT" ]] || die "no Fluent Bit at $FLUENT_BIT: build v$FB_VERSION from a snapshot of github.com/fluent/fluent-bit as this script's header says, or set FLUENT_BIT"
if ! command -v socat >/dev/null; then
  [[ $(id -u) -eq 0 ]] || die "socat is missing (run: sudo apt-get install socat)"
  log "apt-get install socat"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat >/dev/null
fi
bash "$TESTENV/scripts/status.sh" >/dev/null || die "the local environment is not running: make up"
is_running kubelet-logs || die "the environment's container log writer is not running: make up"
source "$STATE/env"
export KUBECONFIG="$STATE/admin.kubeconfig"
source "$REPO/bench/lib.sh"
release_binary
rm -rf "$WORK" "$SHM" && mkdir -p "$WORK" "$SHM"

NODE=$(kubectl get nodes -l eks.amazonaws.com/nodegroup=ng-1 --sort-by=.metadata.name \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sed -n 3p)
[[ -n "$NODE" ]] || die "no third node in node group ng-1"
NODE_LOGS="$STATE/nodes/$NODE/var/log"
STATUS_DIR="$STATE/nodes/_status"

PIDS_STARTED=()
cleanup() {
  for p in "${PIDS_STARTED[@]}"; do stop_pid "$p"; done
  wait 2>/dev/null || true
  kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl delete clusterrole,clusterrolebinding outrigger-bench-fluent-bit --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$SHM"
  # The kubelet removes a deleted pod's logs: the writer's files of the rate pods.
  rm -rf "$NODE_LOGS"/pods/"${NS}"_r*_* "$STATUS_DIR"/"${NS}"_r*_app.json
  find "$NODE_LOGS/containers" -maxdepth 1 -name "r*_${NS}_app-*.log" -delete 2>/dev/null || true
  [[ -n "${KEEP_DATA:-}" ]] || rm -rf "$WORK"/logs-*
}
trap cleanup EXIT

# Starts a process in the background, remembered for cleanup; sets LAST_PID.
start() { # logfile cmd...
  local logf="$1"; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS_STARTED+=("$LAST_PID")
}
stop() { # pid
  stop_pid "$1"; wait "$1" 2>/dev/null || true
  local kept=() p
  for p in "${PIDS_STARTED[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  PIDS_STARTED=("${kept[@]}")
}

# Fluent Bit's tail tag for files under a directory: `application.` and the
# path with `/` as `.`, repeated dots as one (in_tail's tag_compose).
fb_tag_prefix() { # dir
  echo "application.$1/" | sed -e 's#/#.#g' -e 's#\.\.*#.#g'
}

kubectl delete namespace "$NS" --ignore-not-found --timeout=120s >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: fluent-bit, namespace: $NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: outrigger-bench-fluent-bit}
rules:
- apiGroups: [""]
  resources: [pods, namespaces]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: outrigger-bench-fluent-bit}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: outrigger-bench-fluent-bit}
subjects: [{kind: ServiceAccount, name: fluent-bit, namespace: $NS}]
YAML
kubectl create token fluent-bit -n "$NS" --duration 2h >"$WORK/fluent-bit.token"

pod() { # name leg [annotations...]
  local name="$1" leg="$2"; shift 2
  cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $NS
  labels: {app: bench-logs, leg: $leg}
  annotations: {$(IFS=,; echo "$*")}
spec:
  nodeName: $NODE
  tolerations: [{operator: Exists}]
  containers:
  - {name: app, image: "public.ecr.aws/docker/library/busybox:1.36"}
YAML
}

# Fluent Bit's configuration: the quickstart's [SERVICE], application
# input and kubernetes filter, then OUTPUT.
fb_config() { # dir log-root read-from-head output-block
  local dir="$1" root="$2" head="$3" output="$4" c="$2/containers"
  mkdir -p "$dir/storage"
  cat >"$dir/fluent-bit.conf" <<CONF
[SERVICE]
    Flush                     5
    Grace                     30
    Log_Level                 info
    Daemon                    off
    HTTP_Server               On
    HTTP_Listen               127.0.0.1
    HTTP_Port                 $FB_PORT
    storage.path              $dir/storage/
    storage.sync              normal
    storage.checksum          off
    storage.backlog.mem_limit 5M

[INPUT]
    Name                tail
    Tag                 application.*
    Exclude_Path        $c/cloudwatch-agent*, $c/fluent-bit*, $c/aws-node*, $c/kube-proxy*
    Path                $c/*.log
    multiline.parser    docker, cri
    DB                  $dir/flb_container.db
    Mem_Buf_Limit       50MB
    Skip_Long_Lines     On
    Refresh_Interval    10
    Rotate_Wait         30
    storage.type        filesystem
    Read_from_Head      $head

[FILTER]
    Name                kubernetes
    Match               application.*
    Kube_URL            https://127.0.0.1:$APISERVER_PORT
    Kube_CA_File        $PKI/ca.crt
    Kube_Token_File     $WORK/fluent-bit.token
    Kube_Tag_Prefix     $(fb_tag_prefix "$c")
    Merge_Log           On
    Merge_Log_Key       log_processed
    K8S-Logging.Parser  On
    K8S-Logging.Exclude Off
    Labels              Off
    Annotations         Off
    Use_Kubelet         Off
    Buffer_Size         0

$output
CONF
  echo "$dir/fluent-bit.conf"
}

ours() { # log cluster log-root state sink read-from-head(On|Off)
  local head=(); [[ $6 == On ]] && head=(--read-from-head On)
  start "$1" env OUTRIGGER_LOG_FORMAT=json "$OUTRIGGER_RELEASE" node-agent \
    --kubeconfig "$KUBECONFIG" --admin-address "127.0.0.1:$OURS_PORT" \
    --cluster-name "$2" --host-name "$NODE" --log-root "$3" --state-dir "$4" \
    --sink "$5" --metrics-collection-interval 0s --buffer-dir "$4/buffer" "${head[@]}"
}

# --- 1. parse + enrich throughput -----------------------------------------
throughput_leg() {
log "throughput: $PODS pods x $MIB_PER_POD MiB on $NODE"
for i in $(seq 0 $((PODS - 1))); do pod "tp-$i" throughput; done | kubectl apply -f - >/dev/null
kubectl wait -n "$NS" --for=condition=Ready pod -l leg=throughput --timeout=120s >/dev/null
specs=()
for i in $(seq 0 $((PODS - 1))); do
  specs+=(--pod "tp-$i=$(kubectl get pod -n "$NS" "tp-$i" -o jsonpath='{.metadata.uid}')")
done
for mix in plain mixed; do
  python3 "$REPO/bench/node_agent.py" gen --root "$WORK/logs-$mix" --ns "$NS" "${specs[@]}" \
    --mib "$MIB_PER_POD" --mix "$mix" --out "$WORK/data-$mix.json" >/dev/null
done
# The 2 GiB just written go to disk before any agent reads them: the first
# agent to run would otherwise read while the kernel writes them back
# (twice its CPU seconds in a run here), the next ones after.
sync

for mix in plain mixed; do
  records=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$WORK/data-$mix.json")
  root="$WORK/logs-$mix"

  log "throughput ($mix): outrigger node-agent"
  start_s=$(date +%s.%N)
  ours "$WORK/tp-$mix-ours.log" bench "$root" "$WORK/state-ours-$mix" "file:$SHM/ours" On
  pid=$LAST_PID
  perf_pid=""
  if [[ -n "${PROFILE:-}" && $mix == plain ]]; then
    perf record -F 999 -o "$WORK/perf-ours.data" -p "$pid" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  python3 "$REPO/bench/node_agent.py" drain --name ours --pid "$pid" --kind ours \
    --url "http://127.0.0.1:$OURS_PORT/metrics" --group /aws/containerinsights/bench/application \
    --expect "$records" --start "$start_s" --out "$WORK/tp-$mix-ours.json" >/dev/null
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf report --stdio --no-children --sort dso,symbol -i "$WORK/perf-ours.data" 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -60 >"$WORK/perf-ours.txt"
  fi
  stop "$pid"
  [[ $mix == mixed ]] && python3 "$REPO/bench/node_agent.py" splits \
    --file "$SHM/ours/aws_containerinsights_bench_application.log" --out "$WORK/tp-$mix-ours-splits.json" >/dev/null
  rm -rf "$SHM/ours"

  log "throughput ($mix): Fluent Bit $FB_VERSION"
  conf=$(fb_config "$WORK/fb-$mix" "$root" On "[OUTPUT]
    Name                file
    Match               application.*
    Path                $SHM/fluent-bit
    File                out
    Format              plain")
  mkdir -p "$SHM/fluent-bit"
  start_s=$(date +%s.%N)
  start "$WORK/tp-$mix-fluentbit.log" "$FLUENT_BIT" -c "$conf"
  pid=$LAST_PID
  python3 "$REPO/bench/node_agent.py" drain --name fluentbit --pid "$pid" --kind fluentbit \
    --url "http://127.0.0.1:$FB_PORT/api/v1/metrics" \
    --expect "$records" --start "$start_s" --out "$WORK/tp-$mix-fluentbit.json" >/dev/null
  stop "$pid"
  [[ $mix == mixed ]] && python3 "$REPO/bench/node_agent.py" splits \
    --file "$SHM/fluent-bit/out" --out "$WORK/tp-$mix-fluentbit-splits.json" >/dev/null
  rm -rf "$SHM/fluent-bit"

  [[ -x "$OTELCOL" ]] || (cd "$REPO/bench/go/otelcol" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OTELCOL" .) ||
    log "the OpenTelemetry Collector did not build: its leg is left out"
  if [[ -x "$OTELCOL" ]]; then
    log "throughput ($mix): OpenTelemetry Collector (filelog + container operator -> file)"
    mkdir -p "$SHM/otelcol"
    cat >"$WORK/otelcol-$mix.yaml" <<YAML
receivers:
  filelog:
    include: [$root/pods/*/*/*.log]
    start_at: beginning
    include_file_path: true
    operators:
      - type: container
exporters:
  file:
    path: $SHM/otelcol/out.json
service:
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [file]
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $OTEL_PORT
YAML
    start_s=$(date +%s.%N)
    start "$WORK/tp-$mix-otelcol.log" "$OTELCOL" --config "$WORK/otelcol-$mix.yaml"
    pid=$LAST_PID
    python3 "$REPO/bench/node_agent.py" drain --name otelcol --pid "$pid" --kind otelcol \
      --url "http://127.0.0.1:$OTEL_PORT/metrics" \
      --expect "$records" --start "$start_s" --out "$WORK/tp-$mix-otelcol.json" >/dev/null
    stop "$pid"
    rm -rf "$SHM/otelcol"
  fi
done
kubectl delete pods -n "$NS" -l leg=throughput --wait=false >/dev/null
}

# --- 2. into CloudWatch Logs (moto) at each rate --------------------------
rates_leg() {
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=moto-tls -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$WORK/moto-tls.key" -out "$WORK/moto-tls.crt" 2>/dev/null
start "$WORK/socat.log" socat "OPENSSL-LISTEN:$MOTO_TLS_PORT,bind=127.0.0.1,reuseaddr,fork,cert=$WORK/moto-tls.crt,key=$WORK/moto-tls.key,verify=0" \
  "TCP:127.0.0.1:$MOTO_PORT"
FB_NODE_PREFIX="$NODE-$(fb_tag_prefix "$NODE_LOGS/containers")"
for rate in $RATES; do
  per_pod=$((rate * 1000000 / LINE_BYTES / RATE_PODS))
  total=$((per_pod * SECONDS_PER_RATE))
  names=()
  for i in $(seq 0 $((RATE_PODS - 1))); do names+=("r$rate-$i"); done
  for n in "${names[@]}"; do rm -f "$STATUS_DIR/${NS}_${n}_app.json"; done

  log "$rate MB/s: both agents on $NODE's logs, $RATE_PODS pods x $per_pod lines/s of $LINE_BYTES bytes for $SECONDS_PER_RATE s"
  if [[ -n "${OURS_FROM_CHECKPOINT:-}" ]]; then
    ours "$WORK/rate-$rate-ours-first.log" bench-ours "$NODE_LOGS" "$WORK/state-rate-$rate" cloudwatch Off
    ours_pid=$LAST_PID
    for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$OURS_PORT/readyz" >/dev/null && break; sleep 0.5; done
    sleep 3
    stop "$ours_pid"
  fi
  ours "$WORK/rate-$rate-ours.log" bench-ours "$NODE_LOGS" "$WORK/state-rate-$rate" cloudwatch Off
  ours_pid=$LAST_PID
  conf=$(fb_config "$WORK/fb-rate-$rate" "$NODE_LOGS" Off "[OUTPUT]
    Name                cloudwatch_logs
    Match               application.*
    region              $AWS_REGION
    log_group_name      /aws/containerinsights/bench-fluentbit/application
    log_stream_prefix   $NODE-
    auto_create_group   true
    extra_user_agent    container-insights
    endpoint            127.0.0.1
    port                $MOTO_TLS_PORT
    tls.ca_file         $WORK/moto-tls.crt")
  start "$WORK/rate-$rate-fluentbit.log" "$FLUENT_BIT" -c "$conf"
  fb_pid=$LAST_PID
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$OURS_PORT/readyz" >/dev/null && curl -sf "http://127.0.0.1:$FB_PORT/" >/dev/null && break
    kill -0 "$ours_pid" && kill -0 "$fb_pid" || die "an agent exited during start (logs in $WORK)"
    sleep 0.5
  done
  sleep 2

  ann=("\"testenv.outrigger.dev/log-lines-per-second\": \"$per_pod\""
    "\"testenv.outrigger.dev/log-line-bytes\": \"$LINE_BYTES\""
    "\"testenv.outrigger.dev/log-lines-total\": \"$total\""
    "\"testenv.outrigger.dev/log-max-size\": \"$((10 << 20))\""
    "\"testenv.outrigger.dev/log-max-files\": \"5\""
    "\"testenv.outrigger.dev/log-rotation\": \"rename\"")
  for n in "${names[@]}"; do pod "$n" "rate-$rate" "${ann[@]}"; done | kubectl apply -f - >/dev/null
  pods=(); for n in "${names[@]}"; do pods+=(--pod "$n"); done
  python3 "$REPO/bench/node_agent.py" load --ns "$NS" "${pods[@]}" --status-dir "$STATUS_DIR" \
    --expect $((total * RATE_PODS)) --drain "$DRAIN" \
    --agent "ours,$ours_pid,ours,http://127.0.0.1:$OURS_PORT/metrics,/aws/containerinsights/bench-ours/application" \
    --agent "fluentbit,$fb_pid,fluentbit,http://127.0.0.1:$FB_PORT/api/v1/metrics," \
    --out "$WORK/rate-$rate.json" >/dev/null
  stop "$ours_pid"
  stop "$fb_pid"

  log "$rate MB/s: counting sequence numbers in CloudWatch Logs"
  # Each container's stream, by its file's name (the container ID comes from
  # the pod's UID, so an earlier run's streams of the same pod names are not counted).
  op=(); fp=()
  for n in "${names[@]}"; do
    uid=$(kubectl get pod -n "$NS" "$n" -o jsonpath='{.metadata.uid}')
    file="${n}_${NS}_app-$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from node_agent import container_id; print(container_id(sys.argv[2], "app"))' "$REPO/bench" "$uid").log"
    op+=(--prefix "$NODE-application.var.log.containers.$file")
    fp+=(--prefix "$FB_NODE_PREFIX$file")
  done
  {
    echo '{"ours":'
    testenv-python "$TESTENV/aws/count_seq.py" --group /aws/containerinsights/bench-ours/application "${op[@]}"
    echo ',"fluentbit":'
    testenv-python "$TESTENV/aws/count_seq.py" --group /aws/containerinsights/bench-fluentbit/application "${fp[@]}"
    echo '}'
  } >"$WORK/rate-$rate-count.json"
  kubectl delete pods -n "$NS" -l "leg=rate-$rate" --wait=false >/dev/null
  # The kubelet removes a deleted pod's logs.
  rm -rf "$NODE_LOGS"/pods/"${NS}"_r"$rate"-*_*
  find "$NODE_LOGS/containers" -maxdepth 1 -name "r$rate-*_${NS}_app-*.log" -delete
done
}

for leg in $LEGS; do "${leg}_leg"; done

python3 - "$WORK/meta.json" <<PY
import json, os, subprocess, sys, time
mem = int(open("/proc/meminfo").read().split()[1]) / 2**20
json.dump({
    "date": time.strftime("%Y-%m-%d"),
    "rates": "$RATES".split(),
    "seconds": $SECONDS_PER_RATE,
    "fluentbit_version": subprocess.run(["$FLUENT_BIT", "--version"], capture_output=True, text=True).stdout.split("\n")[0].replace("Fluent Bit ", ""),
    "outrigger_commit": os.environ.get("OUTRIGGER_COMMIT") or subprocess.run(["git", "-C", "$REPO", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "machine": f"{os.cpu_count()} cores, {mem:.0f} GiB",
    "command": "make bench-node-agent",
    "legs": "$LEGS".split(),
    "variant": "ours started from its checkpoint" if "${OURS_FROM_CHECKPOINT:-}" else "",
    "fluentbit_build": """$FB_BUILD""",
    "otelcol_build": """$OTELCOL_BUILD""",
    "pods": $PODS, "mib_per_pod": $MIB_PER_POD, "rate_pods": $RATE_PODS, "line_bytes": $LINE_BYTES, "drain": $DRAIN,
}, open(sys.argv[1], "w"))
PY
if [[ "$LEGS" == "throughput rates" && -z "${OURS_FROM_CHECKPOINT:-}" ]]; then
  python3 "$REPO/bench/node_agent.py" report --work "$WORK" --results "$REPO/bench/RESULTS.md" |
    tee "$REPO/bench/last-node-agent.md"
  log "wrote bench/RESULTS.md (raw figures and both agents' logs in $WORK)"
else
  python3 "$REPO/bench/node_agent.py" report --work "$WORK"
  log "printed only (a partial or variant run; raw figures and both agents' logs in $WORK)"
fi
