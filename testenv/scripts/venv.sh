#!/usr/bin/env bash
# Creates (once) the project-local Python venv with moto_server, boto3 and the
# AWS CLI, keyed by the hash of testenv/requirements.txt.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${OUTRIGGER_CACHE:-$HOME/.cache/outrigger}"
key=$(sha256sum "$HERE/requirements.txt" | cut -c1-12)
VENV="$CACHE/venv-$key"
if [[ ! -x "$VENV/bin/moto_server" || ! -x "$VENV/bin/aws" ]]; then
  command -v python3 >/dev/null || { echo "error: python3 is missing: install it (apt-get install python3 python3-venv)" >&2; exit 1; }
  echo ">> creating Python venv $VENV (moto, awscli)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "error: python3 -m venv failed: install python3-venv" >&2; exit 1; }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" >&2
fi
echo "$VENV"
