//! Streamable HTTP at MCP 2026-07-28 on `/servers/{id}/mcp`, beside the
//! handshake era: each request stands alone (no session), carries its
//! version and client capabilities in `_meta`, and is checked against its
//! routing headers. A handshake-era server behind it is initialized by
//! mcpod; `server/discover` is answered from that; a request the server
//! makes of the client mid-call (sampling, elicitation, roots) becomes an
//! `input_required` result, and the client's retry completes it.

use super::parked::Parked;
pub use super::parked::ParkedRequests;
use super::sse::Routed;
use super::{FrontError, FrontState, json_response, prefers_json};
use crate::frame::Frame;
use crate::identity::Principal;
use crate::jsonrpc::{Id, Kind, Message, code, raw};
use crate::rev_2026_07_28::{self as rules, Refusal, RequestMeta, RoutingHeaders};
use crate::servers::{ClientSession, Target};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

fn refuse(r: &Refusal, id: Option<Id>) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, r.to_message(id).to_text())
}

fn routing_headers(headers: &HeaderMap) -> RoutingHeaders<'_> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    RoutingHeaders {
        version: get(crate::mcp_headers::PROTOCOL_VERSION),
        method: get(crate::mcp_headers::METHOD),
        name: get(crate::mcp_headers::NAME),
    }
}

/// One 2026-07-28 POST holding `msg`.
pub async fn post(
    st: &FrontState,
    target: &Target,
    who: &Arc<Principal>,
    headers: &HeaderMap,
    msg: Message,
    sse_ok: bool,
) -> Response {
    let server_id = target.server.as_str();
    // Parked requests belong to the instance they wait on.
    let place = target.to_string();
    let id = msg.id.value().cloned();
    let meta = match rules::request_meta(&msg) {
        Ok(m) => m,
        Err(r) => return refuse(&r, id),
    };
    if let Err(r) = rules::check_headers(&msg, &meta, &routing_headers(headers)) {
        return refuse(&r, id);
    }
    if !rules::MODERN_VERSIONS.contains(&meta.version.as_str()) {
        return refuse(&rules::unsupported_version(&meta.version), id);
    }
    if msg.method() == "tools/call"
        && let Err(r) = check_mirrored_arguments(st, server_id, &msg, headers)
    {
        return refuse(&r, id);
    }
    let Some(id) = id.filter(|_| msg.kind() == Kind::Request) else {
        // Notifications (and stray responses) have nothing to answer;
        // cancelling is closing the request's stream.
        return StatusCode::ACCEPTED.into_response();
    };
    let method = msg.method().to_string();
    if rules::REMOVED_METHODS.contains(&method.as_str()) {
        let r = Refusal::new(
            404,
            code::METHOD_NOT_FOUND,
            format!("Method not found: {method} is not part of MCP 2026-07-28"),
        );
        return refuse(&r, Some(id));
    }
    if method == "server/discover" {
        return match st.manager.stateless_initialize(target).await {
            Ok(init) => {
                json_response(StatusCode::OK, Message::response(id, raw(&rules::discover_result(&init))).to_text())
            }
            Err(e) => FrontError::from(e).into_response(),
        };
    }
    if method == "subscriptions/listen" {
        return listen(st, target, who, id, &msg, sse_ok).await;
    }
    let (responses, state) = rules::retry_fields(&msg);
    // A request the server may ask for input waits its turn (see
    // `Manager::interactive_turn`); the others run side by side. A retry
    // that brings input resumes its parked request, which kept the turn.
    let may_be_asked = rules::INTERACTIVE_METHODS.contains(&method.as_str())
        && ["sampling", "elicitation", "roots"].iter().any(|c| meta.can(c));
    let (session, turn) = match state {
        Some(state) => {
            let Some(mut parked) = st.parked.take(&state, &place, &method) else {
                let r = Refusal::new(
                    400,
                    code::INVALID_PARAMS,
                    "Invalid params: requestState is unknown, expired or for another request; send the request again without it",
                );
                return refuse(&r, Some(id));
            };
            // A request that waited unheard takes the instance's turn again
            // before its server hears the answers (and perhaps asks more);
            // if another request keeps it too long, this one stays parked.
            if parked.turn.is_none() && may_be_asked {
                match st.manager.interactive_turn(target).await {
                    Ok(t) => parked.turn = Some(t),
                    Err(e) => {
                        st.parked.park(state, parked);
                        return FrontError::from(e).into_response();
                    }
                }
            }
            parked.session.set_waiting(false);
            let responses = responses.unwrap_or_default();
            for (key, server_request) in &parked.asked {
                let answer = match responses.get(key) {
                    Some(result) => Message::response(server_request.clone(), raw(result)),
                    None => Message::error_response(
                        Some(server_request.clone()),
                        code::INVALID_PARAMS,
                        &format!("the client gave no input response for {key}"),
                    ),
                };
                parked.session.send(answer);
            }
            (parked.session, parked.turn)
        }
        // Input responses without a state answer nothing mcpod asked: a
        // 2026-07-28 server gets them (it may take them, as the revision
        // allows), a handshake-era one does not; the request runs anew.
        None => {
            let turn = if may_be_asked {
                match st.manager.interactive_turn(target).await {
                    Ok(t) => Some(t),
                    Err(e) => return FrontError::from(e).into_response(),
                }
            } else {
                None
            };
            match st.manager.open_stateless(target, turn.is_some(), who.clone()).await {
                Ok(s) => {
                    s.send(rules::for_server(&msg, s.speaks_modern()));
                    (s, turn)
                }
                Err(e) => return FrontError::from(e).into_response(),
            }
        }
    };
    let server_info = st.manager.server_info(server_id);
    let uri = if method == "resources/read" { msg.params_value().get("uri").cloned() } else { None };
    let (tx, mut rx) = mpsc::channel::<Routed>(256);
    let call = Call { st: st.clone(), place, method, id, meta, server_info, uri };
    tokio::spawn(call.drive(session, tx, turn));
    // An answer that comes first goes back as JSON to clients that prefer
    // it; one preceded by progress, a log or a question streams.
    let mut first = Vec::new();
    if prefers_json(headers) || !sse_ok {
        match rx.recv().await {
            Some(Routed { frame, answer: true, .. }) => return final_json(frame.data),
            Some(Routed { frame, .. }) => first.push(frame),
            None => {
                return json_response(
                    StatusCode::BAD_GATEWAY,
                    Message::error_response(None, code::SERVER_UNAVAILABLE, "the server went away").to_text(),
                );
            }
        }
        if !sse_ok {
            // A JSON-only client gets just the answer.
            while let Some(routed) = rx.recv().await {
                if routed.answer {
                    return final_json(routed.frame.data);
                }
            }
            return json_response(
                StatusCode::BAD_GATEWAY,
                Message::error_response(None, code::SERVER_UNAVAILABLE, "the server went away").to_text(),
            );
        }
    }
    super::sse::response(first, rx)
}

/// A `tools/call`'s `Mcp-Param-*` headers checked against its arguments,
/// for the tool's `x-mcp-header` declarations as the server listed them
/// (SEP-2243): the server behind mcpod never sees the client's headers.
fn check_mirrored_arguments(
    st: &FrontState,
    server_id: &str,
    msg: &Message,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let params = msg.params_value();
    let Some(tool) = params.get("name").and_then(Value::as_str) else { return Ok(()) };
    let declared = st.manager.mirrored_arguments(server_id, tool);
    if declared.is_empty() {
        return Ok(());
    }
    let args = params.get("arguments").cloned().unwrap_or(Value::Null);
    rules::check_param_headers(&declared, &args, |name| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    })
}

/// The answer as a JSON response, under the status its error asks for
/// ([`rules::status_of_error`]).
fn final_json(text: String) -> Response {
    let status = error_status(&text);
    json_response(status, text)
}

/// The HTTP status of an answer: its error's, else 200.
fn error_status(text: &str) -> StatusCode {
    let code = Message::parse(text)
        .ok()
        .and_then(|m| m.error)
        .and_then(|e| serde_json::from_str::<Value>(e.get()).ok()?["code"].as_i64());
    code.and_then(|c| StatusCode::from_u16(rules::status_of_error(c)).ok()).unwrap_or(StatusCode::OK)
}

/// `subscriptions/listen`: a stream of the server's list changes and
/// resource updates, as the filter asks and the server can, each tagged with
/// the listen request's id; the server's subscriptions end with the stream.
async fn listen(
    st: &FrontState,
    target: &Target,
    who: &Arc<Principal>,
    id: Id,
    msg: &Message,
    sse_ok: bool,
) -> Response {
    if !sse_ok {
        let r = Refusal::new(
            406,
            code::INVALID_REQUEST,
            "Not Acceptable: subscriptions/listen answers with a stream; accept text/event-stream",
        );
        return refuse(&r, Some(id));
    }
    let init = match st.manager.stateless_initialize(target).await {
        Ok(i) => i,
        Err(e) => return FrontError::from(e).into_response(),
    };
    let asked = msg.params_value().get("notifications").cloned().unwrap_or_else(|| serde_json::json!({}));
    let honored = rules::honored_filter(&asked, init.get("capabilities").unwrap_or(&Value::Null));
    let mut session = match st.manager.open_stateless(target, false, who.clone()).await {
        Ok(s) => s,
        Err(e) => return FrontError::from(e).into_response(),
    };
    let uris: Vec<Value> = honored.get("resourceSubscriptions").and_then(Value::as_array).cloned().unwrap_or_default();
    for (n, uri) in uris.iter().enumerate() {
        let params = raw(&serde_json::json!({ "uri": uri }));
        session.send(Message::request(Id::Str(format!("listen-subscribe-{n}")), "resources/subscribe", Some(params)));
    }
    let ack = Message::notification(
        "notifications/subscriptions/acknowledged",
        Some(raw(&serde_json::json!({ "notifications": honored }))),
    );
    let first = vec![Frame::message(rules::tag_subscription(&ack, &id).to_text())];
    let (tx, rx) = mpsc::channel::<Frame>(256);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                delivery = session.recv() => {
                    let Some(d) = delivery else { return };
                    if d.msg.kind() == Kind::Notification && rules::wanted_on_listen(&d.msg, &honored) {
                        let tagged = rules::tag_subscription(&d.msg, &id);
                        if tx.send(Frame::message(tagged.to_text())).await.is_err() {
                            break;
                        }
                    }
                }
                _ = tx.closed() => break,
            }
        }
        // The client closed the stream: the server's subscriptions end with it.
        for (n, uri) in uris.iter().enumerate() {
            let params = raw(&serde_json::json!({ "uri": uri }));
            session.send(Message::request(
                Id::Str(format!("listen-unsubscribe-{n}")),
                "resources/unsubscribe",
                Some(params),
            ));
        }
    });
    super::sse::response(first, rx)
}

/// One client request on its way through the server.
struct Call {
    st: FrontState,
    place: String,
    method: String,
    /// The id of this attempt (a retry has a new one).
    id: Id,
    meta: RequestMeta,
    server_info: Option<Value>,
    /// The `uri` of a `resources/read`, for its not-found error.
    uri: Option<Value>,
}

impl Call {
    /// Moves the server's messages for this request to `tx` until it is
    /// answered, or parks it when the server asks the client for input.
    /// The last one is the answer ([`Routed::answer`]).
    async fn drive(self, mut session: ClientSession, tx: mpsc::Sender<Routed>, turn: Option<crate::servers::Turn>) {
        // The turn is given up when the request is answered; a parked
        // request keeps it, so that no other session can hear the server's
        // requests while this one waits for its client's input.
        let mut turn = turn;
        let frame = |msg: &Message, last: bool| Routed::new(Frame::message(msg.to_text()), last);
        let mut asked: Vec<(String, Id)> = Vec::new();
        let mut input: Vec<(String, Message)> = Vec::new();
        loop {
            // Server requests that come together are asked for together.
            let next = if input.is_empty() {
                session.recv().await
            } else {
                tokio::time::timeout(Duration::from_millis(5), session.recv()).await.unwrap_or_default()
            };
            let Some(delivery) = next else {
                if !input.is_empty() {
                    return self.park(session, asked, input, &tx, turn.take()).await;
                }
                let gone = Message::error_response(
                    Some(self.id.clone()),
                    code::SERVER_UNAVAILABLE,
                    "the server went away; retry the request",
                );
                let _ = tx.send(frame(&gone, true)).await;
                return;
            };
            let mut msg = delivery.msg;
            match msg.kind() {
                Kind::Response => {
                    msg.id = crate::jsonrpc::IdField::Value(self.id.clone());
                    if let Some(result) = &msg.result {
                        msg.result = Some(rules::stamp_result(&self.method, result, self.server_info.as_ref()));
                    }
                    if let Some(error) = &msg.error {
                        msg.error = Some(rules::stamp_error(&self.method, error, self.uri.as_ref()));
                    }
                    let _ = tx.send(frame(&msg, true)).await;
                    return;
                }
                Kind::Request => {
                    let Some(server_id) = msg.id.value().cloned() else { continue };
                    let interactive = rules::INTERACTIVE_METHODS.contains(&self.method.as_str());
                    match rules::capability_for(msg.method()) {
                        Some(cap) if self.meta.can(cap) && interactive => {
                            // The server's own key when it named one (a
                            // 2026-07-28 server), else one of mcpod's.
                            let key = match rules::input_key(&server_id) {
                                Some(k) if !asked.iter().any(|(a, _)| a == k) => k.to_string(),
                                _ => format!("{cap}-{}", asked.len() + 1),
                            };
                            asked.push((key.clone(), server_id));
                            input.push((key, msg));
                        }
                        Some(cap) if interactive && (cap != "roots" || rules::input_key(&server_id).is_some()) => {
                            // The request needs what its client did not
                            // declare: the client hears -32021 now, the
                            // server that its question cannot be asked (the
                            // session's end withdraws the request). Roots are
                            // asked unprompted too (after the handshake, on a
                            // change) by handshake-era servers: only one a
                            // 2026-07-28 server ties to this request fails it.
                            let why = format!("the client did not declare the `{cap}` capability");
                            session.send(Message::error_response(Some(server_id), code::METHOD_NOT_FOUND, &why));
                            let refusal =
                                rules::missing_capability(cap, msg.method()).to_message(Some(self.id.clone()));
                            let _ = tx.send(frame(&refusal, true)).await;
                            return;
                        }
                        _ => {
                            let why = format!(
                                "the client of this request did not declare the capability {} needs (or cannot answer during {})",
                                msg.method(),
                                self.method
                            );
                            session.send(Message::error_response(Some(server_id), code::METHOD_NOT_FOUND, &why));
                        }
                    }
                }
                Kind::Notification => {
                    let wanted = match msg.method() {
                        "notifications/progress" => true,
                        "notifications/message" => self.meta.log_level.is_some(),
                        _ => false,
                    };
                    if wanted && tx.send(frame(&msg, false)).await.is_err() {
                        // The client closed the stream: that cancels the request.
                        return;
                    }
                }
            }
        }
    }

    /// Answers the client with `input_required` and parks the request
    /// until its retry.
    async fn park(
        self,
        session: ClientSession,
        asked: Vec<(String, Id)>,
        input: Vec<(String, Message)>,
        tx: &mpsc::Sender<Routed>,
        turn: Option<crate::servers::Turn>,
    ) {
        let state = crate::servers::new_token();
        // While its client thinks, the request gives up the instance's turn
        // and is asked nothing new, so that other clients' requests run.
        let turn = if session.set_waiting(true) { None } else { turn };
        let requests: Vec<(String, &Message)> = input.iter().map(|(k, m)| (k.clone(), m)).collect();
        let result = rules::input_required(&requests, &state);
        let answer = Message::response(self.id.clone(), raw(&result));
        self.st.parked.park(
            state,
            Parked { place: self.place, method: self.method, session, asked, since: Instant::now(), turn },
        );
        let answer = Frame::message(answer.to_text());
        let _ = tx.send(Routed::new(answer, true)).await;
    }
}
