//! Instance handles: per-client isolation for 2026-07-28 clients. The
//! stateless revision has no session to give a process of its own, so its
//! clients share one instance per server. A handle is an unguessable token
//! the host maps to an instance of its own; its endpoint
//! (`/servers/{id}/instances/{handle}/mcp`) is a URL like any other, so
//! every SDK can use it. It expires when idle, or is closed through the API.

use super::{Manager, ManagerError, Server};
use crate::bridge::{Instance, InstanceState};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh unguessable id (sessions, handles, parked states): 128 bits
/// from a CSPRNG, as hex.
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where a 2026-07-28 request goes: the instance a server keeps for such
/// clients, or the one an instance handle names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server's id.
    pub server: String,
    /// The instance handle, if the request came through one.
    pub handle: Option<String>,
}

impl Target {
    /// The instance a server keeps for 2026-07-28 clients.
    pub fn server(id: &str) -> Target {
        Target { server: id.to_string(), handle: None }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.handle {
            Some(h) => write!(f, "{}/instances/{h}", self.server),
            None => f.write_str(&self.server),
        }
    }
}

/// One handle's instance.
pub(super) struct Handle {
    pub(super) instance: Arc<Instance>,
    /// Its own turn for requests that may be asked for input.
    pub(super) interactive: Arc<tokio::sync::Mutex<()>>,
    last_used: Mutex<Instant>,
    /// Its place among its principal's sessions, given back when it goes.
    _slot: Option<super::per_principal::Slot>,
}

/// The handles of one server, by token.
pub(super) type Handles = Mutex<HashMap<String, Arc<Handle>>>;

/// A new handle, as the API answers it.
#[derive(Debug, Clone, Serialize)]
pub struct HandleInfo {
    /// The server's id.
    pub server_id: String,
    /// The handle: 128 random bits, as hex.
    pub instance: String,
    /// Its Streamable HTTP endpoint, for 2026-07-28 clients.
    pub endpoint: String,
    /// Seconds without a request after which it is closed.
    pub idle_timeout_secs: u64,
}

impl Manager {
    /// Starts an instance of server `id` for one 2026-07-28 client of
    /// `who` and returns the handle that reaches it. Counts against the
    /// server's session limit and as one of `who`'s sessions.
    pub fn open_handle(&self, id: &str, who: &crate::identity::Principal) -> Result<HandleInfo, ManagerError> {
        let server = self.get(id)?;
        let slot = self.reserve_session(who)?;
        let token = new_token();
        {
            // Checked and taken under one lock, so that two opens cannot both pass.
            let mut handles = server.handles.lock().map_err(|_| poisoned())?;
            let open = server.sessions.load(Ordering::Relaxed) as usize + handles.len();
            self.check_session_limit(id, open)?;
            let handle = Arc::new(Handle {
                instance: self.spawn_instance(&server, None),
                interactive: Arc::new(tokio::sync::Mutex::new(())),
                last_used: Mutex::new(Instant::now()),
                _slot: slot,
            });
            handles.insert(token.clone(), handle);
        }
        tracing::info!(server = %id, "instance handle opened");
        Ok(HandleInfo {
            server_id: id.to_string(),
            endpoint: super::endpoints::instance(&self.settings.public_url, id, &token),
            instance: token,
            idle_timeout_secs: self.settings.session_idle.as_secs(),
        })
    }

    /// Closes handle `token` of server `id` and stops its instance.
    pub fn close_handle(&self, id: &str, token: &str) -> Result<(), ManagerError> {
        let server = self.get(id)?;
        let handle = server.handles.lock().map_err(|_| poisoned())?.remove(token).ok_or_else(|| unknown(id))?;
        retire(&server, &handle.instance);
        tracing::info!(server = %id, "instance handle closed");
        Ok(())
    }

    /// Closes every handle idle for longer than the session idle timeout.
    pub fn reap_handles(&self) {
        let idle = self.settings.session_idle;
        let servers: Vec<Arc<Server>> = self.servers.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        for server in servers {
            let expired: Vec<Arc<Handle>> = match server.handles.lock() {
                Ok(mut map) => {
                    let gone: Vec<String> = map
                        .iter()
                        .filter(|(_, h)| match h.last_used.lock() {
                            // A request still in flight (a long call, a
                            // listen stream) keeps its handle; idleness
                            // counts from when it ends.
                            Ok(mut t) if h.instance.attached() > 0 => {
                                *t = Instant::now();
                                false
                            }
                            Ok(t) => t.elapsed() >= idle,
                            Err(_) => true,
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    gone.iter().filter_map(|k| map.remove(k)).collect()
                }
                Err(_) => continue,
            };
            for handle in expired {
                tracing::info!(server = %server.id, "instance handle expired");
                retire(&server, &handle.instance);
            }
        }
    }

    /// The live handle a target names, marked as used now.
    pub(super) fn handle(&self, server: &Server, token: &str) -> Result<Arc<Handle>, ManagerError> {
        let handle =
            server.handles.lock().map_err(|_| poisoned())?.get(token).cloned().ok_or_else(|| unknown(&server.id))?;
        if matches!(handle.instance.state(), InstanceState::Failed(_) | InstanceState::Stopped) {
            return Err(ManagerError::Failed(format!(
                "the instance of this handle of server `{}` has failed; close it and open another",
                server.id
            )));
        }
        if let Ok(mut t) = handle.last_used.lock() {
            *t = Instant::now();
        }
        Ok(handle)
    }
}

/// Runs [`Manager::reap_handles`] every so often, for as long as the
/// manager lives.
pub fn reap_every(manager: &Arc<Manager>, period: Duration) {
    super::every(manager, period, |manager| async move { manager.reap_handles() });
}

/// How many handles server `server` has open.
pub(super) fn handle_count(server: &Server) -> usize {
    server.handles.lock().map(|m| m.len()).unwrap_or(0)
}

fn retire(server: &Server, instance: &Arc<Instance>) {
    instance.stop();
    if let Ok(mut list) = server.instances.lock() {
        list.retain(|i| !Arc::ptr_eq(i, instance));
    }
}

fn unknown(id: &str) -> ManagerError {
    ManagerError::NotFound(format!(
        "server `{id}` has no such instance handle: it expired, was closed, or never existed; open one with POST /api/v1/servers/{id}/instances"
    ))
}

fn poisoned() -> ManagerError {
    ManagerError::Failed("the handle table is poisoned".into())
}
