//! PyPI metadata: pick a release from the JSON API document, pin every file
//! of it by sha256 for `uv pip install --require-hashes`, check downloaded
//! bytes, and report which files PyPI lists PEP 740 provenance for.
//!
//! Nothing here touches the network: callers fetch
//! `https://pypi.org/pypi/<name>/json` (and, for provenance,
//! `https://pypi.org/simple/<name>/` with
//! `Accept: application/vnd.pypi.simple.v1+json`) and hand the JSON in.
//!
//! Specs are a careful subset of PEP 440: empty or `latest` (PyPI's
//! `info.version`), a bare version (same as `==`), and comma-separated clauses
//! with `==`, `!=` (both also with a trailing `.*`), `<`, `<=`, `>`, `>=`, `~=`.
//! Arbitrary equality (`===`), local versions (`+local`), environment markers
//! and extras are refused with [`PypiError::UnsupportedSpec`]. Pre-releases
//! are only chosen when a clause names one or the project has nothing else
//! (uv's default). Yanked files are dropped and fully yanked releases are
//! never chosen, not even by an exact pin (PEP 592 allows refusing them).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Everything that can go wrong resolving or verifying a PyPI project.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PypiError {
    /// The document is PyPI's "not found" answer or has no `info` object.
    #[error(
        "PyPI project is not available ({detail}); check the project name, and that the document came from https://pypi.org/pypi/<name>/json"
    )]
    UnknownProject {
        /// What the document said instead.
        detail: String,
    },
    /// The JSON API document has no `releases` map to choose from.
    #[error(
        "the PyPI document for {name} has no `releases` map; fetch the project endpoint https://pypi.org/pypi/{name}/json, not a per-version one"
    )]
    MissingReleases {
        /// Normalized project name.
        name: String,
    },
    /// The spec does not parse.
    #[error(
        "`{spec}` is not a valid version specifier ({reason}); use e.g. `latest`, `==1.2.3`, `>=1.2,<2` or `~=1.2`"
    )]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The spec uses a PEP 440 feature this resolver does not implement.
    #[error(
        "`{spec}` uses {feature}, which this resolver does not support; use `==`, `!=`, `<`, `<=`, `>`, `>=` or `~=` with public release versions"
    )]
    UnsupportedSpec {
        /// The spec as given.
        spec: String,
        /// The unsupported feature.
        feature: String,
    },
    /// No release satisfies the spec.
    #[error("no release of {name} matches `{spec}`; nearby versions: {nearby}; pick one of those or widen the spec")]
    NoMatchingVersion {
        /// Normalized project name.
        name: String,
        /// The spec as given.
        spec: String,
        /// Release versions close to what was asked for.
        nearby: String,
    },
    /// Only yanked releases satisfy the spec.
    #[error("{name}=={version} was yanked ({reason}) and no non-yanked release matches; pin a different version")]
    Yanked {
        /// Normalized project name.
        name: String,
        /// The highest matching yanked version.
        version: String,
        /// The yank reason PyPI gives, or `no reason given`.
        reason: String,
    },
    /// The matching release has no files at all.
    #[error("{name}=={version} has no uploaded files; pin a different version")]
    NoFiles {
        /// Normalized project name.
        name: String,
        /// The release version.
        version: String,
    },
    /// The document is structurally wrong.
    #[error("the PyPI document is malformed ({reason}); re-fetch it from PyPI")]
    MalformedDocument {
        /// What is wrong.
        reason: String,
    },
    /// A sha256 digest is not 64 hex digits.
    #[error("`{value}` is not a sha256 hex digest (64 hex digits); pass the `digests.sha256` value from PyPI")]
    BadDigest {
        /// The digest as given.
        value: String,
    },
    /// Downloaded bytes do not hash to the expected digest.
    #[error(
        "file hash mismatch: expected sha256:{expected} but the bytes hash to sha256:{actual}; the download is corrupt or tampered with, fetch it again and do not install it"
    )]
    HashMismatch {
        /// Expected sha256 (lowercase hex).
        expected: String,
        /// Actual sha256 (lowercase hex).
        actual: String,
    },
}

/// Whether a distribution file is a wheel, a source distribution, or something older.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A built `.whl`.
    Wheel,
    /// A source distribution (`.tar.gz` / `.zip`).
    Sdist,
    /// Anything else (eggs, `.exe` installers, …).
    Other,
}

/// One non-yanked file of the chosen release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistFile {
    /// File name, e.g. `mcp_server_time-2026.10.19-py3-none-any.whl`.
    pub filename: String,
    /// Absolute download URL.
    pub url: String,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// Wheel, sdist or other.
    pub kind: FileKind,
    /// The file's `requires_python`, if any.
    pub requires_python: Option<String>,
}

/// A release picked from a PyPI project document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// PEP 503 normalized project name.
    pub name: String,
    /// Version string exactly as PyPI lists it.
    pub version: String,
    /// Every non-yanked file of that release.
    pub files: Vec<DistFile>,
}

/// A file that PyPI's simple API lists a PEP 740 provenance object for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceFile {
    /// File name.
    pub filename: String,
    /// URL of the provenance object (`https://pypi.org/integrity/…/provenance`).
    pub provenance_url: String,
}

/// PEP 503 name normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    crate::policy::normalize_pypi(name.trim())
}

/// Whether a project name is valid per PEP 508 (so it is safe to write into a requirements file).
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Picks the release of a PyPI JSON API project document that `spec` selects.
pub fn resolve(project_json: &Value, spec: &str) -> Result<Resolved, PypiError> {
    resolve_from(project_json, spec, "https://pypi.org")
}

/// [`resolve`] for a document served by the index at `base` (a mirror),
/// against which relative file URLs are resolved.
pub fn resolve_from(project_json: &Value, spec: &str, base: &str) -> Result<Resolved, PypiError> {
    let Some(info) = project_json.get("info").and_then(Value::as_object) else {
        let detail = match project_json.get("message").and_then(Value::as_str) {
            Some(m) => format!("PyPI said: {m}"),
            None => "the document has no `info` object".to_owned(),
        };
        return Err(PypiError::UnknownProject { detail });
    };
    let raw_name = info
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| PypiError::MalformedDocument { reason: "`info.name` is missing".to_owned() })?;
    if !valid_name(raw_name) {
        return Err(PypiError::MalformedDocument {
            reason: format!("`info.name` {raw_name:?} is not a valid project name"),
        });
    }
    let name = normalize_name(raw_name);
    let releases = project_json
        .get("releases")
        .and_then(Value::as_object)
        .ok_or_else(|| PypiError::MissingReleases { name: name.clone() })?;

    let spec = spec.trim();
    if spec.is_empty() || spec == "latest" {
        let version = info
            .get("version")
            .and_then(Value::as_str)
            .ok_or_else(|| PypiError::MalformedDocument { reason: "`info.version` is missing".to_owned() })?;
        if parse_version(version).is_none() {
            return Err(PypiError::MalformedDocument {
                reason: format!("`info.version` {version:?} is not a PEP 440 version"),
            });
        }
        let files = releases.get(version).ok_or_else(|| PypiError::MalformedDocument {
            reason: format!("`info.version` {version} is not in `releases`"),
        })?;
        return match release_files(&name, files, base)? {
            Release::Installable(files) => Ok(Resolved { name, version: version.to_owned(), files }),
            Release::Yanked(reason) => Err(PypiError::Yanked { name, version: version.to_owned(), reason }),
            Release::Empty => Err(PypiError::NoFiles { name, version: version.to_owned() }),
        };
    }

    let clauses = parse_spec(spec)?;
    let parsed: Vec<(PyVersion, &String)> = releases.keys().filter_map(|k| parse_version(k).map(|v| (v, k))).collect();
    let explicit_pre =
        clauses.iter().any(|c| !matches!(c.op, SpecOp::Ne | SpecOp::NePrefix) && c.version.is_prerelease());
    let only_pre = parsed.iter().all(|(v, _)| v.is_prerelease());
    let allow_pre = explicit_pre || only_pre;
    let mut candidates: Vec<&(PyVersion, &String)> = parsed
        .iter()
        .filter(|(v, _)| (allow_pre || !v.is_prerelease()) && clauses.iter().all(|c| c.matches(v)))
        .collect();
    candidates.sort_by(|a, b| b.0.cmp(&a.0));

    let mut first_blocked: Option<PypiError> = None;
    for (_, key) in &candidates {
        let files = releases.get(key.as_str()).unwrap_or(&Value::Null);
        match release_files(&name, files, base)? {
            Release::Installable(files) => return Ok(Resolved { name, version: (*key).clone(), files }),
            Release::Yanked(reason) => {
                if !matches!(first_blocked, Some(PypiError::Yanked { .. })) {
                    first_blocked = Some(PypiError::Yanked { name: name.clone(), version: (*key).clone(), reason });
                }
            }
            Release::Empty => {
                if first_blocked.is_none() {
                    first_blocked = Some(PypiError::NoFiles { name: name.clone(), version: (*key).clone() });
                }
            }
        }
    }
    if let Some(err) = first_blocked {
        return Err(err);
    }
    let anchor = clauses.first().map(|c| &c.version);
    Err(PypiError::NoMatchingVersion { nearby: nearby_versions(&parsed, anchor), name, spec: spec.to_owned() })
}

/// One hash-pinned requirements line (`name==version --hash=sha256:… …`, newline-terminated).
pub fn requirement_lines(resolved: &Resolved) -> String {
    let mut line = format!("{}=={}", resolved.name, resolved.version);
    let mut seen: Vec<&str> = Vec::new();
    for f in &resolved.files {
        if !seen.contains(&f.sha256.as_str()) {
            seen.push(&f.sha256);
            line.push_str(" --hash=sha256:");
            line.push_str(&f.sha256);
        }
    }
    line.push('\n');
    line
}

/// Checks downloaded bytes against a sha256 hex digest from PyPI.
pub fn verify_file(sha256_hex: &str, bytes: &[u8]) -> Result<(), PypiError> {
    let expected = normalize_sha256(sha256_hex)?;
    let actual = super::hex(&Sha256::digest(bytes));
    if actual == expected { Ok(()) } else { Err(PypiError::HashMismatch { expected, actual }) }
}

/// Files that the simple API (PEP 691 JSON) marks with a PEP 740 `provenance` URL.
pub fn files_with_provenance(simple_json: &Value) -> Result<Vec<ProvenanceFile>, PypiError> {
    let files = simple_json.get("files").and_then(Value::as_array).ok_or_else(|| PypiError::MalformedDocument {
        reason: "the simple API document has no `files` array (was it fetched with Accept: application/vnd.pypi.simple.v1+json?)"
            .to_owned(),
    })?;
    let mut out = Vec::new();
    for f in files {
        if let (Some(filename), Some(url)) =
            (f.get("filename").and_then(Value::as_str), f.get("provenance").and_then(Value::as_str))
        {
            out.push(ProvenanceFile { filename: filename.to_owned(), provenance_url: url.to_owned() });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Files of a release

enum Release {
    Installable(Vec<DistFile>),
    Yanked(String),
    Empty,
}

fn release_files(name: &str, files: &Value, base: &str) -> Result<Release, PypiError> {
    let list = files.as_array().ok_or_else(|| PypiError::MalformedDocument {
        reason: "a `releases` entry is not a list of files".to_owned(),
    })?;
    let mut out = Vec::new();
    let mut yank_reason: Option<String> = None;
    for f in list {
        let malformed = |what: &str| PypiError::MalformedDocument { reason: format!("a file entry has no {what}") };
        let filename = f.get("filename").and_then(Value::as_str).ok_or_else(|| malformed("`filename`"))?;
        let yanked = match f.get("yanked") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(_)) => true,
            _ => false,
        };
        if yanked {
            if yank_reason.is_none() {
                let reason = f
                    .get("yanked_reason")
                    .and_then(Value::as_str)
                    .or_else(|| f.get("yanked").and_then(Value::as_str))
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or("no reason given");
                yank_reason = Some(reason.to_owned());
            }
            continue;
        }
        let url = f.get("url").and_then(Value::as_str).ok_or_else(|| malformed("`url`"))?;
        let sha = f
            .get("digests")
            .and_then(|d| d.get("sha256"))
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("`digests.sha256`"))?;
        let kind = match f.get("packagetype").and_then(Value::as_str) {
            Some("bdist_wheel") => FileKind::Wheel,
            Some("sdist") => FileKind::Sdist,
            _ if filename.ends_with(".whl") => FileKind::Wheel,
            _ if filename.ends_with(".tar.gz") || filename.ends_with(".zip") => FileKind::Sdist,
            _ => FileKind::Other,
        };
        out.push(DistFile {
            filename: filename.to_owned(),
            url: absolute_url(base, name, url),
            sha256: normalize_sha256(sha)?,
            kind,
            requires_python: f.get("requires_python").and_then(Value::as_str).map(str::to_owned),
        });
    }
    Ok(match (out.is_empty(), yank_reason) {
        (false, _) => Release::Installable(out),
        (true, Some(reason)) => Release::Yanked(reason),
        (true, None) => Release::Empty,
    })
}

/// Resolves a file URL against the JSON API document's own URL (mirrors serve relative ones).
fn absolute_url(base: &str, name: &str, url: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        return url.to_owned();
    }
    if let Some(rest) = url.strip_prefix("//") {
        return format!("https://{rest}");
    }
    let mut path: Vec<&str> = if url.starts_with('/') { Vec::new() } else { vec!["pypi", name] };
    for seg in url.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                path.pop();
            }
            s => path.push(s),
        }
    }
    format!("{}/{}", base.trim_end_matches('/'), path.join("/"))
}

fn normalize_sha256(hex: &str) -> Result<String, PypiError> {
    let h = hex.trim().to_ascii_lowercase();
    if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(h)
    } else {
        Err(PypiError::BadDigest { value: hex.to_owned() })
    }
}

fn nearby_versions(parsed: &[(PyVersion, &String)], anchor: Option<&PyVersion>) -> String {
    let mut sorted: Vec<&(PyVersion, &String)> = parsed.iter().collect();
    if sorted.is_empty() {
        return "none".to_owned();
    }
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let centre = anchor.map_or(sorted.len(), |a| sorted.partition_point(|(v, _)| v < a));
    let hi = (centre.saturating_sub(4) + 8).min(sorted.len());
    let lo = hi.saturating_sub(8);
    sorted.get(lo..hi).unwrap_or_default().iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------
// PEP 440 versions (public versions only)

/// A PEP 440 public version.
#[derive(Debug, Clone)]
struct PyVersion {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
}

impl PyVersion {
    fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn is_postrelease(&self) -> bool {
        self.post.is_some()
    }

    fn trimmed_release(&self) -> &[u64] {
        let len = self.release.iter().rposition(|n| *n != 0).map_or(0, |i| i + 1);
        self.release.get(..len).unwrap_or_default()
    }

    /// `packaging`'s comparison key.
    #[allow(clippy::type_complexity)]
    fn key(&self) -> (u64, &[u64], (i8, u8, u64), (u8, u64), (u8, u64)) {
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0, 0),
            (None, _, _) => (1, 0, 0),
            (Some((k, n)), _, _) => (0, k, n),
        };
        let post = self.post.map_or((0, 0), |n| (1, n));
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, self.trimmed_release(), pre, post, dev)
    }

    fn same_base(&self, other: &Self) -> bool {
        self.epoch == other.epoch && self.trimmed_release() == other.trimmed_release()
    }
}

impl PartialEq for PyVersion {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for PyVersion {}

impl Ord for PyVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for PyVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        if self.s.get(self.i..self.i + w.len()) == Some(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    fn eat_sep(&mut self) -> bool {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(self.s.get(start..self.i)?).ok()?.parse().ok()
    }
}

/// Parses a PEP 440 public version, accepting the spellings PEP 440 normalizes.
fn parse_version(text: &str) -> Option<PyVersion> {
    let lower = text.trim().to_ascii_lowercase();
    let body = lower.strip_prefix('v').unwrap_or(&lower);
    let mut c = Cursor { s: body.as_bytes(), i: 0 };
    let first = c.number()?;
    let epoch = if c.peek() == Some(b'!') {
        c.i += 1;
        Some(first)
    } else {
        None
    };
    let mut release = vec![match epoch {
        Some(_) => c.number()?,
        None => first,
    }];
    while c.peek() == Some(b'.') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
        c.i += 1;
        release.push(c.number()?);
    }

    let mut pre = None;
    let save = c.i;
    c.eat_sep();
    let kinds: [(&str, u8); 8] =
        [("alpha", 0), ("beta", 1), ("preview", 2), ("pre", 2), ("rc", 2), ("a", 0), ("b", 1), ("c", 2)];
    match kinds.iter().find(|(w, _)| c.eat(w)) {
        Some((_, kind)) => {
            let before_sep = c.i;
            c.eat_sep();
            let n = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.number()?
            } else {
                c.i = before_sep;
                0
            };
            pre = Some((*kind, n));
        }
        None => c.i = save,
    }

    let mut post = None;
    let save = c.i;
    if c.peek() == Some(b'-') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
        c.i += 1;
        post = Some(c.number()?);
    } else {
        c.eat_sep();
        if c.eat("post") || c.eat("rev") || c.eat("r") {
            let before_sep = c.i;
            c.eat_sep();
            post = Some(if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.number()?
            } else {
                c.i = before_sep;
                0
            });
        } else {
            c.i = save;
        }
    }

    let save = c.i;
    c.eat_sep();
    let dev = if c.eat("dev") {
        let before_sep = c.i;
        c.eat_sep();
        Some(if c.peek().is_some_and(|b| b.is_ascii_digit()) {
            c.number()?
        } else {
            c.i = before_sep;
            0
        })
    } else {
        c.i = save;
        None
    };

    if c.i != c.s.len() {
        return None;
    }
    Some(PyVersion { epoch: epoch.unwrap_or(0), release, pre, post, dev })
}

// ---------------------------------------------------------------------------
// Specifiers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpecOp {
    Eq,
    Ne,
    EqPrefix,
    NePrefix,
    Lt,
    Le,
    Gt,
    Ge,
    Compatible,
}

#[derive(Debug, Clone)]
struct Clause {
    op: SpecOp,
    version: PyVersion,
}

impl Clause {
    fn matches(&self, v: &PyVersion) -> bool {
        let spec = &self.version;
        match self.op {
            SpecOp::Eq => v == spec,
            SpecOp::Ne => v != spec,
            SpecOp::EqPrefix => prefix_match(v, spec.epoch, &spec.release),
            SpecOp::NePrefix => !prefix_match(v, spec.epoch, &spec.release),
            SpecOp::Le => v <= spec,
            SpecOp::Ge => v >= spec,
            SpecOp::Lt => v < spec && !(!spec.is_prerelease() && v.is_prerelease() && v.same_base(spec)),
            SpecOp::Gt => v > spec && !(!spec.is_postrelease() && v.is_postrelease() && v.same_base(spec)),
            SpecOp::Compatible => {
                let prefix = spec.release.get(..spec.release.len().saturating_sub(1)).unwrap_or_default();
                v >= spec && prefix_match(v, spec.epoch, prefix)
            }
        }
    }
}

/// `==prefix.*` matching: same epoch and the release starts with `prefix` (zero-padded).
fn prefix_match(v: &PyVersion, epoch: u64, prefix: &[u64]) -> bool {
    v.epoch == epoch && prefix.iter().enumerate().all(|(i, p)| v.release.get(i).copied().unwrap_or(0) == *p)
}

fn parse_spec(spec: &str) -> Result<Vec<Clause>, PypiError> {
    let invalid = |reason: String| PypiError::InvalidSpec { spec: spec.to_owned(), reason };
    let unsupported = |feature: &str| PypiError::UnsupportedSpec { spec: spec.to_owned(), feature: feature.to_owned() };
    if spec.contains(';') {
        return Err(unsupported("an environment marker"));
    }
    if spec.contains('[') {
        return Err(unsupported("extras"));
    }
    let mut clauses = Vec::new();
    for raw in spec.split(',') {
        let clause = raw.trim();
        if clause.is_empty() {
            return Err(invalid("empty clause between commas".to_owned()));
        }
        if clause.starts_with("===") {
            return Err(unsupported("arbitrary equality (`===`)"));
        }
        let (op, rest) = [
            ("~=", SpecOp::Compatible),
            ("==", SpecOp::Eq),
            ("!=", SpecOp::Ne),
            ("<=", SpecOp::Le),
            (">=", SpecOp::Ge),
            ("<", SpecOp::Lt),
            (">", SpecOp::Gt),
        ]
        .iter()
        .find_map(|(text, op)| clause.strip_prefix(text).map(|rest| (*op, rest.trim())))
        .unwrap_or((SpecOp::Eq, clause));
        if rest.contains('+') {
            return Err(unsupported("a local version label (`+…`)"));
        }
        let (op, text) = match rest.strip_suffix(".*") {
            Some(t) if op == SpecOp::Eq => (SpecOp::EqPrefix, t),
            Some(t) if op == SpecOp::Ne => (SpecOp::NePrefix, t),
            Some(_) => return Err(invalid(format!("`.*` is only allowed with `==` and `!=` (in `{clause}`)"))),
            None => (op, rest),
        };
        let version = parse_version(text).ok_or_else(|| invalid(format!("`{text}` is not a PEP 440 version")))?;
        if matches!(op, SpecOp::EqPrefix | SpecOp::NePrefix)
            && (version.pre.is_some() || version.post.is_some() || version.dev.is_some())
        {
            return Err(unsupported("a `.*` wildcard after a pre/post/dev segment"));
        }
        if op == SpecOp::Compatible && version.release.len() < 2 {
            return Err(invalid(format!("`~=` needs at least two release segments (in `{clause}`)")));
        }
        clauses.push(Clause { op, version });
    }
    Ok(clauses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> PyVersion {
        parse_version(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    fn ok(ver: &str, spec: &str) -> bool {
        let clauses = parse_spec(spec).unwrap();
        clauses.iter().all(|c| c.matches(&v(ver)))
    }

    #[test]
    fn versions_order_like_packaging() {
        let ordered = [
            "1.0.dev0",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0.post1.dev0",
            "1.0.post1",
            "1.0.1",
            "1.1",
            "2025.9.25",
            "2026.1.26",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("1.0.0"));
        assert_eq!(v("1.0-alpha-1"), v("1.0a1"));
        assert_eq!(v("1.0.RC.2"), v("1.0rc2"));
        assert_eq!(v("1.0-1"), v("1.0.post1"));
        assert_eq!(v("v1.0_dev"), v("1.0.dev0"));
        for bad in ["", "abc", "1.0+local", "1..0", "1.0.", "1.0x", "2004d"] {
            assert!(parse_version(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn specifiers_follow_pep_440() {
        assert!(ok("1.4.5", "~=1.4.2"));
        assert!(!ok("1.5.0", "~=1.4.2"));
        assert!(ok("1.9", "~=1.4"));
        assert!(!ok("2.0", "~=1.4"));
        assert!(ok("1.2.0", "==1.2"));
        assert!(ok("1.2.7", "==1.2.*"));
        assert!(!ok("1.3", "==1.2.*"));
        assert!(ok("1.3", "!=1.2.*"));
        assert!(ok("1.5", ">=1.2, <2"));
        assert!(!ok("2.0", ">=1.2,<2"));
        assert!(!ok("2.0rc1", "<2"));
        assert!(ok("2.0rc1", "<2.0rc2"));
        assert!(!ok("1.7.post1", ">1.7"));
        assert!(ok("1.7.1", ">1.7"));
        assert!(ok("1.7.post2", ">1.7.post1"));
        assert!(ok("1.0", "1.0"));
        assert!(matches!(parse_spec("===1.0"), Err(PypiError::UnsupportedSpec { .. })));
        assert!(matches!(parse_spec("==1.0+abc"), Err(PypiError::UnsupportedSpec { .. })));
        assert!(matches!(parse_spec(">=1.0; python_version>'3'"), Err(PypiError::UnsupportedSpec { .. })));
        assert!(matches!(parse_spec("~=1"), Err(PypiError::InvalidSpec { .. })));
        assert!(matches!(parse_spec(">=1.*"), Err(PypiError::InvalidSpec { .. })));
        assert!(matches!(parse_spec(">=1.0,"), Err(PypiError::InvalidSpec { .. })));
        assert!(matches!(parse_spec("nonsense"), Err(PypiError::InvalidSpec { .. })));
    }

    #[test]
    fn names_and_urls() {
        assert_eq!(normalize_name("MCP_Server.Time"), "mcp-server-time");
        assert_eq!(normalize_name("a--_b"), "a-b");
        assert!(valid_name("mcp-server-time"));
        assert!(!valid_name("x --index-url y"));
        assert_eq!(
            absolute_url("https://pypi.org", "mcp-server-time", "../../packages/packages/69/d4/x.whl"),
            "https://pypi.org/packages/packages/69/d4/x.whl"
        );
        assert_eq!(
            absolute_url("https://pypi.org", "n", "https://files.pythonhosted.org/a.whl"),
            "https://files.pythonhosted.org/a.whl"
        );
        assert_eq!(absolute_url("https://pypi.org/", "n", "/packages/a.whl"), "https://pypi.org/packages/a.whl");
    }
}
