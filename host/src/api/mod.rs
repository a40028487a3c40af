//! The management API: health, readiness and plugin listing for now; the
//! server routes join it as the runtimes land.

pub mod error;

use crate::plugin::PluginHost;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The loaded plugins.
    pub plugins: Arc<PluginHost>,
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/plugins", get(list_plugins))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "ready": true,
        "plugins": state.plugins.plugins().count(),
        "plugin_failures": state.plugins.failures().len(),
    }))
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
