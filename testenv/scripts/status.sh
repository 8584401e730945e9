#!/usr/bin/env bash
# Exits 0 if every process of the local environment runs and the API server is
# ready; prints what runs.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
rc=0
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok moto joiner; do
  if is_running "$name"; then echo "running  $name (pid $(cat "$(pidfile "$name")"))"; else echo "stopped  $name"; rc=1; fi
done
[[ $rc == 0 ]] && { kc get --raw /readyz >/dev/null 2>&1 || rc=1; }
exit $rc
