//! The stdio upstream: bytes to and from a server's stdin and stdout,
//! framed by the `stdio` protocol-adapter plugin; stderr into the logs.

use crate::jsonrpc::Message;
use crate::plugin::AdapterSession;
use crate::plugin::bindings::Frame;
use crate::runtime::{Reader, Writer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Writes every message from `rx` to the server's stdin, encoded by `adapter`.
/// Ends when `rx` closes or stdin fails.
pub async fn write_loop(
    server: String,
    mut rx: mpsc::UnboundedReceiver<Message>,
    mut stdin: Writer,
    mut adapter: AdapterSession,
) {
    while let Some(msg) = rx.recv().await {
        let mut batch = vec![msg];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut bytes = Vec::new();
        for msg in batch {
            let frame = Frame { event: None, id: None, data: msg.to_text() };
            match adapter.encode(&frame).await {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(e) => {
                    tracing::warn!(server = %server, error = %e, "dropped a message the adapter refused to encode")
                }
            }
        }
        if let Err(e) = async {
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        }
        .await
        {
            tracing::debug!(server = %server, error = %e, "server stdin closed");
            return;
        }
    }
}

/// Reads the server's stdout, decodes it with `adapter` and hands each
/// message to `deliver`. Returns when stdout ends.
pub async fn read_loop(server: String, mut stdout: Reader, mut adapter: AdapterSession, deliver: impl Fn(Message)) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match adapter.decode(&buf[..n]).await {
            Ok(frames) => handle(&server, frames, &deliver),
            Err(e) => tracing::warn!(server = %server, error = %e, "the stdio adapter failed on server output"),
        }
    }
    if let Ok(frames) = adapter.finish().await {
        handle(&server, frames, &deliver);
    }
}

fn handle(server: &str, frames: crate::plugin::kinds::adapter::Decoded, deliver: &impl Fn(Message)) {
    for frame in frames {
        match frame {
            Ok(f) => match Message::parse(&f.data) {
                Ok(msg) => deliver(msg),
                Err(e) => tracing::warn!(server = %server, error = %e, "ignored a server message that is not JSON-RPC"),
            },
            Err(e) => tracing::warn!(server = %server, error = %e.message, "ignored a malformed line on server stdout"),
        }
    }
}

/// The last lines a server wrote to stderr, for `mcpod servers logs`.
pub type LogBuffer = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>;

/// Lines kept per server.
const LOG_LINES: usize = 500;

/// Logs each stderr line of a server with its id, cut at 2 KiB, and keeps
/// the last ones in `buffer`.
pub async fn log_stderr(server: String, stderr: Reader, buffer: LogBuffer) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(2048).collect();
        tracing::info!(target: "mcpod::server", server = %server, "{line}");
        if let Ok(mut b) = buffer.lock() {
            if b.len() >= LOG_LINES {
                b.pop_front();
            }
            b.push_back(line);
        }
    }
}
