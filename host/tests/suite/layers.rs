//! The host's layers, written once: a module may use only modules of lower
//! layers (never a peer of its own layer, never a higher one), so that no
//! circle of imports can form across module folders. Read from the source
//! (`crate::` paths outside comments), as a newcomer would read it.
//!
//! `cargo test -p mcpod --test suite layers::` runs it; a failure names each file
//! and the import that points up.

use std::collections::BTreeMap;
use std::path::Path;

/// Lowest first. Modules in one row are peers and may not use each other.
const LAYERS: &[&[&str]] = &[
    &[
        "expose",
        "frame",
        "jsonrpc",
        "launch",
        "listen",
        "mcp_headers",
        "metrics",
        "reread",
        "shared_paths",
        "sweep",
        "tls",
    ],
    // Above the leaves whose types it reads (`[expose.templates]`).
    &["config"],
    &["auth", "rev_2026_07_28", "telemetry"],
    // Peers: the runtimes start what `launch` describes and never see a
    // plugin (the WIT stops at the plugin boundary).
    &["identity", "plugin", "runtime"],
    &["access", "audit", "catalog", "policy"],
    // Verification reads what the policy found a launch installs.
    &["supply", "upstream"],
    &["bridge"],
    &["servers"],
    &["api", "front", "operator"],
    &["gate"],
    &["app"],
    &["cli"],
    &["lib", "main"],
];

/// Modules reached only through a façade by the layers above it: the
/// front, the API and the operator see sessions and deliveries through
/// `servers`, never the bridge that implements them.
const BEHIND: &[(&str, &str)] = &[("bridge", "servers")];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// The top-level module a file under `src/` belongs to.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().map(|c| c.as_os_str().to_string_lossy().to_string()).unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules `source` names through `crate::`, comments aside
/// (`use crate::{a, b::c}` included).
fn imports(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level items of the group: the first identifier after `{` or a `,` at depth 0.
                let mut depth = 0;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && (c.is_alphanumeric() || c == '_') => {
                            let ident: String =
                                group[i..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            found.push(ident);
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !ident.is_empty() {
                    found.push(ident);
                }
            }
        }
    }
    found
}

/// Every upward or sideways import in `files` (path under `src/`, source).
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, source) in files {
        let module = module_of(Path::new(path));
        let Some(own) = layer_of(&module) else {
            out.push(format!(
                "{path}: module `{module}` is in no layer; add it to LAYERS in host/tests/suite/layers.rs"
            ));
            continue;
        };
        for target in imports(source) {
            if target == module || target == "self" || target == "super" {
                continue;
            }
            if let Some((_, facade)) = BEHIND.iter().find(|(hidden, _)| *hidden == target)
                && layer_of(facade).is_some_and(|f| f < own)
            {
                out.push(format!(
                    "{path}: `{module}` uses `crate::{target}` directly; above `{facade}` it is reached through `crate::{facade}`"
                ));
                continue;
            }
            match layer_of(&target) {
                Some(l) if l < own => {}
                Some(l) => out.push(format!(
                    "{path}: `{module}` (layer {own}) uses `crate::{target}` (layer {l}); a module may use only lower layers"
                )),
                None => out.push(format!("{path}: uses `crate::{target}`, which is in no layer")),
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn sources(root: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out.into_iter().collect()
}

#[test]
fn every_import_points_down_the_layers() {
    let files = sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(files.len() > 50, "read the host's source: {} files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "imports that point up or sideways:\n{}", found.join("\n"));
}

#[test]
fn a_planted_upward_import_is_caught_and_named() {
    let files = vec![
        ("metrics.rs".to_string(), "use crate::servers::Manager;\n// crate::app in a comment is fine\n".to_string()),
        ("front/guard.rs".to_string(), "use crate::{jsonrpc::code, api::error::ApiError};\n".to_string()),
        ("servers/handles.rs".to_string(), "let t = crate::servers::new_token();\n".to_string()),
        ("wild.rs".to_string(), String::new()),
    ];
    assert_eq!(
        violations(&files),
        vec![
            "front/guard.rs: `front` (layer 8) uses `crate::api` (layer 8); a module may use only lower layers"
                .to_string(),
            "metrics.rs: `metrics` (layer 0) uses `crate::servers` (layer 7); a module may use only lower layers"
                .to_string(),
            "wild.rs: module `wild` is in no layer; add it to LAYERS in host/tests/suite/layers.rs".to_string(),
        ]
    );
}

#[test]
fn the_bridge_is_reached_only_through_the_servers_facade_from_above() {
    let files = vec![
        ("front/http_session.rs".to_string(), "use crate::bridge::Delivery;\n".to_string()),
        ("servers/sessions.rs".to_string(), "use crate::bridge::{Delivery, Instance};\n".to_string()),
        ("front/websocket.rs".to_string(), "use crate::servers::Delivery;\n".to_string()),
    ];
    assert_eq!(
        violations(&files),
        vec![
            "front/http_session.rs: `front` uses `crate::bridge` directly; above `servers` it is reached through `crate::servers`"
                .to_string()
        ]
    );
}
