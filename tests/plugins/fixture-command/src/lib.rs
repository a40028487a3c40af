//! A server type for tests: runs config value `program` with the server
//! config's args, over stdio.

use mcpod_plugin_sdk::server_type::*;

/// The plugin.
pub struct Command;

impl Plugin for Command {
    fn info() -> PluginInfo {
        plugin_info("fixture-command", "0.0.1", "runs the test fixture program")
    }
}

impl ServerType for Command {
    fn validate(_config: ServerConfig) -> Vec<PluginError> {
        match config_value("program") {
            Some(_) => Vec::new(),
            None => vec![PluginError::invalid("program", "set `program` in the plugin's config")],
        }
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        let program = config_value("program").ok_or_else(|| PluginError::invalid("program", "set `program`"))?;
        let mut command = vec![program];
        command.extend(config.args);
        Ok(LaunchSpec {
            container: None,
            process: Some(ProcessLaunch { command }),
            env: config.env.into_iter().map(|kv| EnvVar { name: kv.key, value: kv.value, secret: false }).collect(),
            working_dir: None,
            transport: Transport::Stdio,
            port: None,
            path: None,
            readiness: Readiness::McpInitialize,
            resources: ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None },
            network_access: false,
        })
    }
}

mcpod_plugin_sdk::export_server_type!(Command);
