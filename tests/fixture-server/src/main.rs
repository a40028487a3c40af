//! A small MCP server on stdio for fast, deterministic tests. Tools:
//! `echo`, `add`, `whoami` (this process's id and call count), `slow`
//! (progress notifications), `sample` (asks the client to sample and
//! returns its answer), `notify` (logs and a list_changed), `crash`
//! (exits), `limits` (this process's address-space and CPU rlimits),
//! `attempt` (tries what a sandbox must stop: write or read a file, connect
//! to an address, spawn processes, allocate memory, and says what happened);
//! `EXTRA_TOOLS=N` lists N more (never called). `--echo-spin-us N` or
//! `--echo-sleep-us N` makes `echo` busy or asleep for N µs before it
//! answers, as a server doing real work is (a benchmark's knob). One
//! resource, one prompt, logging. Like the SDKs' servers, it answers
//! nothing but `ping` before `initialize`, so a proxy that restarts it must
//! initialize it again.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, Write};

const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

struct Server {
    out: std::io::Stdout,
    calls: u64,
    next_id: u64,
    /// Our sampling request id → the tools/call id waiting for it.
    waiting: HashMap<u64, Value>,
    /// Whether `initialize` was received.
    initialized: bool,
    /// What `echo` does before it answers (`--echo-spin-us`, `--echo-sleep-us`).
    echo_delay: Delay,
}

/// A wait before an answer: none, the CPU kept busy, or asleep.
#[derive(Clone, Copy)]
enum Delay {
    None,
    Spin(std::time::Duration),
    Sleep(std::time::Duration),
}

impl Delay {
    /// The delay the command line names (the last of `--echo-spin-us N`, `--echo-sleep-us N`).
    fn from_args(args: &[String]) -> Delay {
        let mut delay = Delay::None;
        for pair in args.windows(2) {
            let us = || match pair[1].parse() {
                Ok(n) => std::time::Duration::from_micros(n),
                Err(_) => {
                    eprintln!("{} takes a whole number of microseconds, not {:?}", pair[0], pair[1]);
                    std::process::exit(2)
                }
            };
            match pair[0].as_str() {
                "--echo-spin-us" => delay = Delay::Spin(us()),
                "--echo-sleep-us" => delay = Delay::Sleep(us()),
                _ => {}
            }
        }
        delay
    }

    fn wait(self) {
        match self {
            Delay::None => {}
            Delay::Sleep(d) => std::thread::sleep(d),
            Delay::Spin(d) => {
                let start = std::time::Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

impl Server {
    fn send(&mut self, v: Value) {
        let mut out = self.out.lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    fn reply(&mut self, id: &Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }

    fn error(&mut self, id: &Value, code: i64, message: &str) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}));
    }

    fn text(t: impl Into<String>) -> Value {
        json!({"content": [{"type": "text", "text": t.into()}]})
    }

    fn tools() -> Value {
        let schema = |props: Value, req: Value| json!({"type": "object", "properties": props, "required": req});
        json!({"tools": [
            {"name": "echo", "description": "Echoes a message", "inputSchema": schema(json!({"message": {"type": "string"}}), json!(["message"]))},
            {"name": "add", "description": "Adds two numbers", "inputSchema": schema(json!({"a": {"type": "number"}, "b": {"type": "number"}}), json!(["a", "b"]))},
            {"name": "whoami", "description": "This process's id and how many calls it served", "inputSchema": schema(json!({}), json!([]))},
            {"name": "slow", "description": "Reports progress in steps", "inputSchema": schema(json!({"steps": {"type": "number"}}), json!([]))},
            {"name": "sample", "description": "Asks the client's model", "inputSchema": schema(json!({"prompt": {"type": "string"}}), json!(["prompt"]))},
            {"name": "notify", "description": "Sends a log message and a tools/list_changed", "inputSchema": schema(json!({}), json!([]))},
            {"name": "crash", "description": "Exits the process", "inputSchema": schema(json!({}), json!([]))},
            {"name": "limits", "description": "This process's address-space and CPU rlimits", "inputSchema": schema(json!({}), json!([]))},
            {"name": "sleep", "description": "Answers after `ms` milliseconds, sending nothing before", "inputSchema": schema(json!({"ms": {"type": "number"}}), json!(["ms"]))},
            {"name": "attempt", "description": "Tries something a sandbox must stop (`what`: write, read, connect, spawn, allocate; or env: the value of variable `target`) and says whether it worked", "inputSchema": schema(json!({"what": {"type": "string"}, "target": {"type": "string"}, "count": {"type": "number"}}), json!(["what"]))}
        ]})
    }

    fn call_tool(&mut self, id: &Value, params: &Value) {
        self.calls += 1;
        let args = &params["arguments"];
        match params["name"].as_str().unwrap_or("") {
            "echo" => {
                self.echo_delay.wait();
                self.reply(id, Self::text(args["message"].as_str().unwrap_or("")))
            }
            "add" => {
                let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
                self.reply(id, Self::text(format!("{sum}")))
            }
            "whoami" => self.reply(id, Self::text(format!("pid={} calls={}", std::process::id(), self.calls))),
            "sleep" => {
                let ms = args["ms"].as_u64().unwrap_or(0).min(60_000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                self.reply(id, Self::text(format!("slept {ms} ms")))
            }
            "slow" => {
                let steps = args["steps"].as_u64().unwrap_or(3);
                if let Some(token) = params.pointer("/_meta/progressToken").cloned() {
                    for i in 1..=steps {
                        self.send(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                            "params": {"progressToken": token, "progress": i, "total": steps}}));
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
                self.reply(id, Self::text(format!("done in {steps} steps")))
            }
            "sample" => {
                self.next_id += 1;
                let sid = self.next_id;
                self.waiting.insert(sid, id.clone());
                self.send(json!({"jsonrpc": "2.0", "id": format!("sample-{sid}"), "method": "sampling/createMessage",
                    "params": {"messages": [{"role": "user", "content": {"type": "text", "text": args["prompt"]}}], "maxTokens": 50}}));
            }
            "notify" => {
                self.send(json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "logger": "fixture", "data": "hello from the fixture"}}));
                self.send(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
                self.reply(id, Self::text("notified"))
            }
            "crash" => std::process::exit(3),
            "limits" => {
                let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
                let wanted: Vec<&str> = limits
                    .lines()
                    .filter(|l| l.starts_with("Max address space") || l.starts_with("Max cpu time"))
                    .collect();
                self.reply(id, Self::text(wanted.join("\n")))
            }
            "attempt" => {
                let target = args["target"].as_str().unwrap_or("");
                let count = args["count"].as_u64().unwrap_or(1);
                let outcome = attempt(args["what"].as_str().unwrap_or(""), target, count);
                self.reply(id, Self::text(outcome))
            }
            other => self.error(id, -32602, &format!("unknown tool {other}")),
        }
    }

    fn handle(&mut self, msg: Value) {
        let id = msg.get("id").cloned();
        let method = msg["method"].as_str().map(str::to_string);
        match (method.as_deref(), id) {
            (None, Some(Value::String(s))) if s.starts_with("sample-") => {
                let n: u64 = s["sample-".len()..].parse().unwrap_or(0);
                if let Some(call) = self.waiting.remove(&n) {
                    let text = msg.pointer("/result/content/text").and_then(Value::as_str).unwrap_or("<no text>").to_string();
                    match msg.get("error") {
                        Some(e) => self.reply(&call, Self::text(format!("sampling failed: {e}"))),
                        None => self.reply(&call, Self::text(format!("model said: {text}"))),
                    }
                }
            }
            (Some(m), Some(id)) if !self.initialized && m != "initialize" && m != "ping" => {
                self.error(&id, -32002, "Server not initialized")
            }
            (Some("initialize"), Some(id)) => {
                self.initialized = true;
                let asked = msg.pointer("/params/protocolVersion").and_then(Value::as_str).unwrap_or("");
                let version = if VERSIONS.contains(&asked) { asked } else { "2025-11-25" };
                self.reply(&id, json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": true}, "resources": {"subscribe": true}, "prompts": {}, "logging": {}},
                    "serverInfo": {"name": "mcpod-fixture", "version": "1.0.0"}
                }));
            }
            (Some("ping"), Some(id)) => self.reply(&id, json!({})),
            (Some("tools/list"), Some(id)) => {
                let mut tools = Self::tools();
                // `EXTRA_TOOLS=N` lists N more echo-like tools (`t000`, ...), for listings at scale.
                let extra = std::env::var("EXTRA_TOOLS").ok().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
                if let Some(list) = tools["tools"].as_array_mut() {
                    list.extend((0..extra.min(10_000)).map(|i| {
                        json!({"name": format!("t{i:03}"), "description": "Lists at scale", "inputSchema": {"type": "object"}})
                    }));
                }
                self.reply(&id, tools)
            }
            (Some("tools/call"), Some(id)) => {
                let params = msg["params"].clone();
                self.call_tool(&id, &params)
            }
            (Some("resources/list"), Some(id)) => {
                self.reply(&id, json!({"resources": [{"uri": "fixture://hello", "name": "hello", "mimeType": "text/plain"}]}))
            }
            (Some("resources/read"), Some(id)) => {
                let uri = msg.pointer("/params/uri").and_then(Value::as_str).unwrap_or("");
                if uri == "fixture://hello" {
                    self.reply(&id, json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": "hello"}]}))
                } else {
                    self.error(&id, -32002, &format!("resource not found: {uri}"))
                }
            }
            (Some("resources/subscribe"), Some(id)) => self.reply(&id, json!({})),
            (Some("prompts/list"), Some(id)) => {
                self.reply(&id, json!({"prompts": [{"name": "greet", "description": "Greets someone", "arguments": [{"name": "name", "required": true}]}]}))
            }
            (Some("prompts/get"), Some(id)) => {
                let name = msg.pointer("/params/arguments/name").and_then(Value::as_str).unwrap_or("you");
                self.reply(&id, json!({"messages": [{"role": "user", "content": {"type": "text", "text": format!("Hello, {name}!")}}]}))
            }
            (Some("logging/setLevel"), Some(id)) => self.reply(&id, json!({})),
            (Some(m), Some(id)) => self.error(&id, -32601, &format!("Method not found: {m}")),
            (Some("notifications/cancelled"), None) => {
                // On stderr, where `servers logs` shows it: tests see the cancellation arrive.
                eprintln!("cancelled request {}", msg.pointer("/params/requestId").unwrap_or(&Value::Null));
            }
            _ => {}
        }
    }
}

/// Tries `what` and says how it went: `done: …` when it worked, `denied: …`
/// with the error when it did not. A read never returns what it read.
fn attempt(what: &str, target: &str, count: u64) -> String {
    match what {
        "write" => match std::fs::write(target, b"written by the fixture") {
            Ok(()) => format!("done: wrote {target}"),
            Err(e) => format!("denied: {e}"),
        },
        "read" => match std::fs::read(target) {
            Ok(bytes) => format!("done: read {} bytes of {target}", bytes.len()),
            Err(e) => format!("denied: {e}"),
        },
        "connect" => match target.parse::<std::net::SocketAddr>() {
            Ok(addr) => match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)) {
                Ok(_) => format!("done: connected to {addr}"),
                Err(e) => format!("denied: {e}"),
            },
            Err(e) => format!("denied: bad address {target:?}: {e}"),
        },
        "spawn" => {
            // Children that idle, spawned until one fails or `count` run.
            let mut children = Vec::new();
            let mut failure = String::from("none");
            for _ in 0..count {
                match std::process::Command::new("/proc/self/exe").arg("--idle").spawn() {
                    Ok(child) => children.push(child),
                    Err(e) => {
                        failure = e.to_string();
                        break;
                    }
                }
            }
            let spawned = children.len();
            for mut child in children {
                let _ = child.kill();
                let _ = child.wait();
            }
            if spawned as u64 == count {
                format!("done: spawned {spawned} processes")
            } else {
                format!("denied: spawned {spawned} of {count} processes, then: {failure}")
            }
        }
        "allocate" => {
            // `count` MiB, every page touched so that it is really resident.
            let bytes = (count as usize).saturating_mul(1 << 20);
            let mut block: Vec<u8> = Vec::new();
            match block.try_reserve_exact(bytes) {
                Ok(()) => {
                    block.resize(bytes, 1);
                    let sum = block.iter().step_by(4096).map(|b| *b as u64).sum::<u64>();
                    // `target` "hold": keep it resident until the process ends.
                    if target == "hold" {
                        std::mem::forget(block);
                    }
                    format!("done: allocated {count} MiB (sum {sum})")
                }
                Err(e) => format!("denied: {e}"),
            }
        }
        "env" => match std::env::var(target) {
            Ok(value) => format!("done: {value}"),
            Err(e) => format!("denied: {target}: {e}"),
        },
        other => format!("denied: unknown attempt {other:?}"),
    }
}

/// Microseconds since the Unix epoch, for START_DELAY_MS's lines.
fn epoch_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--idle") {
        std::thread::sleep(std::time::Duration::from_secs(30));
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let mut server = Server {
        out: std::io::stdout(),
        calls: 0,
        next_id: 0,
        waiting: HashMap::new(),
        initialized: false,
        echo_delay: Delay::from_args(&args),
    };
    // START_DELAY_MS: a server slow to start (as a Node or Python server
    // loading its modules is), telling when it began and when it is ready
    // (microseconds since the epoch) so that a test can see which starts overlapped.
    if let Some(ms) = std::env::var("START_DELAY_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        eprintln!("mcp-fixture {} starting at {}", std::process::id(), epoch_micros());
        std::thread::sleep(std::time::Duration::from_millis(ms));
        eprintln!("mcp-fixture {} ready at {}", std::process::id(), epoch_micros());
    } else {
        eprintln!("mcp-fixture {} ready", std::process::id());
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(msg) => server.handle(msg),
            Err(e) => eprintln!("bad line: {e}"),
        }
    }
}
