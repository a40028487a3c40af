//! A 2026-07-28 server behind handshake-era sessions. The server has no
//! `initialize` and no session; the mux and its clients still speak the
//! handshake. This upstream stands between them: it answers the mux's
//! `initialize` from `server/discover`, puts the revision's `_meta` and
//! routing headers on every request, answers the methods the revision
//! removed (`ping`, `logging/setLevel`, `resources/subscribe`) itself, turns
//! an `input_required` result into requests to the asking client and
//! retries with its answers, and carries `subscriptions/listen` events back
//! as plain notifications.

use super::stdio::StdioExchange;
use super::streamable_http::{PostError, error_body, exchange};
use super::{Deliver, Link, UpstreamError, next_message, refuse};
use crate::jsonrpc::{Id, Kind, Message, code, raw};
use crate::mcp_headers::PROTOCOL_VERSION as VERSION_HEADER;
use crate::rev_2026_07_28::META_RELATED;
use crate::rev_2026_07_28::{
    HANDSHAKE_VERSIONS, META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_SERVER_INFO, META_SUBSCRIPTION,
    META_VERSION, MODERN_VERSIONS, header_value, routed_name,
};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The revision spoken to the server.
const VERSION: &str = MODERN_VERSIONS[0];

/// How many `input_required` rounds one request may take.
const MAX_ROUNDS: usize = 8;

/// How long the client has to answer one round of input requests.
const INPUT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the `server/discover` probe of a Streamable HTTP server may
/// take before the server is taken for a handshake-era one.
pub const DISCOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// How a 2026-07-28 server is reached: one HTTP exchange per request, or
/// its stdio, with requests matched to their answers by id.
#[derive(Clone)]
pub enum Wire {
    /// Streamable HTTP.
    Http {
        /// The link's client.
        http: reqwest::Client,
        /// Where the server is.
        link: Arc<Link>,
    },
    /// The server's stdin and stdout.
    Stdio(Arc<StdioExchange>),
}

impl Wire {
    fn server(&self) -> &str {
        match self {
            Wire::Http { link, .. } => &link.server,
            Wire::Stdio(x) => x.server(),
        }
    }

    /// Sends one request and waits for its answer; the events of a stream
    /// it opens go to `along`. Dropping the future withdraws the request.
    /// Over HTTP it carries the routing headers and `mirrored` (its
    /// arguments' `Mcp-Param-*` headers).
    async fn round_trip(
        &self,
        req: &Message,
        along: &Deliver,
        mirrored: &[(String, String)],
    ) -> Result<Message, PostError> {
        match self {
            Wire::Http { http, link } => round_trip(http, link, req, along, mirrored).await,
            Wire::Stdio(x) => x
                .round_trip(req.clone(), along.clone())
                .await
                .ok_or_else(|| PostError::Unreachable("the server closed its stdout".into())),
        }
    }

    /// Sends a notification.
    async fn notify(&self, msg: &Message) -> Result<(), PostError> {
        match self {
            Wire::Http { http, link } => {
                let mut headers = routing_headers(msg);
                headers.remove(crate::mcp_headers::NAME);
                exchange(http, link, headers, msg, &noop()).await.map(|_| ())
            }
            Wire::Stdio(x) => {
                x.send(msg.clone());
                Ok(())
            }
        }
    }
}

/// Asks the server what it is with `server/discover`, as a client of both
/// eras does first (on stdio, the spec's backward-compatibility probe).
/// `Some` with the result if it speaks 2026-07-28; `None` for a
/// handshake-era server (whatever it answered, or silence for `wait`),
/// which is then initialized as before. `init_params` are the params of
/// the `initialize` mcpod would send.
pub async fn discover(wire: &Wire, init_params: &serde_json::value::RawValue, wait: Duration) -> Option<Value> {
    let envelope = Envelope::from_params(&serde_json::from_str(init_params.get()).unwrap_or(Value::Null));
    let probe = envelope.request(Id::Str("mcpod-discover".into()), "server/discover", json!({}));
    let answer = tokio::time::timeout(wait, wire.round_trip(&probe, &noop(), &[])).await.ok()?.ok()?;
    let result: Value = serde_json::from_str(answer.result.as_ref()?.get()).ok()?;
    let speaks = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(VERSION)));
    speaks.then_some(result)
}

/// Serves a 2026-07-28 server on stdio found by [`discover`]: waits for
/// the mux's `initialize`, then as [`run`].
pub async fn run_stdio(
    exchange: Arc<StdioExchange>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    deliver: Deliver,
    discovered: Value,
) -> UpstreamError {
    loop {
        let Some(msg) = rx.recv().await else { return UpstreamError::Closed };
        if msg.method() == "initialize" {
            return run(Wire::Stdio(exchange), rx, deliver, msg, discovered).await;
        }
        refuse(&msg, "the server is not initialized yet", &deliver);
    }
}

/// Runs the link to a 2026-07-28 server until it is lost; returns why.
pub async fn run(
    wire: Wire,
    mut rx: mpsc::UnboundedReceiver<Message>,
    deliver: Deliver,
    initialize: Message,
    discovered: Value,
) -> UpstreamError {
    tracing::info!(server = %wire.server(), "the server speaks MCP {VERSION}; serving it to every session");
    let (lost_tx, mut lost) = mpsc::channel::<String>(1);
    let up = Arc::new(Upstream {
        wire,
        mirrored: Mutex::new(HashMap::new()),
        deliver: deliver.clone(),
        envelope: Mutex::new(Envelope::from_initialize(&initialize)),
        waiting: Mutex::new(HashMap::new()),
        calls: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
        lost: lost_tx,
    });
    if let Some(id) = initialize.id.value() {
        deliver(Message::response(id.clone(), raw(&initialize_result(&initialize, &discovered))));
    }
    let capabilities = discovered.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    let mut subscriptions = BTreeSet::new();
    let mut listen: Option<tokio::task::JoinHandle<()>> = None;
    let reason = loop {
        let msg = match next_message(&mut rx, &mut lost).await {
            Ok(m) => m,
            Err(why) => break why,
        };
        let ok = |msg: &Message| {
            if let Some(id) = msg.id.value() {
                deliver(Message::response(id.clone(), raw(&json!({}))));
            }
        };
        match (msg.kind(), msg.method()) {
            (Kind::Notification, "notifications/initialized") => {
                listen = Some(up.clone().listen(&capabilities, &subscriptions, listen.take()));
            }
            // Removed by the revision; answered here.
            (Kind::Request, "ping") => ok(&msg),
            (Kind::Request, "logging/setLevel") => {
                let level = msg.params_value().get("level").and_then(Value::as_str).map(str::to_string);
                if let Ok(mut e) = up.envelope.lock() {
                    e.log_level = level;
                }
                ok(&msg);
            }
            (Kind::Request, method @ ("resources/subscribe" | "resources/unsubscribe")) => {
                if let Some(uri) = msg.params_value().get("uri").and_then(Value::as_str) {
                    if method == "resources/subscribe" {
                        subscriptions.insert(uri.to_string());
                    } else {
                        subscriptions.remove(uri);
                    }
                }
                listen = Some(up.clone().listen(&capabilities, &subscriptions, listen.take()));
                ok(&msg);
            }
            (Kind::Request, _) => {
                let id = msg.id.value().cloned();
                let task = tokio::spawn(up.clone().call(msg)).abort_handle();
                if let (Some(id), Ok(mut calls)) = (id, up.calls.lock()) {
                    calls.retain(|_, t| !t.is_finished());
                    calls.insert(id, task);
                }
            }
            (Kind::Response, _) => up.answered(msg),
            // A cancelled call is stopped here: dropping its POST is how a
            // 2026-07-28 server hears of it, and its questions are withdrawn.
            (Kind::Notification, "notifications/cancelled") => {
                let id = msg.params_value().get("requestId").and_then(|v| serde_json::from_value::<Id>(v.clone()).ok());
                let task = id.clone().and_then(|id| up.calls.lock().ok()?.remove(&id));
                match task {
                    Some(task) => {
                        task.abort();
                        // Ends the request's stream; the client ignores it.
                        deliver(Message::error_response(id, code::INTERNAL_ERROR, "the request was cancelled"));
                    }
                    None => {
                        tokio::spawn(up.clone().notify(msg));
                    }
                }
            }
            (Kind::Notification, _) => {
                tokio::spawn(up.clone().notify(msg));
            }
        }
    };
    if let Some(task) = listen {
        task.abort();
    }
    if let Ok(calls) = up.calls.lock() {
        calls.values().for_each(|t| t.abort());
    }
    reason
}

/// What every request to the server carries in `_meta`, from the
/// `initialize` mcpod sent on the mux's behalf.
#[derive(Clone)]
struct Envelope {
    capabilities: Value,
    client_info: Value,
    log_level: Option<String>,
}

impl Envelope {
    fn from_initialize(msg: &Message) -> Envelope {
        Envelope::from_params(&msg.params_value())
    }

    fn from_params(params: &Value) -> Envelope {
        Envelope {
            capabilities: params.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            client_info: params.get("clientInfo").cloned().unwrap_or_else(|| json!({"name": "mcpod", "version": "0"})),
            log_level: None,
        }
    }

    /// `params` with the envelope merged into its `_meta`. What a
    /// 2026-07-28 client's request declares itself (its capabilities, log
    /// level, name) is kept: the server answers that client, not mcpod.
    fn wrap(&self, mut params: Value) -> Value {
        if !params.is_object() {
            params = json!({});
        }
        let mut meta = params.get("_meta").and_then(Value::as_object).cloned().unwrap_or_default();
        meta.insert(META_VERSION.into(), json!(VERSION));
        meta.entry(META_CAPABILITIES).or_insert_with(|| self.capabilities.clone());
        meta.entry(META_CLIENT_INFO).or_insert_with(|| self.client_info.clone());
        if let Some(level) = &self.log_level {
            meta.entry(META_LOG_LEVEL).or_insert_with(|| json!(level));
        }
        params["_meta"] = Value::Object(meta);
        params
    }

    fn request(&self, id: Id, method: &str, params: Value) -> Message {
        Message::request(id, method, Some(raw(&self.wrap(params))))
    }
}

/// The routing headers of a request to the server.
fn routing_headers(msg: &Message) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(VERSION_HEADER, HeaderValue::from_static(VERSION));
    if let Ok(v) = HeaderValue::from_str(msg.method()) {
        h.insert(crate::mcp_headers::METHOD, v);
    }
    if let Some(v) = routed_name(msg).and_then(|name| HeaderValue::from_str(&header_value(&name)).ok()) {
        h.insert(crate::mcp_headers::NAME, v);
    }
    h
}

fn noop() -> Deliver {
    Arc::new(|_| {})
}

/// Sends one request and waits for its response; notifications that come
/// with it go to `along`. A JSON-RPC error under a non-2xx status is the
/// response too.
async fn round_trip(
    http: &reqwest::Client,
    link: &Link,
    req: &Message,
    along: &Deliver,
    mirrored: &[(String, String)],
) -> Result<Message, PostError> {
    let (tx, mut answer) = oneshot::channel();
    let slot = Mutex::new(Some(tx));
    let id = req.id.value().cloned();
    let along = along.clone();
    let deliver: Deliver = Arc::new(move |m: Message| {
        if m.kind() == Kind::Response && m.id.value() == id.as_ref() {
            if let Some(tx) = slot.lock().ok().and_then(|mut s| s.take()) {
                let _ = tx.send(m);
            }
        } else {
            along(m);
        }
    });
    let mut headers = routing_headers(req);
    for (name, value) in mirrored {
        if let (Ok(n), Ok(v)) = (reqwest::header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            headers.insert(n, v);
        }
    }
    let posted = exchange(http, link, headers, req, &deliver);
    // The answer ends the exchange even if the server keeps its stream open.
    tokio::select! {
        Ok(m) = &mut answer => Ok(m),
        result = posted => match result {
            Ok(_) => answer.try_recv().map_err(|_| PostError::Codec("the server's answer held no response".into())),
            Err(PostError::Status(status, text)) => error_body(&text).ok_or(PostError::Status(status, text)),
            Err(e) => Err(e),
        },
    }
}

/// The `initialize` result the mux gets for a 2026-07-28 server.
fn initialize_result(initialize: &Message, discovered: &Value) -> Value {
    let asked = initialize.params_value().get("protocolVersion").and_then(Value::as_str).map(str::to_string);
    let version = asked.filter(|v| HANDSHAKE_VERSIONS.contains(&v.as_str())).unwrap_or(HANDSHAKE_VERSIONS[0].into());
    let info = discovered
        .pointer(&format!("/_meta/{}", META_SERVER_INFO.replace('/', "~1")))
        .cloned()
        .unwrap_or_else(|| json!({"name": "unknown", "version": "0"}));
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": discovered.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "serverInfo": info,
    });
    if let Some(instructions) = discovered.get("instructions") {
        result["instructions"] = instructions.clone();
    }
    result
}

/// A result as a handshake-era client expects it: without `resultType`.
fn for_old_client(mut msg: Message, id: Id) -> Message {
    msg.id = crate::jsonrpc::IdField::Value(id);
    if let Some(result) = &msg.result
        && result.get().contains("\"resultType\"")
        && let Ok(mut v) = serde_json::from_str::<Value>(result.get())
        && let Some(obj) = v.as_object_mut()
    {
        obj.remove("resultType");
        msg.result = Some(raw(&v));
    }
    msg
}

/// The input requests of an `input_required` result, and its state.
fn input_required(msg: &Message) -> Option<(Map<String, Value>, Option<String>)> {
    let result: Value = serde_json::from_str(msg.result.as_ref()?.get()).ok()?;
    if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return None;
    }
    let requests = result.get("inputRequests").and_then(Value::as_object).cloned().unwrap_or_default();
    let state = result.get("requestState").and_then(Value::as_str).map(str::to_string);
    Some((requests, state))
}

/// The shared state of one link to a 2026-07-28 server.
struct Upstream {
    wire: Wire,
    /// Each tool's arguments mirrored into headers (`x-mcp-header`), as
    /// the server's last `tools/list` said: `tool → [(argument, header)]`.
    mirrored: Mutex<HashMap<String, Vec<(String, String)>>>,
    deliver: Deliver,
    envelope: Mutex<Envelope>,
    /// Input requests sent to clients, by the id mcpod gave them.
    waiting: Mutex<HashMap<Id, oneshot::Sender<Message>>>,
    /// The calls in flight, by the mux's id, to be stopped on cancellation.
    calls: Mutex<HashMap<Id, tokio::task::AbortHandle>>,
    next: AtomicU64,
    lost: mpsc::Sender<String>,
}

impl Upstream {
    fn envelope(&self) -> Envelope {
        self.envelope.lock().map(|e| e.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The `Mcp-Param-*` headers a request carries: a `tools/call`'s
    /// mirrored arguments (SEP-2243).
    fn mirrored_headers(&self, method: &str, params: &Value) -> Vec<(String, String)> {
        if method != "tools/call" {
            return Vec::new();
        }
        let Some(tool) = params.get("name").and_then(Value::as_str) else { return Vec::new() };
        let declared = self.mirrored.lock().ok().and_then(|m| m.get(tool).cloned()).unwrap_or_default();
        crate::rev_2026_07_28::param_header_values(&declared, params.get("arguments").unwrap_or(&Value::Null))
    }

    /// Keeps what a `tools/list` answer says each tool mirrors.
    fn learn_mirrored(&self, answer: &Message) {
        let Some(result) = answer.result.as_ref() else { return };
        let Ok(v) = serde_json::from_str::<Value>(result.get()) else { return };
        let Some(tools) = v.get("tools").and_then(Value::as_array) else { return };
        if let Ok(mut m) = self.mirrored.lock() {
            for tool in tools {
                if let Some(name) = tool.get("name").and_then(Value::as_str) {
                    let declared = crate::rev_2026_07_28::param_headers(tool);
                    if declared.is_empty() {
                        m.remove(name);
                    } else {
                        m.insert(name.to_string(), declared);
                    }
                }
            }
        }
    }

    fn fresh_id(&self, what: &str) -> Id {
        Id::Str(format!("mcpod-{what}-{}", self.next.fetch_add(1, Ordering::Relaxed)))
    }

    /// One request of a session, with as many `input_required` rounds as
    /// the server asks for; its response goes back under its own id.
    async fn call(self: Arc<Self>, msg: Message) {
        let id = msg.id.value().cloned();
        self.rounds(msg).await;
        if let (Some(id), Ok(mut calls)) = (id, self.calls.lock()) {
            calls.remove(&id);
        }
    }

    async fn rounds(&self, msg: Message) {
        let Some(id) = msg.id.value().cloned() else { return };
        let mut params = msg.params_value();
        if params.is_null() {
            params = json!({});
        }
        if !params.is_object() {
            let why = "Invalid params: MCP params are an object";
            return (self.deliver)(Message::error_response(Some(id), code::INVALID_PARAMS, why));
        }
        for round in 0..MAX_ROUNDS {
            let upstream_id = if round == 0 { id.clone() } else { self.fresh_id("retry") };
            let req = self.envelope().request(upstream_id, msg.method(), params.clone());
            let mirrored = self.mirrored_headers(msg.method(), &params);
            let answer = match self.wire.round_trip(&req, &self.deliver, &mirrored).await {
                Ok(a) => a,
                Err(e) => return self.failed(&msg, e),
            };
            if msg.method() == "tools/list" {
                self.learn_mirrored(&answer);
            }
            let Some((requests, state)) = input_required(&answer) else {
                return (self.deliver)(for_old_client(answer, id));
            };
            match self.ask(&id, requests).await {
                Ok(responses) => {
                    params["inputResponses"] = Value::Object(responses);
                    match state {
                        Some(s) => params["requestState"] = json!(s),
                        None => {
                            if let Some(p) = params.as_object_mut() {
                                p.remove("requestState");
                            }
                        }
                    }
                }
                Err(why) => return (self.deliver)(Message::error_response(Some(id), code::INTERNAL_ERROR, &why)),
            }
        }
        let why = format!("the server asked for input more than {MAX_ROUNDS} times for one request");
        (self.deliver)(Message::error_response(Some(id), code::INTERNAL_ERROR, &why));
    }

    fn failed(&self, msg: &Message, e: PostError) {
        let why = match e {
            PostError::Unreachable(why) => {
                let _ = self.lost.try_send(why.clone());
                why
            }
            PostError::Status(status, text) => {
                format!("the server answered HTTP {status}: {}", text.chars().take(200).collect::<String>())
            }
            PostError::Codec(why) => why,
        };
        refuse(msg, &why, &self.deliver);
    }

    /// Puts each input request to the client that made request `related`
    /// and collects the answers, keyed as the server keyed the requests.
    /// Whatever way it ends (answered, refused, timed out, or the call
    /// cancelled), no question is left open: see [`Asked`].
    async fn ask(&self, related: &Id, requests: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let mut asked = Asked { up: self, open: Vec::new() };
        let mut pending = Vec::new();
        for (key, request) in requests {
            let Some(method) = request.get("method").and_then(Value::as_str).map(str::to_string) else {
                return Err(format!("the server's input request {key:?} names no method"));
            };
            let mut params = request.get("params").cloned().unwrap_or_else(|| json!({}));
            if let Some(p) = params.as_object_mut() {
                let meta = p.entry("_meta").or_insert_with(|| json!({}));
                if let Some(m) = meta.as_object_mut() {
                    m.insert(META_RELATED.into(), serde_json::to_value(related).unwrap_or(Value::Null));
                }
            }
            let id = crate::rev_2026_07_28::input_request_id(self.next.fetch_add(1, Ordering::Relaxed), &key);
            let (tx, rx) = oneshot::channel();
            if let Ok(mut w) = self.waiting.lock() {
                w.insert(id.clone(), tx);
            }
            asked.open.push(id.clone());
            (self.deliver)(Message::request(id.clone(), &method, Some(raw(&params))));
            pending.push((key, method, id, rx));
        }
        let deadline = tokio::time::Instant::now() + INPUT_TIMEOUT;
        let mut responses = Map::new();
        for (key, method, id, rx) in pending {
            let answer = match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(a)) => a,
                Ok(Err(_)) => return Err(format!("the client went away before answering {method}")),
                Err(_) => {
                    return Err(format!("the client did not answer {method} within {} s", INPUT_TIMEOUT.as_secs()));
                }
            };
            asked.open.retain(|o| o != &id);
            match (&answer.result, &answer.error) {
                (Some(result), _) => {
                    responses.insert(key, serde_json::from_str(result.get()).unwrap_or(Value::Null));
                }
                (None, Some(error)) => return Err(format!("the client refused {method}: {}", error.get())),
                (None, None) => return Err(format!("the client's answer to {method} is empty")),
            }
        }
        Ok(responses)
    }

    /// A client's answer to an input request.
    fn answered(&self, msg: Message) {
        let Some(id) = msg.id.value() else { return };
        let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => tracing::debug!(server = %self.wire.server(), %id, "an answer nobody waits for; dropped"),
        }
    }

    /// A client notification (a cancellation, a roots change): passed on.
    async fn notify(self: Arc<Self>, msg: Message) {
        if let Err(PostError::Unreachable(why)) = self.wire.notify(&msg).await {
            let _ = self.lost.try_send(why);
        }
    }

    /// (Re)opens the `subscriptions/listen` stream for what the server can
    /// announce and the resources the sessions subscribed to; its events go
    /// to the mux as the notifications a handshake-era server would send.
    fn listen(
        self: Arc<Self>,
        capabilities: &Value,
        subscriptions: &BTreeSet<String>,
        previous: Option<tokio::task::JoinHandle<()>>,
    ) -> tokio::task::JoinHandle<()> {
        if let Some(task) = previous {
            task.abort();
        }
        let changed = |kind: &str| capabilities.pointer(&format!("/{kind}/listChanged")) == Some(&json!(true));
        let filter = json!({
            "toolsListChanged": changed("tools"),
            "promptsListChanged": changed("prompts"),
            "resourcesListChanged": changed("resources"),
            "resourceSubscriptions": subscriptions.iter().collect::<Vec<_>>(),
        });
        let wanted =
            filter.as_object().is_some_and(|f| f.values().any(|v| v == &json!(true))) || !subscriptions.is_empty();
        tokio::spawn(async move {
            if !wanted {
                return;
            }
            let deliver = self.deliver.clone();
            let events: Deliver = Arc::new(move |mut m: Message| {
                if m.method() == "notifications/subscriptions/acknowledged" {
                    return;
                }
                if let Some(p) = &m.params
                    && p.get().contains(META_SUBSCRIPTION)
                {
                    let mut v = m.params_value();
                    if let Some(meta) = v.get_mut("_meta").and_then(Value::as_object_mut) {
                        meta.remove(META_SUBSCRIPTION);
                    }
                    m.params = Some(raw(&v));
                }
                deliver(m);
            });
            let mut failures = 0u64;
            loop {
                let req = self.envelope().request(
                    self.fresh_id("listen"),
                    "subscriptions/listen",
                    json!({"notifications": filter}),
                );
                let opened = std::time::Instant::now();
                let _ = self.wire.round_trip(&req, &events, &[]).await;
                // A stream that lasted is reopened at once; one that keeps
                // failing is given up after a while (the calls still work).
                failures = if opened.elapsed() > Duration::from_secs(30) { 0 } else { failures + 1 };
                if failures > 20 {
                    tracing::warn!(server = %self.wire.server(), "subscriptions/listen keeps failing; list changes will not be passed on");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250 * failures.min(8))).await;
            }
        })
    }
}

/// The input requests of one round still unanswered. Dropped, it forgets
/// them and withdraws them from their client (`notifications/cancelled`),
/// so that no dialog stays open for a call that no longer waits.
struct Asked<'a> {
    up: &'a Upstream,
    open: Vec<Id>,
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.up.waiting.lock() {
            for id in &self.open {
                w.remove(id);
            }
        }
        for id in self.open.drain(..) {
            let params = json!({"requestId": id, "reason": "the request that asked no longer waits for the answer"});
            (self.up.deliver)(Message::notification("notifications/cancelled", Some(raw(&params))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_rides_in_meta_beside_what_the_request_had() {
        let init = Message::request(
            Id::Num(0),
            "initialize",
            Some(raw(
                &json!({"protocolVersion": "2025-06-18", "capabilities": {"sampling": {}}, "clientInfo": {"name": "mcpod", "version": "1"}}),
            )),
        );
        let mut envelope = Envelope::from_initialize(&init);
        envelope.log_level = Some("debug".into());
        let req = envelope.request(Id::Num(7), "tools/call", json!({"name": "echo", "_meta": {"progressToken": "p"}}));
        let meta = &req.params_value()["_meta"];
        assert_eq!(meta["progressToken"], "p");
        assert_eq!(meta[META_VERSION], VERSION);
        assert_eq!(meta[META_CAPABILITIES], json!({"sampling": {}}));
        assert_eq!(meta[META_CLIENT_INFO]["name"], "mcpod");
        assert_eq!(meta[META_LOG_LEVEL], "debug");
        let h = routing_headers(&req);
        assert_eq!(
            (h["mcp-protocol-version"].to_str().ok(), h["mcp-method"].to_str().ok()),
            (Some(VERSION), Some("tools/call"))
        );
        assert_eq!(h["mcp-name"], "echo");
        let odd = envelope.request(Id::Num(8), "resources/read", json!({"uri": "file:///tmp/é"}));
        assert!(routing_headers(&odd)["mcp-name"].to_str().unwrap().starts_with("=?base64?"), "non-ASCII is encoded");
        let discovered = json!({"supportedVersions": [VERSION], "capabilities": {"tools": {}},
            "_meta": {META_SERVER_INFO: {"name": "srv", "version": "2"}}, "instructions": "hi"});
        let result = initialize_result(&init, &discovered);
        assert_eq!(result["protocolVersion"], "2025-06-18", "the version the mux asked for");
        assert_eq!((result["serverInfo"]["name"].clone(), result["instructions"].clone()), (json!("srv"), json!("hi")));
    }

    #[test]
    fn input_required_is_read_and_result_type_dropped_for_old_clients() {
        let asked = Message::response(
            Id::Num(3),
            raw(&json!({"resultType": "input_required", "requestState": "s1",
                "inputRequests": {"llm": {"method": "sampling/createMessage", "params": {"maxTokens": 5}}}})),
        );
        let (requests, state) = input_required(&asked).unwrap();
        assert_eq!(
            (requests["llm"]["method"].as_str(), state.as_deref()),
            (Some("sampling/createMessage"), Some("s1"))
        );
        let done =
            Message::response(Id::Str("mcpod-retry-1".into()), raw(&json!({"resultType": "complete", "content": []})));
        assert!(input_required(&done).is_none());
        let old = for_old_client(done, Id::Num(3));
        assert_eq!(old.id.value(), Some(&Id::Num(3)), "answered under the client's id, not the retry's");
        assert_eq!(old.result.map(|r| serde_json::from_str::<Value>(r.get()).unwrap()), Some(json!({"content": []})));
    }
}
