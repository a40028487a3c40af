//! The admin token: where it comes from (`MCPOD_API_TOKEN`, the file
//! `server.api_token_file`, or one mcpod generates on first start in the
//! user's config directory, as Jupyter does), and the one way to run
//! without it (`--insecure-no-auth`, loopback only). The environment is
//! read through an injectable function, so the rules are tested without
//! touching the process's own.

use crate::config::Config;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The env var holding the admin token (wins over every file).
pub const TOKEN_ENV: &str = "MCPOD_API_TOKEN";

/// Where the admin token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `MCPOD_API_TOKEN`.
    Env,
    /// `server.api_token_file`.
    File(PathBuf),
    /// The file mcpod keeps in the user's config directory; `created` on
    /// the start that wrote it.
    Generated {
        /// The token file.
        path: PathBuf,
        /// True if this start created it.
        created: bool,
    },
    /// `server.insecure_no_auth`: no token at all (loopback only).
    Disabled,
}

/// The admin token requests must carry, and where it came from.
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// The token; `None` only when auth is disabled.
    pub token: Option<String>,
    /// Where it came from.
    pub source: TokenSource,
}

/// Why no admin token could be settled on.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A setting rules the start out (a non-loopback address without a token).
    #[error("{0}")]
    Refused(String),
    /// A token file could not be read or written.
    #[error("{what} {path}: {source}; {hint}")]
    File {
        /// Which file it is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A token file is unusable as it is.
    #[error("{0}")]
    Invalid(String),
}

/// The file mcpod keeps its generated admin token in:
/// `$XDG_CONFIG_HOME/mcpod/token`, else `~/.config/mcpod/token`
/// (`~/Library/Application Support/mcpod/token` on macOS).
pub fn default_token_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let under_home = if cfg!(target_os = "macos") { "Library/Application Support" } else { ".config" };
    Some(crate::config::xdg_dir(env, "XDG_CONFIG_HOME", under_home)?.join("token"))
}

/// Settles the admin token for `config`, reading the environment through
/// `env`. On a loopback address with no token configured and auth not
/// disabled, generates one (mode 0600) in [`default_token_file`].
pub fn admin_token(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<AdminToken, AuthError> {
    if let Some(t) = env(TOKEN_ENV).map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        return Ok(AdminToken { token: Some(t), source: TokenSource::Env });
    }
    if let Some(path) = &config.server.api_token_file {
        let token = read_token(path, "server.api_token_file")?;
        return Ok(AdminToken { token: Some(token), source: TokenSource::File(path.clone()) });
    }
    let listen = config.server.listen;
    if !listen.ip().is_loopback() {
        return Err(AuthError::Refused(format!(
            "refusing to listen on {listen} without an API token: set MCPOD_API_TOKEN or server.api_token_file, or listen on 127.0.0.1"
        )));
    }
    if config.server.insecure_no_auth {
        return Ok(AdminToken { token: None, source: TokenSource::Disabled });
    }
    let path = default_token_file(env).ok_or_else(|| {
        AuthError::Refused(
            "no config directory for the generated admin token (neither XDG_CONFIG_HOME nor HOME is set): set MCPOD_API_TOKEN or server.api_token_file, or pass --insecure-no-auth".to_string(),
        )
    })?;
    if path.exists() {
        let token = read_token(&path, "the admin token file")?;
        return Ok(AdminToken { token: Some(token), source: TokenSource::Generated { path, created: false } });
    }
    let token = format!("mcpod_{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    write_private(&path, &token)?;
    Ok(AdminToken { token: Some(token), source: TokenSource::Generated { path, created: true } })
}

/// The token the CLI sends: `MCPOD_API_TOKEN`, else the generated file if
/// there is one.
pub fn cli_token(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, AuthError> {
    if let Some(t) = env(TOKEN_ENV).map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        return Ok(Some(t));
    }
    match default_token_file(env).filter(|p| p.exists()) {
        Some(path) => read_token(&path, "the admin token file").map(Some),
        None => Ok(None),
    }
}

/// Reads a token file: trimmed, non-empty, and (for files mcpod or the
/// operator keep on a multi-user machine) readable by its owner only.
fn read_token(path: &Path, what: &'static str) -> Result<String, AuthError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| AuthError::File {
        what,
        path: path.to_path_buf(),
        source,
        hint: "fix the file or point MCPOD_API_TOKEN at a token",
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.permissions().mode() & 0o077 != 0 && what != "server.api_token_file" {
        return Err(AuthError::Invalid(format!(
            "{what} {} can be read by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    let token = std::fs::read_to_string(path).map_err(io)?.trim().to_string();
    if token.is_empty() {
        return Err(AuthError::Invalid(format!("{what} {} is empty; put a token in it or delete it", path.display())));
    }
    Ok(token)
}

/// Writes `token` to a new file at `path` that only its owner can read,
/// creating its directory (mode 0700) if needed.
fn write_private(path: &Path, token: &str) -> Result<(), AuthError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |source| AuthError::File {
        what: "cannot create the admin token file",
        path: path.to_path_buf(),
        source,
        hint: "set XDG_CONFIG_HOME to a writable directory, or set MCPOD_API_TOKEN",
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    file.write_all(format!("{token}\n").as_bytes()).map_err(io)?;
    Ok(())
}

/// True if `authorization` carries `token` as a bearer token (the scheme
/// is case-insensitive, RFC 7235); compared in constant time.
pub fn bearer_matches(authorization: Option<&str>, token: &str) -> bool {
    bearer(authorization).is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive), if that is what it holds.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.split_once(' ')?;
    Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// True if `a` and `b` are the same bytes, compared in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn loopback() -> Config {
        Config::default()
    }

    #[test]
    fn a_first_start_generates_a_private_token_and_the_next_start_and_the_cli_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = env(&[("XDG_CONFIG_HOME", dir.path().to_str().unwrap()), ("HOME", "/nonexistent")]);
        let first = admin_token(&loopback(), &e).unwrap();
        let path = dir.path().join("mcpod/token");
        assert_eq!(first.source, TokenSource::Generated { path: path.clone(), created: true });
        let token = first.token.unwrap();
        assert!(token.starts_with("mcpod_") && token.len() == 6 + 64, "{token}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let second = admin_token(&loopback(), &e).unwrap();
        assert_eq!(second.source, TokenSource::Generated { path, created: false });
        assert_eq!(second.token.as_deref(), Some(token.as_str()));
        assert_eq!(cli_token(&e).unwrap().as_deref(), Some(token.as_str()));
    }

    #[test]
    fn home_is_the_fallback_and_no_directory_at_all_is_a_clear_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let e = env(&[("HOME", dir.path().to_str().unwrap()), ("XDG_CONFIG_HOME", "")]);
        let t = admin_token(&loopback(), &e).unwrap();
        let expected =
            if cfg!(target_os = "macos") { "Library/Application Support/mcpod/token" } else { ".config/mcpod/token" };
        assert_eq!(t.source, TokenSource::Generated { path: dir.path().join(expected), created: true });
        let err = admin_token(&loopback(), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("MCPOD_API_TOKEN") && err.contains("--insecure-no-auth"), "{err}");
    }

    #[test]
    fn the_environment_and_the_configured_file_win_over_the_generated_token() {
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().to_str().unwrap();
        let t = admin_token(&loopback(), &env(&[(TOKEN_ENV, " tok-1 "), ("XDG_CONFIG_HOME", xdg)])).unwrap();
        assert_eq!((t.token.as_deref(), t.source), (Some("tok-1"), TokenSource::Env));
        let file = dir.path().join("configured");
        std::fs::write(&file, "tok-2\n").unwrap();
        let mut config = loopback();
        config.server.api_token_file = Some(file.clone());
        let t = admin_token(&config, &env(&[("XDG_CONFIG_HOME", xdg)])).unwrap();
        assert_eq!((t.token.as_deref(), t.source), (Some("tok-2"), TokenSource::File(file)));
        assert!(!dir.path().join("mcpod").exists(), "nothing generated when a token is configured");
    }

    #[test]
    fn no_auth_needs_the_explicit_switch_and_a_loopback_address() {
        let mut config = loopback();
        config.server.insecure_no_auth = true;
        let t = admin_token(&config, &env(&[])).unwrap();
        assert_eq!((t.token, t.source), (None, TokenSource::Disabled));
        config.server.listen = "0.0.0.0:7460".parse().unwrap();
        let err = admin_token(&config, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("refusing to listen on 0.0.0.0:7460 without an API token"), "{err}");
        config.server.insecure_no_auth = false;
        let dir = tempfile::tempdir().unwrap();
        let err = admin_token(&config, &env(&[("XDG_CONFIG_HOME", dir.path().to_str().unwrap())])).unwrap_err();
        assert!(err.to_string().contains("refusing to listen"), "no generated token beyond loopback: {err}");
    }

    #[test]
    fn a_token_file_others_can_read_or_an_empty_one_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = env(&[("XDG_CONFIG_HOME", dir.path().to_str().unwrap())]);
        let path = dir.path().join("mcpod/token");
        admin_token(&loopback(), &e).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = admin_token(&loopback(), &e).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && err.contains("644"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "\n").unwrap();
        let err = admin_token(&loopback(), &e).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        assert!(bearer_matches(Some("Bearer abc"), "abc"));
        assert!(bearer_matches(Some("bearer abc"), "abc"));
        assert!(bearer_matches(Some("BEARER abc"), "abc"));
        assert!(!bearer_matches(Some("Bearer abcd"), "abc"));
        assert!(!bearer_matches(Some("Basic abc"), "abc"));
        assert!(!bearer_matches(Some("abc"), "abc"));
        assert!(!bearer_matches(None, "abc"));
    }
}
