//! Which environment variables a server's env may hold. A caller names
//! variables from an allow-list (the template's declared inputs and
//! `policy.env_allow`), never a deny-list; the families below belong to
//! the operator whatever the allow-list says — they decide where packages
//! come from, how programs load, where files go and whom the network
//! trusts — and neither a caller nor a plugin's launch sets them, except
//! the few inert settings plugins use to quiet their tools.

use super::glob_match;

/// The operator's families, compared case-insensitively.
const RESERVED: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TMP",
    "TEMP",
    "PWD",
    "XDG_*",
    "PATH",
    "PYTHON*",
    "UV_*",
    "PIP_*",
    "PIPX_*",
    "VIRTUAL_ENV",
    "CONDA_*",
    "NPM_*",
    "YARN_*",
    "PNPM_*",
    "BUN_*",
    "COREPACK_*",
    "NODE_*",
    "DENO_*",
    "*_PROXY",
    "SSL_*",
    "*_CA_*",
    "*_CA",
    "CURL_*",
    "REQUESTS_*",
    "GIT_*",
    "LD_*",
    "DYLD_*",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "PERL5*",
    "PERLLIB",
    "RUBY*",
    "GEM_*",
    "BUNDLE_*",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "CARGO_*",
    "RUSTUP_*",
    "MCPOD_*",
    "KUBECONFIG",
    "KUBERNETES_*",
    "DOCKER_*",
];

/// Reserved names a plugin's launch may set, with any value: they quiet a
/// tool's output and change nothing about what code runs or where from.
const INERT: &[&str] = &[
    "NPM_CONFIG_UPDATE_NOTIFIER",
    "NPM_CONFIG_FUND",
    "NPM_CONFIG_AUDIT",
    "NPM_CONFIG_LOGLEVEL",
    "NPM_CONFIG_YES",
    "NODE_ENV",
    "NODE_NO_WARNINGS",
    "PYTHONUNBUFFERED",
    "PYTHONIOENCODING",
    "PYTHONDONTWRITEBYTECODE",
    "UV_NO_PROGRESS",
];

/// The reserved family `name` belongs to, if any (`npm_config_registry` → `NPM_*`).
pub fn reserved_family(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    RESERVED.iter().copied().find(|p| glob_match(p, &upper))
}

/// True if a plugin's launch may set reserved `name`.
pub fn inert(name: &str) -> bool {
    INERT.contains(&name.to_ascii_uppercase().as_str())
}

/// Why a caller may not set `name`, or `None` if they may: it must not be
/// reserved, and must be one of the template's `declared` inputs or match
/// one of the operator's `allowed` globs.
pub fn refusal(name: &str, declared: &[String], allowed: &[String]) -> Option<String> {
    if let Some(family) = reserved_family(name) {
        return Some(format!(
            "env `{name}` is the operator's (reserved family `{family}`: it decides where packages come from, how programs \
             load, where files go or whom the network trusts); the operator sets it on the host, not per server"
        ));
    }
    if declared.iter().any(|d| d == name) || allowed.iter().any(|p| glob_match(p, name)) {
        return None;
    }
    let declared = if declared.is_empty() { "none".to_string() } else { declared.join(", ") };
    Some(format!(
        "env `{name}` is not one this server takes: the template declares {declared}, and policy.env_allow does not \
         name it; ask the operator to add it to policy.env_allow"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_operators_families_are_refused_whatever_the_allow_list_says() {
        for name in [
            "HOME",
            "home",
            "XDG_CONFIG_HOME",
            "PYTHONPATH",
            "UV_INDEX_URL",
            "PIP_INDEX_URL",
            "npm_config_registry",
            "NPM_CONFIG_USERCONFIG",
            "NODE_OPTIONS",
            "HTTPS_PROXY",
            "no_proxy",
            "SSL_CERT_FILE",
            "NODE_EXTRA_CA_CERTS",
            "REQUESTS_CA_BUNDLE",
            "LD_PRELOAD",
            "GIT_SSH_COMMAND",
            "BASH_ENV",
        ] {
            let why = refusal(name, &s(&[name]), &s(&["*"])).unwrap_or_default();
            assert!(why.contains("the operator's") && why.contains(name), "{name}: {why}");
        }
    }

    #[test]
    fn a_caller_names_only_declared_or_operator_allowed_variables() {
        assert_eq!(refusal("BRAVE_API_KEY", &s(&["BRAVE_API_KEY"]), &[]), None);
        assert_eq!(refusal("SERVICE_API_KEY", &[], &s(&["*_API_KEY"])), None);
        let why = refusal("MODE", &s(&["BRAVE_API_KEY"]), &s(&["*_API_KEY"])).unwrap();
        assert!(why.contains("declares BRAVE_API_KEY") && why.contains("policy.env_allow"), "{why}");
        assert!(refusal("MODE", &[], &[]).unwrap().contains("declares none"));
    }

    #[test]
    fn plugins_may_set_only_the_inert_reserved_names() {
        assert!(inert("npm_config_update_notifier"));
        assert!(!inert("npm_config_registry"));
        assert!(reserved_family("npm_config_registry").is_some());
        assert_eq!(reserved_family("GITHUB_PERSONAL_ACCESS_TOKEN"), None);
    }
}
