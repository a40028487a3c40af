//! Starting servers: plugins propose, policy decides, the runtime runs;
//! adoption of instances an earlier host left running.

use super::request::{Resolved, Sharing};
use super::status::Capabilities;
use super::{FieldProblem, Manager, ManagerError, Server, ServerStatus, StartRequest, host_init_params};
use crate::bridge::instance::InstanceSetup;
use crate::bridge::{Instance, InstanceState};
use crate::config::PluginKind;
use crate::identity::Principal;
use crate::launch::Transport;
use crate::policy::Policy;
use crate::runtime::LaunchRequest;
use crate::runtime::launches::Ticket;
use crate::supply::SupplyError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The number an id ends with (`time-12` → 12; none → 0).
fn trailing_number(id: &str) -> u64 {
    id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

impl Manager {
    /// Starts a server and waits (up to the start timeout) for it to be ready.
    pub async fn start(&self, req: StartRequest) -> Result<ServerStatus, ManagerError> {
        self.start_as(req, None, None).await
    }

    /// Starts a server for `who`, who may then stop it without the admin role.
    pub async fn start_by(&self, req: StartRequest, who: Arc<Principal>) -> Result<ServerStatus, ManagerError> {
        self.start_as(req, None, Some(who)).await
    }

    /// Starts a server under id `id` (a declared resource's name).
    pub async fn start_with_id(&self, req: StartRequest, id: &str) -> Result<ServerStatus, ManagerError> {
        self.start_as(req, Some((id.to_string(), 1)), None).await
    }

    /// Replaces server `id` with one started from `req` under the same id,
    /// so that its endpoints stay; instance numbers continue, so that the
    /// new instances never collide with the old ones still going away.
    pub async fn replace(&self, id: &str, req: StartRequest) -> Result<ServerStatus, ManagerError> {
        let next = self.get(id)?.next_instance.load(Ordering::Relaxed);
        self.stop(id).await?;
        self.start_as(req, Some((id.to_string(), next)), None).await
    }

    /// Adopts the instances an earlier host left running (pods): each server
    /// comes back under its id, on its first surviving instance; instances
    /// that cannot be adopted (their server's record is unreadable, or they
    /// served per-session clients who left with the old host) are stopped,
    /// unless the runtime keeps orphans. Returns the adopted server ids.
    pub async fn adopt(&self) -> Result<Vec<String>, ManagerError> {
        // Numbering goes on where the runtime kept it (a host in a new pod,
        // whose state_dir is new), as where the state_dir kept it.
        match self.runtime.kept_server_number().await {
            Ok(Some(kept)) => {
                if let Ok(mut next) = self.next_server.lock() {
                    *next = (*next).max(kept);
                }
                *self.kept_server.lock().await = kept;
            }
            // Kept from now on (made once here, so that a start only updates it).
            Ok(None) => {
                let next = self.next_server.lock().map(|n| *n).unwrap_or(1);
                match self.runtime.keep_server_number(next).await {
                    Ok(()) => *self.kept_server.lock().await = next,
                    Err(e) => tracing::warn!("{e}; a host in a new pod may reuse ids"),
                }
            }
            Err(e) => {
                tracing::warn!("cannot read the kept server number ({e}); a new server may get an old server's id")
            }
        }
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
                    if let Ok(mut next) = self.next_server.lock() {
                        *next = (*next).max(trailing_number(&server_id) + 1);
                    }
                    match self.start_as(req, Some((server_id.clone(), n)), None).await {
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

    /// The next server number, kept in `numbers_file` (when there is one)
    /// and by the runtime (where it keeps one: the cluster) before it is
    /// used, so that no later host gives it out again.
    async fn take_server_number(&self) -> Result<u64, ManagerError> {
        let (n, after) = {
            let mut next =
                self.next_server.lock().map_err(|_| ManagerError::Failed("server numbering poisoned".into()))?;
            let n = *next;
            *next += 1;
            if let Some(file) = &self.settings.numbers_file {
                let kept = file
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(file, next.to_string()));
                if let Err(e) = kept {
                    tracing::warn!(file = %file.display(), "cannot keep the next server number ({e}); a restarted host may reuse ids");
                }
            }
            (n, *next)
        };
        // In order under the lock, so that the kept number only grows when
        // starts run side by side.
        let mut kept = self.kept_server.lock().await;
        if after > *kept {
            match self.runtime.keep_server_number(after).await {
                Ok(()) => *kept = after,
                Err(e) => tracing::warn!("{e}; a host in a new pod may reuse ids"),
            }
        }
        Ok(n)
    }

    /// Refuses a new server or per-session instance while the machine has
    /// less memory available than `limits.min_available_memory_mib`
    /// (the local runtime; the cluster's scheduler admits pods itself), or
    /// while the launch slots and their waiting line are full.
    /// The ticket counts the start in the waiting line from now: hand it to
    /// `spawn_instance`.
    pub(super) fn admit_instance(&self) -> Result<Ticket, ManagerError> {
        crate::runtime::memory::admits(self.runtime.available_memory_mib(), self.settings.min_available_memory_mib)
            .and_then(|()| self.launches.admit())
            .map_err(ManagerError::Limit)
    }

    /// Counts a start of `who` (a principal without the admin role) against
    /// `limits.max_servers_per_principal`, with the servers it runs and its
    /// other starts under way; the slot is given back when the guard drops
    /// (the started server then counts itself).
    fn reserve_start(&self, who: &Principal) -> Result<super::per_principal::Slot, ManagerError> {
        let running = self
            .servers
            .read()
            .map(|s| s.values().filter(|s| s.owner.as_ref().is_some_and(|o| o.name == who.name)).count())
            .unwrap_or(0);
        let max = self.settings.max_servers_per_principal;
        self.starting.take(&who.name, running, max).map_err(|total| {
            ManagerError::Limit(format!(
                "`{}` runs or is starting {total} servers, the most one principal may (limits.max_servers_per_principal = {max}); stop one first",
                who.name
            ))
        })
    }

    /// Starts a server; `adopt` names the id and first instance number of a
    /// server an earlier host left running, `owner` who started it (`None`:
    /// the operator, an admin's config, or an adopted server).
    async fn start_as(
        &self,
        req: StartRequest,
        adopt: Option<(String, u64)>,
        owner: Option<Arc<Principal>>,
    ) -> Result<ServerStatus, ManagerError> {
        if self.is_draining() {
            return Err(ManagerError::Draining);
        }
        let _slot = match owner.as_deref() {
            Some(who) if who.role != crate::identity::Role::Admin => Some(self.reserve_start(who)?),
            _ => None,
        };
        // A server that runs elsewhere launches nothing here: it takes no
        // launch slot and needs no memory (named as `remote`, it is never
        // refused for them; from a template, it gives its place back once
        // its launch shows it).
        let admitted = match adopt {
            None if req.server_type.as_deref() != Some("remote") => Some(self.admit_instance()?),
            _ => None,
        };
        let problems = req.expose.problems();
        if !problems.is_empty() {
            return Err(ManagerError::BadRequest { message: problems.join("; "), details: Vec::new() });
        }
        let Resolved { config, template, declared } = self.resolve(&req).await?;
        let headers = upstream_headers(&req.headers)?;
        if let Some(bad) = req.labels.iter().find(|(k, v)| !label_ok(k, 253) || !label_ok(v, 63)) {
            return Err(ManagerError::BadRequest {
                message: format!(
                    "label {:?}={:?}: names and values are letters, digits, `-`, `_`, `.` and `/` (at most 253 and 63)",
                    bad.0, bad.1
                ),
                details: Vec::new(),
            });
        }
        let expose = match template.as_deref().and_then(|t| self.settings.expose_templates.get(t)) {
            Some(base) => req.expose.under(base),
            None => req.expose.clone(),
        };
        let problems = expose.problems();
        if !problems.is_empty() {
            return Err(ManagerError::BadRequest {
                message: format!("with [expose.templates] of the config: {}", problems.join("; ")),
                details: Vec::new(),
            });
        }
        if config.server_type == "command" && owner.as_deref().is_some_and(|o| o.role != crate::identity::Role::Admin) {
            return Err(ManagerError::Forbidden(crate::policy::PolicyError(
                "the `command` server type runs a program as this host's user; only an admin may start one".into(),
            )));
        }
        self.policy.check_config(&config)?;
        self.policy.check_env(req.env.keys().map(String::as_str), &declared)?;
        let plugin = self.plugins.server_type(&config.server_type).map_err(|_| ManagerError::BadRequest {
            message: format!(
                "unknown server type `{}`{}; loaded server types: {}",
                config.server_type,
                crate::plugin::error::failed_to_load(
                    self.plugins.load_failure(&config.server_type, PluginKind::ServerType)
                ),
                self.plugins.of_kind(PluginKind::ServerType).map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
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
        let runs = self.policy.apply(&config, &mut spec)?;
        let verifying = std::time::Instant::now();
        // An adopted server runs the versions recorded when it was first
        // verified, without asking a registry again.
        let adopted = match (&self.supply, &adopt) {
            (Some(_), Some(_)) => crate::supply::Supply::adopt(&runs.packages, &req.pins, &mut spec),
            _ => None,
        };
        let packages = match (&self.supply, adopted) {
            (_, Some(adopted)) => adopted,
            (Some(supply), None) => supply.pin(&runs.packages, &req.pins, &mut spec).await.map_err(|e| match e {
                SupplyError::Unknown(m) => ManagerError::BadRequest { message: m, details: Vec::new() },
                SupplyError::Refused(m) => ManagerError::Forbidden(crate::policy::PolicyError(m)),
                SupplyError::Unreachable(m) => ManagerError::Failed(m),
            })?,
            // Without verification there is nothing to pin with; an adopted
            // server's pods run what they run.
            (None, None) if !req.pins.is_empty() && adopt.is_none() => {
                return Err(ManagerError::BadRequest {
                    message: "`pins` chooses versions for verification, which is off ([packages] verify = false)"
                        .into(),
                    details: Vec::new(),
                });
            }
            (None, None) => Vec::new(),
        };
        let verify_ms = verifying.elapsed().as_secs_f64() * 1000.0;
        self.fill_resources(req.template.as_deref(), &mut spec.resources);
        let remote = spec.remote_url().is_some();
        let admitted = admitted.filter(|_| !remote);
        if (!req.headers.is_empty() || req.oauth.is_some()) && !remote {
            return Err(ManagerError::BadRequest {
                message: "`headers` and `oauth` are for a server that runs elsewhere (server type `remote`)".into(),
                details: Vec::new(),
            });
        }
        let oauth = match &req.oauth {
            Some(creds) => {
                let url = url::Url::parse(&creds.token_url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.username().is_empty())
                    .ok_or_else(|| ManagerError::BadRequest {
                        message: format!(
                            "oauth.token_url {:?} is not an http(s) URL without credentials",
                            creds.token_url
                        ),
                        details: Vec::new(),
                    })?;
                self.policy.check_remote_url(&url)?;
                let source = crate::upstream::oauth::TokenSource::new(creds.clone())
                    .map_err(|e| ManagerError::Failed(e.to_string()))?;
                Some(Arc::new(source))
            }
            None => None,
        };
        let runtime = if remote { &self.remote } else { &self.runtime };
        runtime.supports(&spec).map_err(|e| ManagerError::BadRequest {
            message: format!("the `{}` {e}", config.server_type),
            details: Vec::new(),
        })?;
        let sharing = req.sharing.unwrap_or(if spec.transport == Transport::Stdio {
            Sharing::PerSession
        } else {
            Sharing::Shared
        });
        let secret_names = Policy::secret_names(&spec);
        let mut recorded = req.clone();
        recorded.env.retain(|k, _| !secret_names.contains(k));
        recorded.headers.clear();
        // The versions chosen, so that a host that adopts the server keeps them.
        recorded.pins = packages.iter().map(|p| (p.name.clone(), p.version.clone())).collect();
        recorded.oauth = None;
        let start_request = serde_json::to_string(&recorded).unwrap_or_default();
        let (id, first_instance) = match adopt {
            Some((id, n)) => (id, n),
            None => (
                format!("{}-{}", template.as_deref().unwrap_or(&config.server_type), self.take_server_number().await?),
                1,
            ),
        };
        if self.servers.read().map(|s| s.contains_key(&id)).unwrap_or(false) {
            return Err(ManagerError::BadRequest {
                message: format!("server `{id}` exists already"),
                details: Vec::new(),
            });
        }
        if req.request_timeout_secs == Some(0) {
            return Err(ManagerError::BadRequest {
                message: "`request_timeout_secs` must be at least 1".into(),
                details: Vec::new(),
            });
        }
        let request_timeout = req
            .request_timeout_secs
            .map(Duration::from_secs)
            .or_else(|| template.as_deref().and_then(|t| self.settings.template_timeouts.get(t).copied()))
            .unwrap_or(self.settings.request_timeout);
        let server = Arc::new(Server {
            id: id.clone(),
            template,
            request_timeout,
            headers,
            oauth,
            labels: req.labels.clone(),
            config,
            spec,
            sharing,
            expose: Some(Arc::new(expose)).filter(|e| !e.is_empty()),
            created: SystemTime::now(),
            owner,
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
            packages,
        });
        let first = self.spawn_instance(&server, admitted);
        if let Ok(mut spare) = server.spare.lock() {
            *spare = Some(first.clone());
        }
        self.servers
            .write()
            .map_err(|_| ManagerError::Failed("server table poisoned".into()))?
            .insert(id.clone(), server.clone());
        self.metrics.starts.inc();
        let pinned: Vec<String> = server.packages.iter().map(crate::supply::Pinned::id).collect();
        let installs: Vec<&str> = if pinned.is_empty() {
            runs.packages.iter().map(|p| p.written.as_str()).collect()
        } else {
            pinned.iter().map(String::as_str).collect()
        };
        let installs: Vec<&str> = installs.into_iter().chain(runs.images.iter().map(String::as_str)).collect();
        tracing::info!(
            server = %id,
            server_type = %server.config.server_type,
            sharing = ?sharing,
            installs = %installs.join(" "),
            verify_ms = format!("{verify_ms:.1}"),
            "server starting"
        );
        let state = first.wait_settled(self.settings.start_timeout).await;
        if state == InstanceState::Ready {
            self.discover(&server, &first).await;
        }
        self.server_started().await;
        self.status(&id)
    }

    /// Fills the resource wishes a launch spec leaves open: the template's
    /// overrides from `[resources.templates]`, then the defaults.
    fn fill_resources(&self, template: Option<&str>, res: &mut crate::launch::ResourceHints) {
        let r = &self.settings.resources;
        if let Some(o) = template.and_then(|t| r.templates.get(t)) {
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
    }

    /// Starts an instance of `server`, counted by its admission's ticket if
    /// it was admitted (else from now).
    pub(super) fn spawn_instance(&self, server: &Arc<Server>, admitted: Option<Ticket>) -> Arc<Instance> {
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
        let adapter = self.plugins.adapter("stdio");
        // A remote server's "launch" is a connection, which costs this
        // machine nothing to wait for.
        let (runtime, launches, admitted) = if server.spec.remote_url().is_some() {
            (&self.remote, crate::runtime::launches::Launches::unlimited(), None)
        } else {
            (&self.runtime, self.launches.clone(), admitted)
        };
        let instance = match adapter {
            Ok(adapter) => Instance::spawn(
                InstanceSetup {
                    runtime: runtime.clone(),
                    headers: server.headers.clone(),
                    oauth: server.oauth.clone(),
                    request,
                    adapter,
                    network: self.network_codecs(),
                    max_message_bytes: self.settings.max_message_bytes,
                    init_params: host_init_params(),
                    restart: self.settings.restart,
                    request_timeout: server.request_timeout,
                    discover_timeout: self.settings.discover_timeout,
                    in_flight_budget: self.settings.in_flight_budget,
                    logs: server.logs.clone(),
                    metrics: self.metrics.server(&server.id),
                    audit: Some(self.audit.clone()),
                    expose: server.expose.clone(),
                    access: self.access.clone(),
                    server_facts: server.facts(),
                    launches,
                },
                admitted,
            ),
            Err(e) => {
                tracing::error!(server = %server.id, "cannot start: {e}");
                Instance::failed(&request, e.to_string(), self.metrics.server(&server.id))
            }
        };
        if let Ok(mut list) = server.instances.lock() {
            list.push(instance.clone());
        }
        instance
    }

    /// The adapters network upstreams use, if all of them are loaded.
    fn network_codecs(&self) -> Option<crate::upstream::Codecs> {
        let get = |name| self.plugins.adapter(name).ok();
        Some(crate::upstream::Codecs { http: get("http")?, sse: get("sse")?, websocket: get("websocket")? })
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
}

/// Whether `s` is a plain label name or value of at most `max` bytes.
fn label_ok(s: &str, max: usize) -> bool {
    s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// Checks the headers a start gives a remote server: valid HTTP names and
/// values, none that HTTP or MCP itself sets (the host sets those).
fn upstream_headers(given: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, ManagerError> {
    const OWN: [&str; 9] = [
        "host",
        "content-length",
        "content-type",
        "accept",
        "connection",
        "transfer-encoding",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ];
    let bad = |message: String| ManagerError::BadRequest { message, details: Vec::new() };
    given
        .iter()
        .map(|(name, value)| {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(bad(format!("`{name}` is not an HTTP header name")));
            }
            if OWN.contains(&name.to_ascii_lowercase().as_str()) || name.to_ascii_lowercase().starts_with("mcp-") {
                return Err(bad(format!(
                    "header `{name}` is set by mcpod itself; give only headers such as `Authorization`"
                )));
            }
            if axum::http::HeaderValue::from_str(value).is_err() {
                return Err(bad(format!(
                    "the value of header `{name}` holds characters HTTP does not allow (a line break?)"
                )));
            }
            Ok((name.clone(), value.clone()))
        })
        .collect()
}
