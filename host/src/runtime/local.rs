//! The local runtime: each instance is a child process in its own process
//! group, so that stopping it also stops what it spawned (npx → node,
//! uvx → python), sandboxed as `runtime::sandbox` plans. Children get a
//! minimal environment plus the spec's, and are killed when the host exits.

use super::sandbox::{Sandbox, SandboxSettings};
use super::{Connection, InstanceInfo, LaunchRequest, Launched, Protection, Runtime, RuntimeError};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::oneshot;

/// Host variables passed through to servers beside
/// `super::PACKAGE_SOURCE_ENV` (nothing else of the host's environment
/// reaches them): the basics, and the trust files of this machine.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "USER",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    // pyenv's shims find their installation here, not under a moved HOME.
    "PYENV_ROOT",
];

/// How long `/readyz`'s probe process may take.
const READY_PROBE: Duration = Duration::from_secs(2);

struct Child {
    server_id: String,
    pgid: i32,
    state: Arc<Mutex<String>>,
}

/// Runs servers as local processes.
pub struct LocalRuntime {
    children: Mutex<BTreeMap<String, Child>>,
    sandbox: Sandbox,
    grace: Duration,
}

impl LocalRuntime {
    /// A runtime sandboxing its children as `sandbox` says, giving them
    /// `grace` to exit on stop.
    pub fn new(sandbox: SandboxSettings, grace: Duration) -> Self {
        LocalRuntime { children: Mutex::new(BTreeMap::new()), sandbox: Sandbox::new(sandbox), grace }
    }

    fn signal_group(pgid: i32, signal: Signal) {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

#[async_trait::async_trait]
impl Runtime for LocalRuntime {
    async fn ready(&self) -> Result<(), String> {
        // The same spawn a server's start makes, of the smallest program.
        let spawned = Command::new("true")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(mut child) => match tokio::time::timeout(READY_PROBE, child.wait()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("cannot wait for a process: {e}")),
                Err(_) => Err(format!("a process did not finish within {READY_PROBE:?}; the machine is overloaded")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("cannot spawn `true` from PATH ({e}); servers' programs are looked up on the same PATH"))
            }
            Err(e) => Err(format!("cannot spawn a process ({e}); out of process slots or file descriptors?")),
        }
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn sweep_caches(&self, live: &[crate::launch::LaunchSpec], keep: Duration) -> crate::sweep::Swept {
        self.sandbox.sweep_caches(live, keep)
    }

    fn available_memory_mib(&self) -> Option<u64> {
        super::memory::available_mib()
    }

    /// Twice the CPUs this process may use: a server's start-up is about
    /// half waiting (reading its modules, the handshake), so that many
    /// keep the CPUs busy without crowding the servers already serving
    /// (`bench/scripts/launch_burst.sh`: 20 Node starts on 2 CPUs take as
    /// long as all at once, half as long as with 2 slots).
    fn launch_slots(&self) -> Option<usize> {
        Some(super::launches::Launches::cpus().saturating_mul(2))
    }

    fn protections(&self, spec: &crate::launch::LaunchSpec) -> Vec<Protection> {
        self.sandbox.protections(spec)
    }

    fn supports(&self, spec: &crate::launch::LaunchSpec) -> Result<(), RuntimeError> {
        match spec.process {
            Some(_) => Ok(()),
            None => Err(RuntimeError::Unsupported {
                runtime: "local",
                reason: "its launch spec has no process command (it runs only as a container); start mcpod with the kubernetes runtime"
                    .to_string(),
            }),
        }
    }

    async fn launch(&self, req: &LaunchRequest) -> Result<Launched, RuntimeError> {
        let Some(process) = req.spec.process.as_ref() else {
            return self.supports(&req.spec).and(Err(RuntimeError::Unsupported {
                runtime: "local",
                reason: "its launch spec has no process command".to_string(),
            }));
        };
        let (program, args) = process.command.split_first().ok_or_else(|| RuntimeError::Start {
            what: req.instance_id.clone(),
            reason: "the command is empty".to_string(),
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear().kill_on_drop(true).process_group(0);
        for var in PASSTHROUGH_ENV.iter().chain(super::PACKAGE_SOURCE_ENV) {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        for e in &req.spec.env {
            cmd.env(&e.name, &e.value);
        }
        if let Some(dir) = &req.spec.working_dir {
            cmd.current_dir(dir);
        }
        let mut sandbox = self
            .sandbox
            .prepare(req, program)
            .map_err(|e| RuntimeError::Sandbox { what: format!("server {}", req.server_id), reason: e.to_string() })?;
        sandbox.apply(&mut cmd, req.spec.working_dir.is_some());
        let network = req.spec.transport.is_network();
        let port = req.spec.port.filter(|_| network);
        if let Some(port) = port
            && tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).await.is_ok()
        {
            return Err(RuntimeError::Start {
                what: format!("server {}", req.server_id),
                reason: format!(
                    "port {port} is already in use on this machine; stop what listens there or give the server another `port`"
                ),
            });
        }
        if network {
            cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        } else {
            cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        }
        cmd.stderr(std::process::Stdio::piped());
        let spawned = cmd.spawn();
        sandbox.spawned();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                sandbox.cleanup().await;
                let what = format!("`{program}` for server {}", req.server_id);
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    RuntimeError::NotInstalled { what, program: program.clone() }
                } else {
                    RuntimeError::Start {
                        what,
                        reason: format!(
                            "{e} (spawning, or sandboxing it before it ran: joining its control group, its network namespace, no_new_privs, Landlock; [sandbox] enabled = false runs servers unsandboxed)"
                        ),
                    }
                });
            }
        };
        let pid = child.id().map(|p| p as i32).unwrap_or_default();
        tracing::info!(server = %req.server_id, instance = %req.instance_id, pid, program = %program, "started local server process");
        let stderr = child.stderr.take().ok_or_else(|| RuntimeError::Other("no stderr pipe".into()))?;
        let connection = if network {
            let port = req.spec.port.unwrap_or_default();
            let base_url =
                url::Url::parse(&format!("http://127.0.0.1:{port}")).map_err(|e| RuntimeError::Other(e.to_string()))?;
            // Network servers log on stderr; drain it so the child never blocks.
            let server = req.server_id.clone();
            let logs = req.logs.clone();
            tokio::spawn(async move { super::logs::log_stderr(server, Box::pin(stderr), logs).await });
            Connection::Network { base_url }
        } else {
            let stdin = child.stdin.take().ok_or_else(|| RuntimeError::Other("no stdin pipe".into()))?;
            let stdout = child.stdout.take().ok_or_else(|| RuntimeError::Other("no stdout pipe".into()))?;
            Connection::Stdio { stdin: Box::pin(stdin), stdout: Box::pin(stdout), stderr: Box::pin(stderr) }
        };
        let state = Arc::new(Mutex::new("running".to_string()));
        self.children.lock().map_err(|_| RuntimeError::Other("runtime state poisoned".into()))?.insert(
            req.instance_id.clone(),
            Child { server_id: req.server_id.clone(), pgid: pid, state: state.clone() },
        );
        let (tx, rx) = oneshot::channel();
        let watched = state.clone();
        tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            // Whatever it left behind in its group goes too, and what left
            // the group stays in its control group until that is emptied.
            LocalRuntime::signal_group(pid, Signal::SIGKILL);
            sandbox.cleanup().await;
            if let Ok(mut s) = state.lock() {
                *s = format!("exited ({how})");
            }
            let _ = tx.send(how);
        });
        if let Some(port) = port
            && let Err(reason) = wait_listening(port, &watched, LISTEN_TIMEOUT).await
        {
            let _ = self.stop(&req.instance_id).await;
            return Err(RuntimeError::Start { what: format!("server {}", req.server_id), reason });
        }
        Ok(Launched { connection, exited: rx })
    }

    async fn stop(&self, instance_id: &str) -> Result<(), RuntimeError> {
        let child = self
            .children
            .lock()
            .map_err(|_| RuntimeError::Other("runtime state poisoned".into()))?
            .remove(instance_id)
            .ok_or_else(|| RuntimeError::NotFound(instance_id.to_string()))?;
        LocalRuntime::signal_group(child.pgid, Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + self.grace;
        while tokio::time::Instant::now() < deadline {
            if child.state.lock().map(|s| s.starts_with("exited")).unwrap_or(true) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        LocalRuntime::signal_group(child.pgid, Signal::SIGKILL);
        Ok(())
    }

    async fn usage(&self) -> BTreeMap<String, super::usage::Usage> {
        let groups: BTreeMap<i32, String> = match self.children.lock() {
            Ok(c) => c.iter().map(|(id, child)| (child.pgid, id.clone())).collect(),
            Err(_) => return BTreeMap::new(),
        };
        tokio::task::spawn_blocking(move || super::usage::of_process_groups(&groups)).await.unwrap_or_default()
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>, RuntimeError> {
        let children = self.children.lock().map_err(|_| RuntimeError::Other("runtime state poisoned".into()))?;
        Ok(children
            .iter()
            .map(|(id, c)| InstanceInfo {
                instance_id: id.clone(),
                server_id: c.server_id.clone(),
                state: c.state.lock().map(|s| s.clone()).unwrap_or_default(),
                detail: None,
            })
            .collect())
    }

    async fn shutdown(&self) {
        let pgids: Vec<i32> = match self.children.lock() {
            Ok(mut c) => std::mem::take(&mut *c).into_values().map(|c| c.pgid).collect(),
            Err(_) => Vec::new(),
        };
        for pgid in &pgids {
            LocalRuntime::signal_group(*pgid, Signal::SIGTERM);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for pgid in pgids {
            LocalRuntime::signal_group(pgid, Signal::SIGKILL);
        }
        // Each instance's wait task empties its group; give them a moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.sandbox.remove_all();
    }
}

/// How long a network server may take to listen (npx and uvx may download first).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(180);

/// Waits until something accepts connections on `port` of 127.0.0.1, the
/// process (whose state is `state`) exits, or `timeout` passes.
async fn wait_listening(port: u16, state: &Mutex<String>, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).await.is_ok() {
            return Ok(());
        }
        if let Some(exited) = state.lock().ok().filter(|s| s.starts_with("exited")).map(|s| s.clone()) {
            return Err(format!("it {exited} before listening on port {port}; `mcpod servers logs` shows why"));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "nothing listened on port {port} within {} s; check the server's `port`",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        if let Ok(children) = self.children.lock() {
            for c in children.values() {
                LocalRuntime::signal_group(c.pgid, Signal::SIGKILL);
            }
        }
        self.sandbox.remove_all();
    }
}
