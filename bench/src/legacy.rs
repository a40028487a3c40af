//! Bench clients of mcpod's other front transports: the 2024-11-05 HTTP+SSE
//! transport (an event stream that names the endpoint to POST to, answers
//! on the stream) and WebSocket (one text message per JSON-RPC message).
//! Each is a handshake-era session: `initialize`, then calls.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as Ws;

/// How long one answer may take before the bench calls it an error.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "growth", "version": "1"}}})
}

fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

fn echo_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "ping"}}})
}

/// Errors unless `v` is the echo of `ping`.
fn check_echo(v: &Value) -> anyhow::Result<()> {
    anyhow::ensure!(v.pointer("/result/content/0/text") == Some(&json!("ping")), "bad echo: {v}");
    Ok(())
}

/// A legacy SSE session: its stream read by a task of its own, whose
/// messages arrive on `answers`.
pub struct SseSession {
    http: reqwest::Client,
    post_url: String,
    answers: tokio::sync::mpsc::Receiver<Value>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseSession {
    fn drop(&mut self) {
        // Ends the stream, which closes the session on mcpod's side.
        self.reader.abort();
    }
}

impl SseSession {
    /// Opens the stream at `base` + `/servers/{id}/sse` and initializes.
    pub async fn open(http: &reqwest::Client, base: &str, server: &str) -> anyhow::Result<SseSession> {
        let resp = http
            .get(format!("{base}/servers/{server}/sse"))
            .header("accept", "text/event-stream")
            .send()
            .await?
            .error_for_status()?;
        let mut bytes = resp.bytes_stream();
        let (tx, answers) = tokio::sync::mpsc::channel(64);
        let (endpoint_tx, endpoint) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let (mut buf, mut event, mut endpoint_tx) = (String::new(), String::new(), Some(endpoint_tx));
            while let Some(Ok(chunk)) = bytes.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find('\n') {
                    let line = buf[..end].trim_end_matches('\r').to_string();
                    buf.drain(..=end);
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_string();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        if event == "endpoint" {
                            if let Some(e) = endpoint_tx.take() {
                                let _ = e.send(data.trim().to_string());
                            }
                        } else if let Ok(v) = serde_json::from_str::<Value>(data.trim())
                            && tx.send(v).await.is_err()
                        {
                            return;
                        }
                    } else if line.is_empty() {
                        event.clear();
                    }
                }
            }
        });
        let path = tokio::time::timeout(ANSWER_WITHIN, endpoint).await??;
        let post_url = if path.starts_with("http") { path } else { format!("{base}{path}") };
        let mut s = SseSession { http: http.clone(), post_url, answers, reader };
        s.request(&initialize()).await?;
        s.send(&initialized()).await?;
        Ok(s)
    }

    async fn send(&self, msg: &Value) -> anyhow::Result<()> {
        self.http
            .post(&self.post_url)
            .header("content-type", "application/json")
            .body(msg.to_string())
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Sends `msg` and waits on the stream for the answer with its id.
    async fn request(&mut self, msg: &Value) -> anyhow::Result<Value> {
        self.send(msg).await?;
        loop {
            let v = tokio::time::timeout(ANSWER_WITHIN, self.answers.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the event stream ended"))?;
            if v.get("id") == msg.get("id") {
                return Ok(v);
            }
        }
    }

    /// One echo call.
    pub async fn echo(&mut self, id: u64) -> anyhow::Result<()> {
        check_echo(&self.request(&echo_call(id)).await?)
    }
}

/// A WebSocket session.
pub struct WsSession {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsSession {
    /// Connects to `ws_base` + `/servers/{id}/ws` and initializes.
    pub async fn open(ws_base: &str, server: &str) -> anyhow::Result<WsSession> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("{ws_base}/servers/{server}/ws").into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", "mcp".parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        let mut s = WsSession { socket };
        s.request(&initialize()).await?;
        s.socket.send(Ws::Text(initialized().to_string().into())).await?;
        Ok(s)
    }

    async fn request(&mut self, msg: &Value) -> anyhow::Result<Value> {
        self.socket.send(Ws::Text(msg.to_string().into())).await?;
        loop {
            let next = tokio::time::timeout(ANSWER_WITHIN, self.socket.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the socket closed"))??;
            if let Ws::Text(text) = next {
                let v: Value = serde_json::from_str(text.as_str())?;
                if v.get("id") == msg.get("id") {
                    return Ok(v);
                }
            }
        }
    }

    /// One echo call.
    pub async fn echo(&mut self, id: u64) -> anyhow::Result<()> {
        check_echo(&self.request(&echo_call(id)).await?)
    }
}
