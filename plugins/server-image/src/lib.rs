//! Server type `image`: any container image, on Kubernetes only (the host
//! refuses it unless its policy allows custom images). `args` is the whole
//! container command (empty: the image's entrypoint).
//!
//! Config keys: none. Options: `network` (`true` or `false`, default
//! `false`): whether the server may reach the internet.

use mcpod_package_names::check_image;
use mcpod_plugin_sdk::server_type::*;
use mcpod_server_common as common;

/// The options this server type knows.
const OPTIONS: [&str; 1] = ["network"];

/// The plugin.
pub struct Image;

impl Plugin for Image {
    fn info() -> PluginInfo {
        plugin_info(
            "image",
            env!("CARGO_PKG_VERSION"),
            "Any container image, on Kubernetes only (policy `allow_custom_images`)",
        )
    }
}

impl ServerType for Image {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config)
    }
}

mcpod_plugin_sdk::export_server_type!(Image);

/// Every problem with `config`, each naming its field.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.image.as_deref() {
        None => out.push(common::refuse(
            "image",
            "the image server type needs an `image`, like `ghcr.io/acme/mcp-server:1.0`",
        )),
        Some(image) => common::push(&mut out, "image", check_image(image)),
    }
    if config.package.is_some() {
        out.push(common::refuse("package", "the image server type takes no `package`; give an `image`"));
    }
    if config.version.is_some() {
        out.push(common::refuse(
            "version",
            "the image server type takes no `version`; pin the image by tag or digest instead",
        ));
    }
    out.extend(common::shared_problems("image", config, &OPTIONS));
    for kv in config.options.iter().filter(|kv| kv.key == "network") {
        if network_value(&kv.value).is_none() {
            out.push(common::refuse("options.network", &format!("`network` is `true` or `false`, not {:?}", kv.value)));
        }
    }
    match config.transport.unwrap_or(Transport::Stdio) {
        Transport::Stdio => out.extend(common::stdio_has_no_endpoint(config)),
        t => {
            if config.port.is_none() {
                out.push(common::refuse(
                    "port",
                    &format!(
                        "a server speaking {} listens on a port; give `port`, the port it listens on",
                        common::transport_name(t)
                    ),
                ));
            }
        }
    }
    out
}

/// The value of option `network` as a flag; `None` if it is neither
/// `true` nor `false`.
fn network_value(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The launch spec for a valid `config`.
pub fn plan(config: &ServerConfig) -> Result<LaunchSpec, PluginError> {
    if let Some(refusal) = common::refusal(problems(config)) {
        return Err(refusal);
    }
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = common::endpoint(transport, config.path.as_deref());
    let network = config.options.iter().find(|kv| kv.key == "network").and_then(|kv| network_value(&kv.value));
    Ok(LaunchSpec {
        container: Some(ContainerLaunch {
            image: config.image.clone().unwrap_or_default(),
            command: config.args.clone(),
        }),
        process: None,
        env: common::env_vars(&config.env, &[]),
        working_dir: None,
        transport,
        port: config.port,
        path,
        readiness,
        resources: common::host_default_resources(),
        network_access: network.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests;
