//! OAuth for servers that run elsewhere: an access token from the
//! client-credentials grant (RFC 6749 §4.4) of the server's authorization
//! server, sent as the bearer of every upstream request, and fetched again
//! before it expires (or at once after the server answers 401). The client
//! secret is a secret: never logged, recorded or shown.

use super::UpstreamError;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client credentials of a remote server's authorization server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentials {
    /// The token endpoint (`https://auth.example.com/token`).
    pub token_url: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret (sent with HTTP Basic authentication).
    pub client_secret: String,
    /// The scopes to ask for, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The resource the token is for (RFC 8707; the server's URL, for MCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// Hands out a current access token, fetching one when needed.
pub struct TokenSource {
    credentials: ClientCredentials,
    http: reqwest::Client,
    /// The token and when to fetch a new one.
    current: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("token_url", &self.credentials.token_url).finish_non_exhaustive()
    }
}

/// A token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    /// A source for `credentials` (no request is made yet).
    pub fn new(credentials: ClientCredentials) -> Result<TokenSource, UpstreamError> {
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(TOKEN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UpstreamError::Setup(format!("cannot build the token client: {e}")))?;
        Ok(TokenSource { credentials, http, current: tokio::sync::Mutex::new(None) })
    }

    /// The token to send now: the one held while it is fresh, else a new one.
    pub async fn bearer(&self) -> Result<String, UpstreamError> {
        let mut current = self.current.lock().await;
        if let Some((token, refresh_at)) = current.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        // Fetched again a fifth of its life (at most 30 s) before it ends.
        let margin = (lifetime / 5).min(Duration::from_secs(30));
        *current = Some((token.clone(), Instant::now() + lifetime.saturating_sub(margin)));
        Ok(token)
    }

    /// Forgets the token (the server refused it): the next request fetches one.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    async fn fetch(&self) -> Result<(String, Duration), UpstreamError> {
        let c = &self.credentials;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &c.scope {
            form.push(("scope", scope));
        }
        if let Some(resource) = &c.resource {
            form.push(("resource", resource));
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
        let resp = self
            .http
            .post(&c.token_url)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                UpstreamError::Unreachable(format!(
                    "the token endpoint {} did not answer: {}",
                    c.token_url,
                    super::causes(&e)
                ))
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
            return Err(UpstreamError::Refused(format!(
                "the token endpoint {} refused client `{}`: HTTP {status} {body}; check oauth.client_id and oauth.client_secret",
                c.token_url, c.client_id
            )));
        }
        let answer: TokenAnswer = resp.json().await.map_err(|e| {
            UpstreamError::Refused(format!("the token endpoint {} sent no access_token: {e}", c.token_url))
        })?;
        Ok((answer.access_token, Duration::from_secs(answer.expires_in.unwrap_or(3600).max(1))))
    }
}

/// `req` with `oauth`'s bearer token, if there is one.
pub(crate) async fn authorize(
    req: reqwest::RequestBuilder,
    oauth: Option<&TokenSource>,
) -> Result<reqwest::RequestBuilder, UpstreamError> {
    match oauth {
        Some(source) => Ok(req.bearer_auth(source.bearer().await?)),
        None => Ok(req),
    }
}
