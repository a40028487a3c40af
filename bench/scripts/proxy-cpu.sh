#!/bin/bash
# CPU per call of mcpod and of the bench's pipe proxy, each in front of
# server-everything (or UPSTREAM=fixture), measured with `perf stat` during 5,000 sequential
# `tools/call`s from bench/scripts/http_calls.py (Python http.client, keep-alive),
# and the upstream's own CPU per call (from /proc: all its threads).
# Usage: bench/scripts/proxy-cpu.sh [ROUNDS]   (PIN="taskset -c 0" to pin all to one CPU)
#   CGROUPS=false runs mcpod's upstream without its control group, as the
#   pipe proxy runs it; NATIVE_ADAPTERS=false runs the stdio adapter in wasm.
# Needs: target/release/{mcpod,mcpod-bench}, the fixture-command plugin, the
# test suite's node_modules (tests/clients), perf.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${1:-2}
work=$(mktemp -d)
# shellcheck source=fixture-host.sh
. "$root/bench/scripts/fixture-host.sh"
# UPSTREAM=fixture: the Rust fixture server instead of server-everything.
select_upstream everything
trap 'pkill -f "mcpod serve --insecure-no-auth --config $work" || true; pkill -f "mcpod-bench pipe-proxy 18122" || true; rm -rf "$work"' EXIT
write_config "$work/mcpod.toml" 18121 "${BENCH_AUDIT:-off}"
measure() { # NAME PID PORT PATH
  ${PIN:-} python3 "$root/bench/scripts/http_calls.py" "$4" 2000 "$3" >/dev/null
  perf stat -e task-clock,context-switches -p "$2" -o "$work/stat" &
  local perf=$!; sleep 0.3
  upstream=$(pgrep -P "$2" | head -1); up0=$(ticks "$upstream")
  local p50; p50=$(${PIN:-} python3 "$root/bench/scripts/http_calls.py" "$4" 5000 "$3")
  kill -INT $perf; wait $perf || true
  local ms cs up
  ms=$(awk '/task-clock/{print $1}' "$work/stat"); cs=$(awk '/context-switches/{print $1}' "$work/stat")
  up=$(( $(ticks "$upstream") - up0 ))
  printf '%-10s p50 %6.1f µs  CPU/call %6.1f µs  switches/call %.2f  upstream CPU/call %6.1f µs\n' "$1" "$p50" \
    "$(echo "$ms*1000/5000" | bc -l)" "$(echo "$cs/5000" | bc -l)" "$(echo "$up*1000000/$(getconf CLK_TCK)/5000" | bc -l)"
}
# CPU time of process PID and all its threads, in clock ticks.
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
for _ in $(seq "$rounds"); do
  (${PIN:-} setsid "$root/target/release/mcpod-bench" pipe-proxy 18122 "$program" "${args[@]}" >/dev/null 2>&1 &)
  sleep 1.5
  measure "pipe proxy" "$(pgrep -f 'mcpod-bench pipe-proxy 18122' | head -1)" 18122 /mcp
  pkill -f "mcpod-bench pipe-proxy 18122"; sleep 0.3
  # Its own state directory, so that it starts afresh each round.
  (cd "$work"; XDG_CACHE_HOME=$work XDG_STATE_HOME=$work ${PIN:-} setsid "$root/target/release/mcpod" serve --insecure-no-auth --config "$work/mcpod.toml" >"$work/log" 2>&1 &)
  for _ in $(seq 50); do curl -sf localhost:18121/healthz >/dev/null && break; sleep 0.1; done
  server=$(start_server 18121)
  measure mcpod "$(pgrep -f "mcpod serve --insecure-no-auth --config $work" | head -1)" 18121 "/servers/$server/mcp"
  pkill -f "mcpod serve --insecure-no-auth --config $work"; sleep 0.5
done
