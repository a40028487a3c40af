//! Runtimes start and stop server instances from launch specs: local
//! processes here, Kubernetes pods in `runtime::kube`. Both hand the bridge
//! the same thing: the instance's stdio streams, or its network endpoint.

pub mod kube;
pub mod launches;
pub mod local;
pub mod logs;
pub mod memory;
pub mod quantity;
pub mod remote;
pub mod sandbox;
pub mod usage;

use crate::launch::LaunchSpec;
use std::collections::BTreeMap;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

/// Why a runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The launch spec cannot run on this runtime (no `process` for local, no `container` for Kubernetes).
    #[error("server type cannot run on the {runtime} runtime: {reason}")]
    Unsupported {
        /// The runtime's name.
        runtime: &'static str,
        /// Why.
        reason: String,
    },
    /// Starting failed (a missing program, a refused pod).
    #[error("cannot start {what}: {reason}")]
    Start {
        /// What was being started.
        what: String,
        /// Why it failed and what to do.
        reason: String,
    },
    /// A program the launch needs is not installed: starting again cannot
    /// help, so the instance gives up at once.
    #[error("cannot start {what}: `{program}` is not installed or not on PATH; install it on this machine")]
    NotInstalled {
        /// What was being started.
        what: String,
        /// The missing program.
        program: String,
    },
    /// The sandbox policy asks for cannot be had, or could not be prepared:
    /// nothing was started, and starting again cannot help.
    #[error("cannot start {what} sandboxed: {reason}")]
    Sandbox {
        /// What was being started.
        what: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The instance is unknown to the runtime.
    #[error("no instance {0}")]
    NotFound(String),
    /// Another failure, with context.
    #[error("{0}")]
    Other(String),
}

impl RuntimeError {
    /// True if trying again cannot succeed (a missing program, a launch
    /// this runtime cannot run): the instance fails at once instead of
    /// restarting with backoff.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            RuntimeError::NotInstalled { .. } | RuntimeError::Unsupported { .. } | RuntimeError::Sandbox { .. }
        )
    }
}

/// What a runtime needs to start one instance.
#[derive(Clone)]
pub struct LaunchRequest {
    /// The server this instance belongs to.
    pub server_id: String,
    /// A name unique among this host's instances.
    pub instance_id: String,
    /// What to run.
    pub spec: LaunchSpec,
    /// Env names whose values are secret (never logged).
    pub secret_env: Vec<String>,
    /// Labels describing the instance (template, sharing, ...).
    pub labels: BTreeMap<String, String>,
    /// What a runtime whose instances outlive the host records on each, so
    /// that a restarted host can adopt it (never secret values).
    pub annotations: BTreeMap<String, String>,
    /// Where the instance's log lines are kept.
    pub logs: logs::LogBuffer,
}

/// A byte stream to the instance.
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;
/// A byte stream from the instance.
pub type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// How the bridge reaches a started instance.
pub enum Connection {
    /// Its stdin, stdout and stderr.
    Stdio {
        /// Bytes to the server.
        stdin: Writer,
        /// Bytes from the server.
        stdout: Reader,
        /// Its log output.
        stderr: Reader,
    },
    /// A listening server's base URL (`http://127.0.0.1:8051`).
    Network {
        /// The base URL; the spec's `path` is added by the bridge.
        base_url: url::Url,
    },
}

/// A started instance.
pub struct Launched {
    /// How to reach it.
    pub connection: Connection,
    /// Resolves when the instance ends, with a description of how.
    pub exited: oneshot::Receiver<String>,
}

/// The state of one instance as the runtime sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceInfo {
    /// The instance id.
    pub instance_id: String,
    /// Its server.
    pub server_id: String,
    /// `running`, `exited`, `pending`, ...
    pub state: String,
    /// More detail (an exit status, a pod reason).
    pub detail: Option<String>,
}

/// One protection a runtime gives a server's instances (a sandbox layer,
/// a limit), as status shows it: active or not, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Protection {
    /// What it protects (`files`, `network`, `memory`, ...).
    pub name: String,
    /// Whether it applies.
    pub active: bool,
    /// How it applies, or why it does not.
    pub detail: String,
}

/// An instance left running by an earlier host, found at start.
#[derive(Debug, Clone)]
pub struct Adoptable {
    /// Its instance id.
    pub instance_id: String,
    /// Its server.
    pub server_id: String,
    /// The server's start request as recorded (JSON, secret values removed).
    pub start_request: Option<String>,
    /// The secret env values kept beside it.
    pub secret_env: BTreeMap<String, String>,
}

/// Where packages come from and how they are reached: the host's registry
/// mirrors and proxies, which every runtime hands its servers (local
/// children inherit them; pods get the host's values), so that `npx` and
/// `uvx` fetch from where the host's own registry lookups do.
pub const PACKAGE_SOURCE_ENV: &[&str] = &[
    "npm_config_registry",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "UV_NATIVE_TLS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The values `get` (the host's environment) gives `PACKAGE_SOURCE_ENV`.
pub fn package_source_env(get: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    PACKAGE_SOURCE_ENV.iter().filter_map(|name| get(name).map(|v| (name.to_string(), v))).collect()
}

/// Starts and stops instances.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// The runtime's name (`local`, `kubernetes`).
    fn name(&self) -> &'static str;

    /// Whether this runtime can run `spec` at all; asked before a server is
    /// registered, so that a start fails at once with the reason.
    fn supports(&self, _spec: &LaunchSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// The protections instances of `spec` get here (none listed: the
    /// runtime does not say).
    fn protections(&self, _spec: &LaunchSpec) -> Vec<Protection> {
        Vec::new()
    }

    /// What each of its instances uses now (instance id → usage); empty
    /// where the runtime cannot tell.
    async fn usage(&self) -> BTreeMap<String, usage::Usage> {
        BTreeMap::new()
    }

    /// Starts one instance.
    async fn launch(&self, req: &LaunchRequest) -> Result<Launched, RuntimeError>;

    /// Stops an instance and everything it started.
    async fn stop(&self, instance_id: &str) -> Result<(), RuntimeError>;

    /// Every instance this runtime runs for this host.
    async fn list(&self) -> Result<Vec<InstanceInfo>, RuntimeError>;

    /// Instances an earlier host left running, to adopt (none for runtimes
    /// whose instances die with the host).
    async fn adoptable(&self) -> Result<Vec<Adoptable>, RuntimeError> {
        Ok(Vec::new())
    }

    /// Whether instances keep running when the host exits, to be adopted.
    fn outlives_host(&self) -> bool {
        false
    }

    /// Whether instances that cannot be adopted are left alone (else stopped).
    fn keeps_orphans(&self) -> bool {
        false
    }

    /// Removes the package caches this runtime keeps for servers that were
    /// unused for longer than `keep`, but for those of the servers `live`
    /// (the local runtime's, one per command line; other runtimes keep
    /// none on this machine).
    fn sweep_caches(&self, _live: &[LaunchSpec], _keep: std::time::Duration) -> crate::sweep::Swept {
        crate::sweep::Swept::default()
    }

    /// MiB of memory the machine its instances run on has available now,
    /// where this host's machine is that machine (the local runtime); `None`
    /// elsewhere (the cluster's scheduler admits pods by their requests).
    fn available_memory_mib(&self) -> Option<u64> {
        None
    }

    /// How many of its instances may be starting at once unless
    /// `limits.max_concurrent_launches` says (`None`: no limit).
    fn launch_slots(&self) -> Option<usize> {
        None
    }

    /// The next server number this runtime keeps for the host, where it
    /// outlives the host's own disk (a ConfigMap in the cluster, which a
    /// replaced pod's new host reads); `None` where it keeps none.
    async fn kept_server_number(&self) -> Result<Option<u64>, RuntimeError> {
        Ok(None)
    }

    /// Keeps `next` as the next server number (see `kept_server_number`),
    /// before a number below it is given out.
    async fn keep_server_number(&self, _next: u64) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Whether the runtime can start instances now: the Kubernetes API
    /// answers (and lets this host list pods), or a local process can be
    /// spawned. `Err` says why not, for `/readyz`.
    async fn ready(&self) -> Result<(), String>;

    /// Stops what must not outlive the host (host shutdown).
    async fn shutdown(&self);
}
