//! The host's policy, applied after every server-type plugin so that no
//! plugin can bypass it: which server types and packages may run, and which
//! environment values are secrets.

use crate::config::PolicySection;
use crate::launch::LaunchSpec;
use crate::plugin::bindings::ServerConfig;

/// Matches `text` against a glob where `*` stands for any run of characters.
pub use crate::expose::glob_match;

/// Why the policy refused a server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    section: PolicySection,
}

impl Policy {
    /// The policy of `[policy]`.
    pub fn new(section: PolicySection) -> Self {
        Policy { section }
    }

    /// Whether servers may reach the internet.
    pub fn internet_access(&self) -> bool {
        self.section.internet_access
    }

    /// Checks a config before any plugin sees it.
    pub fn check_config(&self, config: &ServerConfig) -> Result<(), PolicyError> {
        let (allowed, key, var) = match config.server_type.as_str() {
            "npx" => (self.section.allow_npx, "policy.allow_npx", "MCP_ALLOW_NPX"),
            "uv" => (self.section.allow_uv, "policy.allow_uv", "MCP_ALLOW_UV"),
            "image" => (self.section.allow_custom_images, "policy.allow_custom_images", "MCP_ALLOW_CUSTOM_IMAGES"),
            _ => (true, "", ""),
        };
        if !allowed {
            return Err(PolicyError(format!(
                "the `{}` server type is disabled by this host's policy ({key} = false; set {var}=true to allow it)",
                config.server_type
            )));
        }
        if config.image.is_some() && config.server_type != "image" && config.server_type != "archon" {
            // Only these types run user-named images; others must not smuggle one in.
            return Err(PolicyError(format!("the `{}` server type does not take an `image`", config.server_type)));
        }
        if let Some(package) = &config.package {
            if let Some(p) = self.section.packages_block.iter().find(|p| glob_match(p, package)) {
                return Err(PolicyError(format!("package `{package}` is blocked by policy.packages_block (`{p}`)")));
            }
            if !self.section.packages_allow.is_empty()
                && !self.section.packages_allow.iter().any(|p| glob_match(p, package))
            {
                return Err(PolicyError(format!(
                    "package `{package}` is not in policy.packages_allow; ask the operator to add it"
                )));
            }
        }
        Ok(())
    }

    /// True if env `name` holds a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.section.secret_env.iter().any(|p| glob_match(p, name))
    }

    /// Marks secret env values in a plugin's launch spec, and checks that
    /// the spec asks for nothing the policy forbids.
    pub fn apply(&self, config: &ServerConfig, spec: &mut LaunchSpec) -> Result<(), PolicyError> {
        for env in &mut spec.env {
            if self.is_secret(&env.name) {
                env.secret = true;
            }
        }
        if spec.container.is_some() && config.server_type == "image" && !self.section.allow_custom_images {
            return Err(PolicyError("custom images are disabled (policy.allow_custom_images = false)".to_string()));
        }
        Ok(())
    }

    /// The names of the secret env values in `spec`.
    pub fn secret_names(spec: &LaunchSpec) -> Vec<String> {
        spec.env.iter().filter(|e| e.secret).map(|e| e.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server_type: &str, package: &str) -> ServerConfig {
        ServerConfig {
            server_type: server_type.into(),
            package: Some(package.into()),
            version: None,
            image: None,
            args: vec![],
            env: vec![],
            transport: None,
            port: None,
            path: None,
            options: vec![],
        }
    }

    #[test]
    fn server_types_follow_their_switches() {
        let p = Policy::new(PolicySection { allow_npx: false, ..PolicySection::default() });
        let err = p.check_config(&config("npx", "x")).unwrap_err().to_string();
        assert!(err.contains("MCP_ALLOW_NPX=true"), "{err}");
        assert!(p.check_config(&config("uv", "x")).is_ok());
        let err = p.check_config(&config("image", "x")).unwrap_err().to_string();
        assert!(err.contains("allow_custom_images"), "{err}");
    }

    #[test]
    fn package_lists() {
        let p = Policy::new(PolicySection {
            packages_allow: vec!["@modelcontextprotocol/*".into(), "mcp-server-*".into()],
            packages_block: vec!["@modelcontextprotocol/server-github".into()],
            ..PolicySection::default()
        });
        assert!(p.check_config(&config("npx", "@modelcontextprotocol/server-memory")).is_ok());
        assert!(p.check_config(&config("uv", "mcp-server-time")).is_ok());
        assert!(p.check_config(&config("npx", "left-pad")).unwrap_err().to_string().contains("packages_allow"));
        assert!(
            p.check_config(&config("npx", "@modelcontextprotocol/server-github"))
                .unwrap_err()
                .to_string()
                .contains("blocked")
        );
    }

    #[test]
    fn secrets_are_marked() {
        let p = Policy::new(PolicySection::default());
        assert!(p.is_secret("GITHUB_PERSONAL_ACCESS_TOKEN"));
        assert!(p.is_secret("BRAVE_API_KEY"));
        assert!(!p.is_secret("GITLAB_API_URL"));
    }
}
