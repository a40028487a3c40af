//! The two routing state machines, driven by scripts of client and server
//! messages: nothing panics, no answer reaches a session that did not ask
//! (or reaches it twice), and a server's request reaches only a session
//! that could have caused it.

use crate::script::Script;
use mcpod::bridge::federation::{self, Federation};
use mcpod::bridge::mux::{Action, Mux, SessionId};
use mcpod::jsonrpc::{Id, Kind, Message};
use mcpod::rev_2026_07_28::META_RELATED;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Whether to print each step (`MCPOD_FUZZ_TRACE=1`), to read a failing input.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("MCPOD_FUZZ_TRACE").is_some())
}

fn message(v: Value) -> Message {
    Message::parse(&v.to_string()).unwrap_or_else(|e| panic!("the script built an invalid message {v}: {e:?}"))
}

/// A client request id: a few numbers and strings, so that they repeat.
fn client_id(s: &mut Script) -> Value {
    match s.byte() % 6 {
        0 => json!("a"),
        1 => json!(""),
        2 => json!(1.5),
        n => json!(i64::from(n) - 3),
    }
}

const CLIENT_METHODS: [&str; 10] = [
    "tools/call",
    "tools/list",
    "ping",
    "initialize",
    "resources/read",
    "resources/subscribe",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "resources/list",
];

/// A client request of `s`'s choosing, maybe with a progress token.
fn client_request(s: &mut Script, id: &Value) -> Message {
    let method = *s.pick(&CLIENT_METHODS);
    let mut params = json!({"name": s.pick(&["echo", "a__b", "time__now", ""]), "uri": "test://x", "arguments": {}});
    if s.one_in(2) {
        params["_meta"] = json!({"progressToken": client_id(s)});
    }
    message(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
}

/// A server-to-client request, maybe naming the upstream request it serves.
fn server_request(s: &mut Script, related: Option<Value>) -> Message {
    let method = *s.pick(&["sampling/createMessage", "elicitation/create", "roots/list", "ping"]);
    let mut params = json!({});
    if let Some(r) = related {
        params["_meta"] = json!({ META_RELATED: r });
    }
    message(json!({"jsonrpc": "2.0", "id": format!("s{}", s.byte()), "method": method, "params": params}))
}

/// What each session asked and has not been answered yet (a multiset).
#[derive(Default)]
struct Ledger {
    open: BTreeSet<SessionId>,
    deaf: BTreeSet<SessionId>,
    asked: BTreeMap<SessionId, BTreeMap<String, usize>>,
    /// Server requests delivered to each session, to answer later.
    inbox: Vec<(SessionId, Value)>,
    /// Upstream request ids seen going to the server, to answer later.
    upstream: Vec<Value>,
}

impl Ledger {
    fn ask(&mut self, session: SessionId, id: &Id) {
        *self.asked.entry(session).or_default().entry(id.to_string()).or_default() += 1;
    }

    /// An open session, or now and then one that is not.
    fn pick(&self, s: &mut Script) -> SessionId {
        let n = usize::from(s.byte());
        self.open.iter().nth(n % (self.open.len() + 1)).copied().unwrap_or(SessionId::MAX)
    }

    fn busy(&self, session: SessionId) -> bool {
        self.asked.get(&session).is_some_and(|m| m.values().any(|n| *n > 0))
    }

    /// Checks one action of the mux against what the sessions asked.
    fn check(&mut self, action: Action, hinted: bool) {
        match action {
            Action::ToClient { session, msg, .. } => {
                assert!(self.open.contains(&session), "a message reached session {session}, which is closed");
                match msg.kind() {
                    Kind::Response => {
                        let id = msg.id.value().unwrap_or_else(|| panic!("an answer without an id: {}", msg.to_text()));
                        let left = self.asked.entry(session).or_default().entry(id.to_string()).or_default();
                        assert!(*left > 0, "session {session} got an answer to {id}, which it did not ask (or twice)");
                        *left -= 1;
                    }
                    Kind::Request if self.deaf.contains(&session) => {
                        // Shown (the server is refused at once), never to be
                        // answered, and only to a session it can be for.
                        assert!(
                            self.busy(session),
                            "a server request was shown to session {session}, which cannot answer and has nothing in flight"
                        );
                    }
                    Kind::Request => {
                        if hinted {
                            assert!(
                                self.busy(session),
                                "a server request naming a request went to session \
                                {session}, which has nothing in flight"
                            );
                        } else {
                            let hearing: Vec<SessionId> =
                                self.open.iter().copied().filter(|s| !self.deaf.contains(s)).collect();
                            let busy: Vec<SessionId> = hearing.iter().copied().filter(|s| self.busy(*s)).collect();
                            assert!(
                                self.busy(session) || (busy.is_empty() && hearing == [session]),
                                "a server request went to session {session}, which has nothing in flight, while \
                                 sessions {busy:?} of {hearing:?} do"
                            );
                        }
                        if let Ok(v) = serde_json::from_str::<Value>(&msg.to_text()) {
                            self.inbox.push((session, v["id"].clone()));
                        }
                    }
                    Kind::Notification => {}
                }
            }
            Action::ToServer(msg) => {
                if msg.kind() == Kind::Request
                    && let Ok(v) = serde_json::from_str::<Value>(&msg.to_text())
                {
                    self.upstream.push(v["id"].clone());
                }
            }
            _ => {}
        }
    }
}

/// Fuzz target `mux_sequence`: sessions open and close, clients send
/// requests, notifications and answers, the server answers, asks, notifies,
/// dies and restarts, and time passes.
pub fn mux_sequence(data: &[u8]) {
    let mut s = Script::new(data);
    let mut mux = Mux::new();
    let mut ledger = Ledger::default();
    let start = Instant::now();
    let mut steps = 0;
    while !s.is_done() && steps < 256 {
        steps += 1;
        let mut hinted = false;
        let op = s.byte() % 12;
        if tracing() {
            eprintln!("op {op}; open {:?}, asked {:?}", ledger.open, ledger.asked);
        }
        let actions = match op {
            0 | 1 => {
                let deaf = s.one_in(4);
                let id = if deaf { mux.open_deaf_session() } else { mux.open_session() };
                ledger.open.insert(id);
                if deaf {
                    ledger.deaf.insert(id);
                }
                Vec::new()
            }
            2 => {
                let session = ledger.pick(&mut s);
                let out = mux.close_session(session);
                ledger.open.remove(&session);
                ledger.asked.remove(&session);
                out
            }
            3 | 4 => {
                let session = ledger.pick(&mut s);
                let id = client_id(&mut s);
                let msg = client_request(&mut s, &id);
                if ledger.open.contains(&session)
                    && let Some(id) = msg.id.value()
                {
                    ledger.ask(session, id);
                }
                mux.from_client(session, msg)
            }
            5 => {
                let session = ledger.pick(&mut s);
                let msg = match ledger.inbox.iter().position(|(s2, _)| *s2 == session) {
                    Some(i) if s.one_in(2) => {
                        let (_, id) = ledger.inbox.remove(i);
                        message(json!({"jsonrpc": "2.0", "id": id, "result": {"action": "accept"}}))
                    }
                    _ => message(json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": client_id(&mut s)}})),
                };
                mux.from_client(session, msg)
            }
            6 | 7 => {
                let id = match ledger.upstream.len() {
                    0 => json!(i64::from(s.byte())),
                    n => ledger.upstream[usize::from(s.byte()) % n].clone(),
                };
                let result = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "f", "version": "1"}, "content": []});
                let msg = match s.byte() % 3 {
                    0 => message(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -1, "message": "no"}})),
                    _ => message(json!({"jsonrpc": "2.0", "id": id, "result": result})),
                };
                mux.from_server(msg)
            }
            8 => {
                let related = match (s.byte() % 2, ledger.upstream.len()) {
                    (0, n) if n > 0 => Some(ledger.upstream[usize::from(s.byte()) % n].clone()),
                    _ => None,
                };
                hinted = related.is_some();
                mux.from_server(server_request(&mut s, related))
            }
            9 => {
                let token = client_id(&mut s);
                let method = *s.pick(&[
                    "notifications/progress",
                    "notifications/message",
                    "notifications/tools/list_changed",
                    "notifications/resources/updated",
                    "notifications/cancelled",
                ]);
                let params = json!({"progressToken": format!("{}", token), "requestId": token, "uri": "test://x",
                    "progress": 1, "level": "info", "data": "x"});
                mux.from_server(message(json!({"jsonrpc": "2.0", "method": method, "params": params})))
            }
            10 => match s.byte() % 3 {
                0 => mux.begin_handshake(None),
                1 => mux.server_lost("fuzz"),
                _ => mux.expire(start + Duration::from_secs(u64::from(s.byte())), Duration::from_secs(30)),
            },
            _ => match Message::parse(&s.text()) {
                Ok(msg) => mux.from_server(msg),
                Err(_) => Vec::new(),
            },
        };
        for action in actions {
            if tracing() {
                eprintln!("  {action:?}");
            }
            ledger.check(action, hinted);
        }
    }
}

/// Fuzz target `federation_sequence`: one virtual session with three
/// members; the client lists, calls and reads, members answer, ask, notify,
/// go down and come back. Nothing panics and every answer the client gets
/// is to a request it made, once.
pub fn federation_sequence(data: &[u8]) {
    let mut s = Script::new(data);
    let mut f = Federation::new("team", s.one_in(2), Default::default());
    let init = |caps: Value| {
        Some(
            json!({"protocolVersion": "2025-11-25", "capabilities": caps, "serverInfo": {"name": "m", "version": "1"}}),
        )
    };
    let all = json!({"tools": {"listChanged": true}, "resources": {"subscribe": true}, "prompts": {}});
    for key in ["time", "", "everything"] {
        let _ = f.add_member(key, None, init(all.clone()), false);
    }
    let mut asked: BTreeMap<String, usize> = BTreeMap::new();
    let mut to_members: Vec<(federation::MemberId, Value)> = Vec::new();
    let mut steps = 0;
    while !s.is_done() && steps < 256 {
        steps += 1;
        let actions = match s.byte() % 8 {
            0..=2 => {
                let id = client_id(&mut s);
                let mut msg = client_request(&mut s, &id);
                if s.one_in(3) {
                    msg = message(json!({"jsonrpc": "2.0", "id": id, "method": "tools/list",
                        "params": {"cursor": s.pick(&["after:time__a", "after:", "x"])}}));
                }
                if let Some(id) = msg.id.value() {
                    *asked.entry(id.to_string()).or_default() += 1;
                }
                f.from_client(msg)
            }
            3 | 4 => {
                let Some((member, id)) =
                    (!to_members.is_empty()).then(|| to_members.remove(usize::from(s.byte()) % to_members.len()))
                else {
                    continue;
                };
                let names: Vec<Value> =
                    (0..s.byte() % 4).map(|i| json!({"name": format!("t{i}"), "uri": format!("test://{i}")})).collect();
                let result = json!({"tools": names, "resources": names, "prompts": names, "resourceTemplates": [],
                    "content": [], "nextCursor": if s.one_in(4) { json!("more") } else { Value::Null }});
                let msg = match s.byte() % 4 {
                    0 => message(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32002, "message": "no"}})),
                    _ => message(json!({"jsonrpc": "2.0", "id": id, "result": result})),
                };
                f.from_member(member, msg, None)
            }
            5 => {
                let member = usize::from(s.byte() % 3);
                let related = (s.one_in(2)).then(|| match client_id(&mut s) {
                    Value::String(t) => Id::Str(t),
                    v => Id::Num(v.as_i64().unwrap_or(0)),
                });
                let msg = match s.byte() % 2 {
                    0 => server_request(&mut s, None),
                    _ => message(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})),
                };
                f.from_member(member, msg, related)
            }
            6 => {
                let member = usize::from(s.byte() % 3);
                f.set_alive(member, s.one_in(2))
            }
            _ => {
                let id = client_id(&mut s);
                message_answer(&mut f, &id)
            }
        };
        for action in actions {
            match action {
                federation::Action::ToMember { member, msg } => {
                    if msg.kind() == Kind::Request
                        && let Ok(v) = serde_json::from_str::<Value>(&msg.to_text())
                    {
                        to_members.push((member, v["id"].clone()));
                    }
                }
                federation::Action::ToClient { msg, .. } => {
                    if msg.kind() == Kind::Response {
                        let id = msg.id.value().unwrap_or_else(|| panic!("an answer without an id: {}", msg.to_text()));
                        let left = asked.entry(id.to_string()).or_default();
                        assert!(*left > 0, "the client got an answer to {id}, which it did not ask (or twice)");
                        *left -= 1;
                    }
                }
            }
        }
    }
}

/// The client answers a server request it may or may not have been sent.
fn message_answer(f: &mut Federation, id: &Value) -> Vec<federation::Action> {
    f.from_client(message(json!({"jsonrpc": "2.0", "id": id, "result": {"action": "decline"}})))
}
