#!/usr/bin/env bash
# Starts the local environment on 127.0.0.1: etcd, kube-apiserver (with the
# aggregation layer), kube-controller-manager, kube-scheduler, kwok, moto (seeded
# like the walkthrough's account), the instance joiner, and every Outrigger
# component that exists. Idempotent: what already runs is left alone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
T0=$SECONDS
mkdir -p "$STATE" "$LOGS" "$PIDS" "$STATE/etcd"

bash "$TESTENV/scripts/build-bins.sh"
VENV=$(bash "$TESTENV/scripts/venv.sh")
bash "$TESTENV/scripts/pki.sh"
# Matching clients on PATH through the env file: kubectl of the pinned release,
# the AWS CLI from the venv.
mkdir -p "$STATE/bin"
ln -sfn "$KUBECTL" "$STATE/bin/kubectl"
ln -sfn "$VENV/bin/aws" "$STATE/bin/aws"
ln -sfn "$VENV/bin/python" "$STATE/bin/testenv-python"
# And Outrigger's own CLI (`outrigger why-pending`), as components.sh builds it.
ln -sfn "${CARGO_TARGET_DIR:-$CACHE/target}/debug/outrigger" "$STATE/bin/outrigger"

KUBE_APISERVER="$BIN/kube-apiserver-v$K8S_VERSION"
KCM="$BIN/kube-controller-manager-v$K8S_VERSION"
SCHED="$BIN/kube-scheduler-v$K8S_VERSION"
ETCD="$BIN/etcd-v$ETCD_VERSION"
KWOK="$BIN/kwok-v$KWOK_VERSION"
SERVER="https://127.0.0.1:$APISERVER_PORT"

kubeconfig() { # file user cert
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: $SERVER
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$3.crt
    client-key: $PKI/$3.key
contexts:
- name: $CLUSTER_NAME
  context: {cluster: $CLUSTER_NAME, user: $2}
current-context: $CLUSTER_NAME
KC
}
kubeconfig "$STATE/admin.kubeconfig" admin admin
kubeconfig "$STATE/kube-controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager
kubeconfig "$STATE/kube-scheduler.kubeconfig" system:kube-scheduler kube-scheduler

# --- etcd -------------------------------------------------------------------
if ! is_running etcd; then
  require_free_port etcd "$ETCD_PORT" ETCD_PORT
  require_free_port etcd-peer "$ETCD_PEER_PORT" ETCD_PEER_PORT
  log "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  start_bg etcd "$ETCD" --name outrigger --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "outrigger=http://127.0.0.1:$ETCD_PEER_PORT" \
    --quota-backend-bytes 4294967296 --unsafe-no-fsync --log-level warn
fi
wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ----------------------------------------------------------
if ! is_running kube-apiserver; then
  require_free_port kube-apiserver "$APISERVER_PORT" APISERVER_PORT
  log "starting kube-apiserver v$K8S_VERSION on $SERVER"
  start_bg kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/12 \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=false \
    --endpoint-reconciler-type=none \
    --profiling=false
fi
wait_for kube-apiserver 90 kc get --raw /readyz

# --- kube-controller-manager and kube-scheduler -------------------------------
if ! is_running kube-controller-manager; then
  require_free_port kube-controller-manager "$KCM_PORT" KCM_PORT
  log "starting kube-controller-manager"
  start_bg kube-controller-manager "$KCM" \
    --kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --cluster-name "$CLUSTER_NAME" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
    --use-service-account-credentials=true \
    --controllers '*,bootstrapsigner,tokencleaner' \
    --leader-elect=false --allocate-node-cidrs=false \
    --profiling=false
fi
if ! is_running kube-scheduler; then
  require_free_port kube-scheduler "$SCHEDULER_PORT" SCHEDULER_PORT
  log "starting kube-scheduler"
  start_bg kube-scheduler "$SCHED" \
    --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --leader-elect=false --profiling=false
fi
wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz"

# --- kwok --------------------------------------------------------------------
KWOK_SRC="$(cd "$TESTENV/go/kwok" && go mod download sigs.k8s.io/kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok 2>/dev/null || true)"
[[ -d "$KWOK_SRC/kustomize" ]] || die "kwok's stage and metric files were not found in the Go module cache; run 'bash testenv/scripts/build-bins.sh' again"
KWOK_CONFIG=()
for f in stage/node/fast/node-initialize.yaml stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml \
         metrics/usage/usage-from-annotation.yaml; do
  KWOK_CONFIG+=(--config "$KWOK_SRC/kustomize/$f")
done
KWOK_CONFIG+=(--config "$TESTENV/kwok/metrics-resource.yaml" --config "$TESTENV/kwok/metrics-cadvisor.yaml")
if ! is_running kwok; then
  require_free_port kwok "$KWOK_PORT" KWOK_PORT
  log "starting kwok v$KWOK_VERSION (kubelet endpoint https://127.0.0.1:$KWOK_PORT)"
  start_bg kwok "$KWOK" --kubeconfig "$STATE/admin.kubeconfig" \
    "${KWOK_CONFIG[@]}" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --node-port "$KWOK_PORT" --server-address "127.0.0.1:$KWOK_PORT" \
    --tls-cert-file "$PKI/kubelet-serving.crt" --tls-private-key-file "$PKI/kubelet-serving.key" \
    --cidr 10.244.0.0/16 --node-lease-duration-seconds 40
fi
wait_for kwok 30 curl -sk "https://127.0.0.1:$KWOK_PORT/healthz"

# --- moto and the seeded account ---------------------------------------------
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION="$AWS_REGION_DEFAULT" AWS_DEFAULT_REGION="$AWS_REGION_DEFAULT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
if ! is_running moto; then
  require_free_port moto "$MOTO_PORT" MOTO_PORT
  # moto_server with the test environment's extension (testenv/aws/README.md).
  log "starting moto_server (with testenv/aws/moto_ext.py) on $AWS_ENDPOINT_URL"
  start_bg moto "$VENV/bin/python" "$TESTENV/aws/moto_ext.py" -H 127.0.0.1 -p "$MOTO_PORT"
fi
# The dashboard page: cheap (data.json serializes every resource moto holds).
wait_for moto 30 curl -sf -o /dev/null "$AWS_ENDPOINT_URL/moto-api/"
"$VENV/bin/python" "$TESTENV/aws/seed.py" --cluster "$CLUSTER_NAME" >"$STATE/aws-seed.json"

# --- the instance joiner -------------------------------------------------------
if ! is_running joiner; then
  require_free_port joiner "$JOINER_PORT" JOINER_PORT
  log "starting the instance joiner (moto instances -> kwok nodes)"
  KUBELET_VERSION="v$K8S_VERSION" start_bg joiner "$VENV/bin/python" "$TESTENV/aws/joiner.py" \
    --cluster "$CLUSTER_NAME" --region "$AWS_REGION" --aws-endpoint "$AWS_ENDPOINT_URL" \
    --server "$SERVER" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    --kwok-port "$KWOK_PORT" --health-port "$JOINER_PORT"
fi
wait_for joiner 30 curl -sf "http://127.0.0.1:$JOINER_PORT/healthz"

# --- env file ------------------------------------------------------------------
cat >"$STATE/env" <<ENV
# source this file to use the local environment
export KUBECONFIG="$STATE/admin.kubeconfig"
export AWS_ENDPOINT_URL="$AWS_ENDPOINT_URL"
export AWS_REGION="$AWS_REGION"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export CLUSTER_NAME="$CLUSTER_NAME"
export PATH="$STATE/bin:\$PATH"
ENV

# --- wait for the first nodes ---------------------------------------------------
deadline=$((SECONDS + 60))
until [[ $(kc get nodes --no-headers 2>/dev/null | awk '$2=="Ready"' | wc -l) -ge 3 ]]; do
  (( SECONDS > deadline )) && { kc get nodes >&2 || true; tail -n 20 "$LOGS/joiner.log" >&2; die "the 3 node-group nodes did not become Ready within 60s"; }
  sleep 0.5
done

# --- EKS's daemonsets (aws-node, kube-proxy, ebs-csi-node) -------------------------
kc apply -f "$TESTENV/manifests/eks-daemonsets.yaml" >/dev/null

# --- Outrigger components ----------------------------------------------------------
bash "$TESTENV/scripts/components.sh" up

log "environment ready in $((SECONDS - T0)) s"
cat <<MSG

  The local environment runs on 127.0.0.1 (Kubernetes v$K8S_VERSION, cluster "$CLUSTER_NAME").
  Use it with:

    source $STATE/env
    kubectl get nodes
    aws ec2 describe-subnets --filters Name=tag:karpenter.sh/discovery,Values=$CLUSTER_NAME

  Logs: $LOGS/   Stop everything: make down
MSG
