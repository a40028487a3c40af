//! `mcpod templates …` and `mcpod packages …`: templates are asked of the
//! running host (`--api`), or of a config file's plugins (`--config`);
//! packages are searched with the registry plugins of the config, loaded here.

use super::servers::{Api, DEFAULT_API};
use super::{ConfigArg, print_table};
use crate::catalog::{self, TemplateJson};
use crate::config::Config;
use crate::plugin::PluginHost;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `mcpod templates …`.
#[derive(Debug, clap::Subcommand)]
pub enum TemplatesCommand {
    /// List every template of the running host (or of a config file, with --config).
    List {
        #[command(flatten)]
        source: CatalogSource,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one template: what it runs, its secrets and params.
    Show {
        /// The template's name.
        name: String,
        #[command(flatten)]
        source: CatalogSource,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where `mcpod templates` asks: the running host's API, or a config file
/// whose catalog plugins it loads itself.
#[derive(Debug, clap::Args)]
pub struct CatalogSource {
    /// The running host's management API [default: http://127.0.0.1:7460].
    #[arg(long, env = "MCPOD_API")]
    api: Option<String>,
    /// Load the catalog plugins of this host config here instead of asking a host.
    #[arg(long, short, env = "MCPOD_CONFIG")]
    config: Option<PathBuf>,
}

/// The config file read when no host answers at the default address.
const LOCAL_CONFIG: &str = "config/mcpod.toml";

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
    load_file(&config.config).await
}

async fn load_file(path: &Path) -> anyhow::Result<PluginHost> {
    let config = Config::load(path)?;
    let mut log = config.log.clone();
    log.level = "warn".into();
    crate::telemetry::init(&log);
    crate::tls::install_provider();
    Ok(PluginHost::load(&config).await?)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// One entry of a template listing: a template, or what could not be listed.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Entry {
    Template(Box<TemplateJson>),
    Failure { catalog: String, template: Option<String>, error: String },
}

/// What `templates` asks: `GET path` of the API, or the same answer
/// computed from a config file's plugins.
async fn ask(source: &CatalogSource, path: &str, local: Local<'_>) -> anyhow::Result<serde_json::Value> {
    if let Some(file) = &source.config {
        return local.answer(file).await;
    }
    let base = source.api.as_deref().unwrap_or(DEFAULT_API);
    match Api::new(base)?.call(reqwest::Method::GET, path, None).await {
        Err(e) if source.api.is_none() && nobody_answers(&e) && Path::new(LOCAL_CONFIG).exists() => {
            eprintln!("note: no mcpod host answers at {base}; reading the catalog plugins of {LOCAL_CONFIG} instead");
            local.answer(Path::new(LOCAL_CONFIG)).await
        }
        Err(e) if nobody_answers(&e) => Err(e.context(
            "start `mcpod serve`, name its API with --api URL (MCPOD_API), or read a config file here with --config FILE",
        )),
        other => other,
    }
}

/// True when nothing answered at the API's address.
fn nobody_answers(e: &anyhow::Error) -> bool {
    e.downcast_ref::<reqwest::Error>().is_some_and(|r| r.is_connect())
}

/// The answer computed from a config file instead of asked of a host.
enum Local<'a> {
    /// `GET /api/v1/templates`.
    List,
    /// `GET /api/v1/templates/{name}`.
    Show(&'a str),
}

impl Local<'_> {
    async fn answer(&self, file: &Path) -> anyhow::Result<serde_json::Value> {
        let host = load_file(file).await?;
        Ok(match self {
            Local::List => serde_json::to_value(catalog::listing(&host).await)?,
            Local::Show(name) => serde_json::to_value(catalog::find_template(&host, name).await?)?,
        })
    }
}

/// Runs a `templates` subcommand.
pub async fn templates(cmd: TemplatesCommand) -> anyhow::Result<ExitCode> {
    super::install_crypto();
    match cmd {
        TemplatesCommand::List { source, json } => {
            let answer = ask(&source, "/api/v1/templates", Local::List).await?;
            let entries: Vec<Entry> = serde_json::from_value(answer.clone())?;
            let failed = entries.iter().any(|e| matches!(e, Entry::Failure { .. }));
            if json {
                print_json(&answer)?;
            } else {
                print_listing(&entries);
            }
            // A failed catalog costs its own templates; the exit status says so.
            return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
        }
        TemplatesCommand::Show { name, source, json } => {
            let path = format!("/api/v1/templates/{}", urlencoding(&name));
            let answer = ask(&source, &path, Local::Show(&name)).await?;
            if json {
                print_json(&answer)?;
            } else {
                let t: TemplateJson = serde_json::from_value(answer)?;
                println!("{} — {}\n{}\n", t.name, t.title, t.description);
                println!("type:      {}", t.server_type);
                println!("package:   {}", t.package.clone().or(t.image.clone()).unwrap_or_default());
                println!("transport: {}", t.transport);
                println!("catalog:   {}", t.catalog);
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

/// The templates as a table, then what could not be listed and why.
fn print_listing(entries: &[Entry]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Template(t) => Some(vec![
                t.name.clone(),
                t.server_type.clone(),
                t.package.clone().or(t.image.clone()).unwrap_or_default(),
                t.secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(","),
                t.title.clone(),
            ]),
            Entry::Failure { .. } => None,
        })
        .collect();
    print_table(&["NAME", "TYPE", "PACKAGE", "SECRETS", "TITLE"], &rows);
    let mut header = false;
    for e in entries {
        if let Entry::Failure { catalog, template, error } = e {
            if !header {
                println!("\nnot listed (the other catalogs' templates are above):");
                header = true;
            }
            match template {
                Some(t) => println!("  template `{t}` of catalog `{catalog}`: {error}"),
                None => println!("  catalog `{catalog}`: {error}"),
            }
        }
    }
}

/// `name` as one URL path segment.
fn urlencoding(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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
