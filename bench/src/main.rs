//! mcpod's benchmarks. Each prints the command that produced it and a
//! table; docs/benchmarks.md records the results.
//!
//! `mcpod-bench plugins`: host→plugin call overhead and instantiation.
//! `mcpod-bench startup MCPOD_BIN`: `mcpod serve` start to ready, cache cold and warm.
//! `mcpod-bench peers MCPOD_BIN`: mcpod beside supergateway and mcp-proxy.
//! `mcpod-bench auth`: what token checks and access policies add per call.
//! `mcpod-bench faults MCPOD_BIN`: what clients see when servers hang, die or the host stops.

mod auth;
mod faults;
mod growth;
mod legacy;
mod peers;
mod stats;
mod virtuals;

use mcpod::config::Config;
use mcpod::frame::Frame;
use mcpod::plugin::{AdapterSession, PluginHost};
use stats::Samples;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // reqwest, here and in mcpod's library, is built without a default TLS provider.
    mcpod::tls::install_provider();
    match args.get(1).map(String::as_str) {
        Some("plugins") => plugins().await,
        Some("startup") => {
            let bin = args.get(2).ok_or_else(|| anyhow::anyhow!("usage: mcpod-bench startup PATH/TO/mcpod"))?;
            startup(bin).await
        }
        Some("peers") => {
            let bin = args.get(2).ok_or_else(|| anyhow::anyhow!("usage: mcpod-bench peers PATH/TO/mcpod"))?;
            let root = std::env::current_dir()?;
            peers::run(root, std::path::PathBuf::from(bin)).await
        }
        Some("growth") => {
            let bin = args.get(2).ok_or_else(|| anyhow::anyhow!("usage: mcpod-bench growth PATH/TO/mcpod"))?;
            growth::run(std::env::current_dir()?, std::path::PathBuf::from(bin)).await
        }
        Some("auth") => auth::run(std::env::current_dir()?).await,
        Some("virtual") => virtuals::run(&std::env::current_dir()?).await,
        Some("faults") => {
            let bin = args.get(2).ok_or_else(|| anyhow::anyhow!("usage: mcpod-bench faults PATH/TO/mcpod"))?;
            faults::run(std::env::current_dir()?, std::path::PathBuf::from(bin)).await
        }
        Some("pipe-proxy") => {
            let (Some(port), Some(program)) = (args.get(2), args.get(3)) else {
                anyhow::bail!("usage: mcpod-bench pipe-proxy PORT PROGRAM [ARGS...]");
            };
            let upstream =
                peers::Upstream { label: program.clone(), program: program.into(), args: args[4..].to_vec() };
            peers::pipe_proxy(&upstream, port.parse()?).await
        }
        _ => anyhow::bail!(
            "usage: mcpod-bench plugins | startup PATH/TO/mcpod | peers PATH/TO/mcpod | growth PATH/TO/mcpod | auth | faults PATH/TO/mcpod | virtual"
        ),
    }
}

/// A JSON-RPC request of exactly 1 KiB plus its newline.
fn one_kib_message() -> String {
    let head = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"message":""#;
    let tail = r#""}}}"#;
    let pad = 1024 - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// Decode and encode of a 1 KiB message in a warm session of `stdio`.
fn frame_costs(stdio: &mcpod::plugin::AdapterPlugin) -> anyhow::Result<(Samples, Samples)> {
    let msg = one_kib_message();
    let line = format!("{msg}\n");
    assert_eq!(msg.len(), 1024);
    let mut session = AdapterSession::open(stdio.clone(), 1 << 20)?;
    for _ in 0..2_000 {
        session.decode(line.as_bytes())?;
    }
    let mut decode = Samples::default();
    for _ in 0..20_000 {
        let t = Instant::now();
        let frames = session.decode(line.as_bytes())?;
        decode.push(t.elapsed());
        assert_eq!(frames.len(), 1);
    }
    let mut encode = Samples::default();
    for _ in 0..20_000 {
        // The message's text is made before the clock starts, as the
        // upstreams make it before they encode it.
        let frame = Frame::message(msg.clone());
        let t = Instant::now();
        session.encode(frame)?;
        encode.push(t.elapsed());
    }
    Ok((decode, encode))
}

async fn plugins() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.plugin_runtime.cache = false;
    // The plugin runtime's costs: the built-in stdio adapter in wasm.
    config.plugin_runtime.native_adapters = false;
    let host = PluginHost::load(&config).await?;
    let stdio = host.adapter("stdio")?;
    let (decode, encode) = frame_costs(&stdio)?;
    config.plugin_runtime.native_adapters = true;
    let native_host = PluginHost::load(&config).await?;
    let (native_decode, native_encode) = frame_costs(&native_host.adapter("stdio")?)?;
    let mut open = Samples::default();
    for _ in 0..500 {
        let t = Instant::now();
        let _s = AdapterSession::open(stdio.clone(), 1 << 20)?;
        open.push(t.elapsed());
    }
    let mut info = Samples::default();
    for _ in 0..500 {
        let t = Instant::now();
        stdio.call_info().await?;
        info.push(t.elapsed());
    }
    println!("command: cargo run --release -p mcpod-bench -- plugins   (pooling allocator: {})", host.pooling());
    println!("{}", Samples::header());
    println!("{}", decode.row("adapter decode, 1 KiB JSON-RPC (warm session)"));
    println!("{}", encode.row("adapter encode, 1 KiB JSON-RPC (warm session)"));
    println!("{}", native_decode.row("the same decode, the built-in adapter run natively"));
    println!("{}", native_encode.row("the same encode, the built-in adapter run natively"));
    println!("{}", open.row("adapter session open (store + instance + framer)"));
    println!("{}", info.row("fresh store + instantiate + one call (info)"));
    Ok(())
}

async fn startup(bin: &str) -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let mut cold = Samples::default();
    let mut warm = Samples::default();
    for round in 0..10 {
        let dir = cache.path().join(format!("cold{round}"));
        cold.push(ready_time(bin, &dir).await?);
        warm.push(ready_time(bin, &dir).await?);
    }
    println!("command: cargo run --release -p mcpod-bench -- startup target/release/mcpod");
    println!("{}", Samples::header());
    println!("{}", cold.row("mcpod serve to /readyz, compile cache cold"));
    println!("{}", warm.row("mcpod serve to /readyz, compile cache warm"));
    Ok(())
}

/// Starts `mcpod serve` with the default config and cache in `cache`, and
/// times until `/readyz` answers 200.
async fn ready_time(bin: &str, cache: &std::path::Path) -> anyhow::Result<Duration> {
    let port = peers::free_port()?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("mcpod.toml");
    std::fs::write(&config, format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"warn\"\n"))?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .args(["serve", "--insecure-no-auth", "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", cache)
        .env("XDG_STATE_HOME", cache)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = started + Duration::from_secs(30);
    let (probe, url) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}/readyz"));
    loop {
        if Instant::now() > deadline {
            anyhow::bail!("mcpod did not become ready within 30 s");
        }
        if probe.get(&url).send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            let took = started.elapsed();
            child.kill().await?;
            return Ok(took);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
