//! Building plugin crates for `wasm32-wasip2` with a nested `cargo build`.
//! Shared by the host's build script (built-in plugins) and its tests
//! (fixture plugins, the third-party example).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target directory for wasm builds: `wasm/` inside the outer build's
/// target directory (found from `out`, a path inside it), so that the nested
/// build has its own lock and never waits on the outer one.
pub fn target_dir(root: &Path, out: &Path) -> PathBuf {
    out.ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists() && !p.ends_with("wasm"))
        .map(|t| t.join("wasm"))
        .unwrap_or_else(|| root.join("target").join("wasm"))
}

/// Where the built components land inside `target_dir`.
pub fn artifact_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("wasm32-wasip2").join("plugin")
}

/// The component file of `package` inside `target_dir`.
pub fn artifact(target_dir: &Path, package: &str) -> PathBuf {
    artifact_dir(target_dir).join(format!("{}.wasm", package.replace('-', "_")))
}

/// Builds `packages` of the workspace at `root` in the `plugin` profile.
///
/// `MCPOD_WASM_TOOLCHAIN` names a rustup toolchain to build them with
/// instead of the outer build's: `fuzz/run.sh` builds the host on nightly,
/// whose toolchain lacks the wasm target, and the plugins on the pinned one.
pub fn build(root: &Path, target_dir: &Path, packages: &[&str]) -> Result<(), String> {
    let toolchain = std::env::var("MCPOD_WASM_TOOLCHAIN").ok().filter(|t| !t.is_empty());
    ensure_wasm_target(toolchain.as_deref())?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = match &toolchain {
        Some(tc) => {
            let mut c = Command::new("rustup");
            c.args(["run", tc, "cargo"]).env_remove("RUSTC").env_remove("RUSTUP_TOOLCHAIN");
            c
        }
        None => Command::new(&cargo),
    };
    cmd.current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin", "--target-dir"])
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's flags and wrappers are for the host target, not wasm.
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
    let status = cmd.status().map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building {} for wasm32-wasip2 failed (see the errors above)", packages.join(", ")))
    }
}

/// Adds the `wasm32-wasip2` target with rustup when the toolchain lacks it,
/// so that a fresh checkout builds with no manual step.
pub fn ensure_wasm_target(toolchain: Option<&str>) -> Result<(), String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let sysroot = match toolchain {
        Some(tc) => Command::new("rustup").args(["run", tc, "rustc", "--print", "sysroot"]).output().ok(),
        None => Command::new(&rustc).args(["--print", "sysroot"]).output().ok(),
    };
    let has_target = sysroot
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()).join("lib/rustlib/wasm32-wasip2").exists())
        .unwrap_or(false);
    if has_target {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "wasm32-wasip2"]);
    if let Some(tc) = toolchain.map(str::to_string).or_else(|| std::env::var("RUSTUP_TOOLCHAIN").ok()) {
        cmd.args(["--toolchain", &tc]);
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err("the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed; install it and build again".to_string()),
    }
}
