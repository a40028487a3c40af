//! The mux's routing of messages from clients: requests get upstream ids
//! unique on the connection, progress tokens and cancellations are mapped,
//! answers to the server's requests go back to it.

use super::*;

impl Mux {
    /// Routes a message from client `session`.
    pub fn from_client(&mut self, session: SessionId, msg: Message) -> Vec<Action> {
        if !self.sessions.contains_key(&session) {
            return Vec::new();
        }
        match msg.kind() {
            Kind::Request => self.client_request(session, msg),
            Kind::Notification => self.client_notification(session, msg),
            Kind::Response => self.client_response(session, msg),
        }
    }

    fn client_request(&mut self, session: SessionId, mut msg: Message) -> Vec<Action> {
        let Some(client_id) = msg.id.value().cloned() else { return Vec::new() };
        if msg.method() == "initialize" {
            return match &self.handshake {
                Handshake::Ready(result) => vec![Action::ToClient {
                    session,
                    msg: Message::response(client_id.clone(), result.clone()),
                    related: Some(client_id),
                }],
                _ => {
                    self.waiting_init.push((session, client_id));
                    Vec::new()
                }
            };
        }
        if !self.is_ready() {
            if self.queued.len() >= MAX_QUEUED {
                return vec![Action::ToClient {
                    session,
                    msg: Message::error_response(
                        Some(client_id.clone()),
                        code::SERVER_UNAVAILABLE,
                        "the MCP server is starting and too many requests are waiting; retry shortly",
                    ),
                    related: Some(client_id),
                }];
            }
            self.queued.push_back((session, msg));
            return Vec::new();
        }
        if (msg.method() == "resources/subscribe" || msg.method() == "resources/unsubscribe")
            && let Some(uri) = msg.params_value().get("uri").and_then(Value::as_str)
            && let Some(s) = self.sessions.get_mut(&session)
        {
            s.subscriptions.retain(|u| u != uri);
            if msg.method() == "resources/subscribe" {
                s.subscriptions.push(uri.to_string());
            }
        }
        let policy = match (&self.governed, self.sessions.get(&session).and_then(|s| s.who.as_ref())) {
            (Some(g), Some(who)) => access::check_call(g, who, &msg).err(),
            _ => None,
        };
        let exposed = match (&policy, &self.expose) {
            (None, Some(rules)) => expose::check_call(rules, &mut msg).err(),
            _ => None,
        };
        if let Some(why) = policy.clone().or(exposed) {
            let mut out = Vec::with_capacity(2);
            if let Some(audit) = Audited::of(&msg) {
                let mut call = audit.denied(&client_id);
                call.policy = policy;
                out.push(Action::Audit { session, call });
            }
            out.push(Action::ToClient {
                session,
                msg: Message::error_response(Some(client_id.clone()), code::INVALID_PARAMS, &why),
                related: Some(client_id),
            });
            return out;
        }
        let bytes = msg.params.as_ref().map_or(0, |p| p.get().len());
        if let Some(why) = self.over_in_flight(session, bytes) {
            return vec![Action::ToClient {
                session,
                msg: Message::error_response(Some(client_id.clone()), code::LIMIT_EXCEEDED, &why),
                related: Some(client_id),
            }];
        }
        let upstream = self.next_id();
        let audit = Audited::of(&msg);
        let listing = self.filtered_listing(msg.method());
        let token = self.map_progress_token(session, upstream, &mut msg);
        msg.id = IdField::Value(Id::Num(upstream));
        let sent = std::time::Instant::now();
        let pending = Pending { session: Some(session), client_id, token, sent, heard: sent, audit, listing, bytes };
        self.pending.insert(upstream, pending);
        vec![Action::ToServer(msg)]
    }

    /// Why one more request of `bytes` from `session` would pass its
    /// in-flight budget ([`Mux::with_in_flight_budget`]), if it would.
    fn over_in_flight(&self, session: SessionId, bytes: usize) -> Option<String> {
        let (max_requests, max_bytes) = self.in_flight_budget;
        let (n, held) = self
            .pending
            .values()
            .filter(|p| p.session == Some(session))
            .fold((0, 0), |(n, held), p| (n + 1, held + p.bytes));
        if n >= max_requests {
            return Some(format!(
                "this session has {n} requests in flight, the most one may (limits.max_requests_in_flight_per_session); \
                 wait for their answers before sending more"
            ));
        }
        if n > 0 && held + bytes > max_bytes {
            return Some(format!(
                "this session's requests in flight carry {held} bytes, and this one {bytes} more than the {max_bytes} one \
                 session may (limits.max_in_flight_kib_per_session); wait for their answers before sending more"
            ));
        }
        None
    }

    /// Replaces the request's progress token with one unique upstream.
    fn map_progress_token(&mut self, session: SessionId, upstream: i64, msg: &mut Message) -> Option<String> {
        let params = msg.params.as_ref()?;
        if !params.get().contains("progressToken") {
            return None;
        }
        let mut value: Value = serde_json::from_str(params.get()).ok()?;
        let meta = value.get_mut("_meta")?.as_object_mut()?;
        let original = meta.get("progressToken")?.clone();
        let token = format!("mcpod-{upstream}");
        meta.insert("progressToken".to_string(), Value::String(token.clone()));
        msg.params = Some(raw(&value));
        self.progress.insert(token.clone(), (session, original));
        Some(token)
    }

    fn client_notification(&mut self, session: SessionId, mut msg: Message) -> Vec<Action> {
        match msg.method() {
            "notifications/initialized" => Vec::new(),
            "notifications/cancelled" => {
                let params = msg.params_value();
                let Some(request_id) =
                    params.get("requestId").and_then(|v| serde_json::from_value::<Id>(v.clone()).ok())
                else {
                    return Vec::new();
                };
                let upstream = self
                    .pending
                    .iter()
                    .find(|(_, p)| p.session == Some(session) && p.client_id == request_id)
                    .map(|(id, _)| *id);
                let Some(upstream) = upstream else { return Vec::new() };
                let mut params = params;
                params["requestId"] = Value::from(upstream);
                msg.params = Some(raw(&params));
                vec![Action::ToServer(msg)]
            }
            _ if !self.is_ready() => Vec::new(),
            _ => vec![Action::ToServer(msg)],
        }
    }

    fn client_response(&mut self, session: SessionId, msg: Message) -> Vec<Action> {
        let Some(id) = msg.id.value() else { return Vec::new() };
        match self.server_requests.get(id) {
            Some(s) if *s == session => {
                self.server_requests.remove(id);
                vec![Action::ToServer(msg)]
            }
            _ => Vec::new(),
        }
    }
}
