//! Server type `command`: a program of the operator's own, run as it is —
//! the developer's `python3 server.py` — locally, or on Kubernetes when an
//! `image` holding it is given. `args` is the whole command line, program
//! first (the host puts a start request's `command` there, then its
//! `args`). The host allows this type only to admins and only when its
//! policy says `allow_commands = true`.
//!
//! Config keys: none. Options: `cwd`, the working directory (an absolute
//! path; default: the host's); `network` (`true` or `false`, default
//! `true`): whether the server may reach the internet.

use mcpod_package_names::check_image;
use mcpod_plugin_sdk::server_type::*;
use mcpod_server_common as common;

/// The options this server type knows.
const OPTIONS: [&str; 2] = ["cwd", "network"];

/// The plugin.
pub struct Command;

impl Plugin for Command {
    fn info() -> PluginInfo {
        plugin_info(
            "command",
            env!("CARGO_PKG_VERSION"),
            "A local command as it is (`python3 server.py`); on Kubernetes only with an `image` (policy `allow_commands`)",
        )
    }
}

impl ServerType for Command {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config)
    }
}

mcpod_plugin_sdk::export_server_type!(Command);

/// The value of option `key`, if set.
fn option<'a>(config: &'a ServerConfig, key: &str) -> Option<&'a str> {
    config.options.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str())
}

/// Every problem with `config`, each naming its field.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.args.first().map(String::as_str) {
        None => out.push(common::refuse(
            "command",
            "the command server type needs a `command`, the program and its arguments, like [\"python3\", \"/srv/server.py\"]",
        )),
        Some(program) if program.contains('/') && !program.starts_with('/') => out.push(common::refuse(
            "command",
            &format!(
                "the program `{program}` is a relative path, which would depend on the host's directory; \
                 give an absolute path or a program name found on PATH"
            ),
        )),
        Some(_) => {}
    }
    if config.package.is_some() || config.version.is_some() {
        out.push(common::refuse("package", "the command server type takes no `package` or `version`; give `command`"));
    }
    if let Some(image) = &config.image {
        common::push(&mut out, "image", check_image(image));
    }
    out.extend(common::shared_problems("command", config, &OPTIONS));
    if let Some(cwd) = option(config, "cwd")
        && (!cwd.starts_with('/') || cwd.split('/').any(|part| part == ".."))
    {
        out.push(common::refuse(
            "options.cwd",
            &format!("the working directory `{cwd}` must be an absolute path without `..`"),
        ));
    }
    if let Some(value) = option(config, "network")
        && !matches!(value, "true" | "false")
    {
        out.push(common::refuse("options.network", &format!("`network` is `true` or `false`, not {value:?}")));
    }
    match config.transport.unwrap_or(Transport::Stdio) {
        Transport::Stdio => out.extend(common::stdio_has_no_endpoint(config)),
        t => {
            if config.port.is_none() {
                out.push(common::refuse(
                    "port",
                    &format!(
                        "a command speaking {} listens on a port; give `port`, the port it listens on",
                        common::transport_name(t)
                    ),
                ));
            }
        }
    }
    out
}

/// The launch spec for a valid `config`: the command as a process, and as
/// a container only when an `image` is given (the command must be in it).
pub fn plan(config: &ServerConfig) -> Result<LaunchSpec, PluginError> {
    if let Some(refusal) = common::refusal(problems(config)) {
        return Err(refusal);
    }
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = common::endpoint(transport, config.path.as_deref());
    Ok(LaunchSpec {
        container: config
            .image
            .as_ref()
            .map(|image| ContainerLaunch { image: image.clone(), command: config.args.clone() }),
        process: Some(ProcessLaunch { command: config.args.clone() }),
        env: common::env_vars(&config.env, &[]),
        working_dir: option(config, "cwd").map(str::to_string),
        transport,
        port: config.port,
        path,
        readiness,
        resources: common::host_default_resources(),
        network_access: option(config, "network") != Some("false"),
    })
}

#[cfg(test)]
mod tests;
