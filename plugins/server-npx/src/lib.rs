//! Server type `npx`: Node packages from npm, run with `npx -y PKG@VERSION`
//! (in a Node image on Kubernetes, or with the host's `npx` locally).

use mcpod_package_names::{check_common, check_npm_name, check_npm_version};
use mcpod_plugin_sdk::server_type::*;

/// The default image for Kubernetes, pinned by tag; config key `image` overrides it.
pub const DEFAULT_IMAGE: &str = "node:22.12.0-bookworm-slim";

/// The plugin.
pub struct Npx;

impl Plugin for Npx {
    fn info() -> PluginInfo {
        plugin_info("npx", env!("CARGO_PKG_VERSION"), "Node MCP servers from npm, run with npx")
    }
}

/// Every problem with `config`.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.package.as_deref() {
        None => out.push(PluginError::invalid("package", "the npx server type needs a `package` (an npm package name)")),
        Some(p) => {
            if let Err(e) = check_npm_name(p) {
                out.push(PluginError::invalid("package", e.message));
            }
        }
    }
    if let Some(v) = &config.version {
        if let Err(e) = check_npm_version(v) {
            out.push(PluginError::invalid("version", e.message));
        }
    }
    if config.image.is_some() {
        out.push(PluginError::invalid("image", "the npx server type takes no `image`; set the plugin's `image` config instead"));
    }
    let env: Vec<&str> = config.env.iter().map(|e| e.key.as_str()).collect();
    for (field, e) in check_common(&config.args, &env, config.path.as_deref()) {
        out.push(PluginError::invalid(field, e.message));
    }
    for o in &config.options {
        out.push(PluginError::invalid(format!("options.{}", o.key), format!("the npx server type has no option `{}`", o.key)));
    }
    let transport = config.transport.unwrap_or(Transport::Stdio);
    if transport != Transport::Stdio && config.port.is_none() {
        out.push(PluginError::invalid("port", "a server that listens (streamable-http, sse, websocket) needs its `port`"));
    }
    if config.port == Some(0) {
        out.push(PluginError::invalid("port", "port 0 is not a port"));
    }
    out
}

/// The launch spec for a valid `config`, with `image` for Kubernetes.
pub fn plan(config: &ServerConfig, image: &str) -> Result<LaunchSpec, PluginError> {
    if let Some(first) = problems(config).into_iter().next() {
        return Err(first);
    }
    let package = config.package.clone().unwrap_or_default();
    let version = config.version.clone().unwrap_or_else(|| "latest".to_string());
    let mut command = vec!["npx".to_string(), "-y".to_string(), format!("{package}@{version}")];
    command.extend(config.args.iter().cloned());
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = match transport {
        Transport::Stdio => (None, Readiness::McpInitialize),
        Transport::Sse => (Some(config.path.clone().unwrap_or_else(|| "/sse".into())), Readiness::TcpOpen),
        _ => (Some(config.path.clone().unwrap_or_else(|| "/mcp".into())), Readiness::TcpOpen),
    };
    let mut env: Vec<EnvVar> =
        config.env.iter().map(|kv| EnvVar { name: kv.key.clone(), value: kv.value.clone(), secret: false }).collect();
    env.push(EnvVar { name: "npm_config_update_notifier".into(), value: "false".into(), secret: false });
    env.push(EnvVar { name: "npm_config_fund".into(), value: "false".into(), secret: false });
    Ok(LaunchSpec {
        container: Some(ContainerLaunch { image: image.to_string(), command: command.clone() }),
        process: Some(ProcessLaunch { command }),
        env,
        working_dir: None,
        transport,
        port: config.port,
        path,
        readiness,
        resources: ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None },
        network_access: true,
    })
}

impl ServerType for Npx {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config, &config_value("image").unwrap_or_else(|| DEFAULT_IMAGE.to_string()))
    }
}

mcpod_plugin_sdk::export_server_type!(Npx);

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config(package: &str) -> ServerConfig {
        ServerConfig {
            server_type: "npx".into(),
            package: Some(package.into()),
            version: None,
            image: None,
            args: vec![],
            env: vec![],
            transport: None,
            port: None,
            path: None,
            options: vec![],
        }
    }

    #[test]
    fn runs_the_package_with_npx_on_both_runtimes() {
        let mut c = config("@modelcontextprotocol/server-filesystem");
        c.version = Some("2025.8.21".into());
        c.args = vec!["/tmp".into()];
        c.env = vec![KeyValue { key: "DEBUG".into(), value: "1".into() }];
        let spec = plan(&c, DEFAULT_IMAGE).unwrap();
        let expected = ["npx", "-y", "@modelcontextprotocol/server-filesystem@2025.8.21", "/tmp"];
        assert_eq!(spec.process.unwrap().command, expected);
        let container = spec.container.unwrap();
        assert_eq!(container.image, DEFAULT_IMAGE);
        assert_eq!(container.command, expected);
        assert_eq!(spec.transport, Transport::Stdio);
        assert!(spec.env.iter().any(|e| e.name == "DEBUG"));
        assert!(spec.network_access);
    }

    #[test]
    fn latest_by_default_and_network_transports_need_a_port() {
        let spec = plan(&config("@playwright/mcp"), "img").unwrap();
        assert_eq!(spec.process.unwrap().command[2], "@playwright/mcp@latest");
        let mut c = config("x");
        c.transport = Some(Transport::StreamableHttp);
        assert_eq!(problems(&c)[0].field.as_deref(), Some("port"));
        c.port = Some(3000);
        let spec = plan(&c, "img").unwrap();
        assert_eq!((spec.port, spec.path.as_deref()), (Some(3000), Some("/mcp")));
    }

    #[test]
    fn injection_is_refused_in_every_field() {
        for bad in ["--eval=process.exit()", "-e", "../x", "/etc/passwd", "pkg; rm -rf /", "$(id)", "https://evil.example/x.tgz", "git+ssh://git@github.com/x/y.git", "file:../x", "a b", "a\nb", "a\0b"] {
            let p = problems(&config(bad));
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert_eq!(p[0].field.as_deref(), Some("package"));
            let mut c = config("ok");
            c.version = Some(bad.into());
            assert!(problems(&c).iter().any(|e| e.field.as_deref() == Some("version")), "version {bad:?}");
        }
        let mut c = config("ok");
        c.args = vec!["fine".into(), "bad\nline".into()];
        c.env = vec![KeyValue { key: "LD_PRELOAD".into(), value: "/x.so".into() }, KeyValue { key: "1BAD".into(), value: "".into() }];
        c.options = vec![KeyValue { key: "shell".into(), value: "yes".into() }];
        let fields: Vec<String> = problems(&c).into_iter().filter_map(|p| p.field).collect();
        assert_eq!(fields, ["args[1]", "env.LD_PRELOAD", "env.1BAD", "options.shell"]);
        assert!(plan(&c, "img").is_err());
        assert!(problems(&config(&"a".repeat(300)))[0].message.contains("at most 214"));
    }
}
