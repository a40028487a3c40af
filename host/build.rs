//! Builds the built-in plugins for `wasm32-wasip2` and generates the table
//! that embeds them in the binary.
//!
//! A plugin crate under `plugins/` is built in when its Cargo.toml has
//! `[package.metadata.mcpod] builtin = "NAME"` and `kind = "KIND"` (plus
//! optional `allow_hosts` and `limits`). All of them are built by one nested
//! `cargo build` into `target/wasm`, a separate target directory (so that it
//! does not wait on the outer build's lock), sharing the outer jobserver.

use std::fmt::Write as _;
#[path = "build/wasm.rs"]
mod wasm;

use std::path::{Path, PathBuf};

struct Plugin {
    package: String,
    name: String,
    kind: String,
    allow_hosts: Vec<String>,
    limits: Vec<(String, i64)>,
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ lives in the workspace root").to_path_buf();
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
    println!("cargo:rerun-if-env-changed=MCPOD_WASM_TOOLCHAIN");

    let plugins = discover(&root.join("plugins"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = wasm::target_dir(&root, &out_dir);
    let packages: Vec<&str> = plugins.iter().map(|p| p.package.as_str()).collect();
    if let Err(e) = wasm::build(&root, &target_dir, &packages) {
        panic!("{e}");
    }

    let mut code = String::from("/// Every built-in plugin, sorted by name.\npub static BUILTINS: &[Builtin] = &[\n");
    for p in &plugins {
        let wasm = wasm::artifact(&target_dir, &p.package);
        let limits: String = p.limits.iter().map(|(k, v)| format!("{k}: Some({v}), ")).collect();
        writeln!(
            code,
            "    Builtin {{ name: {:?}, kind: PluginKind::{}, allow_hosts: &{:?}, limits: || LimitsEntry {{ {limits}..Default::default() }}, wasm: include_bytes!({:?}) }},",
            p.name,
            kind_variant(&p.kind, &p.package),
            p.allow_hosts,
            wasm.display().to_string(),
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out = out_dir.join("builtins.rs");
    std::fs::write(&out, code).expect("cannot write builtins.rs into OUT_DIR");
}

fn kind_variant(kind: &str, package: &str) -> &'static str {
    match kind {
        "server-type" => "ServerType",
        "template-catalog" => "TemplateCatalog",
        "package-registry" => "PackageRegistry",
        "protocol-adapter" => "ProtocolAdapter",
        other => panic!("{package}: unknown plugin kind {other:?} in [package.metadata.mcpod]"),
    }
}

/// Finds the plugin crates that declare themselves built-in.
fn discover(plugins_dir: &Path) -> Vec<Plugin> {
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(plugins_dir)
        .expect("cannot read plugins/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let package = &doc["package"];
        let Some(meta) = package.get("metadata").and_then(|m| m.get("mcpod")) else { continue };
        let Some(name) = meta.get("builtin").and_then(|v| v.as_str()) else { continue };
        let str_list = |key: &str| -> Vec<String> {
            meta.get(key)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let limits = meta
            .get("limits")
            .and_then(|v| v.as_table())
            .map(|t| t.iter().filter_map(|(k, v)| v.as_integer().map(|n| (k.clone(), n))).collect())
            .unwrap_or_default();
        found.push(Plugin {
            package: package["name"].as_str().expect("package.name is a string").to_string(),
            name: name.to_string(),
            kind: meta.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
            allow_hosts: str_list("allow_hosts"),
            limits,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}
