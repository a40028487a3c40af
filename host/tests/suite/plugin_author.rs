//! What a plugin author meets when a plugin goes wrong: a failing catalog
//! costs only its own templates (API and CLI), a failed plugin says why
//! wherever it is named, a panic is logged by `serve` without Rust's
//! backtrace hint, input names are checked at load and by `plugins check`,
//! and `mcpod templates` asks the running host.

use crate::support::*;
use mcpod::catalog;
use mcpod::config::PluginKind;
use mcpod::plugin::PluginHost;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const CATALOG: &str = "mcpod-test-misbehave-catalog";

/// The misbehaving catalog's component, built once per test process.
fn bad_catalog() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(|| wasm::build(&root(), &wasm_target(), &[CATALOG])) {
        panic!("building {CATALOG} failed: {e}");
    }
    wasm::artifact(&wasm_target(), CATALOG)
}

/// A `[[plugins]]` entry for the misbehaving catalog named `name`, in `mode`.
fn catalog_entry(name: &str, mode: Option<&str>) -> mcpod::config::PluginEntry {
    let mut entry = file_entry(name, PluginKind::TemplateCatalog, &bad_catalog());
    if let Some(mode) = mode {
        entry.config.insert("mode".into(), toml::Value::String(mode.into()));
    }
    entry
}

/// Runs the CLI in `dir` with no token and no API address from this machine.
fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpod"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("MCPOD_API")
        .env_remove("MCPOD_API_TOKEN")
        .env_remove("MCPOD_CONFIG")
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_CACHE_HOME", dir)
        .env("XDG_STATE_HOME", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mcpod")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

async fn get(host: &TestHost, path: &str) -> (u16, Value) {
    let resp = host.http.get(format!("{}{path}", host.base)).send().await.expect("GET");
    (resp.status().as_u16(), resp.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_that_panics_costs_only_its_own_templates_in_the_api_and_the_cli() {
    let host = start_host(|c| c.plugins.push(catalog_entry("broken", Some("panic")))).await;
    let (status, list) = get(&host, "/api/v1/templates").await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().expect("an array");
    assert!(list.iter().filter(|t| t["catalog"] == "builtin").count() >= 15, "the built-ins stay: {list:?}");
    let failed: Vec<&Value> = list.iter().filter(|t| t.get("error").is_some()).collect();
    assert_eq!(failed.len(), 1, "{list:?}");
    assert_eq!(failed[0]["catalog"], "broken");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("panicked in `list-templates`") && error.contains("deliberate panic"), "{error}");
    assert!(!error.contains("RUST_BACKTRACE"), "no hint a host user cannot act on: {error}");
    let (status, time) = get(&host, "/api/v1/templates/time").await;
    assert_eq!((status, &time["name"]), (200, &json!("time")), "a failing catalog does not hide another's: {time}");

    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["templates", "list", "--api", &host.base], &[]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a failed catalog is a failure: {stdout}{stderr}");
    assert!(stdout.starts_with("NAME") && stdout.contains("brave-search"), "{stdout}{stderr}");
    assert!(stdout.contains("catalog `broken`: plugin `broken` panicked"), "beside the others: {stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trapping_catalog_loaded_first_leaves_the_listing_and_the_lookup_to_the_others() {
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    config.plugins.push(catalog_entry("a-broken", Some("trap")));
    let host = PluginHost::load(&config).await.unwrap();
    let listing = catalog::listing(&host).await;
    assert!(listing.templates.iter().any(|t| t.template.name == "time"), "{:?}", listing.failures);
    assert_eq!(listing.failures.len(), 1);
    assert_eq!(listing.failures[0].catalog, "a-broken");
    assert!(catalog::list_templates(&host).await.is_err(), "the strict listing reports the failure");
    let found = catalog::find_template(&host, "time").await.expect("found past the broken catalog");
    assert_eq!(found.catalog, "builtin");
    let missing = catalog::find_template(&host, "no-such-template").await.unwrap_err();
    assert!(missing.to_string().contains("a-broken"), "the fault is the answer when no one has it: {missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_are_spelled_as_requests_spell_the_transport() {
    let host = start_host(|_| {}).await;
    let (_, list) = get(&host, "/api/v1/templates").await;
    let transports: Vec<&str> = list.as_array().unwrap().iter().filter_map(|t| t["transport"].as_str()).collect();
    assert!(!transports.is_empty() && transports.iter().all(|t| *t == "stdio"), "{transports:?}");
    let (_, time) = get(&host, "/api/v1/templates/time").await;
    assert_eq!(time["transport"], "stdio", "{time}");
    let resp = host.post_server(json!({"server_type": "npx", "package": "x", "transport": "Stdio"})).await;
    assert_eq!(resp.status(), 400, "requests accept what they accepted before, and only that");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_templates_commands_ask_the_running_host_from_any_folder() {
    let host = start_host(|c| c.plugins.push(catalog_entry("extra", Some("good")))).await;
    let dir = tempfile::tempdir().unwrap();
    let api = [("MCPOD_API", host.base.as_str())];
    let out = cli(dir.path(), &["templates", "list", "--json"], &api);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let list: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert!(list.iter().any(|t| t["name"] == "extra" && t["catalog"] == "extra"), "the host's own plugins: {stdout}");
    let out = cli(dir.path(), &["templates", "show", "extra"], &api);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("EXTRA_TOKEN") && stdout.contains("greeting") && stdout.contains("transport: stdio"));
    let out = cli(dir.path(), &["templates", "show", "no-such-template", "--api", &host.base], &[]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("404"), "{}", text(&out).1);
}

#[test]
fn outside_the_repository_without_a_host_the_templates_commands_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = cli(dir.path(), &["templates", "list"], &[("MCPOD_API", &format!("http://127.0.0.1:{port}"))]);
    let stderr = text(&out).1;
    assert!(!out.status.success());
    assert!(stderr.contains("cannot reach the mcpod API") && stderr.contains("--config FILE"), "{stderr}");

    let out = cli(dir.path(), &["templates", "list", "--config", "missing.toml"], &[]);
    let stderr = text(&out).1;
    assert!(!out.status.success());
    assert!(stderr.contains("cannot read config file missing.toml"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "the cause is printed once: {stderr}");
}

#[test]
fn plugins_list_shows_why_a_plugin_failed_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcpod.toml");
    std::fs::write(
        &config,
        "[plugin_runtime]\nbuiltins = false\n\n[[plugins]]\nname = \"deno\"\nkind = \"server-type\"\nsource = \"gone.wasm\"\n",
    )
    .unwrap();
    let out = cli(dir.path(), &["plugins", "list", "--config", config.to_str().unwrap()], &[]);
    let stdout = text(&out).0;
    assert!(!out.status.success());
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("deno: cannot read") && stdout.contains("gone.wasm"),
        "the reason, in the output: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_server_type_says_that_a_plugin_of_that_name_failed_to_load() {
    let host = start_host(|c| {
        let gone = std::env::temp_dir().join("mcpod-no-such-plugin.wasm");
        c.plugins.push(file_entry("deno", PluginKind::ServerType, &gone));
    })
    .await;
    let resp = host.post_server(json!({"server_type": "deno", "package": "x"})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown server type `deno`: plugin `deno`"), "{message}");
    assert!(message.contains("failed to load: cannot read") && message.contains("restart mcpod"), "{message}");
    let resp = host.post_server(json!({"server_type": "nothing", "package": "x"})).await;
    let body: Value = resp.json().await.unwrap();
    assert!(!body.to_string().contains("failed to load"), "only when it did: {body}");
}

#[test]
fn serve_logs_a_plugin_panic_with_the_plugin_name_and_no_backtrace_hint() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcpod.toml");
    std::fs::write(
        &config,
        format!(
            "[[plugins]]\nname = \"misbehave\"\nkind = \"package-registry\"\nsource = {:?}\n",
            fixture("mcpod-test-misbehave-registry").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("MCPOD_API_TOKEN", "tok")
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mcpod serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/packages/search?registry=misbehave&q=panic"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 502);
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let logged = stderr.lines().find(|l| l.contains("panicked in `search`")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(logged.contains("ERROR") && logged.contains("misbehave"), "{logged}");
    assert!(logged.contains("deliberate panic"), "{logged}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_with_a_bad_input_name_is_withheld_and_named_with_what_is_allowed() {
    let host = start_host(|c| {
        c.plugins.push(catalog_entry("spacey", None));
        c.plugins.push(catalog_entry("keys", Some("bad-secret")));
    })
    .await;
    let (status, list) = get(&host, "/api/v1/templates").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert!(list.iter().any(|t| t["name"] == "extra"), "the catalog's good template stays: {list:?}");
    assert!(!list.iter().any(|t| t["name"] == "spaced" || t["name"] == "keyed"), "{list:?}");
    let spaced = list.iter().find(|t| t["template"] == "spaced").unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(spaced["catalog"], "spacey");
    let error = spaced["error"].as_str().unwrap();
    assert!(
        error.contains("param \"user agent\" is not a valid name") && error.contains("`--param NAME=VALUE`"),
        "{error}"
    );
    let keyed = list.iter().find(|t| t["template"] == "keyed").unwrap_or_else(|| panic!("{list:?}"));
    assert!(keyed["error"].as_str().unwrap().contains("secret \"API KEY=\""), "{keyed}");
    let (status, shown) = get(&host, "/api/v1/templates/spaced").await;
    assert_eq!(status, 502, "{shown}");
    assert!(shown["error"]["message"].as_str().unwrap().contains("user agent"), "{shown}");
    let resp = host.post_server(json!({"template": "spaced", "params": {"user agent": "x"}})).await;
    assert_ne!(resp.status(), 201, "a withheld template does not start");
}

#[test]
fn plugins_check_and_load_name_a_template_input_the_cli_could_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = bad_catalog();
    let out = cli(dir.path(), &["plugins", "check", wasm.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("implements mcpod:plugin/template-catalog@0.1.0"), "{stdout}");
    assert!(stderr.contains("template `spaced`: param \"user agent\" is not a valid name"), "{stderr}");

    let good = builtin_artifact("mcpod-catalog-builtin");
    let out = cli(dir.path(), &["plugins", "check", good.to_str().unwrap()], &[]);
    assert!(out.status.success(), "the built-in catalog passes its smoke test: {}", text(&out).1);

    let config = dir.path().join("mcpod.toml");
    std::fs::write(
        &config,
        format!(
            "[plugin_runtime]\nbuiltins = false\n\n[[plugins]]\nname = \"spacey\"\nkind = \"template-catalog\"\nsource = {:?}\n",
            wasm.display().to_string()
        ),
    )
    .unwrap();
    let out = cli(dir.path(), &["plugins", "list", "--config", config.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "the catalog loads; only the template is withheld: {stdout}{stderr}");
    assert!(stderr.contains("spacey") && stderr.contains("param \"user agent\""), "said at load: {stderr}");
}
