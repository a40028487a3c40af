//! MCP Streamable HTTP at `/servers/{id}/mcp`: POST carries client
//! messages (answered as JSON or as an SSE stream), GET opens the stream of
//! server-initiated messages (resumable with `Last-Event-ID`), DELETE ends
//! the session. Sessions are named by `Mcp-Session-Id`.

use super::{FrontState, accepts, manager_error, rpc_error};
use crate::bridge::Delivery;
use crate::jsonrpc::{Id, Kind, Message, code};
use crate::plugin::bindings::Frame;
use crate::servers::ClientSession;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The protocol revisions this endpoint speaks with a session.
pub use crate::modern::HANDSHAKE_VERSIONS;

/// Events kept per session for replay after a dropped stream.
const EVENT_LOG: usize = 1024;

/// Which stream an event was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKey {
    /// The GET stream.
    Standalone,
    /// The response stream of one POST.
    Post(u64),
}

struct LoggedEvent {
    id: u64,
    key: StreamKey,
    frame: Frame,
    delivered: bool,
}

/// One event on its way to a stream, and whether it is a request's answer
/// (known when it was routed, so that the POST need not parse it again).
struct Routed {
    frame: Frame,
    answer: bool,
}

impl From<Routed> for Frame {
    fn from(r: Routed) -> Frame {
        r.frame
    }
}

impl From<Frame> for Routed {
    fn from(frame: Frame) -> Routed {
        Routed { frame, answer: false }
    }
}

struct Routes {
    waiters: HashMap<Id, (StreamKey, mpsc::Sender<Routed>)>,
    standalone: Option<mpsc::Sender<Routed>>,
    log: VecDeque<LoggedEvent>,
    next_event: u64,
    next_stream: u64,
}

impl Routes {
    /// The next event id of the session.
    fn take_event_id(&mut self) -> u64 {
        let id = self.next_event;
        self.next_event += 1;
        id
    }

    fn log(&mut self, event: LoggedEvent) {
        if self.log.len() >= EVENT_LOG {
            self.log.pop_front();
        }
        self.log.push_back(event);
    }

    /// The priming event `id` of stream `key`, logged as delivered so that a
    /// reconnect naming it replays what followed it on that stream.
    fn prime(&mut self, id: u64, key: StreamKey) -> Frame {
        let frame = Frame { event: None, id: Some(id.to_string()), data: String::new() };
        self.log(LoggedEvent { id, key, frame: frame.clone(), delivered: true });
        frame
    }
}

/// Whether a stream of this request starts with a priming event (an id and
/// no data, so that the client can resume it with `Last-Event-ID`): from
/// protocol 2025-11-25 on, which added it; older clients may not expect an
/// event without data.
fn primes(headers: &HeaderMap) -> bool {
    headers
        .get(crate::mcp_headers::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| HANDSHAKE_VERSIONS.contains(&v) && v >= "2025-11-25")
}

/// One Streamable HTTP session.
pub struct HttpSession {
    token: String,
    server_id: String,
    client: Mutex<ClientSession>,
    routes: Mutex<Routes>,
    last_seen: Mutex<Instant>,
}

impl HttpSession {
    fn touch(&self) {
        if let Ok(mut t) = self.last_seen.lock() {
            *t = Instant::now();
        }
    }

    fn send(&self, msg: Message) {
        if let Some(id) = msg.id.value() {
            tracing::debug!(server = %self.server_id, session = %self.token, request = %id, method = msg.method(), "client message");
        }
        if let Ok(c) = self.client.lock() {
            c.send(msg);
        }
    }

    /// The priming event `id` of POST stream `key` (see [`Routes::prime`]).
    fn priming(&self, id: u64, key: StreamKey) -> Frame {
        match self.routes.lock() {
            Ok(mut r) => r.prime(id, key),
            Err(_) => Frame { event: None, id: Some(id.to_string()), data: String::new() },
        }
    }

    /// Puts one delivery on the stream it belongs to, logging it for replay.
    fn route(&self, d: Delivery) {
        let Ok(mut r) = self.routes.lock() else { return };
        let id = r.take_event_id();
        let frame = Frame { event: None, id: Some(id.to_string()), data: d.msg.to_text() };
        let is_response = d.msg.kind() == Kind::Response;
        let waiter = d.related.as_ref().and_then(|rel| r.waiters.get(rel).cloned());
        let (key, delivered) = match waiter {
            Some((key, tx)) => {
                let ok = tx.try_send(Routed { frame: frame.clone(), answer: is_response }).is_ok();
                if is_response && let Some(rel) = &d.related {
                    r.waiters.remove(rel);
                }
                (key, ok)
            }
            None => {
                let ok = r.standalone.as_ref().is_some_and(|tx| tx.try_send(frame.clone().into()).is_ok());
                (StreamKey::Standalone, ok)
            }
        };
        r.log(LoggedEvent { id, key, frame, delivered });
    }
}

/// Every Streamable HTTP session, by `Mcp-Session-Id`.
pub struct HttpSessions {
    map: Mutex<HashMap<String, Arc<HttpSession>>>,
    idle: Duration,
}

impl HttpSessions {
    /// A table whose sessions close after `idle` without requests.
    pub fn new(idle: Duration) -> Arc<Self> {
        let table = Arc::new(HttpSessions { map: Mutex::new(HashMap::new()), idle });
        let weak = Arc::downgrade(&table);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15).min(idle));
            loop {
                tick.tick().await;
                let Some(table) = weak.upgrade() else { return };
                table.reap();
            }
        });
        table
    }

    fn get(&self, token: &str) -> Option<Arc<HttpSession>> {
        self.map.lock().ok()?.get(token).cloned()
    }

    fn remove(&self, token: &str) -> Option<Arc<HttpSession>> {
        let s = self.map.lock().ok()?.remove(token)?;
        if let Ok(mut c) = s.client.lock() {
            c.close();
        }
        Some(s)
    }

    /// Closes sessions idle for longer than the limit.
    fn reap(&self) {
        let idle: Vec<String> = match self.map.lock() {
            Ok(map) => map
                .values()
                .filter(|s| {
                    let stale = s.last_seen.lock().map(|t| t.elapsed() > self.idle).unwrap_or(true);
                    let streaming =
                        s.routes.lock().map(|r| r.standalone.as_ref().is_some_and(|t| !t.is_closed())).unwrap_or(false);
                    stale && !streaming
                })
                .map(|s| s.token.clone())
                .collect(),
            Err(_) => return,
        };
        for token in idle {
            tracing::info!(session = %token, "closing idle session");
            self.remove(&token);
        }
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn create(self: &Arc<Self>, server_id: &str, client: ClientSession) -> Arc<HttpSession> {
        let token = crate::servers::new_token();
        let session = Arc::new(HttpSession {
            token: token.clone(),
            server_id: server_id.to_string(),
            client: Mutex::new(client),
            routes: Mutex::new(Routes {
                waiters: HashMap::new(),
                standalone: None,
                log: VecDeque::new(),
                next_event: 1,
                next_stream: 1,
            }),
            last_seen: Mutex::new(Instant::now()),
        });
        if let Ok(mut map) = self.map.lock() {
            map.insert(token.clone(), session.clone());
        }
        // Deliveries go straight from the upstream reader to the waiting
        // response streams.
        let sink = Arc::new(HttpSink { session: session.clone(), table: Arc::downgrade(self) });
        if let Ok(mut c) = session.client.lock() {
            c.redirect(sink);
        }
        session
    }
}

/// Routes an HTTP session's deliveries in place.
struct HttpSink {
    session: Arc<HttpSession>,
    table: std::sync::Weak<HttpSessions>,
}

impl crate::bridge::DirectSink for HttpSink {
    fn deliver(&self, d: Delivery) -> bool {
        self.session.route(d);
        true
    }

    fn closed(&self) {
        // The server side ended: close the session's streams. Not here,
        // under the instance's lock: closing the session locks it again.
        let (session, table) = (self.session.clone(), self.table.clone());
        tokio::spawn(async move {
            if let Ok(mut r) = session.routes.lock() {
                r.waiters.clear();
                r.standalone = None;
            }
            if let Some(table) = table.upgrade() {
                table.remove(&session.token);
            }
        });
    }
}

fn session_header(headers: &HeaderMap) -> Option<String> {
    headers.get(crate::mcp_headers::SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Checks `MCP-Protocol-Version` when the client sends one.
#[allow(clippy::result_large_err)] // the error is the response the handler returns as is
fn check_version(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get(crate::mcp_headers::PROTOCOL_VERSION).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(v) if HANDSHAKE_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version {v:?}; supported: {}",
                HANDSHAKE_VERSIONS.join(", ")
            ),
        )),
    }
}

#[allow(clippy::result_large_err)] // the error is the response the handler returns as is
fn find_session(st: &FrontState, server_id: &str, headers: &HeaderMap) -> Result<Arc<HttpSession>, Response> {
    let Some(token) = session_header(headers) else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    match st.http_sessions.get(&token) {
        Some(s) if s.server_id == server_id => Ok(s),
        _ => Err(rpc_error(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "Session not found: it expired or was closed; start a new one with initialize",
        )),
    }
}

/// `POST /servers/{id}/mcp`.
pub async fn post(
    State(st): State<FrontState>,
    Path(server_id): Path<String>,
    headers: HeaderMap,
    super::Body(body): super::Body,
) -> Response {
    let (mut msgs, sse_ok) = match checked_messages(&headers, &body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    // MCP 2026-07-28 requests stand alone: no session, their own rules.
    if session_header(&headers).is_none() && lone_modern(&msgs, &headers) {
        return super::stateless::post(
            &st,
            &crate::servers::Target::server(&server_id),
            &headers,
            msgs.remove(0),
            sse_ok,
        )
        .await;
    }
    if let Err(r) = check_version(&headers) {
        return r;
    }
    let is_init = msgs.iter().any(|m| m.method() == "initialize" && m.kind() == Kind::Request);
    let session = match session_header(&headers) {
        Some(_) if is_init => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "Bad Request: initialize must not carry an Mcp-Session-Id",
            );
        }
        Some(_) => match find_session(&st, &server_id, &headers) {
            Ok(s) => s,
            Err(r) => return r,
        },
        None if is_init => {
            if msgs.len() > 1 {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    "Bad Request: initialize must be sent alone",
                );
            }
            match st.manager.open_session(&server_id).await {
                Ok(client) => st.http_sessions.create(&server_id, client),
                Err(e) => return manager_error(&e),
            }
        }
        None => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "Bad Request: Mcp-Session-Id header is required",
            );
        }
    };
    session.touch();
    let requests: Vec<Id> =
        msgs.iter().filter(|m| m.kind() == Kind::Request).filter_map(|m| m.id.value().cloned()).collect();
    if requests.is_empty() {
        for m in msgs {
            session.send(m);
        }
        return with_session(StatusCode::ACCEPTED.into_response(), &session, is_init);
    }
    let (tx, mut rx) = mpsc::channel(256);
    // The id of this stream's priming event, taken before anything can be
    // routed to it, so that every event of the stream comes after it.
    let (key, priming) = {
        let Ok(mut r) = session.routes.lock() else {
            return rpc_error(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_ERROR, "session state poisoned");
        };
        if let Some(dup) = requests.iter().find(|id| r.waiters.contains_key(*id)) {
            return rpc_error(
                StatusCode::CONFLICT,
                code::INVALID_REQUEST,
                &format!("request id {dup} is already in flight in this session; use a new id"),
            );
        }
        let key = StreamKey::Post(r.next_stream);
        r.next_stream += 1;
        for id in &requests {
            r.waiters.insert(id.clone(), (key, tx.clone()));
        }
        (key, (sse_ok && primes(&headers)).then(|| r.take_event_id()))
    };
    drop(tx);
    let batch = msgs.len() > 1;
    for m in msgs {
        session.send(m);
    }
    if sse_ok {
        // For a client that prefers JSON (lists it first in `Accept`, as the
        // official SDKs do), a single request whose first message back is
        // its answer gets plain JSON: cheaper for both sides. If progress, a
        // log or a server request comes first, the answer streams, as it
        // does for clients that prefer streams. So does a slow answer to a
        // client that can resume a stream (2025-11-25 and later): after
        // one to two ticks of the front's clock (no timer of its own), the
        // stream opens with its priming event, so that a long call
        // survives a dropped connection.
        let mut first = Vec::new();
        if requests.len() == 1 && super::prefers_json(&headers) {
            let resumable = priming.is_some();
            let window = async {
                if !resumable {
                    return std::future::pending::<()>().await;
                }
                let mut ticks = st.ticks.clone();
                ticks.borrow_and_update();
                let _ = ticks.changed().await;
                let _ = ticks.changed().await;
            };
            tokio::select! {
                routed = rx.recv() => match routed {
                    Some(Routed { frame, answer: true }) => {
                        return with_session(super::json_response(StatusCode::OK, frame.data), &session, is_init);
                    }
                    Some(Routed { frame, .. }) => first.push(frame),
                    None => {}
                },
                () = window => {}
            }
        }
        if let Some(id) = priming {
            first.insert(0, session.priming(id, key));
        }
        return with_session(super::sse::response(first, rx), &session, is_init);
    }
    let mut responses = Vec::new();
    while responses.len() < requests.len() {
        match rx.recv().await {
            Some(Routed { frame, answer }) => {
                if answer {
                    responses.push(frame.data);
                }
            }
            None => break,
        }
    }
    let body = if batch { format!("[{}]", responses.join(",")) } else { responses.pop().unwrap_or_default() };
    with_session(super::json_response(StatusCode::OK, body), &session, is_init)
}

/// The checks every POST passes here (`Accept`; Host, Origin and content
/// type were checked by the guard layer, the size when the body was read), then its messages, and whether the client takes an event stream.
#[allow(clippy::result_large_err)] // the error is the response the handler returns as is
fn checked_messages(headers: &HeaderMap, body: &[u8]) -> Result<(Vec<Message>, bool), Response> {
    let sse_ok = accepts(headers, "text/event-stream");
    if !sse_ok && !accepts(headers, "application/json") {
        return Err(rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Not Acceptable: the client must accept application/json and text/event-stream",
        ));
    }
    Ok((decode_body(body)?, sse_ok))
}

/// Whether a POST holds one MCP 2026-07-28 request (which stands alone).
fn lone_modern(msgs: &[Message], headers: &HeaderMap) -> bool {
    let version = headers.get(crate::mcp_headers::PROTOCOL_VERSION).and_then(|v| v.to_str().ok());
    matches!(msgs, [msg] if crate::modern::is_modern(msg, version))
}

/// A POST to an instance handle's endpoint: a 2026-07-28 request, to the
/// instance the handle names (see `servers::handles`).
pub async fn post_to_handle(
    State(st): State<FrontState>,
    Path((server_id, handle)): Path<(String, String)>,
    headers: HeaderMap,
    super::Body(body): super::Body,
) -> Response {
    let (mut msgs, sse_ok) = match checked_messages(&headers, &body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if !lone_modern(&msgs, &headers) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            &format!(
                "Bad Request: an instance handle serves single MCP 2026-07-28 requests; handshake-era clients use /servers/{server_id}/mcp, where per-session servers give each session its own process"
            ),
        );
    }
    let target = crate::servers::Target { server: server_id, handle: Some(handle) };
    super::stateless::post(&st, &target, &headers, msgs.remove(0), sse_ok).await
}

fn with_session(mut resp: Response, session: &HttpSession, include: bool) -> Response {
    if include && let Ok(v) = HeaderValue::from_str(&session.token) {
        resp.headers_mut().insert(crate::mcp_headers::SESSION_ID, v);
    }
    resp
}

/// The messages of a POST body (one message or a batch; its size was
/// checked when it was read, see `front::Body`). The front is the same for
/// every server, so it parses here, in the host; the adapter plugins frame
/// the upstream transports, which differ from server to server.
#[allow(clippy::result_large_err)] // the error is the response the handler returns as is
pub(super) fn decode_body(body: &[u8]) -> Result<Vec<Message>, Response> {
    let text = std::str::from_utf8(body).map_err(|e| {
        rpc_error(StatusCode::BAD_REQUEST, code::PARSE_ERROR, &format!("Parse error: the body is not UTF-8: {e}"))
    })?;
    Message::parse_batch(text)
        .map(|(msgs, _)| msgs)
        .map_err(|e| rpc_error(StatusCode::BAD_REQUEST, e.code(), &e.client_message()))
}

/// 405 for GET and DELETE at 2026-07-28, which has no sessions to stream
/// or end (`subscriptions/listen` replaces the GET stream).
fn modern_method_not_allowed(headers: &HeaderMap) -> Option<Response> {
    let version = headers.get(crate::mcp_headers::PROTOCOL_VERSION).and_then(|v| v.to_str().ok())?;
    crate::modern::MODERN_VERSIONS.contains(&version).then(method_not_allowed)
}

/// GET and DELETE on an instance handle's endpoint: 405, as at 2026-07-28.
pub async fn handle_not_allowed() -> Response {
    method_not_allowed()
}

fn method_not_allowed() -> Response {
    let mut resp = rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        code::INVALID_REQUEST,
        "Method Not Allowed: MCP 2026-07-28 has no sessions; POST requests, and subscriptions/listen for notifications",
    );
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    resp
}

/// `GET /servers/{id}/mcp`: the stream of server-initiated messages.
pub async fn get(State(st): State<FrontState>, Path(server_id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = modern_method_not_allowed(&headers) {
        return r;
    }
    if !accepts(&headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Not Acceptable: the client must accept text/event-stream",
        );
    }
    if let Err(r) = check_version(&headers) {
        return r;
    }
    let session = match find_session(&st, &server_id, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    session.touch();
    let last: Option<u64> =
        headers.get(crate::mcp_headers::LAST_EVENT_ID).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let (tx, rx) = mpsc::channel(1024);
    {
        let Ok(mut r) = session.routes.lock() else {
            return rpc_error(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_ERROR, "session state poisoned");
        };
        let mut resumes_post = false;
        let replay: Vec<Frame> = match last {
            Some(last) => {
                let key = r.log.iter().find(|e| e.id == last).map(|e| e.key).unwrap_or(StreamKey::Standalone);
                // Resuming a POST's stream: what is still to come for its
                // requests comes on this one (the GET stream stays as it is).
                if key != StreamKey::Standalone {
                    resumes_post = true;
                    for (k, waiter) in r.waiters.values_mut() {
                        if *k == key {
                            *waiter = tx.clone();
                        }
                    }
                }
                r.log.iter().filter(|e| e.id > last && e.key == key).map(|e| e.frame.clone()).collect()
            }
            None => r
                .log
                .iter_mut()
                .filter(|e| !e.delivered && e.key == StreamKey::Standalone)
                .map(|e| {
                    e.delivered = true;
                    e.frame.clone()
                })
                .collect(),
        };
        if last.is_none() && primes(&headers) {
            let id = r.take_event_id();
            let _ = tx.try_send(r.prime(id, StreamKey::Standalone).into());
        }
        for f in replay {
            let _ = tx.try_send(f.into());
        }
        if !resumes_post {
            r.standalone = Some(tx);
        }
    }
    super::sse::response(Vec::new(), rx)
}

/// `DELETE /servers/{id}/mcp`: ends the session.
pub async fn delete(State(st): State<FrontState>, Path(server_id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = modern_method_not_allowed(&headers) {
        return r;
    }
    let session = match find_session(&st, &server_id, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    st.http_sessions.remove(&session.token);
    StatusCode::OK.into_response()
}
