//! `mcpod serve`: the host itself.

use super::ConfigArg;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::plugin::PluginHost;
use anyhow::Context;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `mcpod serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The address to listen on (overrides `server.listen`).
    #[arg(long, env = "MCPOD_LISTEN")]
    listen: Option<SocketAddr>,
}

/// Loads the config and plugins, then serves until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&args.config.config)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    crate::telemetry::init(&config.log);
    super::install_crypto();
    let plugins = PluginHost::load(&config).await?;
    let failures = plugins.failures().len();
    tracing::info!(loaded = plugins.plugins().count(), failed = failures, pooling = plugins.pooling(), "plugins ready");
    let state = AppState { plugins: Arc::new(plugins) };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}; is another mcpod running? pick another with --listen", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "mcpod listening");
    println!("mcpod listening on http://{addr}");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown())
        .await
        .context("the HTTP server failed")?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
