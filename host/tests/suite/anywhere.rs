//! Any server, anywhere: the `command` server type (a developer's own
//! server, run as it is) and the `remote` server type (a server that runs
//! elsewhere, fronted with its headers), each with the policy that bounds
//! it and the attempts to get past it.

use crate::support::*;
use serde_json::{Value, json};
use std::sync::Arc;

/// A developer's own server, written with the official Python SDK: it
/// tells where it runs, so that the test sees the working directory.
const SDK_SERVER: &str = r#"
import os
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("own-server")

@mcp.tool()
def where() -> str:
    """The server's working directory."""
    return os.getcwd()

mcp.run()
"#;

/// The body and status of `POST /api/v1/servers` with `body`.
async fn start(host: &TestHost, body: Value) -> (u16, Value) {
    let resp = host.post_server(body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("an error with a message: {body}")).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_developers_own_sdk_server_runs_as_a_command_in_its_own_directory() {
    ensure_clients();
    let python = clients_dir().join(".venv/bin/python").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), SDK_SERVER).unwrap();
    let cwd = dir.path().canonicalize().unwrap().display().to_string();
    let host = start_host(|c| c.policy.allow_commands = true).await;

    // `server.py` is relative: found only if the command runs in `cwd`.
    let id = host.start_server(json!({"server_type": "command", "command": [python, "server.py"], "cwd": cwd})).await;
    assert!(id.starts_with("command-"), "{id}");
    let session = McpSession::open_any(&format!("{}/servers/{id}/mcp", host.base)).await;
    let answer = session.call(1, "where", json!({})).await;
    assert_eq!(tool_text(&answer), cwd, "{answer}");

    // What is wrong with a command is said by field, before anything runs.
    for (body, says) in [
        (json!({"server_type": "command", "command": ["./server.py"], "cwd": cwd}), "relative path"),
        (json!({"server_type": "command"}), "needs a `command`"),
        (json!({"server_type": "command", "command": [python], "cwd": "tmp"}), "must be an absolute path"),
        (json!({"server_type": "npx", "package": "x", "command": ["node"]}), "`command` is for server type `command`"),
        (json!({"template": "time", "command": ["node"]}), "not both"),
    ] {
        let (status, body) = start(&host, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(message(&body).contains(says), "{says}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_runs_only_when_the_operator_allows_it_and_only_for_an_admin() {
    let fixture = fixture_server().display().to_string();
    let off = start_host(|_| {}).await;
    let (status, body) = start(&off, json!({"server_type": "command", "command": [fixture]})).await;
    assert_eq!(status, 403, "commands are off by default: {body}");
    assert!(message(&body).contains("policy.allow_commands = false"), "{body}");

    let on = start_host(|c| c.policy.allow_commands = true).await;
    let req: mcpod::servers::StartRequest =
        serde_json::from_value(json!({"server_type": "command", "command": [fixture]})).unwrap();
    // A user never runs one, even where the API would let a request through
    // (a template whose type is `command`): the manager itself refuses.
    let alice = Arc::new(mcpod::identity::Principal::new("alice", "static", mcpod::identity::Role::User));
    let err = on.app_manager.start_by(req.clone(), alice).await.unwrap_err();
    assert_eq!(err.http_status().as_u16(), 403);
    assert!(err.to_string().contains("only an admin"), "{err}");
    let ops = Arc::new(mcpod::identity::Principal::new("ops", "static", mcpod::identity::Role::Admin));
    let status = on.app_manager.start_by(req, ops).await.unwrap();
    assert_eq!(status.status, "ready");
    let session = McpSession::open(&format!("{}/servers/{}/mcp", on.base, status.server_id)).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({"message": "mine"})).await), "mine");

    // An image is a custom image: the operator's switch for those applies too.
    let (status, body) =
        start(&on, json!({"server_type": "command", "command": [fixture], "image": "ghcr.io/acme/server:1"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("policy.allow_custom_images = false"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_without_an_image_never_runs_on_kubernetes() {
    let (_emulator, _dir, kubeconfig, _ns) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| c.policy.allow_commands = true).await;
    let (status, body) = start(&host, json!({"server_type": "command", "command": ["/srv/server"]})).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("kubernetes"), "{body}");
}

/// A host that requires `token` and serves the fixture server; its endpoint.
async fn upstream_host(token_dir: &std::path::Path, token: &str) -> (TestHost, String) {
    let file = token_dir.join("upstream-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let host = start_host(|c| {
        c.server.insecure_no_auth = false;
        c.server.api_token_file = Some(file);
    })
    .await;
    let id = host.start_server_as(json!({"server_type": "fixture-command", "sharing": "shared"}), token).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    (host, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_server_is_served_with_its_secret_headers_which_nobody_sees() {
    let dir = tempfile::tempdir().unwrap();
    let token = "upstream-secret-8c1f2b";
    let (_upstream, url) = upstream_host(dir.path(), token).await;
    let unauthenticated =
        reqwest::Client::new().post(&url).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401, "the upstream needs its token");

    let host = start_host(|c| c.policy.allow_remote_hosts = vec!["127.0.0.1:*".into()]).await;
    let id = host
        .start_server(
            json!({"server_type": "remote", "url": url, "headers": {"Authorization": format!("Bearer {token}")}}),
        )
        .await;
    assert!(id.starts_with("remote-"), "{id}");
    let session = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({"message": "through two hosts"})).await), "through two hosts");

    // The header is a secret: not in the status, the list or the logs.
    for path in [format!("/api/v1/servers/{id}"), "/api/v1/servers".to_string(), format!("/api/v1/servers/{id}/logs")] {
        let text = host.http.get(format!("{}{path}", host.base)).send().await.unwrap().text().await.unwrap();
        assert!(!text.contains(token), "{path} shows the header: {text}");
    }
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["server_type"], "remote", "{status}");
}

/// A server that runs elsewhere launches nothing on this machine, so
/// memory-aware admission and the launch slots never refuse it: with the
/// machine "short of memory" (a limit above any machine's) a local start
/// gets its 429, while a remote server starts and each of its per-session
/// connections opens.
#[tokio::test(flavor = "multi_thread")]
async fn a_remote_server_is_never_refused_for_memory_or_launch_slots_it_does_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let token = "upstream-secret-2d7e90";
    let (_upstream, url) = upstream_host(dir.path(), token).await;
    let host = start_host(|c| {
        c.policy.allow_remote_hosts = vec!["127.0.0.1:*".into()];
        c.limits.min_available_memory_mib = 1 << 40;
    })
    .await;
    let (status, body) = start(&host, json!({"server_type": "fixture-command"})).await;
    assert_eq!(status, 429, "a local start is refused: {body}");
    assert!(message(&body).contains("limits.min_available_memory_mib"), "{body}");
    let remote = json!({"server_type": "remote", "url": url, "sharing": "per-session",
        "headers": {"Authorization": format!("Bearer {token}")}});
    let id = host.start_server(remote).await;
    for n in 0..3 {
        let session = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
        let said = format!("session {n}");
        assert_eq!(tool_text(&session.call(1, "echo", json!({"message": said})).await), said);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_url_reaches_only_what_the_operator_allows_and_never_follows_a_redirect_elsewhere() {
    let fixture_like = "http://127.0.0.1:9/mcp";
    let closed = start_host(|_| {}).await;
    let (status, body) = start(&closed, json!({"server_type": "remote", "url": fixture_like})).await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("policy.allow_remote_hosts is empty"), "{body}");

    let (front, front_seen) = http_server().await;
    let (elsewhere, elsewhere_seen) = http_server().await;
    let host = start_host(|c| {
        c.policy.allow_remote_hosts = vec![format!("127.0.0.1:{}", front.port())];
        c.limits.max_restarts = 1;
    })
    .await;
    for url in [
        format!("http://localhost:{}/mcp", front.port()),
        format!("http://127.0.0.1:{}/mcp", elsewhere.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let (status, body) = start(&host, json!({"server_type": "remote", "url": url})).await;
        assert_eq!(status, 403, "{url}: {body}");
        assert!(message(&body).contains("not in policy.allow_remote_hosts"), "{url}: {body}");
    }
    for (body, says) in [
        (json!({"server_type": "remote", "url": "https://user:pw@127.0.0.1/mcp"}), "credentials"),
        (json!({"server_type": "remote", "url": "file:///etc/passwd"}), "scheme is `file`"),
        (json!({"server_type": "remote", "url": fixture_like, "headers": {"Host": "x"}}), "set by mcpod itself"),
        (json!({"server_type": "remote", "url": fixture_like, "headers": {"X-A": "a\nb"}}), "does not allow"),
        (json!({"server_type": "fixture-command", "headers": {"Authorization": "x"}}), "is for server type `remote`"),
    ] {
        let (status, body) = start(&host, body.clone()).await;
        assert!(status == 400 || status == 403, "{says}: {status} {body}");
        assert!(message(&body).contains(says), "{says}: {body}");
    }

    // An allowed server that redirects elsewhere: the redirect is not followed,
    // so neither the request nor its secret header leaves the allowed origin.
    let away = format!("http://localhost:{}/stolen", elsewhere.port());
    let url = format!("http://127.0.0.1:{}/redirect?to={away}", front.port());
    let (status, body) =
        start(&host, json!({"server_type": "remote", "url": url, "headers": {"Authorization": "Bearer s"}})).await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["status"], "ready", "{body}");
    assert!(front_seen.requests.lock().unwrap().iter().any(|(t, _)| t.starts_with("/redirect")));
    assert!(elsewhere_seen.requests.lock().unwrap().is_empty(), "a redirect elsewhere was followed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_server_running_elsewhere_is_served_over_streamable_http_and_legacy_sse() {
    let (mut streamable, s_port) = server_everything("streamableHttp");
    let (mut sse, e_port) = server_everything("sse");
    let host = start_host(|c| c.policy.allow_remote_hosts = vec!["127.0.0.1:*".into()]).await;
    for body in [
        json!({"server_type": "remote", "url": format!("http://127.0.0.1:{s_port}/mcp")}),
        json!({"server_type": "remote", "transport": "sse", "url": format!("http://127.0.0.1:{e_port}/sse")}),
    ] {
        let id = host.start_server(body.clone()).await;
        let session = McpSession::open_any(&format!("{}/servers/{id}/mcp", host.base)).await;
        let (_, _, listed) = session.post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
        let names: Vec<&str> = listed[0]["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{listed:?}"))
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(names.contains(&"echo"), "{body}: {names:?}");
        let answer = session.call(2, "echo", json!({"message": "far away"})).await;
        assert!(tool_text(&answer).contains("far away"), "{body}: {answer}");
    }
    for child in [&mut streamable, &mut sse] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_servers_oauth_token_comes_from_its_provider_and_is_fetched_again_before_it_expires() {
    // Tokens of a real OpenID provider that live two seconds.
    let clients = json!([{"client_id": "front", "client_secret": "front-secret", "groups": ["developers"]}]);
    let provider = start_provider(&clients, &[("OIDC_ACCESS_TOKEN_TTL", "2")]);
    // The server elsewhere: an mcpod that takes only that provider's tokens
    // for itself (RFC 8707 audience) with scope mcp:tools.
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin-token");
    std::fs::write(&admin, "upstream-admin\n").unwrap();
    let issuer = provider.issuer.clone();
    let upstream = start_host(move |c| {
        c.server.insecure_no_auth = false;
        c.server.api_token_file = Some(admin);
        let mut oidc = mcpod::config::OidcSection::for_issuer(issuer);
        oidc.scopes = vec!["mcp:tools".to_string()];
        // No grace past `exp`: a token not fetched again is refused.
        oidc.leeway_secs = 0;
        c.auth.oidc = Some(oidc);
    })
    .await;
    let started = upstream
        .start_server_as(json!({"server_type": "fixture-command", "sharing": "shared"}), "upstream-admin")
        .await;
    let url = format!("{}/servers/{started}/mcp", upstream.base);

    let host = start_host(|c| c.policy.allow_remote_hosts = vec!["127.0.0.1:*".into()]).await;
    let oauth = |secret: &str| {
        json!({"token_url": format!("{}/token", provider.issuer), "client_id": "front", "client_secret": secret,
               "scope": "mcp:tools", "resource": url})
    };
    let id = host.start_server(json!({"server_type": "remote", "url": url, "oauth": oauth("front-secret")})).await;
    let session = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({"message": "with a token"})).await), "with a token");
    // Past the first token's life: the next calls carry a new one.
    for i in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let answer = session.call(2 + i, "echo", json!({"message": "still"})).await;
        assert_eq!(tool_text(&answer), "still", "call {i} after the token's life: {answer}");
    }
    // The secret is never shown.
    let shown = host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().text().await.unwrap();
    assert!(!shown.contains("front-secret"), "{shown}");

    // A wrong secret starts nothing that answers, and says why.
    let resp = host.post_server(json!({"server_type": "remote", "url": url, "oauth": oauth("wrong")})).await;
    let body: Value = resp.json().await.unwrap();
    assert_ne!(body["status"], "ready", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("refused client `front`") && !detail.contains("wrong"), "{body}");
    // A token endpoint outside the allow-list is refused before anything is asked of it.
    let resp = host
        .post_server(json!({"server_type": "remote", "url": url,
            "oauth": {"token_url": "http://169.254.169.254/token", "client_id": "a", "client_secret": "b"}}))
        .await;
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_server_whose_certificate_nobody_vouches_for_is_not_reached() {
    // An HTTPS server on 127.0.0.1 with a self-signed certificate.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let script = format!(
        "import http.server, ssl\n\
         srv = http.server.HTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler)\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain({:?}, {:?})\n\
         srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
         print(srv.server_port, flush=True)\n\
         srv.serve_forever()\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let mut tls = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(tls.stdout.take().unwrap()), &mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|e| panic!("{e}: {line:?}"));

    let host = start_host(|c| {
        c.policy.allow_remote_hosts = vec!["127.0.0.1:*".into()];
        c.limits.max_restarts = 1;
    })
    .await;
    let (status, body) =
        start(&host, json!({"server_type": "remote", "url": format!("https://127.0.0.1:{port}/mcp")})).await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["status"], "ready", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("certificate") || detail.contains("UnknownIssuer"),
        "the reason is the certificate: {body}"
    );
    let _ = tls.kill();
    let _ = tls.wait();
}
