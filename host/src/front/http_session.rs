//! A Streamable HTTP session of the handshake revisions: which streams are
//! open, which request waits on which stream, the event log a client
//! resumes from with `Last-Event-ID`, and the table of every session
//! (swept by the front's reaper).

use super::FrontError;
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
    pub(super) waiters: HashMap<Id, (StreamKey, mpsc::Sender<Routed>)>,
    pub(super) standalone: Option<mpsc::Sender<Routed>>,
    pub(super) log: VecDeque<LoggedEvent>,
    pub(super) next_event: u64,
    pub(super) next_stream: u64,
}

impl Routes {
    /// The next event id of the session.
    pub(super) fn take_event_id(&mut self) -> u64 {
        let id = self.next_event;
        self.next_event += 1;
        id
    }

    pub(super) fn log(&mut self, event: LoggedEvent) {
        if self.log.len() >= EVENT_LOG {
            self.log.pop_front();
        }
        self.log.push_back(event);
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
        let mut seen = std::collections::HashSet::with_capacity(requests.len());
        if let Some(dup) = requests.iter().find(|id| !seen.insert(*id)) {
            return Err(FrontError::bad_request(format!(
                "request id {dup} appears twice in this batch; give each request of a batch its own id (nothing in the batch was run)"
            )));
        }
        let key = StreamKey::Post(r.next_stream);
        r.next_stream += 1;
        for id in requests {
            r.waiters.insert(id.clone(), (key, tx.clone()));
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
        let Ok(mut r) = self.routes.lock() else { return };
        let id = r.take_event_id();
        let frame = Frame { event: None, id: Some(id.to_string()), data: d.msg.to_text() };
        let is_response = d.msg.kind() == Kind::Response;
        let waiter = d.related.as_ref().and_then(|rel| r.waiters.get(rel).cloned());
        let (key, delivered) = match waiter {
            Some((key, tx)) => {
                let ok = tx.try_send(Routed { frame: frame.clone(), answer: is_response }).is_ok();
                if is_response && let Some(rel) = &d.related {
                    r.waiters.remove(rel);
                }
                (key, ok)
            }
            None => {
                let ok = r.standalone.as_ref().is_some_and(|tx| tx.try_send(frame.clone().into()).is_ok());
                (StreamKey::Standalone, ok)
            }
        };
        r.log(LoggedEvent { id, key, frame, delivered });
    }
}

/// Every Streamable HTTP session, by `Mcp-Session-Id`.
pub struct HttpSessions {
    pub(super) table: TokenTable<Arc<HttpSession>>,
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
            .map(|r| r.standalone.as_ref().is_some_and(|t| !t.is_closed()) || !r.waiters.is_empty())
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
    pub fn new(idle: Duration) -> Arc<Self> {
        Arc::new(HttpSessions { table: TokenTable::new(idle) })
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
            routes: Mutex::new(Routes {
                waiters: HashMap::new(),
                standalone: None,
                log: VecDeque::new(),
                next_event: 1,
                next_stream: 1,
            }),
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
