//! Registry I/O for verification: JSON metadata (cached for a while, 404
//! as `None`) and package files, each bounded in time and size.

use super::SupplyError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest one registry request may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Largest metadata document read (server-everything's packument is ~5 MiB).
const MAX_METADATA: usize = 64 << 20;
/// Largest package file downloaded.
const MAX_FILE: usize = 256 << 20;

type Cached = (Instant, Option<Arc<serde_json::Value>>);

/// Fetches registry documents and files.
pub struct Fetcher {
    http: reqwest::Client,
    metrics: Arc<crate::metrics::Metrics>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Fetcher {
    /// A fetcher reusing metadata for `ttl`, counting its requests in `metrics`.
    pub fn new(ttl: Duration, metrics: Arc<crate::metrics::Metrics>) -> Result<Fetcher, SupplyError> {
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("mcpod/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SupplyError::Unreachable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Fetcher { http, metrics, ttl, cache: Mutex::new(HashMap::new()) })
    }

    /// The JSON document at `url` of `registry` (`what` names it in
    /// errors); `None` on 404.
    pub async fn json(
        &self,
        registry: &str,
        url: &str,
        token: Option<&str>,
        what: &str,
    ) -> Result<Option<serde_json::Value>, SupplyError> {
        self.cached_json(registry, url, token, what, "application/json").await
    }

    /// A PEP 740 provenance object from PyPI's integrity API, which answers
    /// 406 to an `Accept` it does not know; `None` on 404.
    pub async fn provenance(&self, url: &str, token: Option<&str>) -> Result<Option<serde_json::Value>, SupplyError> {
        let accept = "application/vnd.pypi.integrity.v1+json, application/json;q=0.9";
        self.cached_json("pypi", url, token, "PEP 740 provenance", accept).await
    }

    /// A simple-API (PEP 691) project page; `None` on 404.
    pub async fn simple(&self, url: &str, token: Option<&str>) -> Result<Option<serde_json::Value>, SupplyError> {
        self.cached_json("pypi", url, token, "PyPI simple index page", "application/vnd.pypi.simple.v1+json").await
    }

    async fn cached_json(
        &self,
        registry: &str,
        url: &str,
        token: Option<&str>,
        what: &str,
        accept: &str,
    ) -> Result<Option<serde_json::Value>, SupplyError> {
        let fresh = self.cache.lock().ok().and_then(|c| c.get(url).filter(|(at, _)| at.elapsed() < self.ttl).cloned());
        if let Some((_, doc)) = fresh {
            return Ok(doc.map(|d| (*d).clone()));
        }
        let body = self.get(registry, url, token, accept, MAX_METADATA, what).await?;
        let doc = match body {
            None => None,
            Some(bytes) => Some(serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
                SupplyError::Unreachable(format!(
                    "the {what} at {url} is not JSON ({e}); check the registry URL in [packages]"
                ))
            })?),
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(url.to_string(), (Instant::now(), doc.clone().map(Arc::new)));
        }
        Ok(doc)
    }

    /// The file at `url` of `registry` (`what` names it in errors); a 404 is an error.
    pub async fn bytes(
        &self,
        registry: &str,
        url: &str,
        token: Option<&str>,
        what: &str,
    ) -> Result<Vec<u8>, SupplyError> {
        self.get(registry, url, token, "*/*", MAX_FILE, what).await?.ok_or_else(|| {
            SupplyError::Refused(format!("{what}: its file {url} is listed but not served (404); nothing was started"))
        })
    }

    /// One request, counted as a `verify` request of `registry`.
    async fn get(
        &self,
        registry: &str,
        url: &str,
        token: Option<&str>,
        accept: &str,
        max: usize,
        what: &str,
    ) -> Result<Option<Vec<u8>>, SupplyError> {
        let began = Instant::now();
        let got = self.get_uncounted(url, token, accept, max, what).await;
        let outcome = match &got {
            Ok(Some(_)) => "ok",
            Ok(None) => "not_found",
            Err(_) => "error",
        };
        self.metrics.registry(registry, "verify", outcome, began.elapsed().as_secs_f64());
        got
    }

    async fn get_uncounted(
        &self,
        url: &str,
        token: Option<&str>,
        accept: &str,
        max: usize,
        what: &str,
    ) -> Result<Option<Vec<u8>>, SupplyError> {
        let unreachable = |why: String| {
            SupplyError::Unreachable(format!(
                "cannot read the {what} at {url} to verify it ({why}); retry, or set [packages] verify = false to run packages unverified"
            ))
        };
        let mut req = self.http.get(url).header(reqwest::header::ACCEPT, accept);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|e| unreachable(e.to_string()))?;
        match resp.status().as_u16() {
            404 => return Ok(None),
            401 | 403 => {
                return Err(unreachable(format!(
                    "the registry answered {}; give its token with [packages] npm_token_file or pypi_token_file",
                    resp.status()
                )));
            }
            s if !(200..300).contains(&s) => {
                return Err(unreachable(format!("the registry answered {}", resp.status())));
            }
            _ => {}
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(e.to_string()))? {
            if body.len() + chunk.len() > max {
                return Err(unreachable(format!("it is larger than {} MiB", max >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}
