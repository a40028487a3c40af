//! Server type `remote`: an MCP server that already runs elsewhere, reached
//! at its URL (Streamable HTTP by default, or legacy SSE or WebSocket).
//! Nothing is started: mcpod connects to it as to a server it started, and
//! adds its identity, policy, audit and revision translation in front.
//! The host puts a start request's `url` in `path`, keeps the request's
//! `headers` (secrets) to itself, and lets the URL through only if its
//! `host:port` matches `policy.allow_remote_hosts`.
//!
//! Config keys: none. Options: none.

use mcpod_plugin_sdk::server_type::*;
use mcpod_server_common as common;

/// The longest URL accepted.
const MAX_URL: usize = 2048;

/// The plugin.
pub struct Remote;

impl Plugin for Remote {
    fn info() -> PluginInfo {
        plugin_info(
            "remote",
            env!("CARGO_PKG_VERSION"),
            "An MCP server that already runs elsewhere, at its URL (policy `allow_remote_hosts`)",
        )
    }
}

impl ServerType for Remote {
    fn validate(config: ServerConfig) -> Vec<PluginError> {
        problems(&config)
    }

    fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
        plan(&config)
    }
}

mcpod_plugin_sdk::export_server_type!(Remote);

/// Why `url` cannot be a remote server's endpoint, if it cannot: it must be
/// an absolute `http` or `https` URL with a host, no credentials (they go in
/// `headers`), no fragment, and only printable ASCII.
pub fn url_problem(url: &str) -> Option<String> {
    if url.len() > MAX_URL {
        return Some(format!("the URL is longer than {MAX_URL} bytes"));
    }
    if let Some(c) = url.chars().find(|c| !c.is_ascii_graphic()) {
        return Some(format!("the URL holds {c:?}; percent-encode it"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!("`{url}` is not an absolute URL; give one like `https://mcp.example.com/mcp`"));
    };
    if !matches!(scheme, "http" | "https") {
        return Some(format!("the URL's scheme is `{scheme}`; use `https` (or `http`)"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Some(
            "the URL holds credentials (`user@`); give them in `headers` instead, which are kept secret".into(),
        );
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return Some("the URL's IPv6 host has no closing `]`".into()),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if let Some(port) = port.filter(|p| p.parse::<u16>().is_err()) {
        return Some(format!("the URL's port `{port}` is not a port number"));
    }
    if host.is_empty() {
        return Some("the URL has no host".into());
    }
    if url.contains('#') {
        return Some("the URL has a fragment (`#…`), which HTTP never sends; remove it".into());
    }
    None
}

/// Every problem with `config`, each naming its field.
pub fn problems(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    match config.path.as_deref() {
        None => {
            out.push(common::refuse("url", "the remote server type needs a `url`, like `https://mcp.example.com/mcp`"))
        }
        Some(url) => {
            if let Some(why) = url_problem(url) {
                out.push(common::refuse("url", &why));
            }
        }
    }
    for (field, given) in [
        ("package", config.package.is_some()),
        ("version", config.version.is_some()),
        ("image", config.image.is_some()),
        ("port", config.port.is_some()),
        ("args", !config.args.is_empty()),
        ("env", !config.env.is_empty()),
    ] {
        if given {
            out.push(common::refuse(
                field,
                &format!("a remote server runs elsewhere and takes no `{field}`; give its `url` (and `headers`)"),
            ));
        }
    }
    out.extend(common::shared_problems("remote", &ServerConfig { path: None, ..config.clone() }, &[]));
    if config.transport == Some(Transport::Stdio) {
        out.push(common::refuse(
            "transport",
            "a remote server is reached over the network: streamable-http (the default), sse or websocket",
        ));
    }
    out
}

/// The launch spec for a valid `config`: neither a process nor a container,
/// and the endpoint's whole URL as its `path`, which is how a launch spec
/// says that the server runs elsewhere.
pub fn plan(config: &ServerConfig) -> Result<LaunchSpec, PluginError> {
    if let Some(refusal) = common::refusal(problems(config)) {
        return Err(refusal);
    }
    Ok(LaunchSpec {
        container: None,
        process: None,
        env: Vec::new(),
        working_dir: None,
        transport: config.transport.unwrap_or(Transport::StreamableHttp),
        port: None,
        path: config.path.clone(),
        readiness: Readiness::McpInitialize,
        resources: common::host_default_resources(),
        network_access: true,
    })
}

#[cfg(test)]
mod tests;
