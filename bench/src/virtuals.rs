//! `mcpod-bench virtual`: what a virtual server adds, in process over
//! loopback HTTP. A `tools/call` of the fixture through its own endpoint
//! and through a virtual server of it alone, interleaved call by call; and
//! `tools/list` of a virtual server of 10 members with 50 tools each (600
//! with the fixture's own), the first page and the whole list, beside one
//! member's own list.

use crate::stats::{Samples, fmt};
use mcpod::config::Config;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

const CALLS: usize = 2_000;
const LISTS: usize = 200;

/// One Streamable HTTP session: its URL, id and client.
struct Session {
    url: String,
    id: String,
    http: reqwest::Client,
}

impl Session {
    async fn open(http: &reqwest::Client, url: &str) -> anyhow::Result<Session> {
        let id = crate::faults::initialize(http, url, "bench")
            .await?
            .map_err(|c| anyhow::anyhow!("initialize at {url}: HTTP {c}"))?;
        Ok(Session { url: url.to_string(), id, http: http.clone() })
    }

    async fn post(&self, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .json(body)
            .send()
            .await?;
        let text = resp.text().await?;
        let json_text = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or(&text);
        Ok(serde_json::from_str(json_text).unwrap_or(Value::Null))
    }

    /// Every page of `tools/list`; the number of tools.
    async fn list_all(&self) -> anyhow::Result<usize> {
        let (mut n, mut cursor) = (0, None::<String>);
        loop {
            let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
            let page = self.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params})).await?;
            n += page["result"]["tools"].as_array().map_or(0, Vec::len);
            match page["result"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(n),
            }
        }
    }
}

/// Runs the benchmark; `root` is the checkout (for the release fixture binary).
pub async fn run(root: &Path) -> anyhow::Result<()> {
    let fixture = root.join("target/release/mcp-fixture");
    if !fixture.exists() {
        anyhow::bail!("build it first: cargo build --release -p mcpod-fixture-server");
    }
    let mut config = Config::default();
    config.server.insecure_no_auth = true;
    config.audit.sink = mcpod::config::AuditSink::Off;
    config.policy.allow_commands = true;
    config.policy.env_allow = vec!["EXTRA_TOOLS".into()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    config.server.listen = listener.local_addr()?;
    let base = format!("http://{}", config.server.listen);
    let app = mcpod::app::build(&config, None).await?;
    let limits = config.limits.connection_limits();
    tokio::spawn(mcpod::listen::serve(
        listener,
        app.router,
        limits,
        app.metrics.connections.clone(),
        std::future::pending(),
    ));
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let start = |extra: usize| {
        let (http, base, fixture) = (http.clone(), base.clone(), fixture.display().to_string());
        async move {
            let body = json!({"server_type": "command", "command": [fixture], "sharing": "shared", "env": {"EXTRA_TOOLS": extra.to_string()}});
            let v: Value = http.post(format!("{base}/api/v1/servers")).json(&body).send().await?.json().await?;
            v["server_id"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("start failed: {v}"))
        }
    };
    let create = |name: &str, members: Vec<Value>| {
        let (http, base) = (http.clone(), base.clone());
        let spec = json!({"name": name, "members": members});
        async move { anyhow::Ok(http.post(format!("{base}/api/v1/virtual")).json(&spec).send().await?.status()) }
    };

    // The hop: one member, its own endpoint against the virtual one.
    let one = start(0).await?;
    create("one", vec![json!({"server": one, "key": "fx"})]).await?;
    let direct = Session::open(&http, &format!("{base}/servers/{one}/mcp")).await?;
    let through = Session::open(&http, &format!("{base}/virtual/one/mcp")).await?;
    let call = |name: &str| json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {"message": "x"}}});
    let (mut d, mut v) = (Samples::default(), Samples::default());
    for i in 0..CALLS + 200 {
        let t = Instant::now();
        let a = direct.post(&call("echo")).await?;
        let dt = t.elapsed();
        let t = Instant::now();
        let b = through.post(&call("fx__echo")).await?;
        let vt = t.elapsed();
        anyhow::ensure!(a["result"].is_object() && b["result"].is_object(), "a call failed: {a} / {b}");
        if i >= 200 {
            d.push(dt);
            v.push(vt);
        }
    }

    // Listings at scale: 10 members of 50 extra tools.
    let mut members = Vec::new();
    for i in 0..10 {
        members.push(json!({"server": start(50).await?, "key": format!("m{i}")}));
    }
    let first = members[0]["server"].as_str().unwrap_or_default().to_string();
    create("ten", members).await?;
    let member = Session::open(&http, &format!("{base}/servers/{first}/mcp")).await?;
    let ten = Session::open(&http, &format!("{base}/virtual/ten/mcp")).await?;
    // The fixture's own tools plus 50 per member: counted, not assumed, so
    // that a tool added to the fixture does not break the bench.
    let per_member = member.list_all().await?;
    let total = ten.list_all().await?;
    anyhow::ensure!(total == 10 * per_member, "the virtual server lists {total} tools, not 10 × {per_member}");
    let page = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let (mut own, mut first_page, mut all) = (Samples::default(), Samples::default(), Samples::default());
    for _ in 0..LISTS {
        let t = Instant::now();
        member.post(&page).await?;
        own.push(t.elapsed());
        let t = Instant::now();
        ten.post(&page).await?;
        first_page.push(t.elapsed());
        let t = Instant::now();
        ten.list_all().await?;
        all.push(t.elapsed());
    }

    println!(
        "command: cargo build --release -p mcpod-bench -p mcpod-fixture-server && ./target/release/mcpod-bench virtual"
    );
    println!("{}", Samples::header());
    println!("{}", d.row("tools/call, the member's own endpoint"));
    println!("{}", v.row("tools/call, through a virtual server of it"));
    println!("{}", own.row(&format!("tools/list, one member ({per_member} tools)")));
    println!("{}", first_page.row(&format!("tools/list, 10 members: first page (100 of {total})")));
    println!("{}", all.row(&format!("tools/list, 10 members: all {} pages", total.div_ceil(100))));
    println!(
        "virtual hop at p50: +{} per call ({:.2}x)",
        fmt(v.percentile(50.0).saturating_sub(d.percentile(50.0))),
        v.percentile(50.0).as_secs_f64() / d.percentile(50.0).as_secs_f64()
    );
    Ok(())
}
