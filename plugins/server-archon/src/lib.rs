//! Server type `archon`: the Archon core MCP server, a FastMCP server that
//! speaks Streamable HTTP at `/mcp` on port 8051 (legacy SSE at `/sse` on
//! request). Its image comes from config key `image` (ARCHON_MCP_IMAGE).

use mcpod_package_names::{check_common, check_image};
use mcpod_plugin_sdk::server_type::*;

/// The default image; config key `image` (env ARCHON_MCP_IMAGE) overrides it.
pub const DEFAULT_IMAGE: &str = "archon-mcp:latest";
/// The port Archon's MCP server listens on.
pub const DEFAULT_PORT: u16 = 8051;
/// The container command when config key `command` is unset.
pub const DEFAULT_COMMAND: [&str; 3] = ["python", "-m", "src.mcp_server.mcp_server"];

/// The plugin.
pub struct Archon;

impl Plugin for Archon {
    fn info() -> PluginInfo {
        plugin_info("archon", env!("CARGO_PKG_VERSION"), "The Archon core MCP server (Streamable HTTP on 8051)")
    }
}

/// What the plugin's own config says.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The image.
    pub image: String,
    /// The container command.
    pub command: Vec<String>,
    /// The command that runs Archon on the host, if it can run there.
    pub local_command: Option<Vec<String>>,
}

/// Reads a JSON array of strings from config value `text`.
pub fn string_list(key: &str, text: &str) -> Result<Vec<String>, PluginError> {
    serde_json::from_str::<Vec<String>>(text)
        .map_err(|e| PluginError::invalid(key, format!("config `{key}` must be a list of strings: {e}")))
}

/// Every problem with `config`.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    if config.package.is_some() {
        out.push(PluginError::invalid("package", "the archon server type runs Archon's image; it takes no `package`"));
    }
    if let Some(image) = &config.image {
        if let Err(e) = check_image(image) {
            out.push(PluginError::invalid("image", e.message));
        }
    }
    match config.transport {
        None | Some(Transport::StreamableHttp) | Some(Transport::Sse) => {}
        Some(_) => out.push(PluginError::invalid("transport", "Archon speaks streamable-http (default) or sse")),
    }
    if config.port == Some(0) {
        out.push(PluginError::invalid("port", "port 0 is not a port"));
    }
    let env: Vec<&str> = config.env.iter().map(|e| e.key.as_str()).collect();
    for (field, e) in check_common(&config.args, &env, config.path.as_deref()) {
        out.push(PluginError::invalid(field, e.message));
    }
    for o in &config.options {
        out.push(PluginError::invalid(format!("options.{}", o.key), format!("the archon server type has no option `{}`", o.key)));
    }
    out
}

/// The launch spec for a valid `config` under `settings`.
pub fn plan(config: &ServerConfig, settings: &Settings) -> Result<LaunchSpec, PluginError> {
    if let Some(first) = problems(config).into_iter().next() {
        return Err(first);
    }
    let transport = config.transport.unwrap_or(Transport::StreamableHttp);
    let port = config.port.unwrap_or(DEFAULT_PORT);
    let path = config.path.clone().unwrap_or_else(|| if transport == Transport::Sse { "/sse".into() } else { "/mcp".into() });
    let mut command = settings.command.clone();
    command.extend(config.args.iter().cloned());
    let mut env: Vec<EnvVar> =
        config.env.iter().map(|kv| EnvVar { name: kv.key.clone(), value: kv.value.clone(), secret: false }).collect();
    env.push(EnvVar { name: "ARCHON_MCP_PORT".into(), value: port.to_string(), secret: false });
    env.push(EnvVar {
        name: "TRANSPORT".into(),
        value: if transport == Transport::Sse { "sse" } else { "streamable-http" }.into(),
        secret: false,
    });
    Ok(LaunchSpec {
        container: Some(ContainerLaunch { image: config.image.clone().unwrap_or_else(|| settings.image.clone()), command }),
        process: settings.local_command.clone().map(|command| ProcessLaunch { command }),
        env,
        working_dir: None,
        transport,
        port: Some(port),
        path: Some(path),
        readiness: Readiness::TcpOpen,
        resources: ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None },
        network_access: true,
    })
}

fn settings() -> Result<Settings, PluginError> {
    Ok(Settings {
        image: config_value("image").unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        command: match config_value("command") {
            Some(t) => string_list("command", &t)?,
            None => DEFAULT_COMMAND.iter().map(|s| s.to_string()).collect(),
        },
        local_command: config_value("local_command").map(|t| string_list("local_command", &t)).transpose()?,
    })
}

impl ServerType for Archon {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config, &settings()?)
    }
}

mcpod_plugin_sdk::export_server_type!(Archon);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig { server_type: "archon".into(), package: None, version: None, image: None, args: vec![], env: vec![], transport: None, port: None, path: None, options: vec![] }
    }

    fn settings() -> Settings {
        Settings { image: "registry.example/archon-mcp:1.2".into(), command: DEFAULT_COMMAND.iter().map(|s| s.to_string()).collect(), local_command: None }
    }

    #[test]
    fn streamable_http_on_8051_by_default() {
        let spec = plan(&config(), &settings()).unwrap();
        assert_eq!(spec.transport, Transport::StreamableHttp);
        assert_eq!((spec.port, spec.path.as_deref()), (Some(8051), Some("/mcp")));
        assert_eq!(spec.container.unwrap().image, "registry.example/archon-mcp:1.2");
        assert!(spec.process.is_none(), "no local command configured");
    }

    #[test]
    fn sse_on_request_and_local_when_configured() {
        let mut c = config();
        c.transport = Some(Transport::Sse);
        let mut s = settings();
        s.local_command = Some(vec!["uv".into(), "run".into(), "python".into(), "-m".into(), "src.mcp_server.mcp_server".into()]);
        let spec = plan(&c, &s).unwrap();
        assert_eq!(spec.path.as_deref(), Some("/sse"));
        assert!(spec.env.iter().any(|e| e.name == "TRANSPORT" && e.value == "sse"));
        assert_eq!(spec.process.unwrap().command[0], "uv");
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let mut c = config();
        c.transport = Some(Transport::Stdio);
        c.package = Some("x".into());
        let fields: Vec<String> = problems(&c).into_iter().filter_map(|p| p.field).collect();
        assert_eq!(fields, ["package", "transport"]);
        assert!(string_list("command", "\"python\"").is_err());
        assert_eq!(string_list("command", r#"["a","b"]"#).unwrap(), ["a", "b"]);
    }
}
