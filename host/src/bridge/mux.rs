//! The session multiplexer of one server instance, as a pure state machine:
//! client and server messages in, routed messages out. No I/O, so every
//! routing rule is tested alone.
//!
//! mcpod performs the `initialize` handshake with the server itself, once
//! per instance, and answers each client's `initialize` from the cached
//! result. Client request ids are rewritten to ids unique on the upstream
//! connection, so that any number of sessions share one server without
//! cross-talk; progress tokens and cancellations are mapped the same way.

use crate::jsonrpc::{Id, IdField, Kind, Message, code, raw};
use crate::rev_2026_07_28::META_RELATED;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// The server refused the handshake.
    HandshakeFailed(String),
    /// A client request was answered after this long.
    RoundTrip(std::time::Duration),
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
}

/// The state of mcpod's own handshake with the server.
#[derive(Debug)]
enum Handshake {
    Idle,
    Sent(i64),
    Ready(Box<RawValue>),
}

/// Per-session routing state.
#[derive(Debug, Default)]
struct Session {
    /// Resource URIs this session subscribed to.
    subscriptions: Vec<String>,
    /// When this session last sent a request (a sequence number).
    last_active: u64,
    /// Whether the server's requests (sampling, elicitation, roots) may go
    /// to this session; a 2026-07-28 request that cannot be asked opts out.
    deaf: bool,
}

/// How many client requests may wait for a (re)starting server.
const MAX_QUEUED: usize = 1024;

/// The multiplexer of one server instance.
#[derive(Debug)]
pub struct Mux {
    handshake: Handshake,
    init_params: Option<Box<RawValue>>,
    sessions: BTreeMap<SessionId, Session>,
    next_session: SessionId,
    next_upstream: i64,
    seq: u64,
    pending: HashMap<i64, Pending>,
    progress: HashMap<String, (SessionId, Value)>,
    server_requests: HashMap<Id, SessionId>,
    waiting_init: Vec<(SessionId, Id)>,
    queued: VecDeque<(SessionId, Message)>,
}

impl Default for Mux {
    fn default() -> Self {
        Mux::new()
    }
}

impl Mux {
    /// An idle mux with no sessions.
    pub fn new() -> Mux {
        Mux {
            handshake: Handshake::Idle,
            init_params: None,
            sessions: BTreeMap::new(),
            next_session: 1,
            next_upstream: 1,
            seq: 0,
            pending: HashMap::new(),
            progress: HashMap::new(),
            server_requests: HashMap::new(),
            waiting_init: Vec::new(),
            queued: VecDeque::new(),
        }
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
        self.handshake = Handshake::Sent(id);
        vec![Action::ToServer(Message::request(Id::Num(id), "initialize", self.init_params.clone()))]
    }

    /// A request of the host's own (discovery, health); the answer comes
    /// back as `Action::HostResponse` with the returned id.
    pub fn host_request(&mut self, method: &str, params: Option<Box<RawValue>>) -> (i64, Action) {
        let id = self.next_id();
        self.pending.insert(
            id,
            Pending { session: None, client_id: Id::Num(id), token: None, sent: std::time::Instant::now() },
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
            match p.session {
                Some(session) => out.push(Action::ToClient { session, msg: err, related: Some(p.client_id) }),
                None => out.push(Action::HostResponse { id, msg: err }),
            }
        }
        self.progress.clear();
        self.server_requests.clear();
        if let Handshake::Sent(_) = self.handshake {
            out.push(Action::HandshakeFailed(message));
        }
        self.handshake = Handshake::Idle;
        out
    }

    /// Routes a message from client `session`.
    pub fn from_client(&mut self, session: SessionId, msg: Message) -> Vec<Action> {
        if !self.sessions.contains_key(&session) {
            return Vec::new();
        }
        match msg.kind() {
            Kind::Request => self.client_request(session, msg),
            Kind::Notification => self.client_notification(session, msg),
            Kind::Response => self.client_response(session, msg),
        }
    }

    fn client_request(&mut self, session: SessionId, mut msg: Message) -> Vec<Action> {
        let Some(client_id) = msg.id.value().cloned() else { return Vec::new() };
        self.seq += 1;
        if let Some(s) = self.sessions.get_mut(&session) {
            s.last_active = self.seq;
        }
        if msg.method() == "initialize" {
            return match &self.handshake {
                Handshake::Ready(result) => vec![Action::ToClient {
                    session,
                    msg: Message::response(client_id.clone(), result.clone()),
                    related: Some(client_id),
                }],
                _ => {
                    self.waiting_init.push((session, client_id));
                    Vec::new()
                }
            };
        }
        if !self.is_ready() {
            if self.queued.len() >= MAX_QUEUED {
                return vec![Action::ToClient {
                    session,
                    msg: Message::error_response(
                        Some(client_id.clone()),
                        code::SERVER_UNAVAILABLE,
                        "the MCP server is starting and too many requests are waiting; retry shortly",
                    ),
                    related: Some(client_id),
                }];
            }
            self.queued.push_back((session, msg));
            return Vec::new();
        }
        if (msg.method() == "resources/subscribe" || msg.method() == "resources/unsubscribe")
            && let Some(uri) = msg.params_value().get("uri").and_then(Value::as_str)
            && let Some(s) = self.sessions.get_mut(&session)
        {
            s.subscriptions.retain(|u| u != uri);
            if msg.method() == "resources/subscribe" {
                s.subscriptions.push(uri.to_string());
            }
        }
        let upstream = self.next_id();
        let token = self.map_progress_token(session, upstream, &mut msg);
        msg.id = IdField::Value(Id::Num(upstream));
        self.pending
            .insert(upstream, Pending { session: Some(session), client_id, token, sent: std::time::Instant::now() });
        vec![Action::ToServer(msg)]
    }

    /// Replaces the request's progress token with one unique upstream.
    fn map_progress_token(&mut self, session: SessionId, upstream: i64, msg: &mut Message) -> Option<String> {
        let params = msg.params.as_ref()?;
        if !params.get().contains("progressToken") {
            return None;
        }
        let mut value: Value = serde_json::from_str(params.get()).ok()?;
        let meta = value.get_mut("_meta")?.as_object_mut()?;
        let original = meta.get("progressToken")?.clone();
        let token = format!("mcpod-{upstream}");
        meta.insert("progressToken".to_string(), Value::String(token.clone()));
        msg.params = Some(raw(&value));
        self.progress.insert(token.clone(), (session, original));
        Some(token)
    }

    fn client_notification(&mut self, session: SessionId, mut msg: Message) -> Vec<Action> {
        match msg.method() {
            "notifications/initialized" => Vec::new(),
            "notifications/cancelled" => {
                let params = msg.params_value();
                let Some(request_id) =
                    params.get("requestId").and_then(|v| serde_json::from_value::<Id>(v.clone()).ok())
                else {
                    return Vec::new();
                };
                let upstream = self
                    .pending
                    .iter()
                    .find(|(_, p)| p.session == Some(session) && p.client_id == request_id)
                    .map(|(id, _)| *id);
                let Some(upstream) = upstream else { return Vec::new() };
                let mut params = params;
                params["requestId"] = Value::from(upstream);
                msg.params = Some(raw(&params));
                vec![Action::ToServer(msg)]
            }
            _ if !self.is_ready() => Vec::new(),
            _ => vec![Action::ToServer(msg)],
        }
    }

    fn client_response(&mut self, session: SessionId, msg: Message) -> Vec<Action> {
        let Some(id) = msg.id.value() else { return Vec::new() };
        match self.server_requests.get(id) {
            Some(s) if *s == session => {
                self.server_requests.remove(id);
                // Answering the server makes the session the one it works for.
                self.seq += 1;
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.last_active = self.seq;
                }
                vec![Action::ToServer(msg)]
            }
            _ => Vec::new(),
        }
    }

    /// Routes a message from the server.
    pub fn from_server(&mut self, msg: Message) -> Vec<Action> {
        match msg.kind() {
            Kind::Response => self.server_response(msg),
            Kind::Request => self.server_request(msg),
            Kind::Notification => self.server_notification(msg),
        }
    }

    fn server_response(&mut self, mut msg: Message) -> Vec<Action> {
        let Some(Id::Num(upstream)) = msg.id.value().cloned() else { return Vec::new() };
        if let Handshake::Sent(hs) = self.handshake
            && hs == upstream
        {
            return self.finish_handshake(msg);
        }
        let Some(p) = self.pending.remove(&upstream) else { return Vec::new() };
        if let Some(token) = &p.token {
            self.progress.remove(token);
        }
        msg.id = IdField::Value(p.client_id.clone());
        match p.session {
            Some(session) => {
                vec![Action::RoundTrip(p.sent.elapsed()), Action::ToClient { session, msg, related: Some(p.client_id) }]
            }
            None => vec![Action::HostResponse { id: upstream, msg }],
        }
    }

    fn finish_handshake(&mut self, msg: Message) -> Vec<Action> {
        let Some(result) = msg.result else {
            let why = msg.error.map(|e| e.get().to_string()).unwrap_or_default();
            self.handshake = Handshake::Idle;
            let mut out = vec![Action::HandshakeFailed(format!("the server refused initialize: {why}"))];
            for (session, id) in std::mem::take(&mut self.waiting_init) {
                let err = Message::error_response(
                    Some(id.clone()),
                    code::SERVER_UNAVAILABLE,
                    "the MCP server refused to initialize",
                );
                out.push(Action::ToClient { session, msg: err, related: Some(id) });
            }
            return out;
        };
        self.handshake = Handshake::Ready(result.clone());
        let mut out = vec![Action::ToServer(Message::notification("notifications/initialized", None)), Action::Ready];
        for (session, id) in std::mem::take(&mut self.waiting_init) {
            out.push(Action::ToClient {
                session,
                msg: Message::response(id.clone(), result.clone()),
                related: Some(id),
            });
        }
        for (session, msg) in std::mem::take(&mut self.queued) {
            out.extend(self.from_client(session, msg));
        }
        out
    }

    /// The session a server-to-client request goes to: the one whose
    /// request the server is most likely working on (the most recently
    /// active session with a request in flight), else the most recent one.
    fn target_session(&self) -> Option<(SessionId, Option<Id>)> {
        let hearing = |s: &SessionId| self.sessions.get(s).is_some_and(|x| !x.deaf);
        let busy = self
            .pending
            .values()
            .filter_map(|p| p.session.filter(hearing).map(|s| (s, p.client_id.clone())))
            .max_by_key(|(s, _)| self.sessions.get(s).map_or(0, |x| x.last_active));
        if let Some((s, id)) = busy {
            return Some((s, Some(id)));
        }
        self.sessions.iter().filter(|(_, s)| !s.deaf).max_by_key(|(_, s)| s.last_active).map(|(id, _)| (*id, None))
    }

    fn server_request(&mut self, mut msg: Message) -> Vec<Action> {
        let Some(id) = msg.id.value().cloned() else { return Vec::new() };
        // An upstream that knows which request this one serves says so; if
        // that request's session is gone, nobody else may answer for it.
        let hint = take_related(&mut msg);
        let related =
            hint.and_then(|n| self.pending.get(&n)).and_then(|p| Some((p.session?, Some(p.client_id.clone()))));
        if hint.is_some() && related.is_none() {
            return vec![Action::ToServer(Message::error_response(
                Some(id),
                code::INTERNAL_ERROR,
                "the request this one serves is no longer in flight (its client session ended or cancelled it)",
            ))];
        }
        match related.or_else(|| self.target_session()) {
            Some((session, related)) => {
                self.server_requests.insert(id, session);
                vec![Action::ToClient { session, msg, related }]
            }
            None => vec![Action::ToServer(Message::error_response(
                Some(id),
                code::INTERNAL_ERROR,
                "no client is connected to answer this request",
            ))],
        }
    }

    fn server_notification(&mut self, mut msg: Message) -> Vec<Action> {
        match msg.method() {
            "notifications/progress" => {
                let mut params = msg.params_value();
                let token = params.get("progressToken").and_then(Value::as_str).map(str::to_string);
                let Some((session, original)) = token.and_then(|t| self.progress.get(&t).cloned()) else {
                    return Vec::new();
                };
                let related = self
                    .pending
                    .values()
                    .find(|p| p.token.as_deref() == params.get("progressToken").and_then(Value::as_str))
                    .map(|p| p.client_id.clone());
                params["progressToken"] = original;
                msg.params = Some(raw(&params));
                vec![Action::ToClient { session, msg, related }]
            }
            "notifications/cancelled" => {
                let params = msg.params_value();
                let target = params
                    .get("requestId")
                    .and_then(|v| serde_json::from_value::<Id>(v.clone()).ok())
                    .and_then(|id| self.server_requests.remove(&id));
                match target {
                    Some(session) => vec![Action::ToClient { session, msg, related: None }],
                    None => Vec::new(),
                }
            }
            "notifications/resources/updated" => {
                let uri = msg.params_value().get("uri").and_then(Value::as_str).map(str::to_string);
                let subscribed: Vec<SessionId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| uri.as_ref().is_some_and(|u| s.subscriptions.contains(u)))
                    .map(|(id, _)| *id)
                    .collect();
                let targets = if subscribed.is_empty() { self.sessions.keys().copied().collect() } else { subscribed };
                self.broadcast(&targets, msg)
            }
            _ => {
                let all: Vec<SessionId> = self.sessions.keys().copied().collect();
                self.broadcast(&all, msg)
            }
        }
    }

    fn broadcast(&self, sessions: &[SessionId], msg: Message) -> Vec<Action> {
        sessions.iter().map(|s| Action::ToClient { session: *s, msg: msg.clone(), related: None }).collect()
    }
}

/// Removes the upstream's related-request hint
/// ([`META_RELATED`]) from a server request; the
/// upstream id it names, if any.
fn take_related(msg: &mut Message) -> Option<i64> {
    let key = META_RELATED;
    if !msg.params.as_ref().is_some_and(|p| p.get().contains(key)) {
        return None;
    }
    let mut params = msg.params_value();
    let meta = params.get_mut("_meta")?.as_object_mut()?;
    let related = meta.remove(key)?.as_i64();
    if meta.is_empty() {
        params.as_object_mut()?.remove("_meta");
    }
    msg.params = Some(raw(&params));
    related
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Message {
        Message::parse(text).unwrap()
    }

    fn to_server(actions: &[Action]) -> Vec<String> {
        actions.iter().filter_map(|a| if let Action::ToServer(m) = a { Some(m.to_text()) } else { None }).collect()
    }

    fn to_clients(actions: &[Action]) -> Vec<(SessionId, String)> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::ToClient { session, msg, .. } = a { Some((*session, msg.to_text())) } else { None }
            })
            .collect()
    }

    /// A mux whose handshake completed.
    fn ready() -> Mux {
        let mut mux = Mux::new();
        let out = mux.begin_handshake(Some(raw(&serde_json::json!({"protocolVersion": "2025-11-25"}))));
        assert_eq!(
            to_server(&out),
            [r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#]
        );
        let out = mux
            .from_server(m(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#));
        assert_eq!(to_server(&out), [r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#]);
        assert!(mux.is_ready());
        mux
    }

    #[test]
    fn initialize_is_answered_from_the_cache_with_the_clients_id() {
        let mut mux = ready();
        let a = mux.open_session();
        let out = mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"init-a","method":"initialize","params":{}}"#));
        assert!(to_server(&out).is_empty(), "initialize is not forwarded again");
        assert_eq!(
            to_clients(&out),
            [(
                a,
                r#"{"jsonrpc":"2.0","id":"init-a","result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#
                    .to_string()
            )]
        );
        assert!(mux.from_client(a, m(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)).is_empty());
    }

    #[test]
    fn initialize_before_the_handshake_waits_for_it() {
        let mut mux = Mux::new();
        let a = mux.open_session();
        mux.begin_handshake(None);
        assert!(mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":5,"method":"initialize"}"#)).is_empty());
        assert!(mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#)).is_empty());
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":1,"result":{"v":1}}"#));
        assert!(matches!(out[1], Action::Ready));
        assert_eq!(to_clients(&out), [(a, r#"{"jsonrpc":"2.0","id":5,"result":{"v":1}}"#.to_string())]);
        assert_eq!(to_server(&out)[1], r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, "queued request flushed");
    }

    #[test]
    fn same_ids_from_two_sessions_never_cross() {
        let mut mux = ready();
        let a = mux.open_session();
        let b = mux.open_session();
        let ra = to_server(
            &mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}"#)),
        );
        let rb = to_server(
            &mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"b"}}"#)),
        );
        assert_eq!(ra, [r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a"}}"#]);
        assert_eq!(rb, [r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b"}}"#]);
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":3,"result":"for b"}"#));
        assert_eq!(to_clients(&out), [(b, r#"{"jsonrpc":"2.0","id":1,"result":"for b"}"#.to_string())]);
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":"for a"}"#));
        assert_eq!(to_clients(&out), [(a, r#"{"jsonrpc":"2.0","id":1,"result":"for a"}"#.to_string())]);
        assert!(
            mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":"again"}"#)).is_empty(),
            "a duplicate answer goes nowhere"
        );
    }

    #[test]
    fn progress_tokens_are_mapped_per_session() {
        let mut mux = ready();
        let a = mux.open_session();
        let b = mux.open_session();
        let req =
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"progressToken":7},"name":"slow"}}"#;
        let ta = to_server(&mux.from_client(a, m(req)));
        let tb = to_server(&mux.from_client(b, m(req)));
        assert!(ta[0].contains(r#""progressToken":"mcpod-2""#), "{}", ta[0]);
        assert!(tb[0].contains(r#""progressToken":"mcpod-3""#), "{}", tb[0]);
        let out = mux.from_server(m(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"mcpod-3","progress":1}}"#,
        ));
        assert_eq!(
            to_clients(&out),
            [(
                b,
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":7}}"#
                    .to_string()
            )]
        );
        assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(9)), .. }));
    }

    #[test]
    fn a_server_request_naming_its_call_goes_to_that_session_or_is_refused() {
        let mut mux = ready();
        let a = mux.open_session();
        let b = mux.open_session();
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call"}"#));
        mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call"}"#));
        let ask = r#"{"jsonrpc":"2.0","id":"mcpod-input-1","method":"elicitation/create","params":{"message":"?","_meta":{"dev.mcpod/relatedRequest":2}}}"#;
        let out = mux.from_server(m(ask));
        let plain = r#"{"jsonrpc":"2.0","id":"mcpod-input-1","method":"elicitation/create","params":{"message":"?"}}"#;
        assert_eq!(
            to_clients(&out),
            [(a, plain.to_string())],
            "to the asker, not the most recent session; the hint stripped"
        );
        assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(5)), .. }));
        mux.close_session(a);
        let out = mux.from_server(m(&ask.replace("input-1", "input-2")));
        assert!(to_clients(&out).is_empty(), "never to another session");
        assert!(to_server(&out)[0].contains("no longer in flight"), "{:?}", to_server(&out));
    }

    #[test]
    fn cancellation_is_mapped_to_the_upstream_id() {
        let mut mux = ready();
        let a = mux.open_session();
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"x","method":"tools/call"}"#));
        let out = mux.from_client(
            a,
            m(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","reason":"bored"}}"#),
        );
        assert_eq!(
            to_server(&out),
            [r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"reason":"bored","requestId":2}}"#]
        );
        let b = mux.open_session();
        let out =
            mux.from_client(b, m(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x"}}"#));
        assert!(out.is_empty(), "a session cannot cancel another session's request");
    }

    #[test]
    fn server_requests_go_to_the_busy_session_and_answers_come_back() {
        let mut mux = ready();
        let a = mux.open_session();
        let b = mux.open_session();
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#));
        mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#));
        mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#));
        assert_eq!(to_clients(&out)[0].0, b);
        assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(1)), .. }));
        assert!(
            mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"s1","result":{"forged":true}}"#)).is_empty(),
            "only b may answer"
        );
        let out = mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":"s1","result":{"ok":true}}"#));
        assert_eq!(to_server(&out), [r#"{"jsonrpc":"2.0","id":"s1","result":{"ok":true}}"#]);
    }

    #[test]
    fn server_requests_never_go_to_a_deaf_session() {
        let mut mux = ready();
        let asker = mux.open_session();
        let deaf = mux.open_deaf_session();
        mux.from_client(asker, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
        mux.from_client(deaf, m(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#));
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"elicitation/create","params":{}}"#));
        assert_eq!(to_clients(&out)[0].0, asker, "the more recent session is deaf");
        mux.close_session(asker);
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s2","method":"elicitation/create","params":{}}"#));
        assert!(to_clients(&out).is_empty(), "no session can be asked");
        assert!(to_server(&out)[0].contains("no client is connected"), "{out:?}");
    }

    #[test]
    fn a_lost_server_fails_every_in_flight_request_at_once() {
        let mut mux = ready();
        let a = mux.open_session();
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#));
        let out = mux.server_lost("exit status 1");
        let errors = to_clients(&out);
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|(_, t)| t.contains("-32001") && t.contains("exit status 1")));
        assert!(!mux.is_ready());
        assert_eq!(mux.in_flight(), 0);
        let out = mux.begin_handshake(None);
        assert!(
            to_server(&out)[0].contains(r#""params":{"protocolVersion":"2025-11-25"}"#),
            "re-initialized with the same params"
        );
    }

    #[test]
    fn closing_a_session_cancels_its_requests_upstream() {
        let mut mux = ready();
        let a = mux.open_session();
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
        let out = mux.close_session(a);
        assert_eq!(to_server(&out).len(), 1);
        assert!(to_server(&out)[0].contains("notifications/cancelled"));
        assert!(mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#)).is_empty());
    }

    #[test]
    fn notifications_are_broadcast_and_resource_updates_go_to_subscribers() {
        let mut mux = ready();
        let a = mux.open_session();
        let b = mux.open_session();
        let out = mux.from_server(m(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#));
        assert_eq!(to_clients(&out).len(), 2);
        mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://1"}}"#));
        let out = mux.from_server(m(
            r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"test://1"}}"#,
        ));
        assert_eq!(to_clients(&out).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [b]);
        let _ = a;
    }
}
