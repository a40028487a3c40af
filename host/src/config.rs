//! The host's TOML configuration: serde structs with defaults, strict about
//! unknown keys, plus the seed's environment variable overrides.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. The I/O error is part of the message,
    /// not a `source`, so that a printed chain names it once.
    #[error("cannot read config file {path}: {error}; pass --config FILE or set MCPOD_CONFIG")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML for this schema; the message points at the key and line.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line, column and the offending key.
        message: String,
    },
    /// An environment variable override holds a value of the wrong shape.
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// The values parse but contradict each other or a rule.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole host configuration (`mcpod.toml`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The management API and MCP front.
    pub server: ServerSection,
    /// Who may call: named tokens and their roles.
    pub auth: AuthSection,
    /// The record of every call.
    pub audit: AuditSection,
    /// What each principal may do with servers: Cedar policies.
    pub access: AccessSection,
    /// What servers started from each template show their clients.
    pub expose: ExposeSection,
    /// Logging.
    pub log: LogSection,
    /// Where and how plugins run.
    pub plugin_runtime: PluginRuntimeSection,
    /// Which servers may be started.
    pub policy: PolicySection,
    /// Default resources for servers.
    pub resources: ResourcesSection,
    /// The Kubernetes runtime.
    pub kubernetes: KubernetesSection,
    /// Message, session and restart limits.
    pub limits: LimitsSection,
    /// What local servers may touch.
    pub sandbox: SandboxSection,
    /// How packages are pinned and verified before they run.
    pub packages: PackagesSection,
    /// Plugins to load besides (or instead of) the built-in ones.
    pub plugins: Vec<PluginEntry>,
    /// Virtual servers declared in the config (`[[virtual]]`): one endpoint
    /// in front of several servers.
    #[serde(rename = "virtual")]
    pub virtuals: Vec<VirtualSpec>,
    /// The directory relative plugin paths are resolved against (the config file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Plugin config values set through the environment for built-in plugins
    /// that `[[plugins]]` does not list.
    #[serde(skip)]
    pub builtin_overrides: EnvPluginConfig,
}

/// Which runtime starts servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// Local processes.
    #[default]
    Local,
    /// Kubernetes pods.
    Kubernetes,
}

/// `[server]`: where the host listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// The address of the management API and MCP front.
    pub listen: SocketAddr,
    /// A file holding the API bearer token (the env var MCPOD_API_TOKEN wins).
    pub api_token_file: Option<PathBuf>,
    /// Browser origins allowed besides loopback ones (`https://app.example`).
    pub allowed_origins: Vec<String>,
    /// Host names clients may use besides loopback ones (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// The base URL clients reach this host at, for the endpoints servers
    /// report (`http://mcpod.mcpod.svc:7460`); unset: `http://` + `listen`.
    pub public_url: Option<String>,
    /// Which runtime starts servers.
    pub runtime: RuntimeKind,
    /// Serve without any token (loopback only; `mcpod serve --insecure-no-auth`).
    /// Off by default: with no token configured, mcpod generates one.
    pub insecure_no_auth: bool,
    /// Where mcpod keeps what must outlive it (the next server number, so
    /// that a restarted host never gives an old server's id, and URL, to a
    /// new server). Unset: `mcpod serve` uses `$XDG_STATE_HOME/mcpod`, else
    /// `~/.local/state/mcpod`; a library host keeps nothing.
    pub state_dir: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 7460)),
            api_token_file: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            public_url: None,
            runtime: RuntimeKind::Local,
            insecure_no_auth: false,
            state_dir: None,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Human or JSON lines.
    pub format: LogFormat,
    /// A tracing filter (`info`, `mcpod=debug`); RUST_LOG wins.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { format: LogFormat::Human, level: "info".to_string() }
    }
}

/// `[plugin_runtime]`: the WebAssembly engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginRuntimeSection {
    /// Where compiled plugins are cached; empty means `$XDG_CACHE_HOME/mcpod`
    /// or `~/.cache/mcpod`.
    pub cache_dir: Option<PathBuf>,
    /// Whether to cache compiled plugins at all.
    pub cache: bool,
    /// Use the pooling instance allocator (faster instantiation).
    pub pooling: bool,
    /// The most plugin instances alive at once (sessions hold one adapter instance each).
    pub max_instances: u32,
    /// Load every built-in plugin that `[[plugins]]` does not name.
    pub builtins: bool,
    /// Run the built-in `stdio` adapter's code natively: the same Rust code
    /// its wasm is built from, linked into the host, without two wasm calls
    /// per proxied call. Off: it runs in wasm like any plugin.
    pub native_adapters: bool,
}

impl Default for PluginRuntimeSection {
    fn default() -> Self {
        PluginRuntimeSection {
            cache_dir: None,
            cache: true,
            pooling: true,
            max_instances: 1000,
            builtins: true,
            native_adapters: true,
        }
    }
}

/// One member rule of a virtual server.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    /// A server, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Every server started from this template (those started later too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Every server whose labels include all of these (those started later too).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// The prefix of its tools and prompts (`KEY__NAME`); default: the
    /// template's name, else the server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Which of its tools, prompts and resources the virtual server shows,
    /// and under which names (as a server's own `expose`).
    #[serde(default, skip_serializing_if = "crate::expose::Expose::is_empty")]
    pub expose: crate::expose::Expose,
}

/// A virtual server: a name and its members.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualSpec {
    /// Its name: the endpoint is `/virtual/{name}/mcp`.
    pub name: String,
    /// Its member rules.
    pub members: Vec<MemberSpec>,
}

/// True for a name or key of letters, digits, `-` and `_` without `__`.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.contains("__")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl VirtualSpec {
    /// What is wrong with the spec, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !plain(&self.name) {
            out.push(format!("name: {:?} must be 1-64 letters, digits, `-` or `_` (no `__`)", self.name));
        }
        // A server id ends in `-NUMBER`; a virtual name never does, so the two never meet.
        if self.name.rsplit_once('-').is_some_and(|(_, n)| n.chars().all(|c| c.is_ascii_digit())) {
            out.push(format!("name: {:?} ends like a server id (`-NUMBER`); choose another", self.name));
        }
        if self.members.is_empty() {
            out.push("members: give at least one (`server` or `template`)".into());
        }
        for (i, m) in self.members.iter().enumerate() {
            let kinds = [m.server.is_some(), m.template.is_some(), !m.selector.is_empty()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                out.push(format!("members[{i}]: give one of `server`, `template` and `selector`"));
            }
            if let Some(key) = m.key.as_deref().filter(|k| !k.is_empty() && !plain(k)) {
                out.push(format!("members[{i}].key: {key:?} must be letters, digits, `-` or `_` (no `__`)"));
            }
            out.extend(m.expose.problems().into_iter().map(|p| format!("members[{i}].{p}")));
        }
        out
    }
}

/// `[policy]`: what the host allows, applied after every plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Allow the `npx` server type (MCP_ALLOW_NPX).
    pub allow_npx: bool,
    /// Allow the `uv` server type (MCP_ALLOW_UV).
    pub allow_uv: bool,
    /// Allow arbitrary container images (MCP_ALLOW_CUSTOM_IMAGES).
    pub allow_custom_images: bool,
    /// If not empty, only packages matching one of these globs may run.
    pub packages_allow: Vec<String>,
    /// Packages matching one of these globs may never run.
    pub packages_block: Vec<String>,
    /// Env names (globs) whose values are secrets: never logged, never shown,
    /// kept in a Kubernetes Secret.
    pub secret_env: Vec<String>,
    /// Whether servers may reach the internet (their NetworkPolicy egress).
    pub internet_access: bool,
    /// Env names (globs) a caller may set on any server, beside a
    /// template's declared inputs; the operator's families (`HOME`,
    /// `npm_config_*`, `UV_*`, proxies, ...) never, whatever this says.
    pub env_allow: Vec<String>,
    /// If not empty, only images matching one of these globs may run.
    pub images_allow: Vec<String>,
    /// Images matching one of these globs may never run.
    pub images_block: Vec<String>,
    /// Only images pinned by digest (`name@sha256:…`) may run.
    pub digest_only: bool,
    /// Allow the `command` server type: an admin's own program, run as it
    /// is (off by default: it runs anything the host user can).
    pub allow_commands: bool,
    /// The `host:port` globs a `remote` server's URL may name (empty: no
    /// remote servers), so that nobody points mcpod at addresses it must
    /// not reach (`mcp.example.com:443`, `*.internal.example:8080`).
    pub allow_remote_hosts: Vec<String>,
    /// If not empty, every absolute path among a local server's arguments
    /// and its working directory must lead to one of these or below one
    /// (the filesystem server's directories a caller names, a script), so
    /// callers reach only what the operator shares.
    pub allowed_paths: Vec<PathBuf>,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            allow_npx: true,
            allow_uv: true,
            allow_custom_images: false,
            packages_allow: Vec::new(),
            packages_block: Vec::new(),
            secret_env: ["*_KEY", "*_TOKEN", "*_SECRET", "*PASSWORD*", "*_CREDENTIALS"].map(String::from).to_vec(),
            internet_access: true,
            env_allow: Vec::new(),
            images_allow: Vec::new(),
            images_block: Vec::new(),
            digest_only: false,
            allow_commands: false,
            allow_remote_hosts: Vec::new(),
            allowed_paths: Vec::new(),
        }
    }
}

/// `[sandbox]`: what a server on the local runtime may touch (Kubernetes
/// pods have their own: the restricted Pod Security Standard, a
/// NetworkPolicy and resource limits).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// Landlock, `no_new_privs`, a network namespace when
    /// `policy.internet_access = false`, and control groups.
    pub enabled: bool,
    /// Put each instance in a control group with `[resources]`' memory and
    /// CPU limits and `max_processes` (false: an `RLIMIT_DATA` per process).
    pub cgroups: bool,
    /// Paths every server may also read (beside the system, PATH and the
    /// package caches).
    pub read: Vec<PathBuf>,
    /// Paths every server may also write (beside its work directory and the
    /// package caches).
    pub write: Vec<PathBuf>,
    /// Processes and threads one instance may hold (0: no limit).
    pub max_processes: u64,
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection { enabled: true, cgroups: true, read: Vec::new(), write: Vec::new(), max_processes: 512 }
    }
}

/// `[packages]`: every npm and PyPI package a launch installs is resolved
/// to one exact version, verified against its registry, and run pinned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackagesSection {
    /// Resolve, verify and pin (false: launches run what their command says,
    /// `@latest` included).
    pub verify: bool,
    /// The npm registry verification reads (a mirror's URL for a mirror).
    pub npm_registry: String,
    /// The Python package index verification reads (its JSON API's base).
    pub pypi_index: String,
    /// The npm registry's signing keys (a `/-/npm/v1/keys` document), for a
    /// registry that does not serve them; unset: fetched from the registry.
    pub npm_keys_file: Option<PathBuf>,
    /// A token for a private npm registry (sent as a bearer token).
    pub npm_token_file: Option<PathBuf>,
    /// A token for a private package index (sent as a bearer token).
    pub pypi_token_file: Option<PathBuf>,
    /// Refuse an npm version without a registry signature verified against
    /// the registry's keys.
    pub require_signatures: bool,
    /// Refuse a version published without provenance attestations (npm
    /// `dist.attestations`, PyPI PEP 740), or whose provenance cannot be
    /// fetched and verified.
    pub require_provenance: bool,
    /// Sigstore's `trusted_root.json` that npm and PyPI provenance is
    /// checked against; unset: Sigstore's public-good instance, shipped with mcpod.
    pub sigstore_trusted_root_file: Option<PathBuf>,
    /// Download each package file and check its hash (false: trust the
    /// launcher's own check against the metadata verified here).
    pub download: bool,
    /// How long registry metadata is reused, in seconds.
    pub cache_secs: u64,
    /// Days after which a kept package file or a command line's package
    /// caches that no server used are removed (checked hourly; 0: never).
    pub keep_unused_days: u64,
}

impl Default for PackagesSection {
    fn default() -> Self {
        PackagesSection {
            verify: true,
            npm_registry: "https://registry.npmjs.org".to_string(),
            pypi_index: "https://pypi.org".to_string(),
            npm_keys_file: None,
            npm_token_file: None,
            pypi_token_file: None,
            require_signatures: false,
            require_provenance: false,
            sigstore_trusted_root_file: None,
            download: true,
            cache_secs: 300,
            keep_unused_days: 30,
        }
    }
}

/// `[resources]`: default requests and limits for every server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourcesSection {
    /// CPU request.
    pub cpu_request: String,
    /// CPU limit (MCP_SERVER_CPU_LIMIT).
    pub cpu_limit: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit (MCP_SERVER_MEMORY_LIMIT).
    pub memory_limit: String,
    /// Per-template overrides, which win over the server type's hints and
    /// the defaults above (`[resources.templates.playwright]`).
    pub templates: std::collections::BTreeMap<String, ResourceOverride>,
}

impl Default for ResourcesSection {
    fn default() -> Self {
        ResourcesSection {
            cpu_request: "250m".to_string(),
            cpu_limit: "500m".to_string(),
            memory_request: "256Mi".to_string(),
            memory_limit: "512Mi".to_string(),
            templates: Default::default(),
        }
    }
}

/// `[resources.templates.NAME]`: the requests and limits of one template's servers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceOverride {
    /// CPU request.
    pub cpu_request: Option<String>,
    /// CPU limit.
    pub cpu_limit: Option<String>,
    /// Memory request.
    pub memory_request: Option<String>,
    /// Memory limit.
    pub memory_limit: Option<String>,
}

/// `[auth]`: who may call, beside the admin token of `[server]`: named
/// static tokens, an OpenID provider's access tokens, and Kubernetes
/// ServiceAccount tokens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// The file of named tokens `mcpod tokens create` writes (the env var
    /// MCPOD_TOKENS_FILE wins; default: `tokens.toml` beside the generated
    /// admin token in the user's config directory).
    pub tokens_file: Option<PathBuf>,
    /// `[auth.oidc]`: JWT access tokens of one issuer (MCPOD_OIDC_ISSUER).
    pub oidc: Option<OidcSection>,
    /// `[auth.kubernetes]`: ServiceAccount tokens, checked by TokenReview.
    pub kubernetes: Option<KubernetesAuthSection>,
}

/// The JWS algorithms an access token may be signed with by default: the
/// asymmetric ones (never `none`, never HS*, whose key would be public).
pub const DEFAULT_JWT_ALGORITHMS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// `[auth.oidc]`: mcpod as an OAuth 2.1 resource server (the MCP
/// authorization specification): access tokens of `issuer`, checked
/// against its JWKS, for this host's resource URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The issuer URL (`https://`, or `http://` on a loopback address only).
    pub issuer: String,
    /// Audiences accepted besides the host's own resource URL (RFC 8707);
    /// MCPOD_OIDC_AUDIENCE adds one.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The signing algorithms accepted (default: the asymmetric ones).
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (at most 300).
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// The claim that lists the caller's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Members of any of these groups are admins.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// These subjects (`sub`) are admins.
    #[serde(default)]
    pub admin_subjects: Vec<String>,
    /// A token granted this scope is an admin (none by default).
    #[serde(default)]
    pub admin_scope: Option<String>,
    /// Scopes every token must carry to use MCP endpoints (403
    /// `insufficient_scope` otherwise); also advertised in the metadata.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Checks opaque tokens by introspection (RFC 7662) as this client.
    #[serde(default)]
    pub introspection: Option<IntrospectionSection>,
}

/// `[auth.oidc.introspection]`: the client mcpod introspects opaque tokens as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSection {
    /// Its client id.
    pub client_id: String,
    /// The env var holding its secret (this or `client_secret_file`; the
    /// secret itself is never in the config).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A file holding its secret (a mounted Secret in a cluster).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
}

/// `[auth.kubernetes]`: agents running as pods prove themselves with their
/// projected ServiceAccount token, checked by the TokenReview API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAuthSection {
    /// The audiences a token must be minted for (default `mcpod`).
    #[serde(default = "default_sa_audiences")]
    pub audiences: Vec<String>,
    /// ServiceAccounts (`namespace/name`) that are admins.
    #[serde(default)]
    pub admin_service_accounts: Vec<String>,
    /// How long a review's answer is reused, in seconds (0: ask every time).
    #[serde(default = "default_review_cache_secs")]
    pub cache_secs: u64,
}

fn default_jwt_algorithms() -> Vec<String> {
    DEFAULT_JWT_ALGORITHMS.iter().map(|s| s.to_string()).collect()
}
fn default_leeway_secs() -> u64 {
    60
}
fn default_groups_claim() -> String {
    "groups".to_string()
}
fn default_sa_audiences() -> Vec<String> {
    vec!["mcpod".to_string()]
}
fn default_review_cache_secs() -> u64 {
    10
}

impl OidcSection {
    /// A section for `issuer` with every other field at its default.
    pub fn for_issuer(issuer: String) -> OidcSection {
        OidcSection {
            issuer,
            audiences: Vec::new(),
            algorithms: default_jwt_algorithms(),
            leeway_secs: default_leeway_secs(),
            groups_claim: default_groups_claim(),
            admin_groups: Vec::new(),
            admin_subjects: Vec::new(),
            admin_scope: None,
            scopes: Vec::new(),
            introspection: None,
        }
    }

    /// Checks the issuer's scheme and the algorithm allow-list.
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let url = match url::Url::parse(&self.issuer) {
            Ok(u) => u,
            Err(e) => return bad(format!("[auth.oidc] issuer {:?} is not a URL ({e})", self.issuer)),
        };
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return bad(format!(
                    "[auth.oidc] issuer {} is http:// on a non-loopback host; use https:// (http:// is for a provider on 127.0.0.1 in tests)",
                    self.issuer
                ));
            }
            other => return bad(format!("[auth.oidc] issuer {} has scheme {other}; use https://", self.issuer)),
        }
        if self.algorithms.is_empty() {
            return bad("[auth.oidc] algorithms is empty; leave it out for the default asymmetric set".to_string());
        }
        for alg in &self.algorithms {
            if !DEFAULT_JWT_ALGORITHMS.contains(&alg.as_str()) {
                return bad(format!(
                    "[auth.oidc] algorithms: {alg:?} is not accepted; use some of {} (`none` and HS* never are: an HMAC key would be public)",
                    DEFAULT_JWT_ALGORITHMS.join(", ")
                ));
            }
        }
        if self.leeway_secs > 300 {
            return bad(format!(
                "[auth.oidc] leeway_secs = {} is over 300; clocks that far apart need fixing",
                self.leeway_secs
            ));
        }
        Ok(())
    }
}

/// `[access]`: the Cedar policies that say who may connect to which
/// server and use which tools, prompts and resources (crate::access).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    /// The policy file (relative to the config file's folder); re-read
    /// when it changes. None: every authenticated principal may use every
    /// server (roles still apply).
    pub policies: Option<PathBuf>,
}

/// `[expose]`: the operator's exposure rules per template (crate::expose).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExposeSection {
    /// Rules for every server started from the template of that name; a
    /// start request's own rules narrow them and never widen them.
    pub templates: std::collections::BTreeMap<String, crate::expose::Expose>,
}

impl Config {
    /// The policy file, resolved against the config file's folder.
    pub fn access_policies(&self) -> Option<PathBuf> {
        self.access.policies.as_ref().map(|p| if p.is_absolute() { p.clone() } else { self.base_dir.join(p) })
    }
}

/// Where audit records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuditSink {
    /// Standard output, one JSON line per record (logs go to stderr).
    #[default]
    Stdout,
    /// `[audit] file`, rotated by size.
    File,
    /// Nowhere.
    Off,
}

/// `[audit]`: the record of every call, start and stop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// `stdout`, `file` or `off`.
    pub sink: AuditSink,
    /// The file, for `sink = "file"`.
    pub file: Option<PathBuf>,
    /// The file's size before it rotates, in MiB.
    pub max_mib: u64,
    /// How many rotated files are kept (`FILE.1` … `FILE.keep`).
    pub keep: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection { sink: AuditSink::Stdout, file: None, max_mib: 100, keep: 5 }
    }
}

/// `[limits]`: messages, sessions, start-up and restarts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// The largest JSON-RPC message or HTTP body, in KiB.
    pub max_message_kib: u32,
    /// Most client sessions per server.
    pub max_sessions_per_server: usize,
    /// Seconds a client session may stay idle before it is closed.
    pub session_idle_secs: u64,
    /// Seconds `servers start` waits for a server to be ready.
    pub start_timeout_secs: u64,
    /// Consecutive failed starts before a server is marked failed.
    pub max_restarts: u32,
    /// The first restart backoff, doubled per consecutive failure.
    pub restart_backoff_ms: u64,
    /// The longest restart backoff.
    pub restart_max_backoff_ms: u64,
    /// Address-space cap of local server processes, in MiB (unset: none).
    pub local_memory_mib: Option<u64>,
    /// CPU-seconds cap of local server processes (unset: none).
    pub local_cpu_secs: Option<u64>,
    /// Seconds a server has to answer a client's request (a progress
    /// notification restarts the clock); then the client gets an error and
    /// the server `notifications/cancelled`. Also bounds the handshake.
    pub request_timeout_secs: u64,
    /// Seconds a stdio server has to answer mcpod's `server/discover` probe
    /// (the MCP 2026-07-28 backward-compatibility probe) before it is taken
    /// for a handshake-era server and initialized; 0: never probe, speak
    /// the handshake to every stdio server.
    pub discover_timeout_secs: u64,
    /// Seconds `mcpod serve` gives calls in flight after SIGTERM before it
    /// stops every server and exits.
    pub shutdown_grace_secs: u64,
    /// Client connections open at once; the next waits in the kernel's
    /// backlog until one closes.
    pub max_connections: usize,
    /// Servers one principal without the admin role may run at once.
    pub max_servers_per_principal: usize,
    /// Client sessions (handshake-era sessions, on servers and virtual
    /// servers alike) one principal without the admin role may hold open
    /// at once; a per-session server's instance is one of them.
    pub max_sessions_per_principal: usize,
    /// MiB of memory the machine must still have available for a new
    /// server or per-session instance to start on the local runtime
    /// (`MemAvailable`, or what mcpod's own control group has left if
    /// less); below it the start or session is refused with a 429 and
    /// `Retry-After`. 0 turns the check off.
    pub min_available_memory_mib: u64,
    /// Server instances that may be starting at once (from launch until
    /// their handshake is done), so that a burst of starts takes turns on
    /// the CPUs; the rest wait their turn. 0: twice the CPUs mcpod may use
    /// on the local runtime, no limit on Kubernetes (its scheduler places pods).
    pub max_concurrent_launches: usize,
    /// Starts that may wait for a launch slot; past them a new server or
    /// per-session instance is refused with a 429 and `Retry-After`.
    pub max_waiting_launches: usize,
    /// Requests one client session may have waiting for the server's
    /// answers at once; the next is refused at once (JSON-RPC -32002).
    pub max_requests_in_flight_per_session: usize,
    /// KiB of parameters one client session's requests in flight may carry.
    pub max_in_flight_kib_per_session: usize,
    /// KiB of messages one client stream may hold that its client has not
    /// read; past it the stream ends (Streamable HTTP: the client resumes
    /// from the session's replay log).
    pub stream_buffer_kib: usize,
    /// Messages a legacy SSE or WebSocket stream may hold unread.
    pub stream_buffer_messages: usize,
    /// Events, and KiB of them, a Streamable HTTP session keeps for a
    /// client that resumes a dropped stream (`Last-Event-ID`); the oldest
    /// go first.
    pub replay_log_events: usize,
    /// KiB of events a Streamable HTTP session keeps for replay.
    pub replay_log_kib: usize,
    /// Seconds a request's headers may take to arrive, and a keep-alive
    /// connection may wait idle for its next request, before it is closed.
    pub read_timeout_secs: u64,
    /// One template's own limits (`[limits.templates.NAME]`).
    pub templates: std::collections::BTreeMap<String, TemplateLimits>,
}

/// `[limits.templates.NAME]`: limits of one template's servers; unset
/// fields keep `[limits]`'s.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateLimits {
    /// Overrides `limits.request_timeout_secs`.
    pub request_timeout_secs: Option<u64>,
}

/// `$VAR/mcpod`, else `$HOME/UNDER_HOME/mcpod`: where an XDG base
/// directory puts mcpod's files, read through `env` (an empty value is unset).
pub fn xdg_dir(env: &dyn Fn(&str) -> Option<String>, var: &str, under_home: &str) -> Option<PathBuf> {
    let non_empty = |k: &str| env(k).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
    let base = non_empty(var).or_else(|| Some(non_empty("HOME")?.join(under_home)))?;
    Some(base.join("mcpod"))
}

impl LimitsSection {
    /// What bounds each client connection (`max_connections`, `read_timeout_secs`).
    pub fn connection_limits(&self) -> crate::listen::ConnectionLimits {
        crate::listen::ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: std::time::Duration::from_secs(self.read_timeout_secs),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_kib: 4096,
            max_sessions_per_server: 256,
            session_idle_secs: 1800,
            start_timeout_secs: 120,
            max_restarts: 5,
            restart_backoff_ms: 500,
            restart_max_backoff_ms: 30_000,
            local_memory_mib: None,
            local_cpu_secs: None,
            request_timeout_secs: 60,
            discover_timeout_secs: 10,
            shutdown_grace_secs: 10,
            max_connections: 1024,
            max_servers_per_principal: 8,
            max_sessions_per_principal: 32,
            min_available_memory_mib: 256,
            max_concurrent_launches: 0,
            max_waiting_launches: 64,
            read_timeout_secs: 30,
            max_requests_in_flight_per_session: 64,
            max_in_flight_kib_per_session: 16 * 1024,
            stream_buffer_kib: 16 * 1024,
            stream_buffer_messages: 1024,
            replay_log_events: 1024,
            replay_log_kib: 8 * 1024,
            templates: Default::default(),
        }
    }
}

/// `[kubernetes]`: how the Kubernetes runtime reaches the cluster and
/// shapes the pods it creates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSection {
    /// The namespace servers run in (KUBERNETES_NAMESPACE).
    pub namespace: String,
    /// A kubeconfig file; unset: in-cluster config, else KUBECONFIG or ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; unset: its current context.
    pub context: Option<String>,
    /// This host's name on its pods (label `mcpod.dev/instance`); two hosts
    /// sharing a namespace need different names.
    pub instance: String,
    /// How stdio servers are reached: `attach` to the container's own
    /// process (default) or `exec` a new one.
    pub stdio_bridge: StdioBridge,
    /// How network servers are reached: at the pod IP, through the API's
    /// port-forward, or `auto` (pod IP when the host runs in the cluster).
    pub reach: Reach,
    /// The non-root uid (and gid) server containers run as.
    pub run_as_user: i64,
    /// The pods' image pull policy.
    pub image_pull_policy: String,
    /// Whether each server pod gets a NetworkPolicy.
    pub network_policy: bool,
    /// Labels of the host's own pods: the only ingress a server pod's
    /// NetworkPolicy allows.
    pub host_pod_labels: std::collections::BTreeMap<String, String>,
    /// What a starting host does with pods of its instance that it cannot
    /// adopt: `delete` them or `keep` them.
    pub orphans: Orphans,
    /// Seconds a deleted pod gets to stop.
    pub termination_grace_secs: i64,
    /// Whether to serve the `McpServer` resources of the namespace.
    pub watch_resources: bool,
}

impl Default for KubernetesSection {
    fn default() -> Self {
        KubernetesSection {
            namespace: "mcpod".to_string(),
            kubeconfig: None,
            context: None,
            instance: "default".to_string(),
            stdio_bridge: StdioBridge::Attach,
            reach: Reach::Auto,
            run_as_user: 10001,
            image_pull_policy: "IfNotPresent".to_string(),
            network_policy: true,
            host_pod_labels: [("app.kubernetes.io/name".to_string(), "mcpod".to_string())].into(),
            orphans: Orphans::Delete,
            termination_grace_secs: 10,
            watch_resources: true,
        }
    }
}

/// How the host reaches a stdio server's stdin and stdout in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StdioBridge {
    /// Attach to the container's main process (the MCP server is PID 1).
    #[default]
    Attach,
    /// Exec the server's command in a container that idles.
    Exec,
}

/// How the host reaches a network server in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// The pod IP when running in a cluster, port-forward otherwise.
    #[default]
    Auto,
    /// The pod IP.
    PodIp,
    /// The API server's port-forward.
    PortForward,
}

/// What happens to pods of this host's instance that it cannot adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Orphans {
    /// Delete them.
    #[default]
    Delete,
    /// Leave them alone.
    Keep,
}

/// The four plugin kinds; each implements one WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// World `server-type`.
    ServerType,
    /// World `template-catalog`.
    TemplateCatalog,
    /// World `package-registry`.
    PackageRegistry,
    /// World `protocol-adapter`.
    ProtocolAdapter,
}

impl PluginKind {
    /// Every kind.
    pub const ALL: [PluginKind; 4] =
        [PluginKind::ServerType, PluginKind::TemplateCatalog, PluginKind::PackageRegistry, PluginKind::ProtocolAdapter];

    /// The kind's name as written in config (`server-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::ServerType => "server-type",
            PluginKind::TemplateCatalog => "template-catalog",
            PluginKind::PackageRegistry => "package-registry",
            PluginKind::ProtocolAdapter => "protocol-adapter",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<PluginKind> {
        PluginKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The name the host knows it by (unique).
    pub name: String,
    /// Which world it implements.
    pub kind: PluginKind,
    /// `builtin:NAME` or a path to a `.wasm` component (relative to the config file).
    pub source: String,
    /// Hosts the plugin may reach through the HTTP import (`registry.npmjs.org`,
    /// `127.0.0.1:8080`, `*.example.com`); empty means no HTTP at all. `None`
    /// keeps a built-in plugin's default.
    pub allow_hosts: Option<Vec<String>>,
    /// Per-call limits; unset fields keep the defaults.
    #[serde(default)]
    pub limits: LimitsEntry,
    /// A free table handed to the plugin through the `config` import.
    #[serde(default)]
    pub config: toml::Table,
    /// For template catalogs: a folder of MCP Registry `server.json` documents
    /// handed to the plugin as config key `documents`.
    pub documents_dir: Option<PathBuf>,
}

/// Per-call limits of one plugin; `None` keeps the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsEntry {
    /// Linear memory cap, in MiB (default 64).
    pub memory_mib: Option<u32>,
    /// CPU time the guest may use per call, in milliseconds (default 100).
    pub cpu_ms: Option<u64>,
    /// Wall-clock time per call including host calls such as HTTP, in milliseconds (default 30000).
    pub timeout_ms: Option<u64>,
    /// Cap on the size of one call's result, in KiB (default 4096).
    pub output_kib: Option<u32>,
    /// Cap on one HTTP response body, in KiB (default 8192).
    pub http_response_kib: Option<u32>,
    /// Timeout of one HTTP request, in milliseconds (default 10000).
    pub http_timeout_ms: Option<u64>,
    /// How long a cached HTTP response is fresh, in seconds (default 300; 0 disables caching).
    pub http_cache_secs: Option<u64>,
}

/// The environment variables the seed documented, and the keys they override.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("KUBERNETES_NAMESPACE", "kubernetes.namespace"),
    ("ARCHON_MCP_IMAGE", "plugins.archon.config.image"),
    ("MCP_SERVER_CPU_LIMIT", "resources.cpu_limit"),
    ("MCP_SERVER_MEMORY_LIMIT", "resources.memory_limit"),
    ("MCP_ALLOW_NPX", "policy.allow_npx"),
    ("MCP_ALLOW_UV", "policy.allow_uv"),
    ("MCP_ALLOW_CUSTOM_IMAGES", "policy.allow_custom_images"),
];

impl Config {
    /// Reads `path`, then applies the environment overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        let mut config = Config::parse(&text, path)?;
        config.apply_env(|var| std::env::var(var).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML `text`; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// Applies the seed's environment variables, read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let non_empty = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match get(var) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Err(ConfigError::Env {
                    var,
                    value: v,
                    reason: "it is set but empty; unset it or give a value".to_string(),
                }),
                Some(v) => Ok(Some(v.trim().to_string())),
            }
        };
        if let Some(ns) = non_empty("KUBERNETES_NAMESPACE")? {
            self.kubernetes.namespace = ns;
        }
        if let Some(cpu) = non_empty("MCP_SERVER_CPU_LIMIT")? {
            check_quantity("MCP_SERVER_CPU_LIMIT", &cpu)?;
            self.resources.cpu_limit = cpu;
        }
        if let Some(mem) = non_empty("MCP_SERVER_MEMORY_LIMIT")? {
            check_quantity("MCP_SERVER_MEMORY_LIMIT", &mem)?;
            self.resources.memory_limit = mem;
        }
        for (var, slot) in [
            ("MCP_ALLOW_NPX", &mut self.policy.allow_npx),
            ("MCP_ALLOW_UV", &mut self.policy.allow_uv),
            ("MCP_ALLOW_CUSTOM_IMAGES", &mut self.policy.allow_custom_images),
        ] {
            if let Some(v) = non_empty(var)? {
                *slot = parse_bool(var, &v)?;
            }
        }
        if let Some(issuer) = non_empty("MCPOD_OIDC_ISSUER")? {
            match &mut self.auth.oidc {
                Some(oidc) => oidc.issuer = issuer,
                None => self.auth.oidc = Some(OidcSection::for_issuer(issuer)),
            }
        }
        if let Some(audience) = non_empty("MCPOD_OIDC_AUDIENCE")? {
            let Some(oidc) = &mut self.auth.oidc else {
                return Err(ConfigError::Env {
                    var: "MCPOD_OIDC_AUDIENCE",
                    value: audience,
                    reason: "it needs an issuer; set MCPOD_OIDC_ISSUER or [auth.oidc] issuer".to_string(),
                });
            };
            oidc.audiences.extend(audience.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from));
        }
        if let Some(image) = non_empty("ARCHON_MCP_IMAGE")? {
            self.plugin_config_override("archon", "image", toml::Value::String(image));
        }
        Ok(())
    }

    /// Sets `key` in the `config` table of plugin `name`, adding an entry
    /// for the built-in plugin of that name if the file has none.
    fn plugin_config_override(&mut self, name: &str, key: &str, value: toml::Value) {
        if let Some(entry) = self.plugins.iter_mut().find(|p| p.name == name) {
            entry.config.insert(key.to_string(), value);
        } else {
            self.builtin_overrides.entry(name.to_string()).or_default().insert(key.to_string(), value);
        }
    }

    /// Checks rules that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(oidc) = &self.auth.oidc {
            oidc.validate()?;
        }
        for v in &self.virtuals {
            let problems = v.problems();
            if !problems.is_empty() {
                return Err(ConfigError::Invalid(format!("[[virtual]] {:?}: {}", v.name, problems.join("; "))));
            }
        }
        for (template, rules) in &self.expose.templates {
            let problems = rules.problems();
            if !problems.is_empty() {
                return Err(ConfigError::Invalid(format!("[expose.templates.{template}]: {}", problems.join("; "))));
            }
        }
        for (key, value) in [
            ("limits.max_connections", self.limits.max_connections as u64),
            ("limits.read_timeout_secs", self.limits.read_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        if self.audit.sink == AuditSink::File && self.audit.file.is_none() {
            return Err(ConfigError::Invalid(
                "[audit] sink = \"file\" needs `file = \"/path/to/audit.log\"`".to_string(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.plugins {
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(ConfigError::Invalid(format!(
                    "plugin name {:?} must be non-empty and use only letters, digits, `-` and `_`",
                    p.name
                )));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "two [[plugins]] entries are named `{}`; plugin names must be unique",
                    p.name
                )));
            }
        }
        let r = &self.resources;
        let mut quantities = vec![
            ("resources.cpu_request".to_string(), &r.cpu_request),
            ("resources.cpu_limit".to_string(), &r.cpu_limit),
            ("resources.memory_request".to_string(), &r.memory_request),
            ("resources.memory_limit".to_string(), &r.memory_limit),
        ];
        for (template, o) in &r.templates {
            for (key, q) in [
                ("cpu_request", &o.cpu_request),
                ("cpu_limit", &o.cpu_limit),
                ("memory_request", &o.memory_request),
                ("memory_limit", &o.memory_limit),
            ] {
                if let Some(q) = q {
                    quantities.push((format!("resources.templates.{template}.{key}"), q));
                }
            }
        }
        for (name, q) in quantities {
            if !is_quantity(q) {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {q:?} is not a Kubernetes quantity (like `500m`, `1`, `512Mi`)"
                )));
            }
        }
        Ok(())
    }
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Env { var, value: v.to_string(), reason: "expected true or false".to_string() }),
    }
}

fn check_quantity(var: &'static str, v: &str) -> Result<(), ConfigError> {
    if is_quantity(v) {
        Ok(())
    } else {
        Err(ConfigError::Env {
            var,
            value: v.to_string(),
            reason: "expected a Kubernetes quantity such as `500m`, `1`, `512Mi` or `1Gi`".to_string(),
        })
    }
}

/// True for Kubernetes resource quantities: a decimal number with an optional
/// SI or binary suffix (`250m`, `0.5`, `512Mi`, `1G`).
pub fn is_quantity(v: &str) -> bool {
    const SUFFIXES: [&str; 14] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", ""];
    SUFFIXES.iter().any(|s| {
        v.strip_suffix(s).is_some_and(|num| {
            !num.is_empty()
                && num.chars().all(|c| c.is_ascii_digit() || c == '.')
                && num.chars().filter(|c| *c == '.').count() <= 1
                && num.chars().any(|c| c.is_ascii_digit())
        })
    })
}

/// A map from plugin name to config values set through the environment.
pub type EnvPluginConfig = BTreeMap<String, toml::Table>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/mcpod/mcpod.toml"))
    }

    #[test]
    fn defaults_match_the_seed() {
        let c = parse("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:7460");
        assert_eq!(c.resources.cpu_request, "250m");
        assert_eq!(c.resources.cpu_limit, "500m");
        assert_eq!(c.resources.memory_request, "256Mi");
        assert_eq!(c.resources.memory_limit, "512Mi");
        assert!(c.policy.allow_npx && c.policy.allow_uv && !c.policy.allow_custom_images);
        assert_eq!(c.kubernetes.namespace, "mcpod");
        assert_eq!(c.base_dir, Path::new("/etc/mcpod"));
    }

    #[test]
    fn request_timeouts_default_to_a_minute_and_a_template_may_have_its_own() {
        let c = parse("").unwrap();
        assert_eq!((c.limits.request_timeout_secs, c.limits.shutdown_grace_secs), (60, 10));
        assert_eq!((c.limits.max_connections, c.limits.read_timeout_secs), (1024, 30));
        let err = parse("[limits]\nread_timeout_secs = 0\n").unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("limits.read_timeout_secs must be at least 1"), "{err}");
        let c = parse("[limits]\nrequest_timeout_secs = 5\n[limits.templates.github]\nrequest_timeout_secs = 300\n")
            .unwrap();
        assert_eq!(c.limits.request_timeout_secs, 5);
        assert_eq!(c.limits.templates["github"].request_timeout_secs, Some(300));
        let err = parse("[limits.templates.github]\nrequest_timeout = 3\n").unwrap_err().to_string();
        assert!(err.contains("request_timeout") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_key_and_line() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlistn = 3\n").unwrap_err().to_string();
        assert!(err.contains("/etc/mcpod/mcpod.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("listn"), "{err}");
        let err =
            parse("[[plugins]]\nname = \"x\"\nkind = \"server-typ\"\nsource = \"a.wasm\"\n").unwrap_err().to_string();
        assert!(err.contains("server-typ") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn env_overrides_their_keys() {
        let mut c = parse("[policy]\nallow_npx = true\n").unwrap();
        let env: BTreeMap<&str, &str> = [
            ("KUBERNETES_NAMESPACE", "archon"),
            ("MCP_SERVER_CPU_LIMIT", "750m"),
            ("MCP_SERVER_MEMORY_LIMIT", "1Gi"),
            ("MCP_ALLOW_NPX", "false"),
            ("MCP_ALLOW_UV", "0"),
            ("MCP_ALLOW_CUSTOM_IMAGES", "yes"),
            ("ARCHON_MCP_IMAGE", "registry.example/archon-mcp:1.2"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.kubernetes.namespace, "archon");
        assert_eq!(c.resources.cpu_limit, "750m");
        assert_eq!(c.resources.memory_limit, "1Gi");
        assert!(!c.policy.allow_npx && !c.policy.allow_uv && c.policy.allow_custom_images);
        assert_eq!(c.builtin_overrides["archon"]["image"].as_str(), Some("registry.example/archon-mcp:1.2"));
    }

    #[test]
    fn the_issuer_and_an_extra_audience_come_from_the_env_or_the_auth_table() {
        let mut c = Config::default();
        let env: BTreeMap<&str, &str> =
            [("MCPOD_OIDC_ISSUER", "https://idp.example"), ("MCPOD_OIDC_AUDIENCE", "mcpod, api://mcpod")].into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        let oidc = c.auth.oidc.as_ref().expect("an [auth.oidc] from the env");
        assert_eq!(
            (oidc.issuer.as_str(), oidc.audiences.clone()),
            ("https://idp.example", vec!["mcpod".to_string(), "api://mcpod".to_string()])
        );
        assert!(oidc.algorithms.iter().all(|a| !a.starts_with("HS")) && oidc.leeway_secs == 60);
        c.validate().unwrap();
        let mut c = parse("[auth.oidc]\nissuer = \"https://a.example\"\nadmin_groups = [\"ops\"]\n").unwrap();
        c.apply_env(|k| (k == "MCPOD_OIDC_ISSUER").then(|| "https://b.example".to_string())).unwrap();
        let oidc = c.auth.oidc.as_ref().unwrap();
        assert_eq!((oidc.issuer.as_str(), oidc.admin_groups.clone()), ("https://b.example", vec!["ops".to_string()]));
        let err = Config::default()
            .apply_env(|k| (k == "MCPOD_OIDC_AUDIENCE").then(|| "x".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MCPOD_OIDC_ISSUER"), "{err}");
    }

    #[test]
    fn an_http_issuer_off_loopback_and_symmetric_or_none_algorithms_are_refused() {
        let check = |toml: &str| parse(toml).unwrap().validate().map_err(|e| e.to_string());
        check("[auth.oidc]\nissuer = \"http://127.0.0.1:9000\"\n").unwrap();
        check("[auth.oidc]\nissuer = \"http://localhost:9000/realms/x\"\n").unwrap();
        let err = check("[auth.oidc]\nissuer = \"http://idp.example\"\n").unwrap_err();
        assert!(err.contains("non-loopback") && err.contains("https://"), "{err}");
        for alg in ["none", "HS256"] {
            let err =
                check(&format!("[auth.oidc]\nissuer = \"https://i.example\"\nalgorithms = [\"{alg}\"]\n")).unwrap_err();
            assert!(err.contains(alg) && err.contains("never"), "{err}");
        }
        let err = parse("[auth.oidc]\nissuer = \"https://i.example\"\nissuers = []\n").unwrap_err().to_string();
        assert!(err.contains("issuers"), "unknown keys are refused: {err}");
        let c = parse("[auth.kubernetes]\n").unwrap();
        let k = c.auth.kubernetes.expect("the table switches it on");
        assert_eq!((k.audiences, k.cache_secs), (vec!["mcpod".to_string()], 10));
    }

    #[test]
    fn archon_image_goes_to_a_listed_archon_entry() {
        let mut c =
            parse("[[plugins]]\nname = \"archon\"\nkind = \"server-type\"\nsource = \"builtin:archon\"\n").unwrap();
        c.apply_env(|k| (k == "ARCHON_MCP_IMAGE").then(|| "a:1".to_string())).unwrap();
        assert_eq!(c.plugins[0].config["image"].as_str(), Some("a:1"));
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let mut c = Config::default();
        let err = c.apply_env(|k| (k == "MCP_ALLOW_UV").then(|| "maybe".to_string())).unwrap_err();
        assert!(err.to_string().contains("MCP_ALLOW_UV") && err.to_string().contains("true or false"), "{err}");
        let err = c.apply_env(|k| (k == "MCP_SERVER_MEMORY_LIMIT").then(|| "lots".to_string())).unwrap_err();
        assert!(err.to_string().contains("MCP_SERVER_MEMORY_LIMIT"), "{err}");
        let err = c.apply_env(|k| (k == "KUBERNETES_NAMESPACE").then(|| " ".to_string())).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn duplicate_plugin_names_and_bad_quantities_are_refused() {
        let two = "[[plugins]]\nname = \"a\"\nkind = \"server-type\"\nsource = \"x.wasm\"\n";
        let c = parse(&format!("{two}{two}")).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("named `a`"));
        let c = parse("[resources]\ncpu_limit = \"half\"\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("resources.cpu_limit"));
        let c = parse("[resources.templates.playwright]\nmemory_limit = \"lots\"\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("resources.templates.playwright.memory_limit"));
        let c = parse("[resources.templates.playwright]\nmemory_limit = \"2Gi\"\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.resources.templates["playwright"].memory_limit.as_deref(), Some("2Gi"));
    }

    #[test]
    fn quantities() {
        for ok in ["250m", "1", "0.5", "512Mi", "1Gi", "2G", "100k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "12Qi", "-1", "1 Gi", "Mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn templates_exposure_rules_are_read_and_checked() {
        let c =
            parse("[expose.templates.github.tools]\ndeny = [\"delete_*\"]\nrename = { search = \"find\" }\n").unwrap();
        assert_eq!(c.expose.templates["github"].tools.deny, ["delete_*"]);
        c.validate().unwrap();
        let bad = parse("[expose.templates.files.resources]\nrename = { \"file:///a\" = \"b\" }\n").unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("[expose.templates.files]") && err.contains("cannot be renamed"), "{err}");
        assert!(parse("[expose.templates.x.tools]\nhide = [\"a\"]\n").is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_shipped_configs_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        for name in ["mcpod.toml", "cluster.toml"] {
            let path = root.join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let c = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{name}: {e}"));
            c.validate().unwrap();
        }
    }
}
