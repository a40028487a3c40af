//! Checks that a component implements the world its `kind` names, and says
//! exactly what is missing when it does not.

use crate::config::PluginKind;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The version of the WIT package this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The fully qualified name of an interface of our package.
pub fn interface_name(short: &str) -> String {
    format!("mcpod:plugin/{short}@{CONTRACT_VERSION}")
}

/// The world a kind implements (`mcpod:plugin/server-type@0.1.0`).
pub fn world_name(kind: PluginKind) -> String {
    interface_name(kind.as_str())
}

/// The interface (and its functions) a kind must export.
fn required_export(kind: PluginKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        PluginKind::ServerType => ("launcher", &["info", "validate", "launch"]),
        PluginKind::TemplateCatalog => ("catalog", &["info", "list-templates", "describe", "render"]),
        PluginKind::PackageRegistry => ("registry", &["info", "search", "versions", "describe", "exists"]),
        PluginKind::ProtocolAdapter => (
            "codec",
            &[
                "info",
                "transport-kind",
                "[constructor]framer",
                "[method]framer.decode",
                "[method]framer.finish",
                "[method]framer.encode",
            ],
        ),
    }
}

/// The kind whose own interface this export name is, if any.
fn kind_of_interface(short: &str) -> Option<PluginKind> {
    PluginKind::ALL.into_iter().find(|k| required_export(*k).0 == short)
}

/// `Ok` if `component` exports everything `kind` requires; otherwise a
/// sentence naming what is missing and what the component looks like instead.
pub fn check(engine: &Engine, component: &Component, kind: PluginKind) -> Result<(), String> {
    let ty = component.component_type();
    let exports: Vec<(String, ComponentItem)> =
        ty.exports(engine).map(|(name, ext)| (name.to_string(), ext.ty)).collect();
    let mut problems = Vec::new();
    {
        let (short, functions) = required_export(kind);
        let full = interface_name(short);
        match exports.iter().find(|(name, _)| *name == full) {
            Some((_, ComponentItem::ComponentInstance(instance))) => {
                let present: Vec<String> = instance.exports(engine).map(|(name, _)| name.to_string()).collect();
                let missing: Vec<&str> =
                    functions.iter().copied().filter(|f| !present.iter().any(|p| p == f)).collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "export `{full}` lacks {}",
                        missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            Some(_) => problems.push(format!("`{full}` is exported but is not an interface")),
            None => {
                let other_version = exports.iter().find_map(|(name, _)| {
                    let rest = name.strip_prefix(&format!("mcpod:plugin/{short}@"))?;
                    Some(rest.to_string())
                });
                problems.push(match other_version {
                    Some(v) => format!(
                        "missing export `{full}` (it exports version {v}; rebuild it against mcpod:plugin@{CONTRACT_VERSION})"
                    ),
                    None => format!("missing export `{full}`"),
                });
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let looks_like: Vec<String> = exports
        .iter()
        .filter_map(|(name, _)| {
            let short = name.strip_prefix("mcpod:plugin/")?.split('@').next()?;
            kind_of_interface(short).filter(|k| *k != kind).map(|k| k.to_string())
        })
        .collect();
    let mut msg = format!("does not implement world `{}`: {}", world_name(kind), problems.join("; "));
    if !looks_like.is_empty() {
        msg.push_str(&format!(
            ". It looks like a {} plugin: check the `kind` in its [[plugins]] entry",
            looks_like.join(" / ")
        ));
    } else if exports.is_empty() {
        msg.push_str(". It exports nothing: was it built with the SDK's export macro?");
    }
    Err(msg)
}
