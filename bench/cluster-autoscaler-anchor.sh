#!/usr/bin/env bash
# Upstream Cluster Autoscaler 1.34.5 with its kwok cloud provider: the anchor
# of the node-group autoscaler benchmark (bench/cluster-autoscaler.sh). Bench
# only: its source is not on any registry, so CI never builds it.
#
#   bash bench/cluster-autoscaler-anchor.sh build   # idempotent; cached in ~/.cache/outrigger/bin
#
# The Go module proxy refuses k8s.io/autoscaler/cluster-autoscaler. The source
# comes from a snapshot of github.com/kubernetes/autoscaler (the search tool's
# `fetch`; CA_MIRROR names its git directory), tag cluster-autoscaler-1.34.5,
# extracted once into ~/.cache/outrigger/src. That snapshot lacks two large
# generated files of the in-tree aws-sdk-go (service/ec2/api.go and
# service/sagemaker/api.go); they are rebuilt from the proxy's
# github.com/aws/aws-sdk-go v1.48.7 with upstream's import rewrite and checked
# against upstream's git blob hashes. Every dependency comes from the proxy,
# Kubernetes pinned to the local environment's v1.34.4 (bench/go/cluster-autoscaler).
# One cloud provider per binary (upstream's build tags exclude each other):
# kwok here, so both autoscalers scale the same kwok node groups.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/testenv/scripts/lib.sh"
CA_VERSION=1.34.5
CA_TAG="cluster-autoscaler-$CA_VERSION"
CA_MIRROR="${CA_MIRROR:-/work/.mirror/kubernetes+autoscaler/repo}"
CA_SRC="$CACHE/src/$CA_TAG"
CA_BIN="$BIN/cluster-autoscaler-kwok-$CA_VERSION"
WRAP="$REPO/bench/go/cluster-autoscaler"
SDK=github.com/aws/aws-sdk-go
SDK_VERSION=v1.48.7
# path under cloudprovider/aws/aws-sdk-go, and upstream's blob hash.
MISSING=(
  "service/ec2/api.go b38aeb917960de7e9515d1939c7513dc9e34313e"
  "service/sagemaker/api.go c7f54d4915fe7c504fb7cb2ab1e0bab6b91eb443"
)

extract() {
  [[ -f "$CA_SRC/.complete" ]] && return 0
  [[ -d "$CA_MIRROR" ]] || die "no snapshot of github.com/kubernetes/autoscaler at $CA_MIRROR (set CA_MIRROR; fetch it with the search tool)"
  git --git-dir="$CA_MIRROR" rev-parse -q --verify "$CA_TAG^{commit}" >/dev/null || die "$CA_MIRROR has no tag $CA_TAG"
  log "extracting $CA_TAG from $CA_MIRROR"
  rm -rf "$CA_SRC" && mkdir -p "$CA_SRC"
  local excludes=()
  for m in "${MISSING[@]}"; do
    excludes+=(":(exclude)cluster-autoscaler/cloudprovider/aws/aws-sdk-go/${m%% *}")
  done
  git --git-dir="$CA_MIRROR" archive "$CA_TAG" -- cluster-autoscaler "${excludes[@]}" | tar -x -C "$CA_SRC"
  log "rebuilding the snapshot's two missing aws-sdk-go files from $SDK@$SDK_VERSION"
  local dir
  dir="$(cd "$CACHE/src" && GO111MODULE=on go mod download -json "$SDK@$SDK_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || die "could not download $SDK@$SDK_VERSION"
  for m in "${MISSING[@]}"; do
    local path="${m%% *}" want="${m##* }" out
    out="$CA_SRC/cluster-autoscaler/cloudprovider/aws/aws-sdk-go/$path"
    sed "s#$SDK#k8s.io/autoscaler/cluster-autoscaler/cloudprovider/aws/aws-sdk-go#" "$dir/$path" >"$out"
    [[ "$(git hash-object "$out")" == "$want" ]] || die "$path rebuilt from $SDK@$SDK_VERSION does not match upstream's blob $want"
  done
  touch "$CA_SRC/.complete"
}

build() {
  [[ -x "$CA_BIN" ]] && return 0
  extract
  ln -sfn "$CA_SRC" "$WRAP/src"
  log "building upstream Cluster Autoscaler $CA_VERSION (kwok provider); about 9 minutes cold on 2 cores"
  mkdir -p "$BIN"
  (cd "$WRAP" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -tags kwok -ldflags "-s -w" \
    -o "$CA_BIN.tmp" k8s.io/autoscaler/cluster-autoscaler)
  mv "$CA_BIN.tmp" "$CA_BIN"
}

case "${1:-}" in
  build) build; echo "$CA_BIN" ;;
  *) die "usage: $0 build" ;;
esac
