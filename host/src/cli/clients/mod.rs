//! `mcpod clients …`: AI clients set up in one command. Finds the clients
//! installed on this machine and writes a server's (or virtual server's)
//! entry into each one's own config file, with the URL the host reports and
//! a token of its own, backing the file up first; `remove` undoes it.

pub mod files;

use super::print_table;
use super::servers::{Api, ApiArgs};
use files::{Client, Entry, Os, Owner, Places, Transport};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// `mcpod clients …`.
#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: ClientsCommand,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ClientsCommand {
    /// The clients mcpod can set up: whether each is installed, its config
    /// file, and the MCP servers in it (`*`: written by mcpod).
    List,
    /// Write a server of the host into CLIENT's config (claude-code,
    /// claude-desktop, cursor, vscode, windsurf, gemini-cli).
    Add {
        /// The client.
        client: String,
        /// The server's id (`mcpod servers list`).
        #[arg(long, required_unless_present = "virtual_server", conflicts_with = "virtual_server")]
        server: Option<String>,
        /// A virtual server's name.
        #[arg(long = "virtual")]
        virtual_server: Option<String>,
        /// The entry's name in the client (default `mcpod-ID`).
        #[arg(long)]
        name: Option<String>,
        /// The bearer token the client sends. Default: a new user-role
        /// token named `CLIENT.NAME` in this machine's token file (for a
        /// host on another machine, pass one made there).
        #[arg(long)]
        token: Option<String>,
        /// Use the legacy HTTP+SSE endpoint instead of Streamable HTTP.
        #[arg(long)]
        sse: bool,
        /// Replace an entry of that name that mcpod did not write, or that was edited since.
        #[arg(long)]
        force: bool,
        /// The token file (as for `mcpod tokens create`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Remove an entry mcpod wrote from CLIENT's config, and revoke the
    /// token it made for it.
    Remove {
        /// The client.
        client: String,
        /// The entry's name (`mcpod clients list` shows them).
        name: String,
        /// Remove it even if it was edited since mcpod wrote it, or not written by mcpod.
        #[arg(long)]
        force: bool,
        /// The token file (as for `mcpod tokens create`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// The operating system this binary runs on, for the clients' paths.
fn this_os() -> Os {
    if cfg!(target_os = "macos") {
        Os::Mac
    } else if cfg!(windows) {
        Os::Windows
    } else {
        Os::Linux
    }
}

/// `CLIENT` parsed, or an error that lists the known names.
fn client(name: &str) -> anyhow::Result<Client> {
    Client::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Client::ALL.iter().map(|c| c.name()).collect();
        anyhow::anyhow!("unknown client {name:?}; mcpod sets up {}", known.join(", "))
    })
}

/// The token a client's entry `entry` gets by default, named after both.
fn token_name(client: Client, entry: &str) -> String {
    format!("{}.{entry}", client.name())
}

/// Seconds since the epoch, for backup names.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Runs a `clients` subcommand.
pub async fn run(args: ClientsArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let places = Places::from_env(&env, this_os())
        .ok_or_else(|| anyhow::anyhow!("HOME is not set, so the clients' config files cannot be found"))?;
    let manifest = crate::config::xdg_dir(&env, "XDG_CONFIG_HOME", ".config")
        .ok_or_else(|| anyhow::anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?
        .join("clients.json");
    match args.command {
        ClientsCommand::List => {
            let found = files::list(&places, &manifest)?;
            if args.api.json {
                let rows: Vec<serde_json::Value> = found
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "client": f.client.name(), "installed": f.installed, "file": f.file, "exists": f.exists,
                            "servers": f.servers.iter().map(|s| serde_json::json!({
                                "name": s.name, "mcpod": s.owner == Owner::Mcpod, "edited": s.owner == Owner::Edited,
                            })).collect::<Vec<_>>(),
                            "problem": f.problem,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|f| {
                    let servers: Vec<String> = f
                        .servers
                        .iter()
                        .map(|s| match s.owner {
                            Owner::Mcpod => format!("{}*", s.name),
                            Owner::Edited => format!("{}* (edited)", s.name),
                            Owner::Other => s.name.clone(),
                        })
                        .collect();
                    vec![
                        f.client.name().to_string(),
                        if f.installed { "yes" } else { "no" }.to_string(),
                        f.file.display().to_string(),
                        f.problem.clone().unwrap_or_else(|| servers.join(", ")),
                    ]
                })
                .collect();
            print_table(&["CLIENT", "INSTALLED", "CONFIG", "SERVERS (* written by mcpod)"], &rows);
        }
        ClientsCommand::Add { client: name, server, virtual_server, name: entry_name, token, sse, force, file } => {
            let client = client(&name)?;
            let api = Api::new(&args.api.api)?;
            let (path, id) = match (&server, &virtual_server) {
                (Some(id), _) => (format!("/api/v1/servers/{id}"), id.clone()),
                (None, Some(v)) => (format!("/api/v1/virtual/{v}"), v.clone()),
                (None, None) => anyhow::bail!("give --server ID or --virtual NAME"),
            };
            let status = api.call(reqwest::Method::GET, &path, None).await?;
            let key = if sse { "sse" } else { "streamable_http" };
            let url = status["endpoints"][key]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("the host reports no {key} endpoint for `{id}`"))?
                .to_string();
            let entry_name = entry_name.unwrap_or_else(|| format!("mcpod-{id}"));
            // A token made here is written to the token file only once the
            // entry is in place, so that a refused add changes nothing.
            let (token, made) = match token {
                Some(t) => (t, None),
                None => {
                    let path = super::tokens::tokens_file(file, &env)?;
                    let mut tokens = crate::identity::TokenFile::read(&path)?;
                    let token_name = token_name(client, &entry_name);
                    tokens.tokens.retain(|t| t.name != token_name);
                    let token = tokens.create(&token_name, crate::identity::Role::User)?;
                    (token, Some((tokens, path, token_name)))
                }
            };
            let entry = Entry {
                name: entry_name.clone(),
                url: url.clone(),
                transport: if sse { Transport::Sse } else { Transport::Http },
                headers: BTreeMap::from([("Authorization".to_string(), format!("Bearer {token}"))]),
            };
            let change = files::add(client, &places, &manifest, &entry, force, now())?;
            if let Some((tokens, path, token_name)) = made {
                tokens.write(&path)?;
                eprintln!("made token `{token_name}` (user role) in {}", path.display());
            }
            if let Some(backup) = &change.backup {
                eprintln!("backed up {} to {}", change.file.display(), backup.display());
            }
            println!("{} now reaches `{id}` as `{entry_name}` at {url} ({})", client.name(), change.file.display());
        }
        ClientsCommand::Remove { client: name, name: entry_name, force, file } => {
            let client = client(&name)?;
            let change = files::remove(client, &places, &manifest, &entry_name, force, now())?;
            if !change.changed {
                println!("{} has no entry `{entry_name}` ({})", client.name(), change.file.display());
            } else {
                if let Some(backup) = &change.backup {
                    eprintln!("backed up {} to {}", change.file.display(), backup.display());
                }
                println!("removed `{entry_name}` from {} ({})", client.name(), change.file.display());
            }
            let token_name = token_name(client, &entry_name);
            if let Ok(path) = super::tokens::tokens_file(file, &env)
                && let Ok(mut tokens) = crate::identity::TokenFile::read(&path)
                && tokens.revoke(&token_name).is_ok()
            {
                tokens.write(&path)?;
                eprintln!("revoked token `{token_name}` in {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
