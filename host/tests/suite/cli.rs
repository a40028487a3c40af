//! The `mcpod` binary seen from a shell: `plugins list`, `plugins check`,
//! a third-party plugin built as docs/plugins.md says, and `serve`.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mcpod(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("XDG_STATE_HOME", cache)
        .env_remove("RUST_LOG")
        .output()
        .expect("run mcpod")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn plugins_list_shows_every_builtin_with_its_world() {
    let cache = tempfile::tempdir().unwrap();
    let config = root().join("config/mcpod.toml");
    let out = mcpod(&["plugins", "list", "--config", config.to_str().unwrap()], cache.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("NAME"), "{stdout}");
    assert!(stdout.contains("stdio") && stdout.contains("builtin:stdio"), "{stdout}");
    assert!(stdout.contains("mcpod:plugin/protocol-adapter@0.1.0"), "{stdout}");

    let out = mcpod(&["plugins", "list", "--json", "--config", config.to_str().unwrap()], cache.path());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON rows");
    for kind in ["server-type", "template-catalog", "package-registry", "protocol-adapter"] {
        assert!(rows.iter().any(|r| r["kind"] == kind && r["status"] == "loaded"), "no {kind}: {rows:?}");
    }
}

#[test]
fn plugins_check_names_the_world_or_says_why_not() {
    let cache = tempfile::tempdir().unwrap();
    let stdio = builtin_artifact("mcpod-adapter-stdio");
    let out = mcpod(&["plugins", "check", stdio.to_str().unwrap()], cache.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("implements mcpod:plugin/protocol-adapter@0.1.0"), "{stdout}");

    let sneaky = fixture("mcpod-test-sneaky-adapter");
    let out = mcpod(&["plugins", "check", sneaky.to_str().unwrap()], cache.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("implements no mcpod world"), "{stderr}");
    assert!(stderr.contains("mcpod:plugin/http@0.1.0"), "{stderr}");

    let junk = cache.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let out = mcpod(&["plugins", "check", "--kind", "server-type", junk.to_str().unwrap()], cache.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("not a WebAssembly component"), "{stderr}");

    let out = mcpod(&["plugins", "check", "--kind", "nonsense", junk.to_str().unwrap()], cache.path());
    assert!(!out.status.success());
    assert!(text(&out).1.contains("unknown kind"), "{}", text(&out).1);
}

/// The build command docs/plugins.md gives third-party authors.
const DOCS_BUILD: &str = "cargo build --release --target wasm32-wasip2";

fn build_example() -> PathBuf {
    let docs = std::fs::read_to_string(root().join("docs/plugins.md")).expect("docs/plugins.md");
    assert!(docs.contains(DOCS_BUILD), "docs/plugins.md no longer shows `{DOCS_BUILD}`");
    let example = root().join("examples/deno-plugin");
    let code = std::fs::read_to_string(example.join("src/lib.rs")).expect("the example's src/lib.rs");
    assert!(docs.contains(&code), "docs/plugins.md must show examples/deno-plugin/src/lib.rs as it is");
    let target = wasm_target().with_file_name("example");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(DOCS_BUILD.split_whitespace().skip(1))
        .current_dir(&example)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the example plugin as the docs say failed");
    target.join("wasm32-wasip2/release/mcpod_deno_plugin.wasm")
}

#[test]
fn a_third_party_plugin_built_as_the_docs_say_loads_from_a_file() {
    let wasm = build_example();
    let cache = tempfile::tempdir().unwrap();
    let out = mcpod(&["plugins", "check", wasm.to_str().unwrap()], cache.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("implements mcpod:plugin/server-type@0.1.0"), "{stdout}");
    assert!(stdout.contains("plugin `deno`"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&wasm, dir.path().join("deno.wasm")).unwrap();
    let config = dir.path().join("mcpod.toml");
    std::fs::write(
        &config,
        "[plugin_runtime]\nbuiltins = false\n\n[[plugins]]\nname = \"deno\"\nkind = \"server-type\"\nsource = \"deno.wasm\"\n[plugins.config]\nimage = \"denoland/deno:2.2.0\"\n",
    )
    .unwrap();
    let out = mcpod(&["plugins", "list", "--json", "--config", config.to_str().unwrap()], cache.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "deno");
    assert_eq!(rows[0]["source"], dir.path().join("deno.wasm").display().to_string());
    assert_eq!(rows[0]["world"], "mcpod:plugin/server-type@0.1.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_third_party_server_type_turns_configs_into_launch_specs() {
    use mcpod::config::PluginKind;
    use mcpod::plugin::bindings::ServerConfig;
    let wasm = tokio::task::spawn_blocking(build_example).await.unwrap();
    let mut config = bare_config();
    let mut entry = file_entry("deno", PluginKind::ServerType, &wasm);
    entry.config.insert("image".into(), toml::Value::String("denoland/deno:2.2.0".into()));
    config.plugins = vec![entry];
    let host = mcpod::plugin::PluginHost::load(&config).await.unwrap();
    let deno = host.server_type("deno").unwrap();
    let cfg = |package: &str| ServerConfig {
        server_type: "deno".into(),
        package: Some(package.into()),
        version: Some("1.0.0".into()),
        image: None,
        args: vec!["--root".into(), "/tmp".into()],
        env: Vec::new(),
        transport: None,
        port: None,
        path: None,
        options: Vec::new(),
    };
    let spec = deno.launch(&cfg("@modelcontextprotocol/server-memory")).await.unwrap();
    let container = spec.container.unwrap();
    assert_eq!(container.image, "denoland/deno:2.2.0");
    assert_eq!(
        container.command,
        ["deno", "run", "--allow-all", "npm:@modelcontextprotocol/server-memory@1.0.0", "--root", "/tmp"]
    );
    let problems = deno.validate(&cfg("$(id)")).await.unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field.as_deref(), Some("package"));
}

#[tokio::test]
async fn a_first_start_generates_an_admin_token_that_the_cli_uses_and_others_lack() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("config-home");
    let config = root().join("config/mcpod.toml");
    // As the README runs it: no token anywhere, no flag.
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("XDG_CACHE_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .env("XDG_CONFIG_HOME", &home)
            .env_remove("MCPOD_API_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start mcpod serve")
    };
    let mut child = start();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    let file = home.join("mcpod/token");
    let token = std::fs::read_to_string(&file).expect("the generated token file").trim().to_string();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "readable by its owner only");
    mcpod::tls::install_provider();
    let http = reqwest::Client::new();
    let get = async |path: &str, token: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("GET");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    };
    assert_eq!(get("/healthz", None).await, (200, "ok".to_string()), "probes need no token");
    let (status, body) = get("/api/v1/plugins", None).await;
    assert_eq!(status, 401, "no token, no API: {body}");
    assert!(body.contains("mcpod tokens admin"), "the refusal says where the token is: {body}");
    let (status, _) = get("/servers/any-1/mcp", None).await;
    assert_eq!(status, 401, "no token, no MCP front");
    let (status, plugins) = get("/api/v1/plugins", Some(&token)).await;
    assert_eq!(status, 200, "{plugins}");
    assert!(plugins.contains("\"name\":\"stdio\"") && plugins.contains("\"status\":\"loaded\""), "{plugins}");

    // The CLI on this machine finds the token by itself.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(args)
            .env("MCPOD_API", &base)
            .env("XDG_CONFIG_HOME", &home)
            .env_remove("MCPOD_API_TOKEN")
            .output()
            .unwrap()
    };
    let listed = cli(&["servers", "list"]);
    assert!(listed.status.success(), "{}", text(&listed).1);
    assert_eq!(text(&cli(&["tokens", "admin"])).0.trim(), token);
    assert_eq!(text(&cli(&["tokens", "admin", "--path"])).0.trim(), file.display().to_string());
    let _ = child.kill();
    let _ = child.wait();
    let mut first_stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut first_stderr).unwrap();
    assert!(
        first_stderr.contains(&file.display().to_string()),
        "the first start says where the token is: {first_stderr}"
    );
    assert!(!first_stderr.contains(&token), "and never prints the token itself: {first_stderr}");

    // The next start keeps the same token, and says nothing more about it.
    let mut child = start();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mut second_stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut second_stderr).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    assert!(!second_stderr.contains("generated an admin token"), "{second_stderr}");
}

#[test]
fn running_without_a_token_takes_the_explicit_flag_and_warns_on_every_start() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", root().join("config/mcpod.toml").to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .arg("--insecure-no-auth")
        .env("XDG_CACHE_HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("MCPOD_API_TOKEN")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("WARN") && stderr.contains("without any token"), "{stderr}");
    assert!(!dir.path().join("mcpod/token").exists(), "no token generated when auth is off");
}

/// A config with the fixture server type, for `mcpod serve` in a child process.
fn fixture_config(dir: &Path, extra: &str) -> PathBuf {
    let file = dir.join("mcpod.toml");
    std::fs::write(
        &file,
        format!(
            // The suite's raw configs set these; a caller's env is an allow-list.
            "{extra}\n[[plugins]]\nname = \"fixture-command\"\nkind = \"server-type\"\nsource = {:?}\n[plugins.config]\nprogram = {:?}\n[policy]\nenv_allow = [\"*_API_KEY\", \"MODE\"]\n",
            fixture("mcpod-test-fixture-command").display().to_string(),
            fixture_server().display().to_string()
        ),
    )
    .unwrap();
    file
}

/// Starts a fixture server with `sharing` on the host at `base`; its id.
async fn start_fixture(base: &str, sharing: &str) -> String {
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/servers"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"server_type": "fixture-command", "sharing": sharing}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["server_id"].as_str().unwrap_or_else(|| panic!("the start failed: {v}")).to_string()
}

/// Starts `mcpod serve`; returns the child and its base URL.
fn serve(
    config: &Path,
    cache: &Path,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpod"));
    cmd.args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("XDG_CACHE_HOME", cache)
        .env("XDG_CONFIG_HOME", cache)
        .env("XDG_STATE_HOME", cache)
        .env_remove("MCPOD_API_TOKEN")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start mcpod serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    (child, base)
}

/// Runs the CLI against `base`.
fn client(base: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpod"));
    // No generated token file of this machine's user is found by accident.
    cmd.args(args).env("MCPOD_API", base).env_remove("MCPOD_API_TOKEN").env("XDG_CONFIG_HOME", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mcpod")
}

#[test]
fn a_non_loopback_listen_address_needs_a_token() {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", root().join("config/mcpod.toml").to_str().unwrap()])
        .env("MCPOD_LISTEN", "0.0.0.0:0")
        .env("XDG_CACHE_HOME", cache.path())
        .env("XDG_STATE_HOME", cache.path())
        .env_remove("MCPOD_API_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out).1;
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without an API token"), "{stderr}");
    assert!(stderr.contains("MCPOD_API_TOKEN"), "and says what to do: {stderr}");
}

#[test]
fn the_cli_drives_a_host_with_a_token_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "");
    let (mut host, base) = serve(&config, dir.path(), &[("MCPOD_API_TOKEN", "tok-123")], std::process::Stdio::null());
    let token = [("MCPOD_API_TOKEN", "tok-123")];

    let refused = client(&base, &["servers", "list"], &[]);
    assert!(!refused.status.success(), "no token, no API");
    assert!(text(&refused).1.contains("401") || text(&refused).1.contains("unauthorized"), "{}", text(&refused).1);
    let refused = client(&base, &["servers", "list"], &[("MCPOD_API_TOKEN", "wrong")]);
    assert!(!refused.status.success());

    let started = client(
        &base,
        &["servers", "start", "--type", "fixture-command", "--env", "MODE=cli", "--env", "SERVICE_API_KEY=sk-hidden"],
        &token,
    );
    let (stdout, stderr) = text(&started);
    assert!(started.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("sk-hidden"), "a secret is never shown: {stdout}");
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("fixture-command-"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();

    let table = text(&client(&base, &["servers", "list"], &token)).0;
    assert!(table.starts_with("ID") || table.starts_with("SERVER"), "a table with a header: {table}");
    assert!(table.contains(&id) && table.contains("ready"), "{table}");
    let status = text(&client(&base, &["servers", "status", &id], &token)).0;
    assert!(status.contains(&id) && status.contains("echo"), "status shows the tools: {status}");
    let json: serde_json::Value =
        serde_json::from_str(&text(&client(&base, &["servers", "status", &id, "--json"], &token)).0).unwrap();
    assert_eq!(json["server_id"], id.as_str());
    assert!(!json.to_string().contains("sk-hidden"), "{json}");

    // The fixture writes one line to stderr at start; `servers logs` shows it.
    let logs = text(&client(&base, &["servers", "logs", &id], &token)).0;
    assert!(logs.contains("mcp-fixture") && logs.contains("ready"), "{logs}");

    // An instance handle: its endpoint, then closed (the token guards both).
    assert!(!client(&base, &["servers", "open-instance", &id], &[]).status.success(), "no token, no handle");
    let endpoint = text(&client(&base, &["servers", "open-instance", &id], &token)).0.trim().to_string();
    let prefix = format!("{base}/servers/{id}/instances/");
    let handle =
        endpoint.strip_prefix(&prefix).and_then(|h| h.strip_suffix("/mcp")).unwrap_or_else(|| panic!("{endpoint}"));
    assert_eq!(handle.len(), 32, "{endpoint}");
    let closed = client(&base, &["servers", "close-instance", &id, handle], &token);
    assert!(closed.status.success(), "{}", text(&closed).1);
    let again = client(&base, &["servers", "close-instance", &id, handle], &token);
    assert!(!again.status.success() && text(&again).1.contains("no such instance handle"), "{}", text(&again).1);

    let stopped = client(&base, &["servers", "stop", &id], &token);
    assert!(text(&stopped).0.contains(&format!("stopped {id}")), "{}", text(&stopped).0);
    let _ = host.kill();
    let _ = host.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn server_processes_end_when_the_host_is_stopped() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "");
    let (mut host, base) =
        serve(&config, dir.path(), &[("MCPOD_INSECURE_NO_AUTH", "true")], std::process::Stdio::null());
    let mut pids = Vec::new();
    for sharing in ["shared", "per-session"] {
        let id = start_fixture(&base, sharing).await;
        let s = McpSession::open(&format!("{base}/servers/{id}/mcp")).await;
        let who = tool_text(&s.call(1, "whoami", serde_json::json!({})).await);
        pids.push(who.split_whitespace().next().unwrap().trim_start_matches("pid=").parse::<i32>().unwrap());
    }
    assert!(pids.iter().all(|p| Path::new(&format!("/proc/{p}")).exists()));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(host.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let exited = tokio::task::spawn_blocking(move || host.wait()).await.unwrap().unwrap();
    assert!(exited.success(), "a clean shutdown: {exited:?}");
    for pid in pids {
        let gone = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        });
        assert!(gone, "server process {pid} outlived the host");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_a_legacy_sse_stream_open_and_a_hung_server_exits_within_the_grace_and_leaves_no_process() {
    use futures_util::StreamExt;
    use nix::sys::signal::{Signal, kill};
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "[limits]\nshutdown_grace_secs = 2\n");
    let (mut host, base) =
        serve(&config, dir.path(), &[("MCPOD_INSECURE_NO_AUTH", "true")], std::process::Stdio::null());
    let http = reqwest::Client::new();
    let id = start_fixture(&base, "shared").await;
    let s = McpSession::open(&format!("{base}/servers/{id}/mcp")).await;
    let who = tool_text(&s.call(1, "whoami", serde_json::json!({})).await);
    let pid = who.split_whitespace().next().unwrap().trim_start_matches("pid=").parse::<i32>().unwrap();
    let sse = http.get(format!("{base}/servers/{id}/sse")).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(sse.status(), 200);
    let mut sse = sse.bytes_stream();
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let caller = s.clone();
    let call = tokio::spawn(async move { caller.call(2, "echo", serde_json::json!({"message": "hung"})).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    kill(nix::unistd::Pid::from_raw(host.id() as i32), Signal::SIGTERM).unwrap();
    // Bounded wait: a host that hangs on the open stream fails here, not the suite.
    let waited = tokio::task::spawn_blocking(move || {
        for _ in 0..300 {
            if let Some(status) = host.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = host.kill();
        None
    })
    .await
    .unwrap();
    let status = waited.expect("mcpod exited after SIGTERM although a legacy SSE stream was open");
    assert!(status.success(), "{status:?}");
    let answer = call.await.unwrap();
    assert!(answer["error"]["message"].as_str().unwrap_or("").contains("shutting down"), "{answer}");
    while let Ok(Some(Ok(_))) = tokio::time::timeout(std::time::Duration::from_secs(5), sse.next()).await {}
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "the stopped server process {pid} outlived the host");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_server_session_and_request_ids_and_never_a_secret() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "[log]\nformat = \"json\"\nlevel = \"mcpod=debug,info\"\n");
    let log = dir.path().join("stderr.log");
    let (mut host, base) =
        serve(&config, dir.path(), &[("MCPOD_INSECURE_NO_AUTH", "true")], std::fs::File::create(&log).unwrap().into());
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/servers"))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"server_type": "fixture-command", "env": {"SERVICE_API_KEY": "sk-never-logged"}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let id = resp.json::<serde_json::Value>().await.unwrap()["server_id"].as_str().unwrap().to_string();
    let s = McpSession::open(&format!("{base}/servers/{id}/mcp")).await;
    assert_eq!(tool_text(&s.call(41, "echo", serde_json::json!({"message": "logged"})).await), "logged");
    let _ = host.kill();
    let _ = host.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("sk-never-logged"), "a secret reached the logs");
    let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty() && lines.len() == text.lines().count(), "every line is JSON: {text}");
    let request =
        lines.iter().find(|l| l["request"] == "41").unwrap_or_else(|| panic!("no log line for request 41: {text}"));
    assert_eq!(request["server"], id.as_str(), "{request}");
    assert_eq!(request["session"], s.id.clone().unwrap().as_str(), "{request}");
    assert_eq!(request["method"], "tools/call", "{request}");
    assert!(
        lines.iter().any(|l| l["server"] == id.as_str() && l["target"] == "mcpod::server"),
        "the server's stderr, with its id"
    );
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    use std::io::Read;
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["templates", "list", "--json"])
        .env("XDG_CACHE_HOME", cache.path())
        .env("XDG_STATE_HOME", cache.path())
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A pipe smaller than the output (about 10 KiB), so that the CLI is
    // still writing when the reader goes: read one byte, then close it.
    let mut stdout = child.stdout.take().unwrap();
    nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let _ = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "no panic on a closed pipe: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_ready_only_when_the_local_runtime_can_spawn_and_says_why_not() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "");
    let ask = async |base: &str| -> (u16, serde_json::Value) {
        let resp = reqwest::get(format!("{base}/readyz")).await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    };
    let (mut host, base) =
        serve(&config, dir.path(), &[("MCPOD_INSECURE_NO_AUTH", "true")], std::process::Stdio::null());
    let (status, body) = ask(&base).await;
    assert_eq!(
        (status, &body["ready"], &body["runtime_ready"]),
        (200, &serde_json::json!(true), &serde_json::json!(true)),
        "{body}"
    );
    let _ = host.kill();
    let _ = host.wait();
    // A PATH with no programs on it: no server could start, so not ready.
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().display().to_string();
    let (mut host, base) = serve(
        &config,
        dir.path(),
        &[("MCPOD_INSECURE_NO_AUTH", "true"), ("PATH", path.as_str())],
        std::process::Stdio::null(),
    );
    let (status, body) = ask(&base).await;
    assert_eq!(
        (status, &body["ready"], &body["runtime_ready"]),
        (503, &serde_json::json!(false), &serde_json::json!(false)),
        "{body}"
    );
    assert!(body["runtime_problem"].as_str().unwrap().contains("PATH"), "{body}");
    let _ = host.kill();
    let _ = host.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_host_never_gives_an_old_servers_id_to_a_new_server() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (mut host, base) =
            serve(&config, dir.path(), &[("MCPOD_INSECURE_NO_AUTH", "true")], std::process::Stdio::null());
        seen.push(start_fixture(&base, "shared").await);
        seen.push(start_fixture(&base, "shared").await);
        let _ = host.kill();
        let _ = host.wait();
    }
    assert_eq!(seen, ["fixture-command-1", "fixture-command-2", "fixture-command-3", "fixture-command-4"]);
    let kept = std::fs::read_to_string(dir.path().join("mcpod/next-server-number")).unwrap();
    assert_eq!(kept.trim(), "5");
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_start_request_timeout_gives_the_server_its_own_limit() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "");
    let (mut host, base) =
        serve(&config, dir.path(), &[("MCPOD_INSECURE_NO_AUTH", "true")], std::process::Stdio::null());
    let out = client(
        &base,
        &["servers", "start", "--type", "fixture-command", "--sharing", "shared", "--request-timeout", "1", "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let id =
        serde_json::from_str::<serde_json::Value>(&text(&out).0).unwrap()["server_id"].as_str().unwrap().to_string();
    let s = McpSession::open(&format!("{base}/servers/{id}/mcp")).await;
    // The default limit is 60 s; this server's is 1 s.
    let late = s.call(1, "sleep", serde_json::json!({"ms": 4000})).await;
    assert_eq!(late["error"]["code"], -32001, "{late}");
    assert!(late["error"]["message"].as_str().unwrap().contains("request_timeout_secs"), "{late}");
    let refused = client(&base, &["servers", "start", "--type", "fixture-command", "--request-timeout", "0"], &[]);
    assert!(!refused.status.success());
    let _ = host.kill();
    let _ = host.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_add_writes_a_working_entry_beside_the_users_own_and_remove_takes_it_back() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cursor_file = home.join(".cursor/mcp.json");
    std::fs::create_dir_all(cursor_file.parent().unwrap()).unwrap();
    let own = r#"{"mcpServers": {"mine": {"command": "node", "args": ["/srv/mine.js"]}}}"#;
    std::fs::write(&cursor_file, own).unwrap();
    let config = fixture_config(dir.path(), "");
    // The host requires a token (its generated admin token, and the named
    // tokens of the same machine's token file).
    let (mut host, base) = serve(&config, dir.path(), &[], std::process::Stdio::null());
    let as_user = [("HOME", home.to_str().unwrap()), ("XDG_CONFIG_HOME", dir.path().to_str().unwrap())];
    let out =
        client(&base, &["servers", "start", "--type", "fixture-command", "--sharing", "shared", "--json"], &as_user);
    assert!(out.status.success(), "{}", text(&out).1);
    let id =
        serde_json::from_str::<serde_json::Value>(&text(&out).0).unwrap()["server_id"].as_str().unwrap().to_string();

    let listed = client(&base, &["clients", "list"], &as_user);
    let (table, _) = text(&listed);
    let cursor_row = table.lines().find(|l| l.starts_with("cursor")).unwrap_or_else(|| panic!("{table}"));
    assert!(cursor_row.contains("yes") && cursor_row.contains("mine") && !cursor_row.contains("mine*"), "{table}");

    let added = client(&base, &["clients", "add", "cursor", "--server", &id], &as_user);
    assert!(added.status.success(), "{}", text(&added).1);
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cursor_file).unwrap()).unwrap();
    assert_eq!(written["mcpServers"]["mine"]["command"], "node", "the user's own entry stays: {written}");
    let entry = &written["mcpServers"][format!("mcpod-{id}").as_str()];
    let url = entry["url"].as_str().unwrap_or_else(|| panic!("{written}"));
    assert_eq!(url, format!("{base}/servers/{id}/mcp"));
    let backups: Vec<_> = std::fs::read_dir(cursor_file.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("mcp.json.mcpod-backup-"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(backups[0].path()).unwrap(), own);

    // The entry works as the client will use it: its URL and its own token
    // (a user token: it may use servers, not start them).
    let token = entry["headers"]["Authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_string();
    let mut ready = false;
    for _ in 0..50 {
        // The host reads a changed token file within two seconds.
        let probe = reqwest::Client::new()
            .post(format!("{base}/api/v1/servers"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        if probe.status().as_u16() == 403 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the new token is a user's: known to the host, and refused a start");
    let session = McpSession::open_as(url, &token).await;
    assert_eq!(tool_text(&session.call(1, "echo", serde_json::json!({"message": "from cursor"})).await), "from cursor");
    let listed = text(&client(&base, &["clients", "list"], &as_user)).0;
    assert!(listed.contains(&format!("mcpod-{id}*")), "{listed}");

    // Never an entry mcpod did not write, nor one edited since.
    let clobber = client(&base, &["clients", "add", "cursor", "--server", &id, "--name", "mine"], &as_user);
    assert!(!clobber.status.success());
    assert!(text(&clobber).1.contains("mcpod did not write"), "{}", text(&clobber).1);
    let refused = client(&base, &["clients", "remove", "cursor", "mine"], &as_user);
    assert!(!refused.status.success(), "{}", text(&refused).0);
    let unknown = client(&base, &["clients", "add", "notepad", "--server", &id], &as_user);
    assert!(text(&unknown).1.contains("claude-code"), "{}", text(&unknown).1);

    // A virtual server: created with the CLI, written into VS Code's own file.
    let made = client(&base, &["virtual", "create", "team", "--server", &id], &as_user);
    assert!(made.status.success(), "{}", text(&made).1);
    assert!(text(&made).0.contains("/virtual/team/mcp"), "{}", text(&made).0);
    let vscode = client(&base, &["clients", "add", "vscode", "--virtual", "team"], &as_user);
    assert!(vscode.status.success(), "{}", text(&vscode).1);
    let vs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("Code/User/mcp.json")).unwrap()).unwrap();
    assert_eq!(vs["servers"]["mcpod-team"]["type"], "http", "{vs}");
    assert_eq!(vs["servers"]["mcpod-team"]["url"], format!("{base}/virtual/team/mcp"), "{vs}");
    let vs_token = vs["servers"]["mcpod-team"]["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let mut through = None;
    for _ in 0..50 {
        let probe = reqwest::Client::new()
            .get(format!("{base}/api/v1/virtual/team"))
            .bearer_auth(&vs_token)
            .send()
            .await
            .unwrap();
        if probe.status().is_success() {
            through = Some(McpSession::open_as(&format!("{base}/virtual/team/mcp"), &vs_token).await);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let through = through.expect("the VS Code entry's token reaches the virtual server");
    let key_echo = format!("{id}__echo");
    assert_eq!(tool_text(&through.call(1, &key_echo, serde_json::json!({"message": "via team"})).await), "via team");

    let removed = client(&base, &["clients", "remove", "cursor", &format!("mcpod-{id}")], &as_user);
    assert!(removed.status.success(), "{}", text(&removed).1);
    let after: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cursor_file).unwrap()).unwrap();
    assert_eq!(after["mcpServers"].as_object().unwrap().keys().collect::<Vec<_>>(), ["mine"], "{after}");
    let tokens = std::fs::read_to_string(dir.path().join("mcpod/tokens.toml")).unwrap();
    assert!(!tokens.contains(&format!("cursor.mcpod-{id}")), "the entry's token is revoked: {tokens}");
    let _ = host.kill();
    let _ = host.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_start_runs_a_command_after_the_double_dash_and_fronts_it_as_a_remote_with_a_header() {
    mcpod::tls::install_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), "");
    // `[policy]` is the file's last table: these keys land in it.
    let mut text_of = std::fs::read_to_string(&config).unwrap();
    text_of.push_str("allow_commands = true\nallow_remote_hosts = [\"127.0.0.1:*\"]\n");
    std::fs::write(&config, text_of).unwrap();
    let (mut host, base) = serve(&config, dir.path(), &[("MCPOD_API_TOKEN", "admin-t")], std::process::Stdio::null());
    let as_admin = [("MCPOD_API_TOKEN", "admin-t")];
    let fixture = fixture_server().display().to_string();
    let out = client(
        &base,
        &["servers", "start", "--type", "command", "--sharing", "shared", "--json", "--", &fixture],
        &as_admin,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let id =
        serde_json::from_str::<serde_json::Value>(&text(&out).0).unwrap()["server_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("command-"), "{id}");
    // The same host, reached as a remote server through itself: the header carries its token.
    let url = format!("{base}/servers/{id}/mcp");
    let out = client(
        &base,
        &["servers", "start", "--type", "remote", "--url", &url, "--header", "Authorization=Bearer admin-t", "--json"],
        &as_admin,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let (shown, _) = text(&out);
    assert!(shown.contains("\"ready\"") && !shown.contains("admin-t"), "{shown}");
    let _ = host.kill();
    let _ = host.wait();
}
