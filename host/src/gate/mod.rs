//! What every HTTP request passes before a handler, as layers around the
//! router (`app` wires them): the browser guard (`front::guard`: Host,
//! Origin, JSON content type), CORS for configured origins only, and
//! authentication (`identity::Authenticator`: the admin token, named
//! tokens, an issuer's access tokens, ServiceAccount tokens), whose 401
//! points at the Protected Resource Metadata of [`resource_metadata`].
//! Refusals are JSON in the style of the route: a JSON-RPC error on the MCP
//! front (`/servers/…`), an API error elsewhere.

pub mod resource_metadata;

use crate::access::{Access, Act};
use crate::api::error::ApiError;
use crate::front::guard::{Guard, Refusal};
use crate::identity::{Authenticator, Refused, Resource};
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
    /// Every credential the host accepts.
    pub auth: Arc<Authenticator>,
    /// `server.public_url`: the base of the resource URLs tokens are for
    /// (none: the request's own `Host`, which the guard has checked).
    pub public_url: Option<Arc<str>>,
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

/// The most of a plain-text refusal's body read to turn it into JSON.
const PLAIN_REFUSAL_BYTES: usize = 4096;

/// Turns the plain-text refusals of axum's extractors (a path segment that
/// is not UTF-8, a query string with a duplicated key, ...) into JSON in the
/// route's style, so that every client gets an error it can read: a
/// JSON-RPC error on the MCP front, an API error elsewhere.
pub async fn json_refusals(req: Request, next: Next) -> Response {
    let mcp = is_mcp_path(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let text = match axum::body::to_bytes(resp.into_body(), PLAIN_REFUSAL_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => status.canonical_reason().unwrap_or("refused").to_string(),
    };
    let message = format!("{text} (the request's URL or query string; fix it and send again)");
    if mcp {
        let rpc = if status.is_server_error() { code::INTERNAL_ERROR } else { code::INVALID_REQUEST };
        crate::front::rpc_error(status, rpc, &message)
    } else {
        let api = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        };
        ApiError::new(status, api, message).into_response()
    }
}

/// True if the query string carries an access token, which the MCP
/// authorization specification forbids (URLs end up in logs and caches).
fn token_in_query(req: &Request) -> bool {
    req.uri().query().is_some_and(|q| {
        q.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("access_token")))
    })
}

/// The resource `req` is for: the host's base URL, and for MCP paths the
/// server's URL (`…/servers/ID`).
pub fn resource_of(public_url: Option<&str>, req: &Request) -> Resource {
    resource_from(public_url, req.headers(), req.uri().path())
}

/// [`resource_of`] from the request's parts, which (unlike the request
/// with its body) a future may hold across an await.
fn resource_from(public_url: Option<&str>, headers: &axum::http::HeaderMap, path: &str) -> Resource {
    let base = match public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let server = path
        .strip_prefix("/servers/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(|id| format!("{base}/servers/{id}"));
    Resource { base, server }
}

/// An RFC 6750 `WWW-Authenticate` value: the metadata URL (when tokens of
/// an issuer are accepted), the error and its description, the scopes.
fn challenge(check: &TokenCheck, resource: &Resource, error: Option<(&str, &str)>, scope: &[String]) -> HeaderValue {
    let mut parts = Vec::new();
    if check.auth.oidc().is_some() {
        let path = resource.server.as_deref().and_then(|s| s.strip_prefix(&resource.base)).unwrap_or("");
        parts.push(format!("resource_metadata=\"{}{}{path}\"", resource.base, resource_metadata::PATH));
    }
    if let Some((code, description)) = error {
        // RFC 6750 §3: quoted values without `"` or `\`, printable ASCII.
        let clean: String =
            description.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { ' ' }).collect();
        parts.push(format!("error=\"{code}\", error_description=\"{clean}\""));
    }
    if !scope.is_empty() {
        parts.push(format!("scope=\"{}\"", scope.join(" ")));
    }
    let value = if parts.is_empty() { "Bearer".to_string() } else { format!("Bearer {}", parts.join(", ")) };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn refused(path: &str, status: StatusCode, message: &str, www: HeaderValue, metrics: &Metrics) -> Response {
    metrics.refuse("token");
    tracing::debug!(path, %status, message, "refused a request's credential");
    let mut resp = if is_mcp_path(path) {
        crate::front::rpc_error(status, code::INVALID_REQUEST, message)
    } else {
        let code = if status == StatusCode::FORBIDDEN { "insufficient_scope" } else { "unauthorized" };
        ApiError::new(status, code, message).into_response()
    };
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, www);
    resp
}

/// Authentication as a layer: proves who is calling and puts the
/// [`Principal`] in the request's extensions for the handlers, the role
/// checks and the logs (every line of the request carries its name).
/// Refuses a request that proves no one (401 with the challenge of RFC
/// 6750 and RFC 9728), a token sent in the URL, and on MCP paths a token
/// without the required scopes (403 `insufficient_scope`).
pub async fn require_token(State(check): State<TokenCheck>, mut req: Request, next: Next) -> Response {
    // Built only for the checks and refusals that name it, not per request.
    let (headers, path) = (req.headers(), req.uri().path());
    let resource = || resource_from(check.public_url.as_deref(), headers, path);
    if token_in_query(&req) {
        let message =
            "an access token in the URL is refused (URLs are logged and cached); send `Authorization: Bearer <token>`";
        let www = challenge(&check, &resource(), Some(("invalid_request", message)), &[]);
        return refused(path, StatusCode::UNAUTHORIZED, message, www, &check.metrics);
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let principal = match check.auth.authenticate_for(crate::auth::bearer(authorization), &resource).await {
        Ok(p) => p,
        Err(e) => {
            let message = e.to_string();
            let (status, error) = match &e {
                Refused::Missing => (StatusCode::UNAUTHORIZED, None),
                Refused::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
                _ => (StatusCode::UNAUTHORIZED, Some(("invalid_token", message.as_str()))),
            };
            let www = challenge(&check, &resource(), error, &[]);
            return refused(path, status, &message, www, &check.metrics);
        }
    };
    if is_mcp_path(path)
        && let Some(oidc) = check.auth.oidc()
        && principal.issuer == oidc.issuer()
        && let Some(missing) = oidc.required_scopes().iter().find(|s| !principal.has_scope(s))
    {
        let message = format!("the token lacks the scope {missing:?} this host requires ([auth.oidc] scopes)");
        let www = challenge(&check, &resource(), Some(("insufficient_scope", &message)), oidc.required_scopes());
        return refused(path, StatusCode::FORBIDDEN, &message, www, &check.metrics);
    }
    let span = tracing::info_span!("request", principal = %principal.name, role = principal.role.as_str());
    req.extensions_mut().insert(Arc::new(principal));
    tracing::Instrument::instrument(next.run(req), span).await
}

/// What [`may_connect`] decides with: the policies, and the servers whose
/// template and starter they may name.
#[derive(Clone)]
pub struct Policies {
    /// The access policies.
    pub access: Arc<Access>,
    /// The servers.
    pub manager: Arc<crate::servers::Manager>,
}

/// The access policies' `connect` as a layer on the MCP front: a
/// principal no policy lets connect to `/servers/ID/…` gets a 403 JSON-RPC
/// error naming the policy outcome, before any session opens.
pub async fn may_connect(State(policies): State<Policies>, req: Request, next: Next) -> Response {
    let Policies { access, manager } = policies;
    if !access.is_on() {
        return next.run(req).await;
    }
    let path = req.uri().path();
    let under = path.strip_prefix("/servers/").or_else(|| path.strip_prefix("/virtual/"));
    let Some(server) = under.and_then(|r| r.split('/').next()) else {
        return next.run(req).await;
    };
    let Some(who) = req.extensions().get::<Arc<crate::identity::Principal>>() else {
        return next.run(req).await;
    };
    let verdict = access.decide_on(who, Act::Connect, &manager.policy_facts(server), None);
    if verdict.allowed {
        return next.run(req).await;
    }
    tracing::info!(principal = %who.name, server, reason = %verdict.reason, "refused: policy denies connect");
    let message = format!("denied by policy: `{}` may not connect to server `{server}` ({})", who.name, verdict.reason);
    crate::front::rpc_error(StatusCode::FORBIDDEN, code::INVALID_REQUEST, &message)
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
