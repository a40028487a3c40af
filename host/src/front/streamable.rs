//! MCP Streamable HTTP at `/servers/{id}/mcp`: POST carries client
//! messages (answered as JSON or as an SSE stream), GET opens the stream of
//! server-initiated messages (resumable with `Last-Event-ID`), DELETE ends
//! the session. Sessions are named by `Mcp-Session-Id`.

use super::http_session::{HttpSession, StreamKey};
use super::sse::Routed;
use super::{FrontError, FrontState, accepts, rpc_error};
use crate::frame::Frame;
use crate::identity::Principal;
use crate::jsonrpc::{Id, Kind, Message, code};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The protocol revisions this endpoint speaks with a session.
pub use crate::rev_2026_07_28::HANDSHAKE_VERSIONS;

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

fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(crate::mcp_headers::SESSION_ID).and_then(|v| v.to_str().ok())
}

/// Checks `MCP-Protocol-Version` when the client sends one.
fn check_version(headers: &HeaderMap) -> Result<(), FrontError> {
    match headers.get(crate::mcp_headers::PROTOCOL_VERSION).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(v) if HANDSHAKE_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(FrontError::bad_request(format!(
            "Bad Request: unsupported MCP-Protocol-Version {v:?}; supported: {}",
            HANDSHAKE_VERSIONS.join(", ")
        ))),
    }
}

fn find_session(st: &FrontState, server_id: &str, headers: &HeaderMap) -> Result<Arc<HttpSession>, FrontError> {
    let Some(token) = session_header(headers) else {
        return Err(FrontError::bad_request("Bad Request: Mcp-Session-Id header is required"));
    };
    match st.http_sessions.get(token) {
        Some(s) if s.server_id == server_id => Ok(s),
        _ => Err(FrontError::new(
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
    Extension(who): Extension<Arc<Principal>>,
    super::HeadersAndBody(headers, body): super::HeadersAndBody,
) -> Response {
    let (mut msgs, sse_ok) = match checked_messages(&headers, &body) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    // MCP 2026-07-28 requests stand alone: no session, their own rules.
    if session_header(&headers).is_none() && lone_modern(&msgs, &headers) {
        return super::rev_2026_07_28::post(
            &st,
            &crate::servers::Target::server(&server_id),
            &who,
            &headers,
            msgs.remove(0),
            sse_ok,
        )
        .await;
    }
    if let Err(e) = check_version(&headers) {
        return e.into_response();
    }
    let is_init = msgs.iter().any(|m| m.method() == "initialize" && m.kind() == Kind::Request);
    let session = match session_for(&st, &server_id, &who, &headers, &msgs, is_init).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
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
    let (key, priming, rx) = match session.wait_for(&requests, sse_ok && primes(&headers)) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let batch = msgs.len() > 1;
    for m in msgs {
        session.send(m);
    }
    let resp = if sse_ok {
        stream_answers(&st, &headers, &session, requests.len(), key, priming, rx).await
    } else {
        json_answers(requests.len(), batch, rx).await
    };
    with_session(resp, &session, is_init)
}

/// The session a POST goes to: the one its `Mcp-Session-Id` names, or a new
/// one for an `initialize` sent alone without one.
async fn session_for(
    st: &FrontState,
    server_id: &str,
    who: &Arc<Principal>,
    headers: &HeaderMap,
    msgs: &[Message],
    is_init: bool,
) -> Result<Arc<HttpSession>, FrontError> {
    match session_header(headers) {
        Some(_) if is_init => Err(FrontError::bad_request("Bad Request: initialize must not carry an Mcp-Session-Id")),
        Some(_) => find_session(st, server_id, headers),
        None if is_init && msgs.len() > 1 => Err(FrontError::bad_request("Bad Request: initialize must be sent alone")),
        None if is_init => {
            let client = st.manager.open_session(server_id, who.clone()).await?;
            Ok(st.http_sessions.create(server_id, client))
        }
        None => Err(FrontError::bad_request("Bad Request: Mcp-Session-Id header is required")),
    }
}

/// The answer to a POST that takes an event stream. For a client that
/// prefers JSON (lists it first in `Accept`, as the official SDKs do), a
/// single request whose first message back is its answer gets plain JSON:
/// cheaper for both sides. If progress, a log or a server request comes
/// first, the answer streams, as it does for clients that prefer streams.
/// So does a slow answer to a client that can resume a stream (2025-11-25
/// and later): after one to two ticks of the front's clock (no timer of its
/// own), the stream opens with its priming event, so that a long call
/// survives a dropped connection.
async fn stream_answers(
    st: &FrontState,
    headers: &HeaderMap,
    session: &HttpSession,
    requests: usize,
    key: StreamKey,
    priming: Option<u64>,
    mut rx: mpsc::Receiver<Routed>,
) -> Response {
    let mut first = Vec::new();
    if requests == 1 && super::prefers_json(headers) {
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
                Some(Routed { frame, answer: true, .. }) => return super::json_response(StatusCode::OK, frame.data),
                Some(Routed { frame, .. }) => first.push(frame),
                None => {}
            },
            () = window => {}
        }
    }
    if let Some(id) = priming {
        first.insert(0, session.priming(id, key));
    }
    super::sse::response(first, rx)
}

/// The answer to a POST that takes only JSON: every response, then one
/// body (an array for a batch).
async fn json_answers(requests: usize, batch: bool, mut rx: mpsc::Receiver<Routed>) -> Response {
    let mut responses = Vec::new();
    while responses.len() < requests {
        match rx.recv().await {
            Some(Routed { frame, answer, .. }) => {
                if answer {
                    responses.push(frame.data);
                }
            }
            None => break,
        }
    }
    if responses.len() < requests {
        // The session ended (or its stream did) before every answer came.
        return rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVER_UNAVAILABLE,
            "the session ended before the server answered; open a new session and send the request again",
        );
    }
    let body = if batch { format!("[{}]", responses.join(",")) } else { responses.pop().unwrap_or_default() };
    super::json_response(StatusCode::OK, body)
}

/// The checks every POST passes here (`Accept`; Host, Origin and content
/// type were checked by the guard layer, the size when the body was read), then its messages, and whether the client takes an event stream.
fn checked_messages(headers: &HeaderMap, body: &[u8]) -> Result<(Vec<Message>, bool), FrontError> {
    let sse_ok = accepts(headers, "text/event-stream");
    if !sse_ok && !accepts(headers, "application/json") {
        return Err(FrontError::new(
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
    matches!(msgs, [msg] if crate::rev_2026_07_28::is_modern(msg, version))
}

/// A POST to an instance handle's endpoint: a 2026-07-28 request, to the
/// instance the handle names (see `servers::handles`).
pub async fn post_to_handle(
    State(st): State<FrontState>,
    Path((server_id, handle)): Path<(String, String)>,
    Extension(who): Extension<Arc<Principal>>,
    super::HeadersAndBody(headers, body): super::HeadersAndBody,
) -> Response {
    let (mut msgs, sse_ok) = match checked_messages(&headers, &body) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
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
    super::rev_2026_07_28::post(&st, &target, &who, &headers, msgs.remove(0), sse_ok).await
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
pub(super) fn decode_body(body: &[u8]) -> Result<Vec<Message>, FrontError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        FrontError::new(StatusCode::BAD_REQUEST, code::PARSE_ERROR, format!("Parse error: the body is not UTF-8: {e}"))
    })?;
    Message::parse_batch(text)
        .map(|(msgs, _)| msgs)
        .map_err(|e| FrontError::new(StatusCode::BAD_REQUEST, e.code(), e.client_message()))
}

/// 405 for GET and DELETE at 2026-07-28, which has no sessions to stream
/// or end (`subscriptions/listen` replaces the GET stream).
fn modern_method_not_allowed(headers: &HeaderMap) -> Option<Response> {
    let version = headers.get(crate::mcp_headers::PROTOCOL_VERSION).and_then(|v| v.to_str().ok())?;
    crate::rev_2026_07_28::MODERN_VERSIONS.contains(&version).then(method_not_allowed)
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
    if let Err(e) = check_version(&headers) {
        return e.into_response();
    }
    let session = match find_session(&st, &server_id, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
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
                    let resumed = r.stream(tx.clone());
                    r.redirect(key, &resumed);
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
            r.standalone = Some(r.stream(tx));
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
        Err(e) => return e.into_response(),
    };
    st.http_sessions.remove(&session.token);
    StatusCode::OK.into_response()
}
