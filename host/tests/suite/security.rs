//! The browser guard and the admin token, tried as a hostile page or a
//! stranger would, at the HTTP level: every route × {foreign Host, foreign
//! Origin, text/plain, form content types}, CORS only for configured
//! origins, and the token on every route but probes and metrics. The same
//! attacks from a real browser are in `browser.rs`.

use crate::support::*;
use serde_json::{Value, json};

/// What one request got: status, content type, body as JSON (or the text).
async fn send(host: &TestHost, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, Value) {
    let mut req = host.http.request(method.parse().unwrap(), format!("{}{path}", host.base)).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = resp.text().await.unwrap();
    (status, ct, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The message of an API error or a JSON-RPC error, whichever `body` is.
fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("a JSON error with a message: {body}")).to_string()
}

/// Every route of the host, with a real server id and instance handle in it.
fn routes(id: &str, handle: &str) -> Vec<(&'static str, String)> {
    let mut r: Vec<(&'static str, String)> = vec![
        ("GET", "/healthz".into()),
        ("GET", "/readyz".into()),
        ("GET", "/metrics".into()),
        ("GET", "/api/v1/servers".into()),
        ("POST", "/api/v1/servers".into()),
        ("GET", format!("/api/v1/servers/{id}")),
        ("DELETE", format!("/api/v1/servers/{id}")),
        ("GET", format!("/api/v1/servers/{id}/logs")),
        ("GET", format!("/api/v1/servers/{id}/health")),
        ("POST", format!("/api/v1/servers/{id}/instances")),
        ("DELETE", format!("/api/v1/servers/{id}/instances/{handle}")),
        ("GET", "/api/v1/templates".into()),
        ("GET", "/api/v1/templates/time".into()),
        ("GET", "/api/v1/packages/search?registry=npm&query=x".into()),
        ("GET", "/api/v1/packages/info?registry=npm&name=x".into()),
        ("GET", "/api/v1/plugins".into()),
        ("POST", format!("/servers/{id}/mcp")),
        ("GET", format!("/servers/{id}/mcp")),
        ("DELETE", format!("/servers/{id}/mcp")),
        ("POST", format!("/servers/{id}/instances/{handle}/mcp")),
        ("GET", format!("/servers/{id}/sse")),
        ("POST", format!("/servers/{id}/messages?sessionId=x")),
        ("GET", format!("/servers/{id}/ws")),
        ("GET", "/no/such/route".into()),
    ];
    r.sort();
    r
}

const START: &str = r#"{"server_type":"fixture-command","sharing":"shared"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_a_foreign_host_a_foreign_origin_and_a_post_that_is_not_json() {
    // No token: the guard alone must hold (the worst case an operator can choose).
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let opened =
        send(&host, "POST", &format!("/api/v1/servers/{id}/instances"), &[("content-type", "application/json")], "")
            .await;
    assert_eq!(opened.0, 201, "{:?}", opened.2);
    let handle = opened.2["instance"].as_str().unwrap_or_else(|| panic!("{}", opened.2)).to_string();
    // What the servers use changes by itself; everything else must not.
    let servers = async || {
        let mut list = send(&host, "GET", "/api/v1/servers", &[], "").await.2;
        for s in list.as_array_mut().into_iter().flatten() {
            if let Some(o) = s.as_object_mut() {
                o.remove("usage");
            }
        }
        list
    };
    let before = servers().await;
    let port = host.addr.port().to_string();
    let evil_host = format!("evil.example:{port}");

    for (method, path) in routes(&id, &handle) {
        let what = format!("{method} {path}");
        let mcp = path.starts_with("/servers/");
        let json_ct = ("content-type", "application/json");
        // A rebinding page: its own name as Host, and as Origin.
        for headers in [vec![("host", evil_host.as_str()), json_ct], vec![("host", "evil.example"), json_ct]] {
            let (status, ct, body) = send(&host, method, &path, &headers, START).await;
            assert_eq!(status, 403, "{what} with {headers:?}: {body}");
            assert!(ct.starts_with("application/json"), "{what}: a JSON error, got {ct}");
            assert!(message(&body).contains("server.allowed_hosts"), "{what}: names the setting: {body}");
            if mcp {
                assert_eq!(body["jsonrpc"], "2.0", "{what}: the MCP front answers JSON-RPC: {body}");
            } else {
                assert_eq!(body["error"]["code"], "forbidden_host", "{what}: {body}");
            }
        }
        for origin in ["http://evil.example", "null", "https://127.0.0.1.evil.example"] {
            let (status, _, body) = send(&host, method, &path, &[("origin", origin), json_ct], START).await;
            assert_eq!(status, 403, "{what} from {origin}: {body}");
            assert!(message(&body).contains("server.allowed_origins"), "{what}: names the setting: {body}");
        }
        if method == "POST" {
            for ct in [
                "text/plain",
                "text/plain;charset=UTF-8",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/jsonp",
            ] {
                let (status, rct, body) = send(&host, method, &path, &[("content-type", ct)], START).await;
                assert_eq!(status, 415, "{what} as {ct}: {body}");
                assert!(rct.starts_with("application/json"), "{what}: a JSON error, got {rct}");
                assert!(message(&body).contains("application/json"), "{what}: says what to send: {body}");
            }
            let (status, _, body) = send(&host, method, &path, &[], START).await;
            assert_eq!(status, 415, "{what} without a content type: {body}");
        }
    }

    // Nothing any of them asked for happened: the one server and its handle are as they were.
    let after = servers().await;
    assert_eq!(after, before, "no server started or stopped");
    assert_eq!(after.as_array().map(Vec::len), Some(1), "{after}");
    let closed = send(&host, "DELETE", &format!("/api/v1/servers/{id}/instances/{handle}"), &[], "").await;
    assert_eq!(closed.0, 204, "the handle is still open: {:?}", closed.2);

    // The control: the same host takes the same requests from its own side.
    let (status, _, body) =
        send(&host, "POST", "/api/v1/servers", &[("content-type", "application/json")], START).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = send(&host, "GET", "/healthz", &[("origin", "http://localhost:6274")], "").await;
    assert_eq!(status, 200, "a loopback browser origin is allowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issues_curl_requests_start_nothing() {
    // From the report: `curl -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' -d … /api/v1/servers`,
    // and the same POST through a rebinding `Host`.
    let host = start_host(|_| {}).await;
    let body = r#"{"server_type":"npx","package":"@modelcontextprotocol/server-memory"}"#;
    let port = host.addr.port().to_string();
    let evil_host = format!("evil.example:{port}");
    let attempts: [&[(&str, &str)]; 4] = [
        &[("origin", "http://evil.example"), ("content-type", "text/plain")],
        &[("content-type", "text/plain")],
        &[("host", &evil_host), ("content-type", "application/json")],
        &[("host", &evil_host), ("content-type", "text/plain")],
    ];
    for headers in attempts {
        let (status, _, answer) = send(&host, "POST", "/api/v1/servers", headers, body).await;
        assert!(status == 403 || status == 415, "{headers:?}: {status} {answer}");
    }
    let listed = send(&host, "GET", "/api/v1/servers", &[], "").await.2;
    assert_eq!(listed, json!([]), "nothing started");
    let (status, _, metrics) = send(&host, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for rule in ["origin", "content_type", "host"] {
        assert!(metrics.contains(&format!("mcpod_requests_refused_total{{rule=\"{rule}\"}}")), "{rule}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_cors_by_default_and_cors_for_configured_origins_only() {
    let preflight = |origin: &'static str| {
        move |host: &TestHost| {
            host.http
                .request(reqwest::Method::OPTIONS, format!("{}/api/v1/servers", host.base))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type, authorization")
                .send()
        }
    };
    let plain = start_host(|_| {}).await;
    let resp = preflight("http://localhost:5173")(&plain).await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none(), "no preflight answered: {resp:?}");
    let resp =
        plain.http.get(format!("{}/api/v1/servers", plain.base)).header("origin", "http://localhost:5173").send();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none(), "no CORS header by default");

    let host = start_host(|c| c.server.allowed_origins = vec!["https://app.example".into()]).await;
    let resp = preflight("https://app.example")(&host).await.unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
    let allowed = resp.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("mcp-session-id") && allowed.contains("authorization"), "{allowed}");
    let resp = preflight("http://localhost:5173")(&host).await.unwrap();
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "an origin that is not configured gets no CORS answer: {resp:?}"
    );
    let resp = preflight("https://evil.example")(&host).await.unwrap();
    assert_eq!(resp.status(), 403, "a foreign origin's preflight is refused outright");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = host
        .http
        .post(format!("{}/api/v1/servers", host.base))
        .header("origin", "https://app.example")
        .header("content-type", "application/json")
        .body(START)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "the configured origin uses the API");
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
}

/// A host whose admin token is `secret-admin-token` (its file in the
/// directory returned), with one server started: the server's id.
async fn host_with_admin_token() -> (tempfile::TempDir, TestHost, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "secret-admin-token\n").unwrap();
    let host = start_host(|c| c.server.api_token_file = Some(file.clone())).await;
    let headers = [("authorization", "Bearer secret-admin-token"), ("content-type", "application/json")];
    let (status, _, body) = send(&host, "POST", "/api/v1/servers", &headers, START).await;
    assert_eq!(status, 201, "{body}");
    let id = body["server_id"].as_str().unwrap().to_string();
    (dir, host, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_every_route_but_probes_and_metrics_wants_it_and_the_guard_still_comes_first() {
    let (_dir, host, id) = host_with_admin_token().await;
    let auth = ("authorization", "Bearer secret-admin-token");
    let json_ct = ("content-type", "application/json");
    for (method, path) in routes(&id, "0123456789abcdef0123456789abcdef") {
        let open = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
        let (status, _, body) = send(&host, method, &path, &[json_ct], "{}").await;
        if open {
            assert_eq!(status, 200, "{method} {path} needs no token: {body}");
        } else {
            assert_eq!(status, 401, "{method} {path} without the token: {body}");
        }
        for wrong in ["Bearer wrong", "Basic c2VjcmV0LWFkbWluLXRva2Vu", "secret-admin-token"] {
            let (status, _, _) = send(&host, method, &path, &[json_ct, ("authorization", wrong)], "{}").await;
            assert!(open || status == 401, "{method} {path} with {wrong:?}: {status}");
        }
        let (status, _, _) =
            send(&host, method, &path, &[auth, json_ct, ("origin", "http://evil.example")], "{}").await;
        assert_eq!(status, 403, "{method} {path}: a stolen token in a foreign page is still refused");
    }
    let (status, _, body) =
        send(&host, "GET", "/api/v1/servers", &[("authorization", "bearer secret-admin-token")], "").await;
    assert_eq!(status, 200, "the scheme is case-insensitive: {body}");
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");
}

/// One raw HTTP/1.1 GET of `path` exactly as written (a client library
/// would resolve its `..` segments): the status and the whole answer.
async fn raw_get(host: &TestHost, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no answer in 10 s"))
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("GET {path}: {text}"));
    (status, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_only_look_like_the_open_ones_reach_nothing_without_the_token() {
    let (_dir, host, id) = host_with_admin_token().await;
    // The open paths pass without a token, and so does the metadata a 401 points to.
    for open in ["/healthz", "/readyz", "/metrics", "/healthz?then=/api/v1/servers"] {
        assert_eq!(raw_get(&host, open).await.0, 200, "GET {open} needs no token");
    }
    let lookalikes = [
        "/healthz/",
        "/healthz/../api/v1/servers",
        "/metrics/../api/v1/servers",
        "/%68ealthz",
        "//healthz",
        "/HEALTHZ",
        "/api/v1/servers/../../healthz",
        "/.well-known/oauth-protected-resource/../../api/v1/servers",
        "/.well-known/oauth-protected-resourcex/api/v1/servers",
    ];
    for path in lookalikes {
        let (status, text) = raw_get(&host, path).await;
        assert!(!text.contains(&id), "GET {path} without a token showed the server: {text}");
        // Either refused for want of a token, or (the metadata's own
        // wildcard route) a 404 from the metadata handler: never a route's answer.
        assert!(
            status == 401 || (status == 404 && path.starts_with("/.well-known/oauth-protected-resource/")),
            "GET {path} without a token: {text}"
        );
    }
}

/// Runs `mcpod tokens ARGS` on the token file `file`; its stdout, trimmed.
fn tokens_cli(file: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .arg("tokens")
        .args(args)
        .env("MCPOD_TOKENS_FILE", file)
        .output()
        .unwrap();
    assert!(out.status.success(), "mcpod tokens {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The status of a request, without waiting for its body (a stream may never end).
async fn status_of(host: &TestHost, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut req = host.http.request(method.parse().unwrap(), format!("{}{path}", host.base)).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}")).status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_token_uses_servers_but_never_runs_code_and_an_admin_token_does_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_file, tokens) = (dir.path().join("token"), dir.path().join("tokens.toml"));
    std::fs::write(&admin_file, "secret-admin-token\n").unwrap();
    let alice = tokens_cli(&tokens, &["create", "alice", "--role", "user"]);
    let ops = tokens_cli(&tokens, &["create", "ops", "--role", "admin"]);
    assert!(alice.starts_with("mcpod_") && alice.len() > 40, "{alice}");
    let kept = std::fs::read_to_string(&tokens).unwrap();
    assert!(!kept.contains(&alice) && !kept.contains(&ops), "only hashes are kept: {kept}");
    let listed = tokens_cli(&tokens, &["list"]);
    assert!(listed.contains("alice") && listed.contains("user") && listed.contains("ops"), "{listed}");
    assert!(!listed.contains(&alice), "{listed}");

    let host = start_host(|c| {
        c.server.api_token_file = Some(admin_file.clone());
        c.auth.tokens_file = Some(tokens.clone());
    })
    .await;
    let json_ct = ("content-type", "application/json");
    let (user, admin) = (format!("Bearer {alice}"), format!("Bearer {ops}"));
    let user = ("authorization", user.as_str());
    let admin = ("authorization", admin.as_str());

    // Running code is for admins: a user cannot start a server from a config.
    let (status, _, body) = send(&host, "POST", "/api/v1/servers", &[user, json_ct], START).await;
    assert_eq!(status, 403, "{body}");
    let why = message(&body);
    assert!(why.contains("admin role") && why.contains("`alice`") && why.contains("user role"), "{why}");
    let (status, _, body) = send(&host, "POST", "/api/v1/servers", &[admin, json_ct], START).await;
    assert_eq!(status, 201, "a named admin token starts servers: {body}");
    let id = body["server_id"].as_str().unwrap().to_string();

    let admin_only = [
        ("POST", "/api/v1/servers".to_string()),
        ("DELETE", format!("/api/v1/servers/{id}")),
        ("GET", format!("/api/v1/servers/{id}/logs")),
        ("GET", "/api/v1/plugins".to_string()),
    ];
    for (method, path) in routes(&id, "0123456789abcdef0123456789abcdef") {
        let status = status_of(&host, method, &path, &[user, json_ct], "{}").await;
        if admin_only.iter().any(|(m, p)| *m == method && *p == path) {
            assert_eq!(status, 403, "{method} {path} is for admins only");
        } else {
            assert!(status != 401 && status != 403, "{method} {path} is open to users: {status}");
        }
    }
    let (status, _, body) = send(&host, "GET", &format!("/api/v1/servers/{id}"), &[user], "").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "the user's DELETE stopped nothing: {body}");

    // A user speaks MCP to the server.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let accept = ("accept", "application/json, text/event-stream");
    let status = status_of(&host, "POST", &format!("/servers/{id}/mcp"), &[user, json_ct, accept], init).await;
    assert_eq!(status, 200);

    // A token in the URL is refused, even a good one beside a good header.
    for headers in [&[][..], &[user][..]] {
        let path = format!("/api/v1/servers?access_token={ops}");
        let (status, _, body) = send(&host, "GET", &path, headers, "").await;
        assert_eq!(status, 401, "{body}");
        assert!(message(&body).contains("in the URL"), "{body}");
    }

    // Revoked: refused within a few seconds, with no restart.
    tokens_cli(&tokens, &["revoke", "alice"]);
    let mut status = 200;
    for _ in 0..100 {
        status = status_of(&host, "GET", "/api/v1/servers", &[user], "").await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "a revoked token is refused");
    let (status, _, _) = send(&host, "GET", "/api/v1/servers", &[admin], "").await;
    assert_eq!(status, 200, "the other tokens stay");
    let (status, _, _) =
        send(&host, "GET", "/api/v1/plugins", &[("authorization", "Bearer secret-admin-token")], "").await;
    assert_eq!(status, 200, "MCPOD_API_TOKEN's file stays the admin token");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_of_a_session_has_exactly_its_calls_and_starts_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_file, tokens, log) =
        (dir.path().join("token"), dir.path().join("tokens.toml"), dir.path().join("audit/audit.log"));
    std::fs::write(&admin_file, "secret-admin-token\n").unwrap();
    let alice = tokens_cli(&tokens, &["create", "alice", "--role", "user"]);
    let ops = tokens_cli(&tokens, &["create", "ops", "--role", "admin"]);
    let host = start_host(|c| {
        c.server.api_token_file = Some(admin_file.clone());
        c.auth.tokens_file = Some(tokens.clone());
        c.audit.sink = mcpod::config::AuditSink::File;
        c.audit.file = Some(log.clone());
    })
    .await;
    let ops_auth = format!("Bearer {ops}");
    let headers = [("authorization", ops_auth.as_str()), ("content-type", "application/json")];
    let start = r#"{"server_type":"fixture-command","sharing":"shared","env":{"API_KEY":"s3cret-env-value"}}"#;
    let (status, _, body) = send(&host, "POST", "/api/v1/servers", &headers, start).await;
    assert_eq!(status, 201, "{body}");
    let id = body["server_id"].as_str().unwrap().to_string();

    let session = McpSession::open_as(&format!("{}/servers/{id}/mcp", host.base), &alice).await;
    let (status, _, _) = session.post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(status, 200, "a listing is not audited");
    let answer = session.call(2, "echo", json!({"message": "arg-secret-value"})).await;
    assert_eq!(tool_text(&answer), "arg-secret-value");
    let (status, _, body) = send(&host, "DELETE", &format!("/api/v1/servers/{id}"), &headers, "").await;
    assert_eq!(status, 200, "{body}");

    // One thread writes the log: wait (bounded) for the three records.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let records: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let summary: Vec<(String, String, String, String)> = records
        .iter()
        .map(|r| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (s(&r["event"]), s(&r["principal"]["name"]), s(&r["name"]), s(&r["outcome"]))
        })
        .collect();
    let row = |e: &str, p: &str, n: &str| (e.to_string(), p.to_string(), n.to_string(), "ok".to_string());
    assert_eq!(
        summary,
        [row("server_start", "ops", ""), row("call", "alice", "echo"), row("server_stop", "ops", "")],
        "{text}"
    );
    let call = &records[1];
    assert_eq!((call["server"].as_str(), call["method"].as_str()), (Some(id.as_str()), Some("tools/call")));
    assert_eq!(call["request_id"], "2");
    assert_eq!(call["principal"]["issuer"], "static");
    assert_eq!(call["args_sha256"].as_str().map(str::len), Some(64));
    assert!(call["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{call}");
    for secret in ["s3cret-env-value", "arg-secret-value", alice.as_str(), ops.as_str()] {
        assert!(!text.contains(secret), "the audit log holds {secret:?}: {text}");
    }
    let (_, _, metrics) = send(&host, "GET", "/metrics", &[], "").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(metrics.contains(r#"mcpod_audit_events_total{principal="alice",outcome="ok"} 1"#), "{metrics}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["audit", "tail", "-n", "2", "--file"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tail = String::from_utf8(out.stdout).unwrap();
    assert_eq!(tail.lines().collect::<Vec<_>>(), text.lines().skip(1).collect::<Vec<_>>());
}

/// Issue #19: policy judges the launch as it will run. Every route that
/// would carry a blocked package, image or operator variable past the
/// request's own fields is tried, and each is refused naming its rule.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_package_image_or_operator_variable_cannot_ride_in_on_another_field() {
    let host = start_host(|c| {
        c.policy.packages_block = vec!["mcp-server-git".into()];
        c.policy.allow_custom_images = true;
        c.policy.images_block = vec!["evil.example/*".into()];
        c.policy.env_allow = vec!["*_API_KEY".into()];
    })
    .await;
    let refused: [(Value, &[&str]); 12] = [
        (json!({"server_type": "uv", "package": "mcp-server-git"}), &["mcp-server-git", "packages_block"]),
        // The issue's route: the uv plugin adds `--with`.
        (
            json!({"server_type": "uv", "package": "mcp-server-time", "options": {"with": "mcp-server-git"}}),
            &["mcp-server-git", "--with", "packages_block"],
        ),
        // Another spelling of the same PyPI project.
        (
            json!({"server_type": "uv", "package": "mcp-server-time", "options": {"with": "MCP_Server.Git"}}),
            &["mcp-server-git", "packages_block"],
        ),
        (json!({"server_type": "image", "image": "evil.example/x:1"}), &["evil.example/x:1", "images_block"]),
        // An image whose command installs the blocked package itself.
        (
            json!({"server_type": "image", "image": "node:22", "args": ["npx", "-y", "mcp-server-git"]}),
            &["mcp-server-git", "packages_block"],
        ),
        (
            json!({"server_type": "image", "image": "node:22", "args": ["sh", "-c", "npx -y mcp-server-git"]}),
            &["shell command"],
        ),
        (
            json!({"server_type": "image", "image": "node:22", "args": ["npx", "--registry=http://127.0.0.1:1/", "-y", "x"]}),
            &["--registry", "operator"],
        ),
        // The issue's `.npmrc` route, and variables that move package sources.
        (json!({"template": "everything", "env": {"HOME": "/tmp/theirs"}}), &["HOME", "operator"]),
        (
            json!({"server_type": "fixture-command", "env": {"npm_config_registry": "http://x/"}}),
            &["npm_config_registry"],
        ),
        (json!({"server_type": "fixture-command", "env": {"UV_INDEX_URL": "http://x/"}}), &["UV_INDEX_URL"]),
        (
            json!({"server_type": "fixture-command", "env": {"PIP_EXTRA_INDEX_URL": "http://x/"}}),
            &["PIP_EXTRA_INDEX_URL"],
        ),
        // Not reserved, but not allowed either: an allow-list, not a deny-list.
        (
            json!({"server_type": "fixture-command", "env": {"SOMETHING_ELSE": "1"}}),
            &["SOMETHING_ELSE", "policy.env_allow"],
        ),
    ];
    for (start, words) in refused {
        let resp = host.post_server(start.clone()).await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 403, "{start}: {body}");
        assert_eq!(body["error"]["code"], "forbidden_by_policy", "{start}: {body}");
        let why = message(&body);
        assert!(words.iter().all(|w| why.contains(w)), "{start}: {why} should name {words:?}");
    }
    let listed: Value =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([]), "nothing started");
    // What the allow-list names still starts.
    host.start_server(json!({"server_type": "fixture-command", "env": {"SERVICE_API_KEY": "k"}})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_only_refuses_an_image_named_by_tag_and_runs_one_named_by_digest_past_policy() {
    let host = start_host(|c| {
        c.policy.allow_custom_images = true;
        c.policy.digest_only = true;
    })
    .await;
    let resp = host.post_server(json!({"server_type": "image", "image": "node:22"})).await;
    assert_eq!(resp.status().as_u16(), 403);
    let why = message(&resp.json().await.unwrap());
    assert!(why.contains("node:22") && why.contains("digest_only"), "{why}");
    // Pinned by digest, policy lets it through; the local runtime then
    // says it cannot run images (a 400 from the runtime, not policy).
    let digest = format!("node@sha256:{}", "a".repeat(64));
    let resp = host.post_server(json!({"server_type": "image", "image": digest})).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_ne!(body["error"]["code"], "forbidden_by_policy", "{body}");
    assert_eq!(status, 400, "{body}");
}
