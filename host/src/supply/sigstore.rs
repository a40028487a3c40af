//! Sigstore bundles, verified offline: the provenance attestations npm
//! publishes beside a version (`/-/npm/v1/attestations/NAME@VERSION`)
//! and PyPI beside a file (PEP 740, the same parts in another shape).
//!
//! A bundle is trusted when, against a trusted root (Fulcio's certificate
//! authorities and Rekor's keys, Sigstore's `trusted_root.json`):
//! - its certificate chains to a Fulcio authority, for code signing, and
//!   was valid when the transparency log took the entry;
//! - the log's signed entry timestamp (the inclusion promise) is Rekor's
//!   signature over that entry, and the entry's body names this envelope's
//!   payload, signature and certificate;
//! - the DSSE envelope's signature over its payload is the certificate's;
//! - the in-toto statement's subject is this package version with the
//!   very SHA-512 the registry's integrity names.
//!
//! Pure: the host fetches the documents, this reads them. Entries of a
//! log without inclusion promises (Rekor v2, ed25519) are not verified
//! here and say so.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::pkcs8::DecodePublicKey as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::hex;

/// Why a bundle was not trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigstoreError {
    /// A document is not what Sigstore or npm write.
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// A signature, certificate or log entry does not check out.
    #[error("attestation does not verify: {0}")]
    Untrusted(String),
    /// It verifies, but attests something else.
    #[error("attestation is for something else: {0}")]
    Mismatch(String),
    /// A form this host cannot check (another log kind, no inclusion promise).
    #[error("attestation cannot be checked here: {0}")]
    Unsupported(String),
}

/// Sigstore's roots of trust: Fulcio's authorities and Rekor's keys.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    authorities: Vec<Authority>,
    logs: Vec<Log>,
}

#[derive(Debug, Clone)]
struct Authority {
    /// DER certificates, the issuing one first and the root last.
    chain: Vec<Vec<u8>>,
    valid: Validity,
}

#[derive(Debug, Clone)]
struct Log {
    key_id: Vec<u8>,
    /// A DER SubjectPublicKeyInfo; `None` for a key this host cannot use.
    p256: Option<Vec<u8>>,
    details: String,
    valid: Validity,
}

/// Seconds since the epoch: `start` and, when the key was retired, `end`.
#[derive(Debug, Clone, Copy)]
struct Validity {
    start: i64,
    end: Option<i64>,
}

impl Validity {
    fn contains(&self, t: i64) -> bool {
        self.start <= t && self.end.is_none_or(|end| t <= end)
    }
}

/// What a verified provenance attestation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The statement's predicate type (`https://slsa.dev/provenance/v1`).
    pub predicate_type: String,
    /// The source repository the provenance names, if it names one.
    pub source: Option<String>,
    /// The transparency log entry's index.
    pub log_index: i64,
}

/// The in-toto payload type of a DSSE envelope.
const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The predicate types of SLSA provenance.
const SLSA: &[&str] = &["https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2"];
/// `id-kp-codeSigning` (1.3.6.1.5.5.7.3.3), the content of its DER OID.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

impl TrustedRoot {
    /// Reads a `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json`).
    pub fn parse(doc: &Value) -> Result<TrustedRoot, SigstoreError> {
        let bad = |what: &str| SigstoreError::Malformed(format!("trusted root: {what}"));
        let mut authorities = Vec::new();
        for ca in doc
            .get("certificateAuthorities")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no certificateAuthorities"))?
        {
            let certs = ca
                .pointer("/certChain/certificates")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("an authority has no certChain"))?;
            let chain = certs
                .iter()
                .map(|c| c.get("rawBytes").and_then(Value::as_str).and_then(|b| B64.decode(b).ok()))
                .collect::<Option<Vec<_>>>()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| bad("an authority's certificate is not base64 DER"))?;
            authorities.push(Authority {
                chain,
                valid: validity(ca.get("validFor")).ok_or_else(|| bad("an authority's validFor"))?,
            });
        }
        let mut logs = Vec::new();
        for log in doc.get("tlogs").and_then(Value::as_array).ok_or_else(|| bad("no tlogs"))? {
            let key_id = log
                .pointer("/logId/keyId")
                .and_then(Value::as_str)
                .and_then(|k| B64.decode(k).ok())
                .ok_or_else(|| bad("a log's keyId"))?;
            let key = log.get("publicKey").ok_or_else(|| bad("a log without publicKey"))?;
            let details = key.get("keyDetails").and_then(Value::as_str).unwrap_or_default().to_string();
            let raw = key
                .get("rawBytes")
                .and_then(Value::as_str)
                .and_then(|k| B64.decode(k).ok())
                .ok_or_else(|| bad("a log key's rawBytes"))?;
            let p256 = (details == "PKIX_ECDSA_P256_SHA_256").then_some(raw);
            logs.push(Log {
                key_id,
                p256,
                details,
                valid: validity(key.get("validFor")).ok_or_else(|| bad("a log key's validFor"))?,
            });
        }
        Ok(TrustedRoot { authorities, logs })
    }

    /// Sigstore's public-good instance, as shipped with mcpod.
    pub fn public_good() -> TrustedRoot {
        let doc: Value = serde_json::from_str(PUBLIC_GOOD).unwrap_or_default();
        TrustedRoot::parse(&doc).unwrap_or(TrustedRoot { authorities: Vec::new(), logs: Vec::new() })
    }
}

/// The trusted root of Sigstore's public-good instance (Fulcio and Rekor at
/// sigstore.dev), from Sigstore's TUF repository as npm ships it.
const PUBLIC_GOOD: &str = include_str!("sigstore_public_good.json");

/// Checks npm's attestations document for `name@version`, whose tarball
/// has `sha512` (raw bytes): at least one SLSA provenance bundle must
/// verify against `root` and name this very tarball.
pub fn verify_npm_provenance(
    doc: &Value,
    root: &TrustedRoot,
    name: &str,
    version: &str,
    sha512: &[u8],
) -> Result<Provenance, SigstoreError> {
    let list = doc
        .get("attestations")
        .and_then(Value::as_array)
        .ok_or_else(|| SigstoreError::Malformed("no `attestations` list".into()))?;
    let provenance: Vec<&Value> = list
        .iter()
        .filter(|a| a.get("predicateType").and_then(Value::as_str).is_some_and(|t| SLSA.contains(&t)))
        .collect();
    let Some(first) = provenance.first() else {
        return Err(SigstoreError::Mismatch("the registry lists no SLSA provenance attestation".into()));
    };
    // A purl percent-encodes the scope's `@` and a version's `+`; both
    // spellings of the version are taken.
    let scoped = name.replacen('@', "%40", 1);
    let purls = [format!("pkg:npm/{scoped}@{version}"), format!("pkg:npm/{scoped}@{}", version.replace('+', "%2B"))];
    let digest = hex(sha512);
    let mut last = None;
    for a in std::iter::once(first).chain(provenance.iter().skip(1)) {
        let bundle =
            a.get("bundle").ok_or_else(|| SigstoreError::Malformed("an attestation without `bundle`".into()))?;
        let checked = verify_bundle(bundle, root).and_then(|signed| {
            let claimed = predicate_repository(&signed.statement).map(str::to_string);
            attests(&signed, SLSA, &purls, "sha512", &digest, claimed.as_deref())
        });
        match checked {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(worse(last, e)),
        }
    }
    Err(last.unwrap_or_else(|| SigstoreError::Mismatch("no provenance attestation".into())))
}

/// The predicates a PEP 740 attestation may carry: PyPI's trusted-publisher
/// upload, or SLSA provenance.
const PEP740: &[&str] = &[
    "https://docs.pypi.org/attestations/publish/v1",
    "https://slsa.dev/provenance/v1",
    "https://slsa.dev/provenance/v0.2",
];

/// Checks a PEP 740 provenance object (PyPI's integrity API) for the
/// distribution `filename` whose SHA-256 is `sha256` (raw bytes): at least
/// one attestation must verify against `root` and attest this very file.
pub fn verify_pypi_provenance(
    doc: &Value,
    root: &TrustedRoot,
    filename: &str,
    sha256: &[u8],
) -> Result<Provenance, SigstoreError> {
    let bundles = doc
        .get("attestation_bundles")
        .and_then(Value::as_array)
        .ok_or_else(|| SigstoreError::Malformed("no `attestation_bundles` list".into()))?;
    let digest = hex(sha256);
    let mut last = None;
    for b in bundles {
        for a in b.get("attestations").and_then(Value::as_array).into_iter().flatten() {
            let claimed = publisher(b.get("publisher"));
            let names = [filename.to_string()];
            let checked = pep740_bundle(a)
                .and_then(|bundle| verify_bundle(&bundle, root))
                .and_then(|signed| attests(&signed, PEP740, &names, "sha256", &digest, claimed.as_deref()));
            match checked {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(worse(last, e)),
            }
        }
    }
    Err(last.unwrap_or_else(|| SigstoreError::Mismatch("the provenance holds no attestation".into())))
}

/// A PEP 740 attestation in the shape of a Sigstore bundle: the same
/// certificate, log entries and DSSE envelope (its payload the statement).
fn pep740_bundle(a: &Value) -> Result<Value, SigstoreError> {
    let malformed = |what: &str| SigstoreError::Malformed(format!("PEP 740 attestation: {what}"));
    let material = a.get("verification_material").ok_or_else(|| malformed("no verification_material"))?;
    let cert = material.get("certificate").and_then(Value::as_str).ok_or_else(|| malformed("no certificate"))?;
    let entries = material.get("transparency_entries").cloned().ok_or_else(|| malformed("no transparency_entries"))?;
    let envelope = a.get("envelope").ok_or_else(|| malformed("no envelope"))?;
    let statement = envelope.get("statement").and_then(Value::as_str).ok_or_else(|| malformed("no statement"))?;
    let signature = envelope.get("signature").and_then(Value::as_str).ok_or_else(|| malformed("no signature"))?;
    Ok(serde_json::json!({
        "verificationMaterial": {"certificate": {"rawBytes": cert}, "tlogEntries": entries},
        "dsseEnvelope": {"payload": statement, "payloadType": IN_TOTO, "signatures": [{"sig": signature}]}
    }))
}

/// The repository a PEP 740 publisher names, as a URL where its kind has one.
fn publisher(p: Option<&Value>) -> Option<String> {
    let repo = p?.get("repository")?.as_str()?;
    match p?.get("kind").and_then(Value::as_str) {
        Some("GitHub") => Some(format!("https://github.com/{repo}")),
        Some("GitLab") => Some(format!("https://gitlab.com/{repo}")),
        _ => Some(repo.to_string()),
    }
}

/// A bundle's envelope, checked: its statement and where the log has it.
struct Signed {
    statement: Value,
    log_index: i64,
    /// The source repository Fulcio wrote into the certificate (from the
    /// CI's OIDC token), which the signer could not choose.
    repository: Option<String>,
}

/// Verifies one bundle (`application/vnd.dev.sigstore.bundle…`, v0.1 to
/// v0.3, with a DSSE envelope) against `root`.
fn verify_bundle(bundle: &Value, root: &TrustedRoot) -> Result<Signed, SigstoreError> {
    let malformed = |what: &str| SigstoreError::Malformed(format!("bundle: {what}"));
    let material = bundle.get("verificationMaterial").ok_or_else(|| malformed("no verificationMaterial"))?;
    let certs: Vec<Vec<u8>> =
        match (material.pointer("/certificate/rawBytes"), material.pointer("/x509CertificateChain/certificates")) {
            (Some(raw), _) => vec![b64(raw).ok_or_else(|| malformed("certificate is not base64"))?],
            (None, Some(Value::Array(list))) => list
                .iter()
                .map(|c| c.get("rawBytes").and_then(b64))
                .collect::<Option<Vec<_>>>()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| malformed("x509CertificateChain is not base64 DER"))?,
            _ => {
                return Err(SigstoreError::Unsupported(
                    "the bundle is signed by a key, not a Fulcio certificate".into(),
                ));
            }
        };
    let envelope = bundle
        .get("dsseEnvelope")
        .ok_or_else(|| malformed("no dsseEnvelope (a message signature is not an attestation)"))?;
    let payload_type = envelope.get("payloadType").and_then(Value::as_str).unwrap_or_default();
    if payload_type != IN_TOTO {
        return Err(SigstoreError::Mismatch(format!("payload type {payload_type:?}, not an in-toto statement")));
    }
    let payload_b64 = envelope.get("payload").and_then(Value::as_str).ok_or_else(|| malformed("no payload"))?;
    let payload = B64.decode(payload_b64).map_err(|_| malformed("payload is not base64"))?;
    let sigs = envelope.get("signatures").and_then(Value::as_array).ok_or_else(|| malformed("no signatures"))?;
    let [sig] = sigs.as_slice() else {
        return Err(malformed("a DSSE envelope with other than one signature"));
    };
    let sig_b64 = sig.get("sig").and_then(Value::as_str).ok_or_else(|| malformed("a signature without `sig`"))?;
    let signature = B64.decode(sig_b64).map_err(|_| malformed("signature is not base64"))?;

    let entries = material.get("tlogEntries").and_then(Value::as_array).ok_or_else(|| malformed("no tlogEntries"))?;
    let entry = entries.first().ok_or_else(|| malformed("no transparency log entry"))?;

    // The certificate and the signature first, at the time the entry
    // claims (its promise, checked next, vouches for that time): a bundle
    // that fails here is a forgery whatever log it names.
    let claimed = entry_number(entry, "integratedTime")?;
    let leaf = CertificateDer::from(certs[0].as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| SigstoreError::Untrusted(format!("the certificate cannot be read: {e}")))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(claimed).unwrap_or(0)));
    chains_to_fulcio(&ee, &certs[1..], root, claimed, time)?;
    let pae = pae(payload_type, &payload);
    let signed_by_leaf =
        [webpki::ring::ECDSA_P256_SHA256, webpki::ring::ECDSA_P384_SHA384, webpki::ring::ECDSA_P256_SHA384]
            .iter()
            .any(|alg| ee.verify_signature(*alg, &pae, &signature).is_ok());
    if !signed_by_leaf {
        return Err(SigstoreError::Untrusted("the envelope's signature is not the certificate's".into()));
    }
    let (log_index, body) = verify_entry(entry, root)?;
    entry_names(&body, &payload, &signature, sig_b64, &certs[0])?;
    let statement = serde_json::from_slice(&payload).map_err(|_| malformed("the payload is not JSON"))?;
    let repository = certificate_text(&certs[0], SOURCE_REPOSITORY);
    Ok(Signed { statement, log_index, repository })
}

/// Checks an entry's inclusion promise (over its integrated time, log
/// index and body) against the root's Rekor keys; its log index and body.
fn verify_entry(entry: &Value, root: &TrustedRoot) -> Result<(i64, Value), SigstoreError> {
    let malformed = |what: &str| SigstoreError::Malformed(format!("log entry: {what}"));
    let (integrated, log_index) = (entry_number(entry, "integratedTime")?, entry_number(entry, "logIndex")?);
    let key_id = entry.pointer("/logId/keyId").and_then(b64).ok_or_else(|| malformed("logId"))?;
    let body_b64 =
        entry.get("canonicalizedBody").and_then(Value::as_str).ok_or_else(|| malformed("no canonicalizedBody"))?;
    // A log the root does not know may be one newer than the root: not a
    // forgery this host can tell, so not checkable rather than refused.
    let log = root.logs.iter().find(|l| l.key_id == key_id).ok_or_else(|| {
        SigstoreError::Unsupported(format!(
            "no log of the trusted root has key id {}; if Sigstore added a log, give a newer trusted root with [packages] sigstore_trusted_root_file",
            B64.encode(&key_id)
        ))
    })?;
    let Some(spki) = &log.p256 else {
        return Err(SigstoreError::Unsupported(format!(
            "a log with a {} key (Rekor v2): its entries are proved by inclusion proofs, which this host does not check",
            log.details
        )));
    };
    if !log.valid.contains(integrated) {
        return Err(SigstoreError::Untrusted(format!("the log's key was not valid at the entry's time {integrated}")));
    }
    let set = entry.pointer("/inclusionPromise/signedEntryTimestamp").and_then(b64).ok_or_else(|| {
        SigstoreError::Unsupported("the entry has no inclusion promise (signed entry timestamp)".into())
    })?;
    // What Rekor signs: the entry as canonical JSON (keys sorted, no space).
    let promise = format!(
        r#"{{"body":{},"integratedTime":{integrated},"logID":"{}","logIndex":{log_index}}}"#,
        Value::String(body_b64.to_string()),
        hex(&key_id)
    );
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki)
        .map_err(|_| SigstoreError::Malformed("the trusted root's log key is not a P-256 key".into()))?;
    let sig = p256::ecdsa::Signature::from_der(&set)
        .map_err(|_| malformed("the signed entry timestamp is not a DER signature"))?;
    use p256::ecdsa::signature::Verifier as _;
    key.verify(promise.as_bytes(), &sig).map_err(|_| {
        SigstoreError::Untrusted(
            "the log's signed entry timestamp does not verify: the entry is not the one the log took".into(),
        )
    })?;
    let body = B64
        .decode(body_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| malformed("canonicalizedBody is not base64 JSON"))?;
    Ok((log_index, body))
}

/// A log entry's number field (`"123"`, as protobuf JSON writes int64s).
fn entry_number(entry: &Value, key: &str) -> Result<i64, SigstoreError> {
    entry
        .get(key)
        .and_then(|v| v.as_str().and_then(|s| s.parse::<i64>().ok()).or_else(|| v.as_i64()))
        .ok_or_else(|| SigstoreError::Malformed(format!("log entry: {key}")))
}

/// Whether the log entry's body is this envelope's: its payload hash, its
/// signature and its certificate (kinds `dsse` 0.0.1 and `intoto` 0.0.2).
fn entry_names(
    body: &Value,
    payload: &[u8],
    signature: &[u8],
    sig_b64: &str,
    leaf: &[u8],
) -> Result<(), SigstoreError> {
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let spec = body.get("spec").cloned().unwrap_or_default();
    let (hash, sigs, sig_key, cert_key) = match (kind, version) {
        ("dsse", "0.0.1") => (spec.pointer("/payloadHash/value"), spec.get("signatures"), "signature", "verifier"),
        ("intoto", "0.0.2") => (
            spec.pointer("/content/payloadHash/value"),
            spec.pointer("/content/envelope/signatures"),
            "sig",
            "publicKey",
        ),
        _ => return Err(SigstoreError::Unsupported(format!("a log entry of kind {kind} {version}"))),
    };
    let wanted = hex(&Sha256::digest(payload));
    if hash.and_then(Value::as_str) != Some(wanted.as_str()) {
        return Err(SigstoreError::Untrusted("the log entry is of another payload".into()));
    }
    let ours = sigs.and_then(Value::as_array).into_iter().flatten().any(|s| {
        let sig_ok = s.get(sig_key).and_then(Value::as_str).is_some_and(|v| {
            // `intoto` 0.0.2 holds the envelope's base64 signature in base64 again.
            v == sig_b64 || B64.decode(v).is_ok_and(|d| d == signature || d == sig_b64.as_bytes())
        });
        let cert_ok = s
            .get(cert_key)
            .and_then(Value::as_str)
            .and_then(|v| B64.decode(v).ok())
            .and_then(|pem| pem_der(&pem))
            .is_some_and(|der| der == leaf);
        sig_ok && cert_ok
    });
    if !ours {
        return Err(SigstoreError::Untrusted("the log entry names another signature or certificate".into()));
    }
    Ok(())
}

/// Whether `ee` chains, for code signing, to one of the root's Fulcio
/// authorities valid at `integrated`.
fn chains_to_fulcio(
    ee: &webpki::EndEntityCert,
    extra: &[Vec<u8>],
    root: &TrustedRoot,
    integrated: i64,
    time: UnixTime,
) -> Result<(), SigstoreError> {
    let algs = &[
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ];
    let mut last = String::from("the trusted root has no Fulcio authority for that time");
    for ca in root.authorities.iter().filter(|a| a.valid.contains(integrated)) {
        let Some((top, below)) = ca.chain.split_last() else { continue };
        let top = CertificateDer::from(top.as_slice());
        let anchor = match webpki::anchor_from_trusted_cert(&top) {
            Ok(a) => a.to_owned(),
            Err(e) => {
                last = format!("a Fulcio root cannot be read: {e}");
                continue;
            }
        };
        let intermediates: Vec<CertificateDer> =
            below.iter().chain(extra).map(|c| CertificateDer::from(c.as_slice())).collect();
        match ee.verify_for_usage(
            algs,
            &[anchor],
            &intermediates,
            time,
            webpki::KeyUsage::required(CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(e) => {
                last = format!("the certificate does not chain to Fulcio for code signing at the log's time: {e}")
            }
        }
    }
    Err(SigstoreError::Untrusted(last))
}

/// Whether the statement is one of `predicates` whose subject is one of
/// `names` with this digest, and what it says. `claimed`, the repository
/// the signer-written or unsigned parts name (npm's predicate, PyPI's
/// publisher), must be the one Fulcio certified, which is what is shown.
fn attests(
    signed: &Signed,
    predicates: &[&str],
    names: &[String],
    algorithm: &str,
    digest: &str,
    claimed: Option<&str>,
) -> Result<Provenance, SigstoreError> {
    let st = &signed.statement;
    let predicate_type = st.get("predicateType").and_then(Value::as_str).unwrap_or_default().to_string();
    if !predicates.contains(&predicate_type.as_str()) {
        return Err(SigstoreError::Mismatch(format!(
            "the signed statement is a {predicate_type:?}, not one of {predicates:?}"
        )));
    }
    let name = names.first().map(String::as_str).unwrap_or_default();
    let subjects = st.get("subject").and_then(Value::as_array).cloned().unwrap_or_default();
    let named =
        subjects.iter().find(|s| s.get("name").and_then(Value::as_str).is_some_and(|n| names.iter().any(|w| w == n)));
    let Some(subject) = named else {
        let found: Vec<&str> = subjects.iter().filter_map(|s| s.get("name").and_then(Value::as_str)).take(5).collect();
        return Err(SigstoreError::Mismatch(format!("it attests {found:?}, not {name}")));
    };
    let got = subject.pointer(&format!("/digest/{algorithm}")).and_then(Value::as_str).unwrap_or_default();
    if !got.eq_ignore_ascii_case(digest) {
        return Err(SigstoreError::Mismatch(format!(
            "it attests {name} with {algorithm} {}…, not the file the registry serves ({}…)",
            got.chars().take(16).collect::<String>(),
            digest.chars().take(16).collect::<String>()
        )));
    }
    let same = |a: &str, b: &str| {
        let plain = |r: &str| r.trim_end_matches('/').trim_end_matches(".git").to_ascii_lowercase();
        plain(a) == plain(b)
    };
    match (signed.repository.as_deref(), claimed) {
        (Some(certified), Some(claimed)) if !same(certified, claimed) => {
            return Err(SigstoreError::Mismatch(format!(
                "it claims to be built from {claimed}, but its certificate was issued to {certified}"
            )));
        }
        (None, Some(claimed)) => {
            return Err(SigstoreError::Mismatch(format!(
                "it claims to be built from {claimed}, but its certificate names no source repository"
            )));
        }
        _ => {}
    }
    Ok(Provenance { predicate_type, source: signed.repository.clone(), log_index: signed.log_index })
}

/// The repository an npm provenance statement's predicate names.
fn predicate_repository(st: &Value) -> Option<&str> {
    st.pointer("/predicate/buildDefinition/externalParameters/workflow/repository")
        .or_else(|| st.pointer("/predicate/invocation/configSource/uri"))
        .and_then(Value::as_str)
        .map(|uri| uri.strip_prefix("git+").unwrap_or(uri).split('@').next().unwrap_or(uri))
}

/// Of two failures, the one that says more against the package: one that
/// could not be checked here never hides a forgery beside it.
fn worse(before: Option<SigstoreError>, now: SigstoreError) -> SigstoreError {
    match before {
        Some(b) if !matches!(b, SigstoreError::Unsupported(_)) && matches!(now, SigstoreError::Unsupported(_)) => b,
        _ => now,
    }
}

/// Fulcio's Source Repository URI extension (1.3.6.1.4.1.57264.1.12).
const SOURCE_REPOSITORY: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x0c];

/// The text of a certificate's extension `oid` (the content of its DER
/// OID): a DER UTF8String, as Fulcio writes its v2 extensions.
fn certificate_text(der: &[u8], oid: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut fields = tbs;
    while let Some((tag, content, rest)) = tlv(fields) {
        fields = rest;
        if tag != 0xa3 {
            continue;
        }
        let (_, mut extensions, _) = tlv(content)?;
        while let Some((_, extension, rest)) = tlv(extensions) {
            extensions = rest;
            let (tag, id, mut after) = tlv(extension)?;
            if tag != 0x06 || id != oid {
                continue;
            }
            if let Some((0x01, _, rest)) = tlv(after) {
                after = rest;
            }
            let (0x04, value, _) = tlv(after)? else { return None };
            let (0x0c, text, _) = tlv(value)? else { return None };
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

/// One DER element: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
            (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
        }
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// DSSE's pre-authentication encoding of a payload.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The DER of the first PEM certificate in `pem`.
fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body = text.split("-----BEGIN CERTIFICATE-----").nth(1)?.split("-----END CERTIFICATE-----").next()?;
    B64.decode(body.split_whitespace().collect::<String>()).ok()
}

fn b64(v: &Value) -> Option<Vec<u8>> {
    v.as_str().and_then(|s| B64.decode(s).ok())
}

/// `2021-03-07T03:20:29Z` as seconds since the epoch (fractions dropped).
fn rfc3339(text: &str) -> Option<i64> {
    super::npm::parse_time_ms(text).ok().map(|ms| ms.div_euclid(1000))
}

fn validity(v: Option<&Value>) -> Option<Validity> {
    let v = v?;
    let start = rfc3339(v.get("start")?.as_str()?)?;
    let end = match v.get("end") {
        Some(e) => Some(rfc3339(e.as_str()?)?),
        None => None,
    };
    Some(Validity { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;
    use serde_json::json;

    const ROOT: &str = include_str!("../../tests/data/sigstore/trusted_root.json");
    const LEAF: &[u8] = include_bytes!("../../tests/data/sigstore/leaf.der");
    const UNTRUSTED_LEAF: &[u8] = include_bytes!("../../tests/data/sigstore/untrusted_leaf.der");
    const LEAF_KEY: &[u8] = include_bytes!("../../tests/data/sigstore/leaf_key.der");
    const LOG_KEY: &[u8] = include_bytes!("../../tests/data/sigstore/log_key.der");
    /// Inside the test leaf's ten minutes (2026-01-01T00:00Z to 00:10Z).
    const LOGGED_AT: i64 = 1_767_225_900;
    const NAME: &str = "@example/pkg";
    const SHA512: [u8; 64] = [7; 64];

    fn root() -> TrustedRoot {
        TrustedRoot::parse(&serde_json::from_str(ROOT).unwrap()).unwrap()
    }

    fn statement(purl: &str, sha512: &[u8]) -> Value {
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": purl, "digest": {"sha512": hex(sha512)}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"externalParameters": {"workflow": {
                "repository": "https://github.com/example/pkg", "path": ".github/workflows/publish.yml"}}}}
        })
    }

    /// What a bundle is made of, each part replaceable by a test.
    struct Parts {
        statement: Value,
        cert: Vec<u8>,
        integrated: i64,
        log_id: Vec<u8>,
        /// What the log entry's body names instead of the envelope's own:
        /// another payload, another signature.
        logged_payload: Option<Vec<u8>>,
        logged_signature: Option<String>,
    }

    impl Parts {
        fn good() -> Parts {
            Parts {
                statement: statement("pkg:npm/%40example/pkg@1.0.0", &SHA512),
                cert: LEAF.to_vec(),
                integrated: LOGGED_AT,
                log_id: root().logs[0].key_id.clone(),
                logged_payload: None,
                logged_signature: None,
            }
        }

        /// The bundle as Sigstore's npm publishing writes it (v0.3, `dsse`
        /// 0.0.1 log entry with its inclusion promise).
        fn bundle(&self) -> Value {
            let payload = serde_json::to_vec(&self.statement).unwrap();
            let leaf_key = SigningKey::from_pkcs8_der(LEAF_KEY).unwrap();
            let sig: p256::ecdsa::Signature = leaf_key.sign(&pae(IN_TOTO, &payload));
            let sig_b64 = B64.encode(sig.to_der().as_bytes());
            let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", B64.encode(&self.cert));
            let body = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": "00"},
                "payloadHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(self.logged_payload.as_ref().unwrap_or(&payload)))},
                "signatures": [{"signature": self.logged_signature.as_ref().unwrap_or(&sig_b64), "verifier": B64.encode(pem)}]}});
            let body_b64 = B64.encode(serde_json::to_vec(&body).unwrap());
            let promise = format!(
                r#"{{"body":"{body_b64}","integratedTime":{},"logID":"{}","logIndex":42}}"#,
                self.integrated,
                hex(&self.log_id)
            );
            let set: p256::ecdsa::Signature = SigningKey::from_pkcs8_der(LOG_KEY).unwrap().sign(promise.as_bytes());
            json!({
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "certificate": {"rawBytes": B64.encode(&self.cert)},
                    "tlogEntries": [{
                        "logIndex": "42", "logId": {"keyId": B64.encode(&self.log_id)},
                        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                        "integratedTime": self.integrated.to_string(),
                        "inclusionPromise": {"signedEntryTimestamp": B64.encode(set.to_der().as_bytes())},
                        "canonicalizedBody": body_b64}]},
                "dsseEnvelope": {"payload": B64.encode(&payload), "payloadType": IN_TOTO,
                    "signatures": [{"sig": sig_b64, "keyid": ""}]}
            })
        }
    }

    fn doc(bundle: Value) -> Value {
        json!({"attestations": [
            {"predicateType": "https://github.com/npm/attestation/tree/main/specs/publish/v0.1", "bundle": {}},
            {"predicateType": "https://slsa.dev/provenance/v1", "bundle": bundle}]})
    }

    fn check(bundle: Value) -> Result<Provenance, SigstoreError> {
        verify_npm_provenance(&doc(bundle), &root(), NAME, "1.0.0", &SHA512)
    }

    #[test]
    fn a_bundle_signed_under_the_trusted_root_attests_the_tarball_and_names_its_source() {
        let p = check(Parts::good().bundle()).unwrap();
        assert_eq!(p.source.as_deref(), Some("https://github.com/example/pkg"));
        assert_eq!((p.log_index, p.predicate_type.as_str()), (42, "https://slsa.dev/provenance/v1"));
    }

    /// Each part of a bundle that a registry or a mirror could change is
    /// tried: every change is refused, and the error says which part.
    #[test]
    fn every_part_of_a_bundle_changed_is_refused_and_the_error_says_which() {
        let untrusted = |b: Value, says: &str| {
            let err = check(b).expect_err(says);
            assert!(matches!(err, SigstoreError::Untrusted(_)), "{says}: {err}");
            assert!(err.to_string().contains(says), "{err} should say {says:?}");
        };
        let mismatch = |b: Value, says: &str| {
            let err = check(b).expect_err(says);
            assert!(matches!(err, SigstoreError::Mismatch(_)), "{says}: {err}");
            assert!(err.to_string().contains(says), "{err} should say {says:?}");
        };
        let good = Parts::good().bundle();

        // Another statement put in the envelope: the log has another payload.
        let mut b = good.clone();
        let other = serde_json::to_vec(&statement("pkg:npm/%40example/pkg@1.0.0", &[8; 64])).unwrap();
        b["dsseEnvelope"]["payload"] = json!(B64.encode(other));
        untrusted(b, "the envelope's signature is not the certificate's");

        // The entry's time or index moved: the log's promise no longer holds.
        for key in ["integratedTime", "logIndex"] {
            let mut b = good.clone();
            b["verificationMaterial"]["tlogEntries"][0][key] = json!("1767225901");
            untrusted(b, "signed entry timestamp does not verify");
        }
        // A body the log never signed.
        let mut b = good.clone();
        let body = B64.encode(br#"{"apiVersion":"0.0.1","kind":"dsse","spec":{}}"#);
        b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = json!(body);
        untrusted(b, "signed entry timestamp does not verify");

        // The envelope's signature replaced by another valid-looking one.
        let mut b = good.clone();
        let forged: p256::ecdsa::Signature = SigningKey::from_pkcs8_der(LOG_KEY).unwrap().sign(b"something else");
        b["dsseEnvelope"]["signatures"][0]["sig"] = json!(B64.encode(forged.to_der().as_bytes()));
        untrusted(b, "the envelope's signature is not the certificate's");

        // A genuine envelope beside a genuine log entry of something else:
        // another payload, another signature.
        let other = Parts { logged_payload: Some(b"another statement".to_vec()), ..Parts::good() };
        untrusted(other.bundle(), "the log entry is of another payload");
        let other = Parts { logged_signature: Some(B64.encode(b"another signature")), ..Parts::good() };
        untrusted(other.bundle(), "another signature or certificate");

        // A log this root does not know: perhaps newer than the root, so
        // not checkable rather than a forgery; beside a forgery, the
        // forgery is what is said.
        let err = check(Parts { log_id: vec![9; 32], ..Parts::good() }.bundle()).unwrap_err();
        assert!(
            matches!(err, SigstoreError::Unsupported(_)) && err.to_string().contains("newer trusted root"),
            "{err}"
        );
        let mut forged = good.clone();
        forged["dsseEnvelope"]["payload"] = json!(B64.encode(b"{}"));
        let unknown_log = Parts { log_id: vec![9; 32], ..Parts::good() }.bundle();
        let both = json!({"attestations": [
            {"predicateType": "https://slsa.dev/provenance/v1", "bundle": forged},
            {"predicateType": "https://slsa.dev/provenance/v1", "bundle": unknown_log}]});
        let err = verify_npm_provenance(&both, &root(), NAME, "1.0.0", &SHA512).unwrap_err();
        assert!(matches!(err, SigstoreError::Untrusted(_)), "the forgery is not hidden: {err}");

        // A predicate that names another repository than the certificate.
        let mut st = statement("pkg:npm/%40example/pkg@1.0.0", &SHA512);
        st["predicate"]["buildDefinition"]["externalParameters"]["workflow"]["repository"] =
            json!("https://github.com/victim/pkg");
        mismatch(
            Parts { statement: st, ..Parts::good() }.bundle(),
            "certificate was issued to https://github.com/example/pkg",
        );

        // The same key, certified by a CA nobody trusts; logged properly.
        untrusted(Parts { cert: UNTRUSTED_LEAF.to_vec(), ..Parts::good() }.bundle(), "does not chain to Fulcio");

        // A real certificate, logged after it expired.
        untrusted(Parts { integrated: LOGGED_AT + 3600, ..Parts::good() }.bundle(), "does not chain to Fulcio");

        // Properly signed, but of another tarball or another package.
        mismatch(
            Parts { statement: statement("pkg:npm/%40example/pkg@1.0.0", &[8; 64]), ..Parts::good() }.bundle(),
            "not the file the registry serves",
        );
        mismatch(
            Parts { statement: statement("pkg:npm/%40example/other@1.0.0", &SHA512), ..Parts::good() }.bundle(),
            "not pkg:npm/%40example/pkg@1.0.0",
        );
        mismatch(
            Parts { statement: statement("pkg:npm/%40example/pkg@1.0.1", &SHA512), ..Parts::good() }.bundle(),
            "not pkg:npm/%40example/pkg@1.0.0",
        );
        let mut st = statement("pkg:npm/%40example/pkg@1.0.0", &SHA512);
        st["predicateType"] = json!("https://example.com/anything");
        mismatch(Parts { statement: st, ..Parts::good() }.bundle(), "not one of");

        // A digest of other characters is a mismatch, not a panic.
        let mut st = statement("pkg:npm/%40example/pkg@1.0.0", &SHA512);
        st["subject"][0]["digest"]["sha512"] = json!("aéééééééééééééééé");
        mismatch(Parts { statement: st, ..Parts::good() }.bundle(), "not the file the registry serves");

        // Only the publish attestation listed.
        let only_publish = json!({"attestations": [{"predicateType": "https://github.com/npm/attestation/tree/main/specs/publish/v0.1", "bundle": good}]});
        let err = verify_npm_provenance(&only_publish, &root(), NAME, "1.0.0", &SHA512).unwrap_err();
        assert!(matches!(err, SigstoreError::Mismatch(_)) && err.to_string().contains("no SLSA provenance"), "{err}");

        // Garbage in every field is malformed, never a panic.
        for (path, value) in [
            ("/dsseEnvelope/payload", json!("%%%")),
            ("/verificationMaterial/certificate/rawBytes", json!(5)),
            ("/verificationMaterial/tlogEntries", json!([])),
        ] {
            let mut b = good.clone();
            *b.pointer_mut(path).unwrap() = value;
            assert!(matches!(check(b), Err(SigstoreError::Malformed(_))), "{path}");
        }
        assert!(check(json!({})).is_err());
        assert!(verify_npm_provenance(&json!([]), &root(), NAME, "1.0.0", &SHA512).is_err());
    }

    /// A bundle as PyPI's integrity API serves it (PEP 740).
    fn pep740(bundle: &Value) -> Value {
        let m = &bundle["verificationMaterial"];
        json!({"version": 1, "attestation_bundles": [{
            "publisher": {"kind": "GitHub", "repository": "example/pkg", "workflow": "release.yml"},
            "attestations": [{"version": 1,
                "verification_material": {"certificate": m["certificate"]["rawBytes"], "transparency_entries": m["tlogEntries"]},
                "envelope": {"statement": bundle["dsseEnvelope"]["payload"], "signature": bundle["dsseEnvelope"]["signatures"][0]["sig"]}}]}]})
    }

    #[test]
    fn a_pep_740_attestation_attests_one_distribution_file_by_its_sha256() {
        const WHEEL: &str = "example-1.0-py3-none-any.whl";
        let sha256 = [5u8; 32];
        let publish = |name: &str, digest: &[u8]| {
            let st = json!({"_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": name, "digest": {"sha256": hex(digest)}}],
                "predicateType": "https://docs.pypi.org/attestations/publish/v1", "predicate": null});
            pep740(&Parts { statement: st, ..Parts::good() }.bundle())
        };
        let p = verify_pypi_provenance(&publish(WHEEL, &sha256), &root(), WHEEL, &sha256).unwrap();
        assert_eq!(p.source.as_deref(), Some("https://github.com/example/pkg"), "the certificate's repository");
        // The publisher is not signed: one that names another repository
        // than the certificate is refused, never shown.
        let mut other = publish(WHEEL, &sha256);
        other["attestation_bundles"][0]["publisher"]["repository"] = json!("victim/pkg");
        let err = verify_pypi_provenance(&other, &root(), WHEEL, &sha256).unwrap_err();
        assert!(matches!(err, SigstoreError::Mismatch(_)) && err.to_string().contains("victim/pkg"), "{err}");
        assert_eq!(p.predicate_type, "https://docs.pypi.org/attestations/publish/v1");
        let err = verify_pypi_provenance(&publish("example-1.0.tar.gz", &sha256), &root(), WHEEL, &sha256).unwrap_err();
        assert!(matches!(err, SigstoreError::Mismatch(_)) && err.to_string().contains(WHEEL), "{err}");
        let err = verify_pypi_provenance(&publish(WHEEL, &[6; 32]), &root(), WHEEL, &sha256).unwrap_err();
        assert!(err.to_string().contains("not the file the registry serves"), "{err}");
        let mut forged = publish(WHEEL, &sha256);
        forged["attestation_bundles"][0]["attestations"][0]["envelope"]["statement"] = json!(B64.encode(b"{}"));
        let err = verify_pypi_provenance(&forged, &root(), WHEEL, &sha256).unwrap_err();
        assert!(matches!(err, SigstoreError::Untrusted(_)), "{err}");
        assert!(matches!(
            verify_pypi_provenance(&json!({}), &root(), WHEEL, &sha256),
            Err(SigstoreError::Malformed(_))
        ));
    }

    /// Sigstore's public-good root ships with mcpod: Fulcio's two
    /// authorities and Rekor's two logs. An entry of the ed25519 log
    /// (Rekor v2, no inclusion promise) cannot be checked here, and says so
    /// rather than being taken for a forgery.
    #[test]
    fn the_public_good_root_ships_and_a_rekor_v2_entry_is_not_checkable_rather_than_forged() {
        let public = TrustedRoot::public_good();
        assert_eq!((public.authorities.len(), public.logs.len()), (2, 2));
        assert_eq!(public.logs.iter().filter(|l| l.p256.is_some()).count(), 1);
        let v2 = public.logs.iter().find(|l| l.p256.is_none()).unwrap().clone();
        // The test Fulcio beside the public logs: a certificate that
        // verifies, logged in the ed25519 log.
        let mut beside = root();
        beside.logs.push(v2.clone());
        let b = Parts { log_id: v2.key_id, ..Parts::good() }.bundle();
        let err = verify_npm_provenance(&doc(b), &beside, NAME, "1.0.0", &SHA512).unwrap_err();
        assert!(matches!(err, SigstoreError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("Rekor v2"), "{err}");
    }

    /// What the attestation claims (npm's predicate, PyPI's unsigned
    /// publisher) must be the repository Fulcio certified, however it is
    /// spelled; a claim the certificate cannot back is refused.
    #[test]
    fn a_claimed_repository_must_be_the_certified_one_however_it_is_spelled() {
        let names = ["pkg:npm/%40example/pkg@1.0.0".to_string()];
        let check = |certified: Option<&str>, claimed: Option<&str>| {
            let signed = Signed {
                statement: statement(&names[0], &SHA512),
                log_index: 1,
                repository: certified.map(String::from),
            };
            attests(&signed, SLSA, &names, "sha512", &hex(&SHA512), claimed)
        };
        let ok = check(Some("https://github.com/Example/Pkg"), Some("https://github.com/example/pkg.git/")).unwrap();
        assert_eq!(ok.source.as_deref(), Some("https://github.com/Example/Pkg"), "the certified spelling is shown");
        let err = check(None, Some("https://github.com/example/pkg")).unwrap_err();
        assert!(err.to_string().contains("names no source repository"), "{err}");
        let err = check(Some("https://github.com/example/pkg"), Some("https://github.com/example/pkg2")).unwrap_err();
        assert!(matches!(err, SigstoreError::Mismatch(_)), "{err}");
        assert_eq!(check(None, None).unwrap().source, None, "nothing claimed, nothing shown");
    }

    #[test]
    fn trusted_root_times_are_read_as_utc_seconds() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("2026-01-01T00:05:00Z"), Some(LOGGED_AT));
        assert_eq!(rfc3339("2022-12-31T23:59:59.999Z"), Some(1_672_531_199));
        assert_eq!(rfc3339("yesterday"), None);
        let bad = json!({"certificateAuthorities": [], "tlogs": [{"logId": {"keyId": "AA=="}}]});
        assert!(matches!(TrustedRoot::parse(&bad), Err(SigstoreError::Malformed(_))));
    }
}
