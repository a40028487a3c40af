//! Servers that run elsewhere (server type `remote`): nothing to start or
//! stop; an instance is a connection to the launch's URL, which the bridge
//! opens as it opens one to a server this host started. Used for every
//! launch whose [`LaunchSpec::remote_url`] is set, whichever runtime runs
//! the rest, so that a remote server is served the same way with or
//! without a cluster.
//!
//! [`LaunchSpec::remote_url`]: crate::launch::LaunchSpec::remote_url

use super::{Connection, InstanceInfo, LaunchRequest, Launched, Runtime, RuntimeError};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// "Launches" a remote server by naming its URL.
#[derive(Default)]
pub struct RemoteRuntime {
    /// Each connected instance: its server, and the sender that ends it.
    instances: Mutex<BTreeMap<String, (String, oneshot::Sender<String>)>>,
}

#[async_trait::async_trait]
impl Runtime for RemoteRuntime {
    fn name(&self) -> &'static str {
        "remote"
    }

    fn supports(&self, spec: &crate::launch::LaunchSpec) -> Result<(), RuntimeError> {
        match spec.remote_url() {
            Some(_) => Ok(()),
            None => Err(RuntimeError::Unsupported {
                runtime: "remote",
                reason: "the launch names no http or https URL to reach".into(),
            }),
        }
    }

    async fn launch(&self, req: &LaunchRequest) -> Result<Launched, RuntimeError> {
        self.supports(&req.spec)?;
        let base_url = req.spec.remote_url().ok_or_else(|| RuntimeError::Other("no remote URL".into()))?;
        let (tx, exited) = oneshot::channel();
        self.instances
            .lock()
            .map_err(|_| RuntimeError::Other("runtime state poisoned".into()))?
            .insert(req.instance_id.clone(), (req.server_id.clone(), tx));
        Ok(Launched { connection: Connection::Network { base_url }, exited })
    }

    async fn stop(&self, instance_id: &str) -> Result<(), RuntimeError> {
        let (_, tx) = self
            .instances
            .lock()
            .map_err(|_| RuntimeError::Other("runtime state poisoned".into()))?
            .remove(instance_id)
            .ok_or_else(|| RuntimeError::NotFound(instance_id.to_string()))?;
        let _ = tx.send("disconnected".into());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceInfo>, RuntimeError> {
        let instances = self.instances.lock().map_err(|_| RuntimeError::Other("runtime state poisoned".into()))?;
        Ok(instances
            .iter()
            .map(|(id, (server, _))| InstanceInfo {
                instance_id: id.clone(),
                server_id: server.clone(),
                state: "connected".into(),
                detail: None,
            })
            .collect())
    }

    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    async fn shutdown(&self) {
        if let Ok(mut instances) = self.instances.lock() {
            instances.clear();
        }
    }
}
