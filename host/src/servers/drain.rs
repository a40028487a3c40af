//! Shutting down without hanging or leaking: new sessions are refused at
//! once, calls in flight get until the grace period ends, whatever is
//! still waiting then gets an error, every client stream ends, and every
//! server is stopped (or, on a runtime whose instances outlive the host,
//! left for the next host to adopt).

use super::{Manager, Server};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the drain looks whether the calls in flight are done.
const POLL: Duration = Duration::from_millis(50);

/// The least time servers get to stop, however late the drain ran.
const LEAST_STOP: Duration = Duration::from_millis(500);

impl Manager {
    /// True once the host began to shut down: sessions are refused and
    /// `/readyz` says not ready.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Client requests in flight to every server.
    pub fn in_flight(&self) -> usize {
        self.all_servers()
            .iter()
            .flat_map(|s| s.instances.lock().map(|l| l.clone()).unwrap_or_default())
            .map(|i| i.in_flight())
            .sum()
    }

    fn all_servers(&self) -> Vec<Arc<Server>> {
        self.servers.read().map(|s| s.values().cloned().collect()).unwrap_or_default()
    }

    /// Shuts down within `grace`: refuses new sessions, waits for the calls
    /// in flight (at most until `grace` is over), answers the rest with an
    /// error, ends every client stream, then stops every server. Bounded:
    /// returns within `grace` plus about a second, whatever the servers do.
    pub async fn drain(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        self.draining.store(true, Ordering::Relaxed);
        let waiting = self.in_flight();
        tracing::info!(in_flight = waiting, grace_secs = grace.as_secs(), "draining: no new sessions");
        while self.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        let left = self.in_flight();
        if left > 0 {
            tracing::warn!(in_flight = left, "grace period over; answering what is left with an error");
        }
        for server in self.all_servers() {
            for instance in server.instances.lock().map(|l| l.clone()).unwrap_or_default() {
                instance.end_sessions("mcpod is shutting down");
            }
        }
        let budget = deadline.saturating_duration_since(tokio::time::Instant::now()).max(LEAST_STOP);
        if tokio::time::timeout(budget, self.shutdown()).await.is_err() {
            tracing::warn!("servers did not stop in time; killing what is left");
            self.runtime.shutdown().await;
        }
    }
}
