//! The instance's shell around its mux: carrying out the mux's actions,
//! and the supervisor that launches the server, connects its upstream,
//! handshakes, and restarts it with backoff until it is stopped.

use super::*;
use crate::plugin::AdapterSession;
use crate::runtime::Connection;
use crate::runtime::launches::Ticket;
use crate::upstream::{self, Link, UpstreamError, stdio};

impl Instance {
    pub(super) fn deliver_from_server(&self, msg: Message) {
        self.act(|inner| inner.mux.from_server(msg));
    }

    /// Runs `f` on the locked state and carries out the actions it returns.
    /// What they send to a stdio server is written from the calling task
    /// once the lock is released, so no other session waits on the write.
    /// False when the state is poisoned and nothing was done.
    pub(super) fn act(&self, f: impl FnOnce(&mut Inner) -> Vec<Action>) -> bool {
        let (stdin, audits, closing) = {
            let Ok(mut inner) = self.lock() else { return false };
            let actions = f(&mut inner);
            self.apply(&mut inner, actions);
            let stdin = match &inner.upstream {
                Some(Upstream::Stdin(w)) if w.has_queued() => Some(w.clone()),
                _ => None,
            };
            (stdin, std::mem::take(&mut inner.audits), std::mem::take(&mut inner.closing))
        };
        for sink in closing {
            sink.closed();
        }
        if let Some(w) = stdin {
            w.flush();
        }
        if let Some(log) = &self.audit {
            for (principal, session, call) in audits {
                log.call(&principal, &self.server_id, Some(format!("{}/{session}", self.id)), call);
            }
        }
        true
    }

    fn apply(&self, inner: &mut Inner, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::ToServer(msg) => match &inner.upstream {
                    Some(upstream) => {
                        self.metrics.to_server.inc();
                        upstream.send(msg);
                    }
                    None => tracing::debug!(server = %self.server_id, "no upstream; message dropped"),
                },
                Action::ToClient { session, msg, related } => {
                    self.metrics.to_client.inc();
                    if msg.error.is_some() {
                        self.metrics.errors.inc();
                    }
                    let full = match inner.sinks.get(&session) {
                        Some(sink) => !sink.deliver(Delivery { msg, related }),
                        None => false,
                    };
                    if full {
                        tracing::warn!(server = %self.server_id, session, "client is not reading; closing its session");
                        if let Some(sink) = inner.sinks.remove(&session) {
                            inner.closing.push(sink);
                        }
                        let more = inner.mux.close_session(session);
                        self.apply(inner, more);
                    }
                }
                Action::RoundTrip(d) => self.metrics.round_trip.observe(d.as_secs_f64()),
                Action::Ready => {
                    self.state.send_replace(InstanceState::Ready);
                }
                Action::HandshakeFailed(why) => {
                    tracing::warn!(server = %self.server_id, instance = %self.id, "handshake failed: {why}");
                    inner.refusal = Some(why);
                    self.refused.notify_one();
                }
                Action::Audit { session, call } => {
                    if self.audit.is_some()
                        && let Some(principal) = inner.principals.get(&session).cloned()
                    {
                        inner.audits.push((principal, session, call));
                    }
                }
                Action::HostResponse { id, msg } => {
                    if let Some(tx) = inner.host_waiters.remove(&id) {
                        let _ = tx.send(msg);
                    }
                }
            }
        }
    }

    pub(super) async fn supervise(self: Arc<Self>, setup: InstanceSetup, ticket: Ticket) {
        let mut failures: u32 = 0;
        let mut first = true;
        let mut ticket = Some(ticket);
        loop {
            let started = tokio::time::Instant::now();
            let ticket = ticket.take().unwrap_or_else(|| setup.launches.ticket());
            let outcome = self.run_once(&setup, first, ticket).await;
            first = false;
            let reason = match outcome {
                RunOutcome::Stopped => {
                    self.state.send_replace(InstanceState::Stopped);
                    return;
                }
                RunOutcome::Exited(how) => how,
                RunOutcome::Failed(why) => {
                    tracing::error!(server = %self.server_id, instance = %self.id, "cannot start, and retrying cannot help: {why}");
                    self.state.send_replace(InstanceState::Failed(why));
                    self.fail_waiting();
                    return;
                }
            };
            if started.elapsed() > Duration::from_secs(60) {
                failures = 0;
            }
            failures += 1;
            if failures > setup.restart.max_restarts {
                tracing::error!(server = %self.server_id, instance = %self.id, "giving up after {} failed starts: {reason}", failures - 1);
                self.state.send_replace(InstanceState::Failed(reason));
                self.fail_waiting();
                return;
            }
            self.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let backoff =
                setup.restart.backoff.saturating_mul(1 << (failures - 1).min(16)).min(setup.restart.max_backoff);
            tracing::warn!(server = %self.server_id, instance = %self.id, backoff_ms = backoff.as_millis() as u64, "server stopped ({reason}); restarting");
            self.state.send_replace(InstanceState::Restarting(reason));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.notified() => {
                    self.state.send_replace(InstanceState::Stopped);
                    self.fail_waiting();
                    return;
                }
            }
        }
    }

    /// Answers everything still waiting once the instance gives up.
    fn fail_waiting(&self) {
        self.end_sessions("the server could not be started");
    }

    /// Answers every request still in flight with an error naming `why`,
    /// and ends every client session's stream (the host shuts down, or
    /// the instance gave up).
    pub fn end_sessions(&self, why: &str) {
        self.act(|inner| {
            let actions = inner.mux.server_lost(why);
            self.apply(inner, actions);
            let ended: Vec<Sink> = inner.sinks.drain().map(|(_, sink)| sink).collect();
            inner.closing.extend(ended);
            Vec::new()
        });
    }

    async fn run_once(self: &Arc<Self>, setup: &InstanceSetup, first: bool, ticket: Ticket) -> RunOutcome {
        // A launch slot is held until the handshake is done (or this run
        // ends, or MAX_HOLD passes), so that starts take turns on the CPUs.
        let mut state = self.state.subscribe();
        let limit = setup.launches.limit();
        if limit > 0 && setup.launches.pending() > limit {
            tracing::info!(server = %self.server_id, instance = %self.id, "waiting for a launch slot (limits.max_concurrent_launches = {})", setup.launches.limit());
        }
        let mut slot = tokio::select! {
            slot = setup.launches.slot(ticket) => Some(slot),
            _ = self.stop.notified() => return RunOutcome::Stopped,
        };
        let slot_until = tokio::time::Instant::now() + crate::runtime::launches::MAX_HOLD;
        let launched = tokio::select! {
            r = holding(&mut slot, slot_until, setup.runtime.launch(&setup.request)) => r,
            _ = self.stop.notified() => return RunOutcome::Stopped,
        };
        let launched = match launched {
            Ok(l) => l,
            Err(e) if e.is_permanent() => return RunOutcome::Failed(e.to_string()),
            Err(e) => return RunOutcome::Exited(e.to_string()),
        };
        self.metrics.launched.inc();
        // Counts the end of this run, however it ends.
        let _ended = Ended(self.metrics.ended.clone());
        // Ends when the upstream is gone: stdout closed, or the network link lost.
        let mut upstream_done: tokio::task::JoinHandle<UpstreamError> = match launched.connection {
            Connection::Stdio { stdin, stdout, stderr } => {
                let (enc, dec) = match (
                    AdapterSession::open(setup.adapter.clone(), setup.max_message_bytes),
                    AdapterSession::open(setup.adapter.clone(), setup.max_message_bytes),
                ) {
                    (Ok(e), Ok(d)) => (e, d),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = setup.runtime.stop(&self.id).await;
                        return RunOutcome::Exited(format!("cannot open the stdio adapter: {e}"));
                    }
                };
                let writer = stdio::StdinWriter::spawn(self.server_id.clone(), stdin, enc);
                tokio::spawn(crate::runtime::logs::log_stderr(self.server_id.clone(), stderr, setup.logs.clone()));
                let me = self.clone();
                let to_mux: upstream::Deliver = Arc::new(move |msg| me.deliver_from_server(msg));
                // Everything the server writes passes the exchange: answers
                // to mcpod's own requests (the probe; a 2026-07-28 server's
                // every request) are taken there, the rest reaches the mux.
                let exchange = stdio::StdioExchange::new(writer.clone(), to_mux.clone());
                let reader = exchange.clone();
                let server = self.server_id.clone();
                let read = tokio::spawn(async move {
                    stdio::read_loop(server, stdout, dec, |msg| reader.route(msg)).await;
                    reader.end();
                    UpstreamError::Lost("the server closed its stdout".to_string())
                });
                let discovered = if setup.discover_timeout.is_zero() {
                    None
                } else {
                    let wire = upstream::rev_2026_07_28::Wire::Stdio(exchange.clone());
                    tokio::select! {
                        found = holding(&mut slot, slot_until, upstream::rev_2026_07_28::discover(&wire, &setup.init_params, setup.discover_timeout)) => found,
                        _ = self.stop.notified() => {
                            let _ = setup.runtime.stop(&self.id).await;
                            read.abort();
                            return RunOutcome::Stopped;
                        }
                    }
                };
                self.speaks_modern.store(discovered.is_some(), std::sync::atomic::Ordering::Release);
                match discovered {
                    Some(found) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        if let Ok(mut inner) = self.lock() {
                            inner.upstream = Some(Upstream::Link(tx));
                        }
                        tokio::spawn(upstream::rev_2026_07_28::run_stdio(exchange, rx, to_mux, found));
                    }
                    None => {
                        drop(exchange);
                        if let Ok(mut inner) = self.lock() {
                            inner.upstream = Some(Upstream::Stdin(writer));
                        }
                    }
                }
                read
            }
            Connection::Network { base_url } => {
                let spec = &setup.request.spec;
                let (Some(codecs), Ok(url)) =
                    (setup.network.clone(), base_url.join(spec.path.as_deref().unwrap_or("/")))
                else {
                    let _ = setup.runtime.stop(&self.id).await;
                    return RunOutcome::Exited(format!(
                        "cannot reach {base_url}: the http, sse and websocket adapters must be loaded and `path` must be a URL path"
                    ));
                };
                let (tx, rx) = mpsc::unbounded_channel();
                if let Ok(mut inner) = self.lock() {
                    inner.upstream = Some(Upstream::Link(tx));
                }
                tracing::info!(server = %self.server_id, instance = %self.id, %url, "connecting to the server");
                let me = self.clone();
                let deliver: upstream::Deliver = Arc::new(move |msg| me.deliver_from_server(msg));
                self.speaks_modern.store(false, std::sync::atomic::Ordering::Release);
                let link = Link {
                    server: self.server_id.clone(),
                    url,
                    transport: spec.transport,
                    codecs,
                    max_message_bytes: setup.max_message_bytes,
                    headers: setup.headers.clone(),
                    oauth: setup.oauth.clone(),
                    speaks_modern: self.speaks_modern.clone(),
                };
                tokio::spawn(upstream::run(link, rx, deliver))
            }
        };
        self.act(|inner| {
            inner.refusal = None; // a refusal of an earlier run is no reason to end this one
            inner.mux.begin_handshake(if first { Some(setup.init_params.clone()) } else { None })
        });
        let network = setup.request.spec.transport.is_network();
        let mut exited = launched.exited;
        let mut sweep = tokio::time::interval(DEADLINE_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let how = loop {
            tokio::select! {
                changed = state.changed(), if slot.is_some() => {
                    if changed.is_err() || matches!(*state.borrow_and_update(), InstanceState::Ready) {
                        slot = None;
                    }
                }
                _ = tokio::time::sleep_until(slot_until), if slot.is_some() => {
                    tracing::debug!(server = %self.server_id, instance = %self.id, "not ready after the launch slot's hold; letting the next start go");
                    slot = None;
                }
                how = &mut exited => break how.unwrap_or_else(|_| "the runtime lost track of it".to_string()),
                lost = &mut upstream_done, if network => {
                    // The process may live on; stop it so that the restart starts clean.
                    let _ = setup.runtime.stop(&self.id).await;
                    break lost.map(|e| e.to_string()).unwrap_or_else(|e| format!("the upstream task failed: {e}"));
                }
                _ = self.stop.notified() => {
                    let _ = setup.runtime.stop(&self.id).await;
                    upstream_done.abort();
                    self.lose("stopped on request");
                    return RunOutcome::Stopped;
                }
                _ = self.refused.notified() => {
                    // A server that refuses the handshake serves nobody: start
                    // it again (with backoff, counted) rather than wait for
                    // the handshake deadline.
                    if let Some(why) = self.lock().ok().and_then(|mut inner| inner.refusal.take()) {
                        let _ = setup.runtime.stop(&self.id).await;
                        break why;
                    }
                }
                _ = sweep.tick() => {
                    let now = std::time::Instant::now();
                    let mut hung = false;
                    self.act(|inner| {
                        hung = inner.mux.handshake_overdue(now, setup.request_timeout);
                        inner.mux.expire(now, setup.request_timeout)
                    });
                    if hung {
                        // A server that never answers `initialize` is hung: restart it.
                        let _ = setup.runtime.stop(&self.id).await;
                        break format!(
                            "no answer to initialize within {} s (limits.request_timeout_secs)",
                            setup.request_timeout.as_secs()
                        );
                    }
                }
            }
        };
        if network {
            // The link ends once `lose` drops its sender.
            self.lose(&how);
        }
        if !upstream_done.is_finished() {
            // What the server wrote before it exited is still delivered.
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut upstream_done).await;
            upstream_done.abort();
        }
        if !network {
            self.lose(&how);
        }
        RunOutcome::Exited(how)
    }

    /// The upstream is gone: in-flight requests fail now.
    fn lose(&self, how: &str) {
        let Ok(mut inner) = self.lock() else { return };
        inner.upstream = None;
        let actions = inner.mux.server_lost(how);
        self.apply(&mut inner, actions);
    }
}

/// How often an instance looks for requests past their deadline.
const DEADLINE_SWEEP: Duration = Duration::from_secs(1);

enum RunOutcome {
    Stopped,
    Exited(String),
    /// Starting again cannot help (a missing program): give up at once.
    Failed(String),
}

/// Counts the end of a run when dropped.
struct Ended(prometheus_client::metrics::counter::Counter);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.inc();
    }
}

/// Awaits `work`, letting `slot` go once `until` passes: a start holds its
/// launch slot at most [`crate::runtime::launches::MAX_HOLD`], also while
/// it launches (a pod waiting to be scheduled) or probes the server.
async fn holding<T>(
    slot: &mut Option<crate::runtime::launches::Slot>,
    until: tokio::time::Instant,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    if slot.is_some() {
        tokio::select! {
            out = &mut work => return out,
            _ = tokio::time::sleep_until(until) => {
                slot.take();
            }
        }
    }
    work.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::launches::Launches;
    use std::time::Duration;

    #[tokio::test]
    async fn a_launch_that_outlasts_the_hold_lets_its_slot_go_and_still_finishes() {
        let launches = Launches::new(Some(1), 0);
        let mut slot = Some(launches.slot(launches.ticket()).await);
        let (done, work) = tokio::sync::oneshot::channel::<&str>();
        let until = tokio::time::Instant::now() + Duration::from_millis(50);
        let launch = tokio::spawn(async move { holding(&mut slot, until, work).await });
        // The next start gets the slot while the first is still launching.
        let next = tokio::time::timeout(Duration::from_secs(10), launches.slot(launches.ticket())).await;
        assert!(next.is_ok(), "the slot was let go at the hold's end");
        assert!(!launch.is_finished(), "the launch itself goes on");
        done.send("launched").unwrap();
        assert_eq!(launch.await.unwrap(), Ok("launched"));
    }
}
