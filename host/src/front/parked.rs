//! Requests of 2026-07-28 clients parked on an `input_required` result:
//! each holds its call open on the server until the client's retry brings
//! the input (or the front's reaper drops it after [`PARK_TIMEOUT`],
//! which cancels it upstream).

use super::tokens::{Expiring, TokenTable};
use crate::jsonrpc::Id;
use crate::servers::ClientSession;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a parked request waits for the client's retry.
const PARK_TIMEOUT: Duration = Duration::from_secs(300);

/// A request the server is waiting on the client for (an `input_required`).
pub(super) struct Parked {
    /// The server, or server and handle, it waits on ([`crate::servers::Target`]'s display).
    pub(super) place: String,
    /// The method of the request.
    pub(super) method: String,
    /// Its session on the instance, holding the call open upstream.
    pub(super) session: ClientSession,
    /// The input keys asked for, and the server's request ids they answer.
    pub(super) asked: Vec<(String, Id)>,
    /// When it was parked.
    pub(super) since: Instant,
    /// The interactive turn (`Manager::interactive_turn`) it holds while it
    /// waits: only a virtual server's request keeps its members' turns; an
    /// instance's session is marked waiting instead
    /// (`ClientSession::set_waiting`) and takes the turn again on its retry.
    pub(super) turn: Option<crate::servers::Turn>,
}

/// Requests parked on an `input_required`, by their `requestState`.
pub struct ParkedRequests {
    table: TokenTable<Parked>,
}

/// Dropping a parked request cancels it upstream.
impl Expiring for Parked {
    fn expired(&self, ttl: Duration) -> bool {
        self.since.elapsed() >= ttl
    }
}

impl ParkedRequests {
    /// An empty table whose entries expire unanswered after [`PARK_TIMEOUT`]
    /// (the front's reaper sweeps it).
    pub fn new() -> Arc<Self> {
        Arc::new(ParkedRequests { table: TokenTable::new(PARK_TIMEOUT) })
    }

    /// Parks `parked` under its `requestState`.
    pub(super) fn park(&self, state: String, parked: Parked) {
        self.table.insert(state, parked);
    }

    /// The parked request `state` names, if it is for this place (server,
    /// or server and handle) and method.
    pub(super) fn take(&self, state: &str, place: &str, method: &str) -> Option<Parked> {
        self.table.take_if(state, |p| p.place == place && p.method == method)
    }

    /// Drops the requests that waited too long (cancelling them upstream).
    pub(super) fn reap(&self) {
        drop(self.table.take_expired());
    }

    /// Requests waiting for a retry.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
