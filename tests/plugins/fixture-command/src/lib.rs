//! A server type for tests: runs config value `program` with the server
//! config's args, over the config's transport (stdio unless it names one),
//! as a process or, for the Kubernetes runtime, as a container of image
//! `mcpod.test/fixture:0` (the emulator's kubelet runs its command locally).

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
        let transport = config.transport.unwrap_or(Transport::Stdio);
        let (path, readiness) = match transport {
            Transport::Stdio => (None, Readiness::McpInitialize),
            _ => (Some(config.path.unwrap_or_else(|| "/mcp".to_string())), Readiness::TcpOpen),
        };
        Ok(LaunchSpec {
            container: Some(ContainerLaunch { image: "mcpod.test/fixture:0".to_string(), command: command.clone() }),
            process: Some(ProcessLaunch { command }),
            env: config.env.into_iter().map(|kv| EnvVar { name: kv.key, value: kv.value, secret: false }).collect(),
            working_dir: None,
            transport,
            port: config.port,
            path,
            readiness,
            resources: ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None },
            network_access: false,
        })
    }
}

mcpod_plugin_sdk::export_server_type!(Command);
