//! Virtual servers: one endpoint in front of several servers, for clients
//! of every revision: listings merged under member keys, calls routed, a
//! member going down and coming back, a member joining later, questions
//! reaching the client that caused them, and the official SDKs through it.

mod support;

use serde_json::{Value, json};
use support::*;

/// Creates virtual server `spec` on `host` through the API; the answer.
async fn create(host: &TestHost, spec: Value) -> (u16, Value) {
    let resp = host
        .http
        .post(format!("{}/api/v1/virtual", host.base))
        .header("content-type", "application/json")
        .body(spec.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn names(session: &McpSession, method: &str, field: &str) -> Vec<String> {
    let (status, _, msgs) = session.post(json!({"jsonrpc": "2.0", "id": 100, "method": method})).await;
    assert_eq!(status, 200, "{msgs:?}");
    let answer = msgs.into_iter().find(|m| m.get("id").is_some()).unwrap_or_default();
    answer["result"][field]
        .as_array()
        .unwrap_or_else(|| panic!("{method}: {answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_virtual_server_shows_every_member_under_its_key_and_routes_each_call() {
    let host = start_host(|_| {}).await;
    let a = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let b = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let (status, body) = create(
        &host,
        json!({"name": "team", "members": [
            {"server": a, "key": "a"},
            {"server": b, "key": "b", "expose": {"tools": {"deny": ["crash"]}}}
        ]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["endpoints"]["streamable_http"], format!("{}/virtual/team/mcp", host.base));

    let session = McpSession::open_any(&format!("{}/virtual/team/mcp", host.base)).await;
    let tools = names(&session, "tools/list", "tools").await;
    for name in ["a__echo", "b__echo", "a__crash", "a__whoami", "b__whoami"] {
        assert!(tools.contains(&name.to_string()), "{name} missing: {tools:?}");
    }
    assert!(!tools.contains(&"b__crash".to_string()), "b's rules hide its crash: {tools:?}");
    assert_eq!(tool_text(&session.call(1, "b__echo", json!({"message": "to b"})).await), "to b");
    let (pid_a, pid_b) = (
        tool_text(&session.call(2, "a__whoami", json!({})).await),
        tool_text(&session.call(3, "b__whoami", json!({})).await),
    );
    assert_ne!(pid_a, pid_b, "each call reaches its own member");
    for bad in ["echo", "c__echo", "b__crash"] {
        let answer = session.call(4, bad, json!({})).await;
        assert_eq!(answer["error"]["code"], -32602, "{bad}: {answer}");
    }
    let prompts = names(&session, "prompts/list", "prompts").await;
    assert!(
        prompts.iter().any(|p| p.starts_with("a__")) && prompts.iter().any(|p| p.starts_with("b__")),
        "{prompts:?}"
    );

    // A member that crashes: b goes on, and a comes back under the same names.
    let crashed = session.call(5, "a__crash", json!({})).await;
    assert!(crashed.get("error").is_some() || crashed.get("result").is_some(), "{crashed}");
    assert_eq!(tool_text(&session.call(6, "b__echo", json!({"message": "still here"})).await), "still here");
    let mut back = false;
    for i in 0..100 {
        let answer = session.call(10 + i, "a__echo", json!({"message": "back"})).await;
        if tool_text(&answer) == "back" {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "member a came back");

    let status: Value =
        host.http.get(format!("{}/api/v1/virtual/team", host.base)).send().await.unwrap().json().await.unwrap();
    let keys: Vec<&str> = status["members"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a", "b"], "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_started_later_joins_the_open_sessions_and_bad_specs_are_refused_by_field() {
    let host = start_host(|_| {}).await;
    let first = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let later = "fixture-command-2";
    let (status, body) = create(
        &host,
        json!({"name": "grows", "members": [{"server": first, "key": "one"}, {"server": later, "key": "two"}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let session = McpSession::open_any(&format!("{}/virtual/grows/mcp", host.base)).await;
    let before = names(&session, "tools/list", "tools").await;
    assert!(before.iter().all(|t| t.starts_with("one__")), "{before:?}");
    assert_eq!(host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await, later);
    let after = names(&session, "tools/list", "tools").await;
    assert!(after.contains(&"two__echo".to_string()), "the new member joined the open session: {after:?}");
    assert_eq!(tool_text(&session.call(1, "two__echo", json!({"message": "joined"})).await), "joined");

    for (spec, says) in [
        (json!({"name": "a__b", "members": [{"server": first}]}), "name"),
        (json!({"name": "team-2", "members": [{"server": first}]}), "ends like a server id"),
        (json!({"name": "empty", "members": []}), "at least one"),
        (json!({"name": "both", "members": [{"server": first, "template": "time"}]}), "either `server` or `template`"),
        (json!({"name": "k", "members": [{"server": first, "key": "x__y"}]}), "members[0].key"),
        (json!({"name": "u", "members": [{"server": first, "color": "red"}]}), "unknown field"),
    ] {
        let (status, body) = create(&host, spec.clone()).await;
        assert_eq!(status, 400, "{spec}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains(says), "{says}: {body}");
    }
    let missing = host.http.get(format!("{}/api/v1/virtual/nope", host.base)).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2026_client_calls_members_through_the_virtual_server_and_answers_a_members_question() {
    let host = start_host(|_| {}).await;
    let a = host.start_server(json!({"server_type": "fixture-command"})).await;
    create(&host, json!({"name": "modern", "members": [{"server": a, "key": "fx"}]})).await;
    let url = format!("{}/virtual/modern/mcp", host.base);
    let meta = |caps: Value| {
        json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": caps,
               "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}})
    };
    let post = |body: Value| {
        let url = url.clone();
        async move {
            let method = body["method"].as_str().unwrap_or_default().to_string();
            let mut req = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", method);
            if let Some(name) = body["params"]["name"].as_str() {
                req = req.header("mcp-name", name);
            }
            let resp = req.body(body.to_string()).send().await.unwrap();
            let text = resp.text().await.unwrap();
            let msgs: Vec<Value> = if text.starts_with('{') {
                vec![serde_json::from_str(&text).unwrap()]
            } else {
                sse_data(&text).iter().filter_map(|d| serde_json::from_str(d).ok()).collect()
            };
            msgs.into_iter().find(|m| m.get("id").is_some()).unwrap_or_default()
        }
    };
    let discovered =
        post(json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta(json!({}))}}))
            .await;
    assert!(discovered["result"]["capabilities"]["tools"].is_object(), "{discovered}");
    let listed =
        post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta(json!({}))}})).await;
    assert!(listed["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "fx__echo"), "{listed}");
    let echoed = post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"message": "stateless"}, "_meta": meta(json!({}))}}))
    .await;
    assert_eq!(tool_text(&echoed), "stateless", "{echoed}");
    // A member's sampling request becomes this client's input_required, and the retry completes it.
    let ask = |id: u64, extra: Value| {
        let mut params = json!({"name": "fx__sample", "arguments": {"prompt": "six times seven?"}, "_meta": meta(json!({"sampling": {}}))});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            params[k] = v;
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
    };
    let first = post(ask(4, json!({}))).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let (key, request) = first["result"]["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(request["params"]["messages"][0]["content"]["text"], "six times seven?");
    let input = json!({key: {"role": "assistant", "content": {"type": "text", "text": "forty-two"}, "model": "m"}});
    let state = first["result"]["requestState"].clone();
    let done = post(ask(5, json!({"requestState": state, "inputResponses": input}))).await;
    assert_eq!(tool_text(&done), "model said: forty-two", "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_sdks_use_a_virtual_server_of_the_reference_server_and_a_fixture_and_questions_find_their_asker() {
    let path = ensure_clients();
    let host = start_host(|_| {}).await;
    let everything = host.start_server(json!({"template": "everything"})).await;
    let fixture = host.start_server(json!({"server_type": "fixture-command"})).await;
    let (status, body) = create(
        &host,
        json!({"name": "all", "members": [{"server": everything, "key": "everything"}, {"server": fixture, "key": "fix"}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = format!("{}/virtual/all/mcp", host.base);
    let python = clients_dir().join(".venv/bin/python").display().to_string();
    let mut jobs = Vec::new();
    // Two handshake-era clients at once, each asked by the fixture member for its own prompt.
    for (transport, prompt) in [("streamable-http", "first asks"), ("sse", "second asks")] {
        let (path, python, url) =
            (path.clone(), python.clone(), url.replace("/mcp", if transport == "sse" { "/sse" } else { "/mcp" }));
        jobs.push(tokio::task::spawn_blocking(move || {
            let args = [
                url.as_str(),
                transport,
                "--call",
                "everything__echo",
                r#"{"message":"through the virtual server"}"#,
                "--sampling-tool",
                "fix__sample",
                &format!(r#"{{"prompt":"{prompt}"}}"#),
            ];
            let out = std::process::Command::new(&python)
                .arg(clients_dir().join("py_client.py"))
                .args(args)
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{transport}: {}", String::from_utf8_lossy(&out.stderr));
            (prompt, serde_json::from_slice::<Value>(&out.stdout).unwrap())
        }));
    }
    for job in jobs {
        let (prompt, out) = job.await.unwrap();
        assert_eq!(out["call"], "Echo: through the virtual server", "{out}");
        assert_eq!(out["sampled"], prompt, "the question reached the client whose call caused it: {out}");
        assert!(out["sampling_result"].as_str().unwrap().contains("forty-two"), "{out}");
        let tools = out["tools"].as_array().unwrap();
        assert!(tools.iter().any(|t| t == "fix__echo") && tools.iter().any(|t| t == "everything__echo"), "{out}");
        assert!(out["read"].as_u64().unwrap_or(0) > 0, "a member's resource read through it: {out}");
    }
}
