//! `mcpod servers …`: a client of the management API.

use super::print_table;
use crate::servers::{ServerStatus, Sharing, StartRequest};
use anyhow::Context;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// The management API's base URL when neither `--api` nor `MCPOD_API` says.
pub(crate) const DEFAULT_API: &str = "http://127.0.0.1:7460";

/// Where the API is.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The management API's base URL.
    #[arg(long, env = "MCPOD_API", default_value = DEFAULT_API, global = true)]
    pub(crate) api: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// `mcpod servers …`.
#[derive(Debug, clap::Args)]
pub struct ServersArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: ServersCommand,
}

/// The subcommands.
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum ServersCommand {
    /// Start a server from a template or a raw config.
    Start {
        /// A template name (see `mcpod templates list`).
        #[arg(long, conflicts_with_all = ["server_type", "package"])]
        template: Option<String>,
        /// A template param, KEY=VALUE (repeatable).
        #[arg(long = "param", value_parser = key_value)]
        params: Vec<(String, String)>,
        /// An environment variable or template secret, KEY=VALUE (repeatable).
        #[arg(long = "env", value_parser = key_value)]
        env: Vec<(String, String)>,
        /// Raw config: the server type (npx, uv, archon, image, command, remote).
        #[arg(long = "type")]
        server_type: Option<String>,
        /// Raw config: the package.
        #[arg(long)]
        package: Option<String>,
        /// Raw config: the package version.
        #[arg(long)]
        version: Option<String>,
        /// Raw config: the image.
        #[arg(long)]
        image: Option<String>,
        /// Raw config: the transport (stdio, streamable-http, sse, websocket).
        #[arg(long)]
        transport: Option<String>,
        /// Raw config: the port of a network server.
        #[arg(long)]
        port: Option<u16>,
        /// An argument passed to the server (repeatable).
        #[arg(long = "arg")]
        args: Vec<String>,
        /// Server type `command`: the program and its arguments, after `--`
        /// (`mcpod servers start --type command -- python3 /srv/server.py`).
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
        /// Server type `command`: its working directory.
        #[arg(long)]
        cwd: Option<String>,
        /// Server type `remote`: the server's endpoint URL.
        #[arg(long)]
        url: Option<String>,
        /// Server type `remote`: a header sent with every request,
        /// NAME=VALUE (repeatable; kept secret).
        #[arg(long = "header", value_parser = key_value)]
        headers: Vec<(String, String)>,
        /// A label of the server, NAME=VALUE (repeatable; virtual servers select by them).
        #[arg(long = "label", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// per-session or shared.
        #[arg(long)]
        sharing: Option<String>,
        /// Seconds the server has to answer each request (default: the
        /// template's `[limits.templates]`, else `limits.request_timeout_secs`).
        #[arg(long = "request-timeout", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
        request_timeout: Option<u64>,
    },
    /// List servers.
    List,
    /// Show one server: status, health, capabilities, restarts.
    Status {
        /// The server id.
        id: String,
    },
    /// Stop a server.
    Stop {
        /// The server id.
        id: String,
    },
    /// Show a server's recent log lines.
    Logs {
        /// The server id.
        id: String,
    },
    /// Open an instance of its own for one MCP 2026-07-28 client; prints
    /// the endpoint that reaches it (closed when idle, or by close-instance).
    OpenInstance {
        /// The server id.
        id: String,
    },
    /// Close an instance handle and stop its instance.
    CloseInstance {
        /// The server id.
        id: String,
        /// The handle `open-instance` gave.
        handle: String,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// A small client of the management API.
pub(crate) struct Api {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
}

impl Api {
    /// A client of the API at `base`, with the admin token the CLI finds.
    pub(crate) fn new(base: &str) -> anyhow::Result<Self> {
        crate::tls::install_provider();
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder().build()?,
            token: crate::auth::cli_token(&|k| std::env::var(k).ok())?,
        })
    }

    /// Sends `method path` with a JSON `body`; the answer as JSON, or the API's error as text.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        // Every POST is JSON, even an empty one: the host refuses any other
        // content type (a browser's cross-site form or text/plain request).
        if body.is_some() || method == reqwest::Method::POST {
            let bytes = body.map(|b| serde_json::to_vec(&b)).transpose()?.unwrap_or_default();
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
        }
        let resp = req.send().await.with_context(|| {
            format!("cannot reach the mcpod API at {}; is `mcpod serve` running? (--api / MCPOD_API)", self.base)
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let msg = value.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("no detail");
            let mut text = format!("{status}: {msg}");
            if let Some(details) = value.pointer("/error/details").and_then(|d| d.as_array()) {
                for d in details {
                    text.push_str(&format!(
                        "\n  {}: {}",
                        d["field"].as_str().unwrap_or("-"),
                        d["message"].as_str().unwrap_or("")
                    ));
                }
            }
            anyhow::bail!(text);
        }
        Ok(value)
    }
}

fn row(s: &ServerStatus) -> Vec<String> {
    vec![
        s.server_id.clone(),
        s.status.to_string(),
        s.template.clone().unwrap_or_else(|| "-".into()),
        s.server_type.clone(),
        s.package.clone().unwrap_or_else(|| "-".into()),
        s.transport.clone(),
        s.sessions.to_string(),
        s.restarts.to_string(),
    ]
}

const HEADERS: [&str; 8] = ["ID", "STATUS", "TEMPLATE", "TYPE", "PACKAGE", "TRANSPORT", "SESSIONS", "RESTARTS"];

fn show(status: &ServerStatus, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(());
    }
    print_table(&HEADERS, &[row(status)]);
    if let Some(d) = &status.detail {
        println!("\ndetail: {d}");
    }
    println!();
    for (name, url) in &status.endpoints {
        println!("{name:<16} {url}");
    }
    if let Some(caps) = &status.capabilities {
        let info = &caps.initialize["serverInfo"];
        println!(
            "\nserver: {} {}  protocol {}",
            info["name"].as_str().unwrap_or("?"),
            info["version"].as_str().unwrap_or(""),
            caps.initialize["protocolVersion"].as_str().unwrap_or("?")
        );
        if let Some(tools) = caps.tools.as_ref().and_then(|t| t["tools"].as_array()) {
            let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
            println!("tools:  {}", names.join(", "));
        }
    }
    if !status.protections.is_empty() {
        println!("\nprotections:");
        for p in &status.protections {
            println!("  {:<11} {:<4} {}", p.name, if p.active { "on" } else { "off" }, p.detail);
        }
    }
    if let Some(u) = &status.usage {
        let line = |u: &crate::runtime::usage::Usage| {
            let cpu = match (u.cpu_seconds, u.cpu_cores) {
                (Some(s), _) => format!("{s:.2} CPU seconds"),
                (None, Some(c)) => format!("{:.0}m CPU", c * 1000.0),
                (None, None) => "CPU unknown".to_string(),
            };
            format!("{cpu}, {:.1} MiB resident", u.memory_bytes as f64 / 1048576.0)
        };
        println!("\nusage:  {}", line(&u.total));
        for (id, i) in &u.instances {
            println!("  {id:<20} {}", line(i));
        }
    }
    if !status.packages.is_empty() {
        println!("\npackages:");
        for p in &status.packages {
            println!("  {} (asked: {}, from {})", p.id(), p.requested, p.registry);
            for v in &p.verified {
                println!("    verified: {v}");
            }
            for u in &p.unverified {
                println!("    not verified: {u}");
            }
        }
    }
    Ok(())
}

/// Runs a `servers` subcommand.
pub async fn run(args: ServersArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api.api)?;
    let json = args.api.json;
    match args.command {
        ServersCommand::Start {
            template,
            params,
            env,
            server_type,
            package,
            version,
            image,
            transport,
            port,
            args: extra,
            command,
            cwd,
            url,
            headers,
            labels,
            sharing,
            request_timeout,
        } => {
            let sharing = match sharing.as_deref() {
                None => None,
                Some("per-session") => Some(Sharing::PerSession),
                Some("shared") => Some(Sharing::Shared),
                Some(other) => anyhow::bail!("--sharing must be per-session or shared, not {other:?}"),
            };
            let req = StartRequest {
                template,
                params: params.into_iter().collect::<BTreeMap<_, _>>(),
                env: env.into_iter().collect(),
                server_type,
                package,
                version,
                image,
                transport,
                port,
                args: extra,
                command,
                cwd,
                url,
                headers: headers.into_iter().collect(),
                labels: labels.into_iter().collect(),
                sharing,
                request_timeout_secs: request_timeout,
                ..Default::default()
            };
            let v = api.call(reqwest::Method::POST, "/api/v1/servers", Some(serde_json::to_value(&req)?)).await?;
            let status: ServerStatus = serde_json::from_value(v)?;
            show(&status, json)?;
            Ok(if status.status == "failed" { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        ServersCommand::List => {
            let v = api.call(reqwest::Method::GET, "/api/v1/servers", None).await?;
            let list: Vec<ServerStatus> = serde_json::from_value(v)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_table(&HEADERS, &list.iter().map(row).collect::<Vec<_>>());
            }
            Ok(ExitCode::SUCCESS)
        }
        ServersCommand::Status { id } => {
            let v = api.call(reqwest::Method::GET, &format!("/api/v1/servers/{id}"), None).await?;
            show(&serde_json::from_value(v)?, json)?;
            Ok(ExitCode::SUCCESS)
        }
        ServersCommand::Stop { id } => {
            let v = api.call(reqwest::Method::DELETE, &format!("/api/v1/servers/{id}"), None).await?;
            let status: ServerStatus = serde_json::from_value(v)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("stopped {}", status.server_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        ServersCommand::Logs { id } => {
            let v = api.call(reqwest::Method::GET, &format!("/api/v1/servers/{id}/logs"), None).await?;
            let lines: Vec<String> = serde_json::from_value(v)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                for l in lines {
                    println!("{l}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ServersCommand::OpenInstance { id } => {
            let v = api.call(reqwest::Method::POST, &format!("/api/v1/servers/{id}/instances"), None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", v["endpoint"].as_str().unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        ServersCommand::CloseInstance { id, handle } => {
            api.call(reqwest::Method::DELETE, &format!("/api/v1/servers/{id}/instances/{handle}"), None).await?;
            if !json {
                println!("closed instance handle of {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
