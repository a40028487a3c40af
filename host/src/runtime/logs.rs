//! A server's stderr: each line logged with the server's id, and the last
//! ones kept for `mcpod servers logs`. Every runtime feeds it.

use super::Reader;
use tokio::io::{AsyncBufReadExt, BufReader};

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
