//! `mcpod tokens …`: the tokens that reach a host.

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
    }
    Ok(ExitCode::SUCCESS)
}
