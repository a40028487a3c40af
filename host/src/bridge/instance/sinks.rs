//! Where an instance's messages go: each client session's sink (a bounded
//! channel, or a sink that takes deliveries in place) and the server's
//! upstream (a stdin writer, or the task of a network link).

use super::Delivery;
use crate::jsonrpc::Message;
use crate::upstream::stdio;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A session's deliveries handed over in place, on the upstream reader's
/// task: no channel, no extra task hop. Must not block, and must not call
/// back into the instance.
pub trait DirectSink: Send + Sync {
    /// Takes one delivery; false if the client cannot take it (the session is then closed).
    fn deliver(&self, d: Delivery) -> bool;
    /// The instance ended the session (it gave up, or the client stopped
    /// reading). Called with the instance's lock released, and the sink is
    /// dropped the same way: either may end the client session, which
    /// detaches from the instance.
    fn closed(&self);
}

/// Where one session's deliveries go.
pub(super) enum Sink {
    /// A bounded channel the client reads.
    Channel(mpsc::Sender<Delivery>),
    /// Handed over in place.
    Direct(Arc<dyn DirectSink>),
}

impl Sink {
    pub(super) fn deliver(&self, d: Delivery) -> bool {
        match self {
            Sink::Channel(tx) => tx.try_send(d).is_ok(),
            Sink::Direct(s) => s.deliver(d),
        }
    }

    pub(super) fn closed(self) {
        if let Sink::Direct(s) = self {
            s.closed();
        }
    }
}

/// How many deliveries may wait for a slow client before it is cut off.
pub(super) const SESSION_BUFFER: usize = 4096;

/// Where messages for the server go.
pub(super) enum Upstream {
    /// A process's stdin, written by the sending task itself.
    Stdin(Arc<stdio::StdinWriter>),
    /// The task that speaks to a server over the network.
    Link(mpsc::UnboundedSender<Message>),
}

impl Upstream {
    pub(super) fn send(&self, msg: Message) {
        match self {
            Upstream::Stdin(w) => w.queue(msg),
            Upstream::Link(tx) => {
                let _ = tx.send(msg);
            }
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Upstream::Stdin(w) = self {
            w.close();
        }
    }
}
