//! Protected Resource Metadata (RFC 9728): how an MCP client that got a
//! 401 finds the issuer to ask for a token, as the MCP authorization
//! specification has it. Served at the well-known path for the host and,
//! path-aware, for each server's endpoints; only when `[auth.oidc]` is
//! set (a static token cannot be obtained by discovery). No token is
//! needed to read it; the browser guard still applies.

use crate::api::error::ApiError;
use crate::identity::Authenticator;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// The well-known path; a server's metadata is at this path followed by
/// the server's own (`/.well-known/oauth-protected-resource/servers/ID/mcp`).
pub const PATH: &str = "/.well-known/oauth-protected-resource";

#[derive(Clone)]
struct Published {
    auth: Arc<Authenticator>,
    public_url: Option<Arc<str>>,
}

/// The metadata routes.
pub fn routes(auth: Arc<Authenticator>, public_url: Option<Arc<str>>) -> Router {
    Router::new()
        .route(PATH, get(for_host))
        .route(&format!("{PATH}/{{*rest}}"), get(for_path))
        .with_state(Published { auth, public_url })
}

fn base(p: &Published, req: &Request) -> String {
    super::resource_of(p.public_url.as_deref(), req).base
}

fn document(p: &Published, resource: &str) -> Response {
    match p.auth.oidc() {
        Some(v) => axum::Json(v.resource_metadata(resource)).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this host accepts no OAuth access tokens ([auth.oidc] is not set), so it publishes no resource metadata; use a token from `mcpod tokens create`",
        )
        .into_response(),
    }
}

async fn for_host(State(p): State<Published>, req: Request) -> Response {
    let base = base(&p, &req);
    document(&p, &base)
}

async fn for_path(State(p): State<Published>, Path(rest): Path<String>, req: Request) -> Response {
    if !rest.starts_with("servers/") {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "resource metadata exists for the host and for `servers/ID/…` paths only",
        )
        .into_response();
    }
    // One resource per server, whichever of its endpoints the client
    // derived the path from (`…/servers/ID/mcp`, `…/servers/ID/sse`): a
    // client that fetches the metadata again from another path must get
    // the same resource, or its token request names a different one.
    let id = rest.trim_start_matches("servers/").split('/').next().unwrap_or("");
    if id.is_empty() {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "resource metadata of `servers/` needs a server id")
            .into_response();
    }
    let base = base(&p, &req);
    document(&p, &format!("{base}/servers/{id}"))
}
