//! Streamable HTTP as a client: every message is a POST; answers come as a
//! JSON body or an event stream; a GET stream carries what the server
//! sends on its own. A server that answers `server/discover` at 2026-07-28
//! is handed to [`super::rev_2026_07_28`] for the life of the connection.

use super::{Deliver, Link, UpstreamError, client, hand_over, next_message, open, read_events, refuse};
use crate::jsonrpc::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::frame::Frame;
use crate::mcp_headers::PROTOCOL_VERSION as VERSION_HEADER;
use crate::mcp_headers::SESSION_ID as SESSION_HEADER;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use std::sync::Mutex;

/// Streamable HTTP as a client: every message is a POST; answers come as a
/// JSON body or an event stream; a GET stream carries what the server sends
/// on its own.
pub async fn run(link: Link, mut rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> UpstreamError {
    let http = match client(&link) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let headers: Arc<Mutex<HeaderMap>> = Arc::new(Mutex::new(HeaderMap::new()));
    let (lost_tx, mut lost) = mpsc::channel::<String>(1);
    let link = Arc::new(link);
    let mut get_stream: Option<tokio::task::JoinHandle<()>> = None;
    let reason = loop {
        let msg = match next_message(&mut rx, &mut lost).await {
            Ok(m) => m,
            Err(why) => break why,
        };
        let is_initialize = msg.method.as_deref() == Some("initialize");
        let is_initialized = msg.method.as_deref() == Some("notifications/initialized");
        if is_initialize {
            use super::rev_2026_07_28::{self as modern, DISCOVER_TIMEOUT, Wire};
            let wire = Wire::Http { http: http.clone(), link: link.clone() };
            let params = msg.params.clone().unwrap_or_else(|| crate::jsonrpc::raw(&serde_json::json!({})));
            if let Some(found) = modern::discover(&wire, &params, DISCOVER_TIMEOUT).await {
                // A 2026-07-28 server: speak that revision to it from here on.
                link.speaks_modern.store(true, std::sync::atomic::Ordering::Release);
                return modern::run(wire, rx, deliver, msg, found).await;
            }
        }
        let post = post_streamable(http.clone(), link.clone(), headers.clone(), msg, deliver.clone(), lost_tx.clone());
        if is_initialize {
            // Later messages need the session id this answer carries.
            post.await;
        } else {
            tokio::spawn(post);
        }
        if is_initialized && get_stream.is_none() {
            get_stream =
                Some(tokio::spawn(listen_streamable(http.clone(), link.clone(), headers.clone(), deliver.clone())));
        }
    };
    if let Some(task) = get_stream {
        task.abort();
    }
    // Best effort: tell the server the session is over.
    let session = headers.lock().ok().and_then(|h| h.get(SESSION_HEADER).cloned());
    if let Some(session) = session {
        let _ =
            http.delete(link.url.clone()).header(SESSION_HEADER, session).timeout(Duration::from_secs(2)).send().await;
    }
    reason
}

async fn post_streamable(
    http: reqwest::Client,
    link: Arc<Link>,
    headers: Arc<Mutex<HeaderMap>>,
    msg: Message,
    deliver: Deliver,
    lost: mpsc::Sender<String>,
) {
    let extra = headers.lock().map(|h| h.clone()).unwrap_or_default();
    let is_initialize = msg.method.as_deref() == Some("initialize");
    let answer_to = if is_initialize { noting_version(headers.clone(), deliver.clone()) } else { deliver.clone() };
    match exchange(&http, &link, extra.clone(), &msg, &answer_to).await {
        Ok(reply_headers) => {
            if is_initialize {
                remember_session(&reply_headers, &headers);
            }
        }
        Err(PostError::Unreachable(why)) => {
            refuse(&msg, &why, &deliver);
            let _ = lost.try_send(why);
        }
        Err(PostError::Status(status, _))
            if status == reqwest::StatusCode::NOT_FOUND && extra.contains_key(SESSION_HEADER) =>
        {
            // The server forgot our session: reconnect and re-initialize.
            let why = "the server ended its session".to_string();
            refuse(&msg, &why, &deliver);
            let _ = lost.try_send(why);
        }
        Err(PostError::Status(status, text)) => match error_body(&text) {
            // A JSON-RPC error body answers the request as the server meant it.
            Some(reply) => deliver(reply),
            None => refuse(
                &msg,
                &format!("the server answered HTTP {status}: {}", text.chars().take(200).collect::<String>()),
                &deliver,
            ),
        },
        Err(PostError::Codec(why)) => refuse(&msg, &why, &deliver),
    }
}

/// Why a POST brought no answer.
pub(crate) enum PostError {
    /// The server could not be reached (the link is lost).
    Unreachable(String),
    /// The server answered with this non-success status and body.
    Status(reqwest::StatusCode, String),
    /// An adapter refused the message or the answer.
    Codec(String),
}

/// A JSON-RPC error response in a body, if that is what it holds.
pub(crate) fn error_body(text: &str) -> Option<Message> {
    Message::parse(text).ok().filter(|m| m.error.is_some() && m.id.value().is_some())
}

/// POSTs `msg` to a Streamable HTTP endpoint with `extra` headers, encoded
/// by the `http` adapter, and hands every message of a success answer (a
/// JSON body or an event stream, read to its end) to `deliver`. Returns the
/// answer's headers.
pub(crate) async fn exchange(
    http: &reqwest::Client,
    link: &Link,
    extra: HeaderMap,
    msg: &Message,
    deliver: &Deliver,
) -> Result<HeaderMap, PostError> {
    let mut body = open(&link.codecs.http, link.max_message_bytes).map_err(PostError::Codec)?;
    let encoded = body
        .encode(Frame::message(msg.to_text()))
        .map_err(|e| PostError::Codec(format!("the http adapter refused the message: {e}")))?;
    let req = http
        .post(link.url.clone())
        .headers(extra)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .body(encoded);
    let resp = super::oauth::authorize(req, link.oauth.as_deref())
        .await
        .map_err(|e| PostError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| {
            PostError::Unreachable(format!("the server at {} did not answer: {}", link.url, super::causes(&e)))
        })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED
        && let Some(source) = &link.oauth
    {
        source.invalidate().await;
    }
    if !status.is_success() {
        return Err(PostError::Status(status, resp.text().await.unwrap_or_default()));
    }
    let reply_headers = resp.headers().clone();
    let is_events = reply_headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_events {
        let mut codec = open(&link.codecs.sse, link.max_message_bytes).map_err(PostError::Codec)?;
        read_events(&link.server, resp.bytes_stream(), &mut codec, deliver, |_| {}).await;
    } else if status != reqwest::StatusCode::ACCEPTED {
        let bytes =
            resp.bytes().await.map_err(|e| PostError::Codec(format!("the server's answer was cut off: {e}")))?;
        let mut frames = body
            .decode(&bytes)
            .map_err(|e| PostError::Codec(format!("the http adapter refused the server's answer: {e}")))?;
        if let Ok(rest) = body.finish() {
            frames.extend(rest);
        }
        hand_over(&link.server, frames, deliver);
    }
    Ok(reply_headers)
}

/// Keeps the session id an `initialize` answer carries.
fn remember_session(reply: &HeaderMap, headers: &Mutex<HeaderMap>) {
    if let Some(session) = reply.get(SESSION_HEADER).cloned()
        && let Ok(mut h) = headers.lock()
    {
        h.insert(SESSION_HEADER, session);
    }
}

/// A `deliver` that also keeps the protocol version an `initialize` answer
/// names, for the `MCP-Protocol-Version` header of every later request.
fn noting_version(headers: Arc<Mutex<HeaderMap>>, deliver: Deliver) -> Deliver {
    Arc::new(move |m: Message| {
        let version = m.result.as_ref().and_then(|r| {
            serde_json::from_str::<serde_json::Value>(r.get()).ok()?.get("protocolVersion")?.as_str().map(str::to_owned)
        });
        if let Some(v) = version.and_then(|v| HeaderValue::from_str(&v).ok())
            && let Ok(mut h) = headers.lock()
        {
            h.insert(VERSION_HEADER, v);
        }
        deliver(m)
    })
}

/// The GET stream of a Streamable HTTP session: what the server sends on
/// its own. Reopened with `Last-Event-ID` when it ends; a 405 means the
/// server offers none.
async fn listen_streamable(http: reqwest::Client, link: Arc<Link>, headers: Arc<Mutex<HeaderMap>>, deliver: Deliver) {
    let mut last_id: Option<String> = None;
    for attempt in 0u32.. {
        let extra = headers.lock().map(|h| h.clone()).unwrap_or_default();
        let mut req = http.get(link.url.clone()).headers(extra).header(ACCEPT, "text/event-stream");
        if let Some(id) = &last_id {
            req = req.header(crate::mcp_headers::LAST_EVENT_ID, id.as_str());
        }
        let req = match super::oauth::authorize(req, link.oauth.as_deref()).await {
            Ok(r) => r,
            Err(e) => return tracing::warn!(server = %link.server, "the server's stream needs a token: {e}"),
        };
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                let mut codec = match open(&link.codecs.sse, link.max_message_bytes) {
                    Ok(c) => c,
                    Err(e) => return tracing::warn!(server = %link.server, "{e}"),
                };
                if let Some(id) = read_events(&link.server, resp.bytes_stream(), &mut codec, &deliver, |_| {}).await {
                    last_id = Some(id);
                }
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
            Ok(resp) => {
                tracing::debug!(server = %link.server, status = %resp.status(), "the server refused the GET stream");
                if attempt > 3 {
                    return;
                }
            }
            Err(e) => tracing::debug!(server = %link.server, error = %e, "the GET stream failed"),
        }
        tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt.min(8) + 1))).await;
    }
}
