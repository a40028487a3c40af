//! MCP Registry `server.json` documents, and their conversion into mcpod
//! templates and server configs. Pure: no host calls.

use mcpod_plugin_sdk::template_catalog::{KeyValue, PluginError, ServerConfig, Template, TemplateInput, Transport};
use serde::Deserialize;

/// The `_meta` key under which mcpod's own facts about a template live.
pub const META_KEY: &str = "dev.mcpod/template";

/// The parts of a server.json document mcpod reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerJson {
    /// Reverse-DNS server name (`io.github.owner/server`).
    pub name: String,
    /// What the server does.
    #[serde(default)]
    pub description: String,
    /// A human title.
    #[serde(default)]
    pub title: Option<String>,
    /// Source repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// The homepage.
    #[serde(default)]
    pub website_url: Option<String>,
    /// Ways to run it.
    #[serde(default)]
    pub packages: Vec<Package>,
    /// Extensions; mcpod reads `dev.mcpod/template`.
    #[serde(default, rename = "_meta")]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

/// A repository reference.
#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    /// Its URL.
    #[serde(default)]
    pub url: String,
}

/// One package of a server.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// `npm`, `pypi` or `oci`.
    pub registry_type: String,
    /// The package name or image.
    pub identifier: String,
    /// A pinned version.
    #[serde(default)]
    pub version: Option<String>,
    /// How the server talks.
    #[serde(default)]
    pub transport: Option<TransportSpec>,
    /// Arguments after the package.
    #[serde(default)]
    pub package_arguments: Vec<Argument>,
    /// Arguments to the runtime (`uvx`, `npx`) before the package. Only named
    /// ones with a fixed value are taken; each becomes a server-type option
    /// named by its flag (`--with` → option `with`).
    #[serde(default)]
    pub runtime_arguments: Vec<Argument>,
    /// Environment variables.
    #[serde(default)]
    pub environment_variables: Vec<EnvVariable>,
}

/// A package's transport.
#[derive(Debug, Clone, Deserialize)]
pub struct TransportSpec {
    /// `stdio`, `streamable-http` or `sse`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A positional or named argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// `positional` or `named`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For named arguments, the flag (`--db-path`).
    #[serde(default)]
    pub name: Option<String>,
    /// What the value is.
    #[serde(default)]
    pub value_hint: Option<String>,
    /// A fixed value.
    #[serde(default)]
    pub value: Option<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it must be given.
    #[serde(default)]
    pub is_required: bool,
    /// Whether it may be given several times.
    #[serde(default)]
    pub is_repeated: bool,
    /// Whether the value is a secret.
    #[serde(default)]
    pub is_secret: bool,
    /// The default value.
    #[serde(default)]
    pub default: Option<String>,
    /// `boolean` for flags that take no value.
    #[serde(default)]
    pub format: Option<String>,
}

/// An environment variable a package reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVariable {
    /// Its name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it must be set.
    #[serde(default)]
    pub is_required: bool,
    /// Whether the value is a secret.
    #[serde(default)]
    pub is_secret: bool,
    /// The default value.
    #[serde(default)]
    pub default: Option<String>,
}

impl Argument {
    /// The input name a caller sets this argument with.
    pub fn input_name(&self) -> String {
        match (&self.kind[..], &self.name, &self.value_hint) {
            ("named", Some(flag), _) => flag.trim_start_matches('-').to_string(),
            (_, _, Some(hint)) => hint.clone(),
            (_, Some(name), None) => name.trim_start_matches('-').to_string(),
            _ => "value".to_string(),
        }
    }
}

/// A template with what rendering needs.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The template as the WIT shows it.
    pub template: Template,
    /// The package it renders.
    pub package: Package,
}

fn input(name: String, description: Option<String>, required: bool, default: Option<String>) -> TemplateInput {
    TemplateInput { name, description: description.unwrap_or_default(), required, default }
}

/// Converts one document; the error says what is wrong with it.
pub fn to_entry(doc: &ServerJson) -> Result<Entry, String> {
    let package = doc
        .packages
        .iter()
        .find(|p| matches!(p.registry_type.as_str(), "npm" | "pypi" | "oci"))
        .ok_or_else(|| format!("{}: no npm, pypi or oci package", doc.name))?
        .clone();
    let server_type = match package.registry_type.as_str() {
        "npm" => "npx",
        "pypi" => "uv",
        _ => "image",
    };
    let transport = match package.transport.as_ref().map(|t| t.kind.as_str()).unwrap_or("stdio") {
        "stdio" => Transport::Stdio,
        "streamable-http" => Transport::StreamableHttp,
        "sse" => Transport::Sse,
        other => return Err(format!("{}: unsupported transport {other:?}", doc.name)),
    };
    let meta = doc.meta.get(META_KEY);
    let short = meta
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| doc.name.rsplit('/').next().unwrap_or(&doc.name).to_string());
    if short.is_empty() || !short.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("{}: template name {short:?} must be lowercase letters, digits and `-`", doc.name));
    }
    let tags = meta
        .and_then(|m| m.get("tags"))
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if let Some(a) =
        package.runtime_arguments.iter().find(|a| a.kind != "named" || a.name.is_none() || a.value.is_none())
    {
        return Err(format!(
            "{}: runtime argument {:?} must be named and have a fixed `value` (it becomes a server-type option)",
            doc.name,
            a.name.as_deref().unwrap_or(&a.kind)
        ));
    }
    let mut secrets = Vec::new();
    let mut params = Vec::new();
    for e in &package.environment_variables {
        let i = input(e.name.clone(), e.description.clone(), e.is_required && e.default.is_none(), e.default.clone());
        if e.is_secret { secrets.push(i) } else { params.push(i) }
    }
    for a in &package.package_arguments {
        if a.value.is_some() {
            continue;
        }
        let i = input(a.input_name(), a.description.clone(), a.is_required && a.default.is_none(), a.default.clone());
        if a.is_secret { secrets.push(i) } else { params.push(i) }
    }
    let (pkg, image) = if server_type == "image" {
        (None, Some(package.identifier.clone()))
    } else {
        (Some(package.identifier.clone()), None)
    };
    Ok(Entry {
        template: Template {
            name: short,
            title: doc.title.clone().unwrap_or_else(|| doc.name.clone()),
            description: doc.description.clone(),
            server_type: server_type.to_string(),
            package: pkg,
            image,
            transport,
            secrets,
            params,
            tags,
            homepage: doc.website_url.clone().or_else(|| doc.repository.as_ref().map(|r| r.url.clone())),
        },
        package,
    })
}

/// The values of a repeated input: a JSON array of strings, or comma-separated.
fn repeated(value: &str) -> Vec<String> {
    if value.trim_start().starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(value)
    {
        return list;
    }
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Fills `entry` with `params` and `secrets` into a server config. Missing
/// required inputs are listed all together; unknown names are refused.
pub fn render(entry: &Entry, params: &[KeyValue], secrets: &[KeyValue]) -> Result<ServerConfig, PluginError> {
    let t = &entry.template;
    let known_params: Vec<&str> = t.params.iter().map(|i| i.name.as_str()).collect();
    let known_secrets: Vec<&str> = t.secrets.iter().map(|i| i.name.as_str()).collect();
    let unknown: Vec<String> = params
        .iter()
        .filter(|p| !known_params.contains(&p.key.as_str()))
        .map(|p| format!("param `{}`", p.key))
        .chain(
            secrets.iter().filter(|s| !known_secrets.contains(&s.key.as_str())).map(|s| format!("secret `{}`", s.key)),
        )
        .collect();
    if let Some(p) = params.iter().find(|p| known_secrets.contains(&p.key.as_str())) {
        return Err(PluginError::invalid(
            "params",
            format!(
                "`{}` is a secret of template `{}`: give it in `env` (CLI: --env {}=...), not in `params`, so that it is stored as a secret",
                p.key, t.name, p.key
            ),
        ));
    }
    if !unknown.is_empty() {
        let mut expected: Vec<&str> = known_params.iter().chain(known_secrets.iter()).copied().collect();
        expected.sort();
        return Err(PluginError::invalid(
            "params",
            format!(
                "template `{}` has no {}; it takes: {}",
                t.name,
                unknown.join(", "),
                if expected.is_empty() { "nothing".to_string() } else { expected.join(", ") }
            ),
        ));
    }
    let value_of = |name: &str| -> Option<String> {
        params.iter().chain(secrets.iter()).find(|kv| kv.key == name).map(|kv| kv.value.clone())
    };
    let missing: Vec<String> = t
        .secrets
        .iter()
        .map(|i| (i, "secret"))
        .chain(t.params.iter().map(|i| (i, "param")))
        .filter(|(i, _)| i.required && value_of(&i.name).is_none())
        .map(|(i, kind)| format!("{kind} {}", i.name))
        .collect();
    if !missing.is_empty() {
        return Err(PluginError::invalid("params", format!("template `{}` needs {}", t.name, missing.join(", "))));
    }
    let mut args = Vec::new();
    for a in &entry.package.package_arguments {
        let value = a.value.clone().or_else(|| value_of(&a.input_name())).or_else(|| a.default.clone());
        let Some(value) = value else { continue };
        let values = if a.is_repeated { repeated(&value) } else { vec![value] };
        for v in values {
            match (a.kind.as_str(), &a.name) {
                ("named", Some(flag)) if a.format.as_deref() == Some("boolean") => {
                    if v == "true" {
                        args.push(flag.clone());
                    }
                }
                ("named", Some(flag)) => {
                    args.push(flag.clone());
                    args.push(v);
                }
                _ => args.push(v),
            }
        }
    }
    let mut env = Vec::new();
    for e in &entry.package.environment_variables {
        if let Some(v) = value_of(&e.name).or_else(|| e.default.clone()) {
            env.push(KeyValue { key: e.name.clone(), value: v });
        }
    }
    Ok(ServerConfig {
        server_type: t.server_type.clone(),
        package: t.package.clone(),
        version: entry.package.version.clone(),
        image: t.image.clone(),
        args,
        env,
        transport: Some(t.transport),
        port: None,
        path: None,
        options: entry
            .package
            .runtime_arguments
            .iter()
            .filter_map(|a| {
                Some(KeyValue { key: a.name.as_deref()?.trim_start_matches('-').to_string(), value: a.value.clone()? })
            })
            .collect(),
    })
}
