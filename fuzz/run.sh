#!/usr/bin/env bash
# Runs mcpod's fuzz targets under libFuzzer (coverage-guided), each for
# SECONDS_PER_TARGET seconds (default 60), two at a time; all targets, or
# the ones named:
#
#   fuzz/run.sh                      # every target, a minute each
#   SECONDS_PER_TARGET=3600 fuzz/run.sh mux_sequence
#
# Needs the nightly toolchain and cargo-fuzz (installed here on first use).
# The host's built-in plugins are built with the pinned toolchain
# (MCPOD_WASM_TOOLCHAIN), since nightly may lack the wasm target. New
# inputs go to target/fuzz/corpus/TARGET (fuzz/corpus/TARGET is read, not
# written); a failing input is left in fuzz/artifacts/TARGET/ and belongs,
# once fixed, in fuzz/regressions/TARGET/, which `cargo test` replays.
set -euo pipefail
cd "$(dirname "$0")"
secs=${SECONDS_PER_TARGET:-60}
jobs=${FUZZ_JOBS:-2}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export MCPOD_WASM_TOOLCHAIN
MCPOD_WASM_TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' ../rust-toolchain.toml)
flags=(--features libfuzzer --sanitizer none --debug-assertions --target-dir ../target/fuzz)
cargo +nightly fuzz build "${flags[@]}"
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
mkdir -p ../target/fuzz/logs
# The binaries built above are run as they are (not through `cargo fuzz
# run`, which would rebuild them whenever a source file changes mid-run).
bin=../target/fuzz/x86_64-unknown-linux-gnu/release
run() {
  local t=$1
  mkdir -p "../target/fuzz/corpus/$t" "artifacts/$t"
  "$bin/$t" -artifact_prefix="artifacts/$t/" "../target/fuzz/corpus/$t" "corpus/$t" \
    -max_total_time="$secs" -print_final_stats=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    >"../target/fuzz/logs/$t.log" 2>&1 && echo "$t: ok" || echo "$t: FAILED (fuzz/artifacts/$t, target/fuzz/logs/$t.log)"
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)" "../target/fuzz/logs/$t.log" | sed "s/^/$t: /" || true
}
export -f run
export secs bin
for t in "${targets[@]}"; do echo "$t"; done | xargs -P "$jobs" -I{} bash -c "run {}"
