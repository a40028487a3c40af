//! MCP over WebSocket at `/servers/{id}/ws` (subprotocol `mcp`): one
//! JSON-RPC message (or batch) per text frame, both ways.

use super::{FrontError, FrontState};
use crate::identity::Principal;
use crate::jsonrpc::{Message, code};
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `GET /servers/{id}/ws`.
pub async fn upgrade(
    State(st): State<FrontState>,
    Path(server_id): Path<String>,
    Extension(who): Extension<Arc<Principal>>,
    ws: WebSocketUpgrade,
) -> Response {
    let client = match st.manager.open_session(&server_id, who).await {
        Ok(c) => c,
        Err(e) => return FrontError::from(e).into_response(),
    };
    let budget = st.streams;
    ws.protocols(["mcp"])
        .max_message_size(st.max_message_bytes)
        .read_buffer_size(READ_CHUNK)
        .on_upgrade(move |socket| serve(socket, client, budget))
}

/// The bytes a WebSocket connection reads into at a time. tungstenite's
/// default, 128 KiB, is held by every open connection: 1,000 idle
/// WebSocket sessions cost 128 MiB more than as many Streamable HTTP
/// sessions (`mcpod-bench growth`). A larger message is read in several
/// chunks; its limit is `max_message_kib`.
const READ_CHUNK: usize = 8 * 1024;

/// How long one message may wait for a client that does not read before
/// the connection is dropped (its close frame could not get through either).
const SEND_STALL: Duration = Duration::from_secs(60);

/// Reads the client's messages into its session while [`write`] sends the
/// session's to it: reading never waits on a client that does not read.
async fn serve(socket: WebSocket, mut client: crate::servers::ClientSession, budget: super::backlog::StreamBudget) {
    let server = client.server_id().to_string();
    let (outgoing, forwarding) = super::backlog::bounded(client.take_deliveries(), server, "websocket", budget);
    let (sink, mut stream) = socket.split();
    let (replies, replies_rx) = mpsc::channel::<WsMessage>(16);
    let mut writer = tokio::spawn(write(sink, outgoing, forwarding, replies_rx));
    let reply = |msg: Message| {
        let _ = replies.try_send(WsMessage::Text(msg.to_text().into()));
    };
    loop {
        let incoming = tokio::select! {
            incoming = stream.next() => incoming,
            _ = &mut writer => return client.close(),
        };
        let text = match incoming {
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Binary(_))) => {
                reply(Message::error_response(None, code::INVALID_REQUEST, "MCP over WebSocket uses text frames"));
                continue;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                // An oversized message ends the connection (the socket
                // cannot skip it); say which limit, as 1009 requires.
                if e.to_string().contains("Message too long") {
                    let reason = "message exceeds limits.max_message_kib";
                    let _ = replies.try_send(WsMessage::Close(Some(CloseFrame { code: 1009, reason: reason.into() })));
                }
                break;
            }
            None => break,
        };
        match Message::parse_batch(text.as_str()) {
            Ok((msgs, _)) => msgs.into_iter().for_each(|m| client.send(m)),
            Err(e) => reply(Message::error_response(None, e.code(), &e.client_message())),
        }
    }
    client.close();
    drop(replies);
    // Let the writer send what it has (a 1009 close), within its bound.
    if tokio::time::timeout(SEND_STALL, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// Sends the front's own replies and the session's messages to the
/// client until the session or the connection ends, then a close frame that
/// says why; a send the client does not take within [`SEND_STALL`] drops
/// the connection.
async fn write(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut outgoing: mpsc::Receiver<super::sse::Routed>,
    forwarding: tokio::task::JoinHandle<super::backlog::Ended>,
    mut replies: mpsc::Receiver<WsMessage>,
) {
    loop {
        let msg = tokio::select! {
            biased;
            Some(reply) = replies.recv() => reply,
            routed = outgoing.recv() => match routed {
                Some(r) => WsMessage::Text(crate::frame::Frame::from(r).data.into()),
                None => {
                    let close = match forwarding.await {
                        // The client left too much unread: 1008, policy.
                        Ok(super::backlog::Ended::Unread(why)) => {
                            CloseFrame { code: 1008, reason: format!("the client does not read: {why}").into() }
                        }
                        // The session ended on mcpod's side (shutdown, or the server gave up): say so.
                        _ => CloseFrame {
                            code: 1001,
                            reason: "the MCP session ended (mcpod is shutting down or the server stopped)".into(),
                        },
                    };
                    let _ = tokio::time::timeout(SEND_STALL, sink.send(WsMessage::Close(Some(close)))).await;
                    return;
                }
            },
        };
        let closing = matches!(msg, WsMessage::Close(_));
        match tokio::time::timeout(SEND_STALL, sink.send(msg)).await {
            Ok(Ok(())) if !closing => {}
            _ => return,
        }
    }
}
