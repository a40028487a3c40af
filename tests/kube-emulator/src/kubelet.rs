//! The kubelet: runs each pod's container command as a local process (its
//! own process group), keeps the pod's status as a real kubelet would
//! (Running/Ready, restarts with back-off, CrashLoopBackOff, OOMKilled,
//! ImagePullBackOff for images named `does-not-exist`), posts events, and
//! hands attach sessions the process's stdin and output.

use crate::store::{Key, Store};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex as AsyncMutex, broadcast, watch};

/// Output of a container: `Some(bytes)` from stdout (1) or stderr (2), `None` at exit.
pub type Output = (u8, Option<Vec<u8>>);

/// What attach sessions of one pod share.
pub struct Running {
    /// The current process's stdin.
    pub stdin: AsyncMutex<Option<tokio::process::ChildStdin>>,
    /// Its output, to every attached session.
    pub output: broadcast::Sender<Output>,
    /// Fires to cut every open stream of the pod.
    pub cut: broadcast::Sender<()>,
    pgid: Mutex<i32>,
    /// When it started, for the metrics API's CPU rate.
    started: std::time::Instant,
    stop: watch::Sender<bool>,
    oom: std::sync::atomic::AtomicBool,
    /// Writable folders standing in for the pod's emptyDir volumes.
    pub dir: tempfile::TempDir,
    /// The container's output (stdout and stderr, the last 1 MiB), for `pods/log`.
    log: Mutex<std::collections::VecDeque<u8>>,
    /// The environment the container's process was started with (its `env`,
    /// secrets resolved, and the node's PATH), which `exec` runs with too.
    env: Mutex<Vec<(String, String)>>,
}

/// How much output `pods/log` keeps per pod.
const LOG_BYTES: usize = 1 << 20;

impl Running {
    /// The container's environment, for a process `exec` starts in it.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// CPU seconds and resident bytes of its process group, and its age
    /// (`None` while no process runs).
    pub fn usage(&self) -> Option<(f64, u64, std::time::Duration)> {
        let pgid = self.pgid.lock().map(|p| *p).unwrap_or(0);
        (pgid > 0).then(|| {
            let (cpu, memory) = crate::metrics::group_usage(pgid);
            (cpu, memory, self.started.elapsed())
        })
    }

    /// The output kept for `pods/log`.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .map(|l| String::from_utf8_lossy(&l.iter().copied().collect::<Vec<u8>>()).into_owned())
            .unwrap_or_default()
    }

    fn keep_log(&self, bytes: &[u8]) {
        if let Ok(mut l) = self.log.lock() {
            l.extend(bytes);
            let extra = l.len().saturating_sub(LOG_BYTES);
            l.drain(..extra);
        }
    }
}

/// Every pod's process.
#[derive(Default)]
pub struct Kubelet {
    pods: Mutex<HashMap<Key, Arc<Running>>>,
    /// The PATH containers' programs are found on (the node's image store).
    path: Mutex<Option<String>>,
}

fn signal(pgid: i32, sig: nix::sys::signal::Signal) {
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
    }
}

impl Kubelet {
    /// The running state of a pod, if it runs.
    pub fn get(&self, key: &Key) -> Option<Arc<Running>> {
        self.pods.lock().ok()?.get(key).cloned()
    }

    /// Sets the PATH containers' programs are found on.
    pub fn set_path(&self, path: &str) {
        if let Ok(mut p) = self.path.lock() {
            *p = Some(path.to_string());
        }
    }

    /// Starts running a created pod.
    pub fn start(self: &Arc<Self>, store: Arc<Store>, key: Key) {
        let path = self.path.lock().ok().and_then(|p| p.clone());
        let Ok(dir) = tempfile::tempdir() else { return };
        let (stop, stop_rx) = watch::channel(false);
        let running = Arc::new(Running {
            stdin: AsyncMutex::new(None),
            output: broadcast::channel(1024).0,
            cut: broadcast::channel(4).0,
            pgid: Mutex::new(0),
            started: std::time::Instant::now(),
            stop,
            oom: Default::default(),
            dir,
            log: Default::default(),
            env: Default::default(),
        });
        if let Ok(mut pods) = self.pods.lock() {
            pods.insert(key.clone(), running.clone());
        }
        tokio::spawn(run(store, key, running, stop_rx, path));
    }

    /// Stops a pod's process (pod deletion).
    pub fn stop(&self, key: &Key) {
        if let Some(r) = self.pods.lock().ok().and_then(|mut p| p.remove(key)) {
            let _ = r.stop.send(true);
            let _ = r.cut.send(());
            let pgid = r.pgid.lock().map(|p| *p).unwrap_or(0);
            signal(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Kills the container's process (a crash); `oom` marks it OOMKilled.
    pub fn kill(&self, key: &Key, oom: bool) -> bool {
        let Some(r) = self.get(key) else { return false };
        r.oom.store(oom, std::sync::atomic::Ordering::SeqCst);
        let pgid = r.pgid.lock().map(|p| *p).unwrap_or(0);
        signal(pgid, nix::sys::signal::Signal::SIGKILL);
        pgid > 0
    }

    /// Cuts every open attach, exec and port-forward stream of a pod.
    pub fn cut(&self, key: &Key) -> bool {
        self.get(key).is_some_and(|r| r.cut.send(()).is_ok())
    }

    /// Kills everything (emulator drop).
    pub fn stop_all(&self) {
        let keys: Vec<Key> = self.pods.lock().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        for k in keys {
            self.stop(&k);
        }
    }
}

/// Records an event about pod `key`.
pub fn event(store: &Store, key: &Key, kind: &str, reason: &str, message: &str) {
    let n = store.version();
    let uid = store.get(key).and_then(|o| o.pointer("/metadata/uid").cloned()).unwrap_or(Value::Null);
    let _ = store.create(
        "events",
        &key.1,
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{}.{n:x}", key.2)},
            "involvedObject": {"kind": "Pod", "namespace": key.1, "name": key.2, "apiVersion": "v1", "uid": uid},
            "firstTimestamp": crate::store::now(), "lastTimestamp": crate::store::now(),
            "reason": reason, "message": message, "type": kind, "count": 1,
            "source": {"component": "kubelet", "host": "emulator-node"}}),
    );
}

fn set_status(store: &Store, key: &Key, f: impl FnOnce(&mut Value)) {
    store.update(key, |pod| {
        if pod["status"].is_null() {
            pod["status"] = json!({});
        }
        f(&mut pod["status"]);
    });
}

/// A container status; `image` is (container name, image).
fn container_status(state: Value, ready: bool, restarts: u64, last: Option<Value>, image: &(String, String)) -> Value {
    let (name, image) = image;
    let mut s = json!({"name": name, "image": image, "imageID": "", "ready": ready, "started": ready,
        "restartCount": restarts, "state": state});
    if let Some(last) = last {
        s["lastState"] = last;
    }
    s
}

fn conditions(ready: bool) -> Value {
    let r = if ready { "True" } else { "False" };
    json!([{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": r}, {"type": "Ready", "status": r}])
}

/// The container's env, secrets resolved; `Err` names a missing Secret or key.
fn env(
    store: &Store,
    key: &Key,
    container: &Value,
    mounts: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for e in container["env"].as_array().cloned().unwrap_or_default() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if let Some(sel) = e.pointer("/valueFrom/secretKeyRef") {
            let sname = sel["name"].as_str().unwrap_or_default();
            let skey = sel["key"].as_str().unwrap_or_default();
            let secret = store
                .get(&("secrets".into(), key.1.clone(), sname.into()))
                .ok_or_else(|| format!("secret \"{sname}\" not found"))?;
            let encoded = secret["data"][skey]
                .as_str()
                .ok_or_else(|| format!("couldn't find key {skey} in Secret {}/{sname}", key.1))?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            String::new()
        };
        // Paths on emptyDir mounts point into the pod's local folders.
        let value = mounts.iter().fold(value, |v, (mount, local)| match v.strip_prefix(mount.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{local}{rest}"),
            _ => v,
        });
        out.push((name, value));
    }
    Ok(out)
}

async fn tcp_ready(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

async fn run(
    store: Arc<Store>,
    key: Key,
    running: Arc<Running>,
    mut stop: watch::Receiver<bool>,
    path: Option<String>,
) {
    let Some(pod) = store.get(&key) else { return };
    let container = pod.pointer("/spec/containers/0").cloned().unwrap_or(json!({}));
    let image_name = container["image"].as_str().unwrap_or_default().to_string();
    // (container name, image): what each container status names.
    let image = (container["name"].as_str().unwrap_or("main").to_string(), image_name.clone());
    set_status(&store, &key, |s| {
        s["phase"] = json!("Pending");
        s["hostIP"] = json!("127.0.0.1");
        s["podIP"] = json!("127.0.0.1");
        s["podIPs"] = json!([{"ip": "127.0.0.1"}]);
        s["conditions"] = json!([{"type": "PodScheduled", "status": "True"}]);
        s["containerStatuses"] =
            json!([container_status(json!({"waiting": {"reason": "ContainerCreating"}}), false, 0, None, &image)]);
    });
    store.update(&key, |p| p["spec"]["nodeName"] = json!("emulator-node"));
    event(&store, &key, "Normal", "Scheduled", &format!("Successfully assigned {}/{} to emulator-node", key.1, key.2));
    if image_name.contains("does-not-exist") {
        event(&store, &key, "Normal", "Pulling", &format!("Pulling image \"{image_name}\""));
        event(&store, &key, "Warning", "Failed", &format!("Failed to pull image \"{image_name}\": not found"));
        event(&store, &key, "Normal", "BackOff", &format!("Back-off pulling image \"{image_name}\""));
        set_status(&store, &key, |s| {
            s["containerStatuses"] = json!([container_status(
                json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image_name}\"")}}),
                false,
                0,
                None,
                &image
            )]);
        });
        return;
    }
    event(&store, &key, "Normal", "Pulled", &format!("Container image \"{image_name}\" already present on machine"));
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut mounts = Vec::new();
    for m in container["volumeMounts"].as_array().cloned().unwrap_or_default() {
        let name = m["name"].as_str().unwrap_or_default();
        if volumes.iter().any(|v| v["name"] == name && v.get("emptyDir").is_some()) {
            let local = running.dir.path().join(name);
            let _ = std::fs::create_dir_all(&local);
            mounts.push((m["mountPath"].as_str().unwrap_or_default().to_string(), local.display().to_string()));
        }
    }
    let mut command: Vec<String> =
        container["command"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
    command.extend(container["args"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)));
    let stdin_open = container["stdin"].as_bool().unwrap_or(false);
    let probe_port = container.pointer("/readinessProbe/tcpSocket/port").and_then(Value::as_u64).map(|p| p as u16);
    let mut restarts = 0u64;
    let mut last: Option<Value> = None;
    loop {
        let vars = match env(&store, &key, &container, &mounts) {
            Ok(v) => v,
            Err(why) => {
                set_status(&store, &key, |s| {
                    s["containerStatuses"] = json!([container_status(
                        json!({"waiting": {"reason": "CreateContainerConfigError", "message": why}}),
                        false,
                        restarts,
                        last.clone(),
                        &image
                    )]);
                });
                event(&store, &key, "Warning", "Failed", &format!("Error: {why}"));
                if tokio::time::timeout(Duration::from_millis(500), stop.changed()).await.is_ok() {
                    return;
                }
                continue;
            }
        };
        let Some((program, args)) = command.split_first() else {
            // The emulator has no images: it runs the container's command, and this pod gives none.
            let why = "the emulator runs the container's command and the pod gives none (set command)";
            set_status(&store, &key, |s| {
                s["containerStatuses"] = json!([container_status(
                    json!({"waiting": {"reason": "RunContainerError", "message": why}}),
                    false,
                    restarts,
                    last.clone(),
                    &image
                )]);
            });
            event(&store, &key, "Warning", "Failed", &format!("Error: {why}"));
            return;
        };
        let vars: Vec<(String, String)> = path.iter().map(|p| ("PATH".to_string(), p.clone())).chain(vars).collect();
        if let Ok(mut e) = running.env.lock() {
            e.clone_from(&vars);
        }
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).process_group(0).kill_on_drop(true);
        cmd.envs(vars);
        cmd.stdin(if stdin_open { std::process::Stdio::piped() } else { std::process::Stdio::null() });
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                set_status(&store, &key, |s| {
                    s["containerStatuses"] = json!([container_status(
                        json!({"waiting": {"reason": "RunContainerError", "message": e.to_string()}}),
                        false,
                        restarts,
                        last.clone(),
                        &image
                    )]);
                });
                return;
            }
        };
        if let Ok(mut p) = running.pgid.lock() {
            *p = child.id().map(|i| i as i32).unwrap_or(0);
        }
        *running.stdin.lock().await = child.stdin.take();
        event(&store, &key, "Normal", "Started", &format!("Started container {}", image.0));
        for (channel, pipe) in [
            (1u8, child.stdout.take().map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)),
            (2u8, child.stderr.take().map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let running = running.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    running.keep_log(&buf[..n]);
                    let _ = running.output.send((channel, Some(buf[..n].to_vec())));
                }
            });
        }
        let started = json!({"running": {"startedAt": crate::store::now()}});
        set_status(&store, &key, |s| {
            s["phase"] = json!("Running");
            s["conditions"] = conditions(false);
            s["containerStatuses"] = json!([container_status(started.clone(), false, restarts, last.clone(), &image)]);
        });
        let ready_store = store.clone();
        let ready_key = key.clone();
        let ready_image = image.clone();
        let ready_last = last.clone();
        let readiness = tokio::spawn(async move {
            if let Some(port) = probe_port {
                while !tcp_ready(port).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            set_status(&ready_store, &ready_key, |s| {
                s["conditions"] = conditions(true);
                s["containerStatuses"] = json!([container_status(started, true, restarts, ready_last, &ready_image)]);
            });
        });
        let exit = tokio::select! {
            e = child.wait() => e.ok(),
            _ = stop.changed() => {
                readiness.abort();
                let _ = child.start_kill();
                let _ = running.output.send((0, None));
                return;
            }
        };
        readiness.abort();
        let code = exit.and_then(|e| e.code()).unwrap_or(137);
        let oom = running.oom.swap(false, std::sync::atomic::Ordering::SeqCst);
        let _ = running.output.send((0, None));
        *running.stdin.lock().await = None;
        let reason = if oom {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let terminated = json!({"terminated": {"exitCode": code, "reason": reason, "finishedAt": crate::store::now()}});
        last = Some(terminated.clone());
        restarts += 1;
        let backoff = Duration::from_millis(200 * (1 << restarts.min(5)));
        let waiting = if restarts >= 3 {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {}", image.0)}})
        } else {
            terminated.clone()
        };
        event(
            &store,
            &key,
            "Warning",
            "BackOff",
            &format!("Back-off restarting failed container {} (exit {code}, {reason})", image.0),
        );
        set_status(&store, &key, |s| {
            s["conditions"] = conditions(false);
            s["containerStatuses"] = json!([container_status(waiting, false, restarts - 1, last.clone(), &image)]);
        });
        if tokio::time::timeout(backoff, stop.changed()).await.is_ok() {
            return;
        }
        set_status(&store, &key, |s| {
            if let Some(c) = s["containerStatuses"].get_mut(0) {
                c["restartCount"] = json!(restarts);
            }
        });
    }
}

/// Writes `bytes` to pod `running`'s current stdin.
pub async fn write_stdin(running: &Running, bytes: &[u8]) -> bool {
    let mut stdin = running.stdin.lock().await;
    match stdin.as_mut() {
        Some(s) => s.write_all(bytes).await.is_ok() && s.flush().await.is_ok(),
        None => false,
    }
}
