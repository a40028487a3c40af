//! The session multiplexer of one server instance, as a pure state machine:
//! client and server messages in, routed messages out. No I/O, so every
//! routing rule is tested alone.
//!
//! mcpod performs the `initialize` handshake with the server itself, once
//! per instance, and answers each client's `initialize` from the cached
//! result. Client request ids are rewritten to ids unique on the upstream
//! connection, so that any number of sessions share one server without
//! cross-talk; progress tokens and cancellations are mapped the same way.

use crate::audit::{CallRecord, Outcome};
use crate::expose::Expose;
use crate::jsonrpc::{Id, IdField, Kind, Message, code, raw};
use crate::rev_2026_07_28::META_RELATED;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

mod access;
mod deadline;
mod expose;
mod from_client;
mod from_server;
#[cfg(test)]
mod tests;

/// A client session's number within one instance.
pub type SessionId = u64;

/// Something the shell around the mux must do.
#[derive(Debug)]
pub enum Action {
    /// Send this message to the server.
    ToServer(Message),
    /// Deliver this message to a client session; `related` is the client's
    /// request it belongs to (a response, or progress of that request).
    ToClient {
        /// The session.
        session: SessionId,
        /// The message, with the client's own ids restored.
        msg: Message,
        /// The client request this message belongs to.
        related: Option<Id>,
    },
    /// The handshake completed; `initialize` is cached.
    Ready,
    /// The server refused the handshake (answered `initialize` with an
    /// error): the instance restarts it rather than wait for the deadline.
    HandshakeFailed(String),
    /// A client request was answered after this long.
    RoundTrip(std::time::Duration),
    /// An audited call of `session` was answered (or lost).
    Audit {
        /// The session that made the call.
        session: SessionId,
        /// What was called and how it ended.
        call: CallRecord,
    },
    /// The answer to a request the host itself made (`host_request`).
    HostResponse {
        /// The host request's id.
        id: i64,
        /// The response.
        msg: Message,
    },
}

/// Where an upstream request came from.
#[derive(Debug)]
struct Pending {
    /// `None` for the host's own requests.
    session: Option<SessionId>,
    client_id: Id,
    token: Option<String>,
    sent: std::time::Instant,
    /// When the server last showed it works on this request: when it was
    /// sent, or its latest progress notification.
    heard: std::time::Instant,
    /// What the audit record of this call will say, for audited methods.
    audit: Option<Audited>,
    /// The bytes of its parameters, counted against its session's in-flight budget.
    bytes: usize,
    /// The listing it asks for, when the server's exposure rules filter it.
    listing: Option<expose::Listing>,
}

/// The audit facts of a call, taken when it is sent.
#[derive(Debug)]
struct Audited {
    method: String,
    name: Option<String>,
    args_sha256: Option<String>,
}

impl Audited {
    /// The audit facts of `msg`, if its method is audited: the name it
    /// calls and a digest of its arguments' JSON text as the client sent
    /// them (never the arguments). Reads only those fields, borrowing
    /// them: this runs on every audited call.
    fn of(msg: &Message) -> Option<Audited> {
        let method = msg.method();
        if !crate::audit::AUDITED.contains(&method) {
            return None;
        }
        let params: AuditedParams<'_> =
            msg.params.as_ref().and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default();
        let (name, args) = match method {
            "tools/call" | "prompts/get" => (params.name, params.arguments),
            "resources/read" => (params.uri, None),
            _ => (params.reference.and_then(|r| r.name.or(r.uri)), params.argument),
        };
        let args_sha256 = args.map(|a| crate::audit::digest(a.get()));
        Some(Audited { method: method.to_string(), name: name.map(std::borrow::Cow::into_owned), args_sha256 })
    }

    /// The record of a call mcpod refused before it reached the server.
    fn denied(self, client_id: &Id) -> CallRecord {
        let mut record = self.record(client_id, None, std::time::Duration::ZERO);
        record.outcome = Outcome::Denied;
        record
    }

    /// The record of the call answered by `answer` (`None`: lost) after `took`.
    fn record(self, client_id: &Id, answer: Option<&Message>, took: std::time::Duration) -> CallRecord {
        let (outcome, error_code) = match answer {
            None => (Outcome::Failed, None),
            Some(m) if m.error.is_some() => {
                let code = m.error.as_ref().and_then(|e| serde_json::from_str::<Value>(e.get()).ok());
                (Outcome::Error, code.and_then(|e| e.get("code").and_then(Value::as_i64)))
            }
            Some(m) if tool_error(m) => (Outcome::ToolError, None),
            Some(_) => (Outcome::Ok, None),
        };
        CallRecord {
            method: self.method,
            name: self.name,
            args_sha256: self.args_sha256,
            request_id: client_id.clone(),
            outcome,
            error_code,
            policy: None,
            duration: took,
        }
    }
}

/// The fields of an audited call's parameters that its record names.
#[derive(Default, serde::Deserialize)]
struct AuditedParams<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default)]
    argument: Option<&'a RawValue>,
    #[serde(rename = "ref", borrow, default)]
    reference: Option<AuditedRef<'a>>,
}

/// A `completion/complete` reference: a prompt's name or a resource's URI.
#[derive(serde::Deserialize)]
struct AuditedRef<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<std::borrow::Cow<'a, str>>,
}

/// True if `m` is a tool result with `isError: true`.
fn tool_error(m: &Message) -> bool {
    m.result.as_ref().is_some_and(|r| {
        r.get().contains("\"isError\"")
            && serde_json::from_str::<Value>(r.get()).ok().and_then(|v| v.get("isError")?.as_bool()) == Some(true)
    })
}

/// The state of mcpod's own handshake with the server.
#[derive(Debug)]
enum Handshake {
    Idle,
    /// `initialize` went out with this id at this time.
    Sent(i64, std::time::Instant),
    Ready(Box<RawValue>),
}

/// Per-session routing state.
#[derive(Debug, Default)]
struct Session {
    /// Resource URIs this session subscribed to.
    subscriptions: Vec<String>,
    /// Whether the server's requests (sampling, elicitation, roots) may go
    /// to this session; a 2026-07-28 request that cannot be asked opts out.
    deaf: bool,
    /// Waiting for its client's answers (a 2026-07-28 request parked on
    /// `input_required`): asked nothing new meanwhile, so that the
    /// instance's other sessions may be asked.
    waiting: bool,
    /// Whom it acts for, when access policies govern the server.
    who: Option<Arc<crate::identity::Principal>>,
}

/// How many client requests may wait for a (re)starting server.
const MAX_QUEUED: usize = 1024;

/// How many requests one session may have in flight at once, and how many
/// bytes of parameters they may carry, unless configured
/// (`limits.max_requests_in_flight_per_session`,
/// `limits.max_in_flight_kib_per_session`): past either, its next request is
/// refused at once, so that a client that sends without waiting for answers
/// cannot queue without end on the way to the server.
pub const MAX_IN_FLIGHT_PER_SESSION: (usize, usize) = (64, 16 << 20);

/// The multiplexer of one server instance.
#[derive(Debug)]
pub struct Mux {
    handshake: Handshake,
    init_params: Option<Box<RawValue>>,
    sessions: BTreeMap<SessionId, Session>,
    next_session: SessionId,
    next_upstream: i64,
    pending: HashMap<i64, Pending>,
    progress: HashMap<String, (SessionId, Value)>,
    server_requests: HashMap<Id, SessionId>,
    waiting_init: Vec<(SessionId, Id)>,
    queued: VecDeque<(SessionId, Message)>,
    /// The server's exposure rules, if it has any.
    expose: Option<Arc<Expose>>,
    /// The access policies, when they govern this server.
    governed: Option<access::Governed>,
    /// Requests and bytes of parameters one session may have in flight.
    in_flight_budget: (usize, usize),
}

impl Default for Mux {
    fn default() -> Self {
        Mux::new()
    }
}

impl Mux {
    /// An idle mux with no sessions.
    pub fn new() -> Mux {
        Mux::showing(None)
    }

    /// An idle mux that applies `expose` (if set and not empty) to every
    /// session's calls and listings.
    pub fn showing(expose: Option<Arc<Expose>>) -> Mux {
        Mux {
            expose: expose.filter(|e| !e.is_empty()),
            governed: None,
            handshake: Handshake::Idle,
            init_params: None,
            sessions: BTreeMap::new(),
            next_session: 1,
            next_upstream: 1,
            pending: HashMap::new(),
            progress: HashMap::new(),
            server_requests: HashMap::new(),
            waiting_init: Vec::new(),
            queued: VecDeque::new(),
            in_flight_budget: MAX_IN_FLIGHT_PER_SESSION,
        }
    }

    /// The same mux, with each session allowed at most `requests` requests
    /// carrying `bytes` of parameters in flight at once.
    pub fn with_in_flight_budget(mut self, requests: usize, bytes: usize) -> Mux {
        self.in_flight_budget = (requests, bytes);
        self
    }

    /// The same mux, with `access`'s policies (if any are configured)
    /// deciding what each session of `server` may see and call.
    pub fn governed_by(
        mut self,
        access: Option<Arc<crate::access::Access>>,
        server: crate::access::ServerFacts,
    ) -> Mux {
        self.governed =
            access.filter(|a| a.is_on()).map(|access| access::Governed { access, server: Arc::new(server) });
        self
    }

    /// Records whom `session` acts for (policies decide by it).
    pub fn act_as(&mut self, session: SessionId, who: Arc<crate::identity::Principal>) {
        if self.governed.is_some()
            && let Some(s) = self.sessions.get_mut(&session)
        {
            s.who = Some(who);
        }
    }

    /// The listing `method` asks for, if its answer is filtered.
    fn filtered_listing(&self, method: &str) -> Option<expose::Listing> {
        (self.expose.is_some() || self.governed.is_some()).then(|| expose::Listing::of(method)).flatten()
    }

    /// True once the handshake completed.
    pub fn is_ready(&self) -> bool {
        matches!(self.handshake, Handshake::Ready(_))
    }

    /// The server's cached `initialize` result.
    pub fn initialize_result(&self) -> Option<&RawValue> {
        match &self.handshake {
            Handshake::Ready(r) => Some(r),
            _ => None,
        }
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Requests sent upstream and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Opens a session.
    pub fn open_session(&mut self) -> SessionId {
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(id, Session::default());
        id
    }

    /// Marks `session` as waiting for its client (or no longer): while it
    /// waits, a server request that names none of its requests is not put
    /// to it.
    pub fn set_waiting(&mut self, session: SessionId, waiting: bool) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.waiting = waiting;
        }
    }

    /// Opens a session the server's requests never go to.
    pub fn open_deaf_session(&mut self) -> SessionId {
        let id = self.open_session();
        if let Some(s) = self.sessions.get_mut(&id) {
            s.deaf = true;
        }
        id
    }

    /// Starts (or restarts) mcpod's handshake with `params` (the params of
    /// an `initialize` request); the first call's params are reused later.
    pub fn begin_handshake(&mut self, params: Option<Box<RawValue>>) -> Vec<Action> {
        if params.is_some() {
            self.init_params = params;
        }
        let id = self.next_id();
        self.handshake = Handshake::Sent(id, std::time::Instant::now());
        vec![Action::ToServer(Message::request(Id::Num(id), "initialize", self.init_params.clone()))]
    }

    /// A request of the host's own (discovery, health); the answer comes
    /// back as `Action::HostResponse` with the returned id.
    pub fn host_request(&mut self, method: &str, params: Option<Box<RawValue>>) -> (i64, Action) {
        let id = self.next_id();
        let now = std::time::Instant::now();
        self.pending.insert(
            id,
            Pending {
                session: None,
                client_id: Id::Num(id),
                token: None,
                sent: now,
                heard: now,
                audit: None,
                listing: self.filtered_listing(method),
                bytes: 0,
            },
        );
        (id, Action::ToServer(Message::request(Id::Num(id), method, params)))
    }

    fn next_id(&mut self) -> i64 {
        let id = self.next_upstream;
        self.next_upstream += 1;
        id
    }

    /// Closes a session: its in-flight requests are cancelled upstream and
    /// the server's requests to it are refused.
    pub fn close_session(&mut self, session: SessionId) -> Vec<Action> {
        let mut out = Vec::new();
        if self.sessions.remove(&session).is_none() {
            return out;
        }
        let ids: Vec<i64> =
            self.pending.iter().filter(|(_, p)| p.session == Some(session)).map(|(id, _)| *id).collect();
        for id in ids {
            self.pending.remove(&id);
            let params = serde_json::json!({ "requestId": id, "reason": "the client session ended" });
            out.push(Action::ToServer(Message::notification("notifications/cancelled", Some(raw(&params)))));
        }
        self.progress.retain(|_, (s, _)| *s != session);
        let refused: Vec<Id> =
            self.server_requests.iter().filter(|(_, s)| **s == session).map(|(id, _)| id.clone()).collect();
        for id in refused {
            self.server_requests.remove(&id);
            out.push(Action::ToServer(Message::error_response(
                Some(id),
                code::INTERNAL_ERROR,
                "the client session this request went to has ended",
            )));
        }
        self.waiting_init.retain(|(s, _)| *s != session);
        self.queued.retain(|(s, _)| *s != session);
        out
    }

    /// The server went away: every in-flight request gets an error now.
    pub fn server_lost(&mut self, reason: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let message = format!("the MCP server stopped ({reason}); mcpod restarts it, retry the request");
        for (id, p) in self.pending.drain() {
            let err = Message::error_response(Some(p.client_id.clone()), code::SERVER_UNAVAILABLE, &message);
            if let (Some(session), Some(audit)) = (p.session, p.audit) {
                out.push(Action::Audit { session, call: audit.record(&p.client_id, None, p.sent.elapsed()) });
            }
            match p.session {
                Some(session) => out.push(Action::ToClient { session, msg: err, related: Some(p.client_id) }),
                None => out.push(Action::HostResponse { id, msg: err }),
            }
        }
        self.progress.clear();
        self.server_requests.clear();
        self.handshake = Handshake::Idle;
        out
    }
}
