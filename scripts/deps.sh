#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a fresh machine and is
# quick when everything is there: Debian packages (openssl, curl, iproute2,
# python3-venv, systemd's journalctl and systemd-journal-remote), the Rust components rustfmt and clippy. Go and Rust themselves
# must be on the machine (the error says how to get them).
set -euo pipefail
need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
command -v ss >/dev/null || need_apt+=(iproute2)
command -v setsid >/dev/null || need_apt+=(util-linux)
command -v bc >/dev/null || need_apt+=(bc)
# The node agent reads the systemd journal through journalctl; the local
# environment writes each node's journal with systemd-journal-remote.
command -v journalctl >/dev/null || need_apt+=(systemd)
[[ -x /lib/systemd/systemd-journal-remote ]] || need_apt+=(systemd-journal-remote)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if (( ${#need_apt[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing Debian packages: ${need_apt[*]} (run: sudo apt-get install ${need_apt[*]})" >&2; exit 1
  fi
  echo ">> apt-get install ${need_apt[*]}" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "error: Go >= 1.24 is required (https://go.dev/doc/install); Debian's golang-go is too old" >&2; exit 1; }
command -v cargo >/dev/null || { echo "error: Rust is required: install it with rustup" >&2; exit 1; }
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >&2
  done
fi
