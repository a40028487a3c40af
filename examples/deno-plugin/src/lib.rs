//! A server type that runs npm MCP servers with Deno (`deno run npm:PKG`),
//! written from docs/plugins.md as a third-party author would.

use mcpod_plugin_sdk::server_type::*;

struct Deno;

impl Plugin for Deno {
    fn info() -> PluginInfo {
        plugin_info("deno", env!("CARGO_PKG_VERSION"), "Runs npm MCP servers with Deno")
    }
}

/// True for names like `pkg` or `@scope/pkg` made of safe characters.
fn valid_package(name: &str) -> bool {
    let body = name.strip_prefix('@').unwrap_or(name);
    let parts: Vec<&str> = body.split('/').collect();
    let scoped = name.starts_with('@');
    (parts.len() == 1 && !scoped || parts.len() == 2 && scoped)
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && !p.starts_with('-')
                && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c))
        })
}

impl ServerType for Deno {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        let mut problems = Vec::new();
        match config.package.as_deref() {
            None => problems.push(PluginError::invalid("package", "the deno server type needs a `package`")),
            Some(p) if !valid_package(p) => problems.push(PluginError::invalid(
                "package",
                format!("{p:?} is not an npm package name (lowercase, optionally @scope/name)"),
            )),
            Some(_) => {}
        }
        if config.transport.is_some_and(|t| t != Transport::Stdio) {
            problems.push(PluginError::invalid("transport", "the deno server type speaks stdio only"));
        }
        problems
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        if let Some(first) = Self::validate(config.clone()).into_iter().next() {
            return Err(first);
        }
        let package = config.package.unwrap_or_default();
        let spec = match &config.version {
            Some(v) => format!("npm:{package}@{v}"),
            None => format!("npm:{package}"),
        };
        let mut command = vec!["deno".to_string(), "run".to_string(), "--allow-all".to_string(), spec];
        command.extend(config.args);
        let image = config_value("image").unwrap_or_else(|| "denoland/deno:2.1.4".to_string());
        log(Level::Debug, "built a deno launch spec", &[("package", &package)]);
        Ok(LaunchSpec {
            container: Some(ContainerLaunch { image, command: command.clone() }),
            process: Some(ProcessLaunch { command }),
            env: config
                .env
                .into_iter()
                .map(|kv| EnvVar { name: kv.key, value: kv.value, secret: false })
                .collect(),
            working_dir: None,
            transport: Transport::Stdio,
            port: None,
            path: None,
            readiness: Readiness::McpInitialize,
            resources: ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None },
            network_access: true,
        })
    }
}

mcpod_plugin_sdk::export_server_type!(Deno);
