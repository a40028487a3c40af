//! `mcpod plugins list` and `mcpod plugins check FILE.wasm`.

use super::{ConfigArg, print_table};
use crate::api::plugin_rows;
use crate::config::{Config, PluginEntry, PluginKind};
use crate::plugin::PluginHost;
use std::path::PathBuf;
use std::process::ExitCode;

/// `mcpod plugins …`.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsCommand {
    /// List the plugins the config loads (built-in and from files).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check which world a component implements, or exactly why it implements none.
    Check {
        /// The component file.
        file: PathBuf,
        /// Check only this kind (server-type, template-catalog, package-registry, protocol-adapter).
        #[arg(long)]
        kind: Option<String>,
    },
}

/// Runs a `plugins` subcommand.
pub async fn run(cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    super::install_crypto();
    match cmd {
        PluginsCommand::List { config, json } => {
            let config = Config::load(&config.config)?;
            crate::telemetry::init(&quiet(&config));
            let host = PluginHost::load(&config).await?;
            let rows = plugin_rows(&host);
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.kind.clone(),
                            r.source.clone(),
                            if r.status == "loaded" { r.version.clone() } else { "FAILED".to_string() },
                            r.world.clone(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "KIND", "SOURCE", "VERSION", "WORLD"], &table);
                for r in rows.iter().filter(|r| r.error.is_some()) {
                    eprintln!("error: plugin `{}`: {}", r.name, r.error.as_deref().unwrap_or_default());
                }
            }
            Ok(if host.failures().is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        PluginsCommand::Check { file, kind } => check(file, kind).await,
    }
}

fn quiet(config: &Config) -> crate::config::LogSection {
    let mut log = config.log.clone();
    log.level = "warn".to_string();
    log
}

async fn check(file: PathBuf, kind: Option<String>) -> anyhow::Result<ExitCode> {
    let kinds: Vec<PluginKind> = match kind {
        Some(k) => vec![PluginKind::parse(&k).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown kind {k:?}; use server-type, template-catalog, package-registry or protocol-adapter"
            )
        })?],
        None => PluginKind::ALL.to_vec(),
    };
    let file = std::path::absolute(&file)?;
    let mut errors = Vec::new();
    for kind in &kinds {
        let mut config = Config::default();
        config.plugin_runtime.builtins = false;
        config.plugin_runtime.cache = false;
        config.plugin_runtime.pooling = false;
        config.plugins.push(PluginEntry {
            name: "candidate".to_string(),
            kind: *kind,
            source: file.display().to_string(),
            allow_hosts: Some(Vec::new()),
            limits: Default::default(),
            config: Default::default(),
            documents_dir: None,
        });
        let host = PluginHost::load(&config).await?;
        if let Some(p) = host.plugins().next() {
            println!(
                "{}: implements {} (plugin `{}` version {}: {})",
                file.display(),
                p.world(),
                p.info.name,
                p.info.version,
                p.info.description
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(f) = host.failures().first() {
            errors.push(format!("as {kind}: {}", f.message));
        }
    }
    eprintln!("{}: implements no mcpod world", file.display());
    for e in errors {
        eprintln!("  {e}");
    }
    Ok(ExitCode::FAILURE)
}
