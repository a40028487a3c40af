//! The named static tokens (`mcpod tokens create NAME --role user|admin`)
//! that prove a principal on a laptop and for scripts.
//! A token file keeps only each token's SHA-256, never the token: the
//! tokens are 256 random bits, so a fast hash is as safe as a slow one and
//! costs one hash per request. The host re-reads the file when it changes,
//! so a token created or revoked takes effect without a restart.

use super::{Principal, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// The env var naming the static token file (wins over `[auth] tokens_file`).
pub const TOKENS_FILE_ENV: &str = "MCPOD_TOKENS_FILE";

/// One named token as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The principal's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

/// The token file: `[[token]]` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// The entries, in the order they were created.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be read or written.
    #[error(
        "token file {path}: {source}; check the path ({TOKENS_FILE_ENV} or [auth] tokens_file) and its permissions"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It is not a token file.
    #[error("token file {path} is not valid: {reason}; fix or remove the entry it names")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A request the file cannot satisfy (a name taken, a name unknown).
    #[error("{0}")]
    Refused(String),
}

/// Hex SHA-256 of `token`.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token: `mcpod_` and 256 random bits, base64url.
pub fn new_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!("mcpod_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

impl TokenFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn read(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
            Err(source) => return Err(TokenFileError::Io { path: path.to_path_buf(), source }),
        };
        let file: TokenFile = toml::from_str(&text)
            .map_err(|e| TokenFileError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
        let mut seen = std::collections::HashSet::new();
        for t in &file.tokens {
            let reason = if !valid_name(&t.name) {
                Some(format!("token name {:?} must be 1-64 letters, digits, `-`, `_`, `.` or `@`", t.name))
            } else if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                Some(format!("token `{}` has no valid sha256 (64 hex digits)", t.name))
            } else if !seen.insert(t.name.as_str()) {
                Some(format!("two tokens are named `{}`", t.name))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(TokenFileError::Invalid { path: path.to_path_buf(), reason });
            }
        }
        Ok(file)
    }

    /// Writes the file to `path` (mode 0600, through a temporary file so a
    /// reader never sees half of it).
    pub fn write(&self, path: &Path) -> Result<(), TokenFileError> {
        let io = |source| TokenFileError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = toml::to_string(self)
            .map_err(|e| TokenFileError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(b"# mcpod's named tokens: only their SHA-256 is kept. `mcpod tokens create|list|revoke`.\n")
                .and_then(|()| f.write_all(text.as_bytes()))
                .map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Adds a token for `name` with `role`; returns the token (shown once).
    pub fn create(&mut self, name: &str, role: Role) -> Result<String, TokenFileError> {
        if !valid_name(name) {
            return Err(TokenFileError::Refused(format!(
                "token name {name:?} must be 1-64 letters, digits, `-`, `_`, `.` or `@`"
            )));
        }
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(TokenFileError::Refused(format!(
                "a token named `{name}` exists; revoke it first (`mcpod tokens revoke {name}`) or pick another name"
            )));
        }
        let token = new_token();
        self.tokens.push(TokenEntry { name: name.to_string(), role, sha256: token_hash(&token) });
        Ok(token)
    }

    /// Removes the token of `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), TokenFileError> {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.name != name);
        if self.tokens.len() == before {
            return Err(TokenFileError::Refused(format!("no token is named `{name}`; `mcpod tokens list` shows them")));
        }
        Ok(())
    }
}

/// The file that keeps the named tokens: `MCPOD_TOKENS_FILE`, else
/// `configured` (`[auth] tokens_file`), else `tokens.toml` beside the
/// generated admin token in the user's config directory.
pub fn tokens_file(configured: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env(TOKENS_FILE_ENV).filter(|v| !v.trim().is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    crate::auth::default_token_file(env).map(|p| p.with_file_name("tokens.toml"))
}

/// The named tokens a running host accepts, by hash, re-read when the file
/// changes.
pub struct TokenTable {
    path: Option<PathBuf>,
    state: RwLock<Loaded>,
}

#[derive(Default)]
struct Loaded {
    modified: Option<SystemTime>,
    by_hash: HashMap<String, Arc<Principal>>,
}

impl TokenTable {
    /// The table of `path` (none: no named tokens). A file that cannot be
    /// used is an error at start, so that a typo never opens nothing.
    pub fn load(path: Option<PathBuf>) -> Result<Arc<TokenTable>, TokenFileError> {
        let table = TokenTable { path, state: RwLock::new(Loaded::default()) };
        if let Some(p) = &table.path {
            let file = TokenFile::read(p)?;
            table.install(&file, crate::reread::modified(p));
        }
        Ok(Arc::new(table))
    }

    fn install(&self, file: &TokenFile, modified: Option<SystemTime>) {
        let by_hash = file
            .tokens
            .iter()
            .map(|t| (t.sha256.to_ascii_lowercase(), Arc::new(Principal::new(&t.name, "static", t.role))))
            .collect();
        if let Ok(mut state) = self.state.write() {
            *state = Loaded { modified, by_hash };
        }
    }

    /// The principal `token` proves, if any (shared: one per token, not one per request).
    pub fn principal(&self, token: &str) -> Option<Arc<Principal>> {
        let state = self.state.read().ok()?;
        if state.by_hash.is_empty() {
            return None;
        }
        state.by_hash.get(&token_hash(token)).cloned()
    }

    /// Re-reads the file if it changed since it was read. A file that no
    /// longer parses is logged and the tokens in force stay.
    pub fn refresh(&self) {
        let Some(path) = &self.path else { return };
        let now = crate::reread::modified(path);
        if self.state.read().map(|s| s.modified == now).unwrap_or(true) {
            return;
        }
        match TokenFile::read(path) {
            Ok(file) => {
                tracing::info!(path = %path.display(), tokens = file.tokens.len(), "named tokens reloaded");
                self.install(&file, now);
            }
            Err(e) => tracing::error!("{e}; the tokens read before stay in force"),
        }
    }

    /// Re-reads the file whenever it changes, checking every `every`
    /// (a stat of one file), until the table is dropped.
    pub fn refresh_every(self: &Arc<Self>, every: std::time::Duration) {
        if self.path.is_none() {
            return;
        }
        crate::reread::every(self, every, Self::refresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_is_kept_only_as_its_hash_and_proves_its_name_and_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let mut file = TokenFile::read(&path).unwrap();
        let token = file.create("alice", Role::User).unwrap();
        file.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "{text}");
        assert!(text.contains(&token_hash(&token)), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let table = TokenTable::load(Some(path)).unwrap();
        let p = table.principal(&token).expect("the token proves alice");
        assert_eq!((p.name.as_str(), p.role, p.issuer.as_str()), ("alice", Role::User, "static"));
        assert_eq!(table.principal("mcpod_guess"), None);
        assert_eq!(table.principal(""), None);
    }

    #[test]
    fn names_are_unique_and_checked_and_revoking_an_unknown_name_says_so() {
        let mut file = TokenFile::default();
        file.create("ci-bot", Role::Admin).unwrap();
        let again = file.create("ci-bot", Role::User).unwrap_err().to_string();
        assert!(again.contains("revoke it first"), "{again}");
        assert!(file.create("two words", Role::User).unwrap_err().to_string().contains("1-64 letters"));
        assert!(file.revoke("nobody").unwrap_err().to_string().contains("mcpod tokens list"));
        file.revoke("ci-bot").unwrap();
        assert!(file.tokens.is_empty());
    }

    #[test]
    fn a_broken_file_is_refused_at_load_with_the_reason_and_kept_out_on_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, "[[token]]\nname = \"x\"\nrole = \"root\"\nsha256 = \"00\"\n").unwrap();
        let err = TokenTable::load(Some(path.clone())).err().expect("refused").to_string();
        assert!(err.contains("root") || err.contains("role"), "{err}");
        let mut file = TokenFile::default();
        let token = file.create("bob", Role::User).unwrap();
        file.write(&path).unwrap();
        let table = TokenTable::load(Some(path.clone())).unwrap();
        assert!(table.principal(&token).is_some());
        std::fs::write(&path, "not toml [").unwrap();
        // Make sure the change is seen even on a coarse-mtime filesystem.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        table.refresh();
        assert!(table.principal(&token).is_some(), "the tokens in force stay when the file breaks");
    }

    #[test]
    fn a_revoked_token_stops_working_on_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let mut file = TokenFile::default();
        let token = file.create("carol", Role::User).unwrap();
        file.write(&path).unwrap();
        let table = TokenTable::load(Some(path.clone())).unwrap();
        assert!(table.principal(&token).is_some());
        file.revoke("carol").unwrap();
        file.write(&path).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        table.refresh();
        assert_eq!(table.principal(&token), None);
    }
}
