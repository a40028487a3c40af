//! Virtual servers: one MCP endpoint in front of several servers. A
//! virtual server is a name and its members (servers by id, or every
//! server of a template, so that one started later joins); each client
//! session on it opens a session of the same principal on each member, so
//! that each member's access policies, exposure rules and audit apply as
//! on the member itself, and its questions reach only this client. The
//! routing rules are `bridge::federation`'s (pure); this is the glue that
//! carries out its actions and follows the members' state.

use super::{ClientSession, Manager, ManagerError, Target};
use crate::bridge::federation::{Action, Federation, MemberId, Routes};
use crate::bridge::{Delivery, DirectSink, InstanceState};
use crate::config::VirtualSpec;
use crate::expose::Expose;
use crate::identity::Principal;
use crate::jsonrpc::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;

/// Messages a virtual session holds for a client that is slow to read.
const BUFFER: usize = 4096;

/// One member as resolved now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// Its key (tools are `KEY__NAME`).
    pub key: String,
    /// The server.
    pub server: String,
    /// Its state (`ready`, `restarting`, ...).
    pub state: String,
    #[serde(skip)]
    expose: Option<Arc<Expose>>,
}

/// What the API shows of a virtual server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VirtualStatus {
    /// Its name.
    pub name: String,
    /// Its member rules.
    pub spec: VirtualSpec,
    /// Its members now: key, server and state.
    pub members: Vec<serde_json::Value>,
    /// Its endpoints, by transport.
    pub endpoints: BTreeMap<String, String>,
}

impl Manager {
    /// Creates (or replaces) a virtual server.
    pub fn create_virtual(&self, spec: VirtualSpec) -> Result<VirtualStatus, ManagerError> {
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(ManagerError::BadRequest { message: problems.join("; "), details: Vec::new() });
        }
        let name = spec.name.clone();
        self.virtuals
            .write()
            .map_err(|_| ManagerError::Failed("virtual server table poisoned".into()))?
            .insert(name.clone(), Arc::new(spec));
        tracing::info!(virtual_server = %name, "virtual server created");
        self.virtual_status(&name)
    }

    /// Deletes a virtual server (its open sessions end as their clients leave).
    pub fn delete_virtual(&self, name: &str) -> Result<(), ManagerError> {
        let removed = self.virtuals.write().ok().and_then(|mut v| v.remove(name));
        if let Ok(mut routes) = self.virtual_routes.lock() {
            routes.remove(name);
        }
        removed.map(|_| ()).ok_or_else(|| ManagerError::NotFound(format!("no virtual server `{name}`")))
    }

    /// Every virtual server.
    pub fn list_virtual(&self) -> Vec<VirtualStatus> {
        let names: Vec<String> = self.virtuals.read().map(|v| v.keys().cloned().collect()).unwrap_or_default();
        names.iter().filter_map(|n| self.virtual_status(n).ok()).collect()
    }

    /// One virtual server, its members as they are now.
    pub fn virtual_status(&self, name: &str) -> Result<VirtualStatus, ManagerError> {
        let spec =
            self.virtual_server(name).ok_or_else(|| ManagerError::NotFound(format!("no virtual server `{name}`")))?;
        let members = self
            .virtual_members(&spec)
            .into_iter()
            .map(|m| serde_json::json!({"key": m.key, "server": m.server, "state": m.state}))
            .collect();
        let endpoints = super::endpoints::of_virtual(&self.settings.public_url, name);
        Ok(VirtualStatus { name: name.to_string(), spec: (*spec).clone(), members, endpoints })
    }

    /// The resource routes the sessions of virtual server `name` share.
    fn virtual_routes(&self, name: &str) -> Arc<Mutex<Routes>> {
        match self.virtual_routes.lock() {
            Ok(mut all) => all.entry(name.to_string()).or_default().clone(),
            Err(_) => Default::default(),
        }
    }

    /// The virtual server `name`, if there is one.
    pub(super) fn virtual_server(&self, name: &str) -> Option<Arc<VirtualSpec>> {
        self.virtuals.read().ok()?.get(name).cloned()
    }

    /// The members of `spec` now, in rule order, each under a key of its own.
    pub(super) fn virtual_members(&self, spec: &VirtualSpec) -> Vec<Member> {
        let servers = self.servers.read().map(|s| s.clone()).unwrap_or_default();
        let mut out: Vec<Member> = Vec::new();
        for rule in &spec.members {
            let matching: Vec<&Arc<super::Server>> = match (&rule.server, &rule.template) {
                (Some(id), _) => servers.get(id).into_iter().collect(),
                (None, template) => {
                    let selected = |s: &&Arc<super::Server>| match template {
                        Some(t) => s.template.as_deref() == Some(t.as_str()),
                        None => {
                            !rule.selector.is_empty() && rule.selector.iter().all(|(k, v)| s.labels.get(k) == Some(v))
                        }
                    };
                    let mut found: Vec<_> = servers.values().filter(selected).collect();
                    found.sort_by_key(|s| s.created);
                    found
                }
            };
            for server in matching {
                if out.iter().any(|m| m.server == server.id) {
                    continue;
                }
                let wanted = rule.key.clone().or_else(|| server.template.clone()).unwrap_or_else(|| server.id.clone());
                let key = if out.iter().any(|m| m.key == wanted) { server.id.clone() } else { wanted };
                let state = server.instances.lock().ok().and_then(|l| l.first().map(|i| i.state()));
                out.push(Member {
                    key,
                    server: server.id.clone(),
                    state: state.map_or("starting".into(), |s| state_name(&s)),
                    expose: Some(Arc::new(rule.expose.clone())).filter(|e| !e.is_empty()),
                });
            }
        }
        out
    }

    /// The `initialize` result 2026-07-28 clients of a virtual server get.
    pub(super) async fn virtual_initialize(&self, spec: &VirtualSpec) -> serde_json::Value {
        let mut fed = Federation::new(&spec.name, true, Default::default());
        for m in self.virtual_members(spec) {
            let init = self.capabilities(&m.server).map(|c| c.initialize);
            fed.add_member(&m.key, m.expose, init, false);
        }
        fed.initialize_result(crate::rev_2026_07_28::HANDSHAKE_VERSIONS[0])
    }

    /// Opens a session on virtual server `spec` for `who`: a session on
    /// each member (`stateless`: a 2026-07-28 request's, `Some(askable)`).
    pub(super) async fn open_virtual(
        &self,
        spec: &VirtualSpec,
        who: Arc<Principal>,
        stateless: Option<bool>,
    ) -> Result<ClientSession, ManagerError> {
        let (tx, rx) = mpsc::channel(BUFFER);
        let v = Arc::new(VirtualSession {
            name: spec.name.clone(),
            spec: Arc::new(spec.clone()),
            who: who.clone(),
            stateless,
            inner: Mutex::new(Inner {
                fed: Federation::new(&spec.name, stateless.is_some(), self.virtual_routes(&spec.name)),
                members: Vec::new(),
                sink: None,
                tx: Some(tx),
            }),
        });
        for m in self.virtual_members(spec) {
            self.join(&v, m, false).await;
        }
        if let Ok(mut open) = self.virtual_sessions.lock() {
            open.retain(|s| s.strong_count() > 0);
            open.push(Arc::downgrade(&v));
        }
        Ok(ClientSession::on_virtual(v, rx))
    }

    /// Opens a session on member `m` for `v` and follows it; a member that
    /// cannot take a session now is left out (it joins a later session).
    async fn join(&self, v: &Arc<VirtualSession>, m: Member, announce: bool) {
        if let Some(access) = &self.access {
            let verdict = access.decide_on(&v.who, crate::access::Act::Connect, &self.policy_facts(&m.server), None);
            if !verdict.allowed {
                tracing::info!(virtual_server = %v.name, server = %m.server, principal = %v.who.name,
                    "member left out: policy denies connect ({})", verdict.reason);
                return;
            }
        }
        // Boxed: a member is a server, never a virtual one, but the compiler
        // sees `open_*` → `open_virtual` → `join` as a cycle.
        let opened = match v.stateless {
            Some(askable) => {
                let target = Target { server: m.server.clone(), handle: None };
                Box::pin(self.open_stateless(&target, askable, v.who.clone())).await
            }
            None => Box::pin(self.open_member_session(&m.server, v.who.clone())).await,
        };
        let mut session = match opened {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(virtual_server = %v.name, server = %m.server, "member left out of a session: {e}");
                return;
            }
        };
        let deliveries = session.take_deliveries();
        let states = session.state_changes();
        let alive = session.serving();
        let init = self.capabilities(&m.server).map(|c| c.initialize);
        let Ok(mut inner) = v.inner.lock() else { return };
        let (member, mut actions) = inner.fed.add_member(&m.key, m.expose.clone(), init, announce);
        if !alive {
            actions.extend(inner.fed.set_alive(member, false));
        }
        inner.members.push(Some(Linked { server: m.server.clone(), session }));
        let closing = v.apply(&mut inner, actions);
        drop(inner);
        VirtualSession::finish(closing);
        let weak = Arc::downgrade(v);
        tokio::spawn(follow(weak, member, deliveries, states));
    }

    /// A server started: every open virtual session whose rules it matches
    /// (a member template's, or its id) takes it as a member, and its
    /// client hears that the lists changed.
    pub(super) async fn server_started(&self) {
        let open: Vec<Arc<VirtualSession>> = match self.virtual_sessions.lock() {
            Ok(mut open) => {
                open.retain(|s| s.strong_count() > 0);
                open.iter().filter_map(Weak::upgrade).collect()
            }
            Err(_) => return,
        };
        for v in open {
            self.refresh_members(&v).await;
        }
    }

    /// Adds to `v` the members that match its rules now but were not there
    /// when it opened.
    async fn refresh_members(&self, v: &Arc<VirtualSession>) {
        let known: Vec<String> = match v.inner.lock() {
            Ok(inner) => inner.members.iter().flatten().map(|l| l.server.clone()).collect(),
            Err(_) => return,
        };
        for m in self.virtual_members(&v.spec) {
            if !known.contains(&m.server) {
                self.join(v, m, true).await;
            }
        }
    }
}

/// An instance state as the API names it.
fn state_name(state: &InstanceState) -> String {
    match state {
        InstanceState::Starting => "starting",
        InstanceState::Ready => "ready",
        InstanceState::Restarting(_) => "restarting",
        InstanceState::Failed(_) => "failed",
        InstanceState::Stopped => "stopped",
    }
    .to_string()
}

/// One member's session.
struct Linked {
    server: String,
    session: ClientSession,
}

struct Inner {
    fed: Federation,
    /// By member id; `None` once the member's session ended.
    members: Vec<Option<Linked>>,
    /// Where the client's deliveries go in place, once redirected.
    sink: Option<Arc<dyn DirectSink>>,
    /// The client's channel; `None` once the session is closed.
    tx: Option<mpsc::Sender<Delivery>>,
}

/// A client's session on a virtual server.
pub struct VirtualSession {
    name: String,
    spec: Arc<VirtualSpec>,
    who: Arc<Principal>,
    stateless: Option<bool>,
    inner: Mutex<Inner>,
}

/// What must happen once the lock is released: the client's sink told
/// that the session ended, members' sessions closed.
type Closing = Option<(Option<Arc<dyn DirectSink>>, Vec<Linked>)>;

impl VirtualSession {
    /// The virtual server's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Routes one client message.
    pub(super) fn send(&self, msg: Message) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let actions = inner.fed.from_client(msg);
        let closing = self.apply(&mut inner, actions);
        drop(inner);
        Self::finish(closing);
    }

    /// Delivers to `sink` in place from now on.
    pub(super) fn redirect(&self, sink: Arc<dyn DirectSink>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.sink = Some(sink);
        }
    }

    /// Ends the session and every member session.
    pub(super) fn close(&self) {
        let members: Vec<Linked> = match self.inner.lock() {
            Ok(mut inner) => {
                inner.tx = None;
                inner.sink = None;
                inner.members.iter_mut().filter_map(Option::take).collect()
            }
            Err(_) => Vec::new(),
        };
        drop(members);
    }

    /// Carries out `actions` under the lock; returns what to finish after it.
    fn apply(&self, inner: &mut Inner, actions: Vec<Action>) -> Closing {
        for action in actions {
            match action {
                Action::ToMember { member, msg } => {
                    if let Some(Some(linked)) = inner.members.get(member) {
                        linked.session.send(msg);
                    }
                }
                Action::ToClient { msg, related } => {
                    let d = Delivery { msg, related };
                    let taken = match (&inner.sink, &inner.tx) {
                        (Some(sink), _) => sink.deliver(d),
                        (None, Some(tx)) => tx.try_send(d).is_ok(),
                        (None, None) => true,
                    };
                    if !taken {
                        tracing::warn!(virtual_server = %self.name, "client is not reading; closing its session");
                        inner.tx = None;
                        let members = inner.members.iter_mut().filter_map(Option::take).collect();
                        return Some((inner.sink.take(), members));
                    }
                }
            }
        }
        None
    }

    fn finish(closing: Closing) {
        if let Some((sink, members)) = closing {
            drop(members);
            if let Some(sink) = sink {
                sink.closed();
            }
        }
    }

    fn on_member(&self, member: MemberId, d: Delivery) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let actions = inner.fed.from_member(member, d.msg, d.related);
        let closing = self.apply(&mut inner, actions);
        drop(inner);
        Self::finish(closing);
    }

    fn set_alive(&self, member: MemberId, alive: bool) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let actions = inner.fed.set_alive(member, alive);
        let closing = self.apply(&mut inner, actions);
        drop(inner);
        Self::finish(closing);
    }
}

/// Follows member `member` of `v`: its messages, and its instance's state
/// (down while restarting); ends with the member's session or `v`.
async fn follow(
    v: Weak<VirtualSession>,
    member: MemberId,
    mut deliveries: super::Deliveries,
    states: Option<tokio::sync::watch::Receiver<InstanceState>>,
) {
    let mut states = states;
    loop {
        let changed = async {
            match states.as_mut() {
                Some(rx) => rx.changed().await.ok().map(|()| rx.borrow().clone()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            d = deliveries.recv() => {
                let Some(v) = v.upgrade() else { return };
                match d {
                    Some(d) => v.on_member(member, d),
                    None => {
                        v.set_alive(member, false);
                        if let Ok(mut inner) = v.inner.lock() && let Some(slot) = inner.members.get_mut(member) {
                            slot.take();
                        }
                        return;
                    }
                }
            }
            state = changed => {
                let Some(v) = v.upgrade() else { return };
                match state {
                    Some(s) => v.set_alive(member, matches!(s, InstanceState::Starting | InstanceState::Ready)),
                    None => states = None,
                }
            }
        }
    }
}
