//! Calls into `server-type` plugins.

use super::ServerTypePlugin;
use super::fresh_call;
use crate::plugin::bindings::{LaunchSpec, PluginError, ServerConfig};
use crate::plugin::error::CallError;
use crate::plugin::instance::plugin_result;

impl ServerTypePlugin {
    /// Every problem the server type finds with `config` (empty: valid).
    pub async fn validate(&self, config: &ServerConfig) -> Result<Vec<PluginError>, CallError> {
        Ok(fresh_call!(self, "validate", |inst, s| inst.mcpod_plugin_launcher().call_validate(s, config)))
    }

    /// The launch spec for `config`, checked for the things every runtime relies on.
    pub async fn launch(&self, config: &ServerConfig) -> Result<LaunchSpec, CallError> {
        let out = fresh_call!(self, "launch", |inst, s| inst.mcpod_plugin_launcher().call_launch(s, config));
        let spec = plugin_result(&self.ctx, out)?;
        check_spec(&spec).map_err(|reason| CallError::BadOutput {
            plugin: self.name.clone(),
            function: "launch",
            reason,
        })?;
        Ok(spec)
    }
}

/// The invariants of a launch spec that no plugin may break.
fn check_spec(spec: &LaunchSpec) -> Result<(), String> {
    if spec.container.is_none() && spec.process.is_none() {
        return Err("the launch spec has neither a container nor a process".to_string());
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
    use crate::plugin::bindings::Transport;
    if spec.transport != Transport::Stdio && spec.port.is_none() {
        return Err("a network-transport server needs a port".to_string());
    }
    Ok(())
}
