//! The `mcpod` binary seen from a shell: `plugins list`, `plugins check`,
//! a third-party plugin built as docs/plugins.md says, and `serve`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

fn mcpod(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
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
    let deno = host.get("deno", PluginKind::ServerType).unwrap();
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

#[test]
fn serve_answers_health_and_lists_plugins() {
    use std::io::{BufRead, BufReader, Read, Write};
    let cache = tempfile::tempdir().unwrap();
    let config = root().join("config/mcpod.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("XDG_CACHE_HOME", cache.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mcpod serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("mcpod listening on http://").unwrap_or_else(|| panic!("{line}")).to_string();
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    };
    let health = get("/healthz");
    let plugins = get("/api/v1/plugins");
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok"), "{health}");
    assert!(plugins.contains("\"name\":\"stdio\"") && plugins.contains("\"status\":\"loaded\""), "{plugins}");
}
