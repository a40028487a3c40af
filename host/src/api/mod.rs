//! The management API: servers, templates, packages and plugins under
//! `/api/v1`, plus `/healthz`, `/readyz` and `/metrics`. The token and the
//! browser guard are layers that `app` puts around these routes (`gate`).

pub mod error;

use crate::catalog;
use crate::identity::{Principal, Role};
use crate::plugin::{CallError, PluginHost};
use crate::servers::{Manager, ManagerError, StartRequest};
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use error::ApiError;
use serde::Serialize;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The loaded plugins.
    pub plugins: Arc<PluginHost>,
    /// The server manager.
    pub manager: Arc<Manager>,
    /// Metrics, rendered by `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where server starts and stops are recorded.
    pub audit: Arc<crate::audit::AuditLog>,
    /// The access policies (which templates a user may start).
    pub access: Arc<crate::access::Access>,
}

/// The API's routes under `/api/v1` (the app puts them behind the token).
/// What runs code or reaches past one's own use (a server's logs, the
/// plugins) is for admins: those handlers are wrapped in [`admin_only`]
/// here, in the one table of routes. Starting and stopping are decided in
/// their handlers ([`user_may_start`], [`may_stop`]): a user may start a
/// template where a policy permits it, and stop what it started.
pub fn routes(state: AppState) -> Router {
    let admin = || axum::middleware::from_fn(admin_only);
    Router::new()
        .route("/api/v1/servers", get(list_servers).post(start_server))
        .route("/api/v1/servers/{id}", get(server_status).delete(stop_server))
        .route("/api/v1/servers/{id}/logs", get(server_logs.layer(admin())))
        .route("/api/v1/servers/{id}/health", get(server_health))
        .route("/api/v1/servers/{id}/instances", post(open_instance))
        .route("/api/v1/servers/{id}/instances/{handle}", delete(close_instance))
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/templates/{name}", get(show_template))
        .route("/api/v1/packages/search", get(search_packages))
        .route("/api/v1/packages/info", get(package_info))
        .route("/api/v1/plugins", get(list_plugins.layer(admin())))
        .route("/api/v1/virtual", get(list_virtual).post(create_virtual.layer(admin())))
        .route("/api/v1/virtual/{name}", get(virtual_status).delete(delete_virtual.layer(admin())))
        .with_state(state)
}

async fn create_virtual(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<crate::servers::VirtualStatus>), ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
    let spec: crate::servers::VirtualSpec = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid request body: {e}")))?;
    Ok((StatusCode::CREATED, Json(state.manager.create_virtual(spec)?)))
}

async fn list_virtual(State(state): State<AppState>) -> Json<Vec<crate::servers::VirtualStatus>> {
    Json(state.manager.list_virtual())
}

async fn virtual_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<crate::servers::VirtualStatus>, ApiError> {
    Ok(Json(state.manager.virtual_status(&name)?))
}

async fn delete_virtual(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.manager.delete_virtual(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The refusal of `who` doing `what` for want of the admin role.
fn needs_admin(who: &Principal, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{what} needs the admin role, and `{}` has the {} role; use an admin token (`mcpod tokens create NAME --role admin`, or the admin token)",
            who.name,
            who.role.as_str()
        ),
    )
}

/// Whether `who`, a user, may start `req`: only from a template, with
/// nothing but its params, its declared secrets, sharing and exposure
/// rules (extra `args` or environment would let a caller run other code),
/// and only where an access policy permits `Action::"start"` on the template.
pub async fn user_may_start(state: &AppState, req: &StartRequest, who: &Principal) -> Result<(), ApiError> {
    let Some(template) = &req.template else {
        return Err(needs_admin(who, "starting a server from a raw config (`server_type`, `package`, `image`)"));
    };
    if !req.args.is_empty() {
        return Err(needs_admin(who, "adding `args` to a template"));
    }
    let found = catalog::find_template(&state.plugins, template).await?;
    let foreign: Vec<&str> =
        req.env.keys().filter(|k| !found.template.secrets.iter().any(|s| &s.name == *k)).map(String::as_str).collect();
    if !foreign.is_empty() {
        return Err(needs_admin(
            who,
            &format!(
                "setting environment variables the template `{template}` does not declare as secrets ({})",
                foreign.join(", ")
            ),
        ));
    }
    let verdict = state.access.decide(who, crate::access::Act::Start, template, None);
    if verdict.allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_by_policy",
        format!("`{}` may not start template `{template}`: {}", who.name, verdict.reason),
    ))
}

/// Whether `who` may stop server `id`: an admin any, a user only one it started.
fn may_stop(state: &AppState, id: &str, who: &Principal) -> Result<(), ApiError> {
    let owner = state.manager.owner(id)?;
    if who.role == Role::Admin || owner.is_some_and(|o| o.name == who.name && o.issuer == who.issuer) {
        return Ok(());
    }
    Err(needs_admin(who, &format!("stopping server `{id}`, which `{}` did not start,", who.name)))
}

/// Refuses a principal without the admin role (the authentication layer
/// put the principal in the request's extensions).
pub async fn admin_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match req.extensions().get::<Arc<Principal>>() {
        Some(p) if p.role == Role::Admin => next.run(req).await,
        Some(p) => {
            tracing::info!(principal = %p.name, method = %req.method(), path = req.uri().path(), "refused: needs the admin role");
            needs_admin(p, &format!("{} {}", req.method(), req.uri().path())).into_response()
        }
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no credential was checked for this request; send `Authorization: Bearer <token>`",
        )
        .into_response(),
    }
}

/// `/healthz`, `/readyz` and `/metrics`, which probes and scrapers reach
/// without a token (still behind the browser guard).
pub fn open_routes(state: AppState) -> Router {
    let [health, ready, metrics_path] = OPEN_PATHS;
    Router::new()
        .route(health, get(healthz))
        .route(ready, get(readyz))
        .route(metrics_path, get(metrics))
        .with_state(state)
}

/// The paths [`open_routes`] serves, which `gate::AuthLayer` lets through
/// without a token (probes and scrapers carry none).
pub const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the listener answers (this is its answer), the plugins are
/// loaded (the host serves only after loading them; failures are counted
/// here, and the servers of other plugins still run), the runtime can start
/// instances, and the host is not draining.
async fn readyz(State(state): State<AppState>) -> Response {
    let draining = state.manager.is_draining();
    let runtime = state.manager.runtime_ready().await;
    let ready = !draining && runtime.is_ok();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Json(serde_json::json!({
        "ready": ready,
        "draining": draining,
        "runtime": state.manager.runtime_name(),
        "runtime_ready": runtime.is_ok(),
        "runtime_problem": runtime.err(),
        "plugins": state.plugins.plugins().count(),
        "plugin_failures": state.plugins.failures().len(),
        "servers": state.manager.list().len(),
    }));
    (status, body).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut servers = state.manager.list();
    state.manager.measure(&mut servers).await;
    let instances = servers.iter().flat_map(|s| {
        let usage = s.usage.iter().flat_map(|u| u.instances.iter());
        usage.map(|(id, u)| crate::metrics::InstanceGauges {
            server: &s.server_id,
            instance: id,
            cpu_seconds: u.cpu_seconds,
            cpu_cores: u.cpu_cores,
            memory_bytes: u.memory_bytes,
        })
    });
    let instances: Vec<_> = instances.collect();
    let body = state.metrics.render(
        servers.iter().map(|s| crate::metrics::ServerGauges {
            server: &s.server_id,
            state: s.status.as_str(),
            sessions: s.sessions,
            restarts: u64::from(s.restarts),
        }),
        instances,
    );
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        let status = e.http_status();
        match &e {
            ManagerError::BadRequest { details, .. } if !details.is_empty() => ApiError::with_details(
                status,
                "invalid_config",
                e.to_string(),
                serde_json::to_value(details).unwrap_or_default(),
            ),
            ManagerError::BadRequest { .. } => ApiError::new(status, "invalid_request", e.to_string()),
            ManagerError::Forbidden(_) => ApiError::new(status, "forbidden_by_policy", e.to_string()),
            ManagerError::NotFound(_) => ApiError::new(status, "not_found", e.to_string()),
            ManagerError::Limit(_) => ApiError::new(status, "limit_exceeded", e.to_string()),
            ManagerError::Failed(_) => ApiError::new(status, "failed", e.to_string()),
            ManagerError::Draining => ApiError::new(status, "draining", e.to_string()),
        }
        .retry_after(e.retry_after())
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        ManagerError::from(e).into()
    }
}

async fn start_server(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<crate::servers::ServerStatus>), ApiError> {
    // axum's own refusal of a body (too large, cut off) is plain text.
    let body = body.map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
    let req: StartRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid request body: {e}")))?;
    if who.role != Role::Admin
        && let Err(e) = user_may_start(&state, &req, &who).await
    {
        tracing::info!(principal = %who.name, template = ?req.template, "refused a start: {}", e.message);
        state.audit.server(&who, "server_start", "", Err(i64::from(e.status.as_u16())));
        return Err(e);
    }
    match state.manager.start_by(req, who.clone()).await.map_err(ApiError::from) {
        Ok(status) => {
            let packages: Vec<String> = status.packages.iter().map(crate::supply::Pinned::id).collect();
            state.audit.server_with(&who, "server_start", &status.server_id, Ok(()), &packages);
            Ok((StatusCode::CREATED, Json(status)))
        }
        Err(e) => {
            state.audit.server(&who, "server_start", "", Err(i64::from(e.status.as_u16())));
            Err(e)
        }
    }
}

async fn list_servers(State(state): State<AppState>) -> Json<Vec<crate::servers::ServerStatus>> {
    let mut list = state.manager.list();
    state.manager.measure(&mut list).await;
    Json(list)
}

async fn server_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::servers::ServerStatus>, ApiError> {
    let mut status = [state.manager.status(&id)?];
    state.manager.measure(&mut status).await;
    let [status] = status;
    Ok(Json(status))
}

async fn stop_server(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Result<Json<crate::servers::ServerStatus>, ApiError> {
    if let Err(e) = may_stop(&state, &id, &who) {
        state.audit.server(&who, "server_stop", &id, Err(i64::from(e.status.as_u16())));
        return Err(e);
    }
    let stopped = state.manager.stop(&id).await.map_err(ApiError::from);
    state.audit.server(
        &who,
        "server_stop",
        &id,
        stopped.as_ref().map(|_| ()).map_err(|e| i64::from(e.status.as_u16())),
    );
    Ok(Json(stopped?))
}

async fn server_logs(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(state.manager.logs(&id)?))
}

/// A handle to an instance of its own, for one 2026-07-28 client.
async fn open_instance(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<crate::servers::HandleInfo>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.manager.open_handle(&id, &who)?)))
}

async fn close_instance(
    State(state): State<AppState>,
    Path((id, handle)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.manager.close_handle(&id, &handle)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn server_health(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::servers::HealthReport>, ApiError> {
    Ok(Json(state.manager.health_check(&id).await?))
}

/// Every template, and beside them the catalogs and templates that failed.
async fn list_templates(State(state): State<AppState>) -> Json<catalog::TemplateListing> {
    Json(catalog::listing(&state.plugins).await)
}

async fn show_template(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<catalog::CatalogTemplate>, ApiError> {
    Ok(Json(catalog::find_template(&state.plugins, &name).await?))
}

/// Query of the package endpoints.
#[derive(serde::Deserialize)]
struct PackageQuery {
    registry: Option<String>,
    q: Option<String>,
    name: Option<String>,
    version: Option<String>,
    limit: Option<u32>,
}

fn need<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, ApiError> {
    v.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("the `{what}` query parameter is required"))
    })
}

async fn search_packages(
    State(state): State<AppState>,
    Query(q): Query<PackageQuery>,
) -> Result<Json<Vec<crate::plugin::bindings::PackageSummary>>, ApiError> {
    let registry = need(&q.registry, "registry")?;
    let query = need(&q.q, "q")?;
    let began = std::time::Instant::now();
    let found = catalog::search_packages(&state.plugins, registry, query, q.limit.unwrap_or(20).min(100)).await;
    let outcome = if found.is_ok() { "ok" } else { "error" };
    state.metrics.registry(registry, "search", outcome, began.elapsed().as_secs_f64());
    if let Ok(list) = &found {
        let labels = crate::metrics::RegistryLabels { registry: registry.to_string(), operation: "search".to_string() };
        state.metrics.registry_results.get_or_create(&labels).inc_by(list.len() as u64);
    }
    Ok(Json(found?))
}

async fn package_info(
    State(state): State<AppState>,
    Query(q): Query<PackageQuery>,
) -> Result<Json<crate::plugin::bindings::PackageInfo>, ApiError> {
    let registry = need(&q.registry, "registry")?;
    let name = need(&q.name, "name")?;
    let began = std::time::Instant::now();
    let info = catalog::package_info(&state.plugins, registry, name, q.version.as_deref()).await;
    let outcome = if info.is_ok() { "ok" } else { "error" };
    state.metrics.registry(registry, "info", outcome, began.elapsed().as_secs_f64());
    Ok(Json(info?))
}

/// One row of `GET /api/v1/plugins` and `mcpod plugins list`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PluginRow {
    /// The plugin's name in the config.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// `builtin:NAME` or a file path.
    pub source: String,
    /// The version it reports.
    pub version: String,
    /// The world it implements.
    pub world: String,
    /// What it reports about itself.
    pub description: String,
    /// `loaded`, or `failed` with `error`.
    pub status: String,
    /// Why it failed to load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Rows for every plugin, loaded or not.
pub fn plugin_rows(host: &PluginHost) -> Vec<PluginRow> {
    let mut rows: Vec<PluginRow> = host
        .plugins()
        .map(|p| PluginRow {
            name: p.name.clone(),
            kind: p.kind.to_string(),
            source: p.source.clone(),
            version: p.info.version.clone(),
            world: p.world(),
            description: p.info.description.clone(),
            status: "loaded".to_string(),
            error: None,
        })
        .collect();
    rows.extend(host.failures().iter().map(|f| PluginRow {
        name: f.name.clone(),
        kind: f.kind.to_string(),
        source: f.source_desc.clone(),
        version: String::new(),
        world: crate::plugin::world::world_name(f.kind),
        description: String::new(),
        status: "failed".to_string(),
        error: Some(f.message.clone()),
    }));
    rows.sort_by(|a, b| (a.kind.as_str(), a.name.as_str()).cmp(&(b.kind.as_str(), b.name.as_str())));
    rows
}

async fn list_plugins(State(state): State<AppState>) -> Json<Vec<PluginRow>> {
    Json(plugin_rows(&state.plugins))
}
