//! What a server is doing: its status as the API shows it (no secret
//! values), an active health check, its logs; and stopping it.

use super::request::Sharing;
use super::{Manager, ManagerError, Server, endpoints};
use crate::bridge::{Instance, InstanceState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What the server declared: its `initialize` result and `tools/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capabilities {
    /// The `initialize` result (protocol version, capabilities, server info).
    pub initialize: serde_json::Value,
    /// The `tools/list` result, when the server has tools.
    pub tools: Option<serde_json::Value>,
}

/// The answer of [`Manager::health_check`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HealthReport {
    /// The server.
    pub server_id: String,
    /// Whether every instance answered a ping.
    pub healthy: bool,
    /// Each instance's answer.
    pub instances: Vec<InstanceHealth>,
}

/// One instance's answer to a health ping.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InstanceHealth {
    /// The instance.
    pub instance_id: String,
    /// The ping's round trip, if it was answered.
    pub ping_ms: Option<f64>,
    /// Why it was not.
    pub error: Option<String>,
}

/// What a server is doing, in one word (its instances' states summed up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// No instance runs (a per-session server with no session).
    Idle,
    /// An instance is starting.
    Starting,
    /// An instance is ready.
    Ready,
    /// An instance is restarting after a crash.
    Restarting,
    /// Its instances failed and will not restart.
    Failed,
    /// Stopped.
    Stopped,
}

impl ServerState {
    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Idle => "idle",
            ServerState::Starting => "starting",
            ServerState::Ready => "ready",
            ServerState::Restarting => "restarting",
            ServerState::Failed => "failed",
            ServerState::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ServerState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A server as the API shows it (no secret values).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Its id.
    pub server_id: String,
    /// `idle`, `starting`, `ready`, `restarting`, `failed`, `stopped`.
    pub status: ServerState,
    /// Why it is not ready, if it is not.
    pub detail: Option<String>,
    /// The template it came from.
    pub template: Option<String>,
    /// Server type.
    pub server_type: String,
    /// Package.
    pub package: Option<String>,
    /// Transport.
    pub transport: String,
    /// Sharing mode.
    pub sharing: Sharing,
    /// Env names (values are never shown); secrets are marked.
    pub env: BTreeMap<String, String>,
    /// Running instances.
    pub instances: usize,
    /// Open client sessions.
    pub sessions: u64,
    /// Restarts across instances.
    pub restarts: u32,
    /// Endpoints per downstream transport.
    pub endpoints: BTreeMap<String, String>,
    /// What the server declared, once it ran.
    pub capabilities: Option<Capabilities>,
    /// Health: true when ready.
    pub healthy: bool,
    /// Who started it through the API (and so may stop it); absent for
    /// servers the config or the operator started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// Its labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// What protects the machine from its instances on this runtime (the
    /// local sandbox's layers), each active or not and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protections: Vec<crate::runtime::Protection>,
    /// The packages it runs: the exact version chosen for what was asked,
    /// and what was verified (`[packages]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<crate::supply::Pinned>,
    /// What its instances use now, where the runtime can tell (local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ServerUsage>,
}

/// What a server's instances use now: CPU (time so far locally, a rate on
/// Kubernetes) and resident memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// What all its instances use together.
    #[serde(flatten)]
    pub total: crate::runtime::usage::Usage,
    /// Per instance.
    pub instances: BTreeMap<String, crate::runtime::usage::Usage>,
}

impl Manager {
    /// A server's status.
    pub fn status(&self, id: &str) -> Result<ServerStatus, ManagerError> {
        let server = self.get(id)?;
        Ok(self.describe(&server))
    }

    fn describe(&self, server: &Server) -> ServerStatus {
        let instances: Vec<Arc<Instance>> = server.instances.lock().map(|l| l.clone()).unwrap_or_default();
        let states: Vec<InstanceState> = instances.iter().map(|i| i.state()).collect();
        let (status, detail) = summarize(&states);
        ServerStatus {
            server_id: server.id.clone(),
            healthy: status == ServerState::Ready,
            status,
            detail,
            template: server.template.clone(),
            server_type: server.config.server_type.clone(),
            package: server.config.package.clone(),
            transport: server.spec.transport.name().to_string(),
            sharing: server.sharing,
            env: server
                .spec
                .env
                .iter()
                .map(|e| (e.name.clone(), if e.secret { "<secret>" } else { "<set>" }.to_string()))
                .collect(),
            instances: instances.len(),
            sessions: server.sessions.load(Ordering::Relaxed),
            restarts: instances.iter().map(|i| i.restarts()).sum(),
            endpoints: endpoints::all(&self.settings.public_url, &server.id),
            capabilities: server.capabilities.lock().ok().and_then(|c| c.clone()),
            started_by: server.owner.as_ref().map(|p| p.name.clone()),
            labels: server.labels.clone(),
            protections: self.runtime.protections(&server.spec),
            packages: server.packages.clone(),
            usage: None,
        }
    }

    /// Fills in what each server's instances use now (one look at the
    /// runtime for all of them); servers it cannot measure keep `None`.
    pub async fn measure(&self, statuses: &mut [ServerStatus]) {
        let usage = self.runtime.usage().await;
        if usage.is_empty() {
            return;
        }
        for status in statuses {
            let Ok(server) = self.get(&status.server_id) else { continue };
            let ids: Vec<String> =
                server.instances.lock().map(|l| l.iter().map(|i| i.id.clone()).collect()).unwrap_or_default();
            let mut total = ServerUsage::default();
            for id in ids {
                if let Some(u) = usage.get(&id) {
                    total.total.add(*u);
                    total.instances.insert(id, *u);
                }
            }
            if !total.instances.is_empty() {
                status.usage = Some(total);
            }
        }
    }

    /// Who started server `id` through the API (`None`: the config or the
    /// operator did).
    pub fn owner(&self, id: &str) -> Result<Option<Arc<crate::identity::Principal>>, ManagerError> {
        Ok(self.get(id)?.owner.clone())
    }

    /// Pings every instance of server `id` through its upstream: an active
    /// health check, beside the passive `healthy` of [`Manager::status`].
    pub async fn health_check(&self, id: &str) -> Result<HealthReport, ManagerError> {
        let server = self.get(id)?;
        let instances: Vec<Arc<Instance>> = server.instances.lock().map(|l| l.clone()).unwrap_or_default();
        let mut report =
            HealthReport { server_id: server.id.clone(), healthy: !instances.is_empty(), instances: Vec::new() };
        for instance in instances {
            let started = std::time::Instant::now();
            let answer = match instance.state() {
                InstanceState::Ready => instance.host_call("ping", None, Duration::from_secs(5)).await,
                other => Err(format!("not ready: {other:?}")),
            };
            let (ping_ms, error) = match answer {
                Ok(msg) if msg.error.is_none() => (Some(started.elapsed().as_secs_f64() * 1000.0), None),
                Ok(msg) => (None, Some(format!("ping answered with an error: {}", msg.to_text()))),
                Err(why) => (None, Some(why)),
            };
            report.healthy &= error.is_none();
            report.instances.push(InstanceHealth { instance_id: instance.id.clone(), ping_ms, error });
        }
        Ok(report)
    }

    /// What server `id` declared, once an instance ran.
    pub fn capabilities(&self, id: &str) -> Option<Capabilities> {
        self.get(id).ok()?.capabilities.lock().ok()?.clone()
    }

    /// Server `id`'s `serverInfo` from its `initialize` result, without
    /// copying the rest (its tool list among it).
    pub fn server_info(&self, id: &str) -> Option<serde_json::Value> {
        let server = self.get(id).ok()?;
        let caps = server.capabilities.lock().ok()?;
        caps.as_ref()?.initialize.get("serverInfo").cloned()
    }

    /// The arguments of tool `tool` of server `id` that clients mirror into
    /// headers (`x-mcp-header`, SEP-2243), as the server listed the tool:
    /// `(argument, header name)`. Empty for an unknown server or tool.
    pub fn mirrored_arguments(&self, id: &str, tool: &str) -> Vec<(String, String)> {
        let Ok(server) = self.get(id) else { return Vec::new() };
        let Ok(caps) = server.capabilities.lock() else { return Vec::new() };
        let listed =
            caps.as_ref().and_then(|c| c.tools.as_ref()).and_then(|t| t.get("tools")).and_then(|t| t.as_array());
        listed
            .and_then(|tools| tools.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some(tool)))
            .map(crate::rev_2026_07_28::param_headers)
            .unwrap_or_default()
    }

    /// The last lines server `id` wrote to stderr.
    pub fn logs(&self, id: &str) -> Result<Vec<String>, ManagerError> {
        let server = self.get(id)?;
        Ok(server.logs.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default())
    }

    /// Every server.
    pub fn list(&self) -> Vec<ServerStatus> {
        let servers: Vec<Arc<Server>> = self.servers.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        servers.iter().map(|s| self.describe(s)).collect()
    }

    /// Stops a server and all its instances.
    pub async fn stop(&self, id: &str) -> Result<ServerStatus, ManagerError> {
        let server = self
            .servers
            .write()
            .map_err(|_| ManagerError::Failed("server table poisoned".into()))?
            .remove(id)
            .ok_or_else(|| ManagerError::NotFound(format!("no server `{id}`")))?;
        let instances: Vec<Arc<Instance>> = server.instances.lock().map(|l| l.clone()).unwrap_or_default();
        for i in &instances {
            i.stop();
        }
        for i in &instances {
            i.wait_settled(Duration::from_secs(10)).await;
        }
        tracing::info!(server = %id, "server stopped");
        self.metrics.stops.inc();
        self.metrics.forget_server(id);
        let mut status = self.describe(&server);
        status.status = ServerState::Stopped;
        status.healthy = false;
        Ok(status)
    }

    /// Stops every server (host shutdown), except where the runtime's
    /// instances outlive the host to be adopted by the next one.
    pub async fn shutdown(&self) {
        if self.runtime.outlives_host() {
            self.runtime.shutdown().await;
            return;
        }
        let ids: Vec<String> = self.servers.read().map(|s| s.keys().cloned().collect()).unwrap_or_default();
        // In parallel: one slow server must not hold up the others' stop.
        futures_util::future::join_all(ids.iter().map(|id| self.stop(id))).await;
        self.runtime.shutdown().await;
    }
}

/// One word (and detail) for a set of instance states.
fn summarize(states: &[InstanceState]) -> (ServerState, Option<String>) {
    if states.is_empty() {
        return (ServerState::Idle, None);
    }
    if states.contains(&InstanceState::Ready) {
        return (ServerState::Ready, None);
    }
    for s in states {
        match s {
            InstanceState::Restarting(why) => return (ServerState::Restarting, Some(why.clone())),
            InstanceState::Failed(why) => return (ServerState::Failed, Some(why.clone())),
            _ => {}
        }
    }
    if states.iter().all(|s| *s == InstanceState::Stopped) {
        return (ServerState::Stopped, None);
    }
    (ServerState::Starting, None)
}
