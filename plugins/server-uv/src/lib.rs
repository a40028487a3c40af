//! Server type `uv`: a Python MCP server from PyPI, run with
//! `uvx PACKAGE[SPEC] ARGS...` (`uvx mcp-server-time==2025.1.1`) in a uv
//! image on Kubernetes or with the host's `uvx` locally.
//!
//! Config keys: `image`, the Kubernetes image (default [`DEFAULT_IMAGE`]).
//! Options: `with`, a requirement uv installs beside the package
//! (`uvx --with 'mcp<2' mcp-server-sqlite`), for packages whose own
//! dependency bounds are too loose.

use mcpod_package_names::{check_image, check_pep440, check_pypi_name};
use mcpod_plugin_sdk::server_type::*;
use mcpod_server_common as common;

/// The default Kubernetes image, pinned by tag; config key `image` overrides it.
pub const DEFAULT_IMAGE: &str = "ghcr.io/astral-sh/uv:0.9.13-python3.12-bookworm-slim";

/// Environment every uv server gets unless its config sets the name:
/// unbuffered Python output, so that stdio replies are not held back.
/// Writable homes and caches are the runtime's business (the Kubernetes
/// runtime mounts them; locally the user's are used).
pub const DEFAULT_ENV: [(&str, &str); 1] = [("PYTHONUNBUFFERED", "1")];

/// The plugin.
pub struct Uv;

impl Plugin for Uv {
    fn info() -> PluginInfo {
        plugin_info("uv", env!("CARGO_PKG_VERSION"), "Python MCP servers from PyPI, run with `uvx package==version`")
    }
}

impl ServerType for Uv {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config, config_value("image").as_deref())
    }
}

mcpod_plugin_sdk::export_server_type!(Uv);

/// Every problem with `config`, each naming its field.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.package.as_deref() {
        None => out.push(common::refuse(
            "package",
            "the uv server type needs a `package`, a PyPI project name such as `mcp-server-time`",
        )),
        Some(package) => common::push(&mut out, "package", check_pypi_name(package)),
    }
    if let Some(version) = &config.version {
        common::push(&mut out, "version", check_pep440(version));
    }
    if config.image.is_some() {
        out.push(common::refuse(
            "image",
            "the uv server type takes no `image`; the operator chooses the uv image (config key `image`)",
        ));
    }
    out.extend(common::shared_problems("uv", config, &["with"]));
    for kv in config.options.iter().filter(|kv| kv.key == "with") {
        if let Err(e) = check_requirement(&kv.value) {
            out.push(common::refuse("options.with", &e));
        }
    }
    out.extend(common::refuse_env_prefix(
        config,
        "UV_",
        "UV_* variables configure uv itself (its package index, Python, cache); the operator sets them on the host, not per server",
    ));
    match config.transport.unwrap_or(Transport::Stdio) {
        Transport::Stdio => out.extend(common::stdio_has_no_endpoint(config)),
        Transport::StreamableHttp | Transport::Sse => {
            if config.port.is_none() {
                out.push(common::refuse(
                    "port",
                    "a package that serves streamable-http or sse listens on a port; give `port`, the port it listens on",
                ));
            }
        }
        Transport::Websocket => out.push(common::refuse(
            "transport",
            "uv servers speak stdio (the default), or streamable-http or sse with a `port`; websocket is not supported",
        )),
    }
    out
}

/// Checks an extra requirement for `uvx --with`: a PyPI name, then
/// optional extras and a specifier set, without white space, so that it
/// can never be read as another flag.
pub fn check_requirement(req: &str) -> Result<(), String> {
    let name_end =
        req.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(req.len());
    check_pypi_name(&req[..name_end]).map_err(|e| format!("`{req}` must start with a PyPI project name: {e}"))?;
    let rest = &req[name_end..];
    if let Some(bad) = rest.chars().find(|c| !(c.is_ascii_alphanumeric() || "[],.<>=!~*_-".contains(*c))) {
        return Err(format!(
            "`{req}` has {bad:?}; a requirement is a project name, optional [extras] and a specifier such as `<2` or `>=1.2,<2`"
        ));
    }
    Ok(())
}

/// The requirement `uvx` runs: the package alone, `pkg==1.2.3` for a bare
/// version, or the package followed by a specifier set (`pkg>=1.2,<2`),
/// without white space.
pub fn requirement(package: &str, version: Option<&str>) -> String {
    let Some(version) = version else {
        return package.to_string();
    };
    let version: String = version.chars().filter(|c| !c.is_whitespace()).collect();
    if version.starts_with(['=', '!', '<', '>', '~']) {
        format!("{package}{version}")
    } else {
        format!("{package}=={version}")
    }
}

/// The launch spec for a valid `config`; `image` is config key `image`
/// (`None`: [`DEFAULT_IMAGE`]).
pub fn plan(config: &ServerConfig, image: Option<&str>) -> Result<LaunchSpec, PluginError> {
    if let Some(refusal) = common::refusal(problems(config)) {
        return Err(refusal);
    }
    let image = image.unwrap_or(DEFAULT_IMAGE);
    check_image(image).map_err(|e| common::config_error("uv", "image", &e.message))?;
    let package = config.package.as_deref().unwrap_or_default();
    let mut command = vec!["uvx".to_string()];
    for kv in config.options.iter().filter(|kv| kv.key == "with") {
        command.extend(["--with".to_string(), kv.value.clone()]);
    }
    command.push(requirement(package, config.version.as_deref()));
    command.extend(config.args.iter().cloned());
    let transport = config.transport.unwrap_or(Transport::Stdio);
    let (path, readiness) = common::endpoint(transport, config.path.as_deref());
    Ok(LaunchSpec {
        container: Some(ContainerLaunch { image: image.to_string(), command: command.clone() }),
        process: Some(ProcessLaunch { command }),
        env: common::env_vars(&config.env, &DEFAULT_ENV),
        working_dir: None,
        transport,
        port: config.port,
        path,
        readiness,
        resources: common::host_default_resources(),
        network_access: true,
    })
}

#[cfg(test)]
mod tests;
