//! Server type `npx`: a Node MCP server from npm, run with
//! `npx -y PACKAGE@VERSION ARGS...` in a Node image on Kubernetes or with
//! the host's `npx` locally.
//!
//! Config keys: `image`, the Kubernetes image (default [`DEFAULT_IMAGE`]).
//! Options: none.

use mcpod_package_names::{check_image, check_npm_name, check_npm_version};
use mcpod_plugin_sdk::server_type::*;
use mcpod_server_common as common;

/// The default Kubernetes image, pinned by tag; config key `image` overrides it.
pub const DEFAULT_IMAGE: &str = "node:22.12.0-bookworm-slim";

/// Environment every npx server gets unless its config sets the name: no
/// update notices on stderr. Writable homes and caches are the runtime's
/// business (the Kubernetes runtime mounts them; locally the user's are used).
pub const DEFAULT_ENV: [(&str, &str); 1] = [("npm_config_update_notifier", "false")];

/// The plugin.
pub struct Npx;

impl Plugin for Npx {
    fn info() -> PluginInfo {
        plugin_info("npx", env!("CARGO_PKG_VERSION"), "Node MCP servers from npm, run with `npx -y package@version`")
    }
}

impl ServerType for Npx {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config, config_value("image").as_deref())
    }
}

mcpod_plugin_sdk::export_server_type!(Npx);

/// Every problem with `config`, each naming its field.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.package.as_deref() {
        None => out.push(common::refuse(
            "package",
            "the npx server type needs a `package`, an npm package name such as `@modelcontextprotocol/server-everything`",
        )),
        Some(package) => common::push(&mut out, "package", check_npm_name(package)),
    }
    if let Some(version) = &config.version {
        common::push(&mut out, "version", check_npm_version(version));
    }
    if config.image.is_some() {
        out.push(common::refuse(
            "image",
            "the npx server type takes no `image`; the operator chooses the Node image (config key `image`)",
        ));
    }
    out.extend(common::shared_problems("npx", config, &[]));
    out.extend(common::refuse_env_prefix(
        config,
        "npm_config_",
        "npm_config_* variables configure npm itself (its registry, scripts, cache); the operator sets them on the host, not per server",
    ));
    match config.transport.unwrap_or(Transport::Stdio) {
        Transport::Stdio => out.extend(common::stdio_has_no_endpoint(config)),
        Transport::StreamableHttp | Transport::Sse => {
            if config.port.is_none() {
                out.push(common::refuse(
                    "port",
                    "a package that serves streamable-http or sse listens on a port; give `port`, the port it listens on",
                ));
            }
        }
        Transport::Websocket => out.push(common::refuse(
            "transport",
            "npx servers speak stdio (the default), or streamable-http or sse with a `port`; websocket is not supported",
        )),
    }
    out
}

/// The launch spec for a valid `config`; `image` is config key `image`
/// (`None`: [`DEFAULT_IMAGE`]).
pub fn plan(config: &ServerConfig, image: Option<&str>) -> Result<LaunchSpec, PluginError> {
    if let Some(refusal) = common::refusal(problems(config)) {
        return Err(refusal);
    }
    let image = image.unwrap_or(DEFAULT_IMAGE);
    check_image(image).map_err(|e| common::config_error("npx", "image", &e.message))?;
    let package = config.package.as_deref().unwrap_or_default();
    let version = config.version.as_deref().unwrap_or("latest");
    let mut command = vec!["npx".to_string(), "-y".to_string(), format!("{package}@{version}")];
    command.extend(config.args.iter().cloned());
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = common::endpoint(transport, config.path.as_deref());
    Ok(LaunchSpec {
        container: Some(ContainerLaunch { image: image.to_string(), command: command.clone() }),
        process: Some(ProcessLaunch { command }),
        env: common::env_vars(&config.env, &DEFAULT_ENV),
        working_dir: None,
        transport,
        port: config.port,
        path,
        readiness,
        resources: common::host_default_resources(),
        network_access: true,
    })
}

#[cfg(test)]
mod tests;
