#!/bin/bash
# What a burst of per-session starts costs, with and without launch slots
# (CPU-aware admission): N `initialize`s at once on a per-session server
# (server-everything on Node, or UPSTREAM=fixture), each starting an
# instance, while a session already open on a shared server of the same
# program sends `ping` after `ping` (bench/scripts/initialize_burst.py).
# Run once with every start at once (limits.max_concurrent_launches = 1000,
# as before the slots) and once with the default (twice the CPUs mcpod may use).
# Usage: [SLOTS="1000 0"] bench/scripts/launch_burst.sh [N] [ROUNDS]   (SLOTS: the settings to compare)
# Needs: target/release/mcpod, the fixture-command plugin, tests/clients.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-20}
rounds=${2:-1}
work=$(mktemp -d)
# shellcheck source=fixture-host.sh
. "$root/bench/scripts/fixture-host.sh"
select_upstream everything
trap 'pkill -f "mcpod serve --insecure-no-auth --config $work" || true; rm -rf "$work"' EXIT
start() { # SHARING: prints the server id
  # UPSTREAM=npx: the npx server type itself (it asks for the network npx needs).
  local body="{\"server_type\":\"fixture-command\",\"sharing\":\"$1\",\"args\":$args_json}"
  [ "${UPSTREAM:-}" = npx ] &&
    body="{\"server_type\":\"npx\",\"package\":\"${args[1]%@*}\",\"version\":\"${args[1]##*@}\",\"sharing\":\"$1\",\"args\":[\"stdio\"]}"
  curl -sf -XPOST localhost:18131/api/v1/servers -H 'content-type: application/json' -d "$body" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["server_id"])'
}
for _ in $(seq "$rounds"); do
  for slots in ${SLOTS:-1000 0}; do
    write_config "$work/mcpod.toml" 18131 off
    printf '[limits]\nmax_concurrent_launches = %s\nmax_sessions_per_server = 1000\n' "$slots" >>"$work/mcpod.toml"
    (cd "$work"; XDG_CACHE_HOME=$work XDG_STATE_HOME=$work setsid "$root/target/release/mcpod" serve --insecure-no-auth --config "$work/mcpod.toml" >"$work/log" 2>&1 &)
    for _ in $(seq 50); do curl -sf localhost:18131/healthz >/dev/null && break; sleep 0.1; done
    burst=$(start per-session)
    canary=$(start shared)
    echo "max_concurrent_launches = $slots$([ "$slots" = 0 ] && echo " (the default: twice the $(nproc) CPUs)")"
    # CANARY=0: the burst alone.
    python3 "$root/bench/scripts/initialize_burst.py" "$n" "http://127.0.0.1:18131/servers/$burst/mcp" \
      $([ "${CANARY:-1}" = 0 ] || echo "http://127.0.0.1:18131/servers/$canary/mcp") | sed 's/^/  /'
    pkill -f "mcpod serve --insecure-no-auth --config $work" || true
    sleep 2
  done
done
