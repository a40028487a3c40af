//! The local runtime and the MCP front, end to end against the Rust fixture
//! server: sessions, sharing, recovery, every downstream transport, and
//! every kind of bad request.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn mcp_url(host: &TestHost, id: &str) -> String {
    format!("{}/servers/{id}/mcp", host.base)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_lists_and_calls_tools_reads_resources_and_gets_prompts() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command"})).await;
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["capabilities"]["initialize"]["serverInfo"]["name"], "mcpod-fixture");
    let tools: Vec<&str> = status["capabilities"]["tools"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"echo"), "{tools:?}");

    let s = McpSession::open(&mcp_url(&host, &id)).await;
    assert_eq!(tool_text(&s.call(1, "echo", json!({"message": "hello"})).await), "hello");
    assert_eq!(tool_text(&s.call(2, "add", json!({"a": 2, "b": 40})).await), "42");
    let (_, _, msgs) = s
        .post(json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "fixture://hello"}}))
        .await;
    assert_eq!(msgs[0]["result"]["contents"][0]["text"], "hello");
    let (_, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {"name": "greet", "arguments": {"name": "Ada"}}})).await;
    assert_eq!(msgs[0]["result"]["messages"][0]["content"]["text"], "Hello, Ada!");
    let (_, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": 5, "method": "nonsense/method"})).await;
    assert_eq!(msgs[0]["error"]["code"], -32601);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_and_sampling_flow_on_the_request_stream() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let (_, _, msgs) = s
        .post(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow", "arguments": {"steps": 3}, "_meta": {"progressToken": "tok"}}}))
        .await;
    let progress: Vec<&Value> = msgs.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3, "{msgs:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "tok"), "the client's own token comes back");
    assert_eq!(tool_text(msgs.last().unwrap()), "done in 3 steps");

    // Sampling: the server's request arrives on the tools/call stream; the answer goes back by POST.
    let url = mcp_url(&host, &id);
    let sid = s.id.clone().unwrap();
    let client = reqwest::Client::new();
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .body(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "sample", "arguments": {"prompt": "2+2?"}}}).to_string())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let request =
        sse_until(&mut body, &mut text, "the sampling request", |m| m["method"] == "sampling/createMessage").await;
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "four"}, "model": "test"}});
    let (status, _, _) = s.post(answer).await;
    assert_eq!(status, 202);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(10), body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let last: Value = serde_json::from_str(sse_data(&text).last().unwrap()).unwrap();
    assert_eq!(tool_text(&last), "model said: four");
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_sessions_never_see_each_others_answers() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = mcp_url(&host, &id);
    let mut tasks = Vec::new();
    for n in 0..16u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let s = McpSession::open(&url).await;
            for i in 0..10u64 {
                // Every session uses the same request ids.
                let text = tool_text(&s.call(i + 1, "echo", json!({"message": format!("session {n} call {i}")})).await);
                assert_eq!(text, format!("session {n} call {i}"));
            }
            tool_text(&s.call(99, "whoami", json!({})).await)
        }));
    }
    let mut pids = std::collections::BTreeSet::new();
    for t in tasks {
        let who = t.await.unwrap();
        pids.insert(who.split_whitespace().next().unwrap().to_string());
    }
    assert_eq!(pids.len(), 1, "one shared process: {pids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn per_session_servers_get_their_own_process_which_ends_with_the_session() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command"})).await;
    let a = McpSession::open(&mcp_url(&host, &id)).await;
    let b = McpSession::open(&mcp_url(&host, &id)).await;
    let pa = tool_text(&a.call(1, "whoami", json!({})).await);
    let pb = tool_text(&b.call(1, "whoami", json!({})).await);
    assert_ne!(pa.split_whitespace().next(), pb.split_whitespace().next(), "{pa} vs {pb}");
    assert!(pa.ends_with("calls=1") && pb.ends_with("calls=1"));
    let pid: i32 = pa.split_whitespace().next().unwrap().trim_start_matches("pid=").parse().unwrap();
    let resp =
        reqwest::Client::new().delete(&a.url).header("mcp-session-id", a.id.clone().unwrap()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the session's process is gone");
    let (status, _, _) = a.post(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})).await;
    assert_eq!(status, 404, "a deleted session is unknown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_fails_in_flight_requests_at_once_and_the_next_request_reaches_a_restarted_server() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let before = tool_text(&s.call(1, "whoami", json!({})).await);
    let started = Instant::now();
    let crash = s.call(2, "crash", json!({})).await;
    assert_eq!(crash["error"]["code"], -32001, "{crash}");
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
    let mut after = String::new();
    for i in 0..100 {
        let r = s.call(10 + i, "whoami", json!({})).await;
        if r.get("result").is_some() {
            after = tool_text(&r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(after.starts_with("pid="), "a restarted server answers: {after}");
    assert_ne!(before.split_whitespace().next(), after.split_whitespace().next());
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    assert!(status["restarts"].as_u64().unwrap() >= 1, "{status}");

    // The metrics saw it all, per server.
    let metrics = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let server = format!("server=\"{id}\"");
    assert!(value(&format!("mcpod_restarts{{{server}}}")) >= 1.0);
    assert_eq!(value(&format!("mcpod_sessions{{{server}}}")), 1.0);
    assert!(value(&format!("mcpod_errors_total{{{server}}}")) >= 1.0, "the crash's -32001");
    assert!(value(&format!("mcpod_messages_total{{{server},direction=\"to_server\"}}")) >= 3.0);
    assert!(value(&format!("mcpod_messages_total{{{server},direction=\"to_client\"}}")) >= 3.0);
    assert!(value(&format!("mcpod_round_trip_seconds_count{{{server}}}")) >= 2.0);
    assert!(value("mcpod_servers{state=\"ready\"}") >= 1.0);
    assert!(value("mcpod_server_starts_total") >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_get_stream_carries_server_notifications_and_resumes_with_last_event_id() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    // No GET stream yet: the notifications wait for one.
    assert_eq!(tool_text(&s.call(1, "notify", json!({})).await), "notified");
    let get = |last: Option<&str>| {
        let mut req = reqwest::Client::new()
            .get(&s.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", s.id.clone().unwrap());
        if let Some(l) = last {
            req = req.header("last-event-id", l);
        }
        req.send()
    };
    let resp = get(None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while sse_data(&text).len() < 2 {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("events").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = sse_data(&text);
    assert!(events[0].contains("notifications/message"), "{events:?}");
    assert!(events[1].contains("notifications/tools/list_changed"), "{events:?}");
    let first_id = text.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_string();
    drop(stream);
    let resp = get(Some(&first_id)).await.unwrap();
    let mut stream = resp.bytes_stream();
    let mut replay = String::new();
    while sse_data(&replay).is_empty() {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("replay").unwrap().unwrap();
        replay.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(sse_data(&replay)[0].contains("list_changed"), "replays what came after event {first_id}: {replay}");
}

/// At 2025-11-25, a POST's event stream opens with a priming event (an id,
/// no data), as the revision says; a client cut off right after it resumes
/// the stream with that id as `Last-Event-ID` and gets the rest of it.
/// Older clients, which may not expect an event without data, get none.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_stream_opens_with_a_priming_event_to_resume_from() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let client = reqwest::Client::new();
    // One POST of `msg` in the session, at `version`, taking `accept`.
    let send = |accept: &'static str, version: &'static str, msg: serde_json::Value| {
        client
            .post(&s.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .header("mcp-session-id", s.id.clone().unwrap())
            .header("mcp-protocol-version", version)
            .body(msg.to_string())
            .send()
    };
    let post = |version: &'static str, id: u64| {
        send(
            "text/event-stream, application/json",
            version,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "slow", "arguments": {"steps": 3}, "_meta": {"progressToken": id}}}),
        )
    };
    let resp = post("2025-11-25", 7).await.unwrap();
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("an event").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = text.split("\n\n").next().unwrap().to_string();
    let priming =
        first.strip_prefix("id: ").and_then(|r| r.strip_suffix("\ndata: ")).unwrap_or_else(|| panic!("{first:?}"));
    drop(body);
    let get = |last: Option<&str>| {
        let req = client
            .get(&s.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", s.id.clone().unwrap())
            .header("mcp-protocol-version", "2025-11-25");
        match last {
            Some(id) => req.header("last-event-id", id),
            None => req,
        }
        .send()
    };
    let resumed = get(Some(priming)).await.unwrap();
    assert_eq!(resumed.status(), 200);
    let mut stream = resumed.bytes_stream();
    let mut replay = String::new();
    let done = sse_until(&mut stream, &mut replay, "the call's answer after the resume", |m| m["id"] == 7).await;
    assert_eq!(tool_text(&done), "done in 3 steps", "{replay}");
    assert!(sse_data(&replay).iter().any(|d| d.contains("notifications/progress")), "the progress came too: {replay}");

    let resp = post("2025-06-18", 8).await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(sse_data(&text).first().is_some_and(|d| !d.is_empty()), "no priming event before 2025-11-25: {text}");

    // A client that prefers JSON (as the SDKs do) gets JSON for a quick
    // answer; a slow one streams after a short wait, priming event first,
    // so that it can be resumed; before 2025-11-25 it waits for JSON.
    let call = |version: &'static str, id: u64, ms: u64| {
        send(
            "application/json, text/event-stream",
            version,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": ms}}}),
        )
    };
    let kind = |r: &reqwest::Response| r.headers()["content-type"].to_str().unwrap().to_string();
    let quick = call("2025-11-25", 9, 0).await.unwrap();
    assert_eq!(kind(&quick), "application/json");
    let slow = call("2025-11-25", 10, 1500).await.unwrap();
    assert_eq!(kind(&slow), "text/event-stream", "a slow answer streams");
    let text = slow.text().await.unwrap();
    assert!(text.starts_with("id: ") && text.split("\n\n").next().unwrap().ends_with("\ndata: "), "{text:?}");
    assert_eq!(tool_text(&serde_json::from_str(sse_data(&text).last().unwrap()).unwrap()), "slept 1500 ms");
    let old = call("2025-06-18", 11, 800).await.unwrap();
    assert_eq!(kind(&old), "application/json", "no stream to resume before 2025-11-25");

    // Resuming a POST's stream leaves the session's GET stream as it is.
    let standalone = get(None).await.unwrap();
    let again = get(Some(priming)).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(tool_text(&s.call(12, "notify", json!({})).await), "notified");
    let (mut events, mut seen) = (standalone.bytes_stream(), String::new());
    sse_until(&mut events, &mut seen, "the list change on the GET stream", |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
}

/// A host with a shared fixture server whose `tools/list` answers ~1 MiB
/// (10,000 extra tools) to a request of a few bytes.
async fn host_with_big_listings() -> (TestHost, String) {
    let host = start_host(|c| {
        c.limits.max_message_kib = 2048;
        c.policy.env_allow = vec!["EXTRA_TOOLS".into()];
    })
    .await;
    let body = json!({"server_type": "fixture-command", "sharing": "shared", "env": {"EXTRA_TOOLS": "10000"}});
    let id = host.start_server(body).await;
    (host, id)
}

/// How many messages of server `id` mcpod has passed on to clients, as
/// `/metrics` counts them.
async fn passed_on(host: &TestHost, id: &str) -> u64 {
    let series = format!(r#"mcpod_messages_total{{server="{id}",direction="to_client"}} "#);
    let metrics = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    metrics.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Waits (up to 60 s) until mcpod has passed on `n` messages of server `id`
/// or stopped passing them on for 3 s (the stream was ended and its
/// session with it): what the server answered is then queued for the
/// client, whether it reads or not.
async fn wait_until_passed_on_or_stopped(host: &TestHost, id: &str, n: u64) {
    let (mut last, mut still) = (0, 0);
    for _ in 0..600 {
        let now = passed_on(host, id).await;
        still = if now == last { still + 1 } else { 0 };
        last = now;
        if now >= n || (now > 0 && still >= 30) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mcpod passed on {last} messages of server {id} within 60 s, and went on");
}

/// Opens server `id`'s legacy SSE stream: the stream, and its text up to
/// the end of its first event (the `endpoint` event).
async fn open_legacy_sse(
    host: &TestHost,
    id: &str,
) -> (impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/servers/{id}/sse", host.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        text.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
    }
    (stream, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_sse_and_websocket_serve_the_same_server() {
    let host = start_host(|c| c.limits.max_message_kib = 16).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;

    let (mut stream, mut text) = open_legacy_sse(&host, &id).await;
    assert!(text.starts_with("event: endpoint\n"), "{text}");
    let endpoint = sse_data(&text)[0].clone();
    assert!(endpoint.starts_with(&format!("/servers/{id}/messages?sessionId=")));
    let post = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}{endpoint}", host.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})).await.unwrap().status(),
        202
    );
    assert_eq!(post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "via sse"}}})).await.unwrap().status(), 202);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        text.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap(),
        ));
        seen = sse_data(&text);
    }
    assert!(seen[1].contains("mcpod-fixture"), "{seen:?}");
    assert!(seen[2].contains("via sse"), "{seen:?}");
    let big = json!({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"x": "a".repeat(20_000)}});
    let resp = post(big).await.unwrap();
    assert_eq!(resp.status(), 413, "an oversized message");
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("limits.max_message_kib"), "names the limit: {body}");

    let ws_url = format!("ws://{}/servers/{id}/ws", host.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url).unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "mcp");
    use tokio_tungstenite::tungstenite::Message as Ws;
    ws.send(Ws::Text(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string().into()))
        .await
        .unwrap();
    ws.send(Ws::Text(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "via ws"}}}).to_string().into())).await.unwrap();
    let mut replies = Vec::new();
    while replies.len() < 2 {
        if let Some(Ok(Ws::Text(t))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            replies.push(serde_json::from_str::<Value>(&t).unwrap());
        }
    }
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(tool_text(&replies[1]), "via ws");
}

/// Sends a raw POST to the MCP endpoint and returns status and body.
async fn raw_post(url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_the_right_status_and_a_json_rpc_error() {
    let host = start_host(|c| c.limits.max_message_kib = 16).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = mcp_url(&host, &id);
    let json_ct = ("content-type", "application/json");
    let accept = ("accept", "application/json, text/event-stream");
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    let (st, body) = raw_post(&url, &[json_ct, accept], "{not json").await;
    assert_eq!((st, body["error"]["code"].as_i64()), (400, Some(-32700)), "{body}");
    let (st, body) = raw_post(&url, &[json_ct, accept], ping).await;
    assert_eq!(st, 400, "missing session: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Mcp-Session-Id"));
    let (st, _) = raw_post(&url, &[json_ct, accept, ("mcp-session-id", "no-such-session")], ping).await;
    assert_eq!(st, 404);
    let (st, _) = raw_post(
        &format!("{}/servers/nope/mcp", host.base),
        &[json_ct, accept],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
    )
    .await;
    assert_eq!(st, 404, "unknown server");
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":"{}"}}}}"#, "a".repeat(20_000));
    let (st, body) = raw_post(&url, &[json_ct, accept], &big).await;
    assert_eq!(st, 413, "oversized body");
    assert_eq!(body["error"]["code"], -32600, "a JSON-RPC error, not axum's plain text: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("limits.max_message_kib"), "{body}");
    let (st, _) = raw_post(&url, &[("content-type", "text/plain"), accept], ping).await;
    assert_eq!(st, 415);
    let (st, body) = raw_post(&url, &[json_ct, accept, ("origin", "http://evil.example")], ping).await;
    assert_eq!(st, 403, "foreign Origin: {body}");
    let (st, _) = raw_post(&url, &[json_ct, accept, ("host", "evil.example")], ping).await;
    assert_eq!(st, 403, "foreign Host (DNS rebinding)");
    let (st, body) = raw_post(&url, &[json_ct, accept, ("mcp-protocol-version", "1999-01-01")], ping).await;
    assert_eq!(st, 400, "unsupported protocol version: {body}");
    let (st, _) = raw_post(&url, &[json_ct, ("accept", "text/html")], ping).await;
    assert_eq!(st, 406);

    // A path that is not UTF-8, and a duplicated query key: JSON errors in
    // the route's style, not axum's plain text.
    let (st, body) = raw_post(&format!("{}/servers/%ff/mcp", host.base), &[json_ct, accept], ping).await;
    assert_eq!((st, body["error"]["code"].as_i64()), (400, Some(-32600)), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("UTF-8"), "{body}");
    let (st, body) =
        raw_post(&format!("{}/servers/{id}/messages?sessionId=a&sessionId=b", host.base), &[json_ct], ping).await;
    assert_eq!((st, body["error"]["code"].as_i64()), (400, Some(-32600)), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("sessionId"), "{body}");
    let resp = reqwest::get(format!("{}/api/v1/servers/%ff", host.base)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("an API error in JSON");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");

    // Two requests of one batch with one id: the batch is refused, naming
    // the id, and nothing of it runs (no answer is silently lost).
    let s = McpSession::open(&url).await;
    let (st, _, answers) = s
        .post(json!([
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "a"}}},
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "b"}}}
        ]))
        .await;
    assert_eq!(st, 400, "{answers:?}");
    let why = answers[0]["error"]["message"].as_str().unwrap();
    assert!(why.contains("request id 7 appears twice"), "{why}");
    assert_eq!(tool_text(&s.call(7, "echo", json!({"message": "id 7 is free"})).await), "id 7 is free");

    // The host and the server still serve.
    let s = McpSession::open(&url).await;
    assert_eq!(tool_text(&s.call(1, "echo", json!({"message": "still here"})).await), "still here");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_requires_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let host = start_host(|c| c.server.api_token_file = Some(token_file.clone())).await;
    let url = format!("{}/api/v1/servers", host.base);
    let resp = host.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(host.http.get(&url).bearer_auth("wrong").send().await.unwrap().status(), 401);
    assert_eq!(host.http.get(&url).bearer_auth("s3cret").send().await.unwrap().status(), 200);
    assert_eq!(
        host.http.get(format!("{}/healthz", host.base)).send().await.unwrap().status(),
        200,
        "health stays open"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_explains_bad_server_requests() {
    let host = start_host(|c| {
        c.policy.allow_custom_images = false;
        c.limits.max_message_kib = 16;
    })
    .await;
    let resp = host.post_server(json!({"template": "time", "params": {"x": "a".repeat(40_000)}})).await;
    assert_eq!(resp.status(), 413, "an oversized body");
    let body: Value = resp.json().await.expect("a JSON error, not axum's plain text");
    assert_eq!(body["error"]["code"], "invalid_body", "{body}");
    let resp = host.post_server(json!({"server_type": "nope"})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown server type `nope`"), "{body}");
    let resp = host.post_server(json!({"server_typo": "npx"})).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("server_typo"));
    let resp = host.post_server(json!({"template": "no-such-template"})).await;
    assert_eq!(resp.status(), 404);
    let resp = host.http.get(format!("{}/api/v1/servers/none", host.base)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let metrics = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mcpod_plugin_call_seconds"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quick_answers_come_as_json_to_clients_that_prefer_it_and_as_streams_otherwise() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let call = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hi"}}});
    for (accept, expected) in [
        ("application/json, text/event-stream", "application/json"),
        ("text/event-stream, application/json", "text/event-stream"),
    ] {
        let resp = reqwest::Client::new()
            .post(&s.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .header("mcp-session-id", s.id.clone().unwrap())
            .body(call.to_string())
            .send()
            .await
            .unwrap();
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        let body = resp.text().await.unwrap();
        assert!(content_type.starts_with(expected), "Accept: {accept} got {content_type}: {body}");
        let answer: Value = if expected == "application/json" {
            serde_json::from_str(&body).unwrap()
        } else {
            serde_json::from_str(sse_data(&body).last().unwrap()).unwrap()
        };
        assert_eq!(answer["id"], 41, "{body}");
        assert!(tool_text(&answer).contains("hi"), "{body}");
    }
    // Progress before the answer: a stream even for a client that prefers JSON.
    let (_, headers, msgs) = s
        .post(json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {"name": "slow", "arguments": {"steps": 2}, "_meta": {"progressToken": "t"}}}))
        .await;
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(msgs.iter().filter(|m| m["method"] == "notifications/progress").count(), 2, "{msgs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_per_server_idle_time_and_process_rlimits_are_enforced() {
    let host = start_host(|c| {
        c.limits.max_sessions_per_server = 2;
        c.limits.session_idle_secs = 1;
        c.limits.local_memory_mib = Some(4096);
        c.limits.local_cpu_secs = Some(120);
    })
    .await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = mcp_url(&host, &id);
    let a = McpSession::open(&url).await;
    let limits = tool_text(&a.call(1, "limits", json!({})).await);
    assert!(limits.contains(&(4096u64 << 20).to_string()), "RLIMIT_AS from limits.local_memory_mib: {limits}");
    assert!(limits.lines().any(|l| l.starts_with("Max cpu time") && l.contains(" 120 ")), "RLIMIT_CPU: {limits}");

    let _b = McpSession::open(&url).await;
    let initialize = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"third","version":"1"}}}"#;
    let (st, body) = raw_post(
        &url,
        &[("content-type", "application/json"), ("accept", "application/json, text/event-stream")],
        initialize,
    )
    .await;
    assert_eq!(st, 429, "a third session is refused: {body}");
    assert!(body.to_string().contains("limits.max_sessions_per_server"), "the error names the limit: {body}");

    // Idle sessions are closed; their ids are then unknown.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (st, _, _) = a.post(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})).await;
    assert_eq!(st, 404, "an expired session is unknown");
    let c = McpSession::open(&url).await;
    assert_eq!(tool_text(&c.call(1, "echo", json!({"message": "room again"})).await), "room again");
}

/// Memory-aware admission: with less memory available than
/// `limits.min_available_memory_mib`, a start is refused with a 429 and
/// `Retry-After` naming the limit, and nothing runs. (The limit is set above
/// any machine's memory so that the refusal is certain; at the default,
/// 256 MiB, every other test starts its servers.)
#[tokio::test(flavor = "multi_thread")]
async fn a_start_is_refused_with_retry_after_when_the_machine_is_short_of_memory() {
    let host = start_host(|c| c.limits.min_available_memory_mib = 1 << 40).await;
    let resp = host
        .http
        .post(format!("{}/api/v1/servers", host.base))
        .json(&json!({"server_type": "fixture-command", "sharing": "per-session"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert!(body.to_string().contains("limits.min_available_memory_mib = 1099511627776"), "{body}");
    let listed: Value =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([]), "nothing was started");
}

/// The local runtime, reporting the memory available that a test sets.
struct ShortOfMemory {
    local: mcpod::runtime::local::LocalRuntime,
    mib: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait::async_trait]
impl mcpod::runtime::Runtime for ShortOfMemory {
    fn name(&self) -> &'static str {
        self.local.name()
    }
    fn supports(&self, spec: &mcpod::launch::LaunchSpec) -> Result<(), mcpod::runtime::RuntimeError> {
        self.local.supports(spec)
    }
    fn protections(&self, spec: &mcpod::launch::LaunchSpec) -> Vec<mcpod::runtime::Protection> {
        self.local.protections(spec)
    }
    async fn launch(
        &self,
        req: &mcpod::runtime::LaunchRequest,
    ) -> Result<mcpod::runtime::Launched, mcpod::runtime::RuntimeError> {
        self.local.launch(req).await
    }
    async fn stop(&self, instance_id: &str) -> Result<(), mcpod::runtime::RuntimeError> {
        self.local.stop(instance_id).await
    }
    async fn list(&self) -> Result<Vec<mcpod::runtime::InstanceInfo>, mcpod::runtime::RuntimeError> {
        self.local.list().await
    }
    fn available_memory_mib(&self) -> Option<u64> {
        Some(self.mib.load(std::sync::atomic::Ordering::Relaxed))
    }
    async fn ready(&self) -> Result<(), String> {
        self.local.ready().await
    }
    async fn shutdown(&self) {
        self.local.shutdown().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_refused_with_retry_after_when_memory_runs_short_after_its_server_started() {
    let mib = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1 << 20));
    let reported = mib.clone();
    let host = start_host_on(
        |_| {},
        move |config| {
            Some(std::sync::Arc::new(ShortOfMemory { local: mcpod::app::local_runtime(config), mib: reported }))
        },
    )
    .await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "per-session"})).await;
    // The first session takes the instance the start made; each next one
    // needs an instance of its own.
    McpSession::open(&mcp_url(&host, &id)).await;
    mib.store(100, std::sync::atomic::Ordering::Relaxed);
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "late", "version": "1"}}});
    let resp = host
        .http
        .post(mcp_url(&host, &id))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body = resp.text().await.unwrap();
    assert!(body.contains("100 MiB") && body.contains("limits.min_available_memory_mib = 256"), "{body}");
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["instances"], 1, "nothing was launched for it: {status}");
    // Memory back, sessions back.
    mib.store(1 << 20, std::sync::atomic::Ordering::Relaxed);
    McpSession::open(&mcp_url(&host, &id)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_per_session_starts_takes_turns_on_the_launch_slots_and_a_full_line_gets_retry_after() {
    let host = start_host(|c| {
        c.limits.max_concurrent_launches = 1;
        c.limits.max_waiting_launches = 2;
        c.policy.env_allow.push("START_DELAY_MS".into());
    })
    .await;
    // A server slow to start, as a Node or Python server is: each instance
    // logs when it began and when it became ready.
    let id = host
        .start_server(json!({"server_type": "fixture-command", "sharing": "per-session",
            "env": {"START_DELAY_MS": "1500"}}))
        .await;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "burst", "version": "1"}}});
    // Five clients at once: one takes the instance the start made, three
    // start instances (one at a time: one starting, two waiting), the
    // fifth finds the line full.
    let answers = futures_util::future::join_all((0..5).map(|_| {
        host.http
            .post(mcp_url(&host, &id))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize)
            .send()
    }))
    .await;
    let mut admitted = 0;
    let mut refused = Vec::new();
    for answer in answers {
        let answer = answer.expect("an answer");
        match answer.status().as_u16() {
            200 => admitted += 1,
            429 => {
                assert_eq!(answer.headers()["retry-after"], "5");
                refused.push(answer.text().await.unwrap());
            }
            other => panic!("unexpected {other}: {}", answer.text().await.unwrap_or_default()),
        }
    }
    assert_eq!((admitted, refused.len()), (4, 1), "{refused:?}");
    assert!(
        refused[0].contains("limits.max_concurrent_launches = 1")
            && refused[0].contains("limits.max_waiting_launches = 2"),
        "{}",
        refused[0]
    );
    // No two instances were starting at the same time.
    let logs: Vec<String> =
        host.http.get(format!("{}/api/v1/servers/{id}/logs", host.base)).send().await.unwrap().json().await.unwrap();
    let at = |line: &str, what: &str| -> Option<(String, u128)> {
        let rest = line.split("mcp-fixture ").nth(1)?;
        let (pid, t) = rest.split_once(&format!(" {what} at "))?;
        Some((pid.to_string(), t.trim().parse().ok()?))
    };
    let began: std::collections::BTreeMap<String, u128> = logs.iter().filter_map(|l| at(l, "starting")).collect();
    let ready: std::collections::BTreeMap<String, u128> = logs.iter().filter_map(|l| at(l, "ready")).collect();
    assert_eq!(began.len(), 4, "the start's instance and three more: {logs:?}");
    let mut spans: Vec<(u128, u128)> = began.iter().map(|(pid, b)| (*b, ready[pid])).collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "an instance began before the one before it was ready: {spans:?}");
    }
    // Once they are up, a new client is admitted again.
    McpSession::open(&mcp_url(&host, &id)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_hangs_lets_the_next_one_go_after_the_slots_hold() {
    let host = start_host(|c| {
        c.limits.max_concurrent_launches = 1;
        c.policy.env_allow.push("START_DELAY_MS".into());
    })
    .await;
    // A server that takes longer than the slot's hold to be ready, as one
    // waiting on the network or hung until its handshake deadline.
    let slow = {
        let (base, http) = (host.base.clone(), host.http.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/servers"))
                .json(&json!({"server_type": "fixture-command", "sharing": "shared",
                    "env": {"START_DELAY_MS": (mcpod::runtime::launches::MAX_HOLD.as_millis() * 3).to_string()}}))
                .send()
                .await
                .unwrap()
        })
    };
    // Once the slow one holds the only slot, another start waits for it...
    let servers = |http: reqwest::Client, base: String| async move {
        let v: Value = http.get(format!("{base}/api/v1/servers")).send().await.unwrap().json().await.unwrap();
        v
    };
    for _ in 0..100 {
        if servers(host.http.clone(), host.base.clone()).await.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let quick = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    // ...only for the hold: the quick one is up while the slow one still starts.
    let listed = servers(host.http.clone(), host.base.clone()).await;
    let state = |id: &str| listed.as_array().unwrap().iter().find(|s| s["server_id"] == id).unwrap()["status"].clone();
    assert_eq!(state(&quick), "ready", "{listed}");
    let slow_id = listed.as_array().unwrap().iter().find(|s| s["server_id"] != quick.as_str()).unwrap()["server_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state(&slow_id), "starting", "the quick start did not wait for the slow one to be ready: {listed}");
    assert_eq!(slow.await.unwrap().status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_server_is_initialized_again_before_it_serves() {
    // The fixture refuses everything but ping until it is initialized, as
    // the SDKs' servers do: the answer after a crash proves re-initialization.
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let crash = s.call(1, "crash", json!({})).await;
    assert_eq!(crash["error"]["code"], -32001, "{crash}");
    let mut answers = Vec::new();
    for i in 0..100 {
        let r = s.call(10 + i, "echo", json!({"message": "after"})).await;
        answers.push(r.clone());
        if r.get("result").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answers.iter().all(|r| r.pointer("/error/message").and_then(Value::as_str) != Some("Server not initialized")),
        "no request reaches the new process before its initialize: {answers:?}"
    );
    assert_eq!(tool_text(answers.last().unwrap()), "after");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_on_legacy_sse_and_websocket_is_refused_and_the_connection_survives() {
    let host = start_host(|c| c.limits.max_message_kib = 16).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    // A foreign Origin is refused on every transport.
    let resp = host
        .http
        .get(format!("{}/servers/{id}/sse", host.base))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/servers/{id}/ws",
        host.addr
    ))
    .unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let mut evil = req.clone();
    evil.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(evil).await;
    assert!(refused.is_err(), "a foreign Origin gets no WebSocket");

    // A malformed frame gets a JSON-RPC error and the socket goes on; an
    // oversized one closes it with 1009 and the limit's name.
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(ws_json(&mut ws).await["error"]["code"], -32700);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "ws", "version": "1"}}});
    ws.send(Message::Text(init.to_string().into())).await.unwrap();
    assert_eq!(ws_json(&mut ws).await["result"]["serverInfo"]["name"], "mcpod-fixture", "the socket still serves");
    let big = format!(r#"{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"x":"{}"}}}}"#, "a".repeat(20_000));
    ws.send(Message::Text(big.into())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1009);
            assert!(frame.reason.contains("limits.max_message_kib"), "{frame:?}");
        }
        other => panic!("an oversized message closes the socket with 1009: {other:?}"),
    }
    let (mut again, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    again.send(Message::Text(init.to_string().into())).await.unwrap();
    assert_eq!(ws_json(&mut again).await["result"]["serverInfo"]["name"], "mcpod-fixture");
}

/// The next text frame of a WebSocket, as JSON.
async fn ws_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => serde_json::from_str(&t).unwrap(),
        other => panic!("no text frame: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_library_facade_starts_lists_checks_and_stops_without_http() {
    let host = start_host(|_| {}).await;
    let manager = host.app_manager.clone();
    let req: mcpod::servers::StartRequest =
        serde_json::from_value(json!({"server_type": "fixture-command", "sharing": "shared", "env": {"MODE": "lib"}}))
            .unwrap();
    let started = manager.start(req).await.unwrap();
    assert_eq!(started.status, "ready");
    let id = started.server_id.clone();
    assert!(manager.list().iter().any(|s| s.server_id == id));
    assert_eq!(manager.status(&id).unwrap().env["MODE"], "<set>");
    let health = manager.health_check(&id).await.unwrap();
    assert!(health.healthy, "{health:?}");
    assert!(health.instances[0].ping_ms.is_some(), "{health:?}");
    let over_http: Value =
        host.http.get(format!("{}/api/v1/servers/{id}/health", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http["healthy"], true, "{over_http}");

    let stopped = manager.stop(&id).await.unwrap();
    assert_eq!(stopped.status, "stopped");
    let gone = manager.health_check(&id).await.unwrap_err();
    assert!(gone.to_string().contains(&id), "a stopped server is gone: {gone}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_type_that_runs_only_as_a_container_is_refused_by_the_local_runtime_with_the_way_out() {
    let host = start_host(|_| {}).await;
    // `archon` without `local_command` proposes a container and no process.
    let resp = host.post_server(json!({"server_type": "archon"})).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`archon`") && message.contains("local runtime"), "{body}");
    assert!(message.contains("kubernetes runtime"), "says what to do: {body}");
    let listed: Value =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([]), "nothing registered");
}

/// One value of an OpenMetrics text, `None` if the series is absent.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_in_one_process_keep_their_own_metrics() {
    let (a, b) = (start_host(|_| {}).await, start_host(|_| {}).await);
    let id = a.start_server(json!({"server_type": "fixture-command"})).await;
    let scrape = async |host: &TestHost| {
        host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap()
    };
    let (of_a, of_b) = (scrape(&a).await, scrape(&b).await);
    assert_eq!(metric(&of_a, "mcpod_server_starts_total"), Some(1.0), "{of_a}");
    assert_eq!(metric(&of_b, "mcpod_server_starts_total"), Some(0.0), "the other host started nothing: {of_b}");
    assert!(metric(&of_a, &format!("mcpod_sessions{{server=\"{id}\"}}")).is_some(), "{of_a}");
    assert!(metric(&of_b, &format!("mcpod_sessions{{server=\"{id}\"}}")).is_none(), "{of_b}");
    // The plugin calls of the start (validate, launch) were counted by A's plugins only.
    let validate = "mcpod_plugin_call_seconds_count{plugin=\"fixture-command\",function=\"validate\"}";
    assert!(metric(&of_a, validate).is_some_and(|n| n >= 1.0), "{of_a}");
    assert!(metric(&of_b, validate).is_none(), "{of_b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_each_instance_uses_and_each_registry_request_are_counted_and_leave_with_their_instance() {
    let host = start_host(|_| {}).await;
    let scrape = async || host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let session = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
    let held = session.call(1, "attempt", json!({"what": "allocate", "target": "hold", "count": 96})).await;
    assert!(tool_text(&held).starts_with("done"), "{held}");
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    let instance = format!("{id}-1");
    let usage = &status["usage"];
    let memory = usage["instances"][&instance]["memory_bytes"].as_u64().unwrap_or_else(|| panic!("{status}"));
    assert!(memory >= 96 << 20, "the 96 MiB the server holds are resident: {usage}");
    assert_eq!(usage["memory_bytes"].as_u64(), Some(memory), "one instance: {usage}");
    assert!(usage["cpu_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{usage}");
    assert!(usage.get("cpu_cores").is_none(), "a rate is the metrics API's, not /proc's: {usage}");
    let text = scrape().await;
    let series = format!("mcpod_instance_memory_bytes{{server=\"{id}\",instance=\"{instance}\"}}");
    assert!(metric(&text, &series).is_some_and(|m| m >= f64::from(96u32 << 20)), "{text}");
    let cpu = format!("mcpod_instance_cpu_seconds{{server=\"{id}\",instance=\"{instance}\"}}");
    assert!(metric(&text, &cpu).is_some_and(|s| s >= 0.0), "{text}");
    assert!(metric(&text, "mcpod_instances_launched_total").is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(metric(&text, "mcpod_instances_ended_total"), Some(0.0), "{text}");

    // Registry lookups of the packages API, counted by registry and outcome.
    for (path, query) in [("info", "name=is-number"), ("info", "name=mcpod-no-such-package-zzz")] {
        let url = format!("{}/api/v1/packages/{path}?registry=npm&{query}", host.base);
        host.http.get(url).send().await.unwrap();
    }
    let text = scrape().await;
    for outcome in ["ok", "error"] {
        let series =
            format!("mcpod_registry_requests_total{{registry=\"npm\",operation=\"info\",outcome=\"{outcome}\"}}");
        assert_eq!(metric(&text, &series), Some(1.0), "{series}: {text}");
    }

    drop(session);
    host.http.delete(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape().await;
        if metric(&text, "mcpod_instances_ended_total").is_some_and(|n| n >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metric(&text, "mcpod_instances_ended_total").is_some_and(|n| n >= 1.0), "{text}");
    assert!(!text.contains(&format!("instance=\"{instance}\"")), "a stopped instance leaves no series: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_servers_expose_rules_hide_rename_and_describe_its_tools_for_every_client() {
    let host = start_host(|_| {}).await;
    let bad = host
        .post_server(json!({"server_type": "fixture-command", "expose": {"resources": {"rename": {"a": "b"}}}}))
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("resources cannot be renamed"));
    let id = host
        .start_server(json!({"server_type": "fixture-command", "sharing": "shared", "expose": {"tools": {
            "deny": ["crash", "sl*"], "rename": {"echo": "say"}, "descriptions": {"add": "Adds two numbers, carefully"}}}}))
        .await;
    let session = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
    let (_, _, msgs) = session.post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    let tools = msgs[0]["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"say") && names.contains(&"add"), "{names:?}");
    for hidden in ["echo", "crash", "slow", "sleep"] {
        assert!(!names.contains(&hidden), "{hidden} is hidden: {names:?}");
    }
    let add = tools.iter().find(|t| t["name"] == "add").unwrap();
    assert_eq!(add["description"], "Adds two numbers, carefully");
    assert_eq!(tool_text(&session.call(2, "say", json!({"message": "hi"})).await), "hi");
    let refused = session.call(3, "crash", json!({})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("expose.tools"), "{refused}");
    let whoami = session.call(4, "whoami", json!({})).await;
    assert!(tool_text(&whoami).contains("calls"), "the server did not crash: {whoami}");
    // The server's own discovery, as the API shows it, sees what clients see.
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    let listed = status.to_string();
    assert!(listed.contains("\"say\"") && !listed.contains("\"crash\""), "{status}");
}

/// The process id the fixture reports through `whoami`.
async fn fixture_pid(s: &McpSession, id: u64) -> i32 {
    let who = tool_text(&s.call(id, "whoami", json!({})).await);
    who.split_whitespace().next().and_then(|p| p.strip_prefix("pid=")).and_then(|p| p.parse().ok()).expect("pid")
}

async fn server_logs(host: &TestHost, id: &str) -> Vec<String> {
    host.http.get(format!("{}/api/v1/servers/{id}/logs", host.base)).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_gets_a_timeout_error_naming_the_limit_and_a_cancellation_and_serves_again_when_it_resumes() {
    use nix::sys::signal::{Signal, kill};
    let host = start_host(|c| c.limits.request_timeout_secs = 1).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let pid = nix::unistd::Pid::from_raw(fixture_pid(&s, 1).await);
    kill(pid, Signal::SIGSTOP).unwrap();
    let stuck = s.call(2, "echo", json!({"message": "anyone?"})).await;
    kill(pid, Signal::SIGCONT).unwrap();
    assert_eq!(stuck["error"]["code"], -32001, "{stuck}");
    let message = stuck["error"]["message"].as_str().unwrap();
    assert!(message.contains("1 s") && message.contains("limits.request_timeout_secs"), "{message}");
    // Resumed, the server reads the cancellation mcpod sent it, and answers
    // the next call; its late answer to the cancelled one went nowhere.
    let next = s.call(3, "echo", json!({"message": "back"})).await;
    assert_eq!(tool_text(&next), "back", "{next}");
    let mut logs = Vec::new();
    for _ in 0..100 {
        logs = server_logs(&host, &id).await;
        if logs.iter().any(|l| l.contains("cancelled request")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logs.iter().any(|l| l.contains("cancelled request")), "the server was told: {logs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_may_give_its_server_more_time_than_the_default_request_timeout() {
    let host = start_host(|c| c.limits.request_timeout_secs = 1).await;
    // 2.5 s of sleep against a 1 s default: cut off, unless the start gives it more.
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let r = s.call(1, "sleep", json!({"ms": 2500})).await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let patient = host
        .start_server(json!({"server_type": "fixture-command", "sharing": "shared", "request_timeout_secs": 10}))
        .await;
    let s = McpSession::open(&mcp_url(&host, &patient)).await;
    let r = s.call(1, "sleep", json!({"ms": 2500})).await;
    assert_eq!(tool_text(&r), "slept 2500 ms", "{r}");
    let zero = host.post_server(json!({"server_type": "fixture-command", "request_timeout_secs": 0})).await;
    assert_eq!(zero.status(), 400);
    assert!(zero.text().await.unwrap().contains("request_timeout_secs"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_idle_reaper_never_closes_a_session_whose_request_is_still_running() {
    let host = start_host(|c| {
        c.limits.session_idle_secs = 1;
        c.limits.request_timeout_secs = 30;
    })
    .await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    // The session is idle (no new request) for 3 s while its call runs;
    // the reaper sweeps every 100 ms with a 1 s limit.
    let r = s.call(1, "sleep", json!({"ms": 3000})).await;
    assert_eq!(tool_text(&r), "slept 3000 ms", "{r}");
    let next = s.call(2, "echo", json!({"message": "still here"})).await;
    assert_eq!(tool_text(&next), "still here", "the session outlived its idle limit while busy: {next}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sessions_in_flight_budget_is_the_configured_one() {
    use nix::sys::signal::{Signal, kill};
    let host = start_host(|c| c.limits.max_requests_in_flight_per_session = 1).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let pid = fixture_pid(&s, 1).await;
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let caller = s.clone();
    let first = tokio::spawn(async move { caller.call(2, "echo", json!({"message": "first"})).await });
    while host.app_manager.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = s.call(3, "echo", json!({"message": "second"})).await;
    let why = refused["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("limits.max_requests_in_flight_per_session"), "{refused}");
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    assert_eq!(tool_text(&first.await.unwrap()), "first", "the one in flight is answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_answers_calls_in_flight_ends_every_stream_refuses_new_sessions_and_stops_the_servers() {
    use nix::sys::signal::{Signal, kill};
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s = McpSession::open(&mcp_url(&host, &id)).await;
    let pid = fixture_pid(&s, 1).await;
    // A legacy SSE stream, a WebSocket, and a call to a server that hangs.
    let resp = reqwest::Client::new()
        .get(format!("{}/servers/{id}/sse", host.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut sse = resp.bytes_stream();
    let ws_url = format!("ws://{}/servers/{id}/ws", host.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url).unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let caller = s.clone();
    let in_flight = tokio::spawn(async move { caller.call(2, "echo", json!({"message": "never answered"})).await });
    while host.app_manager.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = tokio::time::timeout(Duration::from_secs(30), host.app_manager.drain(Duration::from_secs(1))).await;
    assert!(drained.is_ok(), "the drain is bounded");

    let answer = in_flight.await.unwrap();
    assert!(answer["error"]["message"].as_str().unwrap().contains("shutting down"), "{answer}");
    let mut rest = Vec::new();
    while let Some(Ok(chunk)) =
        tokio::time::timeout(Duration::from_secs(10), sse.next()).await.expect("the SSE stream ends")
    {
        rest.extend_from_slice(&chunk);
    }
    use tokio_tungstenite::tungstenite::Message as Ws;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("the WebSocket closes") {
            Some(Ok(Ws::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001), "going away");
    let ready = host.http.get(format!("{}/readyz", host.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while draining");
    let late = host
        .http
        .post(mcp_url(&host, &id))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "late", "version": "1"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 503);
    assert_eq!(late.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    let body: Value = late.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("shutting down"), "{body}");
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "the stopped server process {pid} was killed");
}

#[test]
fn a_drain_after_the_front_is_gone_ends_sessions_whose_last_owner_is_the_instance() {
    // Once the HTTP front is dropped, the instance's sink is the last owner
    // of a client session; ending it drops the session, which detaches
    // itself from the same instance. That must not deadlock the drain.
    // The host runs on a thread of its own, so a deadlock (which stops
    // every worker, and so every timer) fails the test instead of hanging it.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let host = start_host(|_| {}).await;
            let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
            let s = McpSession::open(&mcp_url(&host, &id)).await;
            fixture_pid(&s, 1).await;
            drop(s);
            host.serving.abort();
            host.app_manager.drain(Duration::from_secs(1)).await;
        });
        let _ = done.send(());
    });
    assert!(finished.recv_timeout(Duration::from_secs(60)).is_ok(), "the drain deadlocked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_program_fails_the_start_at_once_with_what_to_install_and_is_never_retried() {
    let host = start_host(|c| {
        for p in c.plugins.iter_mut().filter(|p| p.name == "fixture-command") {
            p.config.insert("program".into(), toml::Value::String("/nonexistent/mcp-server-x".into()));
        }
        c.limits.max_restarts = 5;
    })
    .await;
    let resp = host.post_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    let why = body["detail"].as_str().unwrap_or_default();
    assert!(why.contains("/nonexistent/mcp-server-x") && why.contains("not installed"), "{why}");
    // Retried, it would have failed five times more (backoff 50 ms) first.
    assert_eq!(body["restarts"], 0, "a missing program is not retried: {body}");
}

/// Reads `stream` until the host closes it; what it answered, if anything.
/// Bounded: a host that never closes fails the test after 20 s.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the host kept the connection open; it answered {:?}", String::from_utf8_lossy(&got));
    String::from_utf8_lossy(&got).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_silent_idle_and_trickling_connections_are_closed_after_the_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let host = start_host(|c| c.limits.read_timeout_secs = 1).await;
    // Silent: connects and sends nothing.
    let mut silent = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    // Slowloris: headers begun, never finished.
    let mut slow = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1").await.unwrap();
    // Idle keep-alive: one request answered, then nothing.
    let mut idle = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    for (what, stream) in [("silent", &mut silent), ("slow", &mut slow)] {
        let answered = until_closed(stream).await;
        assert!(!answered.contains("200 OK"), "{what}: {answered}");
    }
    let answered = until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "the idle one was served first: {answered}");
    // A body that trickles: headers whole, then a part of the body only.
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let mut trickle = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let head = format!(
        "POST /servers/{id}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    let answered = until_closed(&mut trickle).await;
    assert!(answered.starts_with("HTTP/1.1 408") && answered.contains("limits.read_timeout_secs"), "{answered}");
    // The host still serves.
    assert_eq!(reqwest::get(format!("{}/healthz", host.base)).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_more_than_max_connections_are_served_at_once_and_a_freed_slot_serves_the_next() {
    let host = start_host(|c| {
        c.limits.max_connections = 2;
        c.limits.read_timeout_secs = 120;
    })
    .await;
    let held: Vec<tokio::net::TcpStream> = vec![
        tokio::net::TcpStream::connect(host.addr).await.unwrap(),
        tokio::net::TcpStream::connect(host.addr).await.unwrap(),
    ];
    // Both slots taken: a third connection waits in the backlog, unserved.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let waited = client.get(format!("{}/healthz", host.base)).timeout(std::time::Duration::from_secs(1)).send().await;
    assert!(waited.is_err(), "a third connection was served: {waited:?}");
    drop(held);
    // A slot frees: the next one is served (bounded: 20 s).
    let served = client.get(format!("{}/metrics", host.base)).timeout(std::time::Duration::from_secs(20)).send().await;
    let text = served.expect("served once a slot freed").text().await.unwrap();
    let open = metric(&text, "mcpod_connections_open").expect("the gauge is exported");
    assert!((1.0..=2.0).contains(&open), "{open} connections open, at most 2: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_beyond_i64_and_fractional_ids_come_back_byte_for_byte() {
    let host = start_host(|_| {}).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = mcp_url(&host, &id);
    let s = McpSession::open(&url).await;
    let session = s.id.clone().expect("a session id");
    for id in ["1.50", "1e3", "18446744073709551616", "-0"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"m"}}}}}}"#
        );
        let resp = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains(&format!(r#""id":{id},"#)) || text.contains(&format!(r#""id":{id}}}"#)), "{id}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_sse_stream_nobody_reads_is_ended_at_its_byte_budget_not_buffered_without_end() {
    let (host, id) = host_with_big_listings().await;
    let (mut stream, text) = open_legacy_sse(&host, &id).await;
    let endpoint = sse_data(&text)[0].clone();
    let post = |body: String| {
        reqwest::Client::new()
            .post(format!("{}{endpoint}", host.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    post(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}).to_string()).await.unwrap();
    // 48 answers of ~1 MiB each (small requests, so that the session's
    // in-flight budget lets them all through) for a client that reads none
    // of them (yet).
    for i in 1..=48 {
        let list = json!({"jsonrpc": "2.0", "id": i, "method": "tools/list"});
        if post(list.to_string()).await.unwrap().status() == 404 {
            break; // the stream was ended, and its session with it
        }
    }
    wait_until_passed_on_or_stopped(&host, &id, 49).await;
    // Now read: mcpod held at most its budget (16 MiB) beyond what the
    // sockets hold, then ended the stream.
    let mut received = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Ok(Some(Ok(chunk))) => received += chunk.len(),
            Ok(_) => break,
            Err(_) => panic!("the unread stream was not ended ({} MiB read so far)", received >> 20),
        }
    }
    assert!(received < 48 << 20, "{} MiB reached the client: the stream was not cut at its budget", received >> 20);
    assert!(received > 1 << 20, "some answers were delivered before the budget was reached");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_client_that_does_not_read_is_closed_at_its_byte_budget_with_1008() {
    use tokio_tungstenite::tungstenite::Message as Ws;
    let (host, id) = host_with_big_listings().await;
    let ws_url = format!("{}/servers/{id}/ws", host.base.replacen("http", "ws", 1));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url).unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Ws::Text(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}).to_string().into()))
        .await
        .unwrap();
    // 48 answers of ~1 MiB each, and no read until they are all asked for.
    for i in 1..=48 {
        let list = json!({"jsonrpc": "2.0", "id": i, "method": "tools/list"});
        if ws.send(Ws::Text(list.to_string().into())).await.is_err() {
            break;
        }
    }
    wait_until_passed_on_or_stopped(&host, &id, 49).await;
    let (mut received, mut close) = (0usize, None);
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Ws::Text(t)))) => received += t.len(),
            Ok(Some(Ok(Ws::Close(frame)))) => {
                close = frame;
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => break,
            Err(_) => panic!("the unread connection was not closed ({} MiB read so far)", received >> 20),
        }
    }
    let close = close.expect("mcpod closes with a frame that says why");
    assert_eq!(u16::from(close.code), 1008, "{close:?}");
    assert!(close.reason.contains("does not read"), "{close:?}");
    assert!(received < 48 << 20, "{} MiB reached the client: it was not cut at its budget", received >> 20);
}
