//! Every pod of this host, kept current by one watch (never polling):
//! launches wait on it for their pod to become ready, and supervisors for
//! it to stop. The watcher re-lists by itself when the API server comes
//! back after a restart.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch as notify;

/// The pods of one label selector, as last seen.
pub struct PodWatch {
    pods: Mutex<HashMap<String, Pod>>,
    /// Bumped on every change.
    changed: notify::Sender<u64>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PodWatch {
    /// Starts watching the pods of `api` that match `selector`.
    pub fn start(api: Api<Pod>, selector: &str) -> Arc<PodWatch> {
        let (changed, _) = notify::channel(0);
        let me = Arc::new(PodWatch { pods: Mutex::new(HashMap::new()), changed, task: Mutex::new(None) });
        let config = watcher::Config::default().labels(selector);
        let weak = Arc::downgrade(&me);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
            let mut fresh: Option<HashMap<String, Pod>> = None;
            while let Some(event) = stream.next().await {
                let Some(me) = weak.upgrade() else { return };
                match event {
                    Ok(Event::Init) => fresh = Some(HashMap::new()),
                    Ok(Event::InitApply(pod)) => {
                        if let (Some(f), Some(name)) = (fresh.as_mut(), pod.metadata.name.clone()) {
                            f.insert(name, pod);
                        }
                    }
                    Ok(Event::InitDone) => {
                        if let (Some(f), Ok(mut pods)) = (fresh.take(), me.pods.lock()) {
                            *pods = f;
                        }
                        me.bump();
                    }
                    Ok(Event::Apply(pod)) => {
                        if let (Some(name), Ok(mut pods)) = (pod.metadata.name.clone(), me.pods.lock()) {
                            pods.insert(name, pod);
                        }
                        me.bump();
                    }
                    Ok(Event::Delete(pod)) => {
                        if let (Some(name), Ok(mut pods)) = (pod.metadata.name.as_deref(), me.pods.lock()) {
                            pods.remove(name);
                        }
                        me.bump();
                    }
                    Err(e) => tracing::warn!(error = %e, "the pod watch failed; retrying"),
                }
            }
        });
        if let Ok(mut t) = me.task.lock() {
            *t = Some(task);
        }
        me
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The pod named `name`, as last seen.
    pub fn get(&self, name: &str) -> Option<Pod> {
        self.pods.lock().ok()?.get(name).cloned()
    }

    /// Every pod, as last seen.
    pub fn list(&self) -> Vec<Pod> {
        self.pods.lock().map(|p| p.values().cloned().collect()).unwrap_or_default()
    }

    /// Records `pod` at once (the answer to our own create), so that
    /// waiters need not wait for the watch to echo it.
    pub fn record(&self, pod: Pod) {
        if let (Some(name), Ok(mut pods)) = (pod.metadata.name.clone(), self.pods.lock()) {
            pods.entry(name).or_insert(pod);
        }
    }

    /// Waits until `decide` returns `Some` for pod `name` (`None` if the pod
    /// is unknown), or `timeout` passes (then `Err` with the last view).
    pub async fn wait_for<T>(
        &self,
        name: &str,
        timeout: Duration,
        mut decide: impl FnMut(Option<&Pod>) -> Option<T>,
    ) -> Result<T, Option<Pod>> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.get(name);
            if let Some(t) = decide(current.as_ref()) {
                return Ok(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(self.get(name)),
            }
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}
