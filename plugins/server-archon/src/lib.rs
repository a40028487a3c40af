//! Server type `archon`: the Archon core MCP server, a FastMCP server that
//! serves Streamable HTTP at `/mcp` (and legacy SSE at `/sse`) on the port
//! in `ARCHON_MCP_PORT`, 8051 by default.
//!
//! Config keys (the operator's, never the user's):
//! - `image`: the Archon MCP image (default [`DEFAULT_IMAGE`]; the host maps
//!   env `ARCHON_MCP_IMAGE` to it);
//! - `command`: the container command as a list of strings (default
//!   [`DEFAULT_COMMAND`]; `[]` runs the image's own entrypoint);
//! - `local_command`: the command that runs Archon's MCP server on the host,
//!   as a list of strings; without it the type runs on Kubernetes only.
//!
//! Options: none.

use mcpod_package_names::{check_arg, check_image};
use mcpod_plugin_sdk::server_type::*;
use mcpod_server_common as common;

/// The default image; config key `image` (env `ARCHON_MCP_IMAGE`) overrides it.
pub const DEFAULT_IMAGE: &str = "archon-mcp:latest";

/// The port Archon's MCP server listens on unless `port` says otherwise.
pub const DEFAULT_PORT: u16 = 8051;

/// The container command when config key `command` is not set.
pub const DEFAULT_COMMAND: [&str; 3] = ["python", "-m", "src.mcp_server.mcp_server"];

/// The variable Archon reads its port from; the plugin sets it from `port`.
const PORT_ENV: &str = "ARCHON_MCP_PORT";

/// The plugin.
pub struct Archon;

impl Plugin for Archon {
    fn info() -> PluginInfo {
        plugin_info(
            "archon",
            env!("CARGO_PKG_VERSION"),
            "The Archon core MCP server (FastMCP; streamable-http on port 8051, or sse)",
        )
    }
}

impl ServerType for Archon {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        let settings = Settings::from_config(
            config_value("image").as_deref(),
            config_value("command").as_deref(),
            config_value("local_command").as_deref(),
        )?;
        plan(&config, &settings)
    }
}

mcpod_plugin_sdk::export_server_type!(Archon);

/// What the operator's plugin config says.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The image.
    pub image: String,
    /// The container command; empty runs the image's entrypoint.
    pub command: Vec<String>,
    /// The command that runs Archon's MCP server on the host, if it can run there.
    pub local_command: Option<Vec<String>>,
}

impl Settings {
    /// Settings from the values of config keys `image`, `command` and
    /// `local_command` (lists as JSON text), with the defaults for unset keys.
    pub fn from_config(
        image: Option<&str>,
        command: Option<&str>,
        local_command: Option<&str>,
    ) -> Result<Self, PluginError> {
        let image = image.unwrap_or(DEFAULT_IMAGE).to_string();
        check_image(&image).map_err(|e| common::config_error("archon", "image", &e.message))?;
        let command = match command {
            Some(text) => string_list("command", text)?,
            None => DEFAULT_COMMAND.map(String::from).to_vec(),
        };
        let local_command = local_command.map(|text| string_list("local_command", text)).transpose()?;
        if local_command.as_ref().is_some_and(|c| c.first().is_none_or(|program| program.trim().is_empty())) {
            return Err(common::config_error("archon", "local_command", "it must name a program first"));
        }
        Ok(Settings { image, command, local_command })
    }
}

/// Reads config key `key`'s value `text`: a JSON list of strings, each a
/// valid argument.
fn string_list(key: &str, text: &str) -> Result<Vec<String>, PluginError> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|e| {
        common::config_error(
            "archon",
            key,
            &format!("it must be a list of strings, like [\"python\", \"-m\", \"x\"] ({e})"),
        )
    })?;
    for arg in &list {
        check_arg(arg).map_err(|e| common::config_error("archon", key, &e.message))?;
    }
    Ok(list)
}

/// Every problem with `config`, each naming its field.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    if config.package.is_some() {
        out.push(common::refuse("package", "the archon server type runs Archon's image; it takes no `package`"));
    }
    if config.version.is_some() {
        out.push(common::refuse(
            "version",
            "the archon server type takes no `version`; the operator pins Archon's image (config key `image`)",
        ));
    }
    if config.image.is_some() {
        out.push(common::refuse(
            "image",
            "the archon server type takes no `image`; the operator sets Archon's image (config key `image`, env ARCHON_MCP_IMAGE)",
        ));
    }
    out.extend(common::shared_problems("archon", config, &[]));
    for kv in config.env.iter().take(mcpod_package_names::MAX_ENV) {
        if kv.key.eq_ignore_ascii_case(PORT_ENV) {
            out.push(common::refuse(
                &format!("env.{}", kv.key),
                "the plugin sets ARCHON_MCP_PORT from `port`; give `port` instead",
            ));
        }
    }
    if let Some(t @ (Transport::Stdio | Transport::Websocket)) = config.transport {
        out.push(common::refuse(
            "transport",
            &format!(
                "Archon's MCP server speaks streamable-http (the default) or sse, not {}",
                common::transport_name(t)
            ),
        ));
    }
    out
}

/// The launch spec for a valid `config` under the operator's `settings`.
pub fn plan(config: &ServerConfig, settings: &Settings) -> Result<LaunchSpec, PluginError> {
    let mut problems = problems(config);
    if settings.command.is_empty() && !config.args.is_empty() {
        problems.push(common::refuse(
            "args",
            "Archon's image runs its own entrypoint here (config `command` is empty), so it takes no `args`",
        ));
    }
    if let Some(refusal) = common::refusal(problems) {
        return Err(refusal);
    }
    let transport = config.transport.unwrap_or(Transport::StreamableHttp);
    let port = config.port.unwrap_or(DEFAULT_PORT);
    let (path, readiness) = common::endpoint(transport, config.path.as_deref());
    let with_args = |base: &[String]| base.iter().chain(&config.args).cloned().collect::<Vec<String>>();
    let port_text = port.to_string();
    Ok(LaunchSpec {
        container: Some(ContainerLaunch { image: settings.image.clone(), command: with_args(&settings.command) }),
        process: settings.local_command.as_deref().map(|local| ProcessLaunch { command: with_args(local) }),
        env: common::env_vars(&config.env, &[(PORT_ENV, port_text.as_str())]),
        working_dir: None,
        transport,
        port: Some(port),
        path,
        readiness,
        resources: common::host_default_resources(),
        network_access: true,
    })
}

#[cfg(test)]
mod tests;
