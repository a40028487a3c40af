//! The catalog and adapter examples of docs/plugins.md: the page shows each
//! example's code as it is, the example builds with the page's command,
//! loads, works, passes `plugins check`, and its own native `cargo test`
//! passes (the SDK's host imports have native stand-ins).

use crate::support::*;
use mcpod::catalog;
use mcpod::config::PluginKind;
use mcpod::plugin::{AdapterSession, PluginHost};
use std::path::PathBuf;
use std::process::Command;

/// The build command docs/plugins.md gives third-party authors.
const DOCS_BUILD: &str = "cargo build --release --target wasm32-wasip2";

/// Runs `cargo ARGS` in `examples/NAME` with its own target folder.
fn cargo_in_example(name: &str, args: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    Command::new(cargo)
        .args(args)
        .current_dir(root().join("examples").join(name))
        .env("CARGO_TARGET_DIR", wasm_target().with_file_name("example"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo")
        .success()
}

/// Checks that docs/plugins.md shows `examples/NAME/src/lib.rs` as it is,
/// runs its native tests, and builds it as the docs say; the component.
fn build_example(name: &str, artifact: &str) -> PathBuf {
    let docs = std::fs::read_to_string(root().join("docs/plugins.md")).expect("docs/plugins.md");
    assert!(docs.contains(DOCS_BUILD), "docs/plugins.md no longer shows `{DOCS_BUILD}`");
    let code = std::fs::read_to_string(root().join("examples").join(name).join("src/lib.rs")).expect("lib.rs");
    assert!(docs.contains(&code), "docs/plugins.md must show examples/{name}/src/lib.rs as it is");
    assert!(cargo_in_example(name, &["test"]), "the example's own `cargo test` fails natively");
    assert!(cargo_in_example(name, &DOCS_BUILD.split_whitespace().skip(1).collect::<Vec<_>>()), "building {name}");
    wasm_target().with_file_name("example").join("wasm32-wasip2/release").join(artifact)
}

fn check(wasm: &std::path::Path) -> String {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["plugins", "check", wasm.to_str().unwrap()])
        .env("XDG_CACHE_HOME", cache.path())
        .env("XDG_STATE_HOME", cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_example_of_the_docs_builds_tests_loads_and_renders() {
    let wasm = build_example("catalog-plugin", "mcpod_team_catalog.wasm");
    assert!(check(&wasm).contains("implements mcpod:plugin/template-catalog@0.1.0"));
    let mut config = bare_config();
    let mut entry = file_entry("team", PluginKind::TemplateCatalog, &wasm);
    entry.config.insert("notes_dir".into(), toml::Value::String("/srv/notes".into()));
    config.plugins.push(entry);
    let host = PluginHost::load(&config).await.unwrap();
    assert!(host.failures().is_empty(), "{:?}", host.failures());
    let listing = catalog::listing(&host).await;
    assert_eq!(listing.templates.len(), 1, "{:?}", listing.failures);
    assert_eq!(listing.templates[0].template.params[0].default.as_deref(), Some("/srv/notes"));
    let rendered = catalog::render_template(&host, "notes", &[], &[]).await.unwrap();
    assert_eq!(rendered.args, ["/srv/notes"]);
    assert_eq!(rendered.package.as_deref(), Some("@modelcontextprotocol/server-filesystem"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_example_of_the_docs_builds_tests_loads_and_frames_both_ways() {
    let wasm = build_example("adapter-plugin", "mcpod_lines_adapter.wasm");
    assert!(check(&wasm).contains("implements mcpod:plugin/protocol-adapter@0.1.0"));
    let mut config = bare_config();
    config.plugins.push(file_entry("stdio", PluginKind::ProtocolAdapter, &wasm));
    let host = PluginHost::load(&config).await.unwrap();
    assert!(host.failures().is_empty(), "{:?}", host.failures());
    let plugin = host.adapter("stdio").unwrap();
    assert_eq!(plugin.info.name, "lines");
    let mut session = AdapterSession::open(plugin, 1024).unwrap();
    let frames = session.decode(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\nnope\n").unwrap();
    assert_eq!(frames.len(), 2);
    let first = frames[0].as_ref().unwrap();
    assert_eq!(first.data, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    assert!(frames[1].is_err());
    assert_eq!(session.encode(first.clone()).unwrap(), b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
}
