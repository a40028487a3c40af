//! Assembles the host from a config: plugins, runtime, manager, the MCP
//! front and the management API, as one router. `mcpod serve` and the
//! tests both start the host through here.

use crate::api::{self, AppState};
use crate::config::{Config, RuntimeKind};
use crate::front::{self, FrontState};
use crate::gate;
use crate::metrics::Metrics;
use crate::plugin::PluginHost;
use crate::policy::Policy;
use crate::runtime::Runtime;
use crate::runtime::local::LocalRuntime;
use crate::servers::{Manager, ManagerSettings};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// Why the host could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The plugin runtime could not start.
    #[error(transparent)]
    Plugins(#[from] crate::plugin::HostError),
    /// The API token is missing where it is required, or unreadable.
    #[error("{0}")]
    Token(String),
    /// The runtime could not be set up.
    #[error("{0}")]
    Runtime(String),
    /// The access policies could not be read.
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    /// `[packages]` names a file that cannot be read.
    #[error("{0}")]
    Packages(String),
}

/// The assembled host.
pub struct App {
    /// The loaded plugins.
    pub plugins: Arc<PluginHost>,
    /// The server manager.
    pub manager: Arc<Manager>,
    /// Every route: API, front, health, metrics.
    pub router: Router,
    /// Where the admin token came from (`serve` tells the user once).
    pub token_source: crate::auth::TokenSource,
    /// The audit log (`serve` flushes it before it exits).
    pub audit: Arc<crate::audit::AuditLog>,
    /// Every metric (`serve`'s listener counts its connections there).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The admin token for `config`, from the process environment (see
/// [`crate::auth::admin_token`]); `mcpod serve` asks before it binds the
/// address, so that a refusal comes before anything starts.
pub fn admin_token(config: &Config) -> Result<crate::auth::AdminToken, AppError> {
    crate::auth::admin_token(config, &|k| std::env::var(k).ok()).map_err(|e| AppError::Token(e.to_string()))
}

/// The named tokens of `config` (MCPOD_TOKENS_FILE, `[auth] tokens_file`,
/// or the default file), re-read every two seconds while the host runs so
/// that `mcpod tokens create` and `revoke` apply without a restart.
fn named_tokens(config: &Config) -> Result<Arc<crate::identity::TokenTable>, AppError> {
    let env = |k: &str| std::env::var(k).ok();
    let path = crate::identity::tokens_file(config.auth.tokens_file.as_deref(), &env);
    let table = crate::identity::TokenTable::load(path).map_err(|e| AppError::Token(e.to_string()))?;
    table.refresh_every(Duration::from_secs(2));
    Ok(table)
}

/// Every credential `config` accepts: the admin token, the named tokens,
/// and the `[auth.oidc]` and `[auth.kubernetes]` checks. The issuer's keys
/// are fetched in the background, so a slow issuer never delays the start.
async fn authenticator(
    config: &Config,
    admin: Option<Arc<str>>,
    kube_client: Option<kube::Client>,
) -> Result<crate::identity::Authenticator, AppError> {
    use crate::identity::{Authenticator, oidc, service_account};
    let named = named_tokens(config)?;
    let env = |k: &str| std::env::var(k).ok();
    let oidc = match &config.auth.oidc {
        None => None,
        Some(section) => {
            let v = Arc::new(oidc::Verifier::new(section, &env).map_err(|e| AppError::Token(e.to_string()))?);
            let warm = v.clone();
            tokio::spawn(async move { warm.warm().await });
            Some(v)
        }
    };
    let kubernetes = match &config.auth.kubernetes {
        None => None,
        Some(section) => {
            let client = match kube_client {
                Some(c) => c,
                None => crate::runtime::kube::client(config)
                    .await
                    .map_err(|e| AppError::Runtime(format!("[auth.kubernetes] needs the Kubernetes API: {e}")))?,
            };
            Some(Arc::new(service_account::Reviewer::new(client, section)))
        }
    };
    Ok(Authenticator::new(admin, named, oidc, kubernetes))
}

/// Where `config` sends audit records.
fn audit_sink(config: &Config) -> crate::audit::Sink {
    use crate::config::AuditSink;
    let a = &config.audit;
    match (a.sink, &a.file) {
        (AuditSink::Off, _) => crate::audit::Sink::Off,
        (AuditSink::Stdout, _) => crate::audit::Sink::Stdout,
        (AuditSink::File, Some(path)) => {
            crate::audit::Sink::File { path: path.clone(), max_bytes: a.max_mib.max(1) << 20, keep: a.keep }
        }
        // Config::validate refuses a file sink without a file.
        (AuditSink::File, None) => crate::audit::Sink::Stdout,
    }
}

/// The local runtime, its sandbox as `[sandbox]`, the policy and `[limits]` say.
pub fn local_runtime(config: &Config) -> LocalRuntime {
    LocalRuntime::new(sandbox_settings(config), Duration::from_secs(5))
}

/// `server.state_dir` as an absolute path: processes run in their own work
/// directories, and the sandbox grants only absolute paths.
fn absolute_state_dir(config: &Config) -> Option<std::path::PathBuf> {
    config.server.state_dir.as_ref().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
}

/// Where checked package files are kept: `packages` in the state dir.
fn kept_packages(config: &Config) -> Option<std::path::PathBuf> {
    absolute_state_dir(config).map(|d| d.join("packages"))
}

/// The local runtime's sandbox, as `[sandbox]`, the policy and `[limits]` say.
fn sandbox_settings(config: &Config) -> crate::runtime::sandbox::SandboxSettings {
    let s = &config.sandbox;
    let work_root = match absolute_state_dir(config) {
        Some(dir) => dir.join("work"),
        None => std::env::temp_dir().join("mcpod-work"),
    };
    crate::runtime::sandbox::SandboxSettings {
        enabled: s.enabled,
        cgroups: s.cgroups,
        read: s.read.clone(),
        write: s.write.clone(),
        // mcpod's state and config: a server's arguments (a caller may name
        // the filesystem server's directories) never make them writable.
        guarded: {
            let env = |k: &str| std::env::var(k).ok();
            let config_dir = crate::config::xdg_dir(&env, "XDG_CONFIG_HOME", ".config");
            absolute_state_dir(config).into_iter().chain(config_dir).collect()
        },
        kept_packages: kept_packages(config),
        shared_paths: config
            .policy
            .allowed_paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect(),
        max_processes: (s.max_processes > 0).then_some(s.max_processes),
        internet_access: config.policy.internet_access,
        work_root,
        address_space_bytes: config.limits.local_memory_mib.map(|m| m << 20),
        cpu_seconds: config.limits.local_cpu_secs,
    }
}

/// The package verifier `[packages]` asks for, its files read; `None` when
/// verification is off.
fn supply(config: &Config, metrics: &Arc<Metrics>) -> Result<Option<Arc<crate::supply::Supply>>, AppError> {
    let p = &config.packages;
    if !p.verify {
        return Ok(None);
    }
    let read = |key: &str, file: &Option<std::path::PathBuf>| -> Result<Option<String>, AppError> {
        let Some(file) = file else { return Ok(None) };
        let path = if file.is_absolute() { file.clone() } else { config.base_dir.join(file) };
        std::fs::read_to_string(&path).map(|t| Some(t.trim().to_string())).map_err(|e| {
            AppError::Packages(format!("[packages] {key} {}: {e}; fix the path or remove the key", path.display()))
        })
    };
    let npm_keys = match read("npm_keys_file", &p.npm_keys_file)? {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            AppError::Packages(format!("[packages] npm_keys_file is not a /-/npm/v1/keys JSON document: {e}"))
        })?),
        None => None,
    };
    let settings = crate::supply::SupplySettings {
        npm_registry: p.npm_registry.clone(),
        pypi_index: p.pypi_index.clone(),
        npm_keys,
        npm_token: read("npm_token_file", &p.npm_token_file)?,
        pypi_token: read("pypi_token_file", &p.pypi_token_file)?,
        require_signatures: p.require_signatures,
        require_provenance: p.require_provenance,
        sigstore_root: match read("sigstore_trusted_root_file", &p.sigstore_trusted_root_file)? {
            None => crate::supply::sigstore::TrustedRoot::public_good(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| e.to_string())
                .and_then(|doc| crate::supply::sigstore::TrustedRoot::parse(&doc).map_err(|e| e.to_string()))
                .map_err(|e| {
                    AppError::Packages(format!(
                        "[packages] sigstore_trusted_root_file is not a Sigstore trusted root: {e}; give a trusted_root.json or remove the key"
                    ))
                })?,
        },
        download: p.download,
        cache: Duration::from_secs(p.cache_secs),
        // npx and uv on this machine install the very files mcpod
        // checked; a pod cannot read this host's files.
        files: match config.server.runtime {
            RuntimeKind::Local => kept_packages(config),
            RuntimeKind::Kubernetes => None,
        },
        pods: config.server.runtime == RuntimeKind::Kubernetes,
    };
    let supply =
        crate::supply::Supply::new(settings, metrics.clone()).map_err(|e| AppError::Packages(e.to_string()))?;
    Ok(Some(Arc::new(supply)))
}

/// Builds the host for `config`, with `runtime` (or the one the config names).
pub async fn build(config: &Config, runtime: Option<Arc<dyn Runtime>>) -> Result<App, AppError> {
    crate::tls::install_provider();
    let admin = admin_token(config)?;
    let metrics = Arc::new(Metrics::new());
    let plugins = Arc::new(PluginHost::load_reporting_to(config, metrics.clone()).await?);
    let audit = crate::audit::AuditLog::new(audit_sink(config), metrics.clone());
    let mut kube_client = None;
    let runtime: Arc<dyn Runtime> = match runtime {
        Some(r) => r,
        None => match config.server.runtime {
            RuntimeKind::Local => Arc::new(local_runtime(config)),
            RuntimeKind::Kubernetes => {
                let client =
                    crate::runtime::kube::client(config).await.map_err(|e| AppError::Runtime(e.to_string()))?;
                kube_client = Some(client.clone());
                Arc::new(crate::runtime::kube::KubeRuntime::new(client, config))
            }
        },
    };
    let access = crate::access::Access::load(config.access_policies())?;
    access.refresh_every(Duration::from_secs(2));
    let mut manager = Manager::new(
        plugins.clone(),
        runtime,
        Policy::new(config.policy.clone()),
        ManagerSettings::from_config(config),
        metrics.clone(),
        audit.clone(),
    )
    .with_access(access.clone());
    if let Some(supply) = supply(config, &metrics)? {
        manager = manager.with_supply(supply);
    }
    let manager = Arc::new(manager);
    let adopted = manager.adopt().await.map_err(|e| AppError::Runtime(format!("cannot adopt running servers: {e}")))?;
    if !adopted.is_empty() {
        tracing::info!(count = adopted.len(), servers = ?adopted, "adopted servers left running by an earlier host");
    }
    for spec in &config.virtuals {
        manager
            .create_virtual(spec.clone())
            .map_err(|e| AppError::Runtime(format!("[[virtual]] {:?}: {e}", spec.name)))?;
    }
    if let Some(client) = kube_client.clone().filter(|_| config.kubernetes.watch_resources) {
        let (manager, ns) = (manager.clone(), config.kubernetes.namespace.clone());
        tokio::spawn(async move { crate::operator::run(client, &ns, manager).await });
    }
    let idle = Duration::from_secs(config.limits.session_idle_secs);
    crate::servers::reap_every(&manager, Duration::from_secs(15).min(idle).max(Duration::from_millis(100)));
    // With `keep_unused_days = 0` nothing is removed, but what runs is
    // still marked used, for the other hosts that share the directories.
    let keep = match config.packages.keep_unused_days {
        0 => Duration::MAX,
        days => Duration::from_secs(days.saturating_mul(86_400)),
    };
    crate::servers::sweep_every(&manager, Duration::from_secs(3600), keep);
    let max = (config.limits.max_message_kib as usize) << 10;
    let l = &config.limits;
    let streams = front::backlog::StreamBudget {
        bytes: l.stream_buffer_kib.saturating_mul(1024),
        messages: l.stream_buffer_messages,
        replay_events: l.replay_log_events,
        replay_bytes: l.replay_log_kib.saturating_mul(1024),
    };
    let front_state = FrontState {
        manager: manager.clone(),
        http_sessions: front::http_session::HttpSessions::new(idle, streams),
        streams,
        sse_sessions: front::legacy_sse::SseSessions::new(),
        parked: front::rev_2026_07_28::ParkedRequests::new(),
        ticks: front::ticks(),
        max_message_bytes: max,
        read_timeout: Duration::from_secs(config.limits.read_timeout_secs),
    };
    front::reap_every(&front_state, Duration::from_secs(15).min(idle).max(Duration::from_millis(100)));
    manager.follow_policy_changes();
    let state = AppState {
        plugins: plugins.clone(),
        manager: manager.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
        access: access.clone(),
    };
    let guard = Arc::new(front::guard::Guard::for_host(
        config.server.allowed_origins.clone(),
        config.server.allowed_hosts.clone(),
        config.server.public_url.as_deref(),
    ));
    let auth = Arc::new(authenticator(config, admin.token.map(Arc::from), kube_client).await?);
    let public_url: Option<Arc<str>> = config.server.public_url.as_deref().map(Arc::from);
    let routes = api::open_routes(state.clone())
        .merge(gate::resource_metadata::routes(auth.clone(), public_url.clone()))
        .merge(api::routes(state))
        .merge(front::router(front_state));
    // The layers every request passes go around the router as one stack of
    // hand-written tower layers, not `Router::layer` calls or `from_fn`:
    // those box every route once per layer and the next service and future
    // once per request, and each request then cloned that boxed stack level
    // by level (`bench/scripts/instructions.sh`).
    // Outermost: nothing, not even a preflight or a 404, answers a foreign
    // Host or Origin, and no refusal is plain text. The one check of body
    // size is inside it: the front's `Body` and the API turn its refusal
    // into their JSON errors. CORS is outside authentication, so that a
    // preflight (which carries no token) is answered; the `connect` policy
    // is inside it, where the principal is known.
    let stack = tower::ServiceBuilder::new()
        .layer(gate::GuardLayer(gate::GuardCheck { guard: guard.clone(), metrics: metrics.clone() }))
        .layer(axum::extract::DefaultBodyLimit::max(max))
        .option_layer(gate::cors(&guard))
        .layer(gate::AuthLayer {
            tokens: gate::TokenCheck { auth, public_url, metrics: metrics.clone() },
            policies: gate::Policies { access: access.clone(), manager: manager.clone() },
        })
        .service(routes);
    let router = Router::new().fallback_service(stack);
    Ok(App { plugins, manager, router, token_source: admin.source, audit, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_state_dir_reaches_the_sandbox_and_the_launch_as_an_absolute_path() {
        let mut config = Config::default();
        config.server.state_dir = Some("state".into());
        let dir = absolute_state_dir(&config).unwrap();
        assert!(dir.is_absolute() && dir.ends_with("state"), "{}", dir.display());
        assert!(sandbox_settings(&config).work_root.is_absolute());
        config.server.state_dir = Some("/var/lib/mcpod".into());
        assert_eq!(absolute_state_dir(&config).unwrap(), std::path::Path::new("/var/lib/mcpod"));
    }

    #[test]
    fn a_sigstore_trusted_root_file_that_is_not_one_stops_the_host_and_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("root.json");
        let metrics = Arc::new(Metrics::new());
        let mut config = Config::default();
        config.packages.sigstore_trusted_root_file = Some(file.clone());
        for (text, says) in
            [("not json", "is not a Sigstore trusted root"), (r#"{"certificateAuthorities": []}"#, "no tlogs")]
        {
            std::fs::write(&file, text).unwrap();
            let err = supply(&config, &metrics).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("sigstore_trusted_root_file") && err.contains(says), "{err}");
        }
        std::fs::remove_file(&file).unwrap();
        let err = supply(&config, &metrics).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("sigstore_trusted_root_file") && err.contains("fix the path"), "{err}");
        config.packages.sigstore_trusted_root_file = None;
        assert!(supply(&config, &metrics).unwrap().is_some(), "the shipped root serves");
    }
}
