//! The compile cache: plugins are compiled once and the machine code kept on
//! disk, keyed by the component's content hash and the engine's settings, so
//! that a restart loads them in well under a millisecond instead of compiling.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled plugins are kept; `None` disables caching.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// What a load did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled, and stored the result.
    Compiled,
    /// Compiled; caching is off or the store failed.
    Uncached,
}

/// Feeds `Hash` input into SHA-256, so that the engine's compatibility hash
/// can join the content hash in one stable key.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// A cache in `dir`, or none.
    pub fn new(dir: Option<PathBuf>) -> Self {
        CompileCache { dir }
    }

    /// The default directory: `$XDG_CACHE_HOME/mcpod/plugins` or `~/.cache/mcpod/plugins`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("mcpod").join("plugins"))
    }

    /// The cache key of `wasm` for `engine`.
    pub fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.0.update(b"\0component\0");
        hasher.0.update(wasm);
        let digest = hasher.0.finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The component for `wasm`, from the cache if it is there.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Uncached));
        };
        let path = dir.join(format!("{}.cwasm", Self::key(engine, wasm)));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached plugin");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine.precompile_component(wasm)?;
        // SAFETY: these bytes were produced by `precompile_component` on this
        // very engine a moment ago.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        let outcome = match store(dir, &path, &compiled) {
            Ok(()) => CacheOutcome::Compiled,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write the plugin compile cache; plugins will be compiled at every start");
                CacheOutcome::Uncached
            }
        };
        Ok((component, outcome))
    }
}

/// Reads a cached artifact into memory (not mmap: a file truncated under a
/// running host must not fault it) and loads it.
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: the cache directory is created by mcpod with mode 0700 and
    // files enter it only by atomic rename after `precompile_component`; the
    // key includes the engine's compatibility hash, and wasmtime checks the
    // artifact's header against the engine on load.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, &bytes)
    }
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    // Unique per write: two hosts in one process (or two loads at once)
    // storing the same artifact must never rename each other's half-file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
