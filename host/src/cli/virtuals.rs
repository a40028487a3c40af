//! `mcpod virtual …`: virtual servers, one endpoint in front of several
//! servers, on a running host.

use super::print_table;
use super::servers::{Api, ApiArgs};
use crate::servers::{MemberSpec, VirtualSpec, VirtualStatus};
use std::process::ExitCode;

/// `mcpod virtual …`.
#[derive(Debug, clap::Args)]
pub struct VirtualArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: VirtualCommand,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum VirtualCommand {
    /// Create (or replace) a virtual server of the given members; its
    /// endpoint is `/virtual/NAME/mcp`, its tools `KEY__TOOL`.
    Create {
        /// Its name.
        name: String,
        /// A member server, by id (repeatable).
        #[arg(long = "server")]
        servers: Vec<String>,
        /// Every server of a template, those started later too (repeatable).
        #[arg(long = "template")]
        templates: Vec<String>,
        /// Every server with this label, NAME=VALUE, those started later too (repeatable: one member rule each).
        #[arg(long = "selector", value_parser = label)]
        selectors: Vec<(String, String)>,
    },
    /// List virtual servers.
    List,
    /// Show one virtual server: its members now and its endpoints.
    Status {
        /// Its name.
        name: String,
    },
    /// Delete a virtual server.
    Delete {
        /// Its name.
        name: String,
    },
}

fn label(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

fn row(v: &VirtualStatus) -> Vec<String> {
    let members: Vec<String> = v
        .members
        .iter()
        .map(|m| {
            format!(
                "{} ({}, {})",
                m["key"].as_str().unwrap_or("?"),
                m["server"].as_str().unwrap_or("?"),
                m["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    vec![v.name.clone(), members.join(", "), v.endpoints.get("streamable_http").cloned().unwrap_or_default()]
}

/// Runs a `virtual` subcommand.
pub async fn run(args: VirtualArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api.api)?;
    let shown = |list: Vec<VirtualStatus>| -> anyhow::Result<()> {
        if args.api.json {
            println!("{}", serde_json::to_string_pretty(&list)?);
        } else {
            print_table(
                &["NAME", "MEMBERS (KEY, SERVER, STATE)", "ENDPOINT"],
                &list.iter().map(row).collect::<Vec<_>>(),
            );
        }
        Ok(())
    };
    match args.command {
        VirtualCommand::Create { name, servers, templates, selectors } => {
            let members = servers
                .into_iter()
                .map(|s| MemberSpec { server: Some(s), ..Default::default() })
                .chain(templates.into_iter().map(|t| MemberSpec { template: Some(t), ..Default::default() }))
                .chain(selectors.into_iter().map(|(k, v)| MemberSpec {
                    selector: std::collections::BTreeMap::from([(k, v)]),
                    ..Default::default()
                }))
                .collect();
            let spec = VirtualSpec { name, members };
            let v = api.call(reqwest::Method::POST, "/api/v1/virtual", Some(serde_json::to_value(&spec)?)).await?;
            shown(vec![serde_json::from_value(v)?])?;
        }
        VirtualCommand::List => {
            let v = api.call(reqwest::Method::GET, "/api/v1/virtual", None).await?;
            shown(serde_json::from_value(v)?)?;
        }
        VirtualCommand::Status { name } => {
            let v = api.call(reqwest::Method::GET, &format!("/api/v1/virtual/{name}"), None).await?;
            shown(vec![serde_json::from_value(v)?])?;
        }
        VirtualCommand::Delete { name } => {
            api.call(reqwest::Method::DELETE, &format!("/api/v1/virtual/{name}"), None).await?;
            println!("deleted virtual server `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
