//! `mcpod-bench growth MCPOD_BIN`: how mcpod's cost grows with its work.
//! One `mcpod serve` (release) with the Rust fixture server: first 1, 10,
//! 100 and 1,000 client sessions on one shared server, then 1, 10 and 100
//! servers; at each step, sequential `tools/call`s made in turn by every
//! session (so that every session is in use) give the latency, the CPU
//! mcpod spent per call, its resident memory, open file descriptors and
//! the processes under it; then a burst (every session calls at once).
//! Last, what is left once the servers are stopped and once the idle
//! sessions are reaped. docs/benchmarks.md records the results.

use crate::faults::{Host, initialize, post, rss_kib};
use crate::legacy::{SseSession, WsSession};
use crate::peers::{Era, HttpClient};
use crate::stats::{Samples, fmt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Calls measured at each step.
const CALLS: usize = 2000;

/// One handshake-era session, on a client shared by all of them (one
/// connection pool, as one application with many users would have).
struct Session {
    url: String,
    id: String,
}

async fn open(http: &reqwest::Client, url: &str) -> anyhow::Result<Session> {
    let id = initialize(http, url, "growth").await?.map_err(|c| anyhow::anyhow!("initialize at {url}: HTTP {c}"))?;
    Ok(Session { url: url.to_string(), id })
}

/// Opens Streamable HTTP sessions at `url` until `sessions` holds `n`, 50 at a time.
async fn open_until(http: &reqwest::Client, url: &str, sessions: &mut Vec<Client>, n: usize) -> anyhow::Result<()> {
    while sessions.len() < n {
        let batch = (n - sessions.len()).min(50);
        let opened = futures_util::future::join_all((0..batch).map(|_| open(http, url))).await;
        for s in opened {
            sessions.push(Client::Streamable(s?));
        }
    }
    Ok(())
}

/// Opens clients of `kind` of server `id` until `clients` holds `n`, 50 at a time.
async fn open_kind(
    host: &Host,
    http: &reqwest::Client,
    kind: &str,
    id: &str,
    clients: &mut Vec<Client>,
    n: usize,
) -> anyhow::Result<()> {
    let url = format!("{}/servers/{id}/mcp", host.base);
    let ws_base = host.base.replacen("http", "ws", 1);
    while clients.len() < n {
        let batch = (n - clients.len()).min(50);
        let opened = futures_util::future::join_all((0..batch).map(|_| async {
            Ok::<_, anyhow::Error>(match kind {
                "sse" => Client::Sse(SseSession::open(http, &host.base, id).await?),
                "ws" => Client::Ws(Box::new(WsSession::open(&ws_base, id).await?)),
                "stateless" => Client::Stateless(HttpClient::open_era(&url, Era::Stateless).await?),
                _ => Client::Streamable(open(http, &url).await?),
            })
        }))
        .await;
        for c in opened {
            clients.push(c?);
        }
    }
    Ok(())
}

/// A client of any front transport and era.
enum Client {
    /// A Streamable HTTP session (2025-11-25).
    Streamable(Session),
    /// A 2026-07-28 client: no session, `_meta` on every request.
    Stateless(HttpClient),
    /// A legacy HTTP+SSE session.
    Sse(SseSession),
    /// A WebSocket session.
    Ws(Box<WsSession>),
}

impl Client {
    async fn echo(&mut self, http: &reqwest::Client, id: u64) -> anyhow::Result<()> {
        match self {
            Client::Streamable(s) => echo(http, s, id).await,
            Client::Stateless(c) => c.echo().await,
            Client::Sse(s) => s.echo(id).await,
            Client::Ws(s) => s.echo(id).await,
        }
    }
}

/// One echo call; errors unless the echo comes back.
async fn echo(http: &reqwest::Client, s: &Session, id: u64) -> anyhow::Result<()> {
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "ping"}}});
    let (_, v) = post(http, &s.url, Some(&s.id), &msg).await?;
    anyhow::ensure!(v.pointer("/result/content/0/text") == Some(&json!("ping")), "bad echo: {v}");
    Ok(())
}

/// CPU time mcpod has used so far, summed over its threads (ns precision,
/// from the scheduler's own account).
fn cpu_ns(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

/// File descriptors mcpod holds open.
fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Processes below `pid` (its children, theirs, and so on).
fn descendants(pid: i32) -> usize {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // The parent is the second field after the command's closing parenthesis.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut below = vec![pid];
    let mut i = 0;
    while i < below.len() {
        let parent = below[i];
        below.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    below.len() - 1
}

/// What one step measured.
struct Step {
    latency: Samples,
    cpu_per_call: Duration,
    burst: Duration,
    burst_errors: usize,
}

/// `CALLS` sequential calls, each by the next client in turn, then one
/// call by every client at once.
async fn measure(http: &reqwest::Client, pid: i32, clients: &mut [Client]) -> anyhow::Result<Step> {
    for (i, c) in clients.iter_mut().enumerate().take(200) {
        c.echo(http, i as u64 + 1).await?;
    }
    let mut latency = Samples::default();
    let cpu = cpu_ns(pid);
    let n = clients.len();
    for i in 0..CALLS {
        let t = Instant::now();
        clients[i % n].echo(http, 1000 + i as u64).await?;
        latency.push(t.elapsed());
    }
    let cpu_per_call = Duration::from_nanos(cpu_ns(pid).saturating_sub(cpu) / CALLS as u64);
    let t = Instant::now();
    let all = futures_util::future::join_all(clients.iter_mut().map(|c| c.echo(http, 99_999))).await;
    let burst = t.elapsed();
    let burst_errors = all.iter().filter(|r| r.is_err()).count();
    Ok(Step { latency, cpu_per_call, burst, burst_errors })
}

impl Step {
    /// Its cells: p50, p99, CPU per call, the burst and its errors.
    fn cells(&self) -> String {
        format!(
            "{} | {} | {} | {} ({} errors)",
            fmt(self.latency.percentile(50.0)),
            fmt(self.latency.percentile(99.0)),
            fmt(self.cpu_per_call),
            fmt(self.burst),
            self.burst_errors
        )
    }
}

fn row(label: &str, step: &Step, pid: i32) -> String {
    format!(
        "| {label} | {} | {:.1} MiB | {} | {} |",
        step.cells(),
        rss_kib(pid) as f64 / 1024.0,
        fds(pid),
        descendants(pid),
    )
}

/// A row of what is held, with nothing measured.
fn held(label: &str, pid: i32) -> String {
    format!(
        "| {label} | — | — | — | — | {:.1} MiB | {} | {} |",
        rss_kib(pid) as f64 / 1024.0,
        fds(pid),
        descendants(pid)
    )
}

/// Runs the steps and prints markdown tables.
pub async fn run(root: PathBuf, bin: PathBuf) -> anyhow::Result<()> {
    let idle_secs = 20;
    let host = Host::start(
        &bin,
        &root,
        &format!(
            "max_sessions_per_server = 2000\nmax_sessions_per_principal = 5000\nmax_servers_per_principal = 500\nsession_idle_secs = {idle_secs}"
        ),
    )
    .await?;
    let pid = host.pid();
    let http = reqwest::Client::new();
    println!("$ mcpod-bench growth {}\n", bin.display());
    println!(
        "{CALLS} sequential `tools/call`s of echo per step, made by each session in turn; the burst is one call by every session at once.\n"
    );
    println!(
        "| step | p50 | p99 | mcpod CPU per call | burst: all answered after | mcpod RSS | mcpod fds | processes under mcpod |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!("{}", held("started, no server", pid));
    let first = host.server().await?;
    let url = format!("{}/servers/{first}/mcp", host.base);
    let mut sessions = Vec::new();
    for n in [1, 10, 100, 1000] {
        open_until(&http, &url, &mut sessions, n).await?;
        let step = measure(&http, pid, &mut sessions).await?;
        println!("{}", row(&format!("{n} session{} on one shared server", if n == 1 { "" } else { "s" }), &step, pid));
    }
    // Servers: each with one session of its own; the calls go to each server in turn.
    let mut servers = vec![first];
    let mut per_server = vec![sessions.remove(0)];
    for n in [10, 100] {
        while servers.len() < n {
            let id = host.server().await?;
            per_server.push(Client::Streamable(open(&http, &format!("{}/servers/{id}/mcp", host.base)).await?));
            servers.push(id);
        }
        let step = measure(&http, pid, &mut per_server).await?;
        println!("{}", row(&format!("{n} shared servers, one session each (and the 999 idle sessions)"), &step, pid));
    }
    for id in &servers[1..] {
        http.delete(format!("{}/api/v1/servers/{id}", host.base)).send().await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("{}", held("99 of the servers stopped", pid));
    // A per-session server: one process per session.
    let v: Value = http
        .post(format!("{}/api/v1/servers", host.base))
        .json(&json!({"server_type": "fixture-command", "sharing": "per-session"}))
        .send()
        .await?
        .json()
        .await?;
    let own = v["server_id"].as_str().ok_or_else(|| anyhow::anyhow!("the start failed: {v}"))?.to_string();
    let mut instances = Vec::new();
    open_until(&http, &format!("{}/servers/{own}/mcp", host.base), &mut instances, 100).await?;
    let step = measure(&http, pid, &mut instances).await?;
    println!("{}", row("100 sessions on a per-session server (100 instances)", &step, pid));
    // Every session left is abandoned, never closed: the idle reaper ends them.
    drop(sessions);
    drop(instances);
    let reaped_by = Instant::now() + Duration::from_secs(idle_secs + 20);
    let left = loop {
        let mut open = 0;
        for id in [&servers[0], &own] {
            let v: Value = http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await?.json().await?;
            open += v["sessions"].as_u64().unwrap_or(u64::MAX / 4);
        }
        // The first server's own session (in `per_server`) is still in use.
        if open <= 1 || Instant::now() > reaped_by {
            break open;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let label = format!("every session abandoned, then reaped (`session_idle_secs = {idle_secs}`): {left} left open");
    println!("{}", held(&label, pid));
    drop(host);
    transports(&root, &bin).await
}

/// Every front transport and era on a fresh host: 1, 100 and 1,000
/// clients of each on one shared server, then what is left once they close.
async fn transports(root: &std::path::Path, bin: &std::path::Path) -> anyhow::Result<()> {
    let host = Host::start(
        bin,
        root,
        "max_sessions_per_server = 5000\nmax_sessions_per_principal = 10000\nmax_connections = 8192",
    )
    .await?;
    let pid = host.pid();
    let http = reqwest::Client::new();
    let id = host.server().await?;
    println!(
        "\nEvery transport and era, on a fresh host: each row opens its clients, measures as above, then closes them all.\n"
    );
    println!(
        "| transport, era | clients | p50 | p99 | mcpod CPU per call | burst: all answered after | mcpod RSS / fds with them open | after they closed |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| (started, one server) | 0 | — | — | — | — | {:.1} MiB / {} | |",
        rss_kib(pid) as f64 / 1024.0,
        fds(pid)
    );
    let kinds = [
        ("streamable", "Streamable HTTP, 2025-11-25 session"),
        ("stateless", "Streamable HTTP, 2026-07-28 (no session)"),
        ("sse", "HTTP+SSE (2024-11-05), 2025-11-25 session"),
        ("ws", "WebSocket, 2025-11-25 session"),
    ];
    for (kind, label) in kinds {
        for n in [1, 100, 1000] {
            let mut clients = Vec::new();
            open_kind(&host, &http, kind, &id, &mut clients, n).await?;
            let step = measure(&http, pid, &mut clients).await?;
            let open = format!("{:.1} MiB / {}", rss_kib(pid) as f64 / 1024.0, fds(pid));
            if let Some(Client::Streamable(_)) = clients.first() {
                for c in &clients {
                    if let Client::Streamable(s) = c {
                        let _ = http.delete(&s.url).header("mcp-session-id", &s.id).send().await;
                    }
                }
            }
            drop(clients);
            tokio::time::sleep(Duration::from_secs(2)).await;
            println!(
                "| {label} | {n} | {} | {open} | {:.1} MiB / {} |",
                step.cells(),
                rss_kib(pid) as f64 / 1024.0,
                fds(pid)
            );
        }
    }
    let v: Value = http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await?.json().await?;
    println!("\nSessions the server still counts at the end: {}", v["sessions"]);
    Ok(())
}
