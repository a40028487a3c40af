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
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// True for the MCP front's paths (servers and virtual servers), whose
/// errors are JSON-RPC errors and whose tokens need the required scopes.
fn is_mcp_path(path: &str) -> bool {
    path.starts_with("/servers/") || path.starts_with("/virtual/")
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

/// The browser guard and JSON refusals as one layer around every route:
/// refuses a foreign `Host`, a foreign `Origin`, and a POST that is not
/// JSON, before the body is read; and turns the plain-text refusals of
/// axum's extractors (a path segment that is not UTF-8, a query string with
/// a duplicated key, a body over the limit, ...) into JSON in the route's
/// style, so that every client gets an error it can read: a JSON-RPC error
/// on the MCP front, an API error elsewhere. Written as a tower layer, not
/// `from_fn`, which boxed the next service and the future on every request.
#[derive(Clone)]
pub struct GuardLayer(pub GuardCheck);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guarded<S>;
    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded { inner, check: self.0.clone() }
    }
}

/// The service [`GuardLayer`] wraps around the routes.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    check: GuardCheck,
}

impl<S> tower::Service<Request> for Guarded<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let mcp = is_mcp_path(req.uri().path());
        match self.check.guard.check(req.method(), req.headers()) {
            Ok(()) => GuardedFuture::Inner { fut: self.inner.call(req), mcp },
            Err(r) => GuardedFuture::Refused { resp: Some(refuse(req.uri().path(), r, &self.check.metrics)) },
        }
    }
}

pub use guarded::GuardedFuture;
use guarded::GuardedProj;

/// [`GuardedFuture`] in a module of its own: `pin_project!` cannot carry
/// the fields' doc comments, which `missing_docs` asks for.
#[allow(missing_docs)]
mod guarded {
    use super::*;
    pin_project_lite::pin_project! {
        /// [`Guarded`]'s answer: the guard's refusal, or the routes' answer
        /// with a plain-text refusal turned into JSON (which reads its body).
        #[project = GuardedProj]
        pub enum GuardedFuture<F> {
            /// Refused by the guard (the refusal is taken when answered).
            Refused { resp: Option<Response> },
            /// Passed on to the routes (`mcp`: JSON-RPC errors on this path).
            Inner { #[pin] fut: F, mcp: bool },
            /// A plain-text refusal being turned into JSON.
            Converting { fut: futures_util::future::BoxFuture<'static, Response> },
        }
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for GuardedFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let (resp, mcp) = match self.as_mut().project() {
                GuardedProj::Refused { resp } => return Poll::Ready(Ok(resp.take().unwrap_or_default())),
                GuardedProj::Converting { fut } => return fut.as_mut().poll(cx).map(Ok),
                GuardedProj::Inner { fut, mcp } => match fut.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(resp)) => (resp, *mcp),
                },
            };
            if !is_plain_refusal(&resp) {
                return Poll::Ready(Ok(resp));
            }
            self.set(GuardedFuture::Converting { fut: Box::pin(json_refusal(resp, mcp)) });
        }
    }
}

/// The most of a plain-text refusal's body read to turn it into JSON.
const PLAIN_REFUSAL_BYTES: usize = 4096;

/// True for an error answered in plain text (axum's extractors' refusals).
fn is_plain_refusal(resp: &Response) -> bool {
    let status = resp.status();
    (status.is_client_error() || status.is_server_error())
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/plain"))
}

/// A plain-text refusal as JSON in the route's style, its text kept.
async fn json_refusal(resp: Response, mcp: bool) -> Response {
    let status = resp.status();
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
fn token_in_query(uri: &axum::http::Uri) -> bool {
    uri.query().is_some_and(|q| {
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
        .map(|id| format!("{base}/servers/{}", decoded(id)));
    Resource { base, server }
}

/// A path segment as the handlers' `Path` extractor reads it: percent-decoded
/// (`%74ime-1` is `time-1`), or as it is when it does not decode to UTF-8
/// (which the extractor refuses). The checks here must name the server the
/// handler will serve, not the spelling of its id in the URL.
fn decoded(segment: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(segment).decode_utf8().unwrap_or(std::borrow::Cow::Borrowed(segment))
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

/// Authentication and the `connect` policy as one layer, inside CORS (a
/// preflight carries no token) and around the routes. Every path but the
/// open ones ([`crate::api::OPEN_PATHS`] and the Protected Resource Metadata)
/// must prove a principal, which is put in the request's extensions for the
/// handlers, the role checks and the logs (every line of the request
/// carries its name). Refuses a request that proves no one (401 with the
/// challenge of RFC 6750 and RFC 9728), a token sent in the URL, and on MCP
/// paths a token without the required scopes (403 `insufficient_scope`) or a
/// principal no policy lets connect to the server (403). One boxed future a
/// request, where two `from_fn` layers on their routers boxed six.
#[derive(Clone)]
pub struct AuthLayer {
    /// The credentials and where refusals are counted.
    pub tokens: TokenCheck,
    /// The access policies `connect` is asked of.
    pub policies: Policies,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;
    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated { inner, gate: Arc::new(self.clone()) }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    gate: Arc<AuthLayer>,
}

impl<S> tower::Service<Request> for Authenticated<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone waits for its own readiness; the ready one serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            if is_open_path(req.uri().path()) {
                return inner.call(req).await;
            }
            let principal = match authenticate(&gate.tokens, req.headers(), req.uri()).await {
                Ok(p) => p,
                Err(refusal) => return Ok(refusal),
            };
            let span = tracing::info_span!("request", principal = %principal.name, role = principal.role.as_str());
            if let Some(refusal) = span.in_scope(|| may_connect(&gate.policies, &principal, req.uri().path())) {
                return Ok(refusal);
            }
            req.extensions_mut().insert(principal);
            tracing::Instrument::instrument(inner.call(req), span).await
        })
    }
}

/// True for the paths anyone may read: health, readiness, metrics, and the
/// Protected Resource Metadata a 401 points to.
fn is_open_path(path: &str) -> bool {
    crate::api::OPEN_PATHS.contains(&path)
        || path.strip_prefix(resource_metadata::PATH).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The principal a request with these headers proves for `uri`, or the
/// refusal to answer with. (Its parts, not the request: a future that holds
/// the request's body across an await cannot move between threads.)
async fn authenticate(
    check: &TokenCheck,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
) -> Result<Arc<crate::identity::Principal>, Response> {
    let path = uri.path();
    // Built only for the checks and refusals that name it, not per request.
    let resource = || resource_from(check.public_url.as_deref(), headers, path);
    if token_in_query(uri) {
        let message =
            "an access token in the URL is refused (URLs are logged and cached); send `Authorization: Bearer <token>`";
        let www = challenge(check, &resource(), Some(("invalid_request", message)), &[]);
        return Err(refused(path, StatusCode::UNAUTHORIZED, message, www, &check.metrics));
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
            let www = challenge(check, &resource(), error, &[]);
            return Err(refused(path, status, &message, www, &check.metrics));
        }
    };
    if is_mcp_path(path)
        && let Some(oidc) = check.auth.oidc()
        && principal.issuer == oidc.issuer()
        && let Some(missing) = oidc.required_scopes().iter().find(|s| !principal.has_scope(s))
    {
        let message = format!("the token lacks the scope {missing:?} this host requires ([auth.oidc] scopes)");
        let www = challenge(check, &resource(), Some(("insufficient_scope", &message)), oidc.required_scopes());
        return Err(refused(path, StatusCode::FORBIDDEN, &message, www, &check.metrics));
    }
    Ok(principal)
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

/// The access policies' `connect` on the MCP front: a principal no policy
/// lets connect to `/servers/ID/…` (or `/virtual/ID/…`) gets a 403 JSON-RPC
/// error naming the policy outcome, before any session opens.
fn may_connect(policies: &Policies, who: &crate::identity::Principal, path: &str) -> Option<Response> {
    if !policies.access.is_on() {
        return None;
    }
    let under = path.strip_prefix("/servers/").or_else(|| path.strip_prefix("/virtual/"));
    let server = decoded(under.and_then(|r| r.split('/').next())?);
    let server = server.as_ref();
    let verdict = policies.access.decide_on(who, Act::Connect, &policies.manager.policy_facts(server), None);
    if verdict.allowed {
        return None;
    }
    tracing::info!(principal = %who.name, server, reason = %verdict.reason, "refused: policy denies connect");
    let message = format!("denied by policy: `{}` may not connect to server `{server}` ({})", who.name, verdict.reason);
    Some(crate::front::rpc_error(StatusCode::FORBIDDEN, code::INVALID_REQUEST, &message))
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
