//! Server type `image`: any container image, on Kubernetes only. The host
//! refuses it unless the policy allows custom images.

use mcpod_package_names::{check_common, check_image};
use mcpod_plugin_sdk::server_type::*;

/// The plugin.
pub struct Image;

impl Plugin for Image {
    fn info() -> PluginInfo {
        plugin_info("image", env!("CARGO_PKG_VERSION"), "Any container image (Kubernetes only; policy.allow_custom_images)")
    }
}

/// Every problem with `config`.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match &config.image {
        None => out.push(PluginError::invalid("image", "the image server type needs an `image`")),
        Some(i) => {
            if let Err(e) = check_image(i) {
                out.push(PluginError::invalid("image", e.message));
            }
        }
    }
    if config.package.is_some() {
        out.push(PluginError::invalid("package", "the image server type takes no `package`; give an `image`"));
    }
    let env: Vec<&str> = config.env.iter().map(|e| e.key.as_str()).collect();
    for (field, e) in check_common(&config.args, &env, config.path.as_deref()) {
        out.push(PluginError::invalid(field, e.message));
    }
    for o in &config.options {
        match (o.key.as_str(), o.value.as_str()) {
            ("network", "true" | "false") => {}
            ("network", v) => out.push(PluginError::invalid("options.network", format!("`network` is true or false, not {v:?}"))),
            (k, _) => out.push(PluginError::invalid(format!("options.{k}"), format!("the image server type has no option `{k}` (it has `network`)"))),
        }
    }
    if config.transport.unwrap_or(Transport::Stdio) != Transport::Stdio && config.port.is_none() {
        out.push(PluginError::invalid("port", "a server that listens (streamable-http, sse, websocket) needs its `port`"));
    }
    out
}

/// The launch spec for a valid `config`.
pub fn plan(config: &ServerConfig) -> Result<LaunchSpec, PluginError> {
    if let Some(first) = problems(config).into_iter().next() {
        return Err(first);
    }
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = match transport {
        Transport::Stdio => (None, Readiness::McpInitialize),
        Transport::Sse => (Some(config.path.clone().unwrap_or_else(|| "/sse".into())), Readiness::TcpOpen),
        _ => (Some(config.path.clone().unwrap_or_else(|| "/mcp".into())), Readiness::TcpOpen),
    };
    Ok(LaunchSpec {
        container: Some(ContainerLaunch { image: config.image.clone().unwrap_or_default(), command: config.args.clone() }),
        process: None,
        env: config.env.iter().map(|kv| EnvVar { name: kv.key.clone(), value: kv.value.clone(), secret: false }).collect(),
        working_dir: None,
        transport,
        port: config.port,
        path,
        readiness,
        resources: ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None },
        network_access: config.options.iter().any(|o| o.key == "network" && o.value == "true"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(image: &str) -> ServerConfig {
        ServerConfig { server_type: "image".into(), package: None, version: None, image: Some(image.into()), args: vec!["serve".into()], env: vec![], transport: None, port: None, path: None, options: vec![] }
    }

    #[test]
    fn runs_the_image_on_kubernetes_only() {
        let spec = plan(&config("ghcr.io/acme/mcp:1.0")).unwrap();
        let c = spec.container.unwrap();
        assert_eq!((c.image.as_str(), c.command.as_slice()), ("ghcr.io/acme/mcp:1.0", &["serve".to_string()][..]));
        assert!(spec.process.is_none());
        assert!(!spec.network_access, "no network unless asked");
    }

    #[test]
    fn bad_images_and_options_are_named() {
        for bad in ["", "-x", "https://evil.example/x", "a;b", "UPPER"] {
            assert_eq!(problems(&config(bad))[0].field.as_deref(), Some("image"), "{bad:?}");
        }
        let mut c = config("busybox:1");
        c.options = vec![KeyValue { key: "network".into(), value: "maybe".into() }, KeyValue { key: "privileged".into(), value: "true".into() }];
        let fields: Vec<String> = problems(&c).into_iter().filter_map(|p| p.field).collect();
        assert_eq!(fields, ["options.network", "options.privileged"]);
    }
}
