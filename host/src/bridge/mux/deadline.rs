//! Deadlines: a request the server has not answered within the request
//! timeout (counted from when it was sent, or from its latest progress
//! notification, as the MCP specification allows) is answered with an
//! error that names the timeout, and the server is told with
//! `notifications/cancelled`. The clock is the caller's, so the rules are
//! tested without waiting.

use super::*;
use std::time::{Duration, Instant};

impl Mux {
    /// Answers every request older than `timeout` at `now` with a
    /// `REQUEST_TIMEOUT` error and cancels it upstream. A request whose
    /// session owes the server an answer (sampling, elicitation, roots: a
    /// person may be typing) waits on the client, not the server, and is
    /// left alone until that answer comes.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Action> {
        let owing: Vec<SessionId> = self.server_requests.values().copied().collect();
        let overdue: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.heard) >= timeout)
            .filter(|(_, p)| !p.session.is_some_and(|s| owing.contains(&s)))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for upstream in overdue {
            let Some(p) = self.pending.remove(&upstream) else { continue };
            if let Some(token) = &p.token {
                self.progress.remove(token);
            }
            let message = format!(
                "the MCP server did not answer within {} s (limits.request_timeout_secs; progress notifications restart the clock); the request was cancelled",
                timeout.as_secs()
            );
            let cancel = serde_json::json!({ "requestId": upstream, "reason": message });
            out.push(Action::ToServer(Message::notification("notifications/cancelled", Some(raw(&cancel)))));
            let err = Message::error_response(Some(p.client_id.clone()), code::REQUEST_TIMEOUT, &message);
            match p.session {
                Some(session) => {
                    if let Some(audit) = p.audit {
                        let took = now.saturating_duration_since(p.sent);
                        out.push(Action::Audit { session, call: audit.record(&p.client_id, Some(&err), took) });
                    }
                    out.push(Action::ToClient { session, msg: err, related: Some(p.client_id) });
                }
                None => out.push(Action::HostResponse { id: upstream, msg: err }),
            }
        }
        out
    }

    /// True if mcpod's own `initialize` has waited longer than `timeout` at
    /// `now`: the server is hung, and the instance restarts it.
    pub fn handshake_overdue(&self, now: Instant, timeout: Duration) -> bool {
        matches!(self.handshake, Handshake::Sent(_, at) if now.saturating_duration_since(at) >= timeout)
    }
}
