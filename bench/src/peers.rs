//! mcpod beside supergateway and mcp-proxy, all over Streamable HTTP, in
//! front of the same upstream on stdio (the Rust fixture server, or with
//! `BENCH_UPSTREAM=everything` the npm `@modelcontextprotocol/server-everything`
//! on Node that the tests install), driven by the same client code; plus the
//! floor: the same client talking to the server over stdio directly.
//! `BENCH_FIXTURE_ARGS` passes the fixture its knobs (`--echo-spin-us 70`,
//! `--echo-sleep-us 70`: a server that works or waits that long per call).
//! mcpod runs as `mcpod serve` does by default; `BENCH_AUDIT=off`,
//! `BENCH_NATIVE_ADAPTERS=false` and `BENCH_CGROUPS=false` take away its
//! audit records, its natively run stdio adapter, and its upstream's
//! control group (docs/benchmarks.md).

use crate::stats::Samples;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Which revision the bench's client speaks.
#[derive(Clone, Copy, PartialEq)]
pub enum Era {
    /// 2025-06-18: `initialize`, then a session.
    Handshake,
    /// 2026-07-28: no session; `_meta` and routing headers on every request.
    Stateless,
}

/// One Streamable HTTP client (a session in the handshake era).
pub struct HttpClient {
    url: String,
    session: Option<String>,
    http: reqwest::Client,
    next: u64,
    era: Era,
}

impl HttpClient {
    /// A client of `era` at `url`; in the handshake era, an initialized session.
    pub async fn open_era(url: &str, era: Era) -> anyhow::Result<HttpClient> {
        let mut c = HttpClient { url: url.to_string(), session: None, http: reqwest::Client::new(), next: 1, era };
        if era == Era::Stateless {
            return Ok(c);
        }
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        let resp = c.post(&init).await?;
        anyhow::ensure!(resp.get("result").is_some(), "initialize failed at {url}: {resp}");
        c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
        Ok(c)
    }

    /// Initializes a handshake-era session at `url`.
    pub async fn open(url: &str) -> anyhow::Result<HttpClient> {
        HttpClient::open_era(url, Era::Handshake).await
    }

    async fn post(&mut self, msg: &Value) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(
                "accept",
                std::env::var("BENCH_ACCEPT").unwrap_or_else(|_| "application/json, text/event-stream".into()),
            )
            .body(msg.to_string());
        req = match self.era {
            Era::Handshake => req.header("mcp-protocol-version", "2025-06-18"),
            Era::Stateless => {
                let method = msg["method"].as_str().unwrap_or_default().to_string();
                let name = msg["params"]["name"].as_str().map(str::to_string);
                let req = req.header("mcp-protocol-version", "2026-07-28").header("mcp-method", method);
                match name {
                    Some(n) => req.header("mcp-name", n),
                    None => req,
                }
            }
        };
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await?;
        if let Some(s) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            self.session = Some(s.to_string());
        }
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let body = resp.text().await?;
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        if sse {
            for line in body.lines().rev() {
                if let Some(d) = line.strip_prefix("data:") {
                    let v: Value = serde_json::from_str(d.trim())?;
                    if v.get("id").is_some() {
                        return Ok(v);
                    }
                }
            }
            anyhow::bail!("no response in the event stream");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// One `tools/call` of `echo`; errors unless the echo comes back.
    pub async fn echo(&mut self) -> anyhow::Result<()> {
        let id = self.next;
        self.next += 1;
        let mut call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "ping"}}});
        if self.era == Era::Stateless {
            call["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}});
        }
        let resp = self.post(&call).await?;
        anyhow::ensure!(
            // The fixture echoes `ping`, server-everything `Echo: ping`.
            resp.pointer("/result/content/0/text").and_then(Value::as_str).is_some_and(|t| t.ends_with("ping")),
            "bad echo: {resp}"
        );
        Ok(())
    }
}

/// The server behind every path: a program and its arguments.
#[derive(Clone)]
pub struct Upstream {
    /// What the tables call it.
    pub label: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Upstream {
    /// The upstream `BENCH_UPSTREAM` names: `fixture` (default) or `everything`.
    pub fn from_env(root: &Path) -> anyhow::Result<Upstream> {
        match std::env::var("BENCH_UPSTREAM").as_deref() {
            Err(_) | Ok("fixture") => {
                let fixture = root.join("target/release/mcp-fixture");
                anyhow::ensure!(
                    fixture.exists(),
                    "build the fixture first: cargo build --release -p mcpod-fixture-server"
                );
                // BENCH_FIXTURE_ARGS: the fixture's own knobs, such as
                // `--echo-spin-us 70` (a server busy that long per call).
                let args: Vec<String> = std::env::var("BENCH_FIXTURE_ARGS")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                let label = match args.is_empty() {
                    true => "the Rust fixture server".to_string(),
                    false => format!("the Rust fixture server ({})", args.join(" ")),
                };
                Ok(Upstream { label, program: fixture, args })
            }
            Ok("everything") => {
                let pkg = root.join("tests/clients/node_modules/@modelcontextprotocol/server-everything");
                let version = std::fs::read_to_string(pkg.join("package.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v["version"].as_str().map(str::to_string))
                    .ok_or_else(|| anyhow::anyhow!("{} is missing; run the test suite once", pkg.display()))?;
                Ok(Upstream {
                    label: format!("@modelcontextprotocol/server-everything {version} on Node"),
                    program: PathBuf::from("node"),
                    args: vec![pkg.join("dist/index.js").display().to_string(), "stdio".into()],
                })
            }
            Ok(other) => anyhow::bail!("BENCH_UPSTREAM={other}: use fixture or everything"),
        }
    }

    /// The command line, for peers that take one string.
    fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The server with piped stdio, killed when dropped.
    fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
    }
}

/// The next stdout line that answers a request (has an `id`); a server's
/// notifications in between are skipped.
async fn next_answer(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> anyhow::Result<String> {
    loop {
        let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("server closed"))?;
        if line.contains("\"id\"") {
            return Ok(line);
        }
    }
}

/// The floor: the upstream over stdio, no proxy.
struct StdioClient {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next: u64,
}

impl StdioClient {
    async fn open(upstream: &Upstream) -> anyhow::Result<StdioClient> {
        let mut child = upstream.spawn()?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?;
        let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?).lines();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        stdin.write_all(format!("{init}\n").as_bytes()).await?;
        next_answer(&mut lines).await?;
        stdin.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n").await?;
        Ok(StdioClient { _child: child, stdin, lines, next: 1 })
    }

    async fn echo(&mut self) -> anyhow::Result<()> {
        let msg = json!({"jsonrpc": "2.0", "id": self.next, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "ping"}}});
        self.next += 1;
        self.stdin.write_all(format!("{msg}\n").as_bytes()).await?;
        let line = next_answer(&mut self.lines).await?;
        anyhow::ensure!(line.contains("ping"), "bad echo: {line}");
        Ok(())
    }
}

/// A client of any path under test: the floor or a proxy.
enum Client {
    Stdio(Box<StdioClient>),
    Http(HttpClient),
}

impl Client {
    async fn echo(&mut self) -> anyhow::Result<()> {
        match self {
            Client::Stdio(c) => c.echo().await,
            Client::Http(c) => c.echo().await,
        }
    }
}

/// Sequential round trips through every client, interleaved: `rounds`
/// rounds of `per_round` calls each, taking turns, so that the machine's
/// drift (other load, frequency) falls on every path alike.
async fn sequential(clients: &mut [Client], rounds: usize, per_round: usize) -> anyhow::Result<Vec<Samples>> {
    for c in clients.iter_mut() {
        for _ in 0..50 {
            c.echo().await?;
        }
    }
    let mut samples: Vec<Samples> = clients.iter().map(|_| Samples::default()).collect();
    for _ in 0..rounds {
        for (c, s) in clients.iter_mut().zip(samples.iter_mut()) {
            for _ in 0..per_round {
                let t = Instant::now();
                c.echo().await?;
                s.push(t.elapsed());
            }
        }
    }
    Ok(samples)
}

/// Calls per second with `clients` concurrent sessions for `secs`, and errors.
async fn throughput(url: &str, clients: usize, secs: u64, era: Era) -> (f64, usize) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err) = (0usize, 0usize);
            let mut c = match HttpClient::open_era(&url, era).await {
                Ok(c) => c,
                Err(_) => return (0, 1),
            };
            while Instant::now() < deadline {
                match c.echo().await {
                    Ok(()) => ok += 1,
                    Err(_) => err += 1,
                }
            }
            (ok, err)
        }));
    }
    let started = Instant::now();
    let (mut ok, mut err) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap_or((0, 1));
        ok += o;
        err += e;
    }
    (ok as f64 / started.elapsed().as_secs_f64(), err)
}

/// RSS of the proxy with `n` idle sessions open.
async fn idle_memory(url: &str, pid: u32, counts: &[usize]) -> anyhow::Result<Vec<u64>> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    for &n in counts {
        while held.len() < n {
            held.push(HttpClient::open(url).await?);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        out.push(crate::faults::rss_kib(pid as i32));
    }
    Ok(out)
}

/// A proxy under test: its name, endpoint and process.
struct Peer {
    name: &'static str,
    url: String,
    child: tokio::process::Child,
}

async fn wait_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("nothing listens on {port}")
}

/// A port nothing listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_mcpod(root: &Path, mcpod: &Path, upstream: &Upstream) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let dir = tempfile::tempdir()?.keep();
    let plugin = root.join("target/wasm/wasm32-wasip2/plugin/mcpod_test_fixture_command.wasm");
    anyhow::ensure!(
        plugin.exists(),
        "build the fixture plugin first: cargo test -p mcpod --test suite front:: (it builds {})",
        plugin.display()
    );
    let config = dir.join("mcpod.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"warn\"\n[limits]\nmax_sessions_per_server = 1000\n[audit]\nsink = \"{}\"\n[plugin_runtime]\nnative_adapters = {}\n[sandbox]\ncgroups = {}\n[[plugins]]\nname = \"fixture-command\"\nkind = \"server-type\"\nsource = \"{}\"\n[plugins.config]\nprogram = \"{}\"\n",
            // BENCH_AUDIT=off measures mcpod without its audit records
            // (default: stdout, as `mcpod serve` runs; here to /dev/null).
            std::env::var("BENCH_AUDIT").unwrap_or_else(|_| "stdout".to_string()),
            // BENCH_NATIVE_ADAPTERS=false runs the built-in stdio adapter in
            // wasm, as before it was linked into the host.
            std::env::var("BENCH_NATIVE_ADAPTERS").as_deref() != Ok("false"),
            // BENCH_CGROUPS=false runs the upstream without its control
            // group (cpu_limit, memory_limit), as the other paths run it.
            std::env::var("BENCH_CGROUPS").as_deref() != Ok("false"),
            plugin.display(),
            upstream.program.display()
        ),
    )?;
    let child = tokio::process::Command::new(mcpod)
        .args(["serve", "--insecure-no-auth", "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", &dir)
        .env("XDG_STATE_HOME", &dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    wait_port(port).await?;
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/servers"))
        .header("content-type", "application/json")
        .body(json!({"server_type": "fixture-command", "sharing": "shared", "args": upstream.args}).to_string())
        .send()
        .await?
        .text()
        .await?;
    let v: Value = serde_json::from_str(&resp)?;
    let id = v["server_id"].as_str().ok_or_else(|| anyhow::anyhow!("start failed: {resp}"))?;
    Ok(Peer { name: "mcpod", url: format!("http://127.0.0.1:{port}/servers/{id}/mcp"), child })
}

async fn start_supergateway(peers: &Path, upstream: &Upstream) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let child = tokio::process::Command::new(peers.join("node_modules/.bin/supergateway"))
        .args([
            "--stdio",
            &upstream.command_line(),
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--port",
            &port.to_string(),
            "--logLevel",
            "none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    wait_port(port).await?;
    Ok(Peer { name: "supergateway", url: format!("http://127.0.0.1:{port}/mcp"), child })
}

async fn start_mcp_proxy(peers: &Path, upstream: &Upstream) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let child = tokio::process::Command::new(peers.join(".venv/bin/mcp-proxy"))
        .args(["--port", &port.to_string(), "--host", "127.0.0.1", "--"])
        .arg(&upstream.program)
        .args(&upstream.args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    wait_port(port).await?;
    Ok(Peer { name: "mcp-proxy", url: format!("http://127.0.0.1:{port}/mcp"), child })
}

/// The floor's row: its p50 and p99, then `empty` cells.
fn floor_row(floor: &Samples, empty: usize) -> String {
    let p = |q| crate::stats::fmt(floor.percentile(q));
    format!("| floor (stdio, no proxy) | {} | {} |{}", p(50.0), p(99.0), " — |".repeat(empty))
}

/// One path's latency and throughput cells (its row, open at the end for more).
async fn row(name: &str, url: &str, seq: &Samples, floor: Duration, era: Era) -> String {
    let added = seq.percentile(50.0).saturating_sub(floor);
    let (t1, _) = throughput(url, 1, 5, era).await;
    let (t16, _) = throughput(url, 16, 5, era).await;
    let (t64, e64) = throughput(url, 64, 5, era).await;
    let fmt = crate::stats::fmt;
    format!(
        "| {name} | {} | {} | {} | {t1:.0} | {t16:.0} | {t64:.0} | {e64} |",
        fmt(seq.percentile(50.0)),
        fmt(seq.percentile(99.0)),
        fmt(added)
    )
}

/// Runs the comparison and prints markdown tables.
pub async fn run(root: PathBuf, mcpod: PathBuf) -> anyhow::Result<()> {
    let upstream = Upstream::from_env(&root)?;
    let peers_dir = root.join("bench/peers");
    // BENCH_ROUNDS stretches the latency phase, e.g. to attach a profiler.
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    const PER_ROUND: usize = 100;
    let mut peers = vec![start_pipe_proxy(&upstream).await?];
    peers.push(start_mcpod(&root, &mcpod, &upstream).await?);
    match start_supergateway(&peers_dir, &upstream).await {
        Ok(p) => peers.push(p),
        Err(e) => eprintln!("supergateway skipped: {e} (npm install in bench/peers)"),
    }
    match start_mcp_proxy(&peers_dir, &upstream).await {
        Ok(p) => peers.push(p),
        Err(e) => eprintln!(
            "mcp-proxy skipped: {e} (python3 -m venv bench/peers/.venv && bench/peers/.venv/bin/pip install -r bench/peers/requirements.txt)"
        ),
    }
    let only = std::env::var("BENCH_ONLY").ok();
    peers.retain(|p| only.as_deref().is_none_or(|o| o.split(',').any(|o| p.name.starts_with(o))));
    println!("command: cargo run --release -p mcpod-bench -- peers target/release/mcpod");
    println!(
        "upstream: {} (tools/call echo), stdio; client: this bench's Streamable HTTP client; \
         latency: {rounds} rounds of {PER_ROUND} sequential calls per path, the paths taking turns\n",
        upstream.label
    );
    let mut clients = vec![Client::Stdio(Box::new(StdioClient::open(&upstream).await?))];
    for peer in &peers {
        clients.push(Client::Http(HttpClient::open(&peer.url).await?));
    }
    let latency = sequential(&mut clients, rounds, PER_ROUND).await?;
    drop(clients);
    let floor = latency[0].percentile(50.0);
    println!(
        "| path | p50 | p99 | added p50 over floor | calls/s ×1 | ×16 | ×64 | errors ×64 | RSS 1 / 10 / 100 idle sessions |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!("{}", floor_row(&latency[0], 6));
    for (peer, seq) in peers.iter_mut().zip(&latency[1..]) {
        let cells = row(peer.name, &peer.url, seq, floor, Era::Handshake).await;
        let pid = peer.child.id().unwrap_or(0);
        let mem = idle_memory(&peer.url, pid, &[1, 10, 100]).await.unwrap_or_default();
        let mem = mem.iter().map(|k| format!("{:.1} MiB", *k as f64 / 1024.0)).collect::<Vec<_>>().join(" / ");
        println!("{cells} {mem} |");
    }
    python_sdk_rows(&root, &upstream, &peers, rounds * PER_ROUND).await;
    // The same calls from a 2026-07-28 client (no session, `_meta` and
    // routing headers on each request), where a peer can serve one at all.
    println!("\n| path, 2026-07-28 client | p50 | p99 | added p50 over floor | calls/s ×1 | ×16 | ×64 | errors ×64 |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut modern = vec![Client::Stdio(Box::new(StdioClient::open(&upstream).await?))];
    let mut serving = Vec::new();
    for peer in peers.iter().filter(|p| !p.name.starts_with("pipe")) {
        let mut c = HttpClient::open_era(&peer.url, Era::Stateless).await?;
        match c.echo().await {
            Ok(()) => {
                modern.push(Client::Http(c));
                serving.push(peer);
            }
            Err(e) => {
                let why = e.to_string().replace('|', "/").chars().take(120).collect::<String>();
                println!("| {} | fails: {why} | — | — | — | — | — | — |", peer.name);
            }
        }
    }
    let latency = sequential(&mut modern, rounds, PER_ROUND).await?;
    let floor = latency[0].percentile(50.0);
    println!("{}", floor_row(&latency[0], 5));
    for (peer, seq) in serving.iter().zip(&latency[1..]) {
        println!("{}", row(peer.name, &peer.url, seq, floor, Era::Stateless).await);
    }
    Ok(())
}

/// The same sequential calls from the official Python SDK client
/// (`bench/peers/py_latency.py`, with the SDK the tests install in
/// tests/clients/.venv), each path in turn: its p50 and what each proxy adds
/// over the SDK's own stdio floor. Skipped, with why, when the SDK is absent.
async fn python_sdk_rows(root: &Path, upstream: &Upstream, peers: &[Peer], n: usize) {
    let python = root.join("tests/clients/.venv/bin/python");
    let script = root.join("bench/peers/py_latency.py");
    if !python.exists() {
        println!("\n(Python SDK client skipped: {} is missing; run the test suite once)", python.display());
        return;
    }
    let run = |args: Vec<String>| {
        let (python, script) = (python.clone(), script.clone());
        async move {
            let out = tokio::process::Command::new(python).arg(script).args(args).output().await.ok()?;
            let line = String::from_utf8_lossy(&out.stdout).lines().last()?.to_string();
            let v: Value = serde_json::from_str(&line).ok()?;
            Some((v["p50_us"].as_f64()?, v["p99_us"].as_f64()?))
        }
    };
    let mut floor_args = vec!["--stdio".to_string(), n.to_string(), upstream.program.display().to_string()];
    floor_args.extend(upstream.args.iter().cloned());
    println!("\n| path, Python SDK client ({n} sequential calls each) | p50 | p99 | added p50 over its stdio floor |");
    println!("|---|---|---|---|");
    let Some((floor, floor99)) = run(floor_args).await else {
        println!("| floor (stdio, no proxy) | fails | — | — |");
        return;
    };
    println!("| floor (stdio, no proxy) | {floor:.1} µs | {floor99:.1} µs | — |");
    for peer in peers {
        match run(vec![peer.url.clone(), n.to_string()]).await {
            Some((p50, p99)) => {
                println!("| {} | {p50:.1} µs | {p99:.1} µs | {:.1} µs |", peer.name, p50 - floor)
            }
            None => println!("| {} | fails | — | — |", peer.name),
        }
    }
}

/// The least a Streamable HTTP proxy can do, as a floor for proxies: each
/// POST body goes to the server's stdin as a line and, for a request, the
/// next stdout line comes back as the JSON answer. No sessions, no MCP
/// rules, no plugins: what is left of mcpod's time above this is its own.
pub async fn pipe_proxy(upstream: &Upstream, port: u16) -> anyhow::Result<()> {
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    use std::sync::Arc;
    let mut child = upstream.spawn()?;
    let stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?;
    let lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?).lines();
    let pipe = Arc::new(tokio::sync::Mutex::new((stdin, lines)));
    let handler = move |body: String| {
        let pipe = pipe.clone();
        async move {
            let is_request = serde_json::from_str::<Value>(&body).is_ok_and(|v| v.get("id").is_some());
            let mut guard = pipe.lock().await;
            let (stdin, lines) = &mut *guard;
            if stdin.write_all(format!("{body}\n").as_bytes()).await.is_err() {
                return StatusCode::BAD_GATEWAY.into_response();
            }
            if !is_request {
                return StatusCode::ACCEPTED.into_response();
            }
            match next_answer(lines).await {
                Ok(line) => {
                    let mut resp = line.into_response();
                    let headers = resp.headers_mut();
                    headers.insert("content-type", HeaderValue::from_static("application/json"));
                    headers.insert("mcp-session-id", HeaderValue::from_static("pipe"));
                    resp
                }
                _ => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    };
    let app = axum::Router::new().route("/mcp", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn start_pipe_proxy(upstream: &Upstream) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("pipe-proxy")
        .arg(port.to_string())
        .arg(&upstream.program)
        .args(&upstream.args)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    wait_port(port).await?;
    Ok(Peer {
        name: "pipe proxy (axum + one stdio pipe, no MCP logic)",
        url: format!("http://127.0.0.1:{port}/mcp"),
        child,
    })
}
