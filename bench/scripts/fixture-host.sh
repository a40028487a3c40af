# Sourced by the bench scripts (needs $root): the upstream each proxy is
# put in front of, and the mcpod config that serves it through the
# fixture-command server type.

# Sets program, args (an array) and args_json from UPSTREAM: `fixture` (the
# Rust fixture server, with FIXTURE_ARGS such as `--echo-spin-us 70`), `everything` (server-everything on Node, from
# tests/clients) or `npx` (the same version of it run by `npx -y`, as its
# template runs it: mcpod verifies it and hands npx the checked tarball);
# $1 is the default.
select_upstream() {
  local pkg=$root/tests/clients/node_modules/@modelcontextprotocol/server-everything
  case "${UPSTREAM:-$1}" in
    everything) program=node; args=("$pkg/dist/index.js" stdio) ;;
    npx)
      program=npx
      args=(-y "@modelcontextprotocol/server-everything@$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg/package.json")" stdio)
      ;;
    *) program=$root/target/release/mcp-fixture; read -r -a args <<< "${FIXTURE_ARGS:-}" ;;
  esac
  args_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${args[@]}")
}

# Writes FILE: mcpod on 127.0.0.1:PORT, audit records to AUDIT_SINK, and
# the fixture-command server type running $program. NATIVE_ADAPTERS=false
# runs the built-in stdio adapter in wasm; CGROUPS=false runs the server without
# its control group (cpu_limit, memory_limit), as the pipe proxy runs it.
write_config() { # FILE PORT AUDIT_SINK
  cat > "$1" <<TOML
[server]
listen = "127.0.0.1:$2"
[log]
level = "warn"
[audit]
sink = "$3"
[plugin_runtime]
native_adapters = ${NATIVE_ADAPTERS:-true}
[sandbox]
cgroups = ${CGROUPS:-true}
[[plugins]]
name = "fixture-command"
kind = "server-type"
source = "$root/target/wasm/wasm32-wasip2/plugin/mcpod_test_fixture_command.wasm"
[plugins.config]
program = "$program"
TOML
}

# Starts the fixture-command server (shared, with $args_json) on the mcpod
# listening on 127.0.0.1:PORT, and prints its id (server numbers go on across
# a host's restarts, so the id is read from the start's answer).
start_server() { # PORT
  curl -sf -XPOST "http://127.0.0.1:$1/api/v1/servers" -H 'content-type: application/json' \
    -d "{\"server_type\":\"fixture-command\",\"sharing\":\"shared\",\"args\":$args_json}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["server_id"])'
}
