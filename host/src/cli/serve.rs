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
}

/// Loads the config and plugins, then serves until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&args.config.config)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    crate::telemetry::init(&config.log);
    crate::app::listen_token(&config)?;
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
    tracing::info!(%addr, "mcpod listening");
    println!("mcpod listening on http://{addr}");
    let manager = app.manager.clone();
    // Streamed responses are written in small pieces; Nagle would hold them back.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app.router).with_graceful_shutdown(shutdown()).await.context("the HTTP server failed")?;
    manager.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

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
