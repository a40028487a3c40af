//! A Kubernetes API emulator for mcpod's tests. It speaks the real wire
//! protocol over plain HTTP on 127.0.0.1 — REST, watch, and exec, attach
//! and port-forward over WebSocket — for the resources mcpod uses, and its
//! kubelet runs each pod's command as a local process. Custom resources
//! are served from the CustomResourceDefinitions applied to it, and
//! service account tokens are minted (TokenRequest) and checked
//! (TokenReview) as the API server does. Clients
//! (kube-rs, kubectl) talk to it exactly as to a cluster. Faults can be injected: cut
//! a pod's streams, crash or OOM-kill its container, restart the API server.

pub mod auth;
pub mod kinds;
pub mod kubelet;
pub mod metrics;
pub mod openapi;
pub mod proto;
pub mod routes;
pub mod store;
pub mod streams;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Shared by every handler.
pub struct State {
    /// The objects.
    pub store: Arc<store::Store>,
    /// The pods' processes.
    pub kubelet: Arc<kubelet::Kubelet>,
    /// Requests served, by verb (`GET`, `POST`, `WATCH`, ...).
    pub requests: Mutex<BTreeMap<String, u64>>,
    /// Bumped when the server goes down: open watches and streams end.
    pub down: tokio::sync::watch::Sender<u64>,
    /// The key that signs service account tokens.
    pub signer: auth::Signer,
}

/// A running emulator; dropping it kills every pod's process.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Emulator {
    /// Starts an emulator on an ephemeral port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Emulator> {
        Emulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts an emulator listening on `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            store: Default::default(),
            kubelet: Default::default(),
            requests: Mutex::new(BTreeMap::new()),
            down: tokio::sync::watch::channel(0).0,
            signer: Default::default(),
        });
        let emulator = Emulator { addr, state, server: Mutex::new(None) };
        emulator.serve(listener);
        Ok(emulator)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let router = routes::router(self.state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        if let Ok(mut s) = self.server.lock() {
            *s = Some(task);
        }
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for this emulator with `namespace` as its default.
    pub fn write_kubeconfig(&self, path: &std::path::Path, namespace: &str) -> std::io::Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: {}\ncontexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: tester\n    namespace: {namespace}\nusers:\n- name: tester\n  user:\n    token: emulator-token\ncurrent-context: emulator\n",
            self.url()
        );
        std::fs::write(path, text)
    }

    /// Sets the PATH containers' programs are found on (default: the emulator's own).
    pub fn set_path(&self, path: &str) {
        self.state.kubelet.set_path(path);
    }

    /// Requests served so far, by verb.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// A token for ServiceAccount `namespace/name`, signed as `kubectl create
    /// token` would get it but with any lifetime: a negative `ttl_seconds`
    /// mints one that expired that long ago (TokenReview forgives a minute of
    /// skew). No audiences means the API server's. `None` if there is no such ServiceAccount.
    pub fn mint_token(&self, namespace: &str, name: &str, audiences: &[&str], ttl_seconds: i64) -> Option<String> {
        let audiences: Vec<String> = audiences.iter().map(|a| a.to_string()).collect();
        auth::mint(&self.state, namespace, name, &audiences, ttl_seconds)
    }

    /// Cuts every open attach, exec and port-forward stream of a pod.
    pub fn cut_streams(&self, namespace: &str, pod: &str) -> bool {
        self.state.kubelet.cut(&("pods".into(), namespace.into(), pod.into()))
    }

    /// Kills a pod's container process, as a crash would.
    pub fn crash_pod(&self, namespace: &str, pod: &str) -> bool {
        self.state.kubelet.kill(&("pods".into(), namespace.into(), pod.into()), false)
    }

    /// Kills a pod's container process and reports it OOMKilled.
    pub fn oom_kill(&self, namespace: &str, pod: &str) -> bool {
        self.state.kubelet.kill(&("pods".into(), namespace.into(), pod.into()), true)
    }

    /// Takes the API server down: new connections are refused and open
    /// watches and streams end; objects and pods' processes survive.
    pub fn stop_server(&self) {
        if let Some(task) = self.server.lock().ok().and_then(|mut s| s.take()) {
            task.abort();
        }
        self.state.down.send_modify(|n| *n += 1);
    }

    /// Brings the API server back on the same address.
    pub async fn restart_server(&self) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_server();
        self.state.kubelet.stop_all();
    }
}
