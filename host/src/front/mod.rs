//! The MCP front: every server served over Streamable HTTP
//! (`/servers/{id}/mcp`), legacy HTTP+SSE (`/servers/{id}/sse` and
//! `/servers/{id}/messages`) and WebSocket (`/servers/{id}/ws`). The
//! Origin and Host checks the MCP specification asks for are `guard`,
//! applied as a layer around every route (`gate`).

pub mod backlog;
pub mod error;
pub mod guard;
pub mod http_session;
pub use error::FrontError;
pub mod legacy_sse;
pub mod parked;
pub mod rev_2026_07_28;
pub mod sse;
pub mod streamable;
pub mod tokens;
pub mod websocket;

use crate::jsonrpc::{Message, code};
use crate::servers::Manager;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// Everything the front's handlers share.
#[derive(Clone)]
pub struct FrontState {
    /// The server manager.
    pub manager: Arc<Manager>,
    /// Streamable HTTP sessions.
    pub http_sessions: Arc<http_session::HttpSessions>,
    /// Legacy SSE sessions.
    pub sse_sessions: Arc<legacy_sse::SseSessions>,
    /// The largest body or message accepted.
    pub max_message_bytes: usize,
    /// How long a message's body may take to arrive (`limits.read_timeout_secs`).
    pub read_timeout: std::time::Duration,
    /// 2026-07-28 requests waiting for the client's input responses.
    pub parked: Arc<rev_2026_07_28::ParkedRequests>,
    /// A coarse clock ([`ticks`]) for short waits.
    pub ticks: tokio::sync::watch::Receiver<u64>,
    /// What a legacy SSE or WebSocket stream may hold unread.
    pub streams: backlog::StreamBudget,
}

/// How often [`ticks`] changes.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// A coarse clock for the front: a value that changes every [`TICK`],
/// shared by every request, so that a short wait arms no timer of its own
/// (arming one wakes tokio's I/O driver, a syscall per request).
pub fn ticks() -> tokio::sync::watch::Receiver<u64> {
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        for n in 1u64.. {
            interval.tick().await;
            if tx.send(n).is_err() {
                return;
            }
        }
    });
    rx
}

/// Sweeps the front's token tables every `every`, in one task: idle
/// Streamable HTTP sessions are closed, parked 2026-07-28 requests that
/// waited too long are dropped (and cancelled upstream).
pub fn reap_every(state: &FrontState, every: std::time::Duration) {
    let (http, parked) = (Arc::downgrade(&state.http_sessions), Arc::downgrade(&state.parked));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let (Some(http), Some(parked)) = (http.upgrade(), parked.upgrade()) else { return };
            http.reap();
            parked.reap();
        }
    });
}

/// The front's routes.
pub fn router(state: FrontState) -> Router {
    use crate::servers::endpoints::{INSTANCE_ROUTE, MCP_ROUTE, MESSAGES_ROUTE, SSE_ROUTE, WS_ROUTE};
    Router::new()
        .route(MCP_ROUTE, post(streamable::post).get(streamable::get).delete(streamable::delete))
        .route(
            INSTANCE_ROUTE,
            post(streamable::post_to_handle).get(streamable::handle_not_allowed).delete(streamable::handle_not_allowed),
        )
        .route(SSE_ROUTE, get(legacy_sse::stream))
        .route(MESSAGES_ROUTE, post(legacy_sse::post))
        .route(WS_ROUTE, get(websocket::upgrade))
        // A virtual server's endpoints: the same handlers, which ask the
        // manager for a session by name (a virtual name never looks like a
        // server id, which ends in `-NUMBER`).
        .route(&virtual_route(MCP_ROUTE), post(streamable::post).get(streamable::get).delete(streamable::delete))
        .route(&virtual_route(SSE_ROUTE), get(legacy_sse::stream))
        .route(&virtual_route(MESSAGES_ROUTE), post(legacy_sse::post))
        .route(&virtual_route(WS_ROUTE), get(websocket::upgrade))
        .with_state(state)
}

/// A server route's counterpart for virtual servers (`/virtual/{id}/mcp`).
fn virtual_route(route: &str) -> String {
    route.replacen("/servers/", "/virtual/", 1)
}

/// A request body. One over the router's body limit (the message limit)
/// is refused with a JSON-RPC error naming `limits.max_message_kib`
/// (axum's own refusal is plain text, which no MCP client can read), and
/// one that takes longer than `limits.read_timeout_secs` to arrive with a 408.
pub struct Body(pub axum::body::Bytes);

impl axum::extract::FromRequest<FrontState> for Body {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, st: &FrontState) -> Result<Self, Response> {
        let Ok(read) = tokio::time::timeout(st.read_timeout, axum::body::Bytes::from_request(req, st)).await else {
            return Err(rpc_error(
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                &format!(
                    "Request Timeout: the body did not arrive within {} s (limits.read_timeout_secs)",
                    st.read_timeout.as_secs()
                ),
            ));
        };
        match read {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INVALID_REQUEST,
                &format!("Payload Too Large: the body exceeds {} bytes (limits.max_message_kib)", st.max_message_bytes),
            )),
            Err(e) => Err(rpc_error(e.status(), code::INVALID_REQUEST, &e.body_text())),
        }
    }
}

/// A request's headers, moved out of it (axum's `HeaderMap` extractor
/// copies every header, on every POST), and its body read as [`Body`] is.
pub struct HeadersAndBody(pub HeaderMap, pub axum::body::Bytes);

impl axum::extract::FromRequest<FrontState> for HeadersAndBody {
    type Rejection = Response;

    async fn from_request(mut req: axum::extract::Request, st: &FrontState) -> Result<Self, Response> {
        let headers = std::mem::take(req.headers_mut());
        let Body(body) = Body::from_request(req, st).await?;
        Ok(HeadersAndBody(headers, body))
    }
}

/// A JSON body as an HTTP response with `status`.
pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A JSON-RPC error as an HTTP response with `status`.
pub fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    json_response(status, Message::error_response(None, code, message).to_text())
}

/// The media ranges `Accept` lists, in order, without their parameters.
fn media_ranges(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
}

/// True if the `Accept` header lists `mime` (or a wildcard covering it).
/// Media types compare without regard to case (RFC 9110, 8.3.1).
pub fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let (kind, _) = mime.split_once('/').unwrap_or((mime, ""));
    media_ranges(headers).any(|m| {
        m.eq_ignore_ascii_case(mime) || m == "*/*" || m.strip_suffix("/*").is_some_and(|k| k.eq_ignore_ascii_case(kind))
    })
}

/// True if `Accept` names `application/json` before `text/event-stream`.
pub(crate) fn prefers_json(headers: &HeaderMap) -> bool {
    for m in media_ranges(headers) {
        if m.eq_ignore_ascii_case("application/json") {
            return true;
        }
        if m.eq_ignore_ascii_case("text/event-stream") {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_lists_a_type_by_name_by_wildcard_and_in_any_case() {
        let h = accept(&["Application/JSON;q=0.9, text/*"]);
        assert!(accepts(&h, "application/json"));
        assert!(accepts(&h, "text/event-stream"), "text/* covers it");
        assert!(!accepts(&h, "image/png"));
        assert!(accepts(&accept(&["*/*"]), "image/png"));
        assert!(!accepts(&accept(&["application/jsonx"]), "application/json"));
        assert!(!accepts(&HeaderMap::new(), "application/json"));
    }

    #[test]
    fn json_is_preferred_only_when_listed_before_event_streams_across_header_lines() {
        assert!(prefers_json(&accept(&["application/json, text/event-stream"])));
        assert!(!prefers_json(&accept(&["text/event-stream, application/json"])));
        assert!(prefers_json(&accept(&["application/json"])));
        assert!(!prefers_json(&accept(&["text/event-stream"])));
        assert!(!prefers_json(&accept(&["text/event-stream", "application/json"])), "the earlier line first");
        assert!(prefers_json(&accept(&["APPLICATION/JSON; q=1", "text/event-stream"])));
        assert!(!prefers_json(&HeaderMap::new()));
    }
}
