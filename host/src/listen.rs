//! The HTTP listener: mcpod's own accept loop over hyper, because
//! `axum::serve` bounds nothing per connection. Here every connection is
//! bounded: at most `max_connections` are open at once (the next waits in
//! the kernel's backlog until one closes), each request's headers must
//! arrive within `header_read_timeout` (hyper starts that clock whenever a
//! connection waits for a request, so a keep-alive connection left idle
//! that long is closed too: slowloris and silent connections cost a slot
//! for that long, no more), and a stop lets the requests in flight finish
//! before the connections close.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

mod repoll;

/// What bounds each connection (`[limits]` of the config).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a request's headers may take to arrive, and how long a
    /// keep-alive connection may wait idle for its next request.
    pub header_read_timeout: Duration,
}

/// How long a failed `accept` (out of file descriptors, ...) waits before
/// the next one, so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` within `limits` until `stop` completes;
/// then stops accepting, asks each open connection to close after its
/// current request, and returns once they have (the caller bounds that
/// wait). `open` counts the connections open now.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    open: Gauge,
    stop: impl Future<Output = ()> + Send,
) {
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max));
    let (closing, closed) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Streamed responses are written in small pieces; Nagle would hold them back.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = http.serve_connection(TokioIo::new(tcp), service).with_upgrades();
        let mut closed = closed.clone();
        let open = open.clone();
        open.inc();
        // hyper wakes a connection's task as its handler reads the body:
        // polled again in place, not through the scheduler (`repoll`).
        tokio::spawn(repoll::Repoll::new(async move {
            let _slot = slot;
            tokio::pin!(conn);
            let stopping = async move {
                let _ = closed.wait_for(|c| *c).await;
            };
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopping => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            open.dec();
        }));
    }
    let _ = closing.send(true);
    drop(listener);
    // Every slot back means every connection closed.
    let _ = slots.acquire_many(max as u32).await;
}
