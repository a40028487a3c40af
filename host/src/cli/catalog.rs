//! `mcpod templates …` and `mcpod packages …`: the catalog and registry
//! plugins, loaded locally from the config (no running host needed).

use super::{ConfigArg, print_table};
use crate::catalog;
use crate::config::Config;
use crate::plugin::PluginHost;
use std::process::ExitCode;

/// `mcpod templates …`.
#[derive(Debug, clap::Subcommand)]
pub enum TemplatesCommand {
    /// List every template.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one template: what it runs, its secrets and params.
    Show {
        /// The template's name.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mcpod packages …`.
#[derive(Debug, clap::Subcommand)]
pub enum PackagesCommand {
    /// Search a registry.
    Search {
        /// npm or pypi.
        #[arg(long)]
        registry: String,
        /// What to look for.
        query: String,
        /// The most results.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Describe a package.
    Info {
        /// npm or pypi.
        #[arg(long)]
        registry: String,
        /// The package.
        name: String,
        /// A version (default: the newest).
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

async fn load(config: &ConfigArg) -> anyhow::Result<PluginHost> {
    let config = Config::load(&config.config)?;
    let mut log = config.log.clone();
    log.level = "warn".into();
    crate::telemetry::init(&log);
    crate::plugin::imports::http::install_tls_provider();
    Ok(PluginHost::load(&config).await?)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs a `templates` subcommand.
pub async fn templates(cmd: TemplatesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TemplatesCommand::List { config, json } => {
            let host = load(&config).await?;
            let list = catalog::list_templates(&host).await?;
            if json {
                print_json(&list)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        let t = &t.template;
                        vec![
                            t.name.clone(),
                            t.server_type.clone(),
                            t.package.clone().or(t.image.clone()).unwrap_or_default(),
                            t.secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(","),
                            t.title.clone(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "TYPE", "PACKAGE", "SECRETS", "TITLE"], &rows);
            }
        }
        TemplatesCommand::Show { name, config, json } => {
            let host = load(&config).await?;
            let found = catalog::find_template(&host, &name).await?;
            if json {
                print_json(&found)?;
            } else {
                let t = &found.template;
                println!("{} — {}\n{}\n", t.name, t.title, t.description);
                println!("type:      {}", t.server_type);
                println!("package:   {}", t.package.clone().or(t.image.clone()).unwrap_or_default());
                println!("catalog:   {}", found.catalog);
                for (label, inputs) in [("secrets", &t.secrets), ("params", &t.params)] {
                    if inputs.is_empty() {
                        continue;
                    }
                    println!("\n{label}:");
                    for i in inputs {
                        let req = if i.required { "required" } else { "optional" };
                        let def = i.default.as_deref().map(|d| format!(" (default {d})")).unwrap_or_default();
                        println!("  {:<32} {req}{def}  {}", i.name, i.description);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `packages` subcommand.
pub async fn packages(cmd: PackagesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PackagesCommand::Search { registry, query, limit, config, json } => {
            let host = load(&config).await?;
            let hits = catalog::search_packages(&host, &registry, &query, limit).await?;
            if json {
                print_json(&hits)?;
            } else {
                let rows: Vec<Vec<String>> = hits
                    .iter()
                    .map(|h| {
                        vec![
                            h.name.clone(),
                            h.version.clone(),
                            h.description.clone().unwrap_or_default().chars().take(70).collect(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "VERSION", "DESCRIPTION"], &rows);
            }
        }
        PackagesCommand::Info { registry, name, version, config, json } => {
            let host = load(&config).await?;
            let info = catalog::package_info(&host, &registry, &name, version.as_deref()).await?;
            if json {
                print_json(&info)?;
            } else {
                println!("{} {}", info.name, info.version);
                if let Some(d) = &info.description {
                    println!("{d}");
                }
                println!("license:      {}", info.license.clone().unwrap_or_default());
                println!("repository:   {}", info.repository.clone().unwrap_or_default());
                println!("homepage:     {}", info.homepage.clone().unwrap_or_default());
                println!("executables:  {}", info.executables.join(", "));
                println!(
                    "dependencies: {}",
                    info.dependencies
                        .iter()
                        .map(|d| format!("{} {}", d.name, d.requirement))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
