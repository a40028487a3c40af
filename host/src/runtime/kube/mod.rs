//! The Kubernetes runtime: a pod per server instance, created from the
//! launch spec with the restricted Pod Security Standard, its secrets in an
//! owned Secret, its traffic fenced by a NetworkPolicy; followed by one
//! watch until ready; reached by attach (or exec) for stdio servers and at
//! the pod IP or through port-forward for network servers. Pods outlive the
//! host, and a restarted host adopts them.

pub mod health;
pub mod spec;
pub mod watch;

mod forward;

use super::{Adoptable, Connection, InstanceInfo, LaunchRequest, Launched, Runtime, RuntimeError};
use crate::config::{Config, Orphans, Reach, StdioBridge};
use crate::launch::Transport;
use health::Health;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{AttachParams, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use spec::PodSettings;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use watch::PodWatch;

/// The annotation holding what is needed to adopt a pod (its server's start
/// request, secret values removed).
pub const START_ANNOTATION: &str = "mcpod.dev/start-request";

/// How long a look at the metrics API may take.
const USAGE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long `/readyz`'s probe of the API may take.
const READY_PROBE: Duration = Duration::from_secs(3);

/// The Kubernetes runtime.
pub struct KubeRuntime {
    client: Client,
    pods: Api<Pod>,
    secrets: Api<Secret>,
    config_maps: Api<ConfigMap>,
    policies: Api<NetworkPolicy>,
    events: Api<Event>,
    settings: PodSettings,
    network_policy: bool,
    reach_pod_ip: bool,
    orphans: Orphans,
    start_timeout: Duration,
    watch: Arc<PodWatch>,
    forwards: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

/// A client for the cluster `config` names: its kubeconfig (and context),
/// else the in-cluster config, else KUBECONFIG or ~/.kube/config.
pub async fn client(config: &Config) -> Result<Client, RuntimeError> {
    let k = &config.kubernetes;
    let options = kube::config::KubeConfigOptions { context: k.context.clone(), ..Default::default() };
    let kube_config = match &k.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                RuntimeError::Other(format!("cannot read kubernetes.kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options).await.map_err(|e| {
                RuntimeError::Other(format!("kubernetes.kubeconfig {} is not usable: {e}", path.display()))
            })?
        }
        None if k.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| RuntimeError::Other(format!("cannot use kubeconfig context {:?}: {e}", k.context)))?,
        None => kube::Config::infer().await.map_err(|e| {
            RuntimeError::Other(format!(
                "no cluster found ({e}); run mcpod in a pod, set KUBECONFIG, or set kubernetes.kubeconfig"
            ))
        })?,
    };
    Client::try_from(kube_config).map_err(|e| RuntimeError::Other(format!("cannot build the Kubernetes client: {e}")))
}

impl KubeRuntime {
    /// A runtime on `client` shaped by `config`.
    pub fn new(client: Client, config: &Config) -> KubeRuntime {
        let k = &config.kubernetes;
        let ns = k.namespace.as_str();
        let settings = PodSettings {
            namespace: ns.to_string(),
            instance: k.instance.clone(),
            run_as_user: k.run_as_user,
            image_pull_policy: k.image_pull_policy.clone(),
            termination_grace_secs: k.termination_grace_secs,
            exec_bridge: k.stdio_bridge == StdioBridge::Exec,
            internet_access: config.policy.internet_access,
            host_pod_labels: k.host_pod_labels.clone(),
            package_env: super::package_source_env(|name| std::env::var(name).ok()),
        };
        let in_cluster = k.kubeconfig.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let watch = PodWatch::start(pods.clone(), &spec::instance_selector(&k.instance));
        KubeRuntime {
            client: client.clone(),
            pods,
            secrets: Api::namespaced(client.clone(), ns),
            config_maps: Api::namespaced(client.clone(), ns),
            policies: Api::namespaced(client.clone(), ns),
            events: Api::namespaced(client, ns),
            settings,
            network_policy: k.network_policy,
            reach_pod_ip: match k.reach {
                Reach::PodIp => true,
                Reach::PortForward => false,
                Reach::Auto => in_cluster,
            },
            orphans: k.orphans,
            start_timeout: Duration::from_secs(config.limits.start_timeout_secs),
            watch,
            forwards: Mutex::new(HashMap::new()),
        }
    }

    fn pod_name(&self, instance_id: &str) -> String {
        spec::pod_name(&self.settings.instance, instance_id)
    }

    /// Creates the Secret, the Pod and the NetworkPolicy of `req`.
    async fn create(&self, req: &LaunchRequest, name: &str) -> Result<(), RuntimeError> {
        let start = |reason: String| RuntimeError::Start { what: format!("pod {name}"), reason };
        let pod = spec::pod(req, &self.settings, req.annotations.clone())
            .map_err(|e| RuntimeError::Unsupported { runtime: "kubernetes", reason: e.to_string() })?;
        let secret = spec::secret(req, &self.settings);
        if let Some(secret) = &secret {
            match self.secrets.create(&PostParams::default(), secret).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    let sname = spec::secret_name(name);
                    self.secrets
                        .replace(&sname, &PostParams::default(), secret)
                        .await
                        .map_err(|e| start(format!("cannot replace Secret {sname}: {e}")))?;
                }
                Err(e) => return Err(start(format!("cannot create its Secret: {e}"))),
            }
        }
        let created = match self.pods.create(&PostParams::default(), &pod).await {
            Ok(p) => p,
            Err(e) => {
                if secret.is_some() {
                    let _ = self.secrets.delete(&spec::secret_name(name), &DeleteParams::default()).await;
                }
                return Err(start(format!("the API refused the pod: {e}")));
            }
        };
        self.watch.record(created.clone());
        if let (Some(_), Some(owner)) = (&secret, spec::owned_by(&created)) {
            let patch = serde_json::json!({"metadata": {"ownerReferences": [owner]}});
            if let Err(e) =
                self.secrets.patch(&spec::secret_name(name), &PatchParams::default(), &Patch::Merge(&patch)).await
            {
                tracing::warn!(pod = %name, error = %e, "cannot make the pod own its Secret; it is deleted with the server instead");
            }
        }
        if self.network_policy {
            let policy = spec::network_policy(req, &self.settings, &created);
            match self.policies.create(&PostParams::default(), &policy).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => {
                    let _ = self.remove(name).await;
                    return Err(start(format!("cannot create its NetworkPolicy: {e}")));
                }
            }
        }
        tracing::info!(server = %req.server_id, instance = %req.instance_id, pod = %name, "created pod");
        Ok(())
    }

    /// The events of pod `name`, oldest first, as `Reason: message` lines.
    async fn events_of(&self, name: &str) -> Vec<String> {
        let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
        match self.events.list(&params).await {
            Ok(list) => list
                .items
                .iter()
                .map(|e| {
                    format!("{}: {}", e.reason.as_deref().unwrap_or("Event"), e.message.as_deref().unwrap_or_default())
                })
                .collect(),
            Err(e) => vec![format!("(events unavailable: {e})")],
        }
    }

    /// Waits until pod `name` is ready; on failure the reason carries the
    /// pod's events, and the pod is deleted so that a restart starts clean.
    async fn wait_ready(&self, name: &str) -> Result<Pod, RuntimeError> {
        let outcome = self
            .watch
            .wait_for(name, self.start_timeout, |pod| match pod.map(health::assess) {
                Some(Health::Ready) => Some(Ok(pod.cloned())),
                Some(Health::Failed(why)) => Some(Err(why)),
                Some(Health::Waiting(_)) | None => None,
            })
            .await;
        let why = match outcome {
            Ok(Ok(Some(pod))) => return Ok(pod),
            Ok(Ok(None)) => "the pod vanished".to_string(),
            Ok(Err(why)) => why,
            Err(last) => {
                let so_far = match last.as_ref().map(health::assess) {
                    Some(Health::Waiting(w)) | Some(Health::Failed(w)) => w,
                    Some(Health::Ready) => "ready too late".to_string(),
                    None => "the pod was never seen".to_string(),
                };
                format!("not ready within {} s ({so_far})", self.start_timeout.as_secs())
            }
        };
        let events = self.events_of(name).await;
        let _ = self.remove(name).await;
        let events = if events.is_empty() { String::new() } else { format!("; events: {}", events.join(" | ")) };
        Err(RuntimeError::Start { what: format!("pod {name}"), reason: format!("{why}{events}") })
    }

    /// Deletes pod `name` and its Secret (the NetworkPolicy goes with the pod).
    async fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        let grace = u32::try_from(self.settings.termination_grace_secs).unwrap_or(0);
        let params = DeleteParams { grace_period_seconds: Some(grace), ..Default::default() };
        let pod = match self.pods.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(RuntimeError::NotFound(name.to_string())),
            Err(e) => return Err(RuntimeError::Other(format!("cannot delete pod {name}: {e}"))),
        };
        match self.secrets.delete(&spec::secret_name(name), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "cannot delete the pod's Secret"),
        }
        pod
    }

    /// Connects to the stdio of pod `name`; the receiver fires when the
    /// stream ends (the process exited, the pod went, or the link dropped).
    async fn stdio(
        &self,
        name: &str,
        req: &LaunchRequest,
    ) -> Result<(Connection, oneshot::Receiver<String>), RuntimeError> {
        let params = AttachParams {
            container: Some(spec::CONTAINER.to_string()),
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
            ..Default::default()
        };
        let attached = if self.settings.exec_bridge {
            let command = req.spec.container.as_ref().map(|c| c.command.clone()).unwrap_or_default();
            self.pods.exec(name, command, &params).await
        } else {
            self.pods.attach(name, &params).await
        };
        let mut attached = attached.map_err(|e| RuntimeError::Start {
            what: format!("pod {name}"),
            reason: format!("cannot attach to its stdio: {e}"),
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (attached.stdin(), attached.stdout(), attached.stderr()) else {
            return Err(RuntimeError::Other("the attach stream has no stdin, stdout or stderr".to_string()));
        };
        let status = attached.take_status();
        let (tx, rx) = oneshot::channel();
        let pod = name.to_string();
        tokio::spawn(async move {
            let joined = attached.join().await;
            let status = match status {
                Some(s) => s.await.and_then(|s| s.message.or(s.reason)),
                None => None,
            };
            let how = match (joined, status) {
                (Err(e), _) => format!("the stream to pod {pod} failed: {e}"),
                (Ok(()), Some(s)) => format!("the stream to pod {pod} ended: {s}"),
                (Ok(()), None) => format!("the stream to pod {pod} ended"),
            };
            let _ = tx.send(how);
        });
        let stderr = with_log_tail(stderr, self.pods.clone(), name.to_string());
        Ok((Connection::Stdio { stdin: Box::pin(stdin), stdout: Box::pin(stdout), stderr: Box::pin(stderr) }, rx))
    }

    /// The base URL of network pod `pod`, and a receiver that fires when the
    /// pod stops being ready.
    async fn network(&self, pod: &Pod, port: u16) -> Result<(Connection, oneshot::Receiver<String>), RuntimeError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let base_url = if self.reach_pod_ip {
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).ok_or_else(|| RuntimeError::Start {
                what: format!("pod {name}"),
                reason: "it is ready but has no pod IP".to_string(),
            })?;
            let host = if ip.contains(':') { format!("[{ip}]") } else { ip };
            format!("http://{host}:{port}")
        } else {
            let (addr, task) = forward::listen(self.pods.clone(), name.clone(), port).await?;
            if let Ok(mut f) = self.forwards.lock()
                && let Some(old) = f.insert(name.clone(), task)
            {
                old.abort();
            }
            format!("http://{addr}")
        };
        let base_url = url::Url::parse(&base_url).map_err(|e| RuntimeError::Other(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        let watch = self.watch.clone();
        let restarts = health::restarts(pod);
        tokio::spawn(async move {
            let ended = watch
                .wait_for(&name, Duration::MAX / 4, |p| match p {
                    None => Some(format!("pod {name} is gone")),
                    Some(p) if health::restarts(p) != restarts => Some(format!("pod {name} restarted its server")),
                    Some(p) => match health::assess(p) {
                        Health::Ready => None,
                        Health::Waiting(w) | Health::Failed(w) => Some(format!("pod {name} is not ready: {w}")),
                    },
                })
                .await;
            let _ = tx.send(ended.unwrap_or_else(|_| format!("lost track of pod {name}")));
        });
        Ok((Connection::Network { base_url }, rx))
    }
}

#[async_trait::async_trait]
impl Runtime for KubeRuntime {
    async fn ready(&self) -> Result<(), String> {
        // A list of one pod: the API answers, and lets this host see its namespace.
        let one = kube::api::ListParams::default().limit(1);
        match tokio::time::timeout(READY_PROBE, self.pods.list(&one)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the Kubernetes API refused listing pods: {e}")),
            Err(_) => Err(format!("the Kubernetes API did not answer within {READY_PROBE:?}")),
        }
    }

    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn supports(&self, spec: &crate::launch::LaunchSpec) -> Result<(), RuntimeError> {
        match spec.container {
            Some(_) => Ok(()),
            None => Err(RuntimeError::Unsupported {
                runtime: "kubernetes",
                reason: "its launch spec has no container (it runs only as a local process); use the local runtime"
                    .to_string(),
            }),
        }
    }

    async fn launch(&self, req: &LaunchRequest) -> Result<Launched, RuntimeError> {
        let name = self.pod_name(&req.instance_id);
        let existing = match self.pods.get_opt(&name).await {
            Ok(p) => p,
            Err(e) => return Err(RuntimeError::Other(format!("cannot read pod {name}: {e}"))),
        };
        match existing {
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                // A previous incarnation is still going; wait it out.
                let grace = Duration::from_secs(self.settings.termination_grace_secs.max(0) as u64 + 30);
                let _ = self.watch.wait_for(&name, grace, |p| p.is_none().then_some(())).await;
                self.create(req, &name).await?;
            }
            Some(_) => tracing::info!(server = %req.server_id, pod = %name, "reusing the running pod"),
            None => self.create(req, &name).await?,
        }
        let pod = self.wait_ready(&name).await?;
        let (connection, exited) = match (req.spec.transport, req.spec.port) {
            (Transport::Stdio, _) => self.stdio(&name, req).await?,
            (_, Some(port)) => self.network(&pod, port).await?,
            (_, None) => {
                return Err(RuntimeError::Unsupported {
                    runtime: "kubernetes",
                    reason: "a network server needs a `port`".to_string(),
                });
            }
        };
        Ok(Launched { connection, exited })
    }

    async fn stop(&self, instance_id: &str) -> Result<(), RuntimeError> {
        let name = self.pod_name(instance_id);
        if let Some(task) = self.forwards.lock().ok().and_then(|mut f| f.remove(&name)) {
            task.abort();
        }
        self.remove(&name).await
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>, RuntimeError> {
        Ok(self
            .watch
            .list()
            .iter()
            .map(|pod| {
                let label = |k: &str| pod.metadata.labels.as_ref().and_then(|l| l.get(k).cloned()).unwrap_or_default();
                let (state, detail) = match health::assess(pod) {
                    Health::Ready => ("running".to_string(), None),
                    Health::Waiting(w) => ("pending".to_string(), Some(w)),
                    Health::Failed(w) => ("failed".to_string(), Some(w)),
                };
                InstanceInfo {
                    instance_id: label(spec::INSTANCE_ID_LABEL),
                    server_id: label(spec::SERVER_LABEL),
                    state,
                    detail: detail.or_else(|| pod.metadata.name.clone().map(|n| format!("pod {n}"))),
                }
            })
            .collect())
    }

    async fn kept_server_number(&self) -> Result<Option<u64>, RuntimeError> {
        let name = spec::numbers_name(&self.settings.instance);
        let cm = self
            .config_maps
            .get_opt(&name)
            .await
            .map_err(|e| RuntimeError::Other(format!("cannot read ConfigMap {name}: {e}")))?;
        let text = cm.and_then(|c| c.data).and_then(|mut d| d.remove(spec::NUMBERS_KEY));
        match text {
            None => Ok(None),
            Some(t) => t.trim().parse().map(Some).map_err(|_| {
                RuntimeError::Other(format!(
                    "ConfigMap {name} holds `{t}` as {}, not a number; delete the ConfigMap or set it to the next server number",
                    spec::NUMBERS_KEY
                ))
            }),
        }
    }

    async fn keep_server_number(&self, next: u64) -> Result<(), RuntimeError> {
        let name = spec::numbers_name(&self.settings.instance);
        let patch = serde_json::json!({"data": {spec::NUMBERS_KEY: next.to_string()}});
        let failed = |e: kube::Error| {
            RuntimeError::Other(format!("cannot keep the next server number in ConfigMap {name}: {e}"))
        };
        match self.config_maps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let cm = spec::numbers_config_map(&self.settings.instance, next);
                match self.config_maps.create(&PostParams::default(), &cm).await {
                    Ok(_) => Ok(()),
                    // Made meanwhile by another start: write the number into it.
                    Err(kube::Error::Api(s)) if s.code == 409 => self
                        .config_maps
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                        .map_err(failed),
                    Err(e) => Err(failed(e)),
                }
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn adoptable(&self) -> Result<Vec<Adoptable>, RuntimeError> {
        let params = ListParams::default().labels(&spec::instance_selector(&self.settings.instance));
        let pods = self.pods.list(&params).await.map_err(|e| RuntimeError::Other(format!("cannot list pods: {e}")))?;
        let mut out = Vec::new();
        for pod in pods.items {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(name) = pod.metadata.name.clone() else { continue };
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let annotations = pod.metadata.annotations.clone().unwrap_or_default();
            let secret_env = match self.secrets.get_opt(&spec::secret_name(&name)).await {
                Ok(Some(s)) => s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect(),
                Ok(None) => BTreeMap::new(),
                Err(e) => return Err(RuntimeError::Other(format!("cannot read the Secret of pod {name}: {e}"))),
            };
            out.push(Adoptable {
                instance_id: labels.get(spec::INSTANCE_ID_LABEL).cloned().unwrap_or_default(),
                server_id: labels.get(spec::SERVER_LABEL).cloned().unwrap_or_default(),
                start_request: annotations.get(START_ANNOTATION).cloned(),
                secret_env,
            });
        }
        Ok(out)
    }

    /// From the metrics API (`metrics.k8s.io`, metrics-server): one list of
    /// this host's pods; nothing when the cluster does not serve it.
    async fn usage(&self) -> BTreeMap<String, super::usage::Usage> {
        let selector: String =
            url::form_urlencoded::byte_serialize(spec::instance_selector(&self.settings.instance).as_bytes()).collect();
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector={selector}",
            self.settings.namespace
        );
        let Ok(req) = axum::http::Request::get(path).body(Vec::new()) else { return BTreeMap::new() };
        match tokio::time::timeout(USAGE_TIMEOUT, self.client.request::<serde_json::Value>(req)).await {
            Ok(Ok(list)) => super::usage::pod_metrics(&list, spec::INSTANCE_ID_LABEL),
            Ok(Err(e)) => {
                tracing::debug!("no pod metrics from the metrics API: {e}");
                BTreeMap::new()
            }
            Err(_) => BTreeMap::new(),
        }
    }

    fn outlives_host(&self) -> bool {
        true
    }

    fn keeps_orphans(&self) -> bool {
        self.orphans == Orphans::Keep
    }

    async fn shutdown(&self) {
        // Pods outlive the host: a restarted host adopts them.
        if let Ok(mut f) = self.forwards.lock() {
            for (_, task) in f.drain() {
                task.abort();
            }
        }
    }
}

/// `stderr`, then, once it ends, the last lines of the pod's log: an
/// attach sees only what the process writes after it, so a pod that fails
/// at once (a package that does not check out) would otherwise leave its
/// reason in `kubectl logs` alone. They reach the server's log, which the
/// operator reads, never a client.
fn with_log_tail(
    mut stderr: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    pods: Api<Pod>,
    name: String,
) -> tokio::io::DuplexStream {
    use tokio::io::AsyncWriteExt;
    let (mut to, from) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if tokio::io::copy(&mut stderr, &mut to).await.is_err() {
            return;
        }
        for line in last_output(&pods, &name).await {
            if to.write_all(format!("(from the pod's log) {line}\n").as_bytes()).await.is_err() {
                return;
            }
        }
    });
    from
}

/// The last lines pod `name`'s server wrote to its log (5 at most, each cut
/// to 500 characters, asked for at most 5 s), but its protocol messages
/// (the log holds its stdout too).
async fn last_output(pods: &Api<Pod>, name: &str) -> Vec<String> {
    let params = LogParams { container: Some(spec::CONTAINER.to_string()), tail_lines: Some(5), ..Default::default() };
    let Ok(Ok(text)) = tokio::time::timeout(std::time::Duration::from_secs(5), pods.logs(name, &params)).await else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !(l.is_empty() || l.starts_with('{') && l.contains("\"jsonrpc\"")))
        .map(|l| l.chars().take(500).collect())
        .collect()
}
