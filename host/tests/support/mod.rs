//! Shared helpers of the host's integration tests: fixture plugins built on
//! demand, configs, and small HTTP servers on 127.0.0.1.

#![allow(dead_code)]

#[path = "../../build/wasm.rs"]
mod wasm;

use mcpod::config::{Config, LimitsEntry, PluginEntry, PluginKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the workspace").to_path_buf()
}

/// The wasm target directory shared with the build script.
pub fn wasm_target() -> PathBuf {
    wasm::target_dir(&root(), Path::new(env!("CARGO_TARGET_TMPDIR")))
}

const FIXTURES: [&str; 3] = [
    "mcpod-test-misbehave-registry",
    "mcpod-test-misbehave-adapter",
    "mcpod-test-sneaky-adapter",
];

/// The component file of fixture `package` (from tests/plugins/), built once per test process.
pub fn fixture(package: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| wasm::build(&root(), &wasm_target(), &FIXTURES));
    if let Err(e) = built {
        panic!("building the fixture plugins failed: {e}");
    }
    wasm::artifact(&wasm_target(), package)
}

/// The component file of a built-in plugin crate (built by the host's build script).
pub fn builtin_artifact(package: &str) -> PathBuf {
    wasm::artifact(&wasm_target(), package)
}

/// A config with no built-ins, no compile cache and a small pool.
pub fn bare_config() -> Config {
    let mut config = Config::default();
    config.plugin_runtime.builtins = false;
    config.plugin_runtime.cache = false;
    config.plugin_runtime.max_instances = 64;
    config
}

/// A `[[plugins]]` entry loading `path` as `kind`.
pub fn file_entry(name: &str, kind: PluginKind, path: &Path) -> PluginEntry {
    PluginEntry {
        name: name.to_string(),
        kind,
        source: path.display().to_string(),
        allow_hosts: None,
        limits: LimitsEntry::default(),
        config: Default::default(),
        documents_dir: None,
    }
}

/// What a test HTTP server saw.
#[derive(Default)]
pub struct Seen {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Requests: path and whether If-None-Match was sent.
    pub requests: Mutex<Vec<(String, Option<String>)>>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that counts connections, answers
/// `/redirect?to=URL` with a 302, `/etag` with an ETag (304 when it
/// matches), `/hang` never, and anything else with `hello <path>`.
pub async fn http_server() -> (std::net::SocketAddr, Arc<Seen>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            s.connections.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                loop {
                    let Ok(n) = sock.read(&mut buf[len..]).await else { return };
                    if n == 0 {
                        return;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let inm = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("if-none-match:").map(|v| v.trim().to_string()));
                s.requests.lock().expect("lock").push((path.clone(), inm.clone()));
                let response = if path == "/hang" {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    return;
                } else if let Some(to) = path.strip_prefix("/redirect?to=") {
                    format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                } else if path == "/etag" && inm.as_deref() == Some("\"v1\"") {
                    "HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\nconnection: close\r\n\r\n".to_string()
                } else if path == "/etag" {
                    "HTTP/1.1 200 OK\r\netag: \"v1\"\r\ncontent-length: 7\r\nconnection: close\r\n\r\nversion".to_string()
                } else {
                    let body = format!("hello {path}");
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
                };
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}
