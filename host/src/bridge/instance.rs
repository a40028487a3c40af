//! One running instance of a server: starts it through a runtime, connects
//! its upstream, performs the handshake, routes messages through the mux
//! and restarts it with backoff when it dies.

use super::mux::{Action, Mux, SessionId};
use crate::jsonrpc::{Id, Message};
use crate::plugin::{AdapterPlugin, AdapterSession};
use crate::runtime::{Connection, LaunchRequest, Runtime};
use crate::upstream::{self, Codecs, Link, stdio};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// A message for a client session, and the client request it belongs to.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub msg: Message,
    /// The client's request this answers or reports progress on.
    pub related: Option<Id>,
}

/// Where an instance is in its life.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum InstanceState {
    /// Launching or handshaking for the first time.
    Starting,
    /// Handshake done; serving.
    Ready,
    /// Died; coming back after a backoff.
    Restarting(String),
    /// Gave up (too many failures, or it cannot start at all).
    Failed(String),
    /// Stopped on request.
    Stopped,
}

/// How restarts are paced.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// Consecutive failed starts before giving up.
    pub max_restarts: u32,
    /// The first backoff; it doubles per consecutive failure.
    pub backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy { max_restarts: 5, backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(30) }
    }
}

/// A session's deliveries handed over in place, on the upstream reader's
/// task: no channel, no extra task hop. Must not block, and must not call
/// back into the instance.
pub trait DirectSink: Send + Sync {
    /// Takes one delivery; false if the client cannot take it (the session is then closed).
    fn deliver(&self, d: Delivery) -> bool;
    /// The instance ended the session (it gave up, or the client stopped reading).
    fn closed(&self);
}

/// Where one session's deliveries go.
enum Sink {
    /// A bounded channel the client reads.
    Channel(mpsc::Sender<Delivery>),
    /// Handed over in place.
    Direct(Arc<dyn DirectSink>),
}

impl Sink {
    fn deliver(&self, d: Delivery) -> bool {
        match self {
            Sink::Channel(tx) => tx.try_send(d).is_ok(),
            Sink::Direct(s) => s.deliver(d),
        }
    }

    fn closed(self) {
        if let Sink::Direct(s) = self {
            s.closed();
        }
    }
}

/// How many deliveries may wait for a slow client before it is cut off.
const SESSION_BUFFER: usize = 4096;

/// Where messages for the server go.
enum Upstream {
    /// A process's stdin, written by the sending task itself.
    Stdin(Arc<stdio::StdinWriter>),
    /// The task that speaks to a server over the network.
    Link(mpsc::UnboundedSender<Message>),
}

impl Upstream {
    fn send(&self, msg: Message) {
        match self {
            Upstream::Stdin(w) => w.queue(msg),
            Upstream::Link(tx) => {
                let _ = tx.send(msg);
            }
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Upstream::Stdin(w) = self {
            w.close();
        }
    }
}

struct Inner {
    mux: Mux,
    sinks: HashMap<SessionId, Sink>,
    upstream: Option<Upstream>,
    host_waiters: HashMap<i64, oneshot::Sender<Message>>,
}

/// A running (or restarting) server instance.
pub struct Instance {
    /// The instance id.
    pub id: String,
    /// Its server.
    pub server_id: String,
    inner: Mutex<Inner>,
    state: watch::Sender<InstanceState>,
    restarts: std::sync::atomic::AtomicU32,
    stop: Notify,
    metrics: crate::metrics::ServerMetrics,
}

/// What an instance needs to run.
pub struct InstanceSetup {
    /// The runtime that starts it.
    pub runtime: Arc<dyn Runtime>,
    /// What to start.
    pub request: LaunchRequest,
    /// The adapter that frames its stdio.
    pub adapter: AdapterPlugin,
    /// The adapters of a network upstream (`None`: they are not loaded).
    pub network: Option<Codecs>,
    /// The largest message accepted from it.
    pub max_message_bytes: u32,
    /// The `initialize` params mcpod sends it.
    pub init_params: Box<RawValue>,
    /// Restart pacing.
    pub restart: RestartPolicy,
    /// Where the server's stderr lines are kept for `servers logs`.
    pub logs: crate::runtime::logs::LogBuffer,
    /// The server's message, error and round-trip metrics.
    pub metrics: crate::metrics::ServerMetrics,
}

impl Instance {
    /// Starts an instance; it keeps running (and restarting) until `stop`.
    pub fn spawn(setup: InstanceSetup) -> Arc<Instance> {
        let (state, _) = watch::channel(InstanceState::Starting);
        let instance = Arc::new(Instance {
            id: setup.request.instance_id.clone(),
            server_id: setup.request.server_id.clone(),
            inner: Mutex::new(Inner {
                mux: Mux::new(),
                sinks: HashMap::new(),
                upstream: None,
                host_waiters: HashMap::new(),
            }),
            state,
            restarts: Default::default(),
            stop: Notify::new(),
            metrics: setup.metrics.clone(),
        });
        tokio::spawn(instance.clone().supervise(setup));
        instance
    }

    /// An instance that never started, for a server that cannot run.
    pub fn failed(request: &LaunchRequest, reason: String, metrics: crate::metrics::ServerMetrics) -> Arc<Instance> {
        let (state, _) = watch::channel(InstanceState::Failed(reason));
        Arc::new(Instance {
            id: request.instance_id.clone(),
            server_id: request.server_id.clone(),
            inner: Mutex::new(Inner {
                mux: Mux::new(),
                sinks: HashMap::new(),
                upstream: None,
                host_waiters: HashMap::new(),
            }),
            state,
            restarts: Default::default(),
            stop: Notify::new(),
            metrics,
        })
    }

    /// The current state.
    pub fn state(&self) -> InstanceState {
        self.state.borrow().clone()
    }

    /// How many times it was restarted.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Open client sessions.
    pub fn session_count(&self) -> usize {
        self.lock().map(|i| i.mux.session_count()).unwrap_or(0)
    }

    /// The server's `initialize` result, once known.
    pub fn initialize_result(&self) -> Option<serde_json::Value> {
        let inner = self.lock().ok()?;
        serde_json::from_str(inner.mux.initialize_result()?.get()).ok()
    }

    /// Waits until ready, failed or stopped, at most `timeout`.
    pub async fn wait_settled(&self, timeout: Duration) -> InstanceState {
        let mut rx = self.state.subscribe();
        let settled = |s: &InstanceState| !matches!(s, InstanceState::Starting | InstanceState::Restarting(_));
        let _ = tokio::time::timeout(timeout, rx.wait_for(settled)).await;
        self.state()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, ()> {
        self.inner.lock().map_err(|_| ())
    }

    /// Opens a client session; deliveries arrive on the receiver. A `deaf`
    /// session is never sent the server's requests.
    pub fn attach_with(&self, deaf: bool) -> Option<(SessionId, mpsc::Receiver<Delivery>)> {
        let mut inner = self.lock().ok()?;
        let id = if deaf { inner.mux.open_deaf_session() } else { inner.mux.open_session() };
        let (tx, rx) = mpsc::channel(SESSION_BUFFER);
        inner.sinks.insert(id, Sink::Channel(tx));
        Some((id, rx))
    }

    /// Opens a client session that the server's requests may go to.
    pub fn attach(&self) -> Option<(SessionId, mpsc::Receiver<Delivery>)> {
        self.attach_with(false)
    }

    /// Hands `session`'s deliveries to `sink` in place from now on.
    pub fn redirect(&self, session: SessionId, sink: Arc<dyn DirectSink>) {
        if let Ok(mut inner) = self.lock()
            && inner.sinks.contains_key(&session)
        {
            inner.sinks.insert(session, Sink::Direct(sink));
        }
    }

    /// How many client sessions are attached.
    pub fn attached(&self) -> usize {
        self.lock().map(|i| i.sinks.len()).unwrap_or(0)
    }

    /// Routes one message from client `session`; what it sends the server
    /// is written from the caller's task, before this returns, when it can be.
    pub fn send(&self, session: SessionId, msg: Message) {
        self.act(|inner| inner.mux.from_client(session, msg));
    }

    /// Closes a client session.
    pub fn detach(&self, session: SessionId) {
        self.act(|inner| {
            inner.sinks.remove(&session);
            inner.mux.close_session(session)
        });
    }

    /// Makes a request of the host's own and waits for the answer.
    pub async fn host_call(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Duration,
    ) -> Result<Message, String> {
        let (tx, rx) = oneshot::channel();
        let sent = self.act(|inner| {
            let (id, action) = inner.mux.host_request(method, params);
            inner.host_waiters.insert(id, tx);
            vec![action]
        });
        if !sent {
            return Err("instance state poisoned".to_string());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(msg)) => Ok(msg),
            Ok(Err(_)) => Err("the instance went away".to_string()),
            Err(_) => Err(format!("no answer to {method} within {} s", timeout.as_secs())),
        }
    }

    /// Stops the instance for good.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    fn deliver_from_server(&self, msg: Message) {
        self.act(|inner| inner.mux.from_server(msg));
    }

    /// Runs `f` on the locked state and carries out the actions it returns.
    /// What they send to a stdio server is written from the calling task
    /// once the lock is released, so no other session waits on the write.
    /// False when the state is poisoned and nothing was done.
    fn act(&self, f: impl FnOnce(&mut Inner) -> Vec<Action>) -> bool {
        let stdin = {
            let Ok(mut inner) = self.lock() else { return false };
            let actions = f(&mut inner);
            self.apply(&mut inner, actions);
            match &inner.upstream {
                Some(Upstream::Stdin(w)) if w.has_queued() => Some(w.clone()),
                _ => None,
            }
        };
        if let Some(w) = stdin {
            w.flush();
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
                            sink.closed();
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
                }
                Action::HostResponse { id, msg } => {
                    if let Some(tx) = inner.host_waiters.remove(&id) {
                        let _ = tx.send(msg);
                    }
                }
            }
        }
    }

    async fn supervise(self: Arc<Self>, setup: InstanceSetup) {
        let mut failures: u32 = 0;
        let mut first = true;
        loop {
            let started = tokio::time::Instant::now();
            let outcome = self.run_once(&setup, first).await;
            first = false;
            let reason = match outcome {
                RunOutcome::Stopped => {
                    self.state.send_replace(InstanceState::Stopped);
                    return;
                }
                RunOutcome::Exited(how) => how,
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
        let Ok(mut inner) = self.lock() else { return };
        let actions = inner.mux.server_lost("the server could not be started");
        self.apply(&mut inner, actions);
        // Dropping the sinks ends every client stream.
        for (_, sink) in inner.sinks.drain() {
            sink.closed();
        }
    }

    async fn run_once(self: &Arc<Self>, setup: &InstanceSetup, first: bool) -> RunOutcome {
        let launched = tokio::select! {
            r = setup.runtime.launch(&setup.request) => r,
            _ = self.stop.notified() => return RunOutcome::Stopped,
        };
        let launched = match launched {
            Ok(l) => l,
            Err(e) => return RunOutcome::Exited(e.to_string()),
        };
        // Ends when the upstream is gone: stdout closed, or the network link lost.
        let mut upstream_done: tokio::task::JoinHandle<String> = match launched.connection {
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
                if let Ok(mut inner) = self.lock() {
                    inner.upstream = Some(Upstream::Stdin(writer));
                }
                tokio::spawn(crate::runtime::logs::log_stderr(self.server_id.clone(), stderr, setup.logs.clone()));
                let me = self.clone();
                let server = self.server_id.clone();
                tokio::spawn(async move {
                    let deliver = |msg| me.deliver_from_server(msg);
                    stdio::read_loop(server, stdout, dec, deliver).await;
                    "the server closed its stdout".to_string()
                })
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
                let link = Link {
                    server: self.server_id.clone(),
                    url,
                    transport: spec.transport,
                    codecs,
                    max_message_bytes: setup.max_message_bytes,
                };
                tokio::spawn(upstream::run(link, rx, deliver))
            }
        };
        self.act(|inner| inner.mux.begin_handshake(if first { Some(setup.init_params.clone()) } else { None }));
        let network = !matches!(setup.request.spec.transport, crate::plugin::bindings::Transport::Stdio);
        let how = tokio::select! {
            how = launched.exited => how.unwrap_or_else(|_| "the runtime lost track of it".to_string()),
            lost = &mut upstream_done, if network => {
                // The process may live on; stop it so that the restart starts clean.
                let _ = setup.runtime.stop(&self.id).await;
                lost.unwrap_or_else(|e| format!("the upstream task failed: {e}"))
            }
            _ = self.stop.notified() => {
                let _ = setup.runtime.stop(&self.id).await;
                upstream_done.abort();
                self.lose("stopped on request");
                return RunOutcome::Stopped;
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

enum RunOutcome {
    Stopped,
    Exited(String),
}
