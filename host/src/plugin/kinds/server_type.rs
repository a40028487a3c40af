//! Calls into `server-type` plugins.

use super::ServerTypePlugin;
use super::fresh_call;
use crate::launch;
use crate::plugin::bindings::{self, LaunchSpec, PluginError, ServerConfig};
use crate::plugin::error::CallError;
use crate::plugin::instance::plugin_result;

impl ServerTypePlugin {
    /// Every problem the server type finds with `config` (empty: valid).
    pub async fn validate(&self, config: &ServerConfig) -> Result<Vec<PluginError>, CallError> {
        Ok(fresh_call!(self, "validate", |inst, s| inst.mcpod_plugin_launcher().call_validate(s, config)))
    }

    /// The launch spec for `config`, checked for the things every runtime relies on.
    pub async fn launch(&self, config: &ServerConfig) -> Result<launch::LaunchSpec, CallError> {
        let out = fresh_call!(self, "launch", |inst, s| inst.mcpod_plugin_launcher().call_launch(s, config));
        let spec = plugin_result(&self.ctx, out)?;
        check_spec(&spec).map_err(|reason| CallError::BadOutput {
            plugin: self.name.clone(),
            function: "launch",
            reason,
        })?;
        Ok(spec.into())
    }
}

/// The invariants of a launch spec that no plugin may break.
fn check_spec(spec: &LaunchSpec) -> Result<(), String> {
    use crate::plugin::bindings::Transport;
    if spec.container.is_none() && spec.process.is_none() {
        // A server that runs elsewhere: its whole URL is the path.
        let url = spec.path.as_deref().and_then(|p| url::Url::parse(p).ok());
        return match url {
            Some(u) if matches!(u.scheme(), "http" | "https") && spec.transport != Transport::Stdio => Ok(()),
            _ => Err("the launch spec has neither a container nor a process, nor an http(s) URL as the `path` of a \
                      network transport (a server that runs elsewhere)"
                .to_string()),
        };
    }
    if let Some(c) = &spec.container
        && c.image.trim().is_empty()
    {
        return Err("the container image is empty".to_string());
    }
    if let Some(p) = &spec.process {
        match p.command.first() {
            None => return Err("the process command is empty".to_string()),
            Some(program) if program.trim().is_empty() => {
                return Err("the process command's program is empty".to_string());
            }
            _ => {}
        }
    }
    for part in spec.process.iter().flat_map(|p| &p.command).chain(spec.container.iter().flat_map(|c| &c.command)) {
        if part.contains('\0') {
            return Err("a command argument contains a NUL byte".to_string());
        }
    }
    for env in &spec.env {
        let ok = !env.name.is_empty()
            && !env.name.starts_with(|c: char| c.is_ascii_digit())
            && env.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok || env.value.contains('\0') {
            return Err(format!("environment variable {:?} is not a valid name/value", env.name));
        }
    }
    if spec.transport != Transport::Stdio && spec.port.is_none() {
        return Err("a network-transport server needs a port".to_string());
    }
    Ok(())
}

// The plugin boundary: WIT bindings become the host's own types here.

impl From<bindings::Transport> for launch::Transport {
    fn from(t: bindings::Transport) -> Self {
        match t {
            bindings::Transport::Stdio => launch::Transport::Stdio,
            bindings::Transport::StreamableHttp => launch::Transport::StreamableHttp,
            bindings::Transport::Sse => launch::Transport::Sse,
            bindings::Transport::Websocket => launch::Transport::Websocket,
        }
    }
}

impl From<LaunchSpec> for launch::LaunchSpec {
    fn from(s: LaunchSpec) -> Self {
        let r = s.resources;
        launch::LaunchSpec {
            container: s.container.map(|c| launch::ContainerLaunch { image: c.image, command: c.command }),
            process: s.process.map(|p| launch::ProcessLaunch { command: p.command }),
            env: s.env.into_iter().map(|e| launch::EnvVar { name: e.name, value: e.value, secret: e.secret }).collect(),
            working_dir: s.working_dir,
            transport: s.transport.into(),
            port: s.port,
            path: s.path,
            readiness: match s.readiness {
                bindings::Readiness::McpInitialize => launch::Readiness::McpInitialize,
                bindings::Readiness::HttpGet(path) => launch::Readiness::HttpGet(path),
                bindings::Readiness::TcpOpen => launch::Readiness::TcpOpen,
            },
            resources: launch::ResourceHints {
                cpu_request: r.cpu_request,
                cpu_limit: r.cpu_limit,
                memory_request: r.memory_request,
                memory_limit: r.memory_limit,
            },
            network_access: s.network_access,
        }
    }
}
