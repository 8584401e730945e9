#!/usr/bin/env bash
# Builds the local environment's Go binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok) from the Go module proxy through
# the wrapper modules in testenv/go/, and caches them by version outside the work
# tree. A second run with the same versions rebuilds nothing.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
source "$HERE/scripts/versions.sh"
CACHE="${OUTRIGGER_CACHE:-$HOME/.cache/outrigger}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

die() { echo "error: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.24 (the Debian package golang-go is too old) and make sure 'go' is on PATH."
gov=$(go env GOVERSION | sed 's/^go//')
case "$gov" in 1.2[4-9]*|1.[3-9]*) ;; *) die "Go $gov is too old: Go >= 1.24 is needed to build Kubernetes $K8S_VERSION.";; esac

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod"

build() { # name module-dir out pkg [ldflags]
  local name="$1" dir="$2" out="$3" pkg="$4" ldflags="${5:-}"
  if [[ -x "$out" ]]; then return 0; fi
  echo ">> building $name ($pkg) -> $out"
  local log="$CACHE/build-$name.log" t0=$SECONDS
  if ! (cd "$HERE/go/$dir" && go mod download >"$log" 2>&1 && \
        go build -trimpath -tags selinux,notest -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg" >>"$log" 2>&1); then
    tail -n 30 "$log" >&2
    if grep -qE 'not found|unknown revision|410 Gone|404 Not Found' "$log"; then
      die "the Go module proxy does not serve a module that $name needs (see $log). Pin a version the proxy serves in testenv/scripts/versions.sh and testenv/go/$dir/go.mod."
    fi
    die "building $name failed; full log: $log"
  fi
  mv "$out.tmp" "$out"
  echo "   $name built in $((SECONDS - t0)) s"
}

K8S_LDFLAGS=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=${K8S_VERSION%%.*}"
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  K8S_LDFLAGS+=" -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

build etcd etcd "$BIN/etcd-v$ETCD_VERSION" go.etcd.io/etcd/server/v3 \
  "-X go.etcd.io/etcd/api/v3/version.GitSHA=outrigger"
build kwok kwok "$BIN/kwok-v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$c" k8s "$BIN/$c-v$K8S_VERSION" "k8s.io/kubernetes/cmd/$c" "$K8S_LDFLAGS"
done
