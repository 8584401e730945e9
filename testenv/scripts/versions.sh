# Pinned versions of the local environment. Keep in step with testenv/go/*/go.mod.
K8S_VERSION=1.34.4
ETCD_VERSION=3.6.16
KWOK_VERSION=0.7.0
