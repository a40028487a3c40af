//! What every HTTP request passes before a handler, as layers around the
//! router (`app` wires them): the browser guard (`front::guard`: Host,
//! Origin, JSON content type), CORS for configured origins only, and the
//! admin token. Refusals are JSON in the style of the route: a JSON-RPC
//! error on the MCP front (`/servers/…`), an API error elsewhere. This is
//! where identity will plug in when tokens carry more than "admin".

use crate::api::error::ApiError;
use crate::front::guard::{Guard, Refusal};
use crate::identity::{Principal, TokenTable};
use crate::jsonrpc::code;
use crate::mcp_headers;
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// True for the MCP front's paths, whose errors are JSON-RPC errors.
fn is_mcp_path(path: &str) -> bool {
    path.starts_with("/servers/")
}

/// The browser guard's state: the rules, and where refusals are counted.
#[derive(Clone)]
pub struct GuardCheck {
    /// The Host, Origin and content-type rules.
    pub guard: Arc<Guard>,
    /// Counts each refusal by rule.
    pub metrics: Arc<Metrics>,
}

/// The credentials a request may prove a principal with, and where
/// refusals are counted.
#[derive(Clone)]
pub struct TokenCheck {
    /// The admin token (`None`: authentication is off, on loopback only).
    pub token: Option<Arc<str>>,
    /// The named tokens (`mcpod tokens create`).
    pub named: Arc<TokenTable>,
    /// Counts each refusal.
    pub metrics: Arc<Metrics>,
}

fn refuse(path: &str, r: Refusal, metrics: &Metrics) -> Response {
    metrics.refuse(r.rule);
    tracing::debug!(rule = r.rule, path, "refused a request before any handler");
    if is_mcp_path(path) {
        crate::front::rpc_error(r.status, code::INVALID_REQUEST, &r.message)
    } else {
        let code = match r.rule {
            "host" => "forbidden_host",
            "origin" => "forbidden_origin",
            "content_type" => "unsupported_media_type",
            _ => "unauthorized",
        };
        ApiError::new(r.status, code, r.message).into_response()
    }
}

/// The browser guard as a layer: refuses a foreign `Host`, a foreign
/// `Origin`, and a POST that is not JSON, before the body is read.
pub async fn guard(State(check): State<GuardCheck>, req: Request, next: Next) -> Response {
    match check.guard.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => refuse(req.uri().path(), r, &check.metrics),
    }
}

/// Who the request's credential proves, if anyone: the admin token, a
/// named token, or (authentication off) everyone.
fn principal(check: &TokenCheck, authorization: Option<&str>) -> Option<Principal> {
    let given = crate::auth::bearer(authorization);
    let Some(admin) = &check.token else {
        return Some(given.and_then(|t| check.named.principal(t)).unwrap_or_else(Principal::unauthenticated));
    };
    if crate::auth::bearer_matches(authorization, admin) {
        return Some(Principal::admin_token());
    }
    given.and_then(|t| check.named.principal(t))
}

/// True if the query string carries an access token, which the MCP
/// authorization specification forbids (URLs end up in logs and caches).
fn token_in_query(req: &Request) -> bool {
    req.uri().query().is_some_and(|q| {
        q.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("access_token")))
    })
}

fn unauthorized(path: &str, message: &str, metrics: &Metrics) -> Response {
    metrics.refuse("token");
    tracing::debug!(path, "refused a request without a valid credential");
    let mut resp = if is_mcp_path(path) {
        crate::front::rpc_error(StatusCode::UNAUTHORIZED, code::INVALID_REQUEST, message)
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
    };
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Authentication as a layer: proves who is calling and puts the
/// [`Principal`] in the request's extensions for the handlers, the role
/// checks and the logs (every line of the request carries its name).
/// Refuses a request that proves no one, and a token sent in the URL.
pub async fn require_token(State(check): State<TokenCheck>, mut req: Request, next: Next) -> Response {
    if token_in_query(&req) {
        return unauthorized(
            req.uri().path(),
            "an access token in the URL is refused (URLs are logged and cached); send `Authorization: Bearer <token>`",
            &check.metrics,
        );
    }
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(principal) = principal(&check, authorization) else {
        return unauthorized(
            req.uri().path(),
            "missing or wrong bearer token; send `Authorization: Bearer <token>` (the CLI reads MCPOD_API_TOKEN, or the file `mcpod serve` generated: `mcpod tokens admin` prints it; `mcpod tokens create NAME` makes a named one)",
            &check.metrics,
        );
    };
    let span = tracing::info_span!("request", principal = %principal.name, role = principal.role.as_str());
    req.extensions_mut().insert(Arc::new(principal));
    tracing::Instrument::instrument(next.run(req), span).await
}

/// CORS for the configured origins (`server.allowed_origins`), or `None`
/// when there are none: then mcpod answers no preflight and sends no CORS
/// header, so a cross-site page can never send a JSON POST.
pub fn cors(guard: &Guard) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if !guard.has_origins() {
        return None;
    }
    let origins: Vec<HeaderValue> = guard.origins().iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let names = |names: &[&'static str]| names.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers(names(&[
                "authorization",
                "content-type",
                "accept",
                mcp_headers::LAST_EVENT_ID,
                mcp_headers::SESSION_ID,
                mcp_headers::PROTOCOL_VERSION,
                mcp_headers::METHOD,
                mcp_headers::NAME,
            ]))
            .expose_headers(names(&[mcp_headers::SESSION_ID, "www-authenticate"]))
            .max_age(std::time::Duration::from_secs(600)),
    )
}
