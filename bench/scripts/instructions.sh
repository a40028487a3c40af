#!/usr/bin/env bash
# Instructions per proxied call, counted by valgrind's callgrind: the
# repeatable figure on a noisy machine, where a p50 moves by tens of µs from
# run to run. Each proxy (the bench's zero-logic pipe proxy, then mcpod) runs
# under callgrind in front of the same upstream; the bench's Python client
# (bench/scripts/http_calls.py: keep-alive, sequential `tools/call` of echo)
# warms it up, callgrind's counters are zeroed, CALLS calls are made and
# counted, then the same wall time with no calls is counted too (timers and
# sweeps) and taken off. Only the proxy's process is counted, never the
# upstream's.
#
# Usage: bench/scripts/instructions.sh [CALLS]   (default 2000)
#   BIN=path/to/mcpod (default target/release/mcpod)
#   UPSTREAM=fixture|everything (default fixture)
#   TOP=N also prints mcpod's N most costly functions (self cost) and its
#     cost by component
#   KEEP=DIR keeps each path's callgrind profile of the calls there
#     (DIR/mcpod.busy, for callgrind_annotate)
# Needs: valgrind, target/release/{mcpod,mcpod-bench,mcp-fixture}, the
# fixture-command plugin (cargo test -p mcpod --test suite front:: builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
calls=${1:-2000}
bin=${BIN:-$root/target/release/mcpod}
work=$(mktemp -d)
# shellcheck source=fixture-host.sh
. "$root/bench/scripts/fixture-host.sh"
select_upstream fixture
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "callgrind-out-file=$work" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
write_config "$work/mcpod.toml" "$port" "${BENCH_AUDIT:-stdout}"
export XDG_CACHE_HOME=$work XDG_STATE_HOME=$work

wait_ready() { # URL: up to 120 s (valgrind starts slowly)
  for _ in $(seq 1200); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "nothing answered at $1" >&2; exit 1
}

# The instructions counted since the counters were last zeroed, from the
# newest dump of process PID.
dumped() {
  callgrind_control -d "$1" >/dev/null 2>&1
  local f; f=$(ls -t "$work"/cg."$1".* | head -1)
  awk '/^(summary|totals):/{print $2; exit}' "$f"
}

# NAME PID PATH: instructions per call, the idle cost taken off.
count() {
  python3 "$root/bench/scripts/http_calls.py" "$3" 300 "$port" >/dev/null
  callgrind_control -z "$2" >/dev/null 2>&1
  local t0 t1 busy idle
  t0=$(date +%s.%N)
  python3 "$root/bench/scripts/http_calls.py" "$3" "$calls" "$port" >/dev/null
  t1=$(date +%s.%N)
  busy=$(dumped "$2")
  cp "$(ls -t "$work"/cg."$2".* | head -1)" "$work/$1.busy"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work/$1.busy" "$KEEP/"; fi
  sleep "$(echo "$t1 - $t0" | bc -l)"
  idle=$(dumped "$2")
  printf '| %s | %s | %s | %s |\n' "$1" "$(( (busy - idle) / calls ))" "$(( busy / calls ))" "$(( idle / calls ))"
}

pid_of() { pgrep -f "callgrind-out-file=$work/cg.%p $1" | head -1; }

echo "upstream: $program ${args[*]}; $calls sequential calls (bench/scripts/http_calls.py), counted by callgrind"
echo
echo "| path | instructions per call | counted during the calls, per call | idle in the same time, per call |"
echo "|---|---|---|---|"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
  "$root/target/release/mcpod-bench" pipe-proxy "$port" "$program" "${args[@]}" >/dev/null 2>&1 &
for _ in $(seq 1200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
count "pipe-proxy" "$(pid_of "$root/target/release/mcpod-bench")" /mcp
kill "$(pid_of "$root/target/release/mcpod-bench")"; wait 2>/dev/null || true

# mcpod compiles its plugins once, natively, so that the run under
# valgrind starts from the compile cache.
"$bin" serve --insecure-no-auth --config "$work/mcpod.toml" >/dev/null 2>&1 &
wait_ready "http://127.0.0.1:$port/readyz"
kill %% 2>/dev/null || true; wait 2>/dev/null || true
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
  "$bin" serve --insecure-no-auth --config "$work/mcpod.toml" >/dev/null 2>&1 &
wait_ready "http://127.0.0.1:$port/readyz"
server=$(start_server "$port")
count mcpod "$(pid_of "$bin")" "/servers/$server/mcp"

if [ -n "${TOP:-}" ]; then
  python3 - "$work/mcpod.busy" "$calls" "$TOP" <<'PY'
import collections, re, sys
path, calls, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names, cost = {}, collections.Counter()
fn, after_call = None, False
def name(tok):
    m = re.match(r'\((\d+)\)(?:\s+(.*))?', tok)
    if not m:
        return tok
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), m.group(1))
for line in open(path, errors='replace'):
    line = line.rstrip('\n')
    if line.startswith('fn='):
        fn = name(line[3:])
    elif line.startswith('cfn='):
        name(line[4:])
    elif line.startswith('calls='):
        after_call = True
    elif line[:1].isdigit() or line[:1] in '+-*':
        if after_call:  # the cost of the call, not of this function
            after_call = False
        elif fn is not None and len(line.split()) > 1:
            cost[fn] += int(line.split()[1])
parts = [('allocator', r'malloc|free|_int_|unlink_chunk|__rdl_|__rust_(de|re)?alloc|realloc|finish_grow|mi_|mimalloc'),
         ('wasm (adapter code and wasmtime)', r'^0x|wasmtime|cranelift|wasi|component'),
         ('hyper, http, httparse', r'hyper|^http::|httparse|h1::'),
         ('serde_json', r'serde'), ('tokio', r'tokio|mio'), ('axum, tower', r'axum|tower'),
         ('mcpod', r'mcpod'), ('memcpy and friends', r'mem(cpy|move|set|cmp|chr)'),
         ('sha2', r'sha2'), ('formatting', r'core::fmt|alloc::fmt|pad_integral'),
         ('hashing', r'hash|sip')]
by = collections.Counter()
for n, c in cost.items():
    by[next((k for k, p in parts if re.search(p, n)), 'other')] += c
total = sum(cost.values())
print(f'\nmcpod during the calls, by component (instructions per call, idle included):\n')
print('| component | per call | share |\n|---|---|---|')
for k, c in by.most_common():
    print(f'| {k} | {c // calls:,} | {100 * c / total:.1f}% |')
print(f'\n| function (self cost) | per call |\n|---|---|')
for n, c in cost.most_common(top):
    print(f'| `{n[:110]}` | {c // calls:,} |')
PY
fi
