//! Server type `uv`: Python packages from PyPI, run with `uvx` (in a uv
//! image on Kubernetes, or with the host's `uvx` locally).

use mcpod_package_names::{check_common, check_pep440, check_pypi_name};
use mcpod_plugin_sdk::server_type::*;

/// The default image for Kubernetes, pinned by tag; config key `image` overrides it.
pub const DEFAULT_IMAGE: &str = "ghcr.io/astral-sh/uv:0.9.13-python3.12-bookworm-slim";

/// The plugin.
pub struct Uv;

impl Plugin for Uv {
    fn info() -> PluginInfo {
        plugin_info("uv", env!("CARGO_PKG_VERSION"), "Python MCP servers from PyPI, run with uvx")
    }
}

/// Every problem with `config`.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.package.as_deref() {
        None => out.push(PluginError::invalid("package", "the uv server type needs a `package` (a PyPI project name)")),
        Some(p) => {
            if let Err(e) = check_pypi_name(p) {
                out.push(PluginError::invalid("package", e.message));
            }
        }
    }
    if let Some(v) = &config.version {
        if let Err(e) = check_pep440(v) {
            out.push(PluginError::invalid("version", e.message));
        }
    }
    if config.image.is_some() {
        out.push(PluginError::invalid("image", "the uv server type takes no `image`; set the plugin's `image` config instead"));
    }
    let env: Vec<&str> = config.env.iter().map(|e| e.key.as_str()).collect();
    for (field, e) in check_common(&config.args, &env, config.path.as_deref()) {
        out.push(PluginError::invalid(field, e.message));
    }
    for o in &config.options {
        out.push(PluginError::invalid(format!("options.{}", o.key), format!("the uv server type has no option `{}`", o.key)));
    }
    if config.transport.unwrap_or(Transport::Stdio) != Transport::Stdio && config.port.is_none() {
        out.push(PluginError::invalid("port", "a server that listens (streamable-http, sse, websocket) needs its `port`"));
    }
    out
}

/// The requirement uv installs: `pkg==1.2.3` for a bare version, `pkg>=1,<2` for a specifier.
fn requirement(package: &str, version: Option<&str>) -> String {
    match version {
        None => package.to_string(),
        Some(v) if v.starts_with(|c: char| c.is_ascii_digit()) => format!("{package}=={v}"),
        Some(v) => format!("{package}{v}"),
    }
}

/// The launch spec for a valid `config`, with `image` for Kubernetes.
pub fn plan(config: &ServerConfig, image: &str) -> Result<LaunchSpec, PluginError> {
    if let Some(first) = problems(config).into_iter().next() {
        return Err(first);
    }
    let package = config.package.clone().unwrap_or_default();
    let mut command = vec!["uvx".to_string()];
    match &config.version {
        Some(v) => command.extend(["--from".to_string(), requirement(&package, Some(v)), package.clone()]),
        None => command.push(package.clone()),
    }
    command.extend(config.args.iter().cloned());
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = match transport {
        Transport::Stdio => (None, Readiness::McpInitialize),
        Transport::Sse => (Some(config.path.clone().unwrap_or_else(|| "/sse".into())), Readiness::TcpOpen),
        _ => (Some(config.path.clone().unwrap_or_else(|| "/mcp".into())), Readiness::TcpOpen),
    };
    let mut env: Vec<EnvVar> =
        config.env.iter().map(|kv| EnvVar { name: kv.key.clone(), value: kv.value.clone(), secret: false }).collect();
    env.push(EnvVar { name: "UV_NO_PROGRESS".into(), value: "1".into(), secret: false });
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

impl ServerType for Uv {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config, &config_value("image").unwrap_or_else(|| DEFAULT_IMAGE.to_string()))
    }
}

mcpod_plugin_sdk::export_server_type!(Uv);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(package: &str, version: Option<&str>) -> ServerConfig {
        ServerConfig {
            server_type: "uv".into(),
            package: Some(package.into()),
            version: version.map(Into::into),
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
    fn runs_with_uvx_pinned_or_not() {
        let spec = plan(&config("mcp-server-time", None), DEFAULT_IMAGE).unwrap();
        assert_eq!(spec.process.unwrap().command, ["uvx", "mcp-server-time"]);
        let spec = plan(&config("mcp-server-time", Some("2025.1.1")), DEFAULT_IMAGE).unwrap();
        assert_eq!(spec.container.as_ref().unwrap().command, ["uvx", "--from", "mcp-server-time==2025.1.1", "mcp-server-time"]);
        assert_eq!(spec.container.unwrap().image, DEFAULT_IMAGE);
        let spec = plan(&config("mcp-server-git", Some(">=2025,<2027")), "img").unwrap();
        assert_eq!(spec.process.unwrap().command[2], "mcp-server-git>=2025,<2027");
    }

    #[test]
    fn injection_is_refused() {
        for bad in ["--eval=x", "-e", "../x", "/etc/passwd", "pkg; rm -rf /", "$(id)", "https://evil.example/x.tgz", "git+ssh://git@github.com/x/y.git", "file:../x", "a b", "a\nb", "a\0b"] {
            let p = problems(&config(bad, None));
            assert!(p.iter().any(|e| e.field.as_deref() == Some("package")), "{bad:?}");
            let p = problems(&config("ok", Some(bad)));
            assert!(p.iter().any(|e| e.field.as_deref() == Some("version")), "version {bad:?}");
        }
        let mut c = config("ok", None);
        c.options = vec![KeyValue { key: "from".into(), value: "git+https://x".into() }];
        assert_eq!(problems(&c)[0].field.as_deref(), Some("options.from"));
    }
}
