//! The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /servers/{id}/sse`
//! opens the event stream, whose first event names the endpoint to POST
//! client messages to (`/servers/{id}/messages?sessionId=…`).

use super::tokens::TokenTable;
use super::{FrontError, FrontState, accepts, rpc_error};
use crate::frame::Frame;
use crate::identity::Principal;
use crate::jsonrpc::code;
use crate::servers::ClientSession;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One open legacy SSE session: its server's id and its client session.
type SseSession = (String, Arc<Mutex<ClientSession>>);

/// Open legacy SSE sessions, by `sessionId`. A session lives as long as
/// its event stream: the stream's end removes it, so the reaper has
/// nothing to judge here.
pub struct SseSessions {
    table: TokenTable<SseSession>,
}

impl SseSessions {
    /// An empty table.
    pub fn new() -> Arc<Self> {
        Arc::new(SseSessions { table: TokenTable::new(Duration::MAX) })
    }
}

/// Query of `POST /messages`.
#[derive(serde::Deserialize)]
pub struct MessagesQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `GET /servers/{id}/sse`.
pub async fn stream(
    State(st): State<FrontState>,
    Path(server_id): Path<String>,
    Extension(who): Extension<Arc<Principal>>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(axum::http::header::ACCEPT) && !accepts(&headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Not Acceptable: the client must accept text/event-stream",
        );
    }
    let mut client = match st.manager.open_session(&server_id, who).await {
        Ok(c) => c,
        Err(e) => return FrontError::from(e).into_response(),
    };
    let token = crate::servers::new_token();
    let deliveries = client.take_deliveries();
    let client = Arc::new(Mutex::new(client));
    st.sse_sessions.table.insert(token.clone(), (server_id.clone(), client.clone()));
    let endpoint = crate::servers::endpoints::messages_path(&server_id, &token);
    let first = vec![Frame { event: Some("endpoint".to_string()), id: None, data: endpoint }];
    let (rx, forwarding) = super::backlog::bounded(deliveries, server_id, "sse", st.streams);
    let sessions = st.sse_sessions.clone();
    tokio::spawn(async move {
        // The client went away, the server did, or the client stopped
        // reading (the stream then ends): end the session.
        let _ = forwarding.await;
        sessions.table.remove(&token);
        if let Ok(mut c) = client.lock() {
            c.close();
        }
    });
    super::sse::response(first, rx)
}

/// `POST /servers/{id}/messages?sessionId=…`.
pub async fn post(
    State(st): State<FrontState>,
    Path(server_id): Path<String>,
    Query(q): Query<MessagesQuery>,
    super::Body(body): super::Body,
) -> Response {
    let Some(token) = q.session_id else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "Bad Request: the sessionId query parameter is required",
        );
    };
    let client = match st.sse_sessions.table.get(&token) {
        Some((sid, c)) if sid == server_id => c,
        _ => {
            return rpc_error(
                StatusCode::NOT_FOUND,
                code::INVALID_REQUEST,
                "Session not found: open a new stream at /sse",
            );
        }
    };
    let msgs = match super::streamable::decode_body(&body) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    if let Ok(c) = client.lock() {
        for m in msgs {
            c.send(m);
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
