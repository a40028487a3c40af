//! The upstreams: how mcpod reaches a server, as its client. One file per
//! transport (`stdio`, `streamable_http`, `sse`, `websocket`, and
//! `rev_2026_07_28` for a Streamable HTTP server that speaks only MCP
//! 2026-07-28), behind one entry point, [`run`], for the network ones
//! (stdio is written and read by the instance itself, on the calling task).
//! Bodies, event streams and frames go through the protocol-adapter
//! plugins; these modules only move bytes. A new transport is a new file
//! here and one arm in [`run`].

pub mod oauth;
pub mod rev_2026_07_28;
pub mod sse;
pub mod stdio;
pub mod streamable_http;
pub mod websocket;

use crate::frame::Frame;
use crate::jsonrpc::{Message, code};
use crate::launch::Transport;
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
    /// Headers every request carries (a remote server's `Authorization`);
    /// secrets, never logged.
    pub headers: Vec<(String, String)>,
    /// Where a remote server's OAuth bearer token comes from, if it needs one.
    pub oauth: Option<std::sync::Arc<oauth::TokenSource>>,
    /// Set once the server is found to speak MCP 2026-07-28, so that such
    /// clients' requests reach it with their own `_meta`.
    pub speaks_modern: Arc<std::sync::atomic::AtomicBool>,
}

/// Why a link to a server ended: every transport's one error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The instance closed the link (it is stopping or restarting).
    #[error("the instance closed its upstream")]
    Closed,
    /// The server could not be reached at all.
    #[error("{0}")]
    Unreachable(String),
    /// The connection or stream to the server failed or ended.
    #[error("{0}")]
    Lost(String),
    /// The server broke its transport's rules (a missing or foreign `endpoint`).
    #[error("{0}")]
    Refused(String),
    /// An adapter plugin or the HTTP client could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The server speaks stdio, which has no network link.
    #[error("a stdio server has no network endpoint")]
    NoEndpoint,
}

/// Runs `link` until it is lost: messages from `rx` go to the server, the
/// server's messages go to `deliver`. Returns why it ended.
pub async fn run(link: Link, rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> UpstreamError {
    match link.transport {
        Transport::StreamableHttp => streamable_http::run(link, rx, deliver).await,
        Transport::Sse => sse::run(link, rx, deliver).await,
        Transport::Websocket => websocket::run(link, rx, deliver).await,
        Transport::Stdio => UpstreamError::NoEndpoint,
    }
}

/// The next message for the server, or why the link ended: the instance
/// closed its upstream, or a request found the server unreachable.
pub(super) async fn next_message(
    rx: &mut mpsc::UnboundedReceiver<Message>,
    lost: &mut mpsc::Receiver<String>,
) -> Result<Message, UpstreamError> {
    tokio::select! {
        m = rx.recv() => m.ok_or(UpstreamError::Closed),
        Some(why) = lost.recv() => Err(UpstreamError::Lost(why)),
    }
}

/// An error with every cause under it (`error sending request: client
/// error (Connect): invalid peer certificate: UnknownIssuer`): reqwest's own
/// text names only the outermost, which tells nobody why a TLS check failed.
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// Where the server's messages go.
pub type Deliver = Arc<dyn Fn(Message) + Send + Sync>;

/// The HTTP client of one link: its headers on every request, certificates
/// verified, and redirects followed only within the link's own origin (a
/// redirect elsewhere would carry the link's headers, and its traffic,
/// past `policy.allow_remote_hosts`).
pub(crate) fn client(link: &Link) -> Result<reqwest::Client, UpstreamError> {
    // Without a TLS provider reqwest panics on build; the app installs it,
    // but an upstream must not depend on who called first.
    crate::tls::install_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &link.headers {
        let (Ok(name), Ok(mut value)) =
            (reqwest::header::HeaderName::from_bytes(name.as_bytes()), reqwest::header::HeaderValue::from_str(value))
        else {
            return Err(UpstreamError::Setup(format!("header `{name}` is not a valid HTTP header")));
        };
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let origin = link.url.origin();
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if attempt.url().origin() == origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .build()
        .map_err(|e| UpstreamError::Setup(format!("cannot build the HTTP client: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PluginEntry, PluginKind};
    use crate::plugin::PluginHost;

    /// The built-in network adapters, loaded alone.
    async fn codecs() -> Codecs {
        let mut config = Config::default();
        config.plugin_runtime.builtins = false;
        config.plugin_runtime.cache = false;
        config.plugins = ["http", "sse", "websocket"]
            .into_iter()
            .map(|name| PluginEntry {
                name: name.to_string(),
                kind: PluginKind::ProtocolAdapter,
                source: format!("builtin:{name}"),
                allow_hosts: None,
                limits: Default::default(),
                config: Default::default(),
                documents_dir: None,
            })
            .collect();
        let host = PluginHost::load(&config).await.expect("engine");
        let get = |name| host.adapter(name).expect("built-in adapter");
        Codecs { http: get("http"), sse: get("sse"), websocket: get("websocket") }
    }

    /// A port on 127.0.0.1 that refuses connections.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    fn link(codecs: &Codecs, transport: Transport, port: u16) -> Link {
        Link {
            server: "s1".to_string(),
            url: url::Url::parse(&format!("http://127.0.0.1:{port}/mcp")).expect("url"),
            transport,
            codecs: codecs.clone(),
            max_message_bytes: 1 << 20,
            headers: Vec::new(),
            oauth: None,
            speaks_modern: Default::default(),
        }
    }

    #[tokio::test]
    async fn each_way_a_link_ends_is_named_by_one_error_type() {
        let codecs = codecs().await;
        let deliver: Deliver = Arc::new(|_| {});
        let port = closed_port();
        let (_tx, rx) = mpsc::unbounded_channel();
        let stdio = run(link(&codecs, Transport::Stdio, port), rx, deliver.clone()).await;
        assert_eq!(stdio, UpstreamError::NoEndpoint);
        for transport in [Transport::Sse, Transport::Websocket] {
            let (_tx, rx) = mpsc::unbounded_channel();
            let why = run(link(&codecs, transport, port), rx, deliver.clone()).await;
            assert!(
                matches!(&why, UpstreamError::Unreachable(m) if m.contains(&port.to_string())),
                "{transport:?}: {why:?}"
            );
        }
        // Streamable HTTP connects per message: no message, nothing tried, and
        // the instance closing the link is no failure.
        let (tx, rx) = mpsc::unbounded_channel::<Message>();
        drop(tx);
        assert_eq!(
            run(link(&codecs, Transport::StreamableHttp, port), rx, deliver.clone()).await,
            UpstreamError::Closed
        );
    }
}
