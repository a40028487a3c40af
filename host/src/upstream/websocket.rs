//! WebSocket (subprotocol `mcp`) as a client: one message per text frame.

use super::{Deliver, Link, UpstreamError, hand_over, open, refuse};
use crate::frame::Frame;
use crate::jsonrpc::Message;
use reqwest::header::HeaderValue;
use tokio::sync::mpsc;

use futures_util::{SinkExt, StreamExt};

/// WebSocket (subprotocol `mcp`) as a client: one message per text frame.
pub async fn run(link: Link, mut rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> UpstreamError {
    use tokio_tungstenite::tungstenite::{Message as Ws, client::IntoClientRequest};
    let mut url = link.url.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    if url.set_scheme(scheme).is_err() {
        return UpstreamError::Setup(format!("cannot make a WebSocket URL of {}", link.url));
    }
    let mut request = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return UpstreamError::Setup(format!("bad WebSocket URL {url}: {e}")),
    };
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    if let Some(source) = &link.oauth {
        match source.bearer().await.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))) {
            Ok(Ok(value)) => {
                request.headers_mut().insert("authorization", value);
            }
            Ok(Err(_)) => return UpstreamError::Setup("the OAuth token is not a valid header value".into()),
            Err(e) => return e,
        }
    }
    for (name, value) in &link.headers {
        match (
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                request.headers_mut().insert(name, value);
            }
            _ => return UpstreamError::Setup(format!("header `{name}` is not a valid HTTP header")),
        }
    }
    let (socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(s) => s,
        Err(e) => return UpstreamError::Unreachable(format!("cannot open the WebSocket at {url}: {e}")),
    };
    let (mut sink, mut stream) = socket.split();
    let mut codec = match open(&link.codecs.websocket, link.max_message_bytes) {
        Ok(c) => c,
        Err(e) => return UpstreamError::Setup(e),
    };
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(msg) = m else { return UpstreamError::Closed };
                match codec.encode(Frame::message(msg.to_text())) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        if let Err(e) = sink.send(Ws::Text(text.into())).await {
                            refuse(&msg, "the server's WebSocket closed", &deliver);
                            return UpstreamError::Lost(format!("the server's WebSocket failed: {e}"));
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
                Some(Ok(Ws::Close(_))) | None => return UpstreamError::Lost("the server closed its WebSocket".to_string()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return UpstreamError::Lost(format!("the server's WebSocket failed: {e}")),
            }
        }
    }
}
