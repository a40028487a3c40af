//! Agents running as pods prove themselves with their projected
//! ServiceAccount token, and the Kubernetes API says whose it is
//! (TokenReview): in-cluster agents need no other identity provider, and a
//! token stops working when its pod or ServiceAccount is gone. The
//! deployment's ClusterRole grants `create` on `tokenreviews` and nothing
//! more for this.

use super::{Checked, Principal, Refused, Role};
use crate::config::KubernetesAuthSection;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};

/// The issuer name a reviewed principal carries.
pub const ISSUER: &str = "kubernetes";
/// Every review ends within this.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// Reviews ServiceAccount tokens with the cluster's TokenReview API.
pub struct Reviewer {
    api: Api<TokenReview>,
    config: KubernetesAuthSection,
    checked: Checked<Principal>,
}

impl Reviewer {
    /// A reviewer asking the cluster `client` talks to.
    pub fn new(client: kube::Client, config: &KubernetesAuthSection) -> Reviewer {
        Reviewer { api: Api::all(client), config: config.clone(), checked: Checked::new() }
    }

    /// The principal `token` proves, as the cluster says.
    pub async fn review(&self, token: &str) -> Result<Principal, Refused> {
        if let Some(p) = self.checked.get(token) {
            return Ok(p);
        }
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: Some(self.config.audiences.clone()) },
            ..TokenReview::default()
        };
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, self.api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| Refused::Unavailable(format!("the Kubernetes API did not answer a TokenReview in {REVIEW_TIMEOUT:?}")))?
            .map_err(|e| {
                Refused::Unavailable(format!(
                    "TokenReview failed ({e}); the host's ServiceAccount needs `create` on tokenreviews.authentication.k8s.io"
                ))
            })?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(Refused::Invalid(format!(
                "the Kubernetes API says it is not a valid token for audience {:?}{}",
                self.config.audiences,
                status.error.map(|e| format!(" ({e})")).unwrap_or_default()
            )));
        }
        let user = status.user.unwrap_or_default();
        let name = user.username.unwrap_or_default();
        let Some(account) = name.strip_prefix("system:serviceaccount:") else {
            return Err(Refused::Invalid(format!(
                "it is the token of {name:?}, not of a ServiceAccount; agents use their pod's projected token"
            )));
        };
        let as_slash = account.replacen(':', "/", 1);
        let admin = self.config.admin_service_accounts.iter().any(|a| *a == as_slash || *a == name);
        let principal = Principal {
            name: name.clone(),
            issuer: ISSUER.to_string(),
            role: if admin { Role::Admin } else { Role::User },
            groups: user.groups.unwrap_or_default(),
            scopes: Vec::new(),
        };
        if self.config.cache_secs > 0 {
            self.checked.put(token, principal.clone(), Instant::now() + Duration::from_secs(self.config.cache_secs));
        }
        Ok(principal)
    }
}
