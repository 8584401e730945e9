#!/usr/bin/env bash
# Creates the local environment's certificates once (openssl): the cluster CA,
# kube-apiserver's serving certificate, client certificates for the admin and
# the control-plane components, the front-proxy CA and client certificate of the
# aggregation layer, and the service-account signing key.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"
mkdir -p "$PKI"
cd "$PKI"
[[ -f .complete ]] && exit 0

ca() { # name cn
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

cert() { # name signer subj usage [sans]
  local name="$1" signer="$2" subj="$3" usage="$4" sans="${5:-}"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$signer.crt" -CAkey "$signer.key" -CAcreateserial \
    -out "$name.crt" -days 3650 -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

ca ca kubernetes-ca
ca front-proxy-ca front-proxy-ca
cert apiserver ca "/CN=kube-apiserver" serverAuth \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
cert kube-controller-manager ca "/CN=system:kube-controller-manager" clientAuth
cert kube-scheduler ca "/CN=system:kube-scheduler" clientAuth
cert apiserver-kubelet-client ca "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" clientAuth
# kwok plays every node's kubelet on one HTTPS endpoint.
cert kubelet-serving ca "/O=system:nodes/CN=kwok-kubelet" serverAuth "DNS:localhost,IP:127.0.0.1"
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
touch .complete
