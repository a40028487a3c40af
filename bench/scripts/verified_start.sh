#!/usr/bin/env bash
# What verifying a package ([packages] verify) adds to a start: the time of
# the resolve-and-verify step, logged by each start as `verify_ms`, cold (a
# fresh host: no metadata cached, no file checked yet) and warm (the same
# host's next start of the same package: metadata cached, file checked).
#
# Usage: bench/scripts/verified_start.sh [ROUNDS]   (default 5; needs npx and
# uvx on PATH, as the templates do; uses target/debug/mcpod)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
bin=target/debug/mcpod
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
sed 's/^format = "human"/format = "json"/' config/mcpod.toml > "$work/mcpod.toml"
(
# The rounds run in a subshell (piped to tee): its own trap stops its host
# however it ends.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
for round in $(seq "$rounds"); do
  : > "$work/log"
  "$bin" serve --config "$work/mcpod.toml" --listen "127.0.0.1:$port" --insecure-no-auth 2> "$work/log" > /dev/null &
  host=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.2; done
  for template in everything time; do
    for temp in cold warm; do
      "$bin" servers start --template "$template" --api "http://127.0.0.1:$port" --json > "$work/start.json"
      id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_id"])' "$work/start.json")
      ms=$(grep '"server starting"' "$work/log" | grep "\"$id\"" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["verify_ms"])')
      echo "$round $template $temp $ms"
      "$bin" servers stop "$id" --api "http://127.0.0.1:$port" > /dev/null
    done
  done
  kill "$host"; wait "$host" 2>/dev/null || true
done
) | tee "$work/results"
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for template in ("everything", "time"):
    for temp in ("cold", "warm"):
        ms = [float(r[3]) for r in rows if r[1] == template and r[2] == temp]
        print(f"{template:10} {temp}: median {statistics.median(ms):7.1f} ms  (min {min(ms):.1f}, max {max(ms):.1f}, n={len(ms)})")
PY
