//! `mcpod tokens …`: the tokens that reach a host.

use crate::identity::{Role, TokenFile};
use std::path::PathBuf;
use std::process::ExitCode;

/// `mcpod tokens …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Print the admin token this machine's CLI sends: MCPOD_API_TOKEN, or
    /// the one `mcpod serve` generated on first start. Give it to other
    /// clients on this machine as `Authorization: Bearer <token>`.
    Admin {
        /// Print the token file's path instead of the token.
        #[arg(long)]
        path: bool,
    },
    /// Create a named token and print it (once: only its SHA-256 is kept).
    /// A running host accepts it within two seconds, no restart needed.
    Create {
        /// The principal's name, as logs will show it (`alice`, `ci-bot`).
        name: String,
        /// `user` (MCP traffic, listings) or `admin` (also starts and stops
        /// servers, reads logs, inspects plugins).
        #[arg(long, default_value = "user")]
        role: String,
        /// The token file (default: MCPOD_TOKENS_FILE, else `tokens.toml` in
        /// the user's config directory; pass the file of `[auth] tokens_file`
        /// if the host's config names one).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List the named tokens: names and roles (never the tokens).
    List {
        /// The token file (as for `create`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Revoke a named token; a running host refuses it within two seconds.
    Revoke {
        /// The token's name.
        name: String,
        /// The token file (as for `create`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// The token file a command works on.
pub(super) fn tokens_file(file: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<PathBuf> {
    file.or_else(|| crate::identity::tokens_file(None, env)).ok_or_else(|| {
        anyhow::anyhow!(
            "no token file: pass --file PATH or set MCPOD_TOKENS_FILE (neither XDG_CONFIG_HOME nor HOME is set)"
        )
    })
}

/// Runs a `tokens` subcommand.
pub fn run(cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    match cmd {
        TokensCommand::Admin { path: true } => match crate::auth::default_token_file(&env) {
            Some(p) => println!("{}", p.display()),
            None => anyhow::bail!("neither XDG_CONFIG_HOME nor HOME is set, so there is no token file"),
        },
        TokensCommand::Admin { path: false } => match crate::auth::cli_token(&env)? {
            Some(t) => println!("{t}"),
            None => anyhow::bail!(
                "no admin token here: MCPOD_API_TOKEN is unset and `mcpod serve` has not generated one yet (start it once on this machine)"
            ),
        },
        TokensCommand::Create { name, role, file } => {
            let Some(role) = Role::parse(&role) else {
                anyhow::bail!("unknown role {role:?}; use --role user or --role admin")
            };
            let path = tokens_file(file, &env)?;
            let mut tokens = TokenFile::read(&path)?;
            let token = tokens.create(&name, role)?;
            tokens.write(&path)?;
            eprintln!("created token `{name}` ({}) in {}; it is shown once:", role.as_str(), path.display());
            println!("{token}");
        }
        TokensCommand::List { file } => {
            let path = tokens_file(file, &env)?;
            let tokens = TokenFile::read(&path)?;
            let rows: Vec<Vec<String>> =
                tokens.tokens.iter().map(|t| vec![t.name.clone(), t.role.as_str().to_string()]).collect();
            super::print_table(&["NAME", "ROLE"], &rows);
        }
        TokensCommand::Revoke { name, file } => {
            let path = tokens_file(file, &env)?;
            let mut tokens = TokenFile::read(&path)?;
            tokens.revoke(&name)?;
            tokens.write(&path)?;
            eprintln!("revoked token `{name}` in {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
