//! A Streamable HTTP session of the handshake revisions: which streams are
//! open, which request waits on which stream, the event log a client
//! resumes from with `Last-Event-ID`, and the table of every session
//! (swept by the front's reaper).

use super::FrontError;
use super::backlog::{StreamBudget, StreamTx};
use super::sse::Routed;
use super::tokens::{Expiring, TokenTable};
use crate::frame::Frame;
use crate::jsonrpc::{Id, Kind, Message, code};
use crate::servers::ClientSession;
use crate::servers::Delivery;
use axum::http::StatusCode;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Events kept per session for replay after a dropped stream.
pub(super) const EVENT_LOG: usize = 1024;

/// Bytes of event data kept per session for replay: the oldest events go
/// first when a new one would pass it (the newest is always kept).
pub(super) const EVENT_LOG_BYTES: usize = 8 << 20;

/// Which stream an event was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKey {
    /// The GET stream.
    Standalone,
    /// The response stream of one POST.
    Post(u64),
}

pub(super) struct LoggedEvent {
    pub(super) id: u64,
    pub(super) key: StreamKey,
    pub(super) frame: Frame,
    pub(super) delivered: bool,
}

pub(super) struct Routes {
    pub(super) waiters: HashMap<Id, (StreamKey, StreamTx)>,
    pub(super) standalone: Option<StreamTx>,
    pub(super) log: VecDeque<LoggedEvent>,
    /// Bytes of event data in `log`.
    pub(super) log_bytes: usize,
    pub(super) next_event: u64,
    pub(super) next_stream: u64,
    /// What its streams and its log may hold.
    pub(super) budget: StreamBudget,
}

impl Routes {
    /// No stream, no waiter, an empty log; streams and log held to `budget`.
    pub(super) fn new(budget: StreamBudget) -> Routes {
        Routes {
            waiters: HashMap::new(),
            standalone: None,
            log: VecDeque::new(),
            log_bytes: 0,
            next_event: 1,
            next_stream: 1,
            budget,
        }
    }

    /// A stream `tx` feeds, held to this session's budget.
    pub(super) fn stream(&self, tx: mpsc::Sender<Routed>) -> StreamTx {
        StreamTx::new(tx, self.budget.bytes)
    }

    /// Puts `msg` on the stream it belongs to (the stream of the request
    /// it is `related` to, else the GET stream) and in the log. A stream
    /// that cannot take it — full, or it would hold more than
    /// its budget (`limits.stream_buffer_kib`) not yet read — is ended, so that an unread stream
    /// never holds more; its client resumes it from the log
    /// (`Last-Event-ID`), where this event and those after it wait.
    pub(super) fn route(&mut self, msg: &Message, related: Option<&Id>) {
        let id = self.take_event_id();
        let frame = Frame { event: None, id: Some(id.to_string()), data: msg.to_text() };
        let is_response = msg.kind() == Kind::Response;
        let waiter = related.and_then(|rel| self.waiters.get(rel).cloned());
        let (key, delivered) = match waiter {
            Some((key, stream)) => {
                let ok = stream.send(frame.clone(), is_response).is_ok();
                if !ok {
                    // Every sender of that stream goes, so it ends; its
                    // requests stay, for a resumed stream to take over.
                    self.redirect(key, &StreamTx::gone());
                }
                if is_response && let Some(rel) = related {
                    self.waiters.remove(rel);
                }
                (key, ok)
            }
            None => {
                let ok = self.standalone.as_ref().is_some_and(|s| s.send(frame.clone(), false).is_ok());
                if !ok {
                    self.standalone = None;
                }
                (StreamKey::Standalone, ok)
            }
        };
        self.log(LoggedEvent { id, key, frame, delivered });
    }

    /// Sends what is still to come for the requests of stream `key` to `stream`.
    pub(super) fn redirect(&mut self, key: StreamKey, stream: &StreamTx) {
        for (k, s) in self.waiters.values_mut() {
            if *k == key {
                *s = stream.clone();
            }
        }
    }

    /// The next event id of the session.
    pub(super) fn take_event_id(&mut self) -> u64 {
        let id = self.next_event;
        self.next_event += 1;
        id
    }

    pub(super) fn log(&mut self, event: LoggedEvent) {
        self.log_bytes += event.frame.data.len();
        self.log.push_back(event);
        let (events, bytes) = (self.budget.replay_events, self.budget.replay_bytes);
        while self.log.len() > 1 && (self.log.len() > events || self.log_bytes > bytes) {
            if let Some(old) = self.log.pop_front() {
                self.log_bytes -= old.frame.data.len();
            }
        }
    }

    /// The priming event `id` of stream `key`, logged as delivered so that a
    /// reconnect naming it replays what followed it on that stream.
    pub(super) fn prime(&mut self, id: u64, key: StreamKey) -> Frame {
        let frame = Frame { event: None, id: Some(id.to_string()), data: String::new() };
        self.log(LoggedEvent { id, key, frame: frame.clone(), delivered: true });
        frame
    }
}

/// One Streamable HTTP session.
pub struct HttpSession {
    pub(super) token: String,
    pub(super) server_id: String,
    pub(super) client: Mutex<ClientSession>,
    pub(super) routes: Mutex<Routes>,
    pub(super) last_seen: Mutex<Instant>,
}

impl HttpSession {
    pub(super) fn touch(&self) {
        if let Ok(mut t) = self.last_seen.lock() {
            *t = Instant::now();
        }
    }

    pub(super) fn send(&self, msg: Message) {
        if let Some(id) = msg.id.value() {
            tracing::debug!(server = %self.server_id, session = %self.token, request = %id, method = msg.method(), "client message");
        }
        if let Ok(c) = self.client.lock() {
            c.send(msg);
        }
    }

    /// Registers a POST's `requests` as waiting for their answers on one new
    /// stream. With `priming`, the stream's priming event id is taken first,
    /// before anything can be routed to it, so that every event of the
    /// stream comes after it.
    pub(super) fn wait_for(
        &self,
        requests: &[Id],
        priming: bool,
    ) -> Result<(StreamKey, Option<u64>, mpsc::Receiver<Routed>), FrontError> {
        let (tx, rx) = mpsc::channel(256);
        let Ok(mut r) = self.routes.lock() else {
            return Err(FrontError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
                "session state poisoned",
            ));
        };
        if let Some(dup) = requests.iter().find(|id| r.waiters.contains_key(*id)) {
            return Err(FrontError::new(
                StatusCode::CONFLICT,
                code::INVALID_REQUEST,
                format!("request id {dup} is already in flight in this session; use a new id"),
            ));
        }
        // Two requests of one batch with one id could not both be answered
        // (their answers are told apart by id): refuse the batch, run nothing.
        if let Some(dup) = first_repeated(requests) {
            return Err(FrontError::bad_request(format!(
                "request id {dup} appears twice in this batch; give each request of a batch its own id (nothing in the batch was run)"
            )));
        }
        let key = StreamKey::Post(r.next_stream);
        r.next_stream += 1;
        // One stream, one count of what it holds unread, for all its requests.
        let stream = r.stream(tx);
        for id in requests {
            r.waiters.insert(id.clone(), (key, stream.clone()));
        }
        Ok((key, priming.then(|| r.take_event_id()), rx))
    }

    /// The priming event `id` of POST stream `key` (see [`Routes::prime`]).
    pub(super) fn priming(&self, id: u64, key: StreamKey) -> Frame {
        match self.routes.lock() {
            Ok(mut r) => r.prime(id, key),
            Err(_) => Frame { event: None, id: Some(id.to_string()), data: String::new() },
        }
    }

    /// Puts one delivery on the stream it belongs to, logging it for replay.
    pub(super) fn route(&self, d: Delivery) {
        if let Ok(mut r) = self.routes.lock() {
            r.route(&d.msg, d.related.as_ref());
        }
    }
}

/// Every Streamable HTTP session, by `Mcp-Session-Id`.
pub struct HttpSessions {
    pub(super) table: TokenTable<Arc<HttpSession>>,
    /// What each session's streams and replay log may hold.
    budget: StreamBudget,
}

/// A session is stale after `idle` without a request, unless its GET
/// stream is open or a request of its is still waiting for its answer
/// (the request timeout bounds that wait, so a busy session is not kept
/// forever).
impl Expiring for Arc<HttpSession> {
    fn expired(&self, idle: Duration) -> bool {
        let stale = self.last_seen.lock().map(|t| t.elapsed() > idle).unwrap_or(true);
        let busy = self
            .routes
            .lock()
            .map(|r| r.standalone.as_ref().is_some_and(|t| !t.tx.is_closed()) || !r.waiters.is_empty())
            .unwrap_or(false);
        stale && !busy
    }
}

pub(super) fn close(session: &HttpSession) {
    if let Ok(mut c) = session.client.lock() {
        c.close();
    }
}

impl HttpSessions {
    /// A table whose sessions close after `idle` without requests (the
    /// front's reaper sweeps it).
    pub fn new(idle: Duration, budget: StreamBudget) -> Arc<Self> {
        Arc::new(HttpSessions { table: TokenTable::new(idle), budget })
    }

    pub(super) fn get(&self, token: &str) -> Option<Arc<HttpSession>> {
        self.table.get(token)
    }

    pub(super) fn remove(&self, token: &str) -> Option<Arc<HttpSession>> {
        let s = self.table.remove(token)?;
        close(&s);
        Some(s)
    }

    /// Closes sessions idle for longer than the limit.
    pub(super) fn reap(&self) {
        for (token, session) in self.table.take_expired() {
            tracing::info!(session = %token, "closing idle session");
            close(&session);
        }
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(super) fn create(self: &Arc<Self>, server_id: &str, client: ClientSession) -> Arc<HttpSession> {
        let token = crate::servers::new_token();
        let session = Arc::new(HttpSession {
            token: token.clone(),
            server_id: server_id.to_string(),
            client: Mutex::new(client),
            routes: Mutex::new(Routes::new(self.budget)),
            last_seen: Mutex::new(Instant::now()),
        });
        self.table.insert(token.clone(), session.clone());
        // Deliveries go straight from the upstream reader to the waiting
        // response streams.
        let sink = Arc::new(HttpSink { session: session.clone(), table: Arc::downgrade(self) });
        if let Ok(mut c) = session.client.lock() {
            c.redirect(sink);
        }
        session
    }
}

/// Routes an HTTP session's deliveries in place.
pub(super) struct HttpSink {
    pub(super) session: Arc<HttpSession>,
    pub(super) table: std::sync::Weak<HttpSessions>,
}

impl crate::servers::DirectSink for HttpSink {
    fn deliver(&self, d: Delivery) -> bool {
        self.session.route(d);
        true
    }

    fn closed(&self) {
        // The server side ended: close the session's streams (the instance
        // calls this with its lock released, so the session may detach).
        if let Ok(mut r) = self.session.routes.lock() {
            r.waiters.clear();
            r.standalone = None;
        }
        if let Some(table) = self.table.upgrade() {
            table.remove(&self.session.token);
        }
    }
}

/// The first id `ids` holds twice. A POST holds one request, or a batch of
/// a few: those are compared pairwise, without a set to build and hash into.
fn first_repeated(ids: &[Id]) -> Option<&Id> {
    if ids.len() <= 16 {
        return ids.iter().enumerate().find(|(i, id)| ids[..*i].contains(id)).map(|(_, id)| id);
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().find(|id| !seen.insert(*id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::backlog::QUEUED_BYTES;

    #[test]
    fn the_first_repeated_id_is_found_in_a_small_batch_and_in_a_large_one() {
        for n in [0usize, 1, 2, 16, 17, 40] {
            let mut ids: Vec<Id> = (0..n as i64).map(Id::Num).collect();
            assert_eq!(first_repeated(&ids), None, "{n} distinct ids");
            if n >= 2 {
                ids.push(Id::Num(n as i64 - 2));
                ids.push(Id::Num(n as i64 - 1));
                assert_eq!(first_repeated(&ids), Some(&Id::Num(n as i64 - 2)), "{n} ids and two repeats");
            }
        }
        assert_eq!(first_repeated(&[Id::Str("7".into()), Id::Num(7)]), None, "a string is not a number");
    }

    fn message(id: i64, bytes: usize) -> Message {
        let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"pad":"{}"}}}}"#, "x".repeat(bytes));
        Message::parse(&text).unwrap()
    }

    fn notification(bytes: usize) -> Message {
        let text = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"pad":"{}"}}}}"#,
            "x".repeat(bytes)
        );
        Message::parse(&text).unwrap()
    }

    #[test]
    fn a_configured_budget_is_the_one_a_session_holds_its_streams_and_log_to() {
        let budget = StreamBudget { bytes: 4096, messages: 8, replay_events: 3, replay_bytes: 1 << 20 };
        let mut r = Routes::new(budget);
        let (tx, _rx) = mpsc::channel(1024);
        r.standalone = Some(r.stream(tx));
        r.route(&notification(3000), None);
        assert!(r.standalone.is_some(), "3000 bytes fit in 4096");
        r.route(&notification(3000), None);
        assert!(r.standalone.is_none(), "6000 do not: the stream was ended");
        for _ in 0..5 {
            r.route(&notification(10), None);
        }
        assert_eq!(r.log.len(), 3, "the log keeps the configured number of events");
    }

    #[test]
    fn the_configs_defaults_are_the_built_in_budgets() {
        let l = crate::config::LimitsSection::default();
        let from_config = StreamBudget {
            bytes: l.stream_buffer_kib * 1024,
            messages: l.stream_buffer_messages,
            replay_events: l.replay_log_events,
            replay_bytes: l.replay_log_kib * 1024,
        };
        assert_eq!(from_config, StreamBudget::default());
    }

    #[test]
    fn an_unread_stream_holds_at_most_its_byte_budget_then_ends_and_the_log_keeps_the_rest() {
        let mut r = Routes::new(StreamBudget::default());
        let (tx, mut rx) = mpsc::channel(1024);
        r.standalone = Some(r.stream(tx));
        // 1 MiB events to a GET stream nobody reads: 16 fit, the 17th ends it.
        for _ in 0..20 {
            r.route(&notification(1 << 20), None);
        }
        assert!(r.standalone.is_none(), "the stream was ended");
        let mut held = 0;
        while let Ok(routed) = rx.try_recv() {
            held += routed.frame.data.len();
        }
        assert!(held <= QUEUED_BYTES, "{held} bytes were queued");
        assert_eq!(held / (1 << 20), 15, "fifteen whole events fit beside the envelope");
        assert_eq!(r.log.iter().filter(|e| !e.delivered).count(), 5, "the rest wait in the log for a resumed stream");
    }

    #[test]
    fn what_a_stream_took_no_longer_counts_against_it() {
        let mut r = Routes::new(StreamBudget::default());
        let (tx, mut rx) = mpsc::channel(1024);
        r.standalone = Some(r.stream(tx));
        for _ in 0..100 {
            r.route(&notification(1 << 20), None);
            drop(rx.try_recv().expect("delivered"));
        }
        assert!(r.standalone.is_some(), "a stream that reads is never ended");
    }

    #[test]
    fn a_post_stream_that_overflows_ends_but_its_requests_wait_for_a_resumed_stream() {
        let mut r = Routes::new(StreamBudget::default());
        let (tx, rx) = mpsc::channel(1024);
        let stream = r.stream(tx);
        for id in [1, 2] {
            r.waiters.insert(Id::Num(id), (StreamKey::Post(1), stream.clone()));
        }
        drop(stream);
        for _ in 0..17 {
            r.route(&notification(1 << 20), Some(&Id::Num(1)));
        }
        assert!(r.waiters.contains_key(&Id::Num(1)) && r.waiters.contains_key(&Id::Num(2)));
        drop(rx);
        let (tx, mut resumed) = mpsc::channel(16);
        let stream = r.stream(tx);
        r.redirect(StreamKey::Post(1), &stream);
        r.route(&message(2, 10), Some(&Id::Num(2)));
        assert!(resumed.try_recv().is_ok_and(|routed| routed.answer), "the answer reached the resumed stream");
        assert!(!r.waiters.contains_key(&Id::Num(2)));
    }

    #[test]
    fn the_replay_log_keeps_at_most_its_byte_budget_and_always_the_newest_event() {
        let mut r = Routes::new(StreamBudget::default());
        for _ in 0..40 {
            r.route(&notification(1 << 20), None);
        }
        assert!(r.log_bytes <= EVENT_LOG_BYTES && r.log.len() == 7, "{} events, {} bytes", r.log.len(), r.log_bytes);
        r.route(&notification(EVENT_LOG_BYTES + 1), None);
        assert_eq!(r.log.len(), 1, "an event over the budget alone is kept alone");
    }
}
