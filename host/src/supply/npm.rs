//! npm registry metadata: pick a version from a packument, check its registry
//! signature the way `npm audit signatures` does, and check a tarball against
//! its Subresource Integrity string.
//!
//! Nothing here touches the network: callers fetch the packument
//! (`https://registry.npmjs.org/<name>`), the registry keys
//! (`https://registry.npmjs.org/-/npm/v1/keys`) and the tarball, and hand them in.
//!
//! Version selection follows `npm-pick-manifest`: an empty spec means "the
//! `latest` dist-tag, else the highest release"; a dist-tag means exactly that
//! tag; an exact version means exactly that version; a range prefers the
//! `latest` tag when it satisfies the range and otherwise takes the highest
//! satisfying version, ranking deprecated versions after non-deprecated ones.
//! Unlike npm, `engines` is not consulted (the host does not run a fixed Node).
//!
//! Signature checking follows pacote's `RegistryFetcher#manifest` with
//! `verifySignatures`: every entry of `dist.signatures` must name a known key,
//! that key must not have expired before the version's publish time, and the
//! ECDSA P-256/SHA-256 signature over `${name}@${version}:${integrity}` must
//! verify.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature as EcdsaSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Publish time pacote assumes for packuments without a `time` entry, so that
/// key expiry still has something to compare against.
pub const MISSING_TIME_CUTOFF: &str = "2015-01-01T00:00:00.000Z";

/// The only key type the npm registry uses for its signatures.
pub const KEYTYPE_P256: &str = "ecdsa-sha2-nistp256";

/// Base64 as Node's `Buffer.from(s, 'base64')` reads it: padding optional.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Everything that can go wrong resolving or verifying an npm package.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NpmError {
    /// The packument is a registry error document or has no versions at all.
    #[error(
        "npm package {name} is not available from the registry ({detail}); check the package name and that the registry URL is the public npm registry"
    )]
    UnknownPackage {
        /// Package name, or `<unnamed>` when the document does not say.
        name: String,
        /// What the document said instead of listing versions.
        detail: String,
    },
    /// The spec is neither a version, a range nor a valid dist-tag name.
    #[error(
        "`{spec}` is not a valid npm version, range or dist-tag ({reason}); use e.g. `latest`, `1.2.3`, `^1.2.0` or `>=1.0.0 <2.0.0`"
    )]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No version of the package satisfies the spec.
    #[error(
        "no version of {name} matches `{spec}`; dist-tags: {tags}; nearby versions: {nearby}; pick one of those or widen the spec"
    )]
    NoMatchingVersion {
        /// Package name.
        name: String,
        /// The spec as given.
        spec: String,
        /// The packument's dist-tags, as `tag=version` pairs.
        tags: String,
        /// Versions close to what was asked for.
        nearby: String,
    },
    /// The chosen version's metadata lacks a field needed to install it.
    #[error("{id} has malformed registry metadata ({reason}); re-fetch the full packument, or pin another version")]
    MalformedPackument {
        /// `name@version`, or the package name when no version was chosen yet.
        id: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The keys document could not be read.
    #[error("the npm registry keys document is unusable ({reason}); re-fetch https://registry.npmjs.org/-/npm/v1/keys")]
    BadKeys {
        /// What is wrong with it.
        reason: String,
    },
    /// A registry key's material could not be decoded as a P-256 SPKI key.
    #[error(
        "registry key {keyid} cannot be used ({reason}); re-fetch the registry keys, and refuse packages signed with it meanwhile"
    )]
    BadKey {
        /// The key's id.
        keyid: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The version carries no registry signatures.
    #[error(
        "{id} has no registry signature (dist.signatures is missing or empty) although the registry publishes signing keys; do not install it unless unsigned packages are explicitly allowed"
    )]
    Unsigned {
        /// `name@version`.
        id: String,
    },
    /// A signature names a key that is not among the registry keys.
    #[error(
        "{id} has a registry signature with keyid {keyid} but no corresponding public key is known; refresh the keys from https://registry.npmjs.org/-/npm/v1/keys and retry"
    )]
    UnknownKey {
        /// `name@version`.
        id: String,
        /// The unknown key id.
        keyid: String,
    },
    /// The signing key had expired before the version was published.
    #[error(
        "{id} has a registry signature with keyid {keyid} but that key expired at {expires}, before the version was published at {published}; do not install it"
    )]
    ExpiredKey {
        /// `name@version`.
        id: String,
        /// The expired key's id.
        keyid: String,
        /// When the key expired.
        expires: String,
        /// When the version was published (or the assumed cutoff).
        published: String,
    },
    /// The signing key is not an ECDSA P-256 key.
    #[error(
        "registry key {keyid} has key type `{keytype}`, but only {KEYTYPE_P256} is supported; upgrade the verifier before trusting this registry"
    )]
    UnsupportedKeyType {
        /// The key's id.
        keyid: String,
        /// Its declared type.
        keytype: String,
    },
    /// The signature does not verify against the key.
    #[error(
        "{id} has an invalid registry signature with keyid {keyid}: the name, version or integrity was altered after publishing; do not install it"
    )]
    BadSignature {
        /// `name@version`.
        id: String,
        /// The key the signature claimed.
        keyid: String,
    },
    /// A timestamp could not be parsed.
    #[error(
        "timestamp `{value}` is not an ISO 8601 / RFC 3339 date-time; pass the packument's `time[version]` value unchanged"
    )]
    BadTimestamp {
        /// The timestamp as given.
        value: String,
    },
    /// The integrity string holds no hash this module can check.
    #[error(
        "integrity `{integrity}` cannot be checked ({reason}); only sha512, sha384 and sha256 SRI hashes are supported"
    )]
    BadIntegrity {
        /// The integrity string as given.
        integrity: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The tarball's digest differs from the expected integrity.
    #[error(
        "tarball integrity mismatch: expected {expected} but the bytes hash to {actual}; the download is corrupt or tampered with, fetch it again and do not install it"
    )]
    IntegrityMismatch {
        /// The expected SRI entries of the algorithm checked.
        expected: String,
        /// The SRI string of the bytes actually received.
        actual: String,
    },
}

/// One registry signature from `dist.signatures`, over `name@version:integrity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySignature {
    /// Id of the registry key that made it, e.g. `SHA256:DhQ8…`.
    pub keyid: String,
    /// Base64 DER-encoded ECDSA signature.
    pub sig: String,
}

/// Pointer to a version's Sigstore attestations (`dist.attestations`); presence only, not verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestations {
    /// Where the registry serves the attestation bundles.
    pub url: String,
    /// `provenance.predicateType`, e.g. `https://slsa.dev/provenance/v1`.
    pub predicate_type: Option<String>,
}

/// A version picked from a packument, with everything needed to fetch and verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// Package name, e.g. `@modelcontextprotocol/server-everything`.
    pub name: String,
    /// Exact version chosen.
    pub version: String,
    /// SRI integrity of the tarball (`sha512-…`; `sha1-…` for very old publishes).
    pub integrity: String,
    /// Tarball URL from `dist.tarball`.
    pub tarball: String,
    /// Registry signatures from `dist.signatures` (empty when unsigned).
    pub signatures: Vec<RegistrySignature>,
    /// Publish time from the packument's `time[version]`, if present.
    pub published_at: Option<String>,
    /// Deprecation message, if the version is deprecated.
    pub deprecated: Option<String>,
    /// Provenance attestation pointer, if the version was published with provenance.
    pub attestations: Option<Attestations>,
    /// The commands it installs (its manifest's `bin`: a string is one
    /// command named as the package without its scope), with their files.
    pub bins: BTreeMap<String, String>,
}

impl Resolved {
    /// `name@version`, the form npm uses in messages and signatures.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The command `npx name` runs, chosen as npm exec chooses it: the only
    /// one (or the only file every command names), else the one named as
    /// the package without its scope; `None` when npm exec could not choose.
    ///
    /// The name comes from the registry's document, which no signature
    /// covers, and npm exec runs it through a shell unquoted: a name that is
    /// not a plain command name (`x; sh`, `--call=…`) is `None` too, and the
    /// launch then keeps the package's version instead of the file.
    pub fn command(&self) -> Option<String> {
        choose_command(&self.name, &self.bins)
    }

    /// Whether the registry lists provenance attestations for this version (not verified here).
    pub fn has_provenance(&self) -> bool {
        self.attestations.is_some()
    }

    /// The exact message the registry signed: `${name}@${version}:${integrity}`.
    pub fn signed_message(&self) -> String {
        format!("{}@{}:{}", self.name, self.version, self.integrity)
    }
}

/// A manifest's `bin` (a path, or commands to paths) as commands to paths.
fn bins_of(name: &str, bin: Option<&Value>) -> BTreeMap<String, String> {
    match bin {
        Some(Value::String(file)) => {
            BTreeMap::from([(name.rsplit('/').next().unwrap_or(name).to_owned(), file.clone())])
        }
        Some(Value::Object(map)) => map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect(),
        _ => BTreeMap::new(),
    }
}

/// The command `npm exec` runs for package `name` with `bins`: the only
/// one (or the only file every command names), else the one named as the
/// package without its scope; only a plain command name.
fn choose_command(name: &str, bins: &BTreeMap<String, String>) -> Option<String> {
    let files: std::collections::BTreeSet<&String> = bins.values().collect();
    let unscoped = name.rsplit('/').next().unwrap_or(name);
    let chosen = if files.len() == 1 {
        bins.keys().next().cloned()
    } else {
        bins.contains_key(unscoped).then(|| unscoped.to_string())
    };
    chosen.filter(|c| plain_command(c))
}

/// The most of a tarball read (unpacked): all of it is read, so that a
/// second manifest cannot hide behind the first.
const MAX_UNPACKED: u64 = 256 * 1024 * 1024;

/// The command a checked npm tarball runs under `npm exec`, chosen from the
/// `package.json` inside it (not from the registry's document, which no
/// signature covers): `None` when it names none npm exec could choose.
/// The error says why the tarball could not be read as npm would read it
/// (extended headers, which npm applies and this reader does not; two
/// manifests; a cut or oversized archive): then the version is pinned
/// instead. CPU-bound: call it off the async workers.
pub fn command_in_tarball(tgz: &[u8]) -> Result<Option<String>, String> {
    use std::io::Read;
    let mut tar = flate2::read::GzDecoder::new(tgz).take(MAX_UNPACKED);
    let mut header = [0u8; 512];
    let mut manifest: Option<Value> = None;
    loop {
        if let Err(e) = tar.read_exact(&mut header) {
            // Some writers leave out the two zero blocks at the end.
            if manifest.is_some() && e.kind() == std::io::ErrorKind::UnexpectedEof && tar.limit() > 0 {
                break;
            }
            return Err(format!("the tarball ends before its end ({e})"));
        }
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let kind = header[156];
        if matches!(kind, b'x' | b'g' | b'L' | b'K') {
            return Err("the tarball has extended (PAX or GNU long-name) headers".into());
        }
        let text =
            |field: &[u8]| String::from_utf8_lossy(field.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
        let name = text(&header[..100]);
        // Only POSIX ustar has a name prefix (GNU's magic keeps times there).
        let prefix = if &header[257..263] == b"ustar\0" { text(&header[345..500]) } else { String::new() };
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let size = text(&header[124..136]);
        let size = u64::from_str_radix(size.trim(), 8).map_err(|_| format!("a tar header of {path:?} has no size"))?;
        let mut skip = size.div_ceil(512) * 512;
        // npm unpacks the tarball's first directory as the package.
        let top = path.split_once('/').is_some_and(|(dir, file)| !dir.is_empty() && file == "package.json");
        if top && matches!(kind, b'0' | 0) {
            if manifest.is_some() {
                return Err(format!("the tarball holds a second {path}"));
            }
            if size > 1024 * 1024 {
                return Err(format!("{path} is {size} bytes, more than a manifest"));
            }
            let mut json = vec![0u8; size as usize];
            tar.read_exact(&mut json).map_err(|e| format!("{path} is cut short ({e})"))?;
            manifest = Some(serde_json::from_slice(&json).map_err(|e| format!("{path} is not JSON ({e})"))?);
            skip -= size;
        }
        let skipped = std::io::copy(&mut (&mut tar).take(skip), &mut std::io::sink())
            .map_err(|e| format!("the tarball cannot be read ({e})"))?;
        if skipped < skip {
            return Err(if tar.limit() == 0 {
                format!("the tarball unpacks to more than {MAX_UNPACKED} bytes")
            } else {
                format!("the tarball is cut short in {path}")
            });
        }
    }
    let mani = manifest.ok_or("the tarball has no package.json")?;
    let name = mani.get("name").and_then(Value::as_str).unwrap_or_default();
    Ok(choose_command(name, &bins_of(name, mani.get("bin"))))
}

/// A command name a shell reads as one word and npm exec as no option:
/// a letter or digit, then letters, digits, `.`, `_` and `-`.
fn plain_command(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// One public key from the registry's `/-/npm/v1/keys` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryKey {
    /// Key id, matched against `dist.signatures[].keyid`.
    pub keyid: String,
    /// Key type; the registry uses `ecdsa-sha2-nistp256`.
    pub keytype: String,
    /// Signature scheme; the registry uses `ecdsa-sha2-nistp256`.
    pub scheme: String,
    /// Base64 DER SubjectPublicKeyInfo.
    pub key: String,
    /// When the key stopped being valid for new signatures, if ever.
    pub expires: Option<String>,
}

/// Which registry keys vouched for a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedBy {
    /// Ids of the keys whose signatures verified, in `dist.signatures` order.
    pub keyids: Vec<String>,
}

/// Parses the registry keys document (`{"keys":[{keyid, keytype, scheme, key, expires}]}`).
pub fn parse_keys(doc: &Value) -> Result<Vec<RegistryKey>, NpmError> {
    let bad = |reason: String| NpmError::BadKeys { reason };
    let list = doc.get("keys").and_then(Value::as_array).ok_or_else(|| bad("no `keys` array".to_owned()))?;
    let mut keys = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let text = |field: &str| -> Result<String, NpmError> {
            entry
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("key #{i} has no string `{field}`")))
        };
        let keyid = text("keyid")?;
        let key = text("key")?;
        let keytype = entry.get("keytype").and_then(Value::as_str).unwrap_or_default().to_owned();
        let scheme = entry.get("scheme").and_then(Value::as_str).unwrap_or_default().to_owned();
        let expires = match entry.get("expires") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                parse_time_ms(s).map_err(|_| bad(format!("key {keyid} has unparseable `expires` {s:?}")))?;
                Some(s.clone())
            }
            Some(other) => return Err(bad(format!("key {keyid} has non-string `expires` {other}"))),
        };
        keys.push(RegistryKey { keyid, keytype, scheme, key, expires });
    }
    Ok(keys)
}

/// Picks the version of a packument that `spec` (empty, dist-tag, exact version or range) selects.
pub fn resolve(packument: &Value, spec: &str) -> Result<Resolved, NpmError> {
    let name = packument
        .get("name")
        .or_else(|| packument.get("_id"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned();
    if let Some(err) = packument.get("error") {
        let detail = err.as_str().map_or_else(|| err.to_string(), str::to_owned);
        return Err(NpmError::UnknownPackage { name, detail: format!("registry said: {detail}") });
    }
    let versions = match packument.get("versions").and_then(Value::as_object) {
        Some(v) if !v.is_empty() => v,
        Some(_) => {
            return Err(NpmError::UnknownPackage {
                name,
                detail: "it has no published versions (all unpublished?)".to_owned(),
            });
        }
        None => {
            return Err(NpmError::UnknownPackage { name, detail: "the document has no `versions` object".to_owned() });
        }
    };
    let tags = packument.get("dist-tags").and_then(Value::as_object);
    let tag = |t: &str| tags.and_then(|m| m.get(t)).and_then(Value::as_str);

    let spec = spec.trim();
    let no_match = |nearby_anchor: Option<&str>| NpmError::NoMatchingVersion {
        name: name.clone(),
        spec: spec.to_owned(),
        tags: tags.map_or_else(
            || "none".to_owned(),
            |m| {
                let list: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?"))).collect();
                if list.is_empty() { "none".to_owned() } else { list.join(", ") }
            },
        ),
        nearby: nearby_versions(versions.keys().map(String::as_str), nearby_anchor),
    };

    let chosen: String = match classify(spec)? {
        Spec::Tag(t) => {
            let v = tag(t).ok_or_else(|| no_match(None))?;
            if !versions.contains_key(v) {
                return Err(no_match(Some(v)));
            }
            v.to_owned()
        }
        Spec::Exact(want) => {
            let canonical = want.to_string();
            if versions.contains_key(&canonical) {
                canonical
            } else {
                versions
                    .keys()
                    .find(|k| parse_version(k).is_some_and(|v| v == want))
                    .cloned()
                    .ok_or_else(|| no_match(Some(&canonical)))?
            }
        }
        Spec::Range { sets, star } => {
            let latest = tag("latest").filter(|l| versions.contains_key(*l));
            let latest_ok = latest.filter(|l| star || parse_version(l).is_some_and(|v| satisfies(&v, &sets)));
            match latest_ok {
                Some(l) => l.to_owned(),
                None => {
                    let mut best: Option<(bool, SemVer, &String)> = None;
                    for (key, mani) in versions {
                        let Some(v) = parse_version(key) else { continue };
                        if !satisfies(&v, &sets) {
                            continue;
                        }
                        let fresh = deprecation(mani).is_none();
                        let better = match &best {
                            None => true,
                            Some((bf, bv, _)) => (fresh, &v).cmp(&(*bf, bv)) == Ordering::Greater,
                        };
                        if better {
                            best = Some((fresh, v, key));
                        }
                    }
                    let anchor = first_number_run(spec);
                    best.map(|(_, _, k)| k.clone()).ok_or_else(|| no_match(anchor.as_deref()))?
                }
            }
        }
    };
    let mani = versions.get(&chosen).ok_or_else(|| no_match(Some(&chosen)))?;
    build_resolved(packument, &name, &chosen, mani)
}

/// Checks every registry signature of `resolved` the way `npm audit signatures` does.
///
/// `published_at` is the version's publish time (the packument's `time[version]`,
/// i.e. `resolved.published_at`); `None` means unknown, and pacote's cutoff
/// [`MISSING_TIME_CUTOFF`] is used for the key-expiry comparison.
pub fn verify_signature(
    resolved: &Resolved,
    keys: &[RegistryKey],
    published_at: Option<&str>,
) -> Result<VerifiedBy, NpmError> {
    let id = resolved.id();
    if resolved.signatures.is_empty() {
        return Err(NpmError::Unsigned { id });
    }
    let message = resolved.signed_message();
    let published = published_at.unwrap_or(MISSING_TIME_CUTOFF);
    let mut keyids = Vec::with_capacity(resolved.signatures.len());
    for signature in &resolved.signatures {
        let key = keys
            .iter()
            .find(|k| k.keyid == signature.keyid)
            .ok_or_else(|| NpmError::UnknownKey { id: id.clone(), keyid: signature.keyid.clone() })?;
        if let Some(expires) = &key.expires {
            let published_ms =
                parse_time_ms(published).map_err(|()| NpmError::BadTimestamp { value: published.to_owned() })?;
            let expires_ms = parse_time_ms(expires).map_err(|()| NpmError::BadTimestamp { value: expires.clone() })?;
            // pacote: valid only when publishedTime < Date.parse(expires).
            if published_ms >= expires_ms {
                return Err(NpmError::ExpiredKey {
                    id,
                    keyid: key.keyid.clone(),
                    expires: expires.clone(),
                    published: published.to_owned(),
                });
            }
        }
        if !key.keytype.is_empty() && key.keytype != KEYTYPE_P256 {
            return Err(NpmError::UnsupportedKeyType { keyid: key.keyid.clone(), keytype: key.keytype.clone() });
        }
        let der = B64
            .decode(key.key.trim())
            .map_err(|e| NpmError::BadKey { keyid: key.keyid.clone(), reason: format!("key is not base64: {e}") })?;
        let verifying_key = VerifyingKey::from_public_key_der(&der).map_err(|e| NpmError::BadKey {
            keyid: key.keyid.clone(),
            reason: format!("key is not a P-256 SubjectPublicKeyInfo: {e}"),
        })?;
        let bad = || NpmError::BadSignature { id: id.clone(), keyid: key.keyid.clone() };
        let sig_der = B64.decode(signature.sig.trim()).map_err(|_| bad())?;
        let sig = EcdsaSignature::from_der(&sig_der).map_err(|_| bad())?;
        verifying_key.verify(message.as_bytes(), &sig).map_err(|_| bad())?;
        keyids.push(key.keyid.clone());
    }
    Ok(VerifiedBy { keyids })
}

/// Checks tarball bytes against an SRI string; the strongest supported algorithm present must match.
pub fn verify_integrity(integrity: &str, tarball_bytes: &[u8]) -> Result<(), NpmError> {
    let entries = parse_sri(integrity);
    let strongest = entries.iter().filter_map(|(algo, _)| Algo::from_name(algo)).max();
    let Some(algo) = strongest else {
        let reason = if entries.is_empty() {
            "no `algorithm-base64` entries found".to_owned()
        } else {
            let names: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
            format!("only unsupported algorithms: {}", names.join(", "))
        };
        return Err(NpmError::BadIntegrity { integrity: integrity.to_owned(), reason });
    };
    let digest = algo.digest(tarball_bytes);
    let mut expected = Vec::new();
    for (name, b64) in &entries {
        if Algo::from_name(name) != Some(algo) {
            continue;
        }
        expected.push(format!("{name}-{b64}"));
        if B64.decode(b64).is_ok_and(|want| want == digest) {
            return Ok(());
        }
    }
    Err(NpmError::IntegrityMismatch {
        expected: expected.join(" "),
        actual: format!("{}-{}", algo.name(), general_purpose::STANDARD.encode(&digest)),
    })
}

// ---------------------------------------------------------------------------
// Building the result

fn deprecation(mani: &Value) -> Option<String> {
    match mani.get("deprecated") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Bool(true)) => Some("deprecated".to_owned()),
        _ => None,
    }
}

fn build_resolved(packument: &Value, pkg: &str, version: &str, mani: &Value) -> Result<Resolved, NpmError> {
    let name = mani.get("name").and_then(Value::as_str).unwrap_or(pkg).to_owned();
    let id = format!("{name}@{version}");
    let malformed = |reason: String| NpmError::MalformedPackument { id: id.clone(), reason };
    if let Some(v) = mani.get("version").and_then(Value::as_str)
        && v != version
    {
        return Err(malformed(format!("entry `{version}` declares version `{v}`")));
    }
    if name != pkg && pkg != "<unnamed>" {
        return Err(malformed(format!("entry declares name `{name}` inside packument `{pkg}`")));
    }
    let dist = mani.get("dist").and_then(Value::as_object).ok_or_else(|| malformed("no `dist` object".to_owned()))?;
    let tarball = dist
        .get("tarball")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("no `dist.tarball`".to_owned()))?
        .to_owned();
    let integrity = match dist.get("integrity").and_then(Value::as_str).map(normalize_sri) {
        Some(i) if !i.is_empty() => i,
        _ => {
            // pacote falls back to the sha1 `shasum` for pre-2017 publishes.
            let shasum = dist
                .get("shasum")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("neither `dist.integrity` nor `dist.shasum`".to_owned()))?;
            let bytes =
                super::hex_decode(shasum).ok_or_else(|| malformed(format!("`dist.shasum` {shasum:?} is not hex")))?;
            format!("sha1-{}", general_purpose::STANDARD.encode(bytes))
        }
    };
    let signatures = match dist.get("signatures") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value::<Vec<RegistrySignature>>(v.clone())
            .map_err(|e| malformed(format!("`dist.signatures` is not a list of {{keyid, sig}}: {e}")))?,
    };
    let attestations = match dist.get("attestations") {
        None | Some(Value::Null) => None,
        Some(a) => {
            let url = a
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("`dist.attestations` has no `url`".to_owned()))?
                .to_owned();
            let predicate_type =
                a.get("provenance").and_then(|p| p.get("predicateType")).and_then(Value::as_str).map(str::to_owned);
            Some(Attestations { url, predicate_type })
        }
    };
    let published_at = packument.get("time").and_then(|t| t.get(version)).and_then(Value::as_str).map(str::to_owned);
    let bins = bins_of(&name, mani.get("bin"));
    Ok(Resolved {
        name,
        version: version.to_owned(),
        integrity,
        tarball,
        signatures,
        published_at,
        deprecated: deprecation(mani),
        attestations,
        bins,
    })
}

/// Up to eight versions around `anchor` (or the highest ones), for error messages.
fn nearby_versions<'a>(keys: impl Iterator<Item = &'a str>, anchor: Option<&str>) -> String {
    let mut parsed: Vec<(SemVer, &str)> = keys.filter_map(|k| parse_version(k).map(|v| (v, k))).collect();
    if parsed.is_empty() {
        return "none".to_owned();
    }
    parsed.sort_by(|a, b| a.0.cmp(&b.0));
    let anchor = anchor.and_then(|a| parse_partial(a).map(|p| p.floor()));
    let centre = match anchor {
        Some(a) => parsed.partition_point(|(v, _)| *v < a),
        None => parsed.len(),
    };
    let lo = centre.saturating_sub(4);
    let hi = (lo + 8).min(parsed.len());
    let lo = hi.saturating_sub(8);
    parsed.get(lo..hi).unwrap_or_default().iter().map(|(_, k)| *k).collect::<Vec<_>>().join(", ")
}

/// The first `digits(.digits)*` run in a spec, used to centre "nearby" lists.
fn first_number_run(spec: &str) -> Option<String> {
    let start = spec.find(|c: char| c.is_ascii_digit())?;
    let run: String = spec.get(start..)?.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    Some(run.trim_end_matches('.').to_owned())
}

// ---------------------------------------------------------------------------
// Subresource Integrity

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Algo {
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(bytes).to_vec(),
            Self::Sha384 => Sha384::digest(bytes).to_vec(),
            Self::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

/// Splits an SRI string into `(algorithm, base64)` pairs the way ssri does (options dropped).
/// The SHA-512 an SRI integrity string names (its first `sha512-` entry).
pub fn sha512_of(integrity: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let (_, b64) = parse_sri(integrity).into_iter().find(|(algo, _)| algo == "sha512")?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok().filter(|d| d.len() == 64)
}

fn parse_sri(integrity: &str) -> Vec<(String, String)> {
    integrity
        .split_whitespace()
        .filter_map(|token| {
            let (algo, rest) = token.split_once('-')?;
            if algo.is_empty() || !algo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return None;
            }
            let b64 = rest.split('?').next().unwrap_or_default();
            if b64.is_empty() { None } else { Some((algo.to_owned(), b64.to_owned())) }
        })
        .collect()
}

/// Re-serialises an SRI string as ssri's `String(integrity)` does: valid entries grouped by algorithm.
fn normalize_sri(integrity: &str) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for token in integrity.split_whitespace() {
        let Some((algo, rest)) = token.split_once('-') else { continue };
        if algo.is_empty() || !algo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) || rest.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(a, _)| *a == algo) {
            Some((_, list)) => list.push(token),
            None => groups.push((algo, vec![token])),
        }
    }
    groups.into_iter().flat_map(|(_, list)| list).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------
// Timestamps (what `Date.parse` reads from the registry)

/// Milliseconds since the Unix epoch of an RFC 3339 date-time or a bare `YYYY-MM-DD` (UTC).
pub(crate) fn parse_time_ms(s: &str) -> Result<i64, ()> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, ()> {
        let part = s.get(from..from + len).ok_or(())?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().map_err(|_| ()) } else { Err(()) }
    };
    let byte = |i: usize| b.get(i).copied();
    let year = num(0, 4)?;
    if byte(4) != Some(b'-') || byte(7) != Some(b'-') {
        return Err(());
    }
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(());
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Ok(days * 86_400_000);
    }
    if !matches!(byte(10), Some(b'T' | b't' | b' ')) || byte(13) != Some(b':') {
        return Err(());
    }
    let hour = num(11, 2)?;
    let minute = num(14, 2)?;
    let (second, mut i) = if byte(16) == Some(b':') { (num(17, 2)?, 19) } else { (0, 16) };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(());
    }
    let mut millis = 0i64;
    if byte(i) == Some(b'.') {
        i += 1;
        let start = i;
        while byte(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let frac = s.get(start..i).ok_or(())?;
        if frac.is_empty() {
            return Err(());
        }
        let first3: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = first3.parse().map_err(|_| ())?;
    }
    let offset_min = match byte(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && byte(i + 3) == Some(b':') => {
            let oh = num(i + 1, 2)?;
            let om = num(i + 4, 2)?;
            if oh > 23 || om > 59 {
                return Err(());
            }
            let total = oh * 60 + om;
            if sign == b'+' { total } else { -total }
        }
        _ => return Err(()),
    };
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Ok(secs * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------
// Semver: the subset of node-semver (loose mode) that npm specs use.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Num(a), Self::Num(b)) => a.cmp(b),
            (Self::Num(_), Self::Alpha(_)) => Ordering::Less,
            (Self::Alpha(_), Self::Num(_)) => Ordering::Greater,
            (Self::Alpha(a), Self::Alpha(b)) => a.as_bytes().cmp(b.as_bytes()),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A semantic version without build metadata (which never affects precedence).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Ident>,
}

impl SemVer {
    fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self { major, minor, patch, pre: Vec::new() }
    }

    /// `M.m.p-0`: the lowest version of `M.m.p`, used as an exclusive upper bound.
    fn floor_pre(major: u64, minor: u64, patch: u64) -> Self {
        Self { major, minor, patch, pre: vec![Ident::Num(0)] }
    }

    fn triple(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.triple().cmp(&other.triple()).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for SemVer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_char(if i == 0 { '-' } else { '.' })?;
            match id {
                Ident::Num(n) => write!(f, "{n}")?,
                Ident::Alpha(s) => f.write_str(s)?,
            }
        }
        Ok(())
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse_pre(s: &str) -> Option<Vec<Ident>> {
    s.split('.')
        .map(|id| {
            if !is_ident(id) {
                None
            } else if id.bytes().all(|b| b.is_ascii_digit()) {
                id.parse().ok().map(Ident::Num)
            } else {
                Some(Ident::Alpha(id.to_owned()))
            }
        })
        .collect()
}

fn parse_num(s: &str) -> Option<u64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
}

/// Strips what loose node-semver tolerates before a version: spaces, `=` and `v`.
fn strip_loose_prefix(s: &str) -> &str {
    s.trim().trim_start_matches(|c: char| c == '=' || c == 'v' || c == 'V' || c.is_whitespace())
}

/// Splits `core[-pre][+build]`, validating the build part.
fn split_version(s: &str) -> Option<(&str, Option<&str>)> {
    let (main, build) = match s.split_once('+') {
        Some((m, b)) => (m, Some(b)),
        None => (s, None),
    };
    if let Some(b) = build
        && !b.split('.').all(is_ident)
    {
        return None;
    }
    Some(match main.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (main, None),
    })
}

/// Parses a full version the way `semver.valid(v, {loose: true})` accepts it.
fn parse_version(s: &str) -> Option<SemVer> {
    let (core, pre) = split_version(strip_loose_prefix(s))?;
    let mut parts = core.split('.');
    let major = parse_num(parts.next()?)?;
    let minor = parse_num(parts.next()?)?;
    let patch = parse_num(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    let pre = match pre {
        Some(p) => parse_pre(p)?,
        None => Vec::new(),
    };
    Some(SemVer { major, minor, patch, pre })
}

/// A possibly partial version (`1`, `1.2`, `1.x`, `*`), `None` parts being wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Vec<Ident>,
}

impl Partial {
    /// The lowest version the partial could mean, with wildcards as zero.
    fn floor(&self) -> SemVer {
        SemVer {
            major: self.major.unwrap_or(0),
            minor: self.minor.unwrap_or(0),
            patch: self.patch.unwrap_or(0),
            pre: self.pre.clone(),
        }
    }
}

fn parse_partial(s: &str) -> Option<Partial> {
    let (core, pre) = split_version(strip_loose_prefix(s))?;
    let mut nums = [None, None, None];
    let mut wild = false;
    let mut count = 0;
    for (i, part) in core.split('.').enumerate() {
        let slot = nums.get_mut(i)?;
        count = i + 1;
        if matches!(part, "x" | "X" | "*") {
            wild = true;
        } else {
            let n = parse_num(part)?;
            if !wild {
                *slot = Some(n);
            }
        }
    }
    if count == 0 {
        return None;
    }
    let pre = match pre {
        Some(p) if nums.iter().all(Option::is_some) => parse_pre(p)?,
        Some(_) => return None,
        None => Vec::new(),
    };
    let [major, minor, patch] = nums;
    Some(Partial { major, minor, patch, pre })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: SemVer,
}

impl Comparator {
    fn test(&self, v: &SemVer) -> bool {
        let ord = v.cmp(&self.version);
        match self.op {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Eq => ord == Ordering::Equal,
        }
    }
}

/// A set of comparators that must all hold; empty means "any release".
type ComparatorSet = Vec<Comparator>;

fn cmp(op: Op, version: SemVer) -> Comparator {
    Comparator { op, version }
}

/// A comparator no version satisfies (`<0.0.0-0`).
fn nothing() -> Vec<Comparator> {
    vec![cmp(Op::Lt, SemVer::floor_pre(0, 0, 0))]
}

fn inc(n: u64) -> Option<u64> {
    n.checked_add(1)
}

fn caret(p: &Partial) -> Option<Vec<Comparator>> {
    let Some(ma) = p.major else { return Some(Vec::new()) };
    let Some(mi) = p.minor else {
        return Some(vec![cmp(Op::Ge, SemVer::new(ma, 0, 0)), cmp(Op::Lt, SemVer::floor_pre(inc(ma)?, 0, 0))]);
    };
    let Some(pa) = p.patch else {
        let upper = if ma == 0 { SemVer::floor_pre(ma, inc(mi)?, 0) } else { SemVer::floor_pre(inc(ma)?, 0, 0) };
        return Some(vec![cmp(Op::Ge, SemVer::new(ma, mi, 0)), cmp(Op::Lt, upper)]);
    };
    let lower = SemVer { major: ma, minor: mi, patch: pa, pre: p.pre.clone() };
    let upper = if ma == 0 {
        if mi == 0 { SemVer::floor_pre(ma, mi, inc(pa)?) } else { SemVer::floor_pre(ma, inc(mi)?, 0) }
    } else {
        SemVer::floor_pre(inc(ma)?, 0, 0)
    };
    Some(vec![cmp(Op::Ge, lower), cmp(Op::Lt, upper)])
}

fn tilde(p: &Partial) -> Option<Vec<Comparator>> {
    let Some(ma) = p.major else { return Some(Vec::new()) };
    let Some(mi) = p.minor else {
        return Some(vec![cmp(Op::Ge, SemVer::new(ma, 0, 0)), cmp(Op::Lt, SemVer::floor_pre(inc(ma)?, 0, 0))]);
    };
    let lower = match p.patch {
        None => SemVer::new(ma, mi, 0),
        Some(pa) => SemVer { major: ma, minor: mi, patch: pa, pre: p.pre.clone() },
    };
    Some(vec![cmp(Op::Ge, lower), cmp(Op::Lt, SemVer::floor_pre(ma, inc(mi)?, 0))])
}

fn xrange(op: Option<Op>, p: &Partial) -> Option<Vec<Comparator>> {
    let any_x = p.patch.is_none();
    let Some(ma) = p.major else {
        return Some(match op {
            Some(Op::Gt | Op::Lt) => nothing(),
            _ => Vec::new(),
        });
    };
    let op = if op == Some(Op::Eq) && any_x { None } else { op };
    match (op, p.minor, p.patch) {
        (Some(op), Some(mi), Some(pa)) => {
            Some(vec![cmp(op, SemVer { major: ma, minor: mi, patch: pa, pre: p.pre.clone() })])
        }
        (Some(op), mi, _) => {
            // `>1.2` means `>=1.3.0`; `<=1.2` means `<1.3.0-0`; `>=1.2` / `<1.2` keep their bound.
            Some(vec![match op {
                Op::Gt => match mi {
                    None => cmp(Op::Ge, SemVer::new(inc(ma)?, 0, 0)),
                    Some(mi) => cmp(Op::Ge, SemVer::new(ma, inc(mi)?, 0)),
                },
                Op::Le => match mi {
                    None => cmp(Op::Lt, SemVer::floor_pre(inc(ma)?, 0, 0)),
                    Some(mi) => cmp(Op::Lt, SemVer::floor_pre(ma, inc(mi)?, 0)),
                },
                Op::Lt => cmp(Op::Lt, SemVer::floor_pre(ma, mi.unwrap_or(0), 0)),
                Op::Ge => cmp(Op::Ge, SemVer::new(ma, mi.unwrap_or(0), 0)),
                Op::Eq => return None,
            }])
        }
        (None, None, _) => {
            Some(vec![cmp(Op::Ge, SemVer::new(ma, 0, 0)), cmp(Op::Lt, SemVer::floor_pre(inc(ma)?, 0, 0))])
        }
        (None, Some(mi), None) => {
            Some(vec![cmp(Op::Ge, SemVer::new(ma, mi, 0)), cmp(Op::Lt, SemVer::floor_pre(ma, inc(mi)?, 0))])
        }
        (None, Some(mi), Some(pa)) => {
            Some(vec![cmp(Op::Eq, SemVer { major: ma, minor: mi, patch: pa, pre: p.pre.clone() })])
        }
    }
}

fn hyphen(from: &Partial, to: &Partial) -> Option<Vec<Comparator>> {
    let mut set = Vec::new();
    if from.major.is_some() {
        set.push(cmp(Op::Ge, from.floor()));
    }
    if let Some(ma) = to.major {
        set.push(match (to.minor, to.patch) {
            (None, _) => cmp(Op::Lt, SemVer::floor_pre(inc(ma)?, 0, 0)),
            (Some(mi), None) => cmp(Op::Lt, SemVer::floor_pre(ma, inc(mi)?, 0)),
            (Some(_), Some(_)) => cmp(Op::Le, to.floor()),
        });
    }
    Some(set)
}

const OPERATORS: [&str; 8] = ["~>", ">=", "<=", "~", "^", ">", "<", "="];

/// Parses one comparator token (`^1.2`, `>=1.0.0`, `1.x`, …) into comparators.
fn parse_token(token: &str) -> Option<Vec<Comparator>> {
    let (op, rest) =
        OPERATORS.iter().find_map(|op| token.strip_prefix(op).map(|rest| (*op, rest))).unwrap_or(("", token));
    let p = parse_partial(rest)?;
    match op {
        "^" => caret(&p),
        "~" | "~>" => tilde(&p),
        ">" => xrange(Some(Op::Gt), &p),
        ">=" => xrange(Some(Op::Ge), &p),
        "<" => xrange(Some(Op::Lt), &p),
        "<=" => xrange(Some(Op::Le), &p),
        "=" => xrange(Some(Op::Eq), &p),
        _ => xrange(None, &p),
    }
}

/// Parses a range (`||` of space-separated comparators, or `a - b`) like `semver.validRange`.
fn parse_range(s: &str) -> Option<Vec<ComparatorSet>> {
    let mut sets = Vec::new();
    for part in s.split("||") {
        let mut tokens: Vec<String> = Vec::new();
        let mut pending_op: Option<&str> = None;
        for word in part.split_whitespace() {
            if let Some(op) = pending_op.take() {
                tokens.push(format!("{op}{}", strip_loose_prefix(word)));
            } else if OPERATORS.contains(&word) {
                pending_op = Some(word);
            } else {
                tokens.push(word.to_owned());
            }
        }
        if pending_op.is_some() {
            return None;
        }
        let set = match tokens.as_slice() {
            [] => Vec::new(),
            [from, dash, to] if dash == "-" => hyphen(&parse_partial(from)?, &parse_partial(to)?)?,
            _ => {
                let mut set = Vec::new();
                for t in &tokens {
                    set.extend(parse_token(t)?);
                }
                set
            }
        };
        sets.push(set);
    }
    Some(sets)
}

/// `semver.satisfies(v, range)`: prereleases only match when a comparator of the
/// same set names a prerelease of the same `major.minor.patch`.
fn satisfies(v: &SemVer, sets: &[ComparatorSet]) -> bool {
    sets.iter().any(|set| {
        set.iter().all(|c| c.test(v))
            && (v.pre.is_empty() || set.iter().any(|c| !c.version.pre.is_empty() && c.version.triple() == v.triple()))
    })
}

/// What a spec string asks for, classified the way `npm-package-arg` does.
enum Spec<'a> {
    Tag(&'a str),
    Exact(SemVer),
    Range { sets: Vec<ComparatorSet>, star: bool },
}

fn classify(spec: &str) -> Result<Spec<'_>, NpmError> {
    if spec.is_empty() || spec == "*" {
        return Ok(Spec::Range { sets: vec![Vec::new()], star: true });
    }
    if let Some(v) = parse_version(spec) {
        return Ok(Spec::Exact(v));
    }
    if let Some(sets) = parse_range(spec) {
        return Ok(Spec::Range { sets, star: false });
    }
    // npm-package-arg: a tag must survive encodeURIComponent unchanged.
    if spec.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)) {
        return Ok(Spec::Tag(spec));
    }
    Err(NpmError::InvalidSpec {
        spec: spec.to_owned(),
        reason: "it does not parse as a semver range and contains characters a dist-tag cannot".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> SemVer {
        parse_version(s).unwrap()
    }

    fn sat(ver: &str, range: &str) -> bool {
        satisfies(&v(ver), &parse_range(range).unwrap())
    }

    #[test]
    fn version_order_follows_semver() {
        let ordered = [
            "1.0.0-0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("v1.2.3"), v("=1.2.3"));
        assert_eq!(v("1.2.3+build.5"), v("1.2.3"));
        assert!(parse_version("1.2").is_none());
        assert!(parse_version("1.2.3.4").is_none());
        assert!(parse_version("latest").is_none());
    }

    #[test]
    fn ranges_match_node_semver() {
        let yes = [
            ("1.2.3", "^1.2.3"),
            ("1.9.9", "^1.2.3"),
            ("0.2.5", "^0.2.3"),
            ("0.0.3", "^0.0.3"),
            ("1.2.9", "~1.2.3"),
            ("1.2.0", "~1.2"),
            ("1.9.0", "~1"),
            ("1.4.0", "1.x"),
            ("1.4.0", "1"),
            ("1.2.7", "1.2.x"),
            ("3.0.0", "*"),
            ("3.0.0", ""),
            ("2.0.0", ">=1.0.0 <3"),
            ("2.5.0", "1.x || >=2.5.0"),
            ("1.5.0", "1.0.0 - 2.0.0"),
            ("2.3.9", "1.2 - 2.3"),
            ("1.3.0", ">1.2"),
            ("1.2.9", "<=1.2"),
            ("1.2.3", ">= 1.2.3"),
            ("1.2.3-beta.2", "^1.2.3-beta.1"),
            ("1.2.3-beta.2", ">=1.2.3-beta.1 <2"),
            ("2.0.0", "v2"),
        ];
        for (ver, range) in yes {
            assert!(sat(ver, range), "{ver} should satisfy {range}");
        }
        let no = [
            ("2.0.0", "^1.2.3"),
            ("0.3.0", "^0.2.3"),
            ("0.0.4", "^0.0.3"),
            ("1.3.0", "~1.2.3"),
            ("2.0.0-rc.1", "^1.0.0"),
            ("1.3.0-beta", "^1.2.3-beta.1"),
            ("1.5.0-alpha", "*"),
            ("1.2.9", ">1.2"),
            ("1.3.0", "<=1.2"),
            ("2.0.0", "1.0.0 - 1.x"),
            ("1.0.0", ">1.0.0"),
            ("1.0.0", "<1.0.0"),
            ("1.0.0", ">*"),
        ];
        for (ver, range) in no {
            assert!(!sat(ver, range), "{ver} should not satisfy {range}");
        }
        for bad in ["^", ">= ", "1.2.3 -", "latest", "1.2.3-", "^1.2.x-pre", "1 - 2 - 3"] {
            assert!(parse_range(bad).is_none(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn classify_follows_npm_package_arg() {
        assert!(matches!(classify("1.2.3"), Ok(Spec::Exact(_))));
        assert!(matches!(classify("v1.2.3"), Ok(Spec::Exact(_))));
        assert!(matches!(classify("^1.2"), Ok(Spec::Range { star: false, .. })));
        assert!(matches!(classify(""), Ok(Spec::Range { star: true, .. })));
        assert!(matches!(classify("next"), Ok(Spec::Tag("next"))));
        assert!(matches!(classify("beta-2"), Ok(Spec::Tag(_))));
        assert!(matches!(classify(">=abc"), Err(NpmError::InvalidSpec { .. })));
        assert!(matches!(classify("a b"), Err(NpmError::InvalidSpec { .. })));
    }

    #[test]
    fn timestamps_parse_like_date_parse() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:00.000Z"), Ok(0));
        assert_eq!(parse_time_ms("2015-01-01T00:00:00.000Z"), Ok(1_420_070_400_000));
        assert_eq!(parse_time_ms("2015-01-01"), Ok(1_420_070_400_000));
        assert_eq!(parse_time_ms("2026-03-25T20:04:50.347000+00:00"), Ok(1_774_469_090_347));
        assert_eq!(parse_time_ms("2015-01-01T02:00:00+02:00"), Ok(1_420_070_400_000));
        assert_eq!(parse_time_ms("2024-02-29T00:00:00Z").map(|ms| ms % 86_400_000), Ok(0));
        for bad in ["", "2023-02-29T00:00:00Z", "2015-01-01T00:00:00", "yesterday", "2015-13-01", "2015-01-01T25:00Z"] {
            assert!(parse_time_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sri_parsing_matches_ssri() {
        assert_eq!(normalize_sri("  sha512-AAA==  "), "sha512-AAA==");
        assert_eq!(normalize_sri("sha512-A sha1-B sha512-C"), "sha512-A sha512-C sha1-B");
        assert_eq!(normalize_sri("garbage"), "");
        assert_eq!(
            parse_sri("sha256-abc?opt sha512-def"),
            vec![("sha256".to_owned(), "abc".to_owned()), ("sha512".to_owned(), "def".to_owned())]
        );
    }

    /// A gzipped tar of `files` (path, contents), as `npm pack` writes one.
    fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let entries: Vec<(u8, &str, &[u8])> = files.iter().map(|(p, d)| (b'0', *p, *d)).collect();
        tgz_headers(&entries)
    }

    /// A gzipped tar of entries of the given type flags.
    fn tgz_headers(files: &[(u8, &str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut tar = Vec::new();
        for (flag, path, data) in files {
            let mut h = [0u8; 512];
            h[..path.len()].copy_from_slice(path.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            h[156] = *flag;
            h[257..263].copy_from_slice(b"ustar\0");
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            tar.extend_from_slice(&h);
            tar.extend_from_slice(data);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
        tar.resize(tar.len() + 1024, 0);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn the_command_comes_from_the_tarballs_own_manifest() {
        let manifest = br#"{"name": "@scope/srv", "bin": {"srv-cli": "dist/index.js"}}"#;
        let readme = vec![b'x'; 700];
        let t = tgz(&[("package/README.md", &readme), ("package/package.json", manifest)]);
        assert_eq!(command_in_tarball(&t).unwrap().as_deref(), Some("srv-cli"), "after an entry of two blocks");
        let t = tgz(&[("pkg/package.json", br#"{"name": "@scope/srv", "bin": "cli.js"}"#)]);
        assert_eq!(command_in_tarball(&t).unwrap().as_deref(), Some("srv"), "any first directory; a string bin");
        let nested = tgz(&[("package/node_modules/x/package.json", manifest.as_slice())]);
        assert_eq!(command_in_tarball(&nested).unwrap_err(), "the tarball has no package.json");
        let hostile = tgz(&[("package/package.json", br#"{"name": "srv", "bin": {"x; sh": "a.js"}}"#)]);
        assert_eq!(command_in_tarball(&hostile).unwrap(), None, "no plain command name");
        let two = tgz(&[("package/package.json", br#"{"name": "srv", "bin": {"a": "a.js", "b": "b.js"}}"#)]);
        assert_eq!(command_in_tarball(&two).unwrap(), None, "npm exec could not choose");
        assert!(command_in_tarball(b"not gzip").is_err());
        let cut = tgz(&[("package/package.json", manifest)]);
        assert!(command_in_tarball(&cut[..cut.len() / 2]).is_err(), "a cut tarball is an error, not a command");
        let twice =
            tgz(&[("package/package.json", manifest), ("package/package.json", br#"{"name": "x", "bin": "y.js"}"#)]);
        assert_eq!(command_in_tarball(&twice).unwrap_err(), "the tarball holds a second package/package.json");
        let pax = tgz_headers(&[
            (b'x', "package/PaxHeader", b"30 path=package/package.json\n"),
            (b'0', "package/decoy.json", manifest),
        ]);
        assert!(command_in_tarball(&pax).unwrap_err().contains("extended"), "npm would apply the PAX path");
    }
}
