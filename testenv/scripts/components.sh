#!/usr/bin/env bash
# Starts (up) or stops (down) the Outrigger components that exist, configured
# for the local environment. Each runs from the workspace's debug build with
# leader election, its admin server on its own port, and logs under
# .testenv/logs/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# name|admin-port|subcommand and flags. One line per component, added as each
# component lands.
COMPONENTS=(
)

case "${1:-up}" in
  up)
    (( ${#COMPONENTS[@]} )) || exit 0
    bash "$TESTENV/scripts/build-outrigger.sh"
    OUTRIGGER="${CARGO_TARGET_DIR:-$CACHE/target}/debug/outrigger"
    for c in "${COMPONENTS[@]}"; do
      IFS='|' read -r name port cmd <<<"$c"
      is_running "outrigger-$name" && continue
      require_free_port "outrigger-$name" "$port"
      log "starting outrigger $name (admin :$port)"
      # shellcheck disable=SC2086
      KUBECONFIG="$STATE/admin.kubeconfig" AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" \
        AWS_REGION="$AWS_REGION_DEFAULT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        start_bg "outrigger-$name" "$OUTRIGGER" $cmd --admin-address "127.0.0.1:$port"
      wait_for "outrigger-$name" 60 curl -sf "http://127.0.0.1:$port/healthz"
    done
    ;;
  down)
    for c in "${COMPONENTS[@]}"; do
      IFS='|' read -r name _ _ <<<"$c"
      f=$(pidfile "outrigger-$name")
      [[ -f "$f" ]] && { kill -TERM "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; }
    done
    ;;
esac
