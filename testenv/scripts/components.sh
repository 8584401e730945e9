#!/usr/bin/env bash
# Starts (up) or stops (down) the Outrigger components that exist, configured
# for the local environment: each runs as a process from the workspace's debug
# build, under its own service account (the RBAC of deploy/), with its admin
# server on its own port and its log in .testenv/logs/outrigger-<name>.log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
OUTRIGGER="${CARGO_TARGET_DIR:-$CACHE/target}/debug/outrigger"
KUBELET_LOGS="${CARGO_TARGET_DIR:-$CACHE/target}/debug/outrigger-e2e-kubelet-logs"

# A kubeconfig with the token of service account <namespace>/<sa> (namespace
# kube-system unless given), from the legacy token Secret <sa>-token.
sa_kubeconfig() { # sa out [namespace]
  local token="" ns="${3:-kube-system}"
  for _ in $(seq 1 100); do
    token=$(kc -n "$ns" get secret "$1-token" -o jsonpath='{.data.token}' 2>/dev/null | base64 -d || true)
    [[ -n "$token" ]] && break
    sleep 0.2
  done
  [[ -n "$token" ]] || die "the token controller did not fill secret $ns/$1-token"
  cat >"$2" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: $1
  user: {token: "$token"}
contexts:
- name: $CLUSTER_NAME
  context: {cluster: $CLUSTER_NAME, user: $1}
current-context: $CLUSTER_NAME
KC
  chmod 600 "$2"
}

start_component() { # name admin-port args...
  local name="$1" port="$2"; shift 2
  is_running "outrigger-$name" && return 0
  require_free_port "outrigger-$name" "$port"
  log "starting outrigger $name (admin http://127.0.0.1:$port)"
  AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION="$AWS_REGION_DEFAULT" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing OUTRIGGER_LOG_FORMAT=json \
    start_bg "outrigger-$name" "$OUTRIGGER" "$@" --admin-address "127.0.0.1:$port"
  wait_for "outrigger-$name" 60 curl -sf "http://127.0.0.1:$port/healthz"
}

metrics_server_up() {
  kc apply -f "$REPO/deploy/metrics-server/rbac.yaml" >/dev/null
  sed "s/\${METRICS_SERVER_PORT}/$METRICS_SERVER_PORT/" "$TESTENV/manifests/metrics-server.yaml" | kc apply -f - >/dev/null
  if ! is_running outrigger-metrics-server; then
    sa_kubeconfig metrics-server "$STATE/metrics-server.kubeconfig"
    require_free_port "outrigger-metrics-server (secure port)" "$METRICS_SERVER_PORT" METRICS_SERVER_PORT
  fi
  start_component metrics-server "$METRICS_SERVER_ADMIN_PORT" metrics-server \
    --kubeconfig "$STATE/metrics-server.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$METRICS_SERVER_PORT" \
    --metric-resolution 15s \
    --kubelet-use-node-status-port --kubelet-preferred-address-types InternalIP,ExternalIP,Hostname \
    --kubelet-certificate-authority "$PKI/ca.crt"
  local deadline=$((SECONDS + 60))
  until [[ $(kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) == True ]]; do
    if (( SECONDS > deadline )); then
      kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions}' >&2 || true
      tail -n 20 "$LOGS/outrigger-metrics-server.log" >&2
      die "APIService v1beta1.metrics.k8s.io did not become Available within 60s"
    fi
    sleep 0.5
  done
}

provisioner_up() {
  kc apply -f "$REPO/deploy/crds/" >/dev/null
  for crd in nodepools.karpenter.sh nodeclaims.karpenter.sh provisioners.karpenter.sh \
    ec2nodeclasses.karpenter.k8s.aws kwoknodeclasses.karpenter.kwok.sh; do
    kc wait --for=condition=Established --timeout=30s "crd/$crd" >/dev/null
  done
  kc apply -f "$REPO/deploy/provisioner/rbac.yaml" >/dev/null
  kc apply -f "$TESTENV/manifests/provisioner.yaml" >/dev/null
  if ! is_running outrigger-provisioner; then
    sa_kubeconfig outrigger-provisioner "$STATE/provisioner.kubeconfig"
  fi
  start_component provisioner "$PROVISIONER_ADMIN_PORT" provisioner \
    --kubeconfig "$STATE/provisioner.kubeconfig" \
    --leader-elect-namespace kube-system \
    --cluster-name "$CLUSTER_NAME" --providers kwok,aws --kwok-kubelet-port "$KWOK_PORT" \
    --interruption-queue "$CLUSTER_NAME"
}

load_balancer_controller_up() {
  kc apply -f "$REPO/deploy/crds/" >/dev/null
  for crd in ingressclassparams.elbv2.k8s.aws targetgroupbindings.elbv2.k8s.aws; do
    kc wait --for=condition=Established --timeout=30s "crd/$crd" >/dev/null
  done
  kc apply -f "$REPO/deploy/load-balancer-controller/" >/dev/null
  kc apply -f "$TESTENV/manifests/load-balancer-controller.yaml" >/dev/null
  if ! is_running outrigger-load-balancer-controller; then
    sa_kubeconfig outrigger-load-balancer-controller "$STATE/load-balancer-controller.kubeconfig"
  fi
  start_component load-balancer-controller "$LB_CONTROLLER_ADMIN_PORT" load-balancer-controller \
    --kubeconfig "$STATE/load-balancer-controller.kubeconfig" \
    --leader-elect-namespace kube-system \
    --cluster-name "$CLUSTER_NAME"
}

# Its RBAC and a kubeconfig of its service account, whether it runs or not
# (the cluster tests start their own).
cluster_autoscaler_prepare() {
  kc apply -f "$REPO/deploy/cluster-autoscaler/rbac.yaml" >/dev/null
  kc apply -f "$TESTENV/manifests/cluster-autoscaler.yaml" >/dev/null
  [[ -s "$STATE/cluster-autoscaler.kubeconfig" ]] || sa_kubeconfig cluster-autoscaler "$STATE/cluster-autoscaler.kubeconfig"
}

# The walkthrough's Cluster Autoscaler: upstream's autodiscover flags, with
# short scale-down times so scale-in takes seconds here.
cluster_autoscaler_up() {
  start_component cluster-autoscaler "$CLUSTER_AUTOSCALER_ADMIN_PORT" cluster-autoscaler \
    --kubeconfig "$STATE/cluster-autoscaler.kubeconfig" \
    --leader-elect-namespace kube-system \
    --v=4 --stderrthreshold=info --cloud-provider=aws \
    --skip-nodes-with-local-storage=false --expander=least-waste \
    "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/$CLUSTER_NAME" \
    --scan-interval=2s --scale-down-unneeded-time=10s --scale-down-delay-after-add=10s \
    --scale-down-delay-after-delete=2s --max-node-provision-time=2m
}

# The kubelet's part for container logs (kwok runs no containers): a process
# writing the log files of pods annotated testenv.outrigger.dev/log-lines-per-second
# under $STATE/nodes/<node>/var/log (crates/e2e/src/bin/outrigger-e2e-kubelet-logs.rs).
# Then Container Insights' agent for each of the node group's three nodes, a
# process per node, each on its node's directory, under the DaemonSet's
# service account, to moto's CloudWatch Logs.
node_agent_up() {
  local nodes
  nodes=$(kc get nodes -l eks.amazonaws.com/nodegroup=ng-1 --sort-by=.metadata.name \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | head -n 3)
  mkdir -p "$STATE/nodes"
  if ! is_running kubelet-logs; then
    log "starting the container log writer (the kubelet's part) under $STATE/nodes"
    start_bg kubelet-logs "$KUBELET_LOGS" --kubeconfig "$STATE/admin.kubeconfig" \
      --root "$STATE/nodes" --nodes "$(echo $nodes | tr ' ' ',')"
  fi
  kc apply -f "$REPO/deploy/node-agent/rbac.yaml" -f "$REPO/deploy/node-agent/configmap.yaml" >/dev/null
  kc apply -f "$TESTENV/manifests/node-agent.yaml" >/dev/null
  [[ -s "$STATE/node-agent.kubeconfig" ]] || sa_kubeconfig outrigger-node-agent "$STATE/node-agent.kubeconfig" amazon-cloudwatch
  local i=0
  for node in $nodes; do
    node_agent_start "$i" "$node"
    i=$((i + 1))
  done
}

node_agent_start() { # index node
  local port=$((NODE_AGENT_ADMIN_PORT + $1)) name="outrigger-node-agent-$1"
  local served="$STATE/nodes/node-agent-$1.node"
  # The node group's nodes change (the autoscaler tests replace them): an
  # agent still serving a node that is no longer among the first three is
  # stopped and started for the one that is.
  if is_running "$name" && [[ "$(cat "$served" 2>/dev/null)" != "$2" ]]; then
    local pid; pid=$(cat "$(pidfile "$name")")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do is_running "$name" || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do is_running "$name" || break; sleep 0.2; done
    log "stopped $name (its node left the node group's first three)"
  fi
  echo "$2" >"$served"
  mkdir -p "$STATE/nodes/$2/var/log/containers" "$STATE/nodes/$2/var/log/journal" "$STATE/nodes/$2/node-agent"
  HOST_NAME="$2" CLUSTER_NAME="$CLUSTER_NAME" READ_FROM_HEAD=On \
    start_component "node-agent-$1" "$port" node-agent \
    --kubeconfig "$STATE/node-agent.kubeconfig" \
    --log-root "$STATE/nodes/$2/var/log" --state-dir "$STATE/nodes/$2/node-agent" \
    --metrics-collection-interval 5s --kubelet-certificate-authority "$PKI/ca.crt" \
    --lease-namespace amazon-cloudwatch
}

case "${1:-up}" in
  up)
    bash "$TESTENV/scripts/build-outrigger.sh"
    metrics_server_up
    cluster_autoscaler_prepare
    if [[ "$AUTOSCALER" == cluster-autoscaler ]]; then
      cluster_autoscaler_up
    else
      provisioner_up
    fi
    load_balancer_controller_up
    node_agent_up
    ;;
  node-agents)
    # (Re)starts the node agents that are not running (a cluster test kills
    # one with SIGKILL and brings it back this way).
    node_agent_up
    ;;
  down)
    for f in "$PIDS"/outrigger-*.pid "$PIDS"/kubelet-logs.pid; do
      [[ -e "$f" ]] || continue
      pid=$(cat "$f")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo ">> stopped $(basename "$f" .pid) (pid $pid)" >&2
      rm -f "$f"
    done
    ;;
esac
