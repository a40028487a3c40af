//! `mcpod-bench faults MCPOD_BIN`: what clients see when things go wrong,
//! against a real `mcpod serve` and the Rust fixture server. Each row is a
//! fault made on purpose (a server stopped or killed under load, SIGTERM
//! with calls and streams open, more sessions than the limit) and what
//! every client got, with the time it took. docs/reliability.md records
//! the results.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// One `mcpod serve` with the fixture server type, on a port of its own.
pub(crate) struct Host {
    child: tokio::process::Child,
    pub(crate) base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Host {
    pub(crate) async fn start(bin: &Path, root: &Path, limits: &str) -> anyhow::Result<Host> {
        let plugin = root.join("target/wasm/wasm32-wasip2/plugin/mcpod_test_fixture_command.wasm");
        let fixture = root.join("target/release/mcp-fixture");
        anyhow::ensure!(
            plugin.exists() && fixture.exists(),
            "build the fixtures first: cargo build --release -p mcpod-fixture-server and cargo test -p mcpod --test suite front:: (it builds {})",
            plugin.display()
        );
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("mcpod.toml");
        std::fs::write(
            &config,
            format!(
                "[log]\nlevel = \"warn\"\n[audit]\nsink = \"off\"\n[limits]\nrestart_backoff_ms = 50\n{limits}\n[[plugins]]\nname = \"fixture-command\"\nkind = \"server-type\"\nsource = {:?}\n[plugins.config]\nprogram = {:?}\n",
                plugin.display().to_string(),
                fixture.display().to_string()
            ),
        )?;
        let mut child = tokio::process::Command::new(bin)
            .args(["serve", "--insecure-no-auth", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("XDG_CACHE_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("mcpod has no stdout"))?;
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(60), tokio::io::BufReader::new(stdout).read_line(&mut line)).await??;
        let base = line
            .trim()
            .strip_prefix("mcpod listening on ")
            .ok_or_else(|| anyhow::anyhow!("mcpod said {line:?}, not where it listens"))?
            .to_string();
        Ok(Host { child, base, http: reqwest::Client::new(), _dir: dir })
    }

    /// Starts a shared fixture server; its id.
    pub(crate) async fn server(&self) -> anyhow::Result<String> {
        let v: Value = self
            .http
            .post(format!("{}/api/v1/servers", self.base))
            .json(&json!({"server_type": "fixture-command", "sharing": "shared"}))
            .send()
            .await?
            .json()
            .await?;
        v["server_id"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("the start failed: {v}"))
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id().map(|p| p as i32).unwrap_or(-1)
    }
}

/// A Streamable HTTP session.
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    url: String,
    id: String,
}

/// What a POST answered: its status and its JSON-RPC message (from a JSON
/// body or the first event of an SSE body).
pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    msg: &Value,
) -> anyhow::Result<(u16, Value)> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.body(msg.to_string()).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    // A JSON body, or the event-stream's message (after any priming event).
    let msg = std::iter::once(text.as_str())
        .chain(text.lines().filter_map(|l| l.strip_prefix("data:")))
        .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok().filter(Value::is_object))
        .unwrap_or_else(|| json!({"status": status, "body": text}));
    Ok((status, msg))
}

/// Initializes a Streamable HTTP session at `url` with `http` as client
/// `client`: its id, or the HTTP status that refused it.
pub(crate) async fn initialize(http: &reqwest::Client, url: &str, client: &str) -> anyhow::Result<Result<String, u16>> {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}});
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await?;
    if !resp.status().is_success() {
        return Ok(Err(resp.status().as_u16()));
    }
    let id = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("no session id from {url}"))?
        .to_string();
    let _ = resp.text().await?;
    post(http, url, Some(&id), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
    Ok(Ok(id))
}

impl Session {
    async fn open(url: &str) -> anyhow::Result<Result<Session, u16>> {
        let http = reqwest::Client::new();
        Ok(initialize(&http, url, "faults").await?.map(|id| Session { http, url: url.to_string(), id }))
    }

    async fn call(&self, id: u64, tool: &str, args: Value) -> anyhow::Result<Value> {
        let msg =
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}});
        Ok(post(&self.http, &self.url, Some(&self.id), &msg).await?.1)
    }

    /// The fixture process's pid.
    async fn server_pid(&self) -> anyhow::Result<i32> {
        let v = self.call(900, "whoami", json!({})).await?;
        let text = v["result"]["content"][0]["text"].as_str().unwrap_or_default();
        text.split_whitespace()
            .next()
            .and_then(|p| p.strip_prefix("pid="))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("whoami said {v}"))
    }
}

fn signal(pid: i32, sig: &str) -> anyhow::Result<()> {
    let ok = std::process::Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status()?.success();
    anyhow::ensure!(ok, "kill -{sig} {pid} failed");
    Ok(())
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn code(v: &Value) -> String {
    match v["error"]["code"].as_i64() {
        Some(c) => c.to_string(),
        None if v["result"].is_object() => "result".into(),
        None => format!("nothing ({v})"),
    }
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) { crate::stats::fmt(d) } else { format!("{:.2} s", d.as_secs_f64()) }
}

/// Waits for `child` to exit, at most `limit`; how long it took.
async fn exit_time(child: &mut tokio::process::Child, since: Instant, limit: Duration) -> Option<Duration> {
    tokio::time::timeout(limit, child.wait()).await.ok().map(|_| since.elapsed())
}

pub async fn run(root: PathBuf, bin: PathBuf) -> anyhow::Result<()> {
    println!("$ mcpod-bench faults {}\n", bin.display());
    println!("| fault | what the clients got | time |\n|---|---|---|");

    // 1. A server that stops answering (SIGSTOP) during a call.
    {
        let host = Host::start(&bin, &root, "request_timeout_secs = 2").await?;
        let id = host.server().await?;
        let s = Session::open(&format!("{}/servers/{id}/mcp", host.base)).await?.map_err(|c| anyhow::anyhow!("{c}"))?;
        let pid = s.server_pid().await?;
        signal(pid, "STOP")?;
        let t = Instant::now();
        let v = s.call(1, "echo", json!({"message": "x"})).await?;
        let waited = t.elapsed();
        let names = v["error"]["message"].as_str().is_some_and(|m| m.contains("request_timeout_secs"));
        println!(
            "| server stopped (SIGSTOP) during a call, `request_timeout_secs = 2` | {}{} | {} |",
            code(&v),
            if names { ", naming `limits.request_timeout_secs`" } else { "" },
            secs(waited)
        );
        signal(pid, "CONT")?;
        let t = Instant::now();
        let v = s.call(2, "echo", json!({"message": "y"})).await?;
        println!("| the same server resumed (SIGCONT): next call | {} | {} |", code(&v), secs(t.elapsed()));
    }

    // 2. A server killed under 20 calls in flight.
    {
        let host = Host::start(&bin, &root, "").await?;
        let id = host.server().await?;
        let s = Session::open(&format!("{}/servers/{id}/mcp", host.base)).await?.map_err(|c| anyhow::anyhow!("{c}"))?;
        let pid = s.server_pid().await?;
        let calls: Vec<_> = (0..20u64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let v = s.call(10 + i, "sleep", json!({"ms": 30_000})).await;
                    (v, Instant::now())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let killed = Instant::now();
        signal(pid, "KILL")?;
        let mut codes = Vec::new();
        let mut last = Duration::ZERO;
        for c in calls {
            let (v, at) = c.await?;
            codes.push(code(&v?));
            last = last.max(at.saturating_duration_since(killed));
        }
        let answered = codes.iter().filter(|c| *c == "-32001").count();
        println!(
            "| server killed (SIGKILL) under 20 calls in flight | {answered}/20 got -32001 | the last {} after the kill |",
            secs(last)
        );
        let t = Instant::now();
        let v = s.call(99, "echo", json!({"message": "again"})).await?;
        println!("| the next call, served by the restarted server | {} | {} |", code(&v), secs(t.elapsed()));
    }

    // 3. SIGTERM with 15 calls in flight (the fixture serves them one at a time).
    {
        let mut host = Host::start(&bin, &root, "shutdown_grace_secs = 10").await?;
        let id = host.server().await?;
        let s = Session::open(&format!("{}/servers/{id}/mcp", host.base)).await?.map_err(|c| anyhow::anyhow!("{c}"))?;
        let server = s.server_pid().await?;
        let calls: Vec<_> = (0..15u64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { s.call(10 + i, "sleep", json!({"ms": 300})).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        signal(host.pid(), "TERM")?;
        let mut ok = 0;
        for c in calls {
            if c.await?.is_ok_and(|v| v["result"].is_object()) {
                ok += 1;
            }
        }
        let exit = exit_time(&mut host.child, t, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!(
            "| SIGTERM with 15 calls in flight (300 ms each, served one at a time), grace 10 s | {ok}/15 answered with their result; server process {} | exit after {} |",
            if alive(server) { "left running" } else { "gone" },
            exit.map(secs).unwrap_or_else(|| "none within 60 s".into())
        );
    }

    // 4. SIGTERM with a legacy SSE stream open and a stopped server.
    {
        let mut host = Host::start(&bin, &root, "shutdown_grace_secs = 2").await?;
        let id = host.server().await?;
        let s = Session::open(&format!("{}/servers/{id}/mcp", host.base)).await?.map_err(|c| anyhow::anyhow!("{c}"))?;
        let server = s.server_pid().await?;
        let sse = host
            .http
            .get(format!("{}/servers/{id}/sse", host.base))
            .header("accept", "text/event-stream")
            .send()
            .await?;
        anyhow::ensure!(sse.status().is_success(), "the SSE stream opened with {}", sse.status());
        signal(server, "STOP")?;
        let hung = {
            let s = s.clone();
            tokio::spawn(async move { s.call(5, "echo", json!({"message": "never"})).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        signal(host.pid(), "TERM")?;
        let exit = exit_time(&mut host.child, t, Duration::from_secs(60)).await;
        let v = hung.await?.unwrap_or(Value::Null);
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!(
            "| SIGTERM with a legacy SSE stream open and a stopped server, grace 2 s | the waiting call got {}; server process {} | exit after {} |",
            code(&v),
            if alive(server) { "left running" } else { "gone" },
            exit.map(secs).unwrap_or_else(|| "none within 60 s".into())
        );
        drop(sse);
    }

    // 5. More sessions than a server takes.
    {
        let host = Host::start(&bin, &root, "").await?;
        let id = host.server().await?;
        let url = format!("{}/servers/{id}/mcp", host.base);
        let canary = Session::open(&url).await?.map_err(|c| anyhow::anyhow!("{c}"))?;
        let t = Instant::now();
        let opens: Vec<_> = (0..1000)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Session::open(&url).await })
            })
            .collect();
        let (mut admitted, mut refused, mut other) = (Vec::new(), 0, 0);
        for o in opens {
            match o.await? {
                Ok(Ok(s)) => admitted.push(s),
                Ok(Err(429)) => refused += 1,
                _ => other += 1,
            }
        }
        let took = t.elapsed();
        let mut correct = 0;
        for (i, s) in admitted.iter().enumerate() {
            let v = s.call(1, "add", json!({"a": i, "b": 1})).await?;
            if v["result"]["content"][0]["text"].as_str() == Some(&(i + 1).to_string()) {
                correct += 1;
            }
        }
        let c = canary.call(2, "echo", json!({"message": "still here"})).await?;
        println!(
            "| 1,000 sessions opened at once on one shared server (limit 256, one canary open before) | {} admitted ({correct} answered correctly), {refused} refused with 429, {other} other; canary: {} | {} for all 1,000 |",
            admitted.len(),
            code(&c),
            secs(took)
        );
    }

    // 6. Slow and silent connections.
    {
        let host = Host::start(&bin, &root, "read_timeout_secs = 5\nmax_connections = 1024").await?;
        let rss_before = rss_kib(host.pid());
        let addr = host.base.trim_start_matches("http://").to_string();
        let t = Instant::now();
        let attack: Vec<_> = (0..2300)
            .map(|i| {
                let addr = addr.clone();
                tokio::spawn(async move { hold(&addr, i >= 2000).await })
            })
            .collect();
        // A new client while they are open.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c = Instant::now();
        let fresh = reqwest::Client::new()
            .get(format!("{}/healthz", host.base))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map(|r| r.status().as_u16());
        let canary = (fresh, c.elapsed());
        let rss_during = rss_kib(host.pid());
        let (mut closed, mut kept, mut unconnected) = (Vec::new(), 0, 0);
        for a in attack {
            match a.await? {
                Held::Closed(d) => closed.push(d),
                Held::Open => kept += 1,
                Held::NotConnected => unconnected += 1,
            }
        }
        closed.sort();
        // What mcpod itself holds now (the client side of a connection the
        // kernel never queued for accept stays "open" on the client only).
        let metrics = host.http.get(format!("{}/metrics", host.base)).send().await?.text().await?;
        let held_by_mcpod = metrics
            .lines()
            .find_map(|l| l.strip_prefix("mcpod_connections_open "))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into());
        println!(
            "| 2,000 silent + 300 slowloris connections (a header byte a second) at once; `read_timeout_secs = 5`, `max_connections = 1024` | {} closed by mcpod (median after {}, last after {}), {kept} open on the client's side at 60 s (mcpod's `mcpod_connections_open` then: {held_by_mcpod}, counting the scrape), {unconnected} never connected; a new client's request meanwhile: {} after {}; mcpod RSS {} → {} KiB | {} |",
            closed.len(),
            closed.get(closed.len() / 2).map(|d| secs(*d)).unwrap_or_default(),
            closed.last().map(|d| secs(*d)).unwrap_or_default(),
            canary.0.map(|s| s.to_string()).unwrap_or_else(|e| format!("no answer ({e})")),
            secs(canary.1),
            rss_before,
            rss_during,
            secs(t.elapsed())
        );
    }
    Ok(())
}

/// What became of one attacking connection.
enum Held {
    /// The host closed it after this long (from the first connect attempt).
    Closed(Duration),
    /// Still open after 60 s.
    Open,
    /// It never connected (the listen backlog was full), or failed otherwise.
    NotConnected,
}

/// Opens a connection to `addr` and sends nothing (or, `slow`, a header
/// byte a second), until the host closes it or 60 s pass.
async fn hold(addr: &str, slow: bool) -> Held {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Instant::now();
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(60), tokio::net::TcpStream::connect(addr)).await
    else {
        return Held::NotConnected;
    };
    let header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut buf = [0u8; 256];
    let mut sent = 0;
    while t.elapsed() < Duration::from_secs(60) {
        if slow && sent < header.len() && stream.write_all(&header[sent..sent + 1]).await.is_err() {
            return Held::Closed(t.elapsed());
        }
        sent += 1;
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Held::Closed(t.elapsed()),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    Held::Open
}

/// The resident memory of process `pid`, in KiB (0 if unknown).
pub(crate) fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
