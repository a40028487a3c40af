//! Declarative servers: mcpod reconciles `McpServer` resources
//! (`mcpod.dev/v1alpha1`) in its namespace with kube's controller runtime.
//! A created resource becomes a running server named after it; an updated
//! spec replaces the server under the same id, so its endpoints stay; a
//! deleted resource is cleaned up through a finalizer. One with
//! `spec.virtual` is a virtual server of that name instead. Servers started
//! through the API and through resources share one manager and one list.

pub mod resource;

use crate::servers::{Manager, ManagerError, ServerStatus, Sharing, StartRequest};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
pub use resource::{McpServer, McpServerSpec, McpServerStatus};
use std::sync::Arc;
use std::time::Duration;

/// The finalizer mcpod puts on every McpServer it runs.
pub const FINALIZER: &str = "mcpod.dev/cleanup";

/// Why reconciling one McpServer failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The API refused a read or write.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The spec cannot be run as it is.
    #[error("{0}")]
    Spec(String),
    /// The manager could not start or stop the server.
    #[error(transparent)]
    Manager(#[from] ManagerError),
}

/// What reconciles share.
pub struct Context {
    /// The server manager.
    pub manager: Arc<Manager>,
    /// The McpServers of the namespace.
    pub api: Api<McpServer>,
    /// Secrets of the namespace (for `secretRefs`).
    pub secrets: Api<Secret>,
}

/// Runs the controller until the host stops.
pub async fn run(client: Client, namespace: &str, manager: Arc<Manager>) {
    let api: Api<McpServer> = Api::namespaced(client.clone(), namespace);
    let ctx = Arc::new(Context { manager, api: api.clone(), secrets: Api::namespaced(client, namespace) });
    Controller::new(api, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "McpServer reconcile failed");
            }
        })
        .await;
}

/// Brings one McpServer and its server in line.
async fn reconcile(
    obj: Arc<McpServer>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    let api = ctx.api.clone();
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Event::Apply(obj) => apply(&obj, &ctx).await,
            Event::Cleanup(obj) => cleanup(&obj, &ctx).await,
        }
    })
    .await
}

fn error_policy(
    obj: Arc<McpServer>,
    error: &kube::runtime::finalizer::Error<ReconcileError>,
    _: Arc<Context>,
) -> Action {
    tracing::warn!(resource = %obj.name_any(), error = %error, "McpServer not reconciled; retrying in 15 s");
    Action::requeue(Duration::from_secs(15))
}

/// The start request an McpServer asks for, secrets read from their Secrets.
async fn start_request(
    spec: &McpServerSpec,
    labels: &std::collections::BTreeMap<String, String>,
    secrets: &Api<Secret>,
) -> Result<StartRequest, ReconcileError> {
    if let Some(problem) = spec.problem() {
        return Err(ReconcileError::Spec(problem));
    }
    let mut req = StartRequest {
        template: spec.template.clone(),
        params: spec.params.clone(),
        expose: spec.expose.clone(),
        labels: labels.clone(),
        ..Default::default()
    };
    if let Some(raw) = &spec.server {
        req.server_type = Some(raw.server_type.clone());
        req.package = raw.package.clone();
        req.version = raw.version.clone();
        req.image = raw.image.clone();
        req.args = raw.args.clone();
        req.env = raw.env.clone();
        req.transport = raw.transport.clone();
        req.port = raw.port;
        req.path = raw.path.clone();
    }
    req.sharing = match spec.sharing.as_deref() {
        None => None,
        Some("shared") => Some(Sharing::Shared),
        Some("per-session") => Some(Sharing::PerSession),
        Some(other) => return Err(ReconcileError::Spec(format!("spec.sharing {other:?}: use per-session or shared"))),
    };
    for r in &spec.secret_refs {
        let secret = secrets.get_opt(&r.secret_name).await?.ok_or_else(|| {
            ReconcileError::Spec(format!("secretRefs: Secret {:?} does not exist; create it first", r.secret_name))
        })?;
        let value = secret.data.as_ref().and_then(|d| d.get(&r.key)).ok_or_else(|| {
            ReconcileError::Spec(format!("secretRefs: Secret {:?} has no key {:?}", r.secret_name, r.key))
        })?;
        req.env.insert(r.env.clone(), String::from_utf8_lossy(&value.0).into_owned());
    }
    Ok(req)
}

/// A virtual server declared as an McpServer: created (or replaced) under
/// the resource's name; its status lists its endpoints.
async fn apply_virtual(
    obj: &McpServer,
    members: &resource::VirtualMembers,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let name = obj.name_any();
    let spec = crate::servers::VirtualSpec { name: name.clone(), members: members.members.clone() };
    let outcome = ctx.manager.create_virtual(spec).map_err(|e| e.to_string());
    let (phase, ready, reason, message) = match &outcome {
        Ok(v) => ("Ready", "True", "VirtualServerReady", format!("{} members now", v.members.len())),
        Err(why) => ("Failed", "False", "InvalidSpec", why.clone()),
    };
    let endpoints = outcome.as_ref().ok().map(|v| &v.endpoints);
    let status = status_from((phase, ready, reason, message), endpoints, None, obj);
    publish(obj, status, ctx).await?;
    Ok(Action::requeue(Duration::from_secs(30)))
}

async fn apply(obj: &McpServer, ctx: &Context) -> Result<Action, ReconcileError> {
    if let (Some(members), None) = (&obj.spec.virtual_server, obj.spec.problem()) {
        return apply_virtual(obj, members, ctx).await;
    }
    let id = obj.name_any();
    let generation = obj.metadata.generation;
    let observed = obj.status.as_ref().and_then(|s| s.observed_generation);
    let current = ctx.manager.status(&id).ok();
    let outcome = match current {
        // Running and up to date (also after a host restart adopted it).
        Some(status) if observed.is_some() && observed == generation => Ok(status),
        current => match start_request(&obj.spec, obj.labels(), &ctx.secrets).await {
            Err(ReconcileError::Spec(why)) => Err(why),
            Err(e) => return Err(e),
            Ok(req) if current.is_some() => {
                tracing::info!(resource = %id, "McpServer changed; replacing its server");
                ctx.manager.replace(&id, req).await.map_err(|e| e.to_string())
            }
            Ok(req) => ctx.manager.start_with_id(req, &id).await.map_err(|e| e.to_string()),
        },
    };
    publish(obj, status_of(&outcome, obj), ctx).await?;
    Ok(Action::requeue(Duration::from_secs(30)))
}

async fn cleanup(obj: &McpServer, ctx: &Context) -> Result<Action, ReconcileError> {
    let id = obj.name_any();
    if obj.spec.virtual_server.is_some() {
        let _ = ctx.manager.delete_virtual(&id);
        tracing::info!(resource = %id, "McpServer deleted; its virtual server is removed");
        return Ok(Action::await_change());
    }
    match ctx.manager.stop(&id).await {
        Ok(_) | Err(ManagerError::NotFound(_)) => {
            tracing::info!(resource = %id, "McpServer deleted; its server is stopped");
            Ok(Action::await_change())
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes `status` to `obj` unless it has it already.
async fn publish(obj: &McpServer, status: McpServerStatus, ctx: &Context) -> Result<(), ReconcileError> {
    if obj.status.as_ref() != Some(&status) {
        let patch = serde_json::json!({ "status": status });
        ctx.api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    Ok(())
}

/// The status for a server's state (or the reason it could not start).
fn status_of(outcome: &Result<ServerStatus, String>, obj: &McpServer) -> McpServerStatus {
    let verdict = match outcome {
        Ok(s) if s.healthy => ("Ready", "True", "ServerReady", "the server answers".to_string()),
        Ok(s) if s.status == "failed" => ("Failed", "False", "ServerFailed", s.detail.clone().unwrap_or_default()),
        Ok(s) => ("Pending", "False", "ServerStarting", s.detail.clone().unwrap_or_else(|| s.status.to_string())),
        Err(why) => ("Failed", "False", "InvalidSpec", why.clone()),
    };
    let server = outcome.as_ref().ok();
    let capabilities = server.and_then(|s| s.capabilities.as_ref()).and_then(|c| serde_json::to_value(c).ok());
    let mut status = status_from(verdict, server.map(|s| &s.endpoints), capabilities, obj);
    status.packages = server.map(|s| s.packages.iter().map(crate::supply::Pinned::id).collect()).unwrap_or_default();
    status
}

/// A status from a verdict (phase, `Ready` condition status, reason,
/// message), keeping the condition's transition time while it holds.
fn status_from(
    (phase, ready, reason, message): (&str, &str, &str, String),
    endpoints: Option<&std::collections::BTreeMap<String, String>>,
    capabilities: Option<serde_json::Value>,
    obj: &McpServer,
) -> McpServerStatus {
    let generation = obj.metadata.generation;
    let old_ready = obj.status.as_ref().and_then(|o| o.conditions.iter().find(|c| c.type_ == "Ready"));
    let since = match old_ready {
        Some(c) if c.status == ready => c.last_transition_time.clone(),
        _ => now_rfc3339(),
    };
    McpServerStatus {
        phase: Some(phase.to_string()),
        message: (!message.is_empty() && phase != "Ready").then_some(message.clone()),
        conditions: vec![resource::Condition {
            type_: "Ready".to_string(),
            status: ready.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: since,
            observed_generation: generation,
        }],
        endpoints: endpoints.map(|e| resource::Endpoints {
            streamable_http: e.get("streamable_http").cloned(),
            sse: e.get("sse").cloned(),
            websocket: e.get("websocket").cloned(),
        }),
        capabilities,
        observed_generation: generation,
        packages: Vec::new(),
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}
