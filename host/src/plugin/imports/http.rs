//! `mcpod:plugin/http`: HTTP requests the host performs for a plugin, after
//! checking the URL against the plugin's `allow_hosts`. Responses are capped
//! in size and time, and GET responses are cached (TTL, then ETag revalidation).

use crate::plugin::bindings::services::mcpod::plugin::http::{Host, Request, Response};
use crate::plugin::bindings::{ErrorCode, PluginError};
use crate::plugin::limits::Limits;
use crate::plugin::state::PluginState;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One `allow_hosts` entry: a host (or `*.suffix`, or `*`) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

/// The hosts a plugin may reach. Empty means none: HTTP is not granted.
#[derive(Debug, Clone, Default)]
pub struct AllowHosts(Vec<HostPattern>);

impl AllowHosts {
    /// Parses `allow_hosts` entries: `example.com`, `example.com:8080`,
    /// `*.example.com`, `127.0.0.1:9000`, `[::1]:9000`, or `*` for any host.
    /// An entry without a port allows only the scheme's default port.
    pub fn parse(entries: &[String]) -> Result<AllowHosts, String> {
        let mut patterns = Vec::new();
        for entry in entries {
            let e = entry.trim().to_ascii_lowercase();
            if e.is_empty() || e.contains('/') || e.contains(char::is_whitespace) {
                return Err(format!(
                    "allow_hosts entry {entry:?} must be a host with an optional port, like `registry.npmjs.org` or `127.0.0.1:8080` (no scheme, no path)"
                ));
            }
            let (host, port) = split_host_port(&e).ok_or_else(|| {
                format!("allow_hosts entry {entry:?} has an invalid port; use HOST:PORT with a port from 1 to 65535")
            })?;
            let (host, wildcard) = match host.strip_prefix("*.") {
                Some(rest) => (rest.to_string(), true),
                None if host == "*" => (String::new(), true),
                None => (host.to_string(), false),
            };
            patterns.push(HostPattern { host, wildcard, port });
        }
        Ok(AllowHosts(patterns))
    }

    /// True if no host is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if `url`'s host and port match an entry.
    pub fn allows(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = url.port_or_known_default();
        let default_port = url.port().is_none();
        self.0.iter().any(|p| {
            let host_ok = if p.wildcard {
                p.host.is_empty() || host.ends_with(&format!(".{}", p.host))
            } else {
                host == p.host.trim_start_matches('[').trim_end_matches(']')
            };
            let port_ok = match p.port {
                Some(want) => port == Some(want),
                None => default_port,
            };
            host_ok && port_ok
        })
    }
}

fn split_host_port(e: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = e.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &e[..end + 2];
        return match &rest[end + 1..] {
            "" => Some((host, None)),
            p => p.strip_prefix(':')?.parse().ok().filter(|p| *p != 0).map(|p| (host, Some(p))),
        };
    }
    match e.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => p.parse::<u16>().ok().filter(|p| *p != 0).map(|p| (h, Some(p))),
        _ => Some((e, None)),
    }
}

/// A cached GET response.
struct Cached {
    stored: Instant,
    etag: Option<String>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The total size of cached bodies kept per plugin.
const CACHE_BYTES: usize = 64 << 20;

/// Performs a plugin's HTTP requests within its grants and limits.
pub struct HttpGate {
    plugin: String,
    allow: AllowHosts,
    client: reqwest::Client,
    max_body: usize,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl HttpGate {
    /// A gate for plugin `plugin` allowing `allow` under `limits`.
    pub fn new(plugin: &str, allow: AllowHosts, limits: &Limits) -> Result<HttpGate, String> {
        crate::tls::install_provider();
        let redirect_allow = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects (more than 5)")
            } else if redirect_allow.allows(attempt.url()) {
                attempt.follow()
            } else {
                let msg = format!("redirect to {} is not in allow_hosts", attempt.url());
                attempt.error(msg)
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .timeout(limits.http_timeout)
            .connect_timeout(limits.http_timeout)
            .user_agent(concat!("mcpod/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpGate {
            plugin: plugin.to_string(),
            allow,
            client,
            max_body: limits.http_response_bytes,
            ttl: limits.http_cache,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Checks `req` against the grants, then performs it (or answers from cache).
    pub async fn fetch(&self, req: Request) -> Result<Response, PluginError> {
        let url = url::Url::parse(&req.url)
            .map_err(|e| error(ErrorCode::InvalidInput, format!("invalid URL {:?}: {e}", req.url)))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(error(
                ErrorCode::InvalidInput,
                format!("only http and https URLs can be fetched, not {:?}", url.scheme()),
            ));
        }
        if !self.allow.allows(&url) {
            tracing::warn!(plugin = %self.plugin, url = %redact(&url), "HTTP request refused: host not in allow_hosts");
            return Err(error(
                ErrorCode::Denied,
                format!(
                    "{} is not in this plugin's allow_hosts; add it to the plugin's `allow_hosts` in the host config to allow it",
                    host_port(&url)
                ),
            ));
        }
        let method = match req.method.to_ascii_uppercase().as_str() {
            "GET" => reqwest::Method::GET,
            "HEAD" => reqwest::Method::HEAD,
            "POST" => reqwest::Method::POST,
            other => {
                return Err(error(
                    ErrorCode::InvalidInput,
                    format!("HTTP method {other:?} is not allowed; use GET, HEAD or POST"),
                ));
            }
        };
        let conditional = req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("if-none-match"));
        let cacheable = method == reqwest::Method::GET && !self.ttl.is_zero() && !conditional;
        let key = cache_key(&req);
        let mut revalidate = None;
        if cacheable {
            let cache = self.cache.lock().map_err(|_| poisoned())?;
            if let Some(hit) = cache.get(&key) {
                if hit.stored.elapsed() < self.ttl {
                    return Ok(Response { status: hit.status, headers: hit.headers.clone(), body: hit.body.clone() });
                }
                revalidate = hit.etag.clone();
            }
        }
        let mut builder = self.client.request(method, url.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(etag) = &revalidate {
            builder = builder.header("if-none-match", etag.as_str());
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut resp = builder.send().await.map_err(|e| {
            let what = if e.is_timeout() { "timed out" } else { "failed" };
            error(ErrorCode::Unavailable, format!("request to {} {what}: {}", redact(&url), error_chain(&e)))
        })?;
        let status = resp.status().as_u16();
        if status == 304 && revalidate.is_some() {
            let mut cache = self.cache.lock().map_err(|_| poisoned())?;
            if let Some(hit) = cache.get_mut(&key) {
                hit.stored = Instant::now();
                return Ok(Response { status: hit.status, headers: hit.headers.clone(), body: hit.body.clone() });
            }
        }
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        if resp.content_length().is_some_and(|n| n as usize > self.max_body) {
            return Err(too_large(&url, self.max_body));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            error(
                ErrorCode::Unavailable,
                format!("reading the response from {} failed: {}", redact(&url), error_chain(&e)),
            )
        })? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large(&url, self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        if cacheable && status == 200 {
            let etag = headers.iter().find(|(k, _)| k == "etag").map(|(_, v)| v.clone());
            let mut cache = self.cache.lock().map_err(|_| poisoned())?;
            let used: usize = cache.values().map(|c| c.body.len()).sum();
            if used + body.len() > CACHE_BYTES {
                cache.clear();
            }
            cache.insert(
                key,
                Cached { stored: Instant::now(), etag, status, headers: headers.clone(), body: body.clone() },
            );
        }
        Ok(Response { status, headers, body })
    }
}

fn cache_key(req: &Request) -> String {
    let accept =
        req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("accept")).map(|(_, v)| v.as_str()).unwrap_or("");
    format!("{} {}", accept, req.url)
}

fn error(code: ErrorCode, message: String) -> PluginError {
    PluginError { code, message, field: None }
}

fn poisoned() -> PluginError {
    error(ErrorCode::Internal, "the host's HTTP cache is unusable after an earlier failure".to_string())
}

fn too_large(url: &url::Url, max: usize) -> PluginError {
    error(
        ErrorCode::TooLarge,
        format!(
            "the response from {} exceeds this plugin's {} KiB cap; raise `limits.http_response_kib` if it is expected",
            redact(url),
            max >> 10
        ),
    )
}

fn host_port(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.to_string(),
    }
}

/// The URL without credentials or query, fit for logs.
fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.set_query(None);
    u.to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

impl Host for PluginState {
    async fn fetch(&mut self, req: Request) -> Result<Response, PluginError> {
        let Some(gate) = self.ctx.http.clone() else {
            return Err(error(
                ErrorCode::Denied,
                format!(
                    "plugin `{}` has no HTTP grant; list the hosts it may reach in its `allow_hosts`",
                    self.ctx.name
                ),
            ));
        };
        gate.fetch(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> AllowHosts {
        AllowHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let a = allow(&["registry.npmjs.org"]);
        assert!(a.allows(&url("https://registry.npmjs.org/x")));
        assert!(a.allows(&url("http://REGISTRY.npmjs.org/x")));
        assert!(!a.allows(&url("https://registry.npmjs.org:8443/x")));
        assert!(!a.allows(&url("https://evil.registry.npmjs.org/x")));
        assert!(!a.allows(&url("https://registry.npmjs.org.evil.example/x")));
    }

    #[test]
    fn ports_wildcards_and_ipv6() {
        let a = allow(&["127.0.0.1:9000", "*.pypi.org", "[::1]:81"]);
        assert!(a.allows(&url("http://127.0.0.1:9000/")));
        assert!(!a.allows(&url("http://127.0.0.1:9001/")));
        assert!(!a.allows(&url("http://127.0.0.1/")));
        assert!(a.allows(&url("https://files.pypi.org/")));
        assert!(!a.allows(&url("https://pypi.org/")));
        assert!(a.allows(&url("http://[::1]:81/")));
        assert!(allow(&["*"]).allows(&url("https://anything.example/")));
        assert!(AllowHosts::default().is_empty());
        assert!(!AllowHosts::default().allows(&url("https://registry.npmjs.org/")));
    }

    #[test]
    fn bad_entries_are_refused_with_the_rule() {
        for bad in ["https://x.org", "x.org/path", "x.org:0", "x.org:99999", "", "a b"] {
            let err = AllowHosts::parse(&[bad.to_string()]).unwrap_err();
            assert!(err.contains("allow_hosts entry"), "{bad}: {err}");
        }
    }
}
