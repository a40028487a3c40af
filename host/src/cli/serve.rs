//! `mcpod serve`: the host itself.

use super::ConfigArg;
use crate::config::Config;
use anyhow::Context;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Arguments of `mcpod serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The address to listen on (overrides `server.listen`).
    #[arg(long, env = "MCPOD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Serve without any token (loopback only; sets `server.insecure_no_auth`).
    /// Without it and without a configured token, mcpod generates one.
    #[arg(long, env = "MCPOD_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
}

/// Loads the config and plugins, then serves until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&args.config.config)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    config.server.insecure_no_auth |= args.insecure_no_auth;
    crate::telemetry::init(&config.log);
    if config.server.state_dir.is_none() {
        config.server.state_dir = crate::config::xdg_dir(&|k| std::env::var(k).ok(), "XDG_STATE_HOME", ".local/state");
    }
    // Settled before binding, so that a refusal comes before anything starts.
    crate::app::admin_token(&config)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another mcpod running? pick another address with --listen",
            config.server.listen
        )
    })?;
    let addr = listener.local_addr()?;
    config.server.listen = addr;
    let app = crate::app::build(&config, None).await?;
    tracing::info!(
        loaded = app.plugins.plugins().count(),
        failed = app.plugins.failures().len(),
        pooling = app.plugins.pooling(),
        runtime = app.manager.runtime_name(),
        "plugins ready"
    );
    tell_token_source(&app.token_source);
    tracing::info!(%addr, "mcpod listening");
    println!("mcpod listening on http://{addr}");
    let (manager, audit) = (app.manager.clone(), app.audit.clone());
    let grace = std::time::Duration::from_secs(config.limits.shutdown_grace_secs);
    let (closing, closed) = tokio::sync::watch::channel(false);
    let limits = config.limits.connection_limits();
    let mut http =
        tokio::spawn(crate::listen::serve(listener, app.router, limits, app.metrics.connections.clone(), async move {
            let mut closed = closed;
            let _ = closed.wait_for(|c| *c).await;
        }));
    tokio::select! {
        done = &mut http => {
            manager.shutdown().await;
            done.context("the HTTP server task failed")?;
            anyhow::bail!("the HTTP listener stopped on its own; see the log above");
        }
        _ = shutdown() => {}
    }
    // Stop accepting; the calls in flight finish (up to the grace period),
    // then every stream ends and every server stops: all bounded.
    let _ = closing.send(true);
    manager.drain(grace).await;
    if tokio::time::timeout(CONNECTIONS_CLOSE, &mut http).await.is_err() {
        tracing::warn!("client connections still open after the drain; closing them");
        http.abort();
    }
    // The last records reach their sink before the process ends.
    let _ = tokio::task::spawn_blocking(move || audit.flush(std::time::Duration::from_secs(5))).await;
    Ok(ExitCode::SUCCESS)
}

/// Says where the admin token is when this start created it (once), and
/// warns on every start that runs without one.
fn tell_token_source(source: &crate::auth::TokenSource) {
    use crate::auth::TokenSource;
    match source {
        TokenSource::Generated { path, created: true } => eprintln!(
            "mcpod: generated an admin token in {} (readable by you only); the CLI on this machine uses it, other clients send it as `Authorization: Bearer <token>` (`mcpod tokens admin` prints it)",
            path.display()
        ),
        TokenSource::Generated { path, created: false } => {
            tracing::info!(file = %path.display(), "admin token from the generated token file")
        }
        TokenSource::Disabled => tracing::warn!(
            "running without any token (--insecure-no-auth): every local process and user can run servers through this host"
        ),
        TokenSource::Env | TokenSource::File(_) => {}
    }
}

/// How long open connections get to close once every stream has ended.
const CONNECTIONS_CLOSE: std::time::Duration = std::time::Duration::from_millis(300);

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
