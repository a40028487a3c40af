//! The host's policy, applied after every server-type plugin so that no
//! plugin can bypass it: which server types, packages and images may run —
//! judged on the final launch, every package its command lines name — which
//! environment variables a caller may set, and which values are secrets.

mod env;
mod launch;

#[cfg(test)]
pub(crate) use launch::test_spec;
pub use launch::{Package, Registry, Runs, normalize_pypi, what_runs};

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
            "command" => (self.section.allow_commands, "policy.allow_commands", ""),
            _ => (true, "", ""),
        };
        if !allowed {
            let how = if var.is_empty() { format!("set {key} = true") } else { format!("set {var}=true") };
            return Err(PolicyError(format!(
                "the `{}` server type is disabled by this host's policy ({key} = false; {how} to allow it)",
                config.server_type
            )));
        }
        if config.image.is_some() && !matches!(config.server_type.as_str(), "image" | "archon" | "command") {
            // Only these types run user-named images; others must not smuggle one in.
            return Err(PolicyError(format!("the `{}` server type does not take an `image`", config.server_type)));
        }
        if let Some(package) = &config.package {
            self.check_package(package, |p| p.to_string(), "")?;
        }
        Ok(())
    }

    /// Checks package `name` against the allow and block lists, comparing
    /// names and globs through `normal`; `how` says where the launch names it.
    fn check_package(&self, name: &str, normal: impl Fn(&str) -> String, how: &str) -> Result<(), PolicyError> {
        let name = normal(name);
        if let Some(p) = self.section.packages_block.iter().find(|p| glob_match(&normal(p), &name)) {
            return Err(PolicyError(format!("package `{name}`{how} is blocked by policy.packages_block (`{p}`)")));
        }
        if !self.section.packages_allow.is_empty()
            && !self.section.packages_allow.iter().any(|p| glob_match(&normal(p), &name))
        {
            return Err(PolicyError(format!(
                "package `{name}`{how} is not in policy.packages_allow; ask the operator to add it"
            )));
        }
        Ok(())
    }

    /// Checks the variables a caller sets: each must be one of the
    /// template's `declared` inputs or match `policy.env_allow`, and none
    /// may be one of the operator's families (`HOME`, `npm_config_*`, ...).
    pub fn check_env<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        declared: &[String],
    ) -> Result<(), PolicyError> {
        let refusals: Vec<String> =
            names.into_iter().filter_map(|n| env::refusal(n, declared, &self.section.env_allow)).collect();
        if refusals.is_empty() { Ok(()) } else { Err(PolicyError(refusals.join("; "))) }
    }

    /// True if env `name` holds a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.section.secret_env.iter().any(|p| glob_match(p, name))
    }

    /// Marks secret env values in a plugin's launch spec, and judges the
    /// launch as it will run, after the plugin has spoken: every package
    /// its command lines install (`--with`, `--package`, `--from`, the
    /// positional one) against the package lists, each launcher against
    /// its server-type switch, each image against the image rules, and its
    /// environment against the operator's families. Returns what it runs.
    pub fn apply(&self, config: &ServerConfig, spec: &mut LaunchSpec) -> Result<Runs, PolicyError> {
        for env in &mut spec.env {
            if self.is_secret(&env.name) {
                env.secret = true;
            }
        }
        let plugin = &config.server_type;
        if spec.container.is_some()
            && matches!(plugin.as_str(), "image" | "command")
            && !self.section.allow_custom_images
        {
            return Err(PolicyError("custom images are disabled (policy.allow_custom_images = false)".to_string()));
        }
        self.check_endpoint(plugin, spec)?;
        let mut reserved = spec.env.iter().filter(|e| !env::inert(&e.name));
        if let Some((name, family)) = reserved.find_map(|e| Some((&e.name, env::reserved_family(&e.name)?))) {
            return Err(PolicyError(format!(
                "the `{plugin}` plugin's launch sets env `{name}`, which is the operator's (reserved family `{family}`); \
                 only the operator sets it, on the host"
            )));
        }
        self.check_paths(plugin, spec)?;
        let runs = what_runs(spec).map_err(|e| PolicyError(format!("the `{plugin}` launch: {e}")))?;
        for (registry, launcher) in &runs.launchers {
            let (allowed, key) = match registry {
                Registry::Npm => (self.section.allow_npx, "policy.allow_npx"),
                Registry::Pypi => (self.section.allow_uv, "policy.allow_uv"),
            };
            if !allowed {
                return Err(PolicyError(format!(
                    "the `{plugin}` launch runs `{launcher}`, which installs {} packages, and {key} = false",
                    registry.name()
                )));
            }
        }
        for p in &runs.packages {
            let how = format!(" (installed by `{} {}`)", p.via, p.written);
            match p.registry {
                Registry::Npm => self.check_package(&p.name, str::to_string, &how)?,
                Registry::Pypi => self.check_package(&p.name, normalize_pypi, &how)?,
            }
        }
        for image in &runs.images {
            self.check_image(image)?;
        }
        Ok(runs)
    }

    /// Checks the paths a launch's process line, its environment and its
    /// working directory name against policy.allowed_paths (none set: any).
    /// A launch with no process (an image) names paths of its pod alone.
    fn check_paths(&self, plugin: &str, spec: &LaunchSpec) -> Result<(), PolicyError> {
        let allowed = &self.section.allowed_paths;
        let Some(process) = spec.process.as_ref().filter(|_| !allowed.is_empty()) else { return Ok(()) };
        let list = || allowed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        let refuse = |what: String| {
            PolicyError(format!(
                "the `{plugin}` launch names {what}, which is outside policy.allowed_paths ({}) or cannot be judged \
                 (`~`, `..`, a relative working directory); name an absolute path below one of them, or ask the operator to share it",
                list()
            ))
        };
        if let Some(dir) = spec.working_dir.as_deref().filter(|d| !d.starts_with('/')) {
            return Err(refuse(format!("the working directory `{dir}`")));
        }
        let words = process.command.iter().skip(1).map(String::as_str).chain(spec.working_dir.as_deref());
        if let Some(path) = crate::shared_paths::first_outside(words, allowed) {
            return Err(refuse(format!("the path `{path}`")));
        }
        for env in &spec.env {
            if let Some(path) = crate::shared_paths::first_outside([env.value.as_str()], allowed) {
                // A secret's value is never shown, not even in a refusal.
                let what = if env.secret { "a path".to_string() } else { format!("the path `{path}`") };
                return Err(refuse(format!("{what} in env `{}`", env.name)));
            }
        }
        Ok(())
    }

    /// Checks where a launch's endpoint is: a launch that runs nothing names
    /// a remote URL whose `host:port` must match policy.allow_remote_hosts;
    /// a launch that runs something names a path on it, never a URL (which
    /// would send its traffic elsewhere).
    fn check_endpoint(&self, plugin: &str, spec: &LaunchSpec) -> Result<(), PolicyError> {
        let Some(path) = spec.path.as_deref().filter(|p| !p.starts_with('/')) else { return Ok(()) };
        let Some(url) = spec.remote_url() else {
            return Err(PolicyError(format!(
                "the `{plugin}` launch names the endpoint `{path}`, which is not a path on the server it starts \
                 (a URL is only for a launch that runs nothing)"
            )));
        };
        self.check_remote_url(&url)
    }

    /// Checks that `url`, somewhere mcpod will connect to for a server that
    /// runs elsewhere (its endpoint, its token endpoint), names a
    /// `host:port` of policy.allow_remote_hosts.
    pub fn check_remote_url(&self, url: &url::Url) -> Result<(), PolicyError> {
        // `host_str` is lower case, and bracketed for IPv6 (`[::1]`).
        let authority = format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(0));
        if self.section.allow_remote_hosts.is_empty() {
            return Err(PolicyError(format!(
                "remote servers are off: policy.allow_remote_hosts is empty; the operator may add `{authority}` to it"
            )));
        }
        if !self.section.allow_remote_hosts.iter().any(|p| glob_match(&p.to_ascii_lowercase(), &authority)) {
            return Err(PolicyError(format!(
                "`{authority}` is not in policy.allow_remote_hosts; ask the operator to add it"
            )));
        }
        Ok(())
    }

    /// Checks container image `image` against policy.images_block,
    /// policy.images_allow and policy.digest_only.
    fn check_image(&self, image: &str) -> Result<(), PolicyError> {
        if let Some(p) = self.section.images_block.iter().find(|p| glob_match(p, image)) {
            return Err(PolicyError(format!("image `{image}` is blocked by policy.images_block (`{p}`)")));
        }
        if !self.section.images_allow.is_empty() && !self.section.images_allow.iter().any(|p| glob_match(p, image)) {
            return Err(PolicyError(format!(
                "image `{image}` is not in policy.images_allow; ask the operator to add it"
            )));
        }
        if self.section.digest_only && !image.contains("@sha256:") {
            return Err(PolicyError(format!(
                "image `{image}` is not pinned by digest and policy.digest_only = true; name it as `{image}@sha256:…`"
            )));
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

    fn launch(command: &[&str], env: &[&str]) -> LaunchSpec {
        launch::test_spec(&command.join(" "), None, env)
    }

    #[test]
    fn a_launcher_in_any_server_types_launch_answers_to_its_switch() {
        let p = Policy::new(PolicySection { allow_npx: false, ..PolicySection::default() });
        let err = p.apply(&config("archon", "x"), &mut launch(&["npx", "-y", "pkg"], &[])).unwrap_err().to_string();
        assert!(err.contains("`npx`") && err.contains("policy.allow_npx = false"), "{err}");
        assert!(p.apply(&config("archon", "x"), &mut launch(&["uvx", "pkg"], &[])).is_ok());
    }

    #[test]
    fn a_plugins_launch_may_not_set_the_operators_variables_but_may_quiet_its_tools() {
        let p = Policy::new(PolicySection::default());
        let err = p.apply(&config("npx", "x"), &mut launch(&["npx", "-y", "x"], &["npm_config_registry"])).unwrap_err();
        assert!(err.to_string().contains("the `npx` plugin's launch sets env `npm_config_registry`"), "{err}");
        let runs = p
            .apply(&config("npx", "x"), &mut launch(&["npx", "-y", "x@1"], &["npm_config_update_notifier", "API_KEY"]))
            .unwrap();
        assert_eq!(runs.packages[0].written, "x@1");
    }

    fn remote(url: &str) -> LaunchSpec {
        let mut spec = launch::test_spec("", None, &[]);
        spec.process = None;
        spec.transport = crate::launch::Transport::StreamableHttp;
        spec.path = Some(url.into());
        spec
    }

    #[test]
    fn a_remote_url_must_name_an_allowed_host_and_port() {
        let off = Policy::new(PolicySection::default());
        let err = off.apply(&config("remote", "x"), &mut remote("https://mcp.example.com/mcp")).unwrap_err();
        assert!(
            err.to_string().contains("policy.allow_remote_hosts is empty")
                && err.to_string().contains("`mcp.example.com:443`"),
            "{err}"
        );
        let p = Policy::new(PolicySection {
            allow_remote_hosts: vec!["mcp.example.com:443".into(), "127.0.0.1:*".into(), "[::1]:8080".into()],
            ..PolicySection::default()
        });
        assert!(p.apply(&config("remote", "x"), &mut remote("https://MCP.example.com/mcp")).is_ok());
        assert!(p.apply(&config("remote", "x"), &mut remote("http://127.0.0.1:9000/mcp")).is_ok());
        assert!(p.apply(&config("remote", "x"), &mut remote("http://[::1]:8080/mcp")).is_ok());
        for refused in [
            "http://mcp.example.com/mcp",         // port 80, not 443
            "https://mcp.example.com:8443/mcp",   // another port
            "https://mcp.example.com.evil.test/", // a suffix is another host
            "http://169.254.169.254/latest/",     // metadata service
            "http://[::1]:9090/mcp",
        ] {
            let err = p.apply(&config("remote", "x"), &mut remote(refused)).unwrap_err().to_string();
            assert!(err.contains("not in policy.allow_remote_hosts"), "{refused}: {err}");
        }
    }

    #[test]
    fn a_launch_that_runs_something_cannot_send_its_traffic_to_a_url() {
        let p = Policy::new(PolicySection { allow_remote_hosts: vec!["*".into()], ..PolicySection::default() });
        let mut spec = launch::test_spec("/srv/server", None, &[]);
        spec.path = Some("http://10.0.0.1:80/mcp".into());
        let err = p.apply(&config("command", "x"), &mut spec).unwrap_err().to_string();
        assert!(err.contains("not a path on the server it starts"), "{err}");
    }

    #[test]
    fn commands_are_off_until_the_operator_allows_them() {
        let mut c = config("command", "x");
        c.package = None;
        let err = Policy::new(PolicySection::default()).check_config(&c).unwrap_err().to_string();
        assert!(err.contains("policy.allow_commands = false; set policy.allow_commands = true"), "{err}");
        let on = Policy::new(PolicySection { allow_commands: true, ..PolicySection::default() });
        assert!(on.check_config(&c).is_ok());
        c.image = Some("ghcr.io/acme/server:1".into());
        assert!(on.check_config(&c).is_ok());
        let mut spec = launch::test_spec("/app/server", Some(("ghcr.io/acme/server:1", "/app/server")), &[]);
        let err = on.apply(&c, &mut spec).unwrap_err().to_string();
        assert!(err.contains("policy.allow_custom_images = false"), "{err}");
    }

    #[test]
    fn secrets_are_marked() {
        let p = Policy::new(PolicySection::default());
        assert!(p.is_secret("GITHUB_PERSONAL_ACCESS_TOKEN"));
        assert!(p.is_secret("BRAVE_API_KEY"));
        assert!(!p.is_secret("GITLAB_API_URL"));
    }
}
