//! MCP over WebSocket at `/servers/{id}/ws` (subprotocol `mcp`): one
//! JSON-RPC message per text frame, both ways, framed by the `websocket`
//! protocol-adapter plugin.

use super::{FrontState, manager_error, rpc_error};
use crate::jsonrpc::{Message, code};
use crate::plugin::bindings::Frame;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// `GET /servers/{id}/ws`.
pub async fn upgrade(
    State(st): State<FrontState>,
    Path(server_id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(why) = st.guard.check(&headers) {
        return rpc_error(StatusCode::FORBIDDEN, code::INVALID_REQUEST, &format!("Forbidden: {why}"));
    }
    let client = match st.manager.open_session(&server_id).await {
        Ok(c) => c,
        Err(e) => return manager_error(&e),
    };
    let codec = match st.adapter("websocket").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    ws.protocols(["mcp"]).max_message_size(st.max_message_bytes).on_upgrade(move |socket| serve(socket, client, codec))
}

async fn serve(
    mut socket: WebSocket,
    mut client: crate::servers::ClientSession,
    mut codec: crate::plugin::AdapterSession,
) {
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
                match codec.decode(text.as_bytes()).await {
                    Ok(frames) => {
                        for frame in frames {
                            match frame.map_err(|e| e.message).and_then(|f| Message::parse(&f.data).map_err(|e| e.to_string())) {
                                Ok(msg) => client.send(msg),
                                Err(why) => {
                                    let err = Message::error_response(None, code::PARSE_ERROR, &format!("Parse error: {why}"));
                                    let _ = socket.send(WsMessage::Text(err.to_text().into())).await;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "websocket adapter failed"),
                }
            }
            delivery = client.rx.recv() => {
                let Some(d) = delivery else { break };
                let frame = Frame { event: None, id: None, data: d.msg.to_text() };
                match codec.encode(&frame).await {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).to_string();
                        if socket.send(WsMessage::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "websocket adapter refused a message"),
                }
            }
        }
    }
    client.close();
}
