//! Who is calling: the principal a request acts as, and the credentials
//! that prove it. One [`Authenticator`] tries them in a fixed order: the
//! admin token, a named static token ([`tokens`]), an OpenID provider's
//! access token ([`oidc`]), a Kubernetes ServiceAccount token
//! ([`service_account`]). Which one a bearer token is for is decided by its
//! shape and its (unverified) issuer, never by trying each in turn, so a
//! token meant for one check never reaches another.

pub mod oidc;
pub mod service_account;
pub mod tokens;

pub use tokens::{
    TOKENS_FILE_ENV, TokenEntry, TokenFile, TokenFileError, TokenTable, new_token, token_hash, tokens_file,
};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uses servers: MCP traffic, listings, instance handles.
    User,
    /// Also runs code: starts servers from raw configs, stops servers,
    /// reads their logs, inspects plugins.
    Admin,
}

impl Role {
    /// `user` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// The role a CLI argument names.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who a request acts as, proven by its credential; handlers, policies and
/// logs read it from the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The name logs and audit records carry: a token's name, an OIDC
    /// subject, `system:serviceaccount:NS:NAME`.
    pub name: String,
    /// Who vouched for it: `static` (a named token), `admin-token`,
    /// `kubernetes` (TokenReview), an OIDC issuer URL, or `none` when
    /// authentication is switched off.
    pub issuer: String,
    /// What it may do.
    pub role: Role,
    /// The groups its credential names (OIDC `groups`, TokenReview groups).
    pub groups: Vec<String>,
    /// The OAuth scopes its token was granted.
    pub scopes: Vec<String>,
}

impl Principal {
    /// A principal with no groups and no scopes.
    pub fn new(name: &str, issuer: &str, role: Role) -> Principal {
        Principal { name: name.to_string(), issuer: issuer.to_string(), role, groups: Vec::new(), scopes: Vec::new() }
    }

    /// The holder of the admin token (`MCPOD_API_TOKEN` or the generated one).
    pub fn admin_token() -> Principal {
        Principal::new("admin", "admin-token", Role::Admin)
    }

    /// The host itself, for the requests it makes on its own (discovery).
    pub fn host() -> Principal {
        Principal::new("mcpod", "host", Role::Admin)
    }

    /// Everyone, when authentication is switched off (`--insecure-no-auth`).
    pub fn unauthenticated() -> Principal {
        Principal::new("anonymous", "none", Role::Admin)
    }

    /// True if its token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The resource a request is for (RFC 8707): a token is accepted only if
/// it was minted for the host's base URL or for this server's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The host's base URL (`server.public_url`, or the request's own origin).
    pub base: String,
    /// The server's URL (`…/servers/ID`), for MCP requests: a token for it
    /// or for any of its endpoints (`…/servers/ID/mcp`) is accepted.
    pub server: Option<String>,
}

impl Resource {
    /// True if a token whose audience is `aud` may be used here.
    pub fn accepts(&self, aud: &str) -> bool {
        let aud = aud.trim_end_matches('/');
        aud == self.base.trim_end_matches('/')
            || self.server.as_deref().is_some_and(|s| {
                let s = s.trim_end_matches('/');
                aud == s || aud.strip_prefix(s).is_some_and(|rest| rest.starts_with('/'))
            })
    }

    /// The URL a client asks a token for (the server's, else the host's).
    pub fn url(&self) -> &str {
        self.server.as_deref().unwrap_or(&self.base)
    }
}

/// Why a request proves no one; each says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No bearer token.
    #[error(
        "no bearer token; send `Authorization: Bearer <token>` (the CLI reads MCPOD_API_TOKEN, or the file `mcpod serve` generated: `mcpod tokens admin` prints it; `mcpod tokens create NAME` makes a named one)"
    )]
    Missing,
    /// A token no check knows.
    #[error(
        "the bearer token is not one this host accepts (not the admin token, not a named token{0}); check which token the client sends"
    )]
    Unknown(&'static str),
    /// A token its check refused (expired, wrong audience, revoked …).
    #[error("the bearer token was refused: {0}")]
    Invalid(String),
    /// The check itself could not be made (the issuer or the Kubernetes
    /// API did not answer); the token may be good.
    #[error("the bearer token could not be checked: {0}; try again, and check that the host reaches it")]
    Unavailable(String),
}

/// Every credential a running host accepts, checked in one place.
pub struct Authenticator {
    /// The admin token (`None`: authentication is off, on loopback only).
    admin: Option<Arc<str>>,
    /// The named static tokens.
    named: Arc<TokenTable>,
    /// An OpenID provider's access tokens.
    oidc: Option<Arc<oidc::Verifier>>,
    /// ServiceAccount tokens.
    kubernetes: Option<Arc<service_account::Reviewer>>,
    /// Who the admin token proves, and who everyone is with authentication
    /// off: made once, shared by every request.
    admin_principal: Arc<Principal>,
    unauthenticated: Arc<Principal>,
}

impl Authenticator {
    /// The checks of a host: `admin` (none: authentication is off), the
    /// named tokens, and the optional OIDC and Kubernetes checks.
    pub fn new(
        admin: Option<Arc<str>>,
        named: Arc<TokenTable>,
        oidc: Option<Arc<oidc::Verifier>>,
        kubernetes: Option<Arc<service_account::Reviewer>>,
    ) -> Authenticator {
        Authenticator {
            admin,
            named,
            oidc,
            kubernetes,
            admin_principal: Arc::new(Principal::admin_token()),
            unauthenticated: Arc::new(Principal::unauthenticated()),
        }
    }

    /// The OIDC check, if one is configured (its metadata is published).
    pub fn oidc(&self) -> Option<&Arc<oidc::Verifier>> {
        self.oidc.as_ref()
    }

    /// True if authentication is switched off (`--insecure-no-auth`).
    pub fn is_off(&self) -> bool {
        self.admin.is_none()
    }

    /// The principal `token` proves for `resource`. With authentication
    /// off, a token that proves someone still names them, and anything else
    /// is [`Principal::unauthenticated`].
    pub async fn authenticate(&self, token: Option<&str>, resource: &Resource) -> Result<Arc<Principal>, Refused> {
        self.authenticate_for(token, &|| resource.clone()).await
    }

    /// [`Self::authenticate`] with the resource made only when a check needs
    /// it (an issuer's token): the request path's two URLs are not built for
    /// the admin token, a named token or no authentication.
    pub async fn authenticate_for(
        &self,
        token: Option<&str>,
        resource: &(dyn Fn() -> Resource + Sync),
    ) -> Result<Arc<Principal>, Refused> {
        if self.admin.is_none() {
            return Ok(match token {
                Some(t) => self.check(t, resource).await.unwrap_or_else(|_| self.unauthenticated.clone()),
                None => self.unauthenticated.clone(),
            });
        }
        self.check(token.ok_or(Refused::Missing)?, resource).await
    }

    async fn check(&self, token: &str, resource: &(dyn Fn() -> Resource + Sync)) -> Result<Arc<Principal>, Refused> {
        if let Some(admin) = &self.admin
            && crate::auth::constant_time_eq(token.as_bytes(), admin.as_bytes())
        {
            return Ok(self.admin_principal.clone());
        }
        if let Some(p) = self.named.principal(token) {
            return Ok(p);
        }
        let unknown = || {
            Refused::Unknown(match (&self.oidc, &self.kubernetes) {
                (None, None) => "",
                (Some(_), None) => ", not an access token of the configured issuer",
                (None, Some(_)) => ", not a ServiceAccount token",
                (Some(_), Some(_)) => ", not an access token of the configured issuer, not a ServiceAccount token",
            })
        };
        let checked = match oidc::unverified_issuer(token) {
            Some(iss) => match (&self.oidc, &self.kubernetes) {
                (Some(v), _) if v.issuer() == iss => v.verify(token, &resource()).await,
                (_, Some(k)) => k.review(token).await,
                (Some(v), None) => {
                    Err(Refused::Invalid(format!("its issuer {iss:?} is not the accepted issuer {:?}", v.issuer())))
                }
                (None, None) => Err(unknown()),
            },
            None => match &self.oidc {
                Some(v) if v.introspects() => v.introspect(token, &resource()).await,
                _ => Err(unknown()),
            },
        };
        checked.map(Arc::new)
    }
}

/// A bounded cache of checked tokens, by the token's SHA-256, each kept
/// until its own deadline: a hot path pays one hash, not a signature check
/// or a round trip. `V` is what the check found (a principal, and for
/// access tokens the audiences to match against each request's resource).
pub(crate) struct Checked<V> {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (V, std::time::Instant)>>,
}

/// How many checked tokens are remembered at most.
const CHECKED_MAX: usize = 4096;

impl<V: Clone> Checked<V> {
    /// An empty cache.
    pub(crate) fn new() -> Checked<V> {
        Checked { entries: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    /// What `token` proved, if it is remembered and not past its deadline.
    pub(crate) fn get(&self, token: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (v, until) = entries.get(&Self::key(token))?;
        (std::time::Instant::now() < *until).then(|| v.clone())
    }

    /// Remembers that `token` proved `v`, until `until`.
    pub(crate) fn put(&self, token: &str, v: V, until: std::time::Instant) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CHECKED_MAX {
            let now = std::time::Instant::now();
            entries.retain(|_, (_, u)| *u > now);
            if entries.len() >= CHECKED_MAX {
                entries.clear();
            }
        }
        entries.insert(Self::key(token), (v, until));
    }
}
