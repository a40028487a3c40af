//! Cedar access policies on a running host: which servers a principal may
//! connect to, which tools it sees and may call, on the Streamable HTTP
//! front, at 2026-07-28, over WebSocket and legacy SSE, policy edits taking
//! effect on the next request of an open session (which is told its list
//! changed), and which templates a user may start.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;

const V1: &str = r#"
@id("everyone-connects")
permit(principal, action == Action::"connect", resource);

@id("users-echo-and-add")
permit(principal in Role::"user", action == Action::"call_tool", resource)
when { ["echo", "add"].contains(resource.name) };

@id("admins")
permit(principal in Role::"admin", action, resource);

@id("no-crash")
forbid(principal, action == Action::"call_tool", resource) when { resource.name == "crash" };
"#;

/// Writes `text` to `path` with a modification time no earlier one can match.
fn rewrite(path: &std::path::Path, text: &str, step: u64) {
    std::fs::write(path, text).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(10 * step);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(later).unwrap();
}

fn names(list: &Value) -> Vec<String> {
    let tools = list["result"]["tools"].as_array().unwrap_or_else(|| panic!("a tool list: {list}"));
    tools.iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

/// A handshake-era MCP POST of `body` to `url` with `token`, as a client sends it.
async fn post_mcp(host: &TestHost, url: &str, token: &str, body: String) -> reqwest::Response {
    host.http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// An `initialize` request a session opens with.
fn initialize_body() -> String {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string()
}

async fn list(s: &McpSession, id: u64) -> Value {
    let (_, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})).await;
    msgs.into_iter().find(|m| m.get("id").is_some()).unwrap()
}

fn error(answer: &Value) -> String {
    answer["error"]["message"].as_str().unwrap_or_else(|| panic!("an error: {answer}")).to_string()
}

/// A host whose admin token is `the-admin-token`, with a named token for
/// each of `users` and the policies `text` (then `tweak`); the users'
/// tokens in their order, and the policy file, for edits.
async fn governed_host(
    dir: &std::path::Path,
    users: &[(&str, mcpod::identity::Role)],
    text: &str,
    tweak: impl FnOnce(&mut mcpod::config::Config),
) -> (TestHost, Vec<String>, std::path::PathBuf) {
    let (admin_file, tokens, policies) = (dir.join("token"), dir.join("tokens.toml"), dir.join("policies.cedar"));
    std::fs::write(&admin_file, "the-admin-token\n").unwrap();
    let mut file = mcpod::identity::TokenFile::default();
    let made = users.iter().map(|(name, role)| file.create(name, *role).unwrap()).collect();
    file.write(&tokens).unwrap();
    std::fs::write(&policies, text).unwrap();
    let host = start_host(|c| {
        c.server.api_token_file = Some(admin_file);
        c.auth.tokens_file = Some(tokens);
        c.access.policies = Some(policies.clone());
        tweak(c);
    })
    .await;
    (host, made, policies)
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_decide_who_sees_and_calls_which_tools_on_every_transport_and_edits_apply_to_open_sessions() {
    use mcpod::identity::Role;
    let dir = tempfile::tempdir().unwrap();
    let (host, tokens, policies) =
        governed_host(dir.path(), &[("alice", Role::User), ("root", Role::Admin)], V1, |_| {}).await;
    let (alice, root) = (tokens[0].clone(), tokens[1].clone());
    let start = || async {
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
    };
    let (a, b) = (start().await, start().await);
    let url = format!("{}/servers/{a}/mcp", host.base);

    // Streamable HTTP: alice sees echo and add; root sees all but crash.
    let as_alice = McpSession::open_as(&url, &alice).await;
    let as_root = McpSession::open_as(&url, &root).await;
    assert_eq!(names(&list(&as_alice, 1).await), ["echo", "add"]);
    let all = names(&list(&as_root, 1).await);
    assert!(all.contains(&"whoami".to_string()) && !all.contains(&"crash".to_string()), "{all:?}");
    let denied = as_alice.call(2, "whoami", json!({})).await;
    assert_eq!(denied["error"]["code"], -32602, "a JSON-RPC error, not a transport error: {denied}");
    let why = error(&denied);
    assert!(
        why.contains("denied by policy") && why.contains("`alice`") && why.contains("no policy permits it"),
        "{why}"
    );
    let why = error(&as_root.call(2, "crash", json!({})).await);
    assert!(why.contains("forbidden by no-crash"), "a forbid holds for admins too: {why}");
    assert_eq!(tool_text(&as_alice.call(3, "echo", json!({"message": "hi"})).await), "hi");

    // 2026-07-28, stateless: the same refusal, and a private list.
    let modern = |body: Value, token: &str| {
        let http = host.http.clone();
        let (url, token) = (url.clone(), token.to_string());
        async move {
            let method = body["method"].as_str().unwrap_or("").to_string();
            let mut req = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", method);
            if let Some(name) = body["params"]["name"].as_str() {
                req = req.header("mcp-name", name);
            }
            let text = req.body(body.to_string()).send().await.unwrap().text().await.unwrap();
            let data = sse_data(&text);
            let last = data.last().cloned().unwrap_or(text);
            serde_json::from_str::<Value>(&last).unwrap_or(Value::String(last))
        }
    };
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {},
                      "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}});
    let listed =
        modern(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}), &alice).await;
    assert_eq!(names(&listed), ["echo", "add"]);
    assert_eq!(listed["result"]["cacheScope"], "private", "{listed}");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}, "_meta": meta}});
    let why = error(&modern(call, &alice).await);
    assert!(why.contains("denied by policy"), "{why}");

    // WebSocket: the same refusal.
    let ws_url = format!("ws://{}/servers/{a}/ws", host.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url).unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "mcp".parse().unwrap());
    req.headers_mut().insert("authorization", format!("Bearer {alice}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    use tokio_tungstenite::tungstenite::Message as Ws;
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}),
    ] {
        ws.send(Ws::Text(msg.to_string().into())).await.unwrap();
    }
    let mut answer = Value::Null;
    while answer["id"] != 2 {
        if let Some(Ok(Ws::Text(t))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            answer = serde_json::from_str(&t).unwrap();
        }
    }
    assert!(error(&answer).contains("denied by policy"), "{answer}");

    // Legacy SSE and its /messages: the same refusal.
    let resp = host
        .http
        .get(format!("{}/servers/{a}/sse", host.base))
        .bearer_auth(&alice)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = resp.bytes_stream();
    let mut seen_sse = String::new();
    while !seen_sse.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap();
        seen_sse.push_str(&String::from_utf8_lossy(&chunk));
    }
    let endpoint = sse_data(&seen_sse)[0].clone();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}),
    ] {
        let posted = host
            .http
            .post(format!("{}{endpoint}", host.base))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(msg.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 202);
    }
    let answer = sse_until(&mut events, &mut seen_sse, "the call's answer on the SSE stream", |m| m["id"] == 2).await;
    assert!(error(&answer).contains("denied by policy"), "{answer}");

    // An edit while the sessions are open: whoami for users, and server B
    // closed to alice. It applies on the next request, no restart.
    let v2 = format!(
        "{V1}\n@id(\"users-whoami\")\npermit(principal in Role::\"user\", action == Action::\"call_tool\", resource) when {{ resource.name == \"whoami\" }};\n\
         @id(\"b-is-private\")\nforbid(principal == User::\"alice\", action == Action::\"connect\", resource == Server::\"{b}\");\n"
    );
    rewrite(&policies, &v2, 1);
    let mut seen = Vec::new();
    for id in 10..110 {
        seen = names(&list(&as_alice, id).await);
        if seen.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, ["echo", "add", "whoami"], "the open session sees the edit");
    // Open sessions were told: on the WebSocket and on the SSE stream.
    let told = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a list change in time");
        if let Some(Ok(Ws::Text(t))) = next {
            let m: Value = serde_json::from_str(&t).unwrap();
            if m.get("method").is_some() {
                break m;
            }
        }
    };
    assert_eq!(told["method"], "notifications/tools/list_changed", "{told}");
    sse_until(&mut events, &mut seen_sse, "the list change on the SSE stream", |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
    assert!(as_alice.call(200, "whoami", json!({})).await["result"].is_object());
    // Server B by its id, and by the same id spelled otherwise in the URL
    // (the handler decodes `%XX`): the policy must see the server served.
    let spelled = format!("%{:02X}{}", b.as_bytes()[0], &b[1..]);
    for id in [b.as_str(), spelled.as_str()] {
        let refused = post_mcp(&host, &format!("{}/servers/{id}/mcp", host.base), &alice, initialize_body()).await;
        assert_eq!(refused.status(), 403, "/servers/{id}/mcp is server {b}");
        let body: Value = refused.json().await.unwrap();
        assert!(error(&body).contains("forbidden by b-is-private"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_starts_the_templates_a_policy_permits_with_their_secrets_only_and_stops_only_its_own() {
    use mcpod::identity::Role;
    ensure_clients();
    let dir = tempfile::tempdir().unwrap();
    let policies = r#"
@id("alice-starts-everything-and-brave")
permit(principal == User::"alice", action == Action::"start", resource)
when { ["everything", "brave-search"].contains(resource.name) };
@id("starters-use-their-servers")
permit(principal, action, resource) when { resource.started_by == principal.name };
"#;
    let users = [("alice", Role::User), ("bob", Role::User), ("root", Role::Admin)];
    let (host, tokens, _) = governed_host(dir.path(), &users, policies, |c| {
        c.limits.max_servers_per_principal = 1;
        c.policy.packages_block = vec!["@modelcontextprotocol/server-brave-search".into()];
        let mut hide_echo = mcpod::expose::Expose::default();
        hide_echo.tools.deny = vec!["echo".into()];
        c.expose.templates.insert("everything".into(), hide_echo);
    })
    .await;
    let (alice, bob, root) = (tokens[0].clone(), tokens[1].clone(), tokens[2].clone());
    let send = |method: &str, path: &str, token: &str, body: Option<Value>| {
        let mut req = host
            .http
            .request(method.parse().unwrap(), format!("{}{path}", host.base))
            .bearer_auth(token)
            .header("content-type", "application/json");
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let refused = |(status, body): (u16, Value), code: &str, words: &[&str]| {
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        let why = body["error"]["message"].as_str().unwrap().to_string();
        assert!(words.iter().all(|w| why.contains(w)), "{why} should name {words:?}");
    };

    // Each start a user may not make, and what its refusal names: not
    // permitted by any policy, or not for this user; a permitted template
    // with more than its inputs (that would run other code); a raw config.
    // A template's declared secret is the user's to give: the last start
    // gets past the role and policy checks and is stopped by the host's
    // package policy, where any other variable is not.
    let refusals: [(&str, Value, &str, &[&str]); 7] = [
        (
            &alice,
            json!({"template": "time"}),
            "forbidden_by_policy",
            &["`alice` may not start template `time`", "no policy permits it"],
        ),
        (&bob, json!({"template": "everything"}), "forbidden_by_policy", &["`bob`"]),
        (&alice, json!({"template": "everything", "env": {"HOME": "/tmp/x"}}), "forbidden", &["HOME", "admin role"]),
        (&alice, json!({"template": "everything", "args": ["--require=x"]}), "forbidden", &["args", "admin role"]),
        (&alice, json!({"server_type": "npx", "package": "left-pad"}), "forbidden", &["raw config", "admin role"]),
        (
            &alice,
            json!({"template": "brave-search", "env": {"NOT_A_SECRET": "x"}}),
            "forbidden",
            &["NOT_A_SECRET", "admin role"],
        ),
        (
            &alice,
            json!({"template": "brave-search", "env": {"BRAVE_API_KEY": "k"}}),
            "forbidden_by_policy",
            &["packages_block"],
        ),
    ];
    for (token, body, code, words) in refusals {
        refused(send("POST", "/api/v1/servers", token, Some(body)).await, code, words);
    }

    // Permitted: alice starts it, and it is hers: she uses it (a policy
    // names its starter), under the operator's exposure rules for the
    // template, which her own can narrow and not widen.
    // Three at once, with `limits.max_servers_per_principal = 1`: one runs,
    // the others are refused at once with a 429 naming the limit.
    let start = json!({"template": "everything", "expose": {"tools": {"allow": ["echo", "trigger-*"]}}});
    let attempts =
        futures_util::future::join_all((0..3).map(|_| send("POST", "/api/v1/servers", &alice, Some(start.clone()))))
            .await;
    let over: Vec<&Value> = attempts.iter().filter(|(s, _)| *s == 429).map(|(_, b)| b).collect();
    assert_eq!(over.len(), 2, "{attempts:?}");
    assert!(over.iter().all(|b| b["error"]["message"].as_str().unwrap().contains("limits.max_servers_per_principal")));
    let (status, body) = attempts.into_iter().find(|(s, _)| *s != 429).unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["started_by"], "alice", "{body}");
    let id = body["server_id"].as_str().unwrap().to_string();
    let hers = McpSession::open_as(&format!("{}/servers/{id}/mcp", host.base), &alice).await;
    let shown = names(&list(&hers, 1).await);
    assert!(!shown.is_empty() && shown.iter().all(|n| n.starts_with("trigger-")), "{shown:?}");
    let hidden = hers.call(2, "echo", json!({"message": "x"})).await;
    assert!(hidden["error"].is_object() || hidden["result"]["isError"] == true, "{hidden}");
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string();
    let bobs = post_mcp(&host, &format!("{}/servers/{id}/mcp", host.base), &bob, list).await;
    assert_eq!(bobs.status(), 403, "bob did not start it; no policy lets him connect");
    let (status, _) = send("POST", "/api/v1/servers", &root, Some(json!({"server_type": "fixture-command"}))).await;
    assert_eq!(status, 201, "admins start anything");
    let (_, listed) = send("GET", "/api/v1/servers", &bob, None).await;
    let roots = listed.as_array().unwrap().iter().find(|s| s["server_type"] == "fixture-command").unwrap().clone();
    assert_eq!(roots["started_by"], "root");
    let roots = roots["server_id"].as_str().unwrap().to_string();

    // Only its starter or an admin stops it.
    refused(send("DELETE", &format!("/api/v1/servers/{id}"), &bob, None).await, "forbidden", &["did not start"]);
    refused(send("DELETE", &format!("/api/v1/servers/{roots}"), &alice, None).await, "forbidden", &["did not start"]);
    let (status, body) = send("DELETE", &format!("/api/v1/servers/{id}"), &alice, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send("DELETE", &format!("/api/v1/servers/{roots}"), &root, None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn through_a_virtual_server_each_member_applies_its_policies_to_the_principal_and_a_denied_member_is_absent() {
    use mcpod::identity::Role;
    let dir = tempfile::tempdir().unwrap();
    let (host, tokens, policies) =
        governed_host(dir.path(), &[("alice", Role::User), ("root", Role::Admin)], V1, |_| {}).await;
    let (alice, root) = (tokens[0].clone(), tokens[1].clone());
    let mut ids = Vec::new();
    for _ in 0..2 {
        let shared = json!({"server_type": "fixture-command", "sharing": "shared"});
        ids.push(host.start_server_as(shared, "the-admin-token").await);
    }
    let made = host
        .http
        .post(format!("{}/api/v1/virtual", host.base))
        .bearer_auth("the-admin-token")
        .header("content-type", "application/json")
        .body(
            json!({"name": "team", "members": [{"server": ids[0], "key": "a"}, {"server": ids[1], "key": "b"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    // A user may not create one: it decides what others' clients reach.
    let refused = host
        .http
        .post(format!("{}/api/v1/virtual", host.base))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(json!({"name": "mine", "members": [{"server": ids[0]}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    let url = format!("{}/virtual/team/mcp", host.base);
    let as_alice = McpSession::open_as(&url, &alice).await;
    let as_root = McpSession::open_as(&url, &root).await;
    let mut seen = names(&list(&as_alice, 1).await);
    seen.sort();
    assert_eq!(seen, ["a__add", "a__echo", "b__add", "b__echo"], "alice sees what each member lets her");
    let all = names(&list(&as_root, 1).await);
    assert!(all.contains(&"a__whoami".to_string()) && all.contains(&"b__whoami".to_string()), "{all:?}");
    assert!(!all.iter().any(|t| t.ends_with("__crash")), "a forbid holds through it: {all:?}");
    let denied = as_alice.call(2, "a__whoami", json!({})).await;
    assert!(error(&denied).contains("denied by policy") && error(&denied).contains("`alice`"), "{denied}");
    assert!(as_root.call(3, "b__whoami", json!({})).await.get("result").is_some());

    // A member alice may not connect to is not part of her sessions at all.
    let private = format!(
        "{V1}\n@id(\"b-is-private\")\nforbid(principal == User::\"alice\", action == Action::\"connect\", resource == Server::\"{}\");\n",
        ids[1]
    );
    rewrite(&policies, &private, 1);
    let mut absent = Vec::new();
    for _ in 0..50 {
        let fresh = McpSession::open_as(&url, &alice).await;
        absent = names(&list(&fresh, 1).await);
        if absent.iter().all(|t| t.starts_with("a__")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(absent, ["a__add", "a__echo"], "b is absent for alice (sorted by name)");
    let root_again = McpSession::open_as(&url, &root).await;
    assert!(names(&list(&root_again, 1).await).iter().any(|t| t.starts_with("b__")), "and present for root");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_principal_holds_at_most_its_session_limit_open_and_an_ended_session_gives_its_place_back() {
    use mcpod::identity::Role;
    let dir = tempfile::tempdir().unwrap();
    let users = [("alice", Role::User), ("bob", Role::User), ("root", Role::Admin)];
    let (host, tokens, _) = governed_host(dir.path(), &users, V1, |c| c.limits.max_sessions_per_principal = 2).await;
    let (alice, bob, root) = (tokens[0].clone(), tokens[1].clone(), tokens[2].clone());
    let id =
        host.start_server_as(json!({"server_type": "fixture-command", "sharing": "shared"}), "the-admin-token").await;
    let made = host
        .http
        .post(format!("{}/api/v1/virtual", host.base))
        .bearer_auth("the-admin-token")
        .header("content-type", "application/json")
        .body(json!({"name": "solo", "members": [{"server": id, "key": ""}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    let url = format!("{}/servers/{id}/mcp", host.base);
    let initialize = async |token: &str| post_mcp(&host, &url, token, initialize_body()).await;

    // A session on the server and one on a virtual server of it: two,
    // the virtual one counted once (not once more for its member).
    let first = McpSession::open_as(&url, &alice).await;
    let through_virtual = McpSession::open_as(&format!("{}/virtual/solo/mcp", host.base), &alice).await;
    assert!(through_virtual.call(1, "echo", json!({"message": "hi"})).await.get("result").is_some());
    let over = initialize(&alice).await;
    assert_eq!(over.status().as_u16(), 429);
    assert!(over.headers().get("retry-after").is_some(), "a 429 says when to retry");
    let why = over.text().await.unwrap();
    assert!(why.contains("limits.max_sessions_per_principal") && why.contains("`alice`"), "{why}");

    // An instance handle is a session too (an instance of her own).
    let handle = host
        .http
        .post(format!("{}/api/v1/servers/{id}/instances", host.base))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(handle.status().as_u16(), 429, "{}", handle.text().await.unwrap());

    // Another user's, and an admin's, are not hers to fill.
    assert_eq!(initialize(&bob).await.status().as_u16(), 200);
    for _ in 0..3 {
        assert_eq!(initialize(&root).await.status().as_u16(), 200, "admins are not counted");
    }

    // Ending a session (DELETE) gives its place back.
    let ended = host
        .http
        .delete(&url)
        .bearer_auth(&alice)
        .header("mcp-session-id", first.id.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let mut status = 0;
    for _ in 0..50 {
        status = initialize(&alice).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the ended session's place is hers again");
}
