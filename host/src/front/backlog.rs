//! What a long-lived stream (legacy SSE, WebSocket) holds for a client that
//! has not read it yet, bounded: a session's messages pass through a queue
//! that holds at most [`QUEUED_BYTES`] and [`QUEUED_EVENTS`] not yet taken
//! by the connection; past either, the stream is ended with a logged reason,
//! so that a client that stops reading cannot make the host buffer without
//! end. (Streamable HTTP streams keep the same byte budget in
//! `http_session`, where their answers may also wait in a replay log.)

use super::http_session::QUEUED_BYTES;
use super::sse::{Charge, Routed};
use crate::frame::Frame;
use crate::servers::Deliveries;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// The most messages a stream holds unread before it is ended.
pub const QUEUED_EVENTS: usize = 1024;

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

/// Forwards `deliveries` of a session of `server` into a queue the
/// connection takes from; the queue closes when the session ends, the
/// connection goes away, or the client leaves too much unread. The task's
/// result says which.
pub fn bounded(
    mut deliveries: Deliveries,
    server: String,
    transport: &'static str,
) -> (mpsc::Receiver<Routed>, tokio::task::JoinHandle<Ended>) {
    let (tx, rx) = mpsc::channel::<Routed>(QUEUED_EVENTS);
    let task = tokio::spawn(async move {
        let queued = Arc::new(AtomicUsize::new(0));
        loop {
            tokio::select! {
                d = deliveries.recv() => {
                    let Some(d) = d else { return Ended::Session };
                    let text = d.msg.to_text();
                    let held = queued.load(Ordering::Relaxed);
                    if held + text.len() > QUEUED_BYTES {
                        let why = format!("it holds {held} bytes its client has not read, the most a stream may");
                        tracing::warn!(server = %server, transport, "ending a stream whose client does not read: {why}");
                        return Ended::Unread(why);
                    }
                    let charge = Some(Charge::new(&queued, text.len()));
                    match tx.try_send(Routed { frame: Frame::message(text), answer: false, charge }) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            let why = format!("it holds {QUEUED_EVENTS} messages its client has not read, the most a stream may");
                            tracing::warn!(server = %server, transport, "ending a stream whose client does not read: {why}");
                            return Ended::Unread(why);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return Ended::Client,
                    }
                }
                _ = tx.closed() => return Ended::Client,
            }
        }
    });
    (rx, task)
}
