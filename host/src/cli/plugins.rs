//! `mcpod plugins list` and `mcpod plugins check FILE.wasm`.

use super::{ConfigArg, print_table};
use crate::api::{PluginRow, plugin_rows};
use crate::config::{Config, PluginEntry, PluginKind};
use crate::plugin::{CatalogPlugin, LoadedPlugin, PluginHost};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
                let failed: Vec<&PluginRow> = rows.iter().filter(|r| r.error.is_some()).collect();
                if !failed.is_empty() {
                    println!("\nFAILED (the host runs without these; fix each and restart it):");
                }
                for r in failed {
                    println!("  {}: {}", r.name, r.error.as_deref().unwrap_or_default());
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
            let problems = smoke_test(p).await;
            if problems.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("{}: the host would not serve all of it:", file.display());
            for problem in problems {
                eprintln!("  {problem}");
            }
            return Ok(ExitCode::FAILURE);
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

/// Calls a template catalog once as the host would (`list-templates`, then
/// `describe` of its first template) and says what the host would refuse;
/// empty when all is well, and for the other kinds.
async fn smoke_test(plugin: &Arc<LoadedPlugin>) -> Vec<String> {
    let Some(plugin) = CatalogPlugin::of(plugin) else { return Vec::new() };
    let mut problems = plugin.check_templates().await;
    let first = match plugin.list_templates().await {
        Ok(list) => list.into_iter().next(),
        Err(_) => None,
    };
    if let Some(first) = first {
        match plugin.describe_template(&first.name).await {
            Ok(t) if t.name == first.name => {}
            Ok(t) => problems.push(format!("`describe(\"{}\")` returned template `{}`", first.name, t.name)),
            Err(e) => problems.push(format!("`describe(\"{}\")` failed: {e}", first.name)),
        }
    }
    problems
}
