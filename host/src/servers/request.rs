//! What a start asks for: a template with params and env, or a raw config
//! in the seed's shape, turned into a server config.

use super::{Manager, ManagerError};
use crate::catalog;
use crate::plugin::bindings::{ErrorCode, KeyValue, ServerConfig, Transport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether clients share one process or each gets its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Each client session gets its own instance, stopped with the session.
    PerSession,
    /// One instance serves every session, with ids rewritten per session.
    Shared,
}

/// A request to start a server: a template with params and env, or a raw
/// config in the seed's shape.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// A template name (`time`, `github`).
    pub template: Option<String>,
    /// Template params.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Environment: the template's secrets, or extra variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Raw config: the server type (`npx`, `uv`, `archon`, `image`, `command`, `remote`, ...).
    pub server_type: Option<String>,
    /// Raw config: the package.
    pub package: Option<String>,
    /// Raw config: the version.
    pub version: Option<String>,
    /// Raw config: the image.
    pub image: Option<String>,
    /// Raw config: the transport (`stdio`, `streamable-http`, `sse`, `websocket`).
    pub transport: Option<String>,
    /// Raw config: the port of a network server.
    pub port: Option<u16>,
    /// Raw config: the endpoint path of a network server.
    pub path: Option<String>,
    /// Raw config: arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Raw config: server-type options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Raw config of server type `command`: the program and its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Raw config of server type `command`: its working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Raw config of server type `remote`: the server's endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Labels of the server (`team = "a"`), which virtual servers select
    /// members by; shown in its status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// HTTP headers sent with every request to a `remote` server
    /// (`Authorization`); secrets: never recorded, logged or shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A `remote` server's OAuth client credentials: its bearer token comes
    /// from their client-credentials grant, fetched again before it
    /// expires (the secret is never recorded, logged or shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<crate::upstream::oauth::ClientCredentials>,
    /// How clients share the server (default: per-session for stdio, shared otherwise).
    pub sharing: Option<Sharing>,
    /// Seconds the server has to answer a request (default: the template's
    /// `[limits.templates]`, else `limits.request_timeout_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_secs: Option<u64>,
    /// Which tools, prompts and resources clients see (allow/deny globs,
    /// renames, descriptions); every one by default.
    #[serde(default, skip_serializing_if = "crate::expose::Expose::is_empty")]
    pub expose: crate::expose::Expose,
    /// Exact versions of packages the launch installs, by name
    /// (`{"mcp-server-time": "2026.10.19"}`), still verified. mcpod records
    /// the versions it chose here, so that a server adopted after a host
    /// restart runs and reports what its pods run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, String>,
}

fn parse_transport(s: &str) -> Result<Transport, ManagerError> {
    Transport::parse(s).ok_or_else(|| ManagerError::BadRequest {
        message: format!("unknown transport {s:?}; use stdio, streamable-http, sse or websocket"),
        details: Vec::new(),
    })
}

pub(super) fn kv(map: &BTreeMap<String, String>) -> Vec<KeyValue> {
    map.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.clone() }).collect()
}

/// A start request made into a server config.
pub struct Resolved {
    /// The config the server-type plugin gets.
    pub config: ServerConfig,
    /// The template it was rendered from, if any.
    pub template: Option<String>,
    /// The inputs that template declares (its secrets and params): the
    /// variables a caller may set on it beside `policy.env_allow`.
    pub declared: Vec<String>,
}

impl Manager {
    /// Turns a start request into a server config: rendered from its
    /// template, or taken as it is.
    pub async fn resolve(&self, req: &StartRequest) -> Result<Resolved, ManagerError> {
        if let Some(name) = &req.template {
            let raw = [req.server_type.is_some(), req.package.is_some(), req.image.is_some(), !req.command.is_empty()];
            if raw.into_iter().any(|given| given) || req.url.is_some() || req.cwd.is_some() {
                return Err(ManagerError::BadRequest {
                    message: "give either `template` or a raw config (`server_type`, `package`, `command`, `url`, ...), not both".into(),
                    details: Vec::new(),
                });
            }
            let found = catalog::find_template(&self.plugins, name).await.map_err(|e| match e.code() {
                Some(ErrorCode::NotFound) | None => {
                    ManagerError::NotFound(format!("no template named `{name}`; `mcpod templates list` shows them"))
                }
                _ => e.into(),
            })?;
            let secret_names: Vec<&str> = found.template.secrets.iter().map(|s| s.name.as_str()).collect();
            let (secrets, extra): (BTreeMap<_, _>, BTreeMap<_, _>) =
                req.env.clone().into_iter().partition(|(k, _)| secret_names.contains(&k.as_str()));
            let mut config = catalog::render_template(&self.plugins, name, &kv(&req.params), &kv(&secrets)).await?;
            for (k, v) in extra {
                config.env.retain(|e| e.key != k);
                config.env.push(KeyValue { key: k, value: v });
            }
            if !req.args.is_empty() {
                config.args.extend(req.args.iter().cloned());
            }
            let declared =
                found.template.secrets.iter().chain(&found.template.params).map(|i| i.name.clone()).collect();
            return Ok(Resolved { config, template: Some(name.clone()), declared });
        }
        let server_type = req.server_type.clone().ok_or_else(|| ManagerError::BadRequest {
            message: "give a `template`, or a raw config with at least `server_type`".into(),
            details: Vec::new(),
        })?;
        let transport = req.transport.as_deref().map(parse_transport).transpose()?;
        let bad = |message: String| ManagerError::BadRequest { message, details: Vec::new() };
        for (field, given, owner) in [
            ("command", !req.command.is_empty(), "command"),
            ("cwd", req.cwd.is_some(), "command"),
            ("url", req.url.is_some(), "remote"),
            ("headers", !req.headers.is_empty(), "remote"),
            ("oauth", req.oauth.is_some(), "remote"),
        ] {
            if given && server_type != owner {
                return Err(bad(format!("`{field}` is for server type `{owner}`, not `{server_type}`")));
            }
        }
        // `command` is the plugin's whole command line (`args` follow it),
        // `cwd` its option, and `url` its endpoint `path` (see plugins/server-command and server-remote).
        let mut args = req.command.clone();
        args.extend(req.args.iter().cloned());
        let mut options = req.options.clone();
        if let Some(cwd) = &req.cwd
            && options.insert("cwd".into(), cwd.clone()).is_some()
        {
            return Err(bad("give the working directory once: `cwd` or `options.cwd`".into()));
        }
        if req.url.is_some() && req.path.is_some() {
            return Err(bad("a remote server's `url` holds its path; give no `path` beside it".into()));
        }
        Ok(Resolved {
            config: ServerConfig {
                server_type,
                package: req.package.clone(),
                version: req.version.clone(),
                image: req.image.clone(),
                args,
                env: kv(&req.env),
                transport,
                port: req.port,
                path: req.url.clone().or_else(|| req.path.clone()),
                options: kv(&options),
            },
            template: None,
            declared: Vec::new(),
        })
    }
}
