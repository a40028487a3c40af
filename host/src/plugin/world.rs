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

/// The WIT the host's bindings are generated from: what each world must
/// export is read from it, so that it is written in one place only.
const KINDS_WIT: &str = include_str!("../../../wit/kinds.wit");

/// What a kind's world must export: the interface and its functions, named
/// as a component names them (`info`, `[constructor]framer`,
/// `[method]framer.decode`).
struct RequiredExport {
    interface: String,
    functions: Vec<String>,
}

/// Each kind's required export, read from [`KINDS_WIT`] (at load and on
/// errors only: the read takes microseconds).
fn required_export(kind: PluginKind) -> RequiredExport {
    read_required_export(KINDS_WIT, kind.as_str())
}

/// The body of the block that `header` opens (`world server-type`), comments removed.
fn block(wit: &str, header: &str) -> Option<String> {
    let code: String = wit.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let at = code.find(&format!("{header} {{"))? + header.len() + 2;
    let mut depth = 0usize;
    for (i, c) in code[at..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(code[at..at + i].to_string()),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The one interface world `world` exports, and the functions of that
/// interface as a component names them. The WIT is compiled into the host
/// and checked by a test, so a world it lacks is a broken build: the answer
/// is then empty, and every component is refused with that name.
fn read_required_export(wit: &str, world: &str) -> RequiredExport {
    let interface = block(wit, &format!("world {world}"))
        .and_then(|body| {
            body.lines()
                .find_map(|l| l.trim().strip_prefix("export ").map(|e| e.trim_end_matches(';').trim().to_string()))
        })
        .unwrap_or_default();
    let mut functions = Vec::new();
    let mut resource: Option<String> = None;
    let mut depth = 0usize;
    for line in block(wit, &format!("interface {interface}")).unwrap_or_default().lines().map(str::trim) {
        if line.starts_with('}') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                resource = None;
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        match (depth, &resource) {
            (0, _) if line.starts_with("resource ") && line.ends_with('{') => {
                resource = Some(line["resource ".len()..line.len() - 1].trim().to_string());
            }
            (0, _) if line.contains(": func(") => functions.push(name.to_string()),
            (1, Some(r)) if line.starts_with("constructor(") => functions.push(format!("[constructor]{r}")),
            (1, Some(r)) if line.contains(": static func(") => functions.push(format!("[static]{r}.{name}")),
            (1, Some(r)) if line.contains(": func(") => functions.push(format!("[method]{r}.{name}")),
            _ => {}
        }
        if line.ends_with('{') {
            depth += 1;
        }
    }
    RequiredExport { interface, functions }
}

/// The kind whose own interface this export name is, if any.
fn kind_of_interface(short: &str) -> Option<PluginKind> {
    PluginKind::ALL.into_iter().find(|k| required_export(*k).interface == short)
}

/// `Ok` if `component` exports everything `kind` requires; otherwise a
/// sentence naming what is missing and what the component looks like instead.
pub fn check(engine: &Engine, component: &Component, kind: PluginKind) -> Result<(), String> {
    let ty = component.component_type();
    let exports: Vec<(String, ComponentItem)> =
        ty.exports(engine).map(|(name, ext)| (name.to_string(), ext.ty)).collect();
    let mut problems = Vec::new();
    {
        let RequiredExport { interface: short, functions } = required_export(kind);
        let full = interface_name(&short);
        match exports.iter().find(|(name, _)| *name == full) {
            Some((_, ComponentItem::ComponentInstance(instance))) => {
                let present: Vec<String> = instance.exports(engine).map(|(name, _)| name.to_string()).collect();
                let missing: Vec<&String> = functions.iter().filter(|f| !present.contains(f)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worlds_required_export_is_read_from_the_wit_the_bindings_use() {
        let launcher = required_export(PluginKind::ServerType);
        assert_eq!(launcher.interface, "launcher");
        assert_eq!(launcher.functions, ["info", "validate", "launch"]);
        assert_eq!(
            required_export(PluginKind::TemplateCatalog).functions,
            ["info", "list-templates", "describe", "render"]
        );
        assert_eq!(required_export(PluginKind::PackageRegistry).interface, "registry");
        let codec = required_export(PluginKind::ProtocolAdapter);
        assert_eq!(codec.interface, "codec");
        assert_eq!(
            codec.functions,
            [
                "info",
                "transport-kind",
                "[constructor]framer",
                "[method]framer.decode",
                "[method]framer.finish",
                "[method]framer.encode"
            ]
        );
    }

    #[test]
    fn a_function_added_to_an_interface_becomes_required_without_another_edit() {
        let wit = "interface launcher {\n  /// docs: with a colon: func(\n  info: func() -> plugin-info;\n  record r {\n    a: u32,\n  }\n  resource pool {\n    constructor(n: u32);\n    make: static func() -> pool;\n    take: func() -> u32;\n  }\n  later: func();\n}\nworld server-type {\n  include host-services;\n  export launcher;\n}\n";
        let r = read_required_export(wit, "server-type");
        assert_eq!(r.interface, "launcher");
        assert_eq!(r.functions, ["info", "[constructor]pool", "[static]pool.make", "[method]pool.take", "later"]);
    }
}
