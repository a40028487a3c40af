//! The command line: `mcpod serve`, `mcpod plugins …`. The only place that
//! turns errors into exit codes.

mod audit;
mod catalog;
mod clients;
mod plugins;
mod serve;
mod servers;
mod tokens;
mod virtuals;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// mcpod: MCP servers on demand, as pods or local processes, served over every MCP transport.
#[derive(Debug, Parser)]
#[command(name = "mcpod", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the host config comes from.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The host config file (TOML).
    #[arg(long, short, env = "MCPOD_CONFIG", default_value = "config/mcpod.toml")]
    pub config: PathBuf,
}

/// Top-level commands.
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host: load plugins, serve the management API and the MCP front.
    Serve(serve::ServeArgs),
    /// Inspect plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Start, list, inspect and stop servers on a running host.
    Servers(servers::ServersArgs),
    /// Browse the template catalog.
    #[command(subcommand)]
    Templates(catalog::TemplatesCommand),
    /// Search and describe npm and PyPI packages.
    #[command(subcommand)]
    Packages(catalog::PackagesCommand),
    /// Show the tokens that reach a host.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Virtual servers: one endpoint in front of several servers.
    Virtual(virtuals::VirtualArgs),
    /// Set up AI clients (Claude Code, Cursor, VS Code, ...) to use this host's servers.
    Clients(clients::ClientsArgs),
    /// Read the audit log: who called which tool, with what outcome.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print the `McpServer` CustomResourceDefinition (YAML), for `kubectl apply -f -`.
    Crd,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // MCPOD_WORKER_THREADS sizes the async runtime (default: one per core).
    if let Some(n) = std::env::var("MCPOD_WORKER_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0)
    {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Plugins(cmd) => plugins::run(cmd).await,
            Command::Servers(args) => servers::run(args).await,
            Command::Templates(cmd) => catalog::templates(cmd).await,
            Command::Packages(cmd) => catalog::packages(cmd).await,
            Command::Tokens(cmd) => tokens::run(cmd),
            Command::Audit(cmd) => audit::run(cmd).await,
            Command::Clients(args) => clients::run(args).await,
            Command::Virtual(args) => virtuals::run(args).await,
            Command::Crd => crd(),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the McpServer CRD as YAML.
fn crd() -> anyhow::Result<ExitCode> {
    use kube::CustomResourceExt;
    let yaml = serde_saphyr::to_string(&crate::operator::McpServer::crd())?;
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}

/// Installs the process-wide TLS provider before any client is built.
pub(crate) fn install_crypto() {
    crate::tls::install_provider();
}

/// Prints rows as an aligned table with `headers`.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<width$}", c, width = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
