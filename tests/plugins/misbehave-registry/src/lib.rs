//! A deliberately bad package-registry plugin. `search(query)` does what the
//! query says: `ok`, `loop`, `oom`, `panic`, `trap`, `big`, `fetch:URL`,
//! `config:KEY`, `spin:MS` (busy for MS milliseconds, then ok), and the
//! sandbox probes `env:NAME`, `file:PATH`, `connect:ADDR` (each reports what
//! the guest saw: a value, or the error it got).

use mcpod_plugin_sdk::package_registry::*;

/// The plugin.
pub struct Misbehave;

impl Plugin for Misbehave {
    fn info() -> PluginInfo {
        plugin_info("misbehave", "0.0.1", "misbehaves on request")
    }
}

fn summary(name: &str, description: String) -> PackageSummary {
    PackageSummary { name: name.to_string(), version: "1.0.0".to_string(), description: Some(description) }
}

impl PackageRegistry for Misbehave {
    fn search(query: String, _limit: u32) -> Result<Vec<PackageSummary>, PluginError> {
        match query.as_str() {
            "ok" => Ok(vec![summary("ok", "fine".to_string())]),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("deliberate panic for the test suite"),
            "trap" => std::process::abort(),
            "big" => Ok((0..10_000).map(|i| summary(&format!("p{i}"), "x".repeat(1024))).collect()),
            q if q.starts_with("spin:") => {
                let ms: u64 = q[5..].parse().unwrap_or(0);
                let start = std::time::Instant::now();
                while start.elapsed().as_millis() < ms as u128 {
                    std::hint::black_box(start);
                }
                Ok(vec![summary("spun", format!("{ms} ms"))])
            }
            q if q.starts_with("fetch:") => {
                let resp = http_get(&q[6..], &[])?;
                let body = String::from_utf8_lossy(&resp.body).to_string();
                Ok(vec![summary("fetched", format!("{} {}", resp.status, body))])
            }
            q if q.starts_with("config:") => {
                Ok(vec![summary("config", config_value(&q[7..]).unwrap_or_else(|| "<unset>".to_string()))])
            }
            q if q.starts_with("env:") => {
                let seen = std::env::var(&q[4..]).unwrap_or_else(|_| "<unset>".to_string());
                Ok(vec![summary("env", format!("{seen} ({} vars)", std::env::vars().count()))])
            }
            q if q.starts_with("file:") => {
                let seen = match std::fs::read(&q[5..]) {
                    Ok(bytes) => format!("read {} bytes", bytes.len()),
                    Err(e) => format!("denied: {e}"),
                };
                Ok(vec![summary("file", seen)])
            }
            q if q.starts_with("connect:") => {
                let seen = match std::net::TcpStream::connect(&q[8..]) {
                    Ok(_) => "connected".to_string(),
                    Err(e) => format!("denied: {e}"),
                };
                Ok(vec![summary("connect", seen)])
            }
            other => Err(PluginError::invalid("query", format!("unknown behaviour {other:?}"))),
        }
    }

    fn versions(name: String) -> Result<PackageVersions, PluginError> {
        Err(PluginError::not_found(format!("no package {name}")))
    }

    fn describe(name: String, _version: Option<String>) -> Result<PackageInfo, PluginError> {
        Err(PluginError::not_found(format!("no package {name}")))
    }

    fn exists(_name: String, _version: Option<String>) -> Result<bool, PluginError> {
        Ok(false)
    }
}

mcpod_plugin_sdk::export_package_registry!(Misbehave);
