//! Client sessions on a server's instances: one per handshake-era client
//! (an instance of its own in `per-session` mode), short-lived ones for
//! 2026-07-28 requests on the instance those clients share.

use super::request::Sharing;
use super::{Manager, ManagerError, Server, Target, handles};
use crate::bridge::{Delivery, DirectSink, Instance, InstanceState, SessionId};
use crate::identity::Principal;
use crate::jsonrpc::Message;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// A client's session on a server, or on a virtual server.
pub struct ClientSession {
    backend: Backend,
    rx: mpsc::Receiver<Delivery>,
    closed: bool,
    /// The place it takes among its principal's sessions, if counted.
    slot: Option<super::per_principal::Slot>,
}

/// What a client session talks to.
enum Backend {
    /// One session on one instance of a server.
    Instance { server: Arc<Server>, instance: Arc<Instance>, session: SessionId, owns_instance: bool },
    /// A virtual server's session, in front of one session per member.
    Virtual(Arc<super::virtuals::VirtualSession>),
}

/// The interactive turn of one instance (or of each member of a virtual
/// server), held while a request that may be asked for input runs.
pub struct Turn(#[allow(dead_code)] Vec<tokio::sync::OwnedMutexGuard<()>>);

/// A session's stream of messages for its client, taken out of the session
/// so that one task reads it while another sends (legacy SSE: `/messages`
/// POSTs send, the event stream reads).
pub struct Deliveries(mpsc::Receiver<Delivery>);

impl Deliveries {
    /// The next message for the client; `None` once the session has ended.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.0.recv().await
    }
}

impl ClientSession {
    /// The next message for the client; `None` once the session has ended
    /// (or its stream was taken with [`ClientSession::take_deliveries`]).
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// Takes the stream of messages for the client out of the session.
    pub fn take_deliveries(&mut self) -> Deliveries {
        Deliveries(std::mem::replace(&mut self.rx, mpsc::channel(1).1))
    }

    /// A session on `instance` of `server`.
    fn on_instance(
        server: Arc<Server>,
        instance: Arc<Instance>,
        session: SessionId,
        owns_instance: bool,
        rx: mpsc::Receiver<Delivery>,
    ) -> ClientSession {
        ClientSession {
            backend: Backend::Instance { server, instance, session, owns_instance },
            rx,
            closed: false,
            slot: None,
        }
    }

    /// A session on a virtual server.
    pub(super) fn on_virtual(v: Arc<super::virtuals::VirtualSession>, rx: mpsc::Receiver<Delivery>) -> ClientSession {
        ClientSession { backend: Backend::Virtual(v), rx, closed: false, slot: None }
    }

    /// Sends one client message to the server.
    pub fn send(&self, msg: Message) {
        match &self.backend {
            Backend::Instance { instance, session, .. } => instance.send(*session, msg),
            Backend::Virtual(v) => v.send(msg),
        }
    }

    /// Hands this session's deliveries to `sink` in place instead of `rx`
    /// (what already waits in `rx` goes first).
    pub fn redirect(&mut self, sink: Arc<dyn DirectSink>) {
        match &self.backend {
            Backend::Instance { instance, session, .. } => instance.redirect(*session, sink.clone()),
            Backend::Virtual(v) => v.redirect(sink.clone()),
        }
        while let Ok(d) = self.rx.try_recv() {
            sink.deliver(d);
        }
    }

    /// The server's id (a virtual server's name).
    pub fn server_id(&self) -> &str {
        match &self.backend {
            Backend::Instance { server, .. } => &server.id,
            Backend::Virtual(v) => v.name(),
        }
    }

    /// Marks the session as waiting for its client's answers, or no
    /// longer: while it waits, the server's requests that name none of its
    /// requests are not put to it. False for a virtual server's session,
    /// which cannot be marked (its request keeps the members' turns).
    pub fn set_waiting(&self, waiting: bool) -> bool {
        match &self.backend {
            Backend::Instance { instance, session, .. } => {
                instance.set_waiting(*session, waiting);
                true
            }
            Backend::Virtual(_) => false,
        }
    }

    /// Whether the server behind this session speaks MCP 2026-07-28 (never
    /// for a virtual server, whose members may differ).
    pub fn speaks_modern(&self) -> bool {
        self.instance().is_some_and(|i| i.speaks_modern())
    }

    /// The instance this session is on (none for a virtual server's).
    fn instance(&self) -> Option<&Arc<Instance>> {
        match &self.backend {
            Backend::Instance { instance, .. } => Some(instance),
            Backend::Virtual(_) => None,
        }
    }

    /// Whether the session's server can serve now: its instance is
    /// starting or ready (not restarting, failed or stopped).
    pub(super) fn serving(&self) -> bool {
        self.instance().is_none_or(|i| matches!(i.state(), InstanceState::Starting | InstanceState::Ready))
    }

    /// Changes of the instance's state (a virtual server follows its members' with it).
    pub(super) fn state_changes(&self) -> Option<tokio::sync::watch::Receiver<InstanceState>> {
        self.instance().map(|i| i.watch_state())
    }

    /// Ends the session (and its instance, in per-session mode).
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.slot = None;
        match &self.backend {
            Backend::Instance { server, instance, session, owns_instance } => {
                instance.detach(*session);
                server.sessions.fetch_sub(1, Ordering::Relaxed);
                if *owns_instance {
                    instance.stop();
                    if let Ok(mut list) = server.instances.lock() {
                        list.retain(|i| !Arc::ptr_eq(i, instance));
                    }
                }
            }
            Backend::Virtual(v) => v.close(),
        }
    }
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        self.close();
    }
}

impl Manager {
    /// Refuses one more session or instance handle past `open` on server `id`.
    pub(super) fn check_session_limit(&self, id: &str, open: usize) -> Result<(), ManagerError> {
        if open >= self.settings.max_sessions_per_server {
            return Err(ManagerError::Limit(format!(
                "server `{id}` already has {open} sessions and instance handles (limits.max_sessions_per_server); close one or raise the limit"
            )));
        }
        Ok(())
    }

    /// The instance 2026-07-28 requests to `target` go to, if it runs.
    fn stateless_instance(&self, server: &Server, target: &Target) -> Option<Arc<Instance>> {
        match (&target.handle, server.sharing) {
            (Some(token), _) => Some(self.handle(server, token).ok()?.instance.clone()),
            (None, Sharing::Shared) => server.instances.lock().ok()?.first().cloned(),
            (None, Sharing::PerSession) => server.stateless.lock().ok()?.clone(),
        }
    }

    /// Opens a session for one 2026-07-28 request. Those clients have no
    /// session, so they share one instance of the server: the shared one,
    /// or for a per-session server, one kept for them; or the instance of
    /// the handle the target names.
    /// `askable`: whether the server's requests may be sent to it (only one
    /// such request in flight per instance: see [`Manager::interactive_turn`]).
    pub async fn open_stateless(
        &self,
        target: &Target,
        askable: bool,
        who: Arc<Principal>,
    ) -> Result<ClientSession, ManagerError> {
        if self.is_draining() {
            return Err(ManagerError::Draining);
        }
        let id = target.server.as_str();
        if let Some(v) = self.virtual_server(id) {
            return self.open_virtual(&v, who, Some(askable)).await;
        }
        let server = self.get(id)?;
        let alive = |i: &Arc<Instance>| !matches!(i.state(), InstanceState::Failed(_) | InstanceState::Stopped);
        let instance = match (&target.handle, server.sharing) {
            (Some(token), _) => self.handle(&server, token)?.instance.clone(),
            (None, Sharing::Shared) => match server.instances.lock().ok().and_then(|l| l.first().cloned()) {
                Some(i) if alive(&i) => i,
                _ => self.spawn_instance(&server, None),
            },
            (None, Sharing::PerSession) => {
                let kept = server.stateless.lock().ok().and_then(|s| s.clone());
                match kept {
                    Some(i) if alive(&i) => i,
                    _ => {
                        let fresh = self.spawn_instance(&server, None);
                        if let Ok(mut slot) = server.stateless.lock() {
                            *slot = Some(fresh.clone());
                        }
                        fresh
                    }
                }
            }
        };
        let (session, rx) = instance
            .attach_with(!askable, who)
            .ok_or_else(|| ManagerError::Failed(format!("server `{id}` cannot take requests right now")))?;
        server.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(ClientSession::on_instance(server, instance, session, false, rx))
    }

    /// Waits until no other 2026-07-28 request that may be asked for input
    /// is in flight (or parked on its client's input) on the target's
    /// instance; the guard holds the turn. The wait is bounded by the
    /// server's request timeout, then refused with a 429 to retry. A
    /// virtual server's request takes the turn of every member, in the
    /// order of their ids (so two such requests cannot each hold a part).
    pub async fn interactive_turn(&self, target: &Target) -> Result<Turn, ManagerError> {
        let (locks, timeout) = match self.virtual_server(&target.server) {
            Some(v) => {
                let servers: Vec<Arc<Server>> =
                    self.virtual_members(&v).into_iter().filter_map(|m| self.get(&m.server).ok()).collect();
                let timeout = servers.iter().map(|s| s.request_timeout).max().unwrap_or(self.settings.request_timeout);
                (servers.iter().map(|s| s.interactive.clone()).collect::<Vec<_>>(), timeout)
            }
            None => {
                let server = self.get(&target.server)?;
                if self.stateless_instance(&server, target).is_some_and(|i| i.speaks_modern()) {
                    // A 2026-07-28 server names the request each of its
                    // questions serves: nothing to take turns for.
                    return Ok(Turn(Vec::new()));
                }
                let lock = match &target.handle {
                    Some(token) => self.handle(&server, token)?.interactive.clone(),
                    None => server.interactive.clone(),
                };
                (vec![lock], server.request_timeout)
            }
        };
        let take_all = async {
            let mut held = Vec::new();
            for lock in locks {
                held.push(lock.lock_owned().await);
            }
            Turn(held)
        };
        tokio::time::timeout(timeout, take_all).await.map_err(|_| {
            ManagerError::Limit(format!(
                "another client's request to server `{}` that may ask for input is still running or waiting for its \
                 user's answer, and such requests take turns on one instance (so that each question reaches its \
                 asker); retry shortly, or use an instance handle of your own",
                target.server
            ))
        })
    }

    /// The `initialize` result of the instance 2026-07-28 requests to
    /// `target` use, once it is ready (waits up to the start timeout).
    pub async fn stateless_initialize(&self, target: &Target) -> Result<serde_json::Value, ManagerError> {
        let id = target.server.as_str();
        if let Some(v) = self.virtual_server(id) {
            return Ok(self.virtual_initialize(&v).await);
        }
        let session = self.open_stateless(target, false, Arc::new(Principal::host())).await?;
        let instance = session.instance().ok_or_else(|| ManagerError::NotFound(format!("no server `{id}`")))?;
        let state = instance.wait_settled(self.settings.start_timeout).await;
        instance.initialize_result().ok_or_else(|| {
            ManagerError::Failed(format!(
                "server `{id}` is not ready ({state:?}); `mcpod servers status {id}` says why"
            ))
        })
    }

    /// Counts one more session of `who` (a principal without the admin
    /// role) against `limits.max_sessions_per_principal`.
    pub(super) fn reserve_session(&self, who: &Principal) -> Result<Option<super::per_principal::Slot>, ManagerError> {
        if who.role == crate::identity::Role::Admin {
            return Ok(None);
        }
        let max = self.settings.max_sessions_per_principal;
        let slot = self.sessions_by_principal.take(&who.name, 0, max).map_err(|open| {
            ManagerError::Limit(format!(
                "`{}` holds {open} client sessions open, the most one principal may (limits.max_sessions_per_principal = {max}); close one (end a client's session) first",
                who.name
            ))
        })?;
        Ok(Some(slot))
    }

    /// Opens a client session on server (or virtual server) `id`, acting
    /// for `who`, counted against its principal's session limit (a virtual
    /// server's session counts once, not once per member).
    pub async fn open_session(&self, id: &str, who: Arc<Principal>) -> Result<ClientSession, ManagerError> {
        if self.is_draining() {
            return Err(ManagerError::Draining);
        }
        let slot = self.reserve_session(&who)?;
        let mut session = match self.virtual_server(id) {
            Some(v) => self.open_virtual(&v, who, None).await?,
            None => self.open_member_session(id, who).await?,
        };
        session.slot = slot;
        Ok(session)
    }

    /// Opens a session on server `id` for `who`, uncounted: a virtual
    /// server's session on one of its members.
    pub(super) async fn open_member_session(
        &self,
        id: &str,
        who: Arc<Principal>,
    ) -> Result<ClientSession, ManagerError> {
        if self.is_draining() {
            return Err(ManagerError::Draining);
        }
        let server = self.get(id)?;
        self.check_session_limit(
            id,
            server.sessions.load(Ordering::Relaxed) as usize + handles::handle_count(&server),
        )?;
        let (instance, owns) = match server.sharing {
            Sharing::Shared => {
                let current = server.instances.lock().ok().and_then(|l| l.first().cloned());
                match current {
                    Some(i) if !matches!(i.state(), InstanceState::Failed(_) | InstanceState::Stopped) => (i, false),
                    _ => (self.spawn_instance(&server, None), false),
                }
            }
            Sharing::PerSession => {
                let spare = server.spare.lock().ok().and_then(|mut s| s.take());
                match spare {
                    Some(i) if !matches!(i.state(), InstanceState::Failed(_) | InstanceState::Stopped) => (i, true),
                    // A remote server's instance is a connection: it needs
                    // neither memory nor a launch slot here.
                    _ if server.spec.remote_url().is_some() => (self.spawn_instance(&server, None), true),
                    _ => {
                        let admitted = self.admit_instance()?;
                        (self.spawn_instance(&server, Some(admitted)), true)
                    }
                }
            }
        };
        let (session, rx) = instance
            .attach(who)
            .ok_or_else(|| ManagerError::Failed(format!("server `{id}` cannot take sessions right now")))?;
        server.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(ClientSession::on_instance(server, instance, session, owns, rx))
    }
}
