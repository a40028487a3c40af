//! Builds the built-in plugins for `wasm32-wasip2` and generates the table
//! that embeds them in the binary.
//!
//! A plugin crate under `plugins/` is built in when its Cargo.toml has
//! `[package.metadata.mcpod] builtin = "NAME"` and `kind = "KIND"` (plus
//! optional `allow_hosts` and `limits`). All of them are built by one nested
//! `cargo build` into `target/wasm`, a separate target directory (so that it
//! does not wait on the outer build's lock), sharing the outer jobserver.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

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

    let plugins = discover(&root.join("plugins"));
    let target_dir = wasm_target_dir(&root);
    build(&root, &target_dir, &plugins);

    let out_dir = target_dir.join("wasm32-wasip2").join("plugin");
    let mut code = String::from("/// Every built-in plugin, sorted by name.\npub static BUILTINS: &[Builtin] = &[\n");
    for p in &plugins {
        let wasm = out_dir.join(format!("{}.wasm", p.package.replace('-', "_")));
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
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtins.rs");
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

/// `target/wasm` beside the outer build's target directory.
fn wasm_target_dir(root: &Path) -> PathBuf {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/mcpod-<hash>/out (or with a target triple).
    out.ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .map(|t| t.join("wasm"))
        .unwrap_or_else(|| root.join("target").join("wasm"))
}

fn build(root: &Path, target_dir: &Path, plugins: &[Plugin]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    ensure_wasm_target();
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin", "--target-dir"])
        .arg(target_dir);
    for p in plugins {
        cmd.args(["-p", &p.package]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    if !status.success() {
        panic!("building the built-in plugins for wasm32-wasip2 failed (see the errors above)");
    }
}

/// Adds the `wasm32-wasip2` target with rustup when the toolchain lacks it,
/// so that a fresh checkout builds with no manual step.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().ok();
    let has_target = sysroot
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()).join("lib/rustlib/wasm32-wasip2").exists())
        .unwrap_or(false);
    if has_target {
        return;
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "wasm32-wasip2"]);
    if let Ok(tc) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &tc]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => panic!(
            "the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed; install it and build again"
        ),
    }
}
