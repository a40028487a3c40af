//! The upstreams: how mcpod reaches a server, as its client. One file per
//! transport (`stdio`, `streamable_http`, `sse`, `websocket`, and
//! `rev_2026_07_28` for a Streamable HTTP server that speaks only MCP
//! 2026-07-28), behind one entry point, [`run`], for the network ones
//! (stdio is written and read by the instance itself, on the calling task).
//! Bodies, event streams and frames go through the protocol-adapter
//! plugins; these modules only move bytes. A new transport is a new file
//! here and one arm in [`run`].

pub mod rev_2026_07_28;
pub mod sse;
pub mod stdio;
pub mod streamable_http;
pub mod websocket;

use crate::jsonrpc::{Message, code};
use crate::plugin::bindings::{Frame, Transport};
use crate::plugin::kinds::adapter::Decoded;
use crate::plugin::{AdapterPlugin, AdapterSession};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The adapters a network upstream frames its traffic with.
#[derive(Clone)]
pub struct Codecs {
    /// JSON bodies (`http`).
    pub http: AdapterPlugin,
    /// Event streams (`sse`).
    pub sse: AdapterPlugin,
    /// WebSocket frames (`websocket`).
    pub websocket: AdapterPlugin,
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

/// Runs `link` until it is lost: messages from `rx` go to the server, the
/// server's messages go to `deliver`. Returns why it ended.
pub async fn run(link: Link, rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> String {
    match link.transport {
        Transport::StreamableHttp => streamable_http::run(link, rx, deliver).await,
        Transport::Sse => sse::run(link, rx, deliver).await,
        Transport::Websocket => websocket::run(link, rx, deliver).await,
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

pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Decodes frames into messages for `deliver`; returns the named events.
pub(crate) fn hand_over(server: &str, frames: Decoded, deliver: &Deliver) -> Vec<Frame> {
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
pub(crate) fn refuse(msg: &Message, why: &str, deliver: &Deliver) {
    if msg.method.is_some()
        && let Some(id) = msg.id.value()
    {
        deliver(Message::error_response(Some(id.clone()), code::SERVER_UNAVAILABLE, why));
    }
}

/// Reads an event stream body through the `sse` adapter until it ends;
/// messages go to `deliver`, named events to `on_event`. Returns the last
/// event id seen.
pub(crate) async fn read_events(
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

pub(crate) fn open(plugin: &AdapterPlugin, max: u32) -> Result<AdapterSession, String> {
    AdapterSession::open(plugin.clone(), max).map_err(|e| format!("cannot open the `{}` adapter: {e}", plugin.name))
}
