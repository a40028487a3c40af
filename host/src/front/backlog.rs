//! What a stream holds for a client that has not read it yet, bounded: a
//! stream's sender ([`StreamTx`]) takes a message only while the stream
//! holds less than [`QUEUED_BYTES`] and its channel's capacity of messages
//! not yet taken by the connection. Streamable HTTP streams end there and
//! their client resumes from the session's log (`http_session`); legacy
//! SSE and WebSocket streams, fed by [`bounded`], end with a logged reason.
//! Either way a client that stops reading cannot make the host buffer
//! without end.

use super::sse::{Charge, Routed};
use crate::frame::Frame;
use crate::servers::Deliveries;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Bytes of event data queued for one stream and not taken by it yet: an
/// unread stream holds at most this much.
pub(super) const QUEUED_BYTES: usize = 16 << 20;

/// The most messages a legacy SSE or WebSocket stream holds unread.
pub const QUEUED_EVENTS: usize = 1024;

/// What one client stream, and a Streamable HTTP session's replay log,
/// may hold (`[limits]`: `stream_buffer_kib`, `stream_buffer_messages`,
/// `replay_log_events`, `replay_log_kib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBudget {
    /// Bytes of event data a stream may hold unread.
    pub bytes: usize,
    /// Messages a legacy SSE or WebSocket stream may hold unread.
    pub messages: usize,
    /// Events a session keeps for replay.
    pub replay_events: usize,
    /// Bytes of events a session keeps for replay.
    pub replay_bytes: usize,
}

impl Default for StreamBudget {
    fn default() -> Self {
        StreamBudget {
            bytes: QUEUED_BYTES,
            messages: QUEUED_EVENTS,
            replay_events: super::http_session::EVENT_LOG,
            replay_bytes: super::http_session::EVENT_LOG_BYTES,
        }
    }
}

/// One open stream: its sender, the bytes sent to it and not yet taken,
/// and how many it may hold.
#[derive(Clone)]
pub(super) struct StreamTx {
    pub(super) tx: mpsc::Sender<Routed>,
    queued: Arc<AtomicUsize>,
    budget: usize,
}

/// Why a stream did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// Its connection is gone.
    Gone,
    /// Its client has left too much unread (the reason, in words).
    Unread(String),
}

impl StreamTx {
    /// The stream `tx` feeds, with nothing queued, holding at most
    /// `budget` bytes unread.
    pub(super) fn new(tx: mpsc::Sender<Routed>, budget: usize) -> StreamTx {
        StreamTx { tx, queued: Default::default(), budget }
    }

    /// A stream that is gone: what is sent to it is logged, not delivered.
    pub(super) fn gone() -> StreamTx {
        StreamTx::new(mpsc::channel(1).0, QUEUED_BYTES)
    }

    /// Sends `frame` unless the stream is gone, full, or would then hold
    /// more than its budget not yet taken.
    pub(super) fn send(&self, frame: Frame, answer: bool) -> Result<(), Refused> {
        let bytes = frame.data.len();
        let held = self.queued.load(Ordering::Relaxed);
        if held + bytes > self.budget {
            return Err(Refused::Unread(format!(
                "it holds {held} bytes its client has not read, the most a stream may (limits.stream_buffer_kib)"
            )));
        }
        let charge = Some(Charge::new(&self.queued, bytes));
        self.tx.try_send(Routed { frame, answer, charge }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Unread(format!(
                "it holds {} messages its client has not read, the most a stream may (limits.stream_buffer_messages)",
                self.tx.max_capacity()
            )),
            mpsc::error::TrySendError::Closed(_) => Refused::Gone,
        })
    }
}

/// Why a session's messages stopped flowing to its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The session ended on mcpod's side (shutdown, the server stopped).
    Session,
    /// The connection went away.
    Client,
    /// The client did not read: the stream held this much (the reason, in words).
    Unread(String),
}

/// Forwards `deliveries` of a session of `server` into a stream of at most
/// `budget` messages and bytes the connection takes from; the stream closes
/// when the session ends, the connection goes away, or the client leaves
/// too much unread. The task's result says which.
pub fn bounded(
    mut deliveries: Deliveries,
    server: String,
    transport: &'static str,
    budget: StreamBudget,
) -> (mpsc::Receiver<Routed>, tokio::task::JoinHandle<Ended>) {
    let (tx, rx) = mpsc::channel::<Routed>(budget.messages.max(1));
    let stream = StreamTx::new(tx, budget.bytes);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                d = deliveries.recv() => {
                    let Some(d) = d else { return Ended::Session };
                    match stream.send(Frame::message(d.msg.to_text()), false) {
                        Ok(()) => {}
                        Err(Refused::Gone) => return Ended::Client,
                        Err(Refused::Unread(why)) => {
                            tracing::warn!(server = %server, transport, "ending a stream whose client does not read: {why}");
                            return Ended::Unread(why);
                        }
                    }
                }
                _ = stream.tx.closed() => return Ended::Client,
            }
        }
    });
    (rx, task)
}
