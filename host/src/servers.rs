//! The server manager: start a server from a template or a raw config
//! (plugins, then policy, then a runtime), list, inspect and stop servers,
//! and open client sessions on them. Usable as a library without HTTP: it
//! is the Rust counterpart of the seed's `MCPKubernetesManager`.

use crate::bridge::instance::{InstanceSetup, RestartPolicy};
use crate::bridge::{Delivery, Instance, InstanceState, SessionId};
use crate::catalog;
use crate::config::{Config, PluginKind};
use crate::jsonrpc::{Message, raw};
use crate::plugin::bindings::{ErrorCode, KeyValue, LaunchSpec, ServerConfig, Transport};
use crate::plugin::{CallError, PluginHost};
use crate::policy::{Policy, PolicyError};
use crate::runtime::{LaunchRequest, Runtime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

mod handles;
pub use handles::{HandleInfo, Target, reap_every};

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
}

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

/// Whether clients share one process or each gets its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Each client session gets its own instance, stopped with the session.
    PerSession,
    /// One instance serves every session, with ids rewritten per session.
    Shared,
}

/// A request to start a server: a template with params and env, or a raw
/// config in the seed's shape.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// A template name (`time`, `github`).
    pub template: Option<String>,
    /// Template params.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Environment: the template's secrets, or extra variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Raw config: the server type (`npx`, `uv`, `archon`, `image`, ...).
    pub server_type: Option<String>,
    /// Raw config: the package.
    pub package: Option<String>,
    /// Raw config: the version.
    pub version: Option<String>,
    /// Raw config: the image.
    pub image: Option<String>,
    /// Raw config: the transport (`stdio`, `streamable-http`, `sse`, `websocket`).
    pub transport: Option<String>,
    /// Raw config: the port of a network server.
    pub port: Option<u16>,
    /// Raw config: the endpoint path of a network server.
    pub path: Option<String>,
    /// Raw config: arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Raw config: server-type options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// How clients share the server (default: per-session for stdio, shared otherwise).
    pub sharing: Option<Sharing>,
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
            public_url: match &config.server.public_url {
                Some(url) => url.trim_end_matches('/').to_string(),
                None => format!("http://{}", config.server.listen),
            },
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
    /// When it was started.
    pub created: SystemTime,
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
    logs: crate::bridge::stdio::LogBuffer,
    sessions: AtomicU64,
    next_instance: AtomicU64,
    /// The start request as JSON, secret values removed: recorded on
    /// instances that outlive the host, so that it can adopt them.
    start_request: String,
}

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

/// A server as the API shows it (no secret values).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Its id.
    pub server_id: String,
    /// `starting`, `ready`, `restarting`, `failed`, `stopped`.
    pub status: String,
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
}

/// Starts, tracks and stops servers.
pub struct Manager {
    plugins: Arc<PluginHost>,
    runtime: Arc<dyn Runtime>,
    policy: Policy,
    settings: ManagerSettings,
    servers: RwLock<BTreeMap<String, Arc<Server>>>,
    next_server: AtomicU64,
}

/// A client's session on a server.
pub struct ClientSession {
    server: Arc<Server>,
    instance: Arc<Instance>,
    session: SessionId,
    owns_instance: bool,
    /// Messages for the client.
    pub rx: mpsc::Receiver<Delivery>,
    closed: bool,
}

impl ClientSession {
    /// Sends one client message to the server.
    pub fn send(&self, msg: Message) {
        self.instance.send(self.session, msg);
    }

    /// Hands this session's deliveries to `sink` in place instead of `rx`
    /// (what already waits in `rx` goes first).
    pub fn redirect(&mut self, sink: Arc<dyn crate::bridge::DirectSink>) {
        self.instance.redirect(self.session, sink.clone());
        while let Ok(d) = self.rx.try_recv() {
            sink.deliver(d);
        }
    }

    /// The server's id.
    pub fn server_id(&self) -> &str {
        &self.server.id
    }

    /// Ends the session (and its instance, in per-session mode).
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.instance.detach(self.session);
        self.server.sessions.fetch_sub(1, Ordering::Relaxed);
        if self.owns_instance {
            self.instance.stop();
            if let Ok(mut list) = self.server.instances.lock() {
                list.retain(|i| !Arc::ptr_eq(i, &self.instance));
            }
        }
    }
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        self.close();
    }
}

/// mcpod's `initialize` params: the newest handshake-era revision and the
/// client capabilities mcpod can route to its clients.
pub fn host_init_params() -> Box<serde_json::value::RawValue> {
    raw(&serde_json::json!({
        "protocolVersion": "2025-11-25",
        "capabilities": { "roots": { "listChanged": true }, "sampling": {}, "elicitation": {} },
        "clientInfo": { "name": "mcpod", "version": env!("CARGO_PKG_VERSION") }
    }))
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Stdio => "stdio",
        Transport::StreamableHttp => "streamable-http",
        Transport::Sse => "sse",
        Transport::Websocket => "websocket",
    }
}

fn parse_transport(s: &str) -> Result<Transport, ManagerError> {
    match s {
        "stdio" => Ok(Transport::Stdio),
        "streamable-http" | "http" => Ok(Transport::StreamableHttp),
        "sse" => Ok(Transport::Sse),
        "websocket" | "ws" => Ok(Transport::Websocket),
        other => Err(ManagerError::BadRequest {
            message: format!("unknown transport {other:?}; use stdio, streamable-http, sse or websocket"),
            details: Vec::new(),
        }),
    }
}

/// The number an id ends with (`time-12` → 12; none → 0).
fn trailing_number(id: &str) -> u64 {
    id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn kv(map: &BTreeMap<String, String>) -> Vec<KeyValue> {
    map.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.clone() }).collect()
}

impl Manager {
    /// A manager over loaded plugins and a runtime.
    pub fn new(plugins: Arc<PluginHost>, runtime: Arc<dyn Runtime>, policy: Policy, settings: ManagerSettings) -> Self {
        Manager {
            plugins,
            runtime,
            policy,
            settings,
            servers: RwLock::new(BTreeMap::new()),
            next_server: AtomicU64::new(1),
        }
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.plugins
    }

    /// The runtime's name.
    pub fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    /// Turns a start request into a server config: rendered from its
    /// template, or taken as it is.
    pub async fn resolve(&self, req: &StartRequest) -> Result<(ServerConfig, Option<String>), ManagerError> {
        if let Some(name) = &req.template {
            if req.server_type.is_some() || req.package.is_some() || req.image.is_some() {
                return Err(ManagerError::BadRequest {
                    message: "give either `template` or a raw config (`server_type`, `package`, ...), not both".into(),
                    details: Vec::new(),
                });
            }
            let found = catalog::find_template(&self.plugins, name).await.map_err(|e| match e.code() {
                Some(ErrorCode::NotFound) | None => {
                    ManagerError::NotFound(format!("no template named `{name}`; `mcpod templates list` shows them"))
                }
                _ => e.into(),
            })?;
            let secret_names: Vec<&str> = found.template.secrets.iter().map(|s| s.name.as_str()).collect();
            let (secrets, extra): (BTreeMap<_, _>, BTreeMap<_, _>) =
                req.env.clone().into_iter().partition(|(k, _)| secret_names.contains(&k.as_str()));
            let mut config = catalog::render_template(&self.plugins, name, &kv(&req.params), &kv(&secrets)).await?;
            for (k, v) in extra {
                config.env.retain(|e| e.key != k);
                config.env.push(KeyValue { key: k, value: v });
            }
            if !req.args.is_empty() {
                config.args.extend(req.args.iter().cloned());
            }
            return Ok((config, Some(name.clone())));
        }
        let server_type = req.server_type.clone().ok_or_else(|| ManagerError::BadRequest {
            message: "give a `template`, or a raw config with at least `server_type`".into(),
            details: Vec::new(),
        })?;
        let transport = req.transport.as_deref().map(parse_transport).transpose()?;
        Ok((
            ServerConfig {
                server_type,
                package: req.package.clone(),
                version: req.version.clone(),
                image: req.image.clone(),
                args: req.args.clone(),
                env: kv(&req.env),
                transport,
                port: req.port,
                path: req.path.clone(),
                options: kv(&req.options),
            },
            None,
        ))
    }

    /// Starts a server and waits (up to the start timeout) for it to be ready.
    pub async fn start(&self, req: StartRequest) -> Result<ServerStatus, ManagerError> {
        self.start_as(req, None).await
    }

    /// Starts a server under id `id` (a declared resource's name).
    pub async fn start_with_id(&self, req: StartRequest, id: &str) -> Result<ServerStatus, ManagerError> {
        self.start_as(req, Some((id.to_string(), 1))).await
    }

    /// Replaces server `id` with one started from `req` under the same id,
    /// so that its endpoints stay; instance numbers continue, so that the
    /// new instances never collide with the old ones still going away.
    pub async fn replace(&self, id: &str, req: StartRequest) -> Result<ServerStatus, ManagerError> {
        let next = self.get(id)?.next_instance.load(Ordering::Relaxed);
        self.stop(id).await?;
        self.start_as(req, Some((id.to_string(), next))).await
    }

    /// Adopts the instances an earlier host left running (pods): each server
    /// comes back under its id, on its first surviving instance; instances
    /// that cannot be adopted (their server's record is unreadable, or they
    /// served per-session clients who left with the old host) are stopped,
    /// unless the runtime keeps orphans. Returns the adopted server ids.
    pub async fn adopt(&self) -> Result<Vec<String>, ManagerError> {
        let found = self.runtime.adoptable().await.map_err(|e| ManagerError::Failed(e.to_string()))?;
        let mut by_server: BTreeMap<String, Vec<crate::runtime::Adoptable>> = BTreeMap::new();
        for a in found {
            by_server.entry(a.server_id.clone()).or_default().push(a);
        }
        let mut adopted = Vec::new();
        for (server_id, mut instances) in by_server {
            instances.sort_by_key(|a| trailing_number(&a.instance_id));
            let first = instances.remove(0);
            let req = first.start_request.as_deref().and_then(|j| serde_json::from_str::<StartRequest>(j).ok());
            let mut orphans = instances;
            match req {
                Some(mut req) if !server_id.is_empty() => {
                    req.env.extend(first.secret_env.clone());
                    let n = trailing_number(&first.instance_id);
                    self.next_server.fetch_max(trailing_number(&server_id) + 1, Ordering::Relaxed);
                    match self.start_as(req, Some((server_id.clone(), n))).await {
                        Ok(_) => {
                            tracing::info!(server = %server_id, instance = %first.instance_id, "adopted");
                            adopted.push(server_id);
                        }
                        Err(e) => {
                            tracing::warn!(server = %server_id, "cannot adopt: {e}");
                            orphans.push(first);
                        }
                    }
                }
                _ => orphans.push(first),
            }
            for orphan in orphans {
                if self.runtime.keeps_orphans() {
                    tracing::info!(instance = %orphan.instance_id, "leaving an orphan instance alone (kubernetes.orphans = keep)");
                } else if let Err(e) = self.runtime.stop(&orphan.instance_id).await {
                    tracing::warn!(instance = %orphan.instance_id, "cannot stop an orphan instance: {e}");
                } else {
                    tracing::info!(instance = %orphan.instance_id, "stopped an orphan instance");
                }
            }
        }
        Ok(adopted)
    }

    /// Starts a server; `adopt` names the id and first instance number of a
    /// server an earlier host left running.
    async fn start_as(&self, req: StartRequest, adopt: Option<(String, u64)>) -> Result<ServerStatus, ManagerError> {
        let (config, template) = self.resolve(&req).await?;
        self.policy.check_config(&config)?;
        let plugin =
            self.plugins.get(&config.server_type, PluginKind::ServerType).map_err(|_| ManagerError::BadRequest {
                message: format!(
                    "unknown server type `{}`; loaded server types: {}",
                    config.server_type,
                    self.plugins
                        .of_kind(PluginKind::ServerType)
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                details: Vec::new(),
            })?;
        let problems = plugin.validate(&config).await?;
        if !problems.is_empty() {
            return Err(ManagerError::BadRequest {
                message: format!(
                    "invalid server config: {}",
                    problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; ")
                ),
                details: problems.into_iter().map(|p| FieldProblem { field: p.field, message: p.message }).collect(),
            });
        }
        let mut spec = plugin.launch(&config).await?;
        self.policy.apply(&config, &mut spec)?;
        let r = &self.settings.resources;
        let res = &mut spec.resources;
        if let Some(o) = req.template.as_ref().and_then(|t| r.templates.get(t)) {
            for (over, field) in [
                (&o.cpu_request, &mut res.cpu_request),
                (&o.cpu_limit, &mut res.cpu_limit),
                (&o.memory_request, &mut res.memory_request),
                (&o.memory_limit, &mut res.memory_limit),
            ] {
                if over.is_some() {
                    field.clone_from(over);
                }
            }
        }
        res.cpu_request.get_or_insert_with(|| r.cpu_request.clone());
        res.cpu_limit.get_or_insert_with(|| r.cpu_limit.clone());
        res.memory_request.get_or_insert_with(|| r.memory_request.clone());
        res.memory_limit.get_or_insert_with(|| r.memory_limit.clone());
        if self.runtime.name() == "local" && spec.process.is_none() {
            return Err(ManagerError::BadRequest {
                message: format!(
                    "the `{}` server type runs only as a container; start mcpod with the kubernetes runtime",
                    config.server_type
                ),
                details: Vec::new(),
            });
        }
        let sharing = req.sharing.unwrap_or(if spec.transport == Transport::Stdio {
            Sharing::PerSession
        } else {
            Sharing::Shared
        });
        let secret_names = Policy::secret_names(&spec);
        let mut recorded = req.clone();
        recorded.env.retain(|k, _| !secret_names.contains(k));
        let start_request = serde_json::to_string(&recorded).unwrap_or_default();
        let (id, first_instance) = match adopt {
            Some((id, n)) => (id, n),
            None => (
                format!(
                    "{}-{}",
                    template.as_deref().unwrap_or(&config.server_type),
                    self.next_server.fetch_add(1, Ordering::Relaxed)
                ),
                1,
            ),
        };
        if self.servers.read().map(|s| s.contains_key(&id)).unwrap_or(false) {
            return Err(ManagerError::BadRequest {
                message: format!("server `{id}` exists already"),
                details: Vec::new(),
            });
        }
        let server = Arc::new(Server {
            id: id.clone(),
            template,
            config,
            spec,
            sharing,
            created: SystemTime::now(),
            instances: Mutex::new(Vec::new()),
            spare: Mutex::new(None),
            stateless: Mutex::new(None),
            interactive: Arc::new(tokio::sync::Mutex::new(())),
            handles: Default::default(),
            capabilities: Mutex::new(None),
            logs: Default::default(),
            sessions: AtomicU64::new(0),
            next_instance: AtomicU64::new(first_instance),
            start_request,
        });
        let first = self.spawn_instance(&server);
        if let Ok(mut spare) = server.spare.lock() {
            *spare = Some(first.clone());
        }
        self.servers
            .write()
            .map_err(|_| ManagerError::Failed("server table poisoned".into()))?
            .insert(id.clone(), server.clone());
        crate::metrics::global().starts.inc();
        tracing::info!(server = %id, server_type = %server.config.server_type, sharing = ?sharing, "server starting");
        let state = first.wait_settled(self.settings.start_timeout).await;
        if state == InstanceState::Ready {
            self.discover(&server, &first).await;
        }
        self.status(&id)
    }

    fn spawn_instance(&self, server: &Arc<Server>) -> Arc<Instance> {
        let n = server.next_instance.fetch_add(1, Ordering::Relaxed);
        let request = LaunchRequest {
            server_id: server.id.clone(),
            instance_id: format!("{}-{n}", server.id),
            spec: server.spec.clone(),
            secret_env: Policy::secret_names(&server.spec),
            labels: BTreeMap::from([
                ("server".to_string(), server.id.clone()),
                ("template".to_string(), server.template.clone().unwrap_or_default()),
            ]),
            annotations: BTreeMap::from([(
                crate::runtime::kube::START_ANNOTATION.to_string(),
                server.start_request.clone(),
            )]),
            logs: server.logs.clone(),
        };
        let adapter = self.plugins.get("stdio", PluginKind::ProtocolAdapter).cloned();
        let instance = match adapter {
            Ok(adapter) => Instance::spawn(InstanceSetup {
                runtime: self.runtime.clone(),
                request,
                adapter,
                network: self.network_codecs(),
                max_message_bytes: self.settings.max_message_bytes,
                init_params: host_init_params(),
                restart: self.settings.restart,
                logs: server.logs.clone(),
            }),
            Err(e) => {
                tracing::error!(server = %server.id, "cannot start: {e}");
                Instance::failed(&request, e.to_string())
            }
        };
        if let Ok(mut list) = server.instances.lock() {
            list.push(instance.clone());
        }
        instance
    }

    /// The adapters network upstreams use, if all of them are loaded.
    fn network_codecs(&self) -> Option<crate::bridge::network::Codecs> {
        let get = |name| self.plugins.get(name, PluginKind::ProtocolAdapter).ok().cloned();
        Some(crate::bridge::network::Codecs { http: get("http")?, sse: get("sse")?, websocket: get("websocket")? })
    }

    /// Records what a ready instance declares.
    async fn discover(&self, server: &Arc<Server>, instance: &Arc<Instance>) {
        let Some(initialize) = instance.initialize_result() else { return };
        let has_tools = initialize.pointer("/capabilities/tools").is_some();
        let tools = if has_tools {
            match instance.host_call("tools/list", None, Duration::from_secs(30)).await {
                Ok(msg) => msg.result.and_then(|r| serde_json::from_str(r.get()).ok()),
                Err(e) => {
                    tracing::warn!(server = %server.id, "tools/list for discovery failed: {e}");
                    None
                }
            }
        } else {
            None
        };
        if let Ok(mut caps) = server.capabilities.lock() {
            *caps = Some(Capabilities { initialize, tools });
        }
    }

    /// Refuses one more session or instance handle past `open` on server `id`.
    fn check_session_limit(&self, id: &str, open: usize) -> Result<(), ManagerError> {
        if open >= self.settings.max_sessions_per_server {
            return Err(ManagerError::Limit(format!(
                "server `{id}` already has {open} sessions and instance handles (limits.max_sessions_per_server); close one or raise the limit"
            )));
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Arc<Server>, ManagerError> {
        self.servers
            .read()
            .map_err(|_| ManagerError::Failed("server table poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| ManagerError::NotFound(format!("no server `{id}`; `mcpod servers list` shows them")))
    }

    /// A server's status.
    pub fn status(&self, id: &str) -> Result<ServerStatus, ManagerError> {
        let server = self.get(id)?;
        Ok(self.describe(&server))
    }

    fn describe(&self, server: &Server) -> ServerStatus {
        let instances: Vec<Arc<Instance>> = server.instances.lock().map(|l| l.clone()).unwrap_or_default();
        let states: Vec<InstanceState> = instances.iter().map(|i| i.state()).collect();
        let (status, detail) = summarize(&states);
        let mut endpoints = BTreeMap::new();
        let base = format!("{}/servers/{}", self.settings.public_url, server.id);
        endpoints.insert("streamable_http".to_string(), format!("{base}/mcp"));
        endpoints.insert("sse".to_string(), format!("{base}/sse"));
        endpoints.insert("websocket".to_string(), format!("{}/ws", base.replacen("http", "ws", 1)));
        ServerStatus {
            server_id: server.id.clone(),
            healthy: status == "ready",
            status,
            detail,
            template: server.template.clone(),
            server_type: server.config.server_type.clone(),
            package: server.config.package.clone(),
            transport: transport_name(server.spec.transport).to_string(),
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
            endpoints,
            capabilities: server.capabilities.lock().ok().and_then(|c| c.clone()),
        }
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
        crate::metrics::global().stops.inc();
        let mut status = self.describe(&server);
        status.status = "stopped".to_string();
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
        for id in ids {
            let _ = self.stop(&id).await;
        }
        self.runtime.shutdown().await;
    }

    /// Opens a session for one 2026-07-28 request. Those clients have no
    /// session, so they share one instance of the server: the shared one,
    /// or for a per-session server, one kept for them; or the instance of
    /// the handle the target names.
    /// `askable`: whether the server's requests may be sent to it (only one
    /// such request in flight per instance: see [`Manager::interactive_turn`]).
    pub async fn open_stateless(&self, target: &Target, askable: bool) -> Result<ClientSession, ManagerError> {
        let id = target.server.as_str();
        let server = self.get(id)?;
        let alive = |i: &Arc<Instance>| !matches!(i.state(), InstanceState::Failed(_) | InstanceState::Stopped);
        let instance = match (&target.handle, server.sharing) {
            (Some(token), _) => self.handle(&server, token)?.instance.clone(),
            (None, Sharing::Shared) => match server.instances.lock().ok().and_then(|l| l.first().cloned()) {
                Some(i) if alive(&i) => i,
                _ => self.spawn_instance(&server),
            },
            (None, Sharing::PerSession) => {
                let kept = server.stateless.lock().ok().and_then(|s| s.clone());
                match kept {
                    Some(i) if alive(&i) => i,
                    _ => {
                        let fresh = self.spawn_instance(&server);
                        if let Ok(mut slot) = server.stateless.lock() {
                            *slot = Some(fresh.clone());
                        }
                        fresh
                    }
                }
            }
        };
        let (session, rx) = instance
            .attach_with(!askable)
            .ok_or_else(|| ManagerError::Failed(format!("server `{id}` cannot take requests right now")))?;
        server.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(ClientSession { server, instance, session, owns_instance: false, rx, closed: false })
    }

    /// Waits until no other 2026-07-28 request that may be asked for input
    /// is in flight on the target's instance; the guard holds the turn.
    pub async fn interactive_turn(&self, target: &Target) -> Result<tokio::sync::OwnedMutexGuard<()>, ManagerError> {
        let server = self.get(&target.server)?;
        let lock = match &target.handle {
            Some(token) => self.handle(&server, token)?.interactive.clone(),
            None => server.interactive.clone(),
        };
        Ok(lock.lock_owned().await)
    }

    /// The `initialize` result of the instance 2026-07-28 requests to
    /// `target` use, once it is ready (waits up to the start timeout).
    pub async fn stateless_initialize(&self, target: &Target) -> Result<serde_json::Value, ManagerError> {
        let id = target.server.as_str();
        let session = self.open_stateless(target, false).await?;
        let state = session.instance.wait_settled(self.settings.start_timeout).await;
        session.instance.initialize_result().ok_or_else(|| {
            ManagerError::Failed(format!(
                "server `{id}` is not ready ({state:?}); `mcpod servers status {id}` says why"
            ))
        })
    }

    /// Opens a client session on server `id`.
    pub async fn open_session(&self, id: &str) -> Result<ClientSession, ManagerError> {
        let server = self.get(id)?;
        self.check_session_limit(
            id,
            server.sessions.load(Ordering::Relaxed) as usize + handles::handle_count(&server),
        )?;
        let (instance, owns) = match server.sharing {
            Sharing::Shared => {
                let current = server.instances.lock().ok().and_then(|l| l.first().cloned());
                match current {
                    Some(i) if !matches!(i.state(), InstanceState::Failed(_) | InstanceState::Stopped) => (i, false),
                    _ => (self.spawn_instance(&server), false),
                }
            }
            Sharing::PerSession => {
                let spare = server.spare.lock().ok().and_then(|mut s| s.take());
                match spare {
                    Some(i) if !matches!(i.state(), InstanceState::Failed(_) | InstanceState::Stopped) => (i, true),
                    _ => (self.spawn_instance(&server), true),
                }
            }
        };
        let (session, rx) = instance
            .attach()
            .ok_or_else(|| ManagerError::Failed(format!("server `{id}` cannot take sessions right now")))?;
        server.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(ClientSession { server, instance, session, owns_instance: owns, rx, closed: false })
    }
}

/// One word (and detail) for a set of instance states.
fn summarize(states: &[InstanceState]) -> (String, Option<String>) {
    if states.is_empty() {
        return ("idle".to_string(), None);
    }
    if states.contains(&InstanceState::Ready) {
        return ("ready".to_string(), None);
    }
    for s in states {
        match s {
            InstanceState::Restarting(why) => return ("restarting".to_string(), Some(why.clone())),
            InstanceState::Failed(why) => return ("failed".to_string(), Some(why.clone())),
            _ => {}
        }
    }
    if states.iter().all(|s| *s == InstanceState::Stopped) {
        return ("stopped".to_string(), None);
    }
    ("starting".to_string(), None)
}
