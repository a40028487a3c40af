//! One running instance of a server: starts it through a runtime, connects
//! its upstream, performs the handshake, routes messages through the mux
//! and restarts it with backoff when it dies.

use super::mux::{Action, Mux, SessionId};
use crate::audit::{AuditLog, CallRecord};
use crate::identity::Principal;
use crate::jsonrpc::{Id, Message};
use crate::plugin::AdapterPlugin;
use crate::runtime::{LaunchRequest, Runtime};
use crate::upstream::Codecs;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};

mod sinks;
mod supervise;

pub use sinks::DirectSink;
use sinks::{SESSION_BUFFER, Sink, Upstream};

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

struct Inner {
    mux: Mux,
    sinks: HashMap<SessionId, Sink>,
    upstream: Option<Upstream>,
    host_waiters: HashMap<i64, oneshot::Sender<Message>>,
    /// Who each session acts for, for its audit records.
    principals: HashMap<SessionId, Arc<Principal>>,
    /// Audit records made under the lock, written once it is released.
    audits: Vec<(Arc<Principal>, SessionId, CallRecord)>,
    /// Sinks taken out under the lock, closed and dropped once it is
    /// released: a sink may hold the last reference to a client session,
    /// whose drop detaches it and so takes the lock again.
    closing: Vec<Sink>,
    /// Why the server refused `initialize`, for the run loop to restart it.
    refusal: Option<String>,
}

impl Inner {
    fn new(mux: Mux) -> Inner {
        Inner {
            mux,
            sinks: HashMap::new(),
            upstream: None,
            host_waiters: HashMap::new(),
            principals: HashMap::new(),
            audits: Vec::new(),
            closing: Vec::new(),
            refusal: None,
        }
    }
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
    /// Woken when the server refuses `initialize` (the reason is in `Inner`).
    refused: Notify,
    metrics: crate::metrics::ServerMetrics,
    audit: Option<Arc<AuditLog>>,
    /// Whether the server speaks MCP 2026-07-28 (found by `server/discover`).
    speaks_modern: Arc<std::sync::atomic::AtomicBool>,
}

/// What an instance needs to run.
pub struct InstanceSetup {
    /// The runtime that starts it.
    pub runtime: Arc<dyn Runtime>,
    /// Headers every request to a network server carries (a remote
    /// server's `Authorization`); secrets, never logged.
    pub headers: Vec<(String, String)>,
    /// Where a remote server's OAuth bearer token comes from.
    pub oauth: Option<Arc<crate::upstream::oauth::TokenSource>>,
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
    /// How long the server has to answer a request, or mcpod's `initialize`.
    pub request_timeout: Duration,
    /// Requests and bytes of parameters one session may have in flight.
    pub in_flight_budget: (usize, usize),
    /// How long a stdio server has to answer the `server/discover` probe
    /// before it is taken for a handshake-era one; zero: no probe.
    pub discover_timeout: Duration,
    /// Where the server's stderr lines are kept for `servers logs`.
    pub logs: crate::runtime::logs::LogBuffer,
    /// The server's message, error and round-trip metrics.
    pub metrics: crate::metrics::ServerMetrics,
    /// Where audited calls are recorded (`None`: an instance that never ran).
    pub audit: Option<Arc<AuditLog>>,
    /// What the server's clients see of it (`None`: everything).
    pub expose: Option<Arc<crate::expose::Expose>>,
    /// The access policies its sessions are held to (`None`: none).
    pub access: Option<Arc<crate::access::Access>>,
    /// Its server as the policies see it.
    pub server_facts: crate::access::ServerFacts,
    /// The host's launch slots: each run holds one until its handshake is
    /// done, at most `launches::MAX_HOLD`.
    pub launches: Arc<crate::runtime::launches::Launches>,
}

impl Instance {
    /// Starts an instance; it keeps running (and restarting) until `stop`.
    pub fn spawn(setup: InstanceSetup, admitted: Option<crate::runtime::launches::Ticket>) -> Arc<Instance> {
        let (state, _) = watch::channel(InstanceState::Starting);
        let instance = Arc::new(Instance {
            id: setup.request.instance_id.clone(),
            server_id: setup.request.server_id.clone(),
            inner: Mutex::new(Inner::new(
                Mux::showing(setup.expose.clone())
                    .governed_by(setup.access.clone(), setup.server_facts.clone())
                    .with_in_flight_budget(setup.in_flight_budget.0, setup.in_flight_budget.1),
            )),
            state,
            restarts: Default::default(),
            stop: Notify::new(),
            refused: Notify::new(),
            metrics: setup.metrics.clone(),
            audit: setup.audit.clone(),
            speaks_modern: Default::default(),
        });
        // Counted since its admission, or from now, so that admission sees
        // this start at once.
        let ticket = admitted.unwrap_or_else(|| setup.launches.ticket());
        tokio::spawn(instance.clone().supervise(setup, ticket));
        instance
    }

    /// An instance that never started, for a server that cannot run.
    pub fn failed(request: &LaunchRequest, reason: String, metrics: crate::metrics::ServerMetrics) -> Arc<Instance> {
        let (state, _) = watch::channel(InstanceState::Failed(reason));
        Arc::new(Instance {
            id: request.instance_id.clone(),
            server_id: request.server_id.clone(),
            inner: Mutex::new(Inner::new(Mux::new())),
            state,
            restarts: Default::default(),
            stop: Notify::new(),
            refused: Notify::new(),
            metrics,
            audit: None,
            speaks_modern: Default::default(),
        })
    }

    /// Whether the server speaks MCP 2026-07-28: such a client's requests
    /// then reach it with their own envelope.
    pub fn speaks_modern(&self) -> bool {
        self.speaks_modern.load(std::sync::atomic::Ordering::Acquire)
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

    /// Client requests the server has not answered yet.
    pub fn in_flight(&self) -> usize {
        self.lock().map(|i| i.mux.in_flight()).unwrap_or(0)
    }

    /// The server's `initialize` result, once known.
    pub fn initialize_result(&self) -> Option<serde_json::Value> {
        let inner = self.lock().ok()?;
        serde_json::from_str(inner.mux.initialize_result()?.get()).ok()
    }

    /// Follows the instance's state as it changes.
    pub fn watch_state(&self) -> watch::Receiver<InstanceState> {
        self.state.subscribe()
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

    /// Opens a client session acting for `principal`; deliveries arrive on
    /// the receiver. A `deaf` session is never asked anything: a server request it caused is refused, and shown to it so that its client hears why.
    pub fn attach_with(&self, deaf: bool, principal: Arc<Principal>) -> Option<(SessionId, mpsc::Receiver<Delivery>)> {
        let mut inner = self.lock().ok()?;
        let id = if deaf { inner.mux.open_deaf_session() } else { inner.mux.open_session() };
        inner.mux.act_as(id, principal.clone());
        let (tx, rx) = mpsc::channel(SESSION_BUFFER);
        inner.sinks.insert(id, Sink::Channel(tx));
        inner.principals.insert(id, principal);
        Some((id, rx))
    }

    /// Opens a client session for `principal` that the server's requests may go to.
    pub fn attach(&self, principal: Arc<Principal>) -> Option<(SessionId, mpsc::Receiver<Delivery>)> {
        self.attach_with(false, principal)
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

    /// Marks client `session` as waiting for its client's answers, or no
    /// longer ([`Mux::set_waiting`]).
    pub fn set_waiting(&self, session: SessionId, waiting: bool) {
        self.act(|inner| {
            inner.mux.set_waiting(session, waiting);
            Vec::new()
        });
    }

    /// New access policies came into force: each session is told its lists changed.
    pub fn policies_changed(&self) {
        self.act(|inner| inner.mux.policies_changed());
    }

    /// Closes a client session.
    pub fn detach(&self, session: SessionId) {
        self.act(|inner| {
            if let Some(sink) = inner.sinks.remove(&session) {
                inner.closing.push(sink);
            }
            inner.principals.remove(&session);
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
}
