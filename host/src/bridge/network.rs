//! The network upstreams: a server that listens on a port, reached over
//! Streamable HTTP, legacy HTTP+SSE or WebSocket, with mcpod as the client.
//! Bodies, event streams and frames go through the `http`, `sse` and
//! `websocket` protocol-adapter plugins; this module only moves bytes.

use crate::jsonrpc::{Message, code};
use crate::plugin::bindings::{Frame, Transport};
use crate::plugin::kinds::adapter::Decoded;
use crate::plugin::{AdapterSession, LoadedPlugin};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The adapters a network upstream frames its traffic with.
#[derive(Clone)]
pub struct Codecs {
    /// JSON bodies (`http`).
    pub http: Arc<LoadedPlugin>,
    /// Event streams (`sse`).
    pub sse: Arc<LoadedPlugin>,
    /// WebSocket frames (`websocket`).
    pub websocket: Arc<LoadedPlugin>,
}

/// One network upstream: where it is and how to frame it.
pub struct Link {
    /// The server's id, for logs.
    pub server: String,
    /// The endpoint (`http://10.0.0.7:8051/sse`).
    pub url: url::Url,
    /// The transport it speaks.
    pub transport: Transport,
    /// Its adapters.
    pub codecs: Codecs,
    /// The largest message accepted.
    pub max_message_bytes: u32,
}

pub(super) use crate::mcp_headers::PROTOCOL_VERSION as VERSION_HEADER;
/// Header names of Streamable HTTP.
use crate::mcp_headers::SESSION_ID as SESSION_HEADER;

/// Runs `link` until it is lost: messages from `rx` go to the server, the
/// server's messages go to `deliver`. Returns why it ended.
pub async fn run(link: Link, rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> String {
    match link.transport {
        Transport::StreamableHttp => streamable(link, rx, deliver).await,
        Transport::Sse => legacy_sse(link, rx, deliver).await,
        Transport::Websocket => websocket(link, rx, deliver).await,
        Transport::Stdio => "a stdio server has no network endpoint".to_string(),
    }
}

/// The next message for the server, or why the link ended: the instance
/// closed its upstream, or a request found the server unreachable.
pub(super) async fn next_message(
    rx: &mut mpsc::UnboundedReceiver<Message>,
    lost: &mut mpsc::Receiver<String>,
) -> Result<Message, String> {
    tokio::select! {
        m = rx.recv() => m.ok_or_else(|| "the instance closed its upstream".to_string()),
        Some(why) = lost.recv() => Err(why),
    }
}

/// Where the server's messages go.
pub type Deliver = Arc<dyn Fn(Message) + Send + Sync>;

pub(super) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Decodes frames into messages for `deliver`; returns the named events.
fn hand_over(server: &str, frames: Decoded, deliver: &Deliver) -> Vec<Frame> {
    let mut named = Vec::new();
    for frame in frames {
        match frame {
            Ok(f) if f.event.as_deref().is_some_and(|e| e != "message") => named.push(f),
            Ok(f) => match Message::parse_batch(&f.data) {
                Ok((msgs, _)) => msgs.into_iter().for_each(|m| deliver(m)),
                Err(e) => tracing::warn!(server = %server, error = %e, "ignored a server message that is not JSON-RPC"),
            },
            Err(e) => tracing::warn!(server = %server, error = %e.message, "ignored a malformed frame from the server"),
        }
    }
    named
}

/// A JSON-RPC error answering `msg` if it is a request (the upstream could
/// not take it), so that its client hears at once.
pub(super) fn refuse(msg: &Message, why: &str, deliver: &Deliver) {
    if msg.method.is_some()
        && let Some(id) = msg.id.value()
    {
        deliver(Message::error_response(Some(id.clone()), code::SERVER_UNAVAILABLE, why));
    }
}

/// Reads an event stream body through the `sse` adapter until it ends;
/// messages go to `deliver`, named events to `on_event`. Returns the last
/// event id seen.
async fn read_events(
    server: &str,
    body: impl futures_util::Stream<Item = reqwest::Result<impl AsRef<[u8]>>>,
    codec: &mut AdapterSession,
    deliver: &Deliver,
    mut on_event: impl FnMut(Frame),
) -> Option<String> {
    let mut body = std::pin::pin!(body);
    let mut last_id = None;
    let mut track = |frames: Decoded, on_event: &mut dyn FnMut(Frame)| {
        for f in frames.iter().flatten() {
            if let Some(id) = &f.id {
                last_id = Some(id.clone());
            }
        }
        for named in hand_over(server, frames, deliver) {
            on_event(named);
        }
    };
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        match codec.decode(chunk.as_ref()) {
            Ok(frames) => track(frames, &mut on_event),
            Err(e) => {
                tracing::warn!(server = %server, error = %e, "the sse adapter failed on the server's stream");
                break;
            }
        }
    }
    if let Ok(frames) = codec.finish() {
        track(frames, &mut on_event);
    }
    last_id
}

pub(super) fn open(plugin: &Arc<LoadedPlugin>, max: u32) -> Result<AdapterSession, String> {
    AdapterSession::open(plugin.clone(), max).map_err(|e| format!("cannot open the `{}` adapter: {e}", plugin.name))
}

/// Streamable HTTP as a client: every message is a POST; answers come as a
/// JSON body or an event stream; a GET stream carries what the server sends
/// on its own.
async fn streamable(link: Link, mut rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> String {
    let http = match client() {
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
        if is_initialize && let Some(found) = super::modern_upstream::discover(&http, &link, &msg).await {
            // A 2026-07-28 server: speak that revision to it from here on.
            return super::modern_upstream::run(http, link, rx, deliver, msg, found).await;
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
pub(super) enum PostError {
    /// The server could not be reached (the link is lost).
    Unreachable(String),
    /// The server answered with this non-success status and body.
    Status(reqwest::StatusCode, String),
    /// An adapter refused the message or the answer.
    Codec(String),
}

/// A JSON-RPC error response in a body, if that is what it holds.
pub(super) fn error_body(text: &str) -> Option<Message> {
    Message::parse(text).ok().filter(|m| m.error.is_some() && m.id.value().is_some())
}

/// POSTs `msg` to a Streamable HTTP endpoint with `extra` headers, encoded
/// by the `http` adapter, and hands every message of a success answer (a
/// JSON body or an event stream, read to its end) to `deliver`. Returns the
/// answer's headers.
pub(super) async fn exchange(
    http: &reqwest::Client,
    link: &Link,
    extra: HeaderMap,
    msg: &Message,
    deliver: &Deliver,
) -> Result<HeaderMap, PostError> {
    let mut body = open(&link.codecs.http, link.max_message_bytes).map_err(PostError::Codec)?;
    let encoded = body
        .encode(&Frame { event: None, id: None, data: msg.to_text() })
        .map_err(|e| PostError::Codec(format!("the http adapter refused the message: {e}")))?;
    let resp = http
        .post(link.url.clone())
        .headers(extra)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .body(encoded)
        .send()
        .await
        .map_err(|e| PostError::Unreachable(format!("the server at {} did not answer: {e}", link.url)))?;
    let status = resp.status();
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

/// Legacy HTTP+SSE as a client: a GET event stream whose `endpoint` event
/// names where to POST; answers come on the stream.
async fn legacy_sse(link: Link, mut rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> String {
    let http = match client() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let resp = match http.get(link.url.clone()).header(ACCEPT, "text/event-stream").send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return format!("the server's event stream at {} answered HTTP {}", link.url, r.status()),
        Err(e) => return format!("cannot open the server's event stream at {}: {e}", link.url),
    };
    let mut codec = match open(&link.codecs.sse, link.max_message_bytes) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let (endpoint_tx, mut endpoint_rx) = mpsc::unbounded_channel::<String>();
    let base = link.url.clone();
    let server = link.server.clone();
    let reader_deliver = deliver.clone();
    let mut reader = tokio::spawn(async move {
        read_events(&server, resp.bytes_stream(), &mut codec, &reader_deliver, |f| {
            if f.event.as_deref() == Some("endpoint") {
                let _ = endpoint_tx.send(f.data);
            }
        })
        .await;
    });
    let post_url = tokio::select! {
        e = endpoint_rx.recv() => match e.map(|e| base.join(e.trim())) {
            Some(Ok(u)) => u,
            Some(Err(e)) => return format!("the server's `endpoint` event is not a URL: {e}"),
            None => return "the server's event stream ended before its `endpoint` event".to_string(),
        },
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            reader.abort();
            return "the server sent no `endpoint` event within 30 s".to_string();
        }
    };
    if post_url.origin() != base.origin() {
        reader.abort();
        return format!("the server's `endpoint` event points at another origin ({post_url}); refused");
    }
    let codecs = link.codecs.clone();
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(msg) = m else {
                    reader.abort();
                    return "the instance closed its upstream".to_string();
                };
                tokio::spawn(post_legacy(http.clone(), post_url.clone(), codecs.http.clone(), link.max_message_bytes, msg, deliver.clone()));
            }
            _ = &mut reader => return "the server's event stream ended".to_string(),
        }
    }
}

async fn post_legacy(
    http: reqwest::Client,
    url: url::Url,
    codec: Arc<LoadedPlugin>,
    max: u32,
    msg: Message,
    deliver: Deliver,
) {
    let mut body = match open(&codec, max) {
        Ok(c) => c,
        Err(e) => return refuse(&msg, &e, &deliver),
    };
    let encoded = match body.encode(&Frame { event: None, id: None, data: msg.to_text() }) {
        Ok(b) => b,
        Err(e) => return refuse(&msg, &format!("the http adapter refused the message: {e}"), &deliver),
    };
    match http.post(url).header(CONTENT_TYPE, "application/json").body(encoded).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => refuse(&msg, &format!("the server refused the message: HTTP {}", r.status()), &deliver),
        Err(e) => refuse(&msg, &format!("the server did not take the message: {e}"), &deliver),
    }
}

/// WebSocket (subprotocol `mcp`) as a client: one message per text frame.
async fn websocket(link: Link, mut rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> String {
    use tokio_tungstenite::tungstenite::{Message as Ws, client::IntoClientRequest};
    let mut url = link.url.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    if url.set_scheme(scheme).is_err() {
        return format!("cannot make a WebSocket URL of {}", link.url);
    }
    let mut request = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return format!("bad WebSocket URL {url}: {e}"),
    };
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    let (socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(s) => s,
        Err(e) => return format!("cannot open the WebSocket at {url}: {e}"),
    };
    let (mut sink, mut stream) = socket.split();
    let mut codec = match open(&link.codecs.websocket, link.max_message_bytes) {
        Ok(c) => c,
        Err(e) => return e,
    };
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(msg) = m else { return "the instance closed its upstream".to_string() };
                let frame = Frame { event: None, id: None, data: msg.to_text() };
                match codec.encode(&frame) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        if let Err(e) = sink.send(Ws::Text(text.into())).await {
                            refuse(&msg, "the server's WebSocket closed", &deliver);
                            return format!("the server's WebSocket failed: {e}");
                        }
                    }
                    Err(e) => refuse(&msg, &format!("the websocket adapter refused the message: {e}"), &deliver),
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Ws::Text(text))) => match codec.decode(text.as_bytes()) {
                    Ok(frames) => {
                        hand_over(&link.server, frames, &deliver);
                    }
                    Err(e) => tracing::warn!(server = %link.server, error = %e, "the websocket adapter failed"),
                },
                Some(Ok(Ws::Close(_))) | None => return "the server closed its WebSocket".to_string(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("the server's WebSocket failed: {e}"),
            }
        }
    }
}
