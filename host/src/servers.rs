//! The server manager: start a server from a template or a raw config
//! (plugins, then policy, then a runtime), list, inspect and stop servers,
//! and open client sessions on them. Usable as a library without HTTP: it
//! is the Rust counterpart of the seed's `MCPKubernetesManager`.
//!
//! This file is the façade (the manager, its errors and settings); each
//! idea has a file of its own: `request` (what a start asks for, rendered
//! from a template), `start` (plugins, policy, runtime, adoption), `status`
//! (what a server is doing, health), `sessions` (clients on instances),
//! `handles` (instances of their own for 2026-07-28 clients) and
//! `endpoints` (the URLs, built in one place).

use crate::audit::AuditLog;
use crate::bridge::Instance;
use crate::bridge::instance::RestartPolicy;
use crate::config::Config;
use crate::jsonrpc::raw;
use crate::launch::LaunchSpec;
use crate::metrics::Metrics;
use crate::plugin::bindings::{ErrorCode, ServerConfig};
use crate::plugin::{CallError, PluginHost};
use crate::policy::{Policy, PolicyError};
use crate::runtime::Runtime;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

mod drain;
pub mod endpoints;
mod handles;
mod per_principal;
mod request;
mod sessions;
mod start;
mod status;
mod unused;
mod virtuals;
/// What a session delivers, and how a front takes deliveries in place: the
/// bridge's types, named here so that the front sees only this façade.
pub use crate::bridge::{Delivery, DirectSink};
pub use crate::config::{MemberSpec, VirtualSpec};
pub use handles::{HandleInfo, Target, new_token, reap_every};
pub use request::{Sharing, StartRequest};
pub use sessions::{ClientSession, Deliveries, Turn};
pub use status::{Capabilities, HealthReport, InstanceHealth, ServerState, ServerStatus, ServerUsage};
pub use unused::sweep_every;
pub use virtuals::VirtualStatus;

/// Runs `job` on the manager now and then every `period`, for as long as
/// the manager lives (the task holds it only while `job` runs).
fn every<F, Fut>(manager: &Arc<Manager>, period: Duration, job: F)
where
    F: Fn(Arc<Manager>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(manager);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let Some(manager) = weak.upgrade() else { return };
            job(manager).await;
        }
    });
}

/// Why a manager operation failed; each maps to an HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The request is malformed or names things that do not exist.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// Per-field problems, when a plugin reported several.
        details: Vec<FieldProblem>,
    },
    /// The policy forbids it.
    #[error(transparent)]
    Forbidden(#[from] PolicyError),
    /// No such server or template.
    #[error("{0}")]
    NotFound(String),
    /// A limit was reached.
    #[error("{0}")]
    Limit(String),
    /// A plugin or the runtime failed.
    #[error("{0}")]
    Failed(String),
    /// The host is shutting down and takes nothing new.
    #[error("mcpod is shutting down and takes no new sessions; retry against another replica or after it restarts")]
    Draining,
}

impl ManagerError {
    /// The HTTP status the API and the MCP front both answer with.
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ManagerError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ManagerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ManagerError::NotFound(_) => StatusCode::NOT_FOUND,
            ManagerError::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
            ManagerError::Failed(_) => StatusCode::BAD_GATEWAY,
            ManagerError::Draining => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Seconds a client should wait before trying again (`Retry-After`),
    /// for the refusals that pass.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ManagerError::Limit(_) => Some(RETRY_AFTER_SECS),
            ManagerError::Draining => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// What `Retry-After` says on a 429 or a draining 503: sessions and
/// requests free up in seconds, not minutes.
pub const RETRY_AFTER_SECS: u32 = 5;

/// One problem with one field of a server config.
#[derive(Debug, Clone, Serialize)]
pub struct FieldProblem {
    /// The field (`package`, `args[1]`, `env.API_KEY`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl From<CallError> for ManagerError {
    fn from(e: CallError) -> Self {
        match e.code() {
            Some(ErrorCode::InvalidInput) => ManagerError::BadRequest { message: e.to_string(), details: Vec::new() },
            Some(ErrorCode::NotFound) => ManagerError::NotFound(e.to_string()),
            Some(ErrorCode::Denied) => ManagerError::Forbidden(PolicyError(e.to_string())),
            _ => match e {
                CallError::Unknown { .. } => ManagerError::BadRequest { message: e.to_string(), details: Vec::new() },
                other => ManagerError::Failed(other.to_string()),
            },
        }
    }
}

/// Knobs of the manager, from `[limits]` and `[runtime]` of the config.
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// The largest JSON-RPC message accepted, either way.
    pub max_message_bytes: u32,
    /// Most client sessions per server.
    pub max_sessions_per_server: usize,
    /// How long `start` waits for a server to become ready.
    pub start_timeout: Duration,
    /// Restart pacing.
    pub restart: RestartPolicy,
    /// Default resource wishes.
    pub resources: crate::config::ResourcesSection,
    /// The base URL clients reach this host at, for endpoint URLs.
    pub public_url: String,
    /// How long an instance handle may go unused before it is closed.
    pub session_idle: Duration,
    /// The operator's exposure rules per template (`[expose.templates]`).
    pub expose_templates: BTreeMap<String, crate::expose::Expose>,
    /// How long a server has to answer a request (`[limits]`).
    pub request_timeout: Duration,
    /// Per-template request timeouts (`[limits.templates]`).
    pub template_timeouts: BTreeMap<String, Duration>,
    /// How long a stdio server has to answer the `server/discover` probe
    /// (`limits.discover_timeout_secs`; zero: no probe).
    pub discover_timeout: Duration,
    /// The file the next server number is kept in across restarts
    /// (`server.state_dir`); `None`: numbers start at 1 each time.
    pub numbers_file: Option<std::path::PathBuf>,
    /// Servers one principal without the admin role may run at once.
    pub max_servers_per_principal: usize,
    /// Client sessions one principal without the admin role may hold open.
    pub max_sessions_per_principal: usize,
    /// MiB the machine must still have available for a new instance (0: no check).
    pub min_available_memory_mib: u64,
    /// Instances starting at once (0: the runtime's own default).
    pub max_concurrent_launches: usize,
    /// Starts that may wait for a launch slot before new ones are refused.
    pub max_waiting_launches: usize,
    /// Requests and bytes of parameters one session may have in flight.
    pub in_flight_budget: (usize, usize),
}

impl ManagerSettings {
    /// Settings from a host config.
    pub fn from_config(config: &Config) -> Self {
        let l = &config.limits;
        ManagerSettings {
            max_message_bytes: l.max_message_kib.saturating_mul(1024),
            max_sessions_per_server: l.max_sessions_per_server,
            start_timeout: Duration::from_secs(l.start_timeout_secs),
            restart: RestartPolicy {
                max_restarts: l.max_restarts,
                backoff: Duration::from_millis(l.restart_backoff_ms),
                max_backoff: Duration::from_millis(l.restart_max_backoff_ms),
            },
            resources: config.resources.clone(),
            session_idle: Duration::from_secs(l.session_idle_secs),
            expose_templates: config.expose.templates.clone(),
            request_timeout: Duration::from_secs(l.request_timeout_secs),
            discover_timeout: Duration::from_secs(l.discover_timeout_secs),
            template_timeouts: l
                .templates
                .iter()
                .filter_map(|(name, t)| Some((name.clone(), Duration::from_secs(t.request_timeout_secs?))))
                .collect(),
            public_url: match &config.server.public_url {
                Some(url) => url.trim_end_matches('/').to_string(),
                None => format!("http://{}", config.server.listen),
            },
            numbers_file: config.server.state_dir.as_ref().map(|d| d.join("next-server-number")),
            max_servers_per_principal: l.max_servers_per_principal,
            max_sessions_per_principal: l.max_sessions_per_principal,
            min_available_memory_mib: l.min_available_memory_mib,
            max_concurrent_launches: l.max_concurrent_launches,
            max_waiting_launches: l.max_waiting_launches,
            in_flight_budget: (
                l.max_requests_in_flight_per_session,
                l.max_in_flight_kib_per_session.saturating_mul(1024),
            ),
        }
    }
}

/// One managed server.
pub struct Server {
    /// Its id.
    pub id: String,
    /// The template it came from.
    pub template: Option<String>,
    /// Its config (env values of secrets are kept here only to start instances).
    pub config: ServerConfig,
    /// Its launch spec.
    pub spec: LaunchSpec,
    /// How clients share it.
    pub sharing: Sharing,
    /// What its clients see of it (`None`: everything).
    pub expose: Option<Arc<crate::expose::Expose>>,
    /// When it was started.
    pub created: SystemTime,
    /// Who started it through the API (and so may stop it).
    pub owner: Option<Arc<crate::identity::Principal>>,
    /// How long it has to answer a request.
    pub request_timeout: Duration,
    /// Headers every request to a remote server carries (secrets).
    headers: Vec<(String, String)>,
    /// Where its OAuth bearer token comes from (a remote server's).
    oauth: Option<Arc<crate::upstream::oauth::TokenSource>>,
    /// Its labels (virtual servers select members by them).
    pub labels: BTreeMap<String, String>,
    instances: Mutex<Vec<Arc<Instance>>>,
    /// A started instance no session holds yet (per-session mode).
    spare: Mutex<Option<Arc<Instance>>>,
    /// The instance 2026-07-28 clients share (per-session mode; shared
    /// servers have one instance for everybody anyway).
    stateless: Mutex<Option<Arc<Instance>>>,
    /// Held by the one 2026-07-28 request at a time that may be asked for
    /// input: a stdio server's request to its client names no request, so
    /// only one such request in flight keeps every question with its asker.
    interactive: Arc<tokio::sync::Mutex<()>>,
    /// Instances of their own for 2026-07-28 clients, by handle.
    handles: handles::Handles,
    capabilities: Mutex<Option<Capabilities>>,
    logs: crate::runtime::logs::LogBuffer,
    sessions: AtomicU64,
    next_instance: AtomicU64,
    /// The start request as JSON, secret values removed: recorded on
    /// instances that outlive the host, so that it can adopt them.
    start_request: String,
    /// The packages it runs, pinned and verified (empty: none, or not verified).
    packages: Vec<crate::supply::Pinned>,
}

impl Server {
    /// This server as the access policies see it.
    pub fn facts(&self) -> crate::access::ServerFacts {
        crate::access::ServerFacts {
            id: self.id.clone(),
            template: self.template.clone().unwrap_or_default(),
            started_by: self.owner.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        }
    }
}

/// Starts, tracks and stops servers.
pub struct Manager {
    plugins: Arc<PluginHost>,
    runtime: Arc<dyn Runtime>,
    /// The runtime of servers that run elsewhere (`remote`), whichever runs the rest.
    remote: Arc<dyn Runtime>,
    policy: Policy,
    settings: ManagerSettings,
    metrics: Arc<Metrics>,
    audit: Arc<AuditLog>,
    access: Option<Arc<crate::access::Access>>,
    /// Resolves, verifies and pins the packages launches install (`[packages]`).
    supply: Option<Arc<crate::supply::Supply>>,
    servers: RwLock<BTreeMap<String, Arc<Server>>>,
    /// The next server number; a lock, so that keeping it in the numbers
    /// file follows the order it was given out in.
    next_server: std::sync::Mutex<u64>,
    /// The highest next server number the runtime has kept
    /// (`Runtime::keep_server_number`); writes are made in order under it.
    kept_server: tokio::sync::Mutex<u64>,
    /// How many instances may be starting at once (`limits.max_concurrent_launches`).
    launches: Arc<crate::runtime::launches::Launches>,
    /// Set once the host began to shut down (`drain`).
    draining: std::sync::atomic::AtomicBool,
    /// Starts under way per principal, counted with their running servers
    /// against `max_servers_per_principal` (so that starts sent at once
    /// cannot pass it together).
    starting: per_principal::Counts,
    /// Open client sessions per principal without the admin role, against
    /// `max_sessions_per_principal`.
    sessions_by_principal: per_principal::Counts,
    /// Virtual servers, by name.
    virtuals: RwLock<BTreeMap<String, Arc<VirtualSpec>>>,
    /// The open sessions of virtual servers, told of servers started since.
    virtual_sessions: Mutex<Vec<std::sync::Weak<virtuals::VirtualSession>>>,
    /// Each virtual server's resource routes, shared by its sessions.
    virtual_routes: Mutex<BTreeMap<String, Arc<Mutex<crate::bridge::federation::Routes>>>>,
    /// The runtime's last readiness answer and when it was asked.
    readiness: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// How long one readiness answer of the runtime is reused: `/readyz` needs
/// no token, and must not let anyone make the host spawn at will.
const READINESS_REUSE: Duration = Duration::from_secs(1);

/// mcpod's `initialize` params: the newest handshake-era revision and the
/// client capabilities mcpod can route to its clients.
pub fn host_init_params() -> Box<serde_json::value::RawValue> {
    raw(&serde_json::json!({
        "protocolVersion": "2025-11-25",
        "capabilities": { "roots": { "listChanged": true }, "sampling": {}, "elicitation": {} },
        "clientInfo": { "name": "mcpod", "version": env!("CARGO_PKG_VERSION") }
    }))
}

impl Manager {
    /// A manager over loaded plugins and a runtime, counting starts, stops
    /// and each server's messages in `metrics`, recording audited calls in `audit`.
    pub fn new(
        plugins: Arc<PluginHost>,
        runtime: Arc<dyn Runtime>,
        policy: Policy,
        settings: ManagerSettings,
        metrics: Arc<Metrics>,
        audit: Arc<AuditLog>,
    ) -> Self {
        // Numbering goes on where the last host left it.
        let next = settings
            .numbers_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .max(1);
        let slots = match settings.max_concurrent_launches {
            0 => runtime.launch_slots(),
            n => Some(n),
        };
        let launches = crate::runtime::launches::Launches::new(slots, settings.max_waiting_launches);
        Manager {
            plugins,
            runtime,
            remote: Arc::new(crate::runtime::remote::RemoteRuntime::default()),
            policy,
            settings,
            metrics,
            audit,
            access: None,
            supply: None,
            servers: RwLock::new(BTreeMap::new()),
            next_server: std::sync::Mutex::new(next),
            kept_server: tokio::sync::Mutex::new(0),
            launches,
            draining: Default::default(),
            starting: Default::default(),
            sessions_by_principal: Default::default(),
            virtuals: Default::default(),
            virtual_sessions: Default::default(),
            virtual_routes: Default::default(),
            readiness: Default::default(),
        }
    }

    /// The same manager, running every package at the version `supply`
    /// resolved and verified.
    pub fn with_supply(mut self, supply: Arc<crate::supply::Supply>) -> Self {
        self.supply = Some(supply);
        self
    }

    /// The same manager, whose servers' sessions `access`'s policies govern.
    pub fn with_access(mut self, access: Arc<crate::access::Access>) -> Self {
        self.access = Some(access);
        self
    }

    /// Server `id` as the access policies see it (only its id when there is
    /// no such server).
    pub fn policy_facts(&self, id: &str) -> crate::access::ServerFacts {
        self.get(id).map(|s| s.facts()).unwrap_or_else(|_| crate::access::ServerFacts::named(id))
    }

    /// Tells every open session of every server when new access policies
    /// come into force (what its lists show may have changed), for as long
    /// as the manager lives.
    pub fn follow_policy_changes(self: &Arc<Self>) {
        let Some(access) = self.access.clone().filter(|a| a.is_on()) else { return };
        let mut changes = access.changes();
        let manager = Arc::downgrade(self);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(manager) = manager.upgrade() else { return };
                let servers: Vec<Arc<Server>> =
                    manager.servers.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
                for server in servers {
                    for instance in server.instances.lock().map(|l| l.clone()).unwrap_or_default() {
                        instance.policies_changed();
                    }
                }
            }
        });
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.plugins
    }

    /// The runtime's name.
    pub fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    /// Whether the runtime can start instances now (see
    /// [`Runtime::ready`]), asked at most once a second.
    pub async fn runtime_ready(&self) -> Result<(), String> {
        let mut last = self.readiness.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < READINESS_REUSE
        {
            return answer.clone();
        }
        let answer = self.runtime.ready().await;
        *last = Some((std::time::Instant::now(), answer.clone()));
        answer
    }

    fn get(&self, id: &str) -> Result<Arc<Server>, ManagerError> {
        self.servers
            .read()
            .map_err(|_| ManagerError::Failed("server table poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| ManagerError::NotFound(format!("no server `{id}`; `mcpod servers list` shows them")))
    }
}
