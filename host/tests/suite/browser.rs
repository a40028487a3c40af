//! A real browser attacks mcpod, as a page the user visits would: Debian's
//! Chromium (headless) opens a page from another origin that tries the
//! cross-site requests a browser lets any page send — a no-cors text/plain
//! POST, a JSON POST (which needs a preflight), form POSTs (text/plain and
//! urlencoded, the classic JSON-through-a-form trick) — and a DNS-rebinding
//! page whose same-origin requests reach mcpod under the page's own name.
//! After each page, the API lists no server; mcpod's refusal counters show
//! the requests did reach it and which rule stopped them.
//!
//! The host runs without a token (`insecure_no_auth`): the browser guard
//! must hold on its own.

use crate::support::*;
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The attacker's page: every attack, each outcome posted back to `/report`.
fn attack_page(target: &str, server: &str) -> String {
    format!(
        r#"<!doctype html><html><body><iframe name="sink"></iframe><script>
const T = {target:?};
const START = JSON.stringify({{server_type: "npx", package: "@modelcontextprotocol/server-memory"}});
const results = {{}};
async function attempt(name, f) {{
  try {{ results[name] = await f(); }} catch (e) {{ results[name] = "blocked: " + e; }}
}}
function submitForm(enctype) {{
  return new Promise(resolve => {{
    const frame = document.querySelector("iframe");
    const timer = setTimeout(() => resolve("no load"), 5000);
    frame.onload = () => {{ clearTimeout(timer); resolve("submitted"); }};
    const form = document.createElement("form");
    form.method = "POST"; form.action = T + "/api/v1/servers"; form.enctype = enctype; form.target = "sink";
    const input = document.createElement("input");
    // text/plain forms send `name=value`: this pair is the JSON body {{…,"pad":"="}}.
    input.name = START.slice(0, -1) + ',"pad":"'; input.value = '"}}';
    form.appendChild(input); document.body.appendChild(form); form.submit();
  }});
}}
(async () => {{
  await attempt("no-cors text/plain POST", async () =>
    (await fetch(T + "/api/v1/servers", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body: START}})).type);
  await attempt("cors JSON POST", async () =>
    (await fetch(T + "/api/v1/servers", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: START}})).status);
  await attempt("no-cors POST to the MCP endpoint", async () =>
    (await fetch(T + "/servers/{server}/mcp", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
      body: JSON.stringify({{jsonrpc: "2.0", id: 1, method: "tools/call", params: {{name: "echo", arguments: {{}}}}}})}})).type);
  await attempt("text/plain form POST", () => submitForm("text/plain"));
  await attempt("urlencoded form POST", () => submitForm("application/x-www-form-urlencoded"));
  // The rebinding attack: the page's own name now resolves to mcpod, so
  // these are same-origin requests (no CORS at all) that reach it.
  await attempt("rebinding JSON POST", async () =>
    (await fetch("/api/v1/servers", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: START}})).status);
  await attempt("rebinding GET", async () => (await fetch("/api/v1/servers")).status);
  await fetch("/report", {{method: "POST", body: JSON.stringify({{origin: location.origin, results}})}});
}})();
</script></body></html>"#
    )
}

/// What the attacker's server saw: the reports of its pages.
#[derive(Clone)]
struct Attacker {
    reports: Arc<Mutex<Vec<serde_json::Value>>>,
    target: String,
    server: String,
    mcpod: std::net::SocketAddr,
}

/// The attacker's server: the page, `/report`, and for anything else the
/// "rebound" name: bytes relayed to mcpod as they came, `Host` included,
/// as if the page's name now resolved to mcpod's address.
async fn attacker(State(a): State<Attacker>, req: Request) -> Response {
    match req.uri().path() {
        "/attack" => Html(attack_page(&a.target, &a.server)).into_response(),
        "/favicon.ico" => axum::http::StatusCode::NOT_FOUND.into_response(),
        "/report" => {
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
            a.reports.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
            axum::http::StatusCode::NO_CONTENT.into_response()
        }
        // Only the attacker's own name is "rebound"; on loopback there is nothing to rebind.
        _ if req.headers().get("host").and_then(|h| h.to_str().ok()).is_some_and(|h| h.starts_with("evil.test:")) => {
            relay(a.mcpod, req).await
        }
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn relay(mcpod: std::net::SocketAddr, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let url = format!("http://{mcpod}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut out = reqwest::Client::new().request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        out = out.header(name, value);
    }
    match out.send().await {
        Ok(resp) => {
            let status = resp.status();
            (status, resp.bytes().await.unwrap_or_default()).into_response()
        }
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// mcpod's `mcpod_requests_refused_total` for `rule`.
async fn refused(host: &TestHost, rule: &str) -> u64 {
    let text = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    let series = format!("mcpod_requests_refused_total{{rule=\"{rule}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap_or(0))
}

/// Opens `url` in headless Chromium (with `evil.test` resolving to
/// 127.0.0.1) until the attacker has one more report, at most 60 s.
async fn visit(
    chromium: &std::path::Path,
    url: &str,
    reports: &Arc<Mutex<Vec<serde_json::Value>>>,
) -> serde_json::Value {
    let profile = tempfile::tempdir().unwrap();
    let before = reports.lock().unwrap().len();
    let mut browser = tokio::process::Command::new(chromium)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--host-resolver-rules=MAP evil.test 127.0.0.1")
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let report = loop {
        if let Some(r) = reports.lock().unwrap().get(before) {
            break r.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the page at {url} never reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = browser.kill().await;
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_in_a_real_browser_can_neither_start_nor_reach_anything() {
    let chromium = ensure_chromium();
    let host = start_host(|_| {}).await;
    let server = host.start_server(serde_json::json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let listed =
        || async { host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().text().await.unwrap() };
    let before = listed().await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let a = Attacker { reports: Arc::default(), target: host.base.clone(), server: server.clone(), mcpod: host.addr };
    let reports = a.reports.clone();
    let app = axum::Router::new().fallback(attacker).with_state(a);
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A foreign site (rebinding included): the Origin and Host rules stop it.
    let (origin0, host0) = (refused(&host, "origin").await, refused(&host, "host").await);
    let report = visit(&chromium, &format!("http://evil.test:{port}/attack"), &reports).await;
    let results = &report["results"];
    assert_eq!(report["origin"], format!("http://evil.test:{port}"), "{report}");
    assert_eq!(results.as_object().map(|o| o.len()), Some(7), "every attack ran: {report}");
    assert!(results["cors JSON POST"].as_str().unwrap_or("").starts_with("blocked"), "no preflight passes: {report}");
    assert_eq!(results["rebinding JSON POST"], 403, "{report}");
    assert_eq!(results["rebinding GET"], 403, "even a same-origin read: {report}");
    assert_eq!(listed().await, before, "nothing started by the foreign page");
    // no-cors POST ×2, the preflight, two forms; the rebinding POST and GET.
    assert!(refused(&host, "origin").await >= origin0 + 5, "the page's requests reached mcpod and met the Origin rule");
    assert!(refused(&host, "host").await >= host0 + 2, "the rebound requests met the Host rule");

    // A page from another port on loopback, whose Origin mcpod allows (an
    // MCP inspector is such a page): the content type and CORS rules stop it.
    let ct0 = refused(&host, "content_type").await;
    let report = visit(&chromium, &format!("http://127.0.0.1:{port}/attack"), &reports).await;
    let results = &report["results"];
    assert_eq!(results.as_object().map(|o| o.len()), Some(7), "every attack ran: {report}");
    assert!(results["cors JSON POST"].as_str().unwrap_or("").starts_with("blocked"), "no CORS by default: {report}");
    assert_eq!(listed().await, before, "nothing started by the loopback page");
    // no-cors POST ×2, two forms.
    assert!(refused(&host, "content_type").await >= ct0 + 4, "the page's requests met the content-type rule");

    // The control: mcpod still serves its own clients.
    let s = McpSession::open(&format!("{}/servers/{server}/mcp", host.base)).await;
    assert_eq!(tool_text(&s.call(1, "echo", serde_json::json!({"message": "still here"})).await), "still here");
}
