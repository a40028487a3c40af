//! MCP over WebSocket at `/servers/{id}/ws` (subprotocol `mcp`): one
//! JSON-RPC message (or batch) per text frame, both ways.

use super::{FrontError, FrontState};
use crate::identity::Principal;
use crate::jsonrpc::{Message, code};
use axum::Extension;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

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
    ws.protocols(["mcp"]).max_message_size(st.max_message_bytes).on_upgrade(move |socket| serve(socket, client))
}

async fn serve(mut socket: WebSocket, mut client: crate::servers::ClientSession) {
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(_))) => {
                        let err = Message::error_response(None, code::INVALID_REQUEST, "MCP over WebSocket uses text frames");
                        let _ = socket.send(WsMessage::Text(err.to_text().into())).await;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        // An oversized message ends the connection (the socket
                        // cannot skip it); say which limit, as 1009 requires.
                        if e.to_string().contains("Message too long") {
                            let reason = "message exceeds limits.max_message_kib";
                            let close = axum::extract::ws::CloseFrame { code: 1009, reason: reason.into() };
                            let _ = socket.send(WsMessage::Close(Some(close))).await;
                        }
                        break;
                    }
                    None => break,
                };
                match Message::parse_batch(text.as_str()) {
                    Ok((msgs, _)) => msgs.into_iter().for_each(|m| client.send(m)),
                    Err(e) => {
                        let err = Message::error_response(None, e.code(), &e.client_message());
                        let _ = socket.send(WsMessage::Text(err.to_text().into())).await;
                    }
                }
            }
            delivery = client.recv() => {
                let Some(d) = delivery else {
                    // The session ended on mcpod's side (shutdown, or the server gave up): say so.
                    let close = axum::extract::ws::CloseFrame { code: 1001, reason: "the MCP session ended (mcpod is shutting down or the server stopped)".into() };
                    let _ = socket.send(WsMessage::Close(Some(close))).await;
                    break;
                };
                if socket.send(WsMessage::Text(d.msg.to_text().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    client.close();
}
