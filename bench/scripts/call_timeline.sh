#!/bin/bash
# Where one proxied call's time goes, segment by segment, for mcpod and for
# the bench's pipe proxy in front of the same upstream: `perf record -a` of
# the system calls that carry the call (the client's send, the proxy's
# epoll wake, its read of the request, its write to the server's stdin, the
# server's read and write, the proxy's read of the answer and its write to
# the client, the client's read), during sequential `tools/call`s from
# bench/scripts/http_calls.py; call_timeline.py prints each segment's p50
# and p90. The proxy's own segments (request read -> stdin write, answer
# read -> client write) are its CPU work on each path; the others are
# wake-ups and the upstream. Timestamps are whole microseconds.
#
# Usage: bench/scripts/call_timeline.sh [CALLS]   (default 2000)
#   UPSTREAM=fixture (default; with FIXTURE_ARGS, e.g. "--echo-sleep-us 70")
#     or everything (server-everything on Node: its reads and writes are
#     matched by the process name `node`)
#   BIN=path/to/mcpod; BENCH_AUDIT=stdout|off (default stdout, as `serve`)
# Needs: perf (tracepoints), target/release/{mcpod,mcpod-bench,mcp-fixture},
# the fixture-command plugin.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
calls=${1:-2000}
bin=${BIN:-$root/target/release/mcpod}
work=$(mktemp -d)
# shellcheck source=fixture-host.sh
. "$root/bench/scripts/fixture-host.sh"
select_upstream fixture
upstream_comm=$([ "${UPSTREAM:-fixture}" = fixture ] && echo mcp-fixture || echo node)
port=$((20000 + RANDOM % 20000))
trap 'pkill -f "serve --insecure-no-auth --config $work" || true; pkill -f "mcpod-bench pipe-proxy $port" || true; rm -rf "$work"' EXIT
write_config "$work/mcpod.toml" "$port" "${BENCH_AUDIT:-stdout}"
events=syscalls:sys_enter_sendto,syscalls:sys_exit_recvfrom,syscalls:sys_enter_write,syscalls:sys_exit_read,syscalls:sys_enter_writev,syscalls:sys_exit_epoll_wait

timeline() { # NAME PATH
  python3 "$root/bench/scripts/http_calls.py" "$2" 1000 "$port" >/dev/null
  perf record -q -a -e "$events" -o "$work/perf.data" 2>/dev/null &
  local perf=$!; sleep 0.5
  python3 "$root/bench/scripts/http_calls.py" "$2" "$calls" "$port" >/dev/null
  kill -INT $perf; wait $perf || true
  perf script -i "$work/perf.data" 2>/dev/null >"$work/script.txt"
  python3 "$root/bench/scripts/call_timeline.py" "$work/script.txt" "$1" "$upstream_comm"
}

(setsid "$root/target/release/mcpod-bench" pipe-proxy "$port" "$program" "${args[@]}" >/dev/null 2>&1 &)
sleep 1.5
timeline "pipe proxy" /mcp
pkill -f "mcpod-bench pipe-proxy $port"; sleep 0.5
(cd "$work"; XDG_CACHE_HOME=$work XDG_STATE_HOME=$work setsid "$bin" serve --insecure-no-auth --config "$work/mcpod.toml" >"$work/log" 2>&1 &)
for _ in $(seq 50); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
server=$(start_server "$port")
timeline mcpod "/servers/$server/mcp"
