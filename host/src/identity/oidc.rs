//! mcpod as an OAuth 2.1 resource server, as the MCP authorization
//! specification asks: access tokens of one issuer, JWTs checked against
//! the issuer's JWKS (found by OIDC / RFC 8414 discovery, re-fetched when a
//! token names a key it does not have: key rotation), or opaque tokens
//! checked by introspection (RFC 7662). A token must be minted for this
//! host (RFC 8707 `aud`): one meant for another resource is refused, so a
//! client's token is never passed through. The JOSE work is the
//! `jsonwebtoken` crate's; this module chooses keys and maps claims.

use super::{Checked, Principal, Refused, Resource, Role};
use crate::config::OidcSection;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

/// A checked token is trusted again without a signature check for at
/// most this long (and never past its own `exp`).
const REMEMBER: Duration = Duration::from_secs(60);
/// The JWKS is fetched again at most this often when a token names an
/// unknown key, so random key ids cannot flood the issuer.
const REFETCH_MIN: Duration = Duration::from_secs(1);
/// Keys older than this are fetched again, so a key the issuer dropped
/// stops being accepted.
const KEYS_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Every request to the issuer ends within this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What discovery found.
#[derive(Debug, Clone)]
struct Metadata {
    jwks_uri: String,
    introspection_endpoint: Option<String>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    without_kid: Vec<(DecodingKey, Option<Algorithm>)>,
    fetched: Option<Instant>,
}

/// The issuer's tokens, checked.
pub struct Verifier {
    config: OidcSection,
    algorithms: Vec<Algorithm>,
    introspection_secret: Option<String>,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<Metadata>>,
    keys: std::sync::RwLock<Keys>,
    fetching: tokio::sync::Mutex<()>,
    checked: Checked<(Principal, Vec<String>)>,
}

/// Why a verifier could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The configuration names something unusable.
    #[error("[auth.oidc]: {0}")]
    Config(String),
}

/// The `iss` of a JWT-shaped token, read without checking anything: it
/// only picks which check the token goes to.
pub fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(String::from)
}

impl Verifier {
    /// A verifier for `config`; discovery and the JWKS are fetched on
    /// first use (and [`Verifier::warm`] does it at start).
    pub fn new(config: &OidcSection, env: &dyn Fn(&str) -> Option<String>) -> Result<Verifier, OidcError> {
        let algorithms = config
            .algorithms
            .iter()
            .map(|a| Algorithm::from_str(a).map_err(|_| OidcError::Config(format!("unknown algorithm {a:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let introspection_secret = match &config.introspection {
            None => None,
            Some(i) => Some(match (&i.client_secret_env, &i.client_secret_file) {
                (Some(var), None) => env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                    OidcError::Config(format!(
                        "introspection.client_secret_env names {var}, which is not set; set it to the client's secret"
                    ))
                })?,
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map(|s| s.trim().to_string())
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        OidcError::Config(format!(
                            "introspection.client_secret_file {} cannot be read or is empty; it holds the client's secret",
                            path.display()
                        ))
                    })?,
                _ => {
                    return Err(OidcError::Config(
                        "introspection needs exactly one of client_secret_env and client_secret_file".to_string(),
                    ));
                }
            }),
        };
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Verifier {
            config: config.clone(),
            algorithms,
            introspection_secret,
            http,
            metadata: tokio::sync::Mutex::new(None),
            keys: std::sync::RwLock::new(Keys::default()),
            fetching: tokio::sync::Mutex::new(()),
            checked: Checked::new(),
        })
    }

    /// The accepted issuer.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// True if opaque tokens are introspected.
    pub fn introspects(&self) -> bool {
        self.introspection_secret.is_some()
    }

    /// The scopes every MCP request's token must carry.
    pub fn required_scopes(&self) -> &[String] {
        &self.config.scopes
    }

    /// The scope that makes a token's holder an admin, if one is set.
    pub fn admin_scope(&self) -> Option<&str> {
        self.config.admin_scope.as_deref()
    }

    /// Protected Resource Metadata (RFC 9728) for `resource`.
    pub fn resource_metadata(&self, resource: &str) -> Value {
        let mut scopes = self.config.scopes.clone();
        scopes.extend(self.config.admin_scope.clone());
        serde_json::json!({
            "resource": resource,
            "authorization_servers": [self.config.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": scopes,
            "resource_name": "mcpod",
        })
    }

    /// Fetches discovery and the JWKS now, so the first request does not
    /// wait for them; a failure is logged and retried on first use.
    pub async fn warm(&self) {
        if let Err(e) = self.refresh_keys().await {
            tracing::warn!(issuer = %self.config.issuer, "{e}; it is retried on the first request");
        }
    }

    /// The principal a JWT access token proves for `resource`.
    pub async fn verify(&self, token: &str, resource: &Resource) -> Result<Principal, Refused> {
        if let Some((p, aud)) = self.checked.get(token) {
            return self.for_resource(p, &aud, resource);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            if header_alg(token).is_some_and(|a| a.eq_ignore_ascii_case("none")) {
                Refused::Invalid("alg `none` is never accepted".to_string())
            } else {
                Refused::Invalid(format!("its header is not a JWS header ({e})"))
            }
        })?;
        if !self.algorithms.contains(&header.alg) {
            return Err(Refused::Invalid(format!(
                "alg {:?} is not one of the accepted algorithms ([auth.oidc] algorithms)",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_deref(), header.alg).await?;
        let mut v = Validation::new(header.alg);
        v.leeway = self.config.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&[&self.config.issuer]);
        // The audience is matched below, against the request's resource.
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| explain(e, &self.config.issuer))?;
        let claims = data.claims;
        let principal = self.principal_of(&claims)?;
        let aud = strings(claims.get("aud"));
        self.checked.put(token, (principal.clone(), aud.clone()), until(&claims));
        self.for_resource(principal, &aud, resource)
    }

    /// The principal an opaque token proves, by introspection (RFC 7662).
    pub async fn introspect(&self, token: &str, resource: &Resource) -> Result<Principal, Refused> {
        if let Some((p, aud)) = self.checked.get(token) {
            return self.for_resource(p, &aud, resource);
        }
        let (Some(i), Some(secret)) = (&self.config.introspection, &self.introspection_secret) else {
            return Err(Refused::Unknown(", and opaque tokens are not introspected"));
        };
        let meta = self.metadata().await?;
        let Some(endpoint) = meta.introspection_endpoint else {
            return Err(Refused::Unavailable(format!(
                "the issuer {} publishes no introspection_endpoint",
                self.config.issuer
            )));
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let resp = self
            .http
            .post(&endpoint)
            .basic_auth(&i.client_id, Some(secret))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Refused::Unavailable(format!("introspection at {endpoint} failed: {e}")))?;
        let claims: Map<String, Value> = resp
            .json()
            .await
            .map_err(|e| Refused::Unavailable(format!("introspection at {endpoint} answered no JSON object: {e}")))?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(Refused::Invalid("the issuer says it is not active (expired, revoked or unknown)".to_string()));
        }
        if let Some(iss) = claims.get("iss").and_then(Value::as_str)
            && iss != self.config.issuer
        {
            return Err(Refused::Invalid(format!("its issuer {iss:?} is not {:?}", self.config.issuer)));
        }
        let aud = strings(claims.get("aud"));
        let principal = self.principal_of(&claims)?;
        self.checked.put(token, (principal.clone(), aud.clone()), until(&claims));
        self.for_resource(principal, &aud, resource)
    }

    /// `p`, if a token for audiences `aud` may be used on `resource`: the
    /// host's URL, the server's, or a configured extra audience (RFC 8707).
    fn for_resource(&self, p: Principal, aud: &[String], resource: &Resource) -> Result<Principal, Refused> {
        if aud.iter().any(|a| resource.accepts(a) || self.config.audiences.contains(a)) {
            return Ok(p);
        }
        Err(Refused::Invalid(format!(
            "it was minted for {aud:?}, not for {}; ask the issuer for a token with resource={} (RFC 8707)",
            resource.url(),
            resource.url()
        )))
    }

    fn principal_of(&self, claims: &Map<String, Value>) -> Result<Principal, Refused> {
        // An introspection answer may leave out `sub` for a client acting
        // for itself (client credentials): then the client is the subject.
        let named = |k: &str| claims.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let sub = named("sub")
            .or_else(|| named("client_id"))
            .ok_or_else(|| Refused::Invalid("it names no subject (`sub`) and no `client_id`".to_string()))?;
        let groups = strings(claims.get(&self.config.groups_claim));
        let scopes = match claims.get("scope") {
            Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
            _ => strings(claims.get("scp")),
        };
        let c = &self.config;
        let admin = c.admin_subjects.iter().any(|s| s == sub)
            || groups.iter().any(|g| c.admin_groups.contains(g))
            || c.admin_scope.as_ref().is_some_and(|a| scopes.contains(a));
        let role = if admin { Role::Admin } else { Role::User };
        Ok(Principal { name: sub.to_string(), issuer: c.issuer.clone(), role, groups, scopes })
    }

    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Refused> {
        let fresh = self.keys.read().ok().and_then(|k| k.fetched).is_some_and(|t| t.elapsed() < KEYS_MAX_AGE);
        if fresh && let Some(found) = self.lookup(kid, alg)? {
            return Ok(found);
        }
        self.refresh_keys().await?;
        self.lookup(kid, alg)?.ok_or_else(|| match kid {
            Some(kid) => Refused::Invalid(format!("its key {kid:?} is not in the issuer's JWKS")),
            None => {
                Refused::Invalid("it names no key (`kid`) and the issuer's JWKS has no single key for it".to_string())
            }
        })
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<DecodingKey>, Refused> {
        let keys = self.keys.read().map_err(|_| Refused::Unavailable("the key cache is poisoned".to_string()))?;
        let found = match kid {
            Some(kid) => keys.by_kid.get(kid),
            None if keys.without_kid.len() + keys.by_kid.len() == 1 => {
                keys.without_kid.first().or_else(|| keys.by_kid.values().next())
            }
            None => None,
        };
        match found {
            Some((_, Some(key_alg))) if *key_alg != alg => {
                Err(Refused::Invalid(format!("it is signed with {alg:?} but its key is for {key_alg:?}")))
            }
            Some((key, _)) => Ok(Some(key.clone())),
            None => Ok(None),
        }
    }

    async fn metadata(&self) -> Result<Metadata, Refused> {
        let mut slot = self.metadata.lock().await;
        if let Some(m) = &*slot {
            return Ok(m.clone());
        }
        let m = self.discover().await?;
        *slot = Some(m.clone());
        Ok(m)
    }

    /// OIDC discovery, then RFC 8414 (with the issuer's path after the
    /// well-known name); the document must name this very issuer.
    async fn discover(&self) -> Result<Metadata, Refused> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let mut urls = vec![format!("{issuer}/.well-known/openid-configuration")];
        if let Ok(u) = url::Url::parse(issuer) {
            let path = u.path().trim_end_matches('/');
            urls.push(format!("{}/.well-known/oauth-authorization-server{path}", u.origin().ascii_serialization()));
        }
        let mut errors = Vec::new();
        for url in &urls {
            let doc = match self.get_json(url).await {
                Ok(doc) => doc,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if doc.get("issuer").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
                return Err(Refused::Unavailable(format!(
                    "{url} names issuer {:?}, not {:?}; set [auth.oidc] issuer to exactly the provider's issuer",
                    doc.get("issuer"),
                    self.config.issuer
                )));
            }
            let Some(jwks_uri) = doc.get("jwks_uri").and_then(Value::as_str) else {
                return Err(Refused::Unavailable(format!("{url} has no jwks_uri")));
            };
            return Ok(Metadata {
                jwks_uri: jwks_uri.to_string(),
                introspection_endpoint: doc.get("introspection_endpoint").and_then(Value::as_str).map(String::from),
            });
        }
        Err(Refused::Unavailable(format!("discovery of {} failed: {}", self.config.issuer, errors.join("; "))))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let resp =
            self.http.get(url).send().await.and_then(|r| r.error_for_status()).map_err(|e| format!("{url}: {e}"))?;
        resp.json::<Value>().await.map_err(|e| format!("{url}: not JSON ({e})"))
    }

    /// Fetches the JWKS again (one fetch at a time, at most every
    /// [`REFETCH_MIN`]).
    async fn refresh_keys(&self) -> Result<(), Refused> {
        let _one = self.fetching.lock().await;
        let recent = self.keys.read().ok().and_then(|k| k.fetched).is_some_and(|t| t.elapsed() < REFETCH_MIN);
        if recent {
            return Ok(());
        }
        let meta = self.metadata().await?;
        let doc = self.get_json(&meta.jwks_uri).await.map_err(|e| Refused::Unavailable(format!("the JWKS {e}")))?;
        let set: JwkSet = serde_json::from_value(doc)
            .map_err(|e| Refused::Unavailable(format!("the JWKS at {} is not a JWK set: {e}", meta.jwks_uri)))?;
        let mut keys = Keys { fetched: Some(Instant::now()), ..Keys::default() };
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| serde_json::to_value(a).ok())
                .and_then(|v| v.as_str().and_then(|s| Algorithm::from_str(s).ok()));
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), (key, alg));
                }
                None => keys.without_kid.push((key, alg)),
            }
        }
        tracing::debug!(issuer = %self.config.issuer, keys = keys.by_kid.len() + keys.without_kid.len(), "fetched the issuer's JWKS");
        if let Ok(mut slot) = self.keys.write() {
            *slot = keys;
        }
        Ok(())
    }
}

/// The `alg` of a token's header, read without checking anything.
fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(String::from)
}

/// A string claim or an array of strings, as a list.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// How long a checked token may be trusted again: [`REMEMBER`], or until
/// its `exp` if that is sooner.
fn until(claims: &Map<String, Value>) -> Instant {
    let now = Instant::now();
    let left = claims.get("exp").and_then(Value::as_u64).map(|exp| {
        let unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        Duration::from_secs(exp.saturating_sub(unix))
    });
    now + left.map_or(REMEMBER, |l| l.min(REMEMBER))
}

fn explain(e: jsonwebtoken::errors::Error, issuer: &str) -> Refused {
    use jsonwebtoken::errors::ErrorKind;
    Refused::Invalid(match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired".to_string(),
        ErrorKind::ImmatureSignature => "it is not valid yet (`nbf` is in the future)".to_string(),
        ErrorKind::InvalidIssuer => format!("its issuer is not {issuer:?}"),
        ErrorKind::InvalidSignature => "its signature does not match the issuer's key".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("it lacks the `{c}` claim"),
        ErrorKind::InvalidAlgorithm => "its algorithm does not match its key".to_string(),
        _ => format!("it is not a valid JWT ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str) -> String {
        use base64::Engine;
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", e(header), e(claims))
    }

    #[test]
    fn the_issuer_is_peeked_only_from_a_three_part_token() {
        let t = jwt(r#"{"alg":"RS256"}"#, r#"{"iss":"https://idp.example"}"#);
        assert_eq!(unverified_issuer(&t).as_deref(), Some("https://idp.example"));
        assert_eq!(unverified_issuer("mcpod_abc"), None);
        assert_eq!(unverified_issuer(&format!("{t}.extra")), None);
        assert_eq!(header_alg(&jwt(r#"{"alg":"none"}"#, "{}")).as_deref(), Some("none"));
    }

    #[test]
    fn groups_and_scopes_come_from_strings_or_lists_and_map_admins() {
        let mut c = OidcSection::for_issuer("http://127.0.0.1:1".to_string());
        c.admin_groups = vec!["platform".to_string()];
        c.admin_scope = Some("mcpod:admin".to_string());
        let v = Verifier::new(&c, &|_| None).unwrap();
        let claims = |j: Value| j.as_object().unwrap().clone();
        let p = v.principal_of(&claims(serde_json::json!({"sub":"a","groups":"dev","scope":"mcp:tools x"}))).unwrap();
        assert_eq!(
            (p.role, p.groups, p.scopes),
            (Role::User, vec!["dev".to_string()], vec!["mcp:tools".to_string(), "x".to_string()])
        );
        let p = v.principal_of(&claims(serde_json::json!({"sub":"b","groups":["dev","platform"]}))).unwrap();
        assert_eq!(p.role, Role::Admin);
        let p = v.principal_of(&claims(serde_json::json!({"sub":"c","scp":["mcpod:admin"]}))).unwrap();
        assert_eq!(p.role, Role::Admin);
        assert!(v.principal_of(&claims(serde_json::json!({"groups":["platform"]}))).is_err());
        let p = v.principal_of(&claims(serde_json::json!({"client_id":"svc","active":true}))).unwrap();
        assert_eq!(p.name, "svc");
    }
}
