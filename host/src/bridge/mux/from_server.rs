//! The mux's routing of messages from the server: responses go back to the
//! session that asked with its own id, the server's requests to the session
//! they belong to, notifications to subscribers or everyone.

use super::*;

impl Mux {
    /// Routes a message from the server.
    pub fn from_server(&mut self, msg: Message) -> Vec<Action> {
        match msg.kind() {
            Kind::Response => self.server_response(msg),
            Kind::Request => self.server_request(msg),
            Kind::Notification => self.server_notification(msg),
        }
    }

    fn server_response(&mut self, mut msg: Message) -> Vec<Action> {
        let Some(Id::Num(upstream)) = msg.id.value().cloned() else { return Vec::new() };
        if let Handshake::Sent(hs, _) = self.handshake
            && hs == upstream
        {
            return self.finish_handshake(msg);
        }
        let Some(p) = self.pending.remove(&upstream) else { return Vec::new() };
        if let Some(token) = &p.token {
            self.progress.remove(token);
        }
        msg.id = IdField::Value(p.client_id.clone());
        if let (Some(rules), Some(listing)) = (&self.expose, p.listing) {
            expose::filter_listing(rules, listing, &mut msg);
        }
        let who = p.session.and_then(|s| self.sessions.get(&s)).and_then(|s| s.who.as_ref());
        if let (Some(g), Some(listing), Some(who)) = (&self.governed, p.listing, who) {
            access::filter_listing(g, who, listing, &mut msg);
        }
        match p.session {
            Some(session) => {
                let took = p.sent.elapsed();
                let mut out = Vec::with_capacity(3);
                out.push(Action::RoundTrip(took));
                if let Some(audit) = p.audit {
                    out.push(Action::Audit { session, call: audit.record(&p.client_id, Some(&msg), took) });
                }
                out.push(Action::ToClient { session, msg, related: Some(p.client_id) });
                out
            }
            None => vec![Action::HostResponse { id: upstream, msg }],
        }
    }

    fn finish_handshake(&mut self, msg: Message) -> Vec<Action> {
        let Some(result) = msg.result else {
            let why = msg.error.map(|e| e.get().to_string()).unwrap_or_default();
            self.handshake = Handshake::Idle;
            let mut out = vec![Action::HandshakeFailed(format!("the server refused initialize: {why}"))];
            for (session, id) in std::mem::take(&mut self.waiting_init) {
                let err = Message::error_response(
                    Some(id.clone()),
                    code::SERVER_UNAVAILABLE,
                    "the MCP server refused to initialize",
                );
                out.push(Action::ToClient { session, msg: err, related: Some(id) });
            }
            return out;
        };
        let result = match &self.governed {
            Some(_) => access::announce_list_changes(result),
            None => result,
        };
        self.handshake = Handshake::Ready(result.clone());
        let mut out = vec![Action::ToServer(Message::notification("notifications/initialized", None)), Action::Ready];
        for (session, id) in std::mem::take(&mut self.waiting_init) {
            out.push(Action::ToClient {
                session,
                msg: Message::response(id.clone(), result.clone()),
                related: Some(id),
            });
        }
        for (session, msg) in std::mem::take(&mut self.queued) {
            out.extend(self.from_client(session, msg));
        }
        out
    }

    /// The session a server-to-client request goes to when the server
    /// names no request of a client: the one session that can hear it and
    /// has a request in flight (the server works for it alone), else, with
    /// none in flight, the only session attached that can hear it. With two
    /// or more busy (or, none busy, two or more attached), which one caused
    /// the request cannot be known, and a sampling or elicitation request
    /// may carry one client's data, so mcpod does not guess: `Err` holds
    /// how many could have.
    fn sole_session(&self) -> Result<(SessionId, Option<Id>), usize> {
        let hears = |x: &Session| !x.deaf && !x.waiting;
        let hearing = |s: &SessionId| self.sessions.get(s).is_some_and(hears);
        let mut busy: Vec<SessionId> = self.pending.values().filter_map(|p| p.session.filter(hearing)).collect();
        busy.sort_unstable();
        busy.dedup();
        let session = match busy.as_slice() {
            [one] => *one,
            [] => {
                let mut attached = self.sessions.iter().filter(|(_, s)| hears(s)).map(|(id, _)| *id);
                match (attached.next(), attached.next()) {
                    (Some(one), None) => one,
                    (None, _) => return Err(0),
                    _ => return Err(self.sessions.values().filter(|s| hears(s)).count()),
                }
            }
            several => return Err(several.len()),
        };
        // The client's request it most likely serves, so that a Streamable
        // HTTP client hears it on that request's stream: this session's
        // newest.
        let related = self
            .pending
            .values()
            .filter(|p| p.session == Some(session))
            .max_by_key(|p| p.sent)
            .map(|p| p.client_id.clone());
        Ok((session, related))
    }

    /// The only session that cannot be asked anything and has requests in
    /// flight (and its newest request), if exactly one has.
    fn sole_busy_deaf_session(&self) -> Option<(SessionId, Option<Id>)> {
        let deaf = |s: &SessionId| self.sessions.get(s).is_some_and(|x| x.deaf && !x.waiting);
        let mut busy: Vec<SessionId> = self.pending.values().filter_map(|p| p.session.filter(deaf)).collect();
        busy.sort_unstable();
        busy.dedup();
        let [session] = busy.as_slice() else { return None };
        let related = self
            .pending
            .values()
            .filter(|p| p.session == Some(*session))
            .max_by_key(|p| p.sent)
            .map(|p| p.client_id.clone());
        Some((*session, related))
    }

    fn server_request(&mut self, mut msg: Message) -> Vec<Action> {
        let Some(id) = msg.id.value().cloned() else { return Vec::new() };
        // A ping asks whether the other side is alive: the host is, and
        // answers it itself, whoever is attached.
        if msg.method() == "ping" {
            return vec![Action::ToServer(Message::response(id, raw(&serde_json::json!({}))))];
        }
        // An upstream that knows which request this one serves says so; if
        // that request's session is gone, nobody else may answer for it.
        let hint = take_related(&mut msg);
        let related =
            hint.and_then(|n| self.pending.get(&n)).and_then(|p| Some((p.session?, Some(p.client_id.clone()))));
        if hint.is_some() && related.is_none() {
            return vec![Action::ToServer(Message::error_response(
                Some(id),
                code::INTERNAL_ERROR,
                "the request this one serves is no longer in flight (its client session ended or cancelled it)",
            ))];
        }
        if let Some((session, related)) = related.clone()
            && self.sessions.get(&session).is_some_and(|s| s.deaf)
        {
            let refused = Message::error_response(
                Some(id),
                code::INTERNAL_ERROR,
                &format!(
                    "the client of the request this one serves cannot be asked anything (it declared no sampling, \
                     elicitation or roots capability), so {} cannot reach it",
                    msg.method()
                ),
            );
            // Shown to the session (never to be answered) so that its client
            // hears its request needs a capability it did not declare.
            return vec![Action::ToServer(refused), Action::ToClient { session, msg, related }];
        }
        let target = match related {
            Some(r) => Ok(r),
            None => self.sole_session(),
        };
        match target {
            Ok((session, related)) => {
                self.server_requests.insert(id, session);
                vec![Action::ToClient { session, msg, related }]
            }
            Err(0) => {
                let refused = Message::error_response(
                    Some(id),
                    code::INTERNAL_ERROR,
                    "no client is connected to answer this request",
                );
                let mut out = vec![Action::ToServer(refused)];
                // No session can be asked; if only one that cannot is
                // waiting on the server, the request is its: it is shown
                // the request, as above.
                if let Some((session, related)) = self.sole_busy_deaf_session() {
                    out.push(Action::ToClient { session, msg, related });
                }
                out
            }
            Err(n) => vec![Action::ToServer(Message::error_response(
                Some(id),
                code::INTERNAL_ERROR,
                &format!(
                    "{n} client sessions share this server, with requests in flight or none, and the request names \
                     none of their requests, so which client it is for cannot be known; mcpod does not guess (run \
                     the server per session to use {})",
                    msg.method()
                ),
            ))],
        }
    }

    fn server_notification(&mut self, mut msg: Message) -> Vec<Action> {
        match msg.method() {
            "notifications/progress" => {
                let mut params = msg.params_value();
                let token = params.get("progressToken").and_then(Value::as_str).map(str::to_string);
                let Some((session, original)) = token.and_then(|t| self.progress.get(&t).cloned()) else {
                    return Vec::new();
                };
                let related = self
                    .pending
                    .values_mut()
                    .find(|p| p.token.as_deref() == params.get("progressToken").and_then(Value::as_str))
                    .map(|p| {
                        // Progress restarts the request's clock (the MCP spec's lifecycle: timeouts).
                        p.heard = std::time::Instant::now();
                        p.client_id.clone()
                    });
                params["progressToken"] = original;
                msg.params = Some(raw(&params));
                vec![Action::ToClient { session, msg, related }]
            }
            "notifications/cancelled" => {
                let params = msg.params_value();
                let target = params
                    .get("requestId")
                    .and_then(|v| serde_json::from_value::<Id>(v.clone()).ok())
                    .and_then(|id| self.server_requests.remove(&id));
                match target {
                    Some(session) => vec![Action::ToClient { session, msg, related: None }],
                    None => Vec::new(),
                }
            }
            "notifications/resources/updated" => {
                let uri = msg.params_value().get("uri").and_then(Value::as_str).map(str::to_string);
                let subscribed: Vec<SessionId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| uri.as_ref().is_some_and(|u| s.subscriptions.contains(u)))
                    .map(|(id, _)| *id)
                    .collect();
                let targets = if subscribed.is_empty() { self.sessions.keys().copied().collect() } else { subscribed };
                self.broadcast(&targets, msg)
            }
            _ => {
                let all: Vec<SessionId> = self.sessions.keys().copied().collect();
                self.broadcast(&all, msg)
            }
        }
    }

    pub(super) fn broadcast(&self, sessions: &[SessionId], msg: Message) -> Vec<Action> {
        sessions.iter().map(|s| Action::ToClient { session: *s, msg: msg.clone(), related: None }).collect()
    }
}

/// Removes the upstream's related-request hint
/// ([`META_RELATED`]) from a server request; the
/// upstream id it names, if any.
fn take_related(msg: &mut Message) -> Option<i64> {
    let key = META_RELATED;
    if !msg.params.as_ref().is_some_and(|p| p.get().contains(key)) {
        return None;
    }
    let mut params = msg.params_value();
    let meta = params.get_mut("_meta")?.as_object_mut()?;
    let related = meta.remove(key)?.as_i64();
    if meta.is_empty() {
        params.as_object_mut()?.remove("_meta");
    }
    msg.params = Some(raw(&params));
    related
}
