//! Pinned and verified packages: the resolving and checking against
//! recorded registry documents (`tests/data/registry/README.md` says where
//! each comes from), and a host that verifies through a registry of our
//! own on 127.0.0.1, serving those documents as they are and tampered with.

/// A recorded registry file.
fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/registry/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A recorded registry document.
fn doc(name: &str) -> serde_json::Value {
    serde_json::from_slice(&data(name)).unwrap()
}

mod npm_metadata {
    use mcpod::supply::npm::{self, NpmError, RegistryKey};
    use serde_json::json;

    const OLD_KEY: &str = "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA";
    const NEW_KEY: &str = "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U";

    use super::{data, doc};

    fn keys() -> Vec<RegistryKey> {
        npm::parse_keys(&doc("npm-keys.json")).unwrap()
    }

    #[test]
    fn parses_the_registry_keys() {
        let keys = keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].keyid, OLD_KEY);
        assert_eq!(keys[0].expires.as_deref(), Some("2025-01-29T00:00:00.000Z"));
        assert_eq!(keys[1].keyid, NEW_KEY);
        assert_eq!(keys[1].expires, None);
        assert!(keys.iter().all(|k| k.keytype == npm::KEYTYPE_P256));
        assert!(matches!(npm::parse_keys(&json!({"nope": []})), Err(NpmError::BadKeys { .. })));
        assert!(matches!(
            npm::parse_keys(&json!({"keys": [{"keyid": "x", "key": "y", "expires": "soon"}]})),
            Err(NpmError::BadKeys { .. })
        ));
    }

    #[test]
    fn resolves_server_everything_latest_caret_and_exact() {
        let p = doc("npm-server-everything.json");
        let latest = npm::resolve(&p, "latest").unwrap();
        assert_eq!(latest.name, "@modelcontextprotocol/server-everything");
        assert_eq!(latest.version, "2026.8.31");
        assert_eq!(
            latest.integrity,
            "sha512-5U3OZh8Xq0Li4nA26l6uNvV9/1suMDuWSn+NjLZIhzinhMY6N3A4DCrxVecBGPf2PsNFKTEv5krxGPRwzxc7jQ=="
        );
        assert_eq!(
            latest.tarball,
            "https://registry.npmjs.org/@modelcontextprotocol/server-everything/-/server-everything-2026.8.31.tgz"
        );
        assert_eq!(latest.published_at.as_deref(), Some("2026-09-02T05:06:16+00:00"));
        assert!(!latest.has_provenance());
        assert_eq!(npm::resolve(&p, "").unwrap(), latest);
        assert_eq!(npm::resolve(&p, "*").unwrap(), latest);
        // `latest` satisfies the range, so npm takes it.
        assert_eq!(npm::resolve(&p, "^2026.1.0").unwrap().version, "2026.8.31");
        // `latest` does not: highest satisfying.
        assert_eq!(npm::resolve(&p, "^2025.9.0").unwrap().version, "2025.12.18");
        assert_eq!(npm::resolve(&p, "^0.6.0").unwrap().version, "0.6.2");
        assert_eq!(npm::resolve(&p, "~2026.1.0").unwrap().version, "2026.1.26");
        assert_eq!(npm::resolve(&p, ">=2025.1.0 <2025.10.0").unwrap().version, "2025.9.25");
        assert_eq!(npm::resolve(&p, "<2025 || 2025.1.x").unwrap().version, "2025.1.14");
        let exact = npm::resolve(&p, "2026.1.26").unwrap();
        assert_eq!(exact.version, "2026.1.26");
        assert_eq!(
            exact.integrity,
            "sha512-RIEXAQuKZeXZqFzJMqLDlzmMmG5sjq2uhS/VqzF4HIZ3w1V73YcWf+UXkxJueJuHMBO3Z8ceBrQ5wI6o/plZ+Q=="
        );
        assert_eq!(npm::resolve(&p, "v2026.1.26").unwrap().version, "2026.1.26");
    }

    #[test]
    fn no_match_and_unknown_package_are_distinct() {
        let p = doc("npm-server-everything.json");
        let err = npm::resolve(&p, "2026.1.27").unwrap_err();
        let NpmError::NoMatchingVersion { spec, nearby, tags, .. } = &err else { panic!("{err:?}") };
        assert_eq!(spec, "2026.1.27");
        assert!(nearby.contains("2026.1.26") && nearby.contains("2026.8.18"), "{nearby}");
        assert_eq!(tags, "latest=2026.8.31");
        let msg = err.to_string();
        assert!(msg.contains("2026.1.27") && msg.contains("2026.1.26"), "{msg}");

        assert!(matches!(npm::resolve(&p, "^3000.0.0"), Err(NpmError::NoMatchingVersion { .. })));
        assert!(matches!(npm::resolve(&p, "next"), Err(NpmError::NoMatchingVersion { .. })));
        assert!(matches!(npm::resolve(&p, ">=abc"), Err(NpmError::InvalidSpec { .. })));

        let err = npm::resolve(&doc("npm-unknown.json"), "latest").unwrap_err();
        assert!(matches!(&err, NpmError::UnknownPackage { detail, .. } if detail.contains("Not found")), "{err:?}");
        assert!(matches!(
            npm::resolve(&json!({"name": "x", "versions": {}}), ""),
            Err(NpmError::UnknownPackage { .. })
        ));
        assert!(matches!(npm::resolve(&json!([]), ""), Err(NpmError::UnknownPackage { .. })));
    }

    #[test]
    fn prereleases_tags_and_deprecation_follow_npm() {
        let mut p = doc("npm-server-everything.json");
        let mut pre = p["versions"]["2026.8.31"].clone();
        pre["version"] = json!("2026.9.0-beta.1");
        p["versions"]["2026.9.0-beta.1"] = pre;
        p["dist-tags"]["next"] = json!("2026.9.0-beta.1");
        assert_eq!(npm::resolve(&p, "next").unwrap().version, "2026.9.0-beta.1");
        assert!(matches!(npm::resolve(&p, ">2026.8.31"), Err(NpmError::NoMatchingVersion { .. })));
        assert_eq!(npm::resolve(&p, ">=2026.9.0-beta.0").unwrap().version, "2026.9.0-beta.1");
        assert_eq!(npm::resolve(&p, "2026.9.0-beta.1").unwrap().version, "2026.9.0-beta.1");

        // Deprecated versions rank after non-deprecated ones...
        p["versions"]["2025.12.18"]["deprecated"] = json!("use 2026");
        assert_eq!(npm::resolve(&p, "^2025.9.0").unwrap().version, "2025.9.25");
        // ...but an exact pin or a satisfying `latest` still wins, and the flag is surfaced.
        let pinned = npm::resolve(&p, "2025.12.18").unwrap();
        assert_eq!(pinned.deprecated.as_deref(), Some("use 2026"));
        p["versions"]["2026.8.31"]["deprecated"] = json!("old");
        assert_eq!(npm::resolve(&p, "^2026.0.0").unwrap().version, "2026.8.31");
    }

    #[test]
    fn real_signature_verifies_with_the_real_key() {
        let p = doc("npm-isaacs-namespace-test.json");
        let r = npm::resolve(&p, "latest").unwrap();
        assert_eq!(r.id(), "@isaacs/namespace-test@1.0.0");
        assert_eq!(r.signatures.len(), 1);
        assert_eq!(r.published_at.as_deref(), Some("2019-06-28T18:46:27.981Z"));
        let by = npm::verify_signature(&r, &keys(), r.published_at.as_deref()).unwrap();
        assert_eq!(by.keyids, vec![OLD_KEY.to_owned()]);
        // Unknown publish time: pacote's 2015 cutoff is before the key's expiry.
        assert!(npm::verify_signature(&r, &keys(), None).is_ok());

        // And the current key, on a 2026 publish.
        let cc = npm::resolve(&doc("npm-claude-code-linux-x64.json"), "2.1.117").unwrap();
        let by = npm::verify_signature(&cc, &keys(), cc.published_at.as_deref()).unwrap();
        assert_eq!(by.keyids, vec![NEW_KEY.to_owned()]);
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let r = npm::resolve(&doc("npm-isaacs-namespace-test.json"), "1.0.0").unwrap();
        let mut tampered = r.clone();
        tampered.integrity = tampered.integrity.replacen("5ZYe", "5ZYf", 1);
        let err = npm::verify_signature(&tampered, &keys(), r.published_at.as_deref()).unwrap_err();
        assert_eq!(err, NpmError::BadSignature { id: r.id(), keyid: OLD_KEY.to_owned() });
        assert!(err.to_string().contains("do not install"));

        let mut renamed = r.clone();
        renamed.name = "@isaacs/namespace-tesT".to_owned();
        assert!(matches!(npm::verify_signature(&renamed, &keys(), None), Err(NpmError::BadSignature { .. })));

        let mut garbage = r.clone();
        garbage.signatures[0].sig = "nope".to_owned();
        assert!(matches!(npm::verify_signature(&garbage, &keys(), None), Err(NpmError::BadSignature { .. })));

        // A valid signature presented under the other key's id does not verify either.
        let mut swapped = r.clone();
        swapped.signatures[0].keyid = NEW_KEY.to_owned();
        assert!(matches!(npm::verify_signature(&swapped, &keys(), None), Err(NpmError::BadSignature { .. })));
    }

    #[test]
    fn unknown_key_unsigned_and_expired_are_refused() {
        let r = npm::resolve(&doc("npm-isaacs-namespace-test.json"), "1.0.0").unwrap();
        let only_new: Vec<RegistryKey> = keys().into_iter().filter(|k| k.keyid == NEW_KEY).collect();
        assert_eq!(
            npm::verify_signature(&r, &only_new, r.published_at.as_deref()).unwrap_err(),
            NpmError::UnknownKey { id: r.id(), keyid: OLD_KEY.to_owned() }
        );

        // The mirror-recorded server-everything packument carries no dist.signatures.
        let unsigned = npm::resolve(&doc("npm-server-everything.json"), "latest").unwrap();
        assert!(unsigned.signatures.is_empty());
        assert_eq!(
            npm::verify_signature(&unsigned, &keys(), unsigned.published_at.as_deref()).unwrap_err(),
            NpmError::Unsigned { id: "@modelcontextprotocol/server-everything@2026.8.31".to_owned() }
        );

        // The old key expired 2025-01-29: a version "published" after that is refused.
        let err = npm::verify_signature(&r, &keys(), Some("2025-06-01T00:00:00.000Z")).unwrap_err();
        assert!(
            matches!(&err, NpmError::ExpiredKey { keyid, expires, .. }
            if keyid == OLD_KEY && expires == "2025-01-29T00:00:00.000Z"),
            "{err:?}"
        );
        // Exactly at expiry is already too late (pacote: published < expires).
        assert!(matches!(
            npm::verify_signature(&r, &keys(), Some("2025-01-29T00:00:00.000Z")),
            Err(NpmError::ExpiredKey { .. })
        ));
        // pacote's own test: a key that expired in 2010 refuses a 2019 publish.
        let mut old = keys();
        old[0].expires = Some("2010-01-01T00:00:00.000Z".to_owned());
        assert!(matches!(npm::verify_signature(&r, &old, r.published_at.as_deref()), Err(NpmError::ExpiredKey { .. })));
        assert!(matches!(npm::verify_signature(&r, &keys(), Some("last tuesday")), Err(NpmError::BadTimestamp { .. })));

        let mut weird = keys();
        weird[0].keytype = "ssh-ed25519".to_owned();
        assert!(matches!(npm::verify_signature(&r, &weird, None), Err(NpmError::UnsupportedKeyType { .. })));
        let mut broken = keys();
        broken[0].key = "AAAA".to_owned();
        assert!(matches!(npm::verify_signature(&r, &broken, None), Err(NpmError::BadKey { .. })));
    }

    #[test]
    fn tarball_integrity() {
        let r = npm::resolve(&doc("npm-is-number.json"), "^7").unwrap();
        assert_eq!(r.version, "7.0.0");
        let tgz = data("is-number-7.0.0.tgz");
        npm::verify_integrity(&r.integrity, &tgz).unwrap();

        let mut flipped = tgz.clone();
        flipped[100] ^= 0x01;
        let err = npm::verify_integrity(&r.integrity, &flipped).unwrap_err();
        let NpmError::IntegrityMismatch { expected, actual } = &err else { panic!("{err:?}") };
        assert_eq!(expected, &r.integrity);
        assert!(actual.starts_with("sha512-") && actual != &r.integrity);
        assert!(err.to_string().contains(&r.integrity));

        let ns = npm::resolve(&doc("npm-isaacs-namespace-test.json"), "").unwrap();
        npm::verify_integrity(&ns.integrity, &data("namespace-test-1.0.0.tgz")).unwrap();
    }

    #[test]
    fn integrity_uses_the_strongest_hash() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let tgz = data("is-number-7.0.0.tgz");
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let s256 = format!("sha256-{}", b64(&sha2::Sha256::digest(&tgz)));
        let s384 = format!("sha384-{}", b64(&sha2::Sha384::digest(&tgz)));
        let s512 = format!("sha512-{}", b64(&sha2::Sha512::digest(&tgz)));
        let wrong512 = format!("sha512-{}", b64(&sha2::Sha512::digest(b"other")));
        npm::verify_integrity(&s256, &tgz).unwrap();
        npm::verify_integrity(&s384, &tgz).unwrap();
        npm::verify_integrity(&format!("{s256} {s512}"), &tgz).unwrap();
        npm::verify_integrity(&format!("{s384}?opt=1 sha1-abc"), &tgz).unwrap();
        // Two sha512 entries: either may match.
        npm::verify_integrity(&format!("{wrong512} {s512}"), &tgz).unwrap();
        // The strongest algorithm present must match; a matching weaker one does not rescue it.
        assert!(matches!(
            npm::verify_integrity(&format!("{s256} {wrong512}"), &tgz),
            Err(NpmError::IntegrityMismatch { .. })
        ));
        assert!(matches!(
            npm::verify_integrity("sha1-dTU0W4lnNNX4DE0GxQlVUnoU8Ss=", &tgz),
            Err(NpmError::BadIntegrity { .. })
        ));
        assert!(matches!(npm::verify_integrity("", &tgz), Err(NpmError::BadIntegrity { .. })));
    }

    #[test]
    fn provenance_presence_is_surfaced() {
        let mut p = doc("npm-isaacs-namespace-test.json");
        assert!(!npm::resolve(&p, "1.0.0").unwrap().has_provenance());
        p["versions"]["1.0.0"]["dist"]["attestations"] = json!({
            "url": "https://registry.npmjs.org/-/npm/v1/attestations/@isaacs/namespace-test@1.0.0",
            "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}
        });
        let r = npm::resolve(&p, "1.0.0").unwrap();
        assert!(r.has_provenance());
        let a = r.attestations.unwrap();
        assert_eq!(a.predicate_type.as_deref(), Some("https://slsa.dev/provenance/v1"));
    }

    #[test]
    fn old_publishes_fall_back_to_shasum() {
        let mut p = doc("npm-is-number.json");
        let dist = p["versions"]["6.0.0"]["dist"].as_object_mut().unwrap();
        dist.remove("integrity");
        dist.insert("shasum".to_owned(), json!("7535345b896734d5f80c4d06c50955527a14f12b"));
        let r = npm::resolve(&p, "6.0.0").unwrap();
        assert_eq!(r.integrity, "sha1-dTU0W4lnNNX4DE0GxQlVUnoU8Ss=");
        p["versions"]["6.0.0"]["dist"] = json!({"tarball": "https://example.invalid/x.tgz"});
        assert!(matches!(npm::resolve(&p, "6.0.0"), Err(NpmError::MalformedPackument { .. })));
    }
}

mod pypi_metadata {
    use mcpod::supply::pypi::{self, FileKind, PypiError};
    use serde_json::json;

    use super::{data, doc};

    #[test]
    fn resolves_latest_exact_and_ranges() {
        let d = doc("pypi-mcp-server-time.json");
        let latest = pypi::resolve(&d, "latest").unwrap();
        assert_eq!(latest.name, "mcp-server-time");
        assert_eq!(latest.version, "2026.10.19");
        assert_eq!(latest.files.len(), 2);
        let wheel = latest.files.iter().find(|f| f.kind == FileKind::Wheel).unwrap();
        assert_eq!(wheel.filename, "mcp_server_time-2026.10.19-py3-none-any.whl");
        assert_eq!(wheel.sha256, "5c099a001c6ca78260bda419f2e9b2aabee1adc4fe6ca56d8959871ad8da58a1");
        assert!(wheel.url.starts_with("https://") && wheel.url.ends_with(&wheel.filename), "{}", wheel.url);
        assert_eq!(wheel.requires_python.as_deref(), Some(">=3.10"));
        assert!(latest.files.iter().any(|f| f.kind == FileKind::Sdist && f.filename.ends_with(".tar.gz")));
        assert_eq!(pypi::resolve(&d, "").unwrap(), latest);

        assert_eq!(pypi::resolve(&d, "==2026.8.18").unwrap().version, "2026.8.18");
        assert_eq!(pypi::resolve(&d, "2026.8.18").unwrap().version, "2026.8.18");
        assert_eq!(pypi::resolve(&d, ">=2025.9,<2026").unwrap().version, "2025.9.25");
        assert_eq!(pypi::resolve(&d, "~=0.6.0").unwrap().version, "0.6.2");
        assert_eq!(pypi::resolve(&d, "~=2026.8").unwrap().version, "2026.10.19");
        assert_eq!(pypi::resolve(&d, "<2026.10.19").unwrap().version, "2026.10.10");
        assert_eq!(pypi::resolve(&d, "==2026.*, !=2026.10.*").unwrap().version, "2026.8.18");
        let only_wheel = pypi::resolve(&d, "==0.6.0").unwrap();
        assert_eq!(only_wheel.files.len(), 1);
        assert_eq!(only_wheel.files[0].kind, FileKind::Wheel);
    }

    #[test]
    fn hash_pinned_requirement_line() {
        let r = pypi::resolve(&doc("pypi-mcp-server-time.json"), "latest").unwrap();
        let mut expected = String::from("mcp-server-time==2026.10.19");
        for f in &r.files {
            expected.push_str(&format!(" --hash=sha256:{}", f.sha256));
        }
        expected.push('\n');
        assert_eq!(pypi::requirement_lines(&r), expected);
        assert!(expected.contains("--hash=sha256:5c099a001c6ca78260bda419f2e9b2aabee1adc4fe6ca56d8959871ad8da58a1"));
        assert_eq!(expected.matches("--hash=").count(), 2);
    }

    #[test]
    fn no_match_yanked_and_unknown_are_distinct() {
        let d = doc("pypi-mcp-server-time.json");
        let err = pypi::resolve(&d, "==2026.9.1").unwrap_err();
        let PypiError::NoMatchingVersion { nearby, .. } = &err else { panic!("{err:?}") };
        assert!(nearby.contains("2026.8.18") && nearby.contains("2026.10.10"), "{nearby}");
        assert!(err.to_string().contains("==2026.9.1"));

        let r = doc("pypi-requests.json");
        let err = pypi::resolve(&r, "==2.32.0").unwrap_err();
        assert_eq!(
            err,
            PypiError::Yanked {
                name: "requests".to_owned(),
                version: "2.32.0".to_owned(),
                reason: "Yanked due to conflicts with CVE-2024-35195 mitigation".to_owned(),
            }
        );
        assert!(matches!(pypi::resolve(&r, ">=2.32.0,<2.32.2"),
            Err(PypiError::Yanked { version, .. }) if version == "2.32.1"));
        assert_eq!(pypi::resolve(&r, ">=2.32.0,<2.33").unwrap().version, "2.32.2");
        assert_eq!(pypi::resolve(&r, "~=2.31").unwrap().version, "2.34.2");
        assert_eq!(pypi::resolve(&r, "latest").unwrap().version, "2.34.2");

        let err = pypi::resolve(&doc("pypi-unknown.json"), "latest").unwrap_err();
        assert!(matches!(&err, PypiError::UnknownProject { detail } if detail.contains("Not Found")), "{err:?}");
        assert!(matches!(
            pypi::resolve(&json!({"info": {"name": "x", "version": "1.0"}}), "latest"),
            Err(PypiError::MissingReleases { .. })
        ));
        assert!(matches!(pypi::resolve(&d, "===1.0"), Err(PypiError::UnsupportedSpec { .. })));
        assert!(matches!(pypi::resolve(&d, "bogus"), Err(PypiError::InvalidSpec { .. })));
    }

    #[test]
    fn yanked_files_are_dropped_and_prereleases_need_asking() {
        let mut d = doc("pypi-mcp-server-time.json");
        d["releases"]["2026.10.19"][0]["yanked"] = json!(true);
        let r = pypi::resolve(&d, "latest").unwrap();
        assert_eq!(r.files.len(), 1);

        d["releases"]["2026.11.0rc1"] = d["releases"]["2026.10.10"].clone();
        assert_eq!(pypi::resolve(&d, ">=2026.10").unwrap().version, "2026.10.19");
        assert_eq!(pypi::resolve(&d, ">=2026.11.0rc1").unwrap().version, "2026.11.0rc1");
        d["releases"]["2026.12.0"] = json!([]);
        assert!(matches!(pypi::resolve(&d, "==2026.12.0"), Err(PypiError::NoFiles { .. })));
    }

    #[test]
    fn verifies_a_real_wheel() {
        let simple = doc("pypi-mcp-server-time.simple.json");
        let entry = simple["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filename"] == "mcp_server_time-0.5.1-py3-none-any.whl")
            .unwrap();
        let sha = entry["hashes"]["sha256"].as_str().unwrap();
        let wheel = data("mcp_server_time-0.5.1-py3-none-any.whl");
        pypi::verify_file(sha, &wheel).unwrap();
        pypi::verify_file(&sha.to_uppercase(), &wheel).unwrap();

        let mut flipped = wheel.clone();
        flipped[42] ^= 0x80;
        let err = pypi::verify_file(sha, &flipped).unwrap_err();
        assert!(matches!(&err, PypiError::HashMismatch { expected, actual } if expected == sha && actual != sha));
        assert!(err.to_string().contains(sha));
        assert!(matches!(pypi::verify_file("abc", &wheel), Err(PypiError::BadDigest { .. })));
    }

    #[test]
    fn provenance_urls_from_the_simple_api() {
        // Recorded through the registry mirror, which serves api-version 1.1 without provenance.
        assert!(pypi::files_with_provenance(&doc("pypi-mcp-server-time.simple.json")).unwrap().is_empty());
        let marked = pypi::files_with_provenance(&doc("pypi-simple-provenance.synthetic.json")).unwrap();
        let names: Vec<&str> = marked.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["mcp_server_time-2026.10.19-py3-none-any.whl", "mcp_server_time-2026.10.19.tar.gz"]);
        assert_eq!(
            marked[0].provenance_url,
            "https://pypi.org/integrity/mcp-server-time/2026.10.19/mcp_server_time-2026.10.19-py3-none-any.whl/provenance"
        );
        assert!(matches!(pypi::files_with_provenance(&json!({})), Err(PypiError::MalformedDocument { .. })));
    }
}

/// A package registry on 127.0.0.1 serving what the test puts in it.
mod registry {
    use axum::http::{HeaderMap, StatusCode, Uri};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// Paths (percent-encoded, as requested) and their bodies; a token every
    /// request must carry, when set.
    #[derive(Default)]
    pub struct Files {
        pub files: HashMap<String, Vec<u8>>,
        pub token: Option<String>,
        pub asked: Vec<String>,
    }

    /// Starts it; its base URL and what it serves.
    pub async fn start() -> (String, Arc<Mutex<Files>>) {
        let files = Arc::new(Mutex::new(Files::default()));
        let state = files.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let state = state.clone();
            async move {
                let mut f = state.lock().unwrap();
                f.asked.push(uri.path().to_string());
                if let Some(t) = &f.token {
                    let sent = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if sent != Some(&format!("Bearer {t}")) {
                        return (StatusCode::UNAUTHORIZED, Vec::new());
                    }
                }
                match f.files.get(uri.path()) {
                    Some(body) => (StatusCode::OK, body.clone()),
                    None => (StatusCode::NOT_FOUND, br#"{"error":"Not found"}"#.to_vec()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (base, files)
    }
}

use crate::support::*;
use serde_json::{Value, json};

const PACKUMENT: &str = "/@isaacs%2fnamespace-test";
const TARBALL: &str = "/@isaacs/namespace-test/-/namespace-test-1.0.0.tgz";

/// The real packument of `@isaacs/namespace-test` (signed by the registry's
/// old key in 2019), its tarball served by `base`, passed through `edit`.
fn packument(base: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut doc = doc("npm-isaacs-namespace-test.json");
    doc["versions"]["1.0.0"]["dist"]["tarball"] = json!(format!("{base}{TARBALL}"));
    edit(&mut doc);
    serde_json::to_vec(&doc).unwrap()
}

async fn start_npm(host: &TestHost) -> (u16, Value) {
    let resp = host.post_server(json!({"server_type": "npx", "package": "@isaacs/namespace-test"})).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// A host whose npm registry is the test registry at `base`, with its
/// recorded signing keys (the file, kept while the host runs), starts that
/// fail at once, and `tweak` on top.
async fn npm_host(base: &str, tweak: impl FnOnce(&mut mcpod::config::Config)) -> (TestHost, tempfile::NamedTempFile) {
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), data("npm-keys.json")).unwrap();
    let host = start_host(|c| {
        c.packages.npm_registry = base.to_string();
        c.packages.npm_keys_file = Some(keys.path().to_path_buf());
        c.limits.max_restarts = 0;
        c.limits.start_timeout_secs = 5;
        tweak(c);
    })
    .await;
    (host, keys)
}

async fn servers(host: &TestHost) -> Vec<Value> {
    host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_npm_package_runs_pinned_when_its_signature_and_integrity_hold_and_nothing_starts_when_either_is_tampered_with()
 {
    let (base, reg) = registry::start().await;
    let (host, _keys) = npm_host(&base, |c| {
        c.packages.require_signatures = true;
        // Each scenario serves new metadata.
        c.packages.cache_secs = 0;
    })
    .await;
    let serve = |packument: Vec<u8>, tarball: Vec<u8>| {
        let mut r = reg.lock().unwrap();
        r.files.insert(PACKUMENT.into(), packument);
        r.files.insert(TARBALL.into(), tarball);
    };
    let tgz = data("namespace-test-1.0.0.tgz");

    // Tampered metadata: the integrity the signature covers was changed.
    serve(packument(&base, |d| d["versions"]["1.0.0"]["dist"]["integrity"] = json!("sha512-AAAA")), tgz.clone());
    let (status, body) = start_npm(&host).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("signature"), "{body}");
    // Tampered tarball: metadata and signature fine, the bytes are not.
    serve(packument(&base, |_| {}), data("is-number-7.0.0.tgz"));
    let (status, body) = start_npm(&host).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("integrity"), "{body}");
    // Unsigned, with signatures required.
    serve(
        packument(&base, |d| {
            d["versions"]["1.0.0"]["dist"].as_object_mut().unwrap().remove("signatures").map(drop).unwrap()
        }),
        tgz.clone(),
    );
    let (status, body) = start_npm(&host).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unsigned: the registry gave no signature"), "{body}");
    // Signed by a key the registry does not publish.
    serve(
        packument(&base, |d| {
            d["versions"]["1.0.0"]["dist"]["signatures"][0]["keyid"] = json!("SHA256:not-a-registry-key")
        }),
        tgz.clone(),
    );
    let (status, body) = start_npm(&host).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("SHA256:not-a-registry-key"), "{body}");
    // A package that does not exist.
    let resp = host.post_server(json!({"server_type": "npx", "package": "@isaacs/no-such-package"})).await;
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("does not exist"), "{body}");
    assert_eq!(servers(&host).await, Vec::<Value>::new(), "nothing was started");

    // The real thing: pinned to the version `latest` names, with what was checked.
    serve(packument(&base, |_| {}), tgz.clone());
    let (status, body) = start_npm(&host).await;
    assert_eq!(status, 201, "{body}");
    let pinned = &body["packages"][0];
    assert_eq!((pinned["name"].as_str(), pinned["version"].as_str()), (Some("@isaacs/namespace-test"), Some("1.0.0")));
    assert_eq!(pinned["requested"], "latest");
    let verified = pinned["verified"].to_string();
    assert!(
        verified.contains("registry signature by SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"),
        "{verified}"
    );
    assert!(verified.contains("tarball matches its integrity sha512-"), "{verified}");
    // A second start of the same version checks the metadata again, and
    // does not download a tarball whose integrity was checked already.
    let tarballs = || reg.lock().unwrap().asked.iter().filter(|p| *p == TARBALL).count();
    let before = tarballs();
    let (status, _) = start_npm(&host).await;
    assert_eq!(status, 201);
    assert_eq!(tarballs(), before, "the tarball is checked once");
    let metrics = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    let counted = |outcome: &str| {
        let series =
            format!("mcpod_registry_requests_total{{registry=\"npm\",operation=\"verify\",outcome=\"{outcome}\"}}");
        metrics.lines().find(|l| l.starts_with(&series)).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    // Six packuments read (keys come from the file) and two tarballs
    // downloaded (the swapped one, the real one once).
    assert_eq!(counted("ok"), Some(8.0), "each lookup and download is counted: {metrics}");
    assert_eq!(counted("not_found"), Some(1.0), "the package that does not exist: {metrics}");
}

/// A recorded test Sigstore file (`tests/data/sigstore/make.py` makes them).
fn sigstore(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/sigstore/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// npm provenance through a host: the registry lists attestations, the
/// host fetches them and checks the bundle against the trusted root it was
/// given (a test Fulcio and Rekor). A bundle that does not vouch for the
/// tarball starts nothing, `require_provenance` or not; one the registry
/// does not serve is said, and refused only when provenance is required.
#[tokio::test(flavor = "multi_thread")]
async fn npm_provenance_is_checked_against_sigstore_and_a_bundle_that_does_not_vouch_for_the_tarball_starts_nothing() {
    const ATTESTATIONS: &str = "/-/npm/v1/attestations/@isaacs%2fnamespace-test@1.0.0";
    let (base, reg) = registry::start().await;
    let root = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(root.path(), sigstore("trusted_root.json")).unwrap();
    let config = |require: bool| {
        let root = root.path().to_path_buf();
        move |c: &mut mcpod::config::Config| {
            c.packages.cache_secs = 0;
            c.packages.require_provenance = require;
            c.packages.sigstore_trusted_root_file = Some(root);
        }
    };
    let (host, _keys) = npm_host(&base, config(false)).await;
    let (strict, _keys2) = npm_host(&base, config(true)).await;
    let listed = packument(&base, |d| {
        d["versions"]["1.0.0"]["dist"]["attestations"] = json!({
            "url": format!("{base}{ATTESTATIONS}"),
            "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}
        })
    });
    let provenance: Value = serde_json::from_slice(&sigstore("namespace-test-provenance.json")).unwrap();
    let serve = |attestations: Option<&Value>| {
        let mut r = reg.lock().unwrap();
        r.files.insert(PACKUMENT.into(), listed.clone());
        r.files.insert(TARBALL.into(), data("namespace-test-1.0.0.tgz"));
        match attestations {
            Some(doc) => r.files.insert(ATTESTATIONS.into(), serde_json::to_vec(doc).unwrap()),
            None => r.files.remove(ATTESTATIONS),
        };
    };

    // The real tarball with its bundle: verified, and the source named.
    serve(Some(&provenance));
    for h in [&host, &strict] {
        let (status, body) = start_npm(h).await;
        assert_eq!(status, 201, "{body}");
        let verified = body["packages"][0]["verified"].to_string();
        assert!(
            verified.contains("SLSA provenance from https://github.com/example/pkg (Sigstore, Rekor entry 42)"),
            "{verified}"
        );
    }
    let running = servers(&host).await.len();

    // The bundle of another tarball (its subject digest changed, the
    // envelope no longer what the log took), or one whose log promise was
    // changed: refused by both hosts, nothing started.
    let mut other = provenance.clone();
    let payload = other["attestations"][0]["bundle"]["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
    let statement = String::from_utf8(base64_decode(&payload)).unwrap();
    let digest = statement.split("\"sha512\":\"").nth(1).unwrap()[..128].to_string();
    let swapped = statement.replace(&digest, &"0".repeat(128));
    other["attestations"][0]["bundle"]["dsseEnvelope"]["payload"] = json!(base64_encode(swapped.as_bytes()));
    let mut late = provenance.clone();
    late["attestations"][0]["bundle"]["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = json!("1767225601");
    for (doc, says) in [
        (&other, "the envelope's signature is not the certificate's"),
        (&late, "signed entry timestamp does not verify"),
    ] {
        serve(Some(doc));
        for h in [&host, &strict] {
            let (status, body) = start_npm(h).await;
            assert_eq!(status, 403, "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(says) && message.contains("nothing was started"), "{message}");
        }
    }
    assert_eq!(servers(&host).await.len(), running, "nothing was started");

    // Listed but not served: said; refused only where provenance is required.
    serve(None);
    let (status, body) = start_npm(&host).await;
    assert_eq!(status, 201, "{body}");
    let unverified = body["packages"][0]["unverified"].to_string();
    assert!(unverified.contains("provenance listed but not served (404"), "{unverified}");
    let (status, body) = start_npm(&strict).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("require_provenance is on"), "{body}");
}

/// PEP 740 through a host: the simple API lists the wheel's provenance,
/// the host fetches it and checks it as npm's; an attestation of another
/// file starts nothing, one not served is said.
#[tokio::test(flavor = "multi_thread")]
async fn a_pep_740_attestation_is_checked_against_sigstore_and_one_of_another_file_starts_nothing() {
    const WHEEL: &str = "mcp_server_time-0.5.1-py3-none-any.whl";
    let (base, reg) = registry::start().await;
    let wheel = data(WHEEL);
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&wheel).iter().map(|b| format!("{b:02x}")).collect()
    };
    let provenance_path = format!("/integrity/mcp-server-time/0.5.1/{WHEEL}/provenance");
    let simple = json!({"meta": {"api-version": "1.3"}, "name": "mcp-server-time", "files": [{
        "filename": WHEEL, "url": format!("{base}/packages/{WHEEL}"), "hashes": {"sha256": sha},
        "provenance": format!("{base}{provenance_path}")}]});
    let project = json!({"info": {"name": "mcp-server-time", "version": "0.5.1"}, "releases": {"0.5.1": [{
        "filename": WHEEL, "packagetype": "bdist_wheel", "url": format!("{base}/packages/{WHEEL}"),
        "digests": {"sha256": sha}}]}});
    let provenance: Value = serde_json::from_slice(&sigstore("mcp-server-time-provenance.json")).unwrap();
    let serve = |attestation: Option<&Value>| {
        let mut r = reg.lock().unwrap();
        r.files.insert("/pypi/mcp-server-time/json".into(), serde_json::to_vec(&project).unwrap());
        r.files.insert("/simple/mcp-server-time/".into(), serde_json::to_vec(&simple).unwrap());
        r.files.insert(format!("/packages/{WHEEL}"), wheel.clone());
        match attestation {
            Some(doc) => r.files.insert(provenance_path.clone(), serde_json::to_vec(doc).unwrap()),
            None => r.files.remove(&provenance_path),
        };
    };
    let root = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(root.path(), sigstore("trusted_root.json")).unwrap();
    let host = start_host(|c| {
        c.packages.pypi_index = base.clone();
        c.packages.cache_secs = 0;
        c.packages.sigstore_trusted_root_file = Some(root.path().to_path_buf());
        c.limits.max_restarts = 0;
        c.limits.start_timeout_secs = 5;
    })
    .await;
    let start = async || -> (u16, Value) {
        let resp = host.post_server(json!({"server_type": "uv", "package": "mcp-server-time"})).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    };

    serve(Some(&provenance));
    let (status, body) = start().await;
    assert_eq!(status, 201, "{body}");
    let verified = body["packages"][0]["verified"].to_string();
    assert!(
        verified.contains(&format!(
            "PEP 740 attestation of {WHEEL} from https://github.com/example/pkg (Sigstore, Rekor entry 42)"
        )),
        "{verified}"
    );

    // The attestation of the sdist served for the wheel: its statement
    // names another file, and the log took another payload.
    let mut other = provenance.clone();
    let statement = &mut other["attestation_bundles"][0]["attestations"][0]["envelope"]["statement"];
    let text = String::from_utf8(base64_decode(statement.as_str().unwrap())).unwrap();
    *statement = json!(base64_encode(text.replace(WHEEL, "mcp_server_time-0.5.1.tar.gz").as_bytes()));
    serve(Some(&other));
    let (status, body) = start().await;
    assert_eq!(status, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("signature is not the certificate's") && message.contains("nothing was started"),
        "{message}"
    );
    assert_eq!(servers(&host).await.len(), 1, "nothing more was started");

    serve(None);
    let (status, body) = start().await;
    assert_eq!(status, 201, "{body}");
    assert!(body["packages"][0]["unverified"].to_string().contains("listed but not served (404"), "{body}");
    // Where provenance is required, the same answer starts nothing.
    let strict = start_host(|c| {
        c.packages.pypi_index = base.clone();
        c.packages.require_provenance = true;
        c.limits.max_restarts = 0;
    })
    .await;
    let resp = strict.post_server(json!({"server_type": "uv", "package": "mcp-server-time"})).await;
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("require_provenance is on"), "{body}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pypi_package_is_pinned_by_version_and_hash_and_a_private_index_needs_its_token() {
    let (base, reg) = registry::start().await;
    let wheel = data("mcp_server_time-0.5.1-py3-none-any.whl");
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&wheel).iter().map(|b| format!("{b:02x}")).collect()
    };
    let file = |sha: &str| {
        json!({"filename": "mcp_server_time-0.5.1-py3-none-any.whl", "packagetype": "bdist_wheel",
               "url": "../../packages/mcp_server_time-0.5.1-py3-none-any.whl", "digests": {"sha256": sha}})
    };
    let doc = |sha: &str| {
        serde_json::to_vec(&json!({"info": {"name": "mcp-server-time", "version": "0.5.1"},
                                   "releases": {"0.5.1": [file(sha)], "0.4.0": []}}))
        .unwrap()
    };
    {
        let mut r = reg.lock().unwrap();
        r.files.insert("/pypi/mcp-server-time/json".into(), doc(&"0".repeat(64)));
        r.files.insert("/packages/mcp_server_time-0.5.1-py3-none-any.whl".into(), wheel.clone());
        r.token = Some("s3cret".into());
    }
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "s3cret\n").unwrap();
    let make = |with_token: bool| {
        let base = base.clone();
        let token = token.path().to_path_buf();
        start_host(move |c| {
            c.packages.pypi_index = base;
            c.packages.pypi_token_file = with_token.then_some(token);
            c.limits.max_restarts = 0;
            c.limits.start_timeout_secs = 5;
        })
    };
    let start = async |host: &TestHost, package: &str| -> (u16, Value) {
        let resp = host.post_server(json!({"server_type": "uv", "package": package})).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    };

    let without = make(false).await;
    let (status, body) = start(&without, "mcp-server-time").await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("pypi_token_file"), "{body}");

    let host = make(true).await;
    let (status, body) = start(&host, "mcp-server-time").await;
    assert_eq!(status, 403, "the wheel does not hash to what the index says: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("hash mismatch"), "{body}");
    let (status, body) = start(&host, "mcp-server-time==0.4.0").await;
    assert_eq!(status, 400, "a release without files: {body}");
    assert_eq!(servers(&host).await, Vec::<Value>::new(), "nothing was started");

    reg.lock().unwrap().files.insert("/pypi/mcp-server-time/json".into(), doc(&sha));
    // The metadata cache holds the old document for [packages] cache_secs;
    // a new host reads the new one.
    let host = make(true).await;
    let (status, body) = start(&host, "mcp-server-time").await;
    assert_eq!(status, 201, "{body}");
    let pinned = &body["packages"][0];
    assert_eq!((pinned["version"].as_str(), pinned["requested"].as_str()), (Some("0.5.1"), Some("latest")));
    assert!(pinned["verified"].to_string().contains(&sha[..12]), "{pinned}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_may_pin_a_version_itself_and_still_gets_it_verified() {
    let (base, reg) = registry::start().await;
    let (host, _keys) = npm_host(&base, |_| {}).await;
    // A newer, unsigned 1.1.0 is `latest`; the signed 1.0.0 is still there.
    let doc = packument(&base, |d| {
        let mut newer = d["versions"]["1.0.0"].clone();
        newer["version"] = json!("1.1.0");
        newer["dist"].as_object_mut().unwrap().remove("signatures");
        d["versions"]["1.1.0"] = newer;
        d["dist-tags"]["latest"] = json!("1.1.0");
    });
    {
        let mut r = reg.lock().unwrap();
        r.files.insert(PACKUMENT.into(), doc);
        r.files.insert(TARBALL.into(), data("namespace-test-1.0.0.tgz"));
    }
    let start = async |body: Value| -> (u16, Value) {
        let resp = host.post_server(body).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    };
    let (status, body) = start(json!({"server_type": "npx", "package": "@isaacs/namespace-test"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["packages"][0]["version"], "1.1.0", "latest: {body}");
    assert!(body["packages"][0]["unverified"].to_string().contains("unsigned"), "{body}");

    let pinned = json!({"server_type": "npx", "package": "@isaacs/namespace-test",
                        "pins": {"@isaacs/namespace-test": "1.0.0"}});
    let (status, body) = start(pinned).await;
    assert_eq!(status, 201, "{body}");
    let p = &body["packages"][0];
    assert_eq!((p["version"].as_str(), p["requested"].as_str()), (Some("1.0.0"), Some("1.0.0")), "{body}");
    assert!(p["verified"].to_string().contains("registry signature by"), "{body}");

    let stray = json!({"server_type": "npx", "package": "@isaacs/namespace-test", "pins": {"left-pad": "1.3.0"}});
    let (status, body) = start(stray).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`left-pad`, which the launch does not install"),
        "{body}"
    );
}

/// A pure-Python MCP server on stdio, standard library only, as a wheel
/// built here (python3's zipfile): project `mcpod-test-echo` 1.0.0, which
/// no real index has, with the command `mcpod-test-echo`.
const ECHO_WHEEL: &str = r#"
import base64, hashlib, sys, zipfile
out = sys.argv[1] + "/mcpod_test_echo-1.0.0-py3-none-any.whl"
server = '''import json, sys
def main():
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg:
            continue
        method = msg.get("method")
        if method == "initialize":
            result = {"protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "mcpod-test-echo", "version": "1.0.0"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": "from the checked wheel"}]}
        elif method == "ping":
            result = {}
        else:
            print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "unknown"}}), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
'''
info = "mcpod_test_echo-1.0.0.dist-info/"
files = {
    "mcpod_test_echo.py": server,
    info + "METADATA": "Metadata-Version: 2.1\nName: mcpod-test-echo\nVersion: 1.0.0\n",
    info + "WHEEL": "Wheel-Version: 1.0\nGenerator: mcpod-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    info + "entry_points.txt": "[console_scripts]\nmcpod-test-echo = mcpod_test_echo:main\n",
}
record = []
with zipfile.ZipFile(out, "w") as z:
    for name, text in files.items():
        data = text.encode()
        z.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(info + "RECORD,,")
    z.writestr(info + "RECORD", "\n".join(record) + "\n")
print(out)
"#;

/// Starts `body` on `host`, which must answer 201; its answer.
async fn started(host: &TestHost, body: &Value) -> Value {
    let resp = host.post_server(body.clone()).await;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

/// Server `id`'s log once it holds `text`, or as it is after 10 s: a pod's
/// last words may reach it a moment after the server failed.
async fn log_once_it_says(host: &TestHost, id: &str, text: &str) -> String {
    let mut logs = String::new();
    for _ in 0..50 {
        let got = host.http.get(format!("{}/api/v1/servers/{id}/logs", host.base)).send().await.unwrap();
        logs = got.text().await.unwrap();
        if logs.contains(text) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    logs
}

/// The wheel [`ECHO_WHEEL`] builds, and its SHA-256 in hex.
fn echo_wheel() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let built = std::process::Command::new("python3").args(["-c", ECHO_WHEEL]).arg(dir.path()).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let wheel = std::fs::read(String::from_utf8_lossy(&built.stdout).trim()).unwrap();
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&wheel).iter().map(|b| format!("{b:02x}")).collect()
    };
    (wheel, sha)
}

#[tokio::test(flavor = "multi_thread")]
async fn uv_runs_the_very_wheel_mcpod_checked_and_never_a_download_of_its_own() {
    let (wheel, sha) = echo_wheel();
    // Only mcpod's index knows the project; uv's own index (the machine's
    // PyPI) does not: only the file mcpod checked can run.
    let (base, reg) = registry::start().await;
    {
        let mut r = reg.lock().unwrap();
        let file = json!({"filename": "mcpod_test_echo-1.0.0-py3-none-any.whl", "packagetype": "bdist_wheel",
                          "url": "../../packages/mcpod_test_echo-1.0.0-py3-none-any.whl", "digests": {"sha256": sha}});
        let doc = json!({"info": {"name": "mcpod-test-echo", "version": "1.0.0"}, "releases": {"1.0.0": [file]}});
        r.files.insert("/pypi/mcpod-test-echo/json".into(), serde_json::to_vec(&doc).unwrap());
        r.files.insert("/packages/mcpod_test_echo-1.0.0-py3-none-any.whl".into(), wheel.clone());
    }
    let state = tempfile::tempdir().unwrap();
    let (_host, host) = serve_verifying(&format!("pypi_index = \"{base}\""), state.path());
    let http = reqwest::Client::new();
    let start = async || -> Value {
        let resp = http
            .post(format!("{host}/api/v1/servers"))
            .json(&json!({"server_type": "uv", "package": "mcpod-test-echo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    };
    // Without the kept file uv would ask its own index, which has no such
    // project, and the start would fail.
    let body = start().await;
    assert_eq!(body["status"], "ready", "uv installed the kept wheel: {body}");
    let pinned = body["packages"][0].to_string();
    assert!(pinned.contains("uv installs that checked") && !pinned.contains("without re-checking"), "{pinned}");
    let kept = state.path().join("mcpod/packages/pypi").join(&sha).join("mcpod_test_echo-1.0.0-py3-none-any.whl");
    assert_eq!(std::fs::read(&kept).unwrap(), wheel, "the checked bytes are kept");
    let id = body["server_id"].as_str().unwrap();
    let session = McpSession::open_any(&format!("{host}/servers/{id}/mcp")).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({})).await), "from the checked wheel");

    // A kept file changed on disk is not used: it is checked again,
    // fetched again, and the start runs the checked bytes.
    std::fs::write(&kept, b"not a wheel").unwrap();
    let body = start().await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(std::fs::read(&kept).unwrap(), wheel);
    let downloads = reg.lock().unwrap().asked.iter().filter(|p| p.ends_with(".whl")).count();
    assert_eq!(downloads, 2, "once at first, once after the kept file changed");
}

/// On Kubernetes a pod cannot read the host's kept files, so its line
/// downloads the wheel mcpod checked again and checks its SHA-256 before uv
/// is handed it (`supply::POD_FETCH`): the pod runs the checked bytes, and
/// an index that serves the pod other bytes than it served mcpod gets
/// nothing run. (The emulator's kubelet runs the pod's line on this
/// machine, with the test clients' uv.)
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_runs_the_wheel_mcpod_checked_and_nothing_when_the_index_serves_it_other_bytes() {
    let (wheel, sha) = echo_wheel();
    let file = "/packages/mcpod_test_echo-1.0.0-py3-none-any.whl";
    let (base, reg) = registry::start().await;
    {
        let mut r = reg.lock().unwrap();
        let entry = json!({"filename": "mcpod_test_echo-1.0.0-py3-none-any.whl", "packagetype": "bdist_wheel",
                           "url": format!("{base}{file}"), "digests": {"sha256": sha}});
        let doc = json!({"info": {"name": "mcpod-test-echo", "version": "1.0.0"}, "releases": {"1.0.0": [entry]}});
        r.files.insert("/pypi/mcpod-test-echo/json".into(), serde_json::to_vec(&doc).unwrap());
        r.files.insert(file.into(), wheel.clone());
    }
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.packages.pypi_index = base.clone();
        c.limits.max_restarts = 0;
    })
    .await;
    let echo = json!({"server_type": "uv", "package": "mcpod-test-echo"});
    let body = started(&host, &echo).await;
    let pinned = body["packages"][0].to_string();
    assert!(
        pinned.contains("in the pod, uv is handed that file") && !pinned.contains("without re-checking"),
        "{pinned}"
    );
    let id = body["server_id"].as_str().unwrap();
    let session = McpSession::open_any(&format!("{}/servers/{id}/mcp", host.base)).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({})).await), "from the checked wheel");
    let wheels = |r: &registry::Files| r.asked.iter().filter(|p| p.ends_with(".whl")).count();
    assert_eq!(wheels(&reg.lock().unwrap()), 2, "once by mcpod, once by the pod");

    // The index now serves the pod other bytes under the same name; mcpod
    // checked this file already and does not download it again.
    reg.lock().unwrap().files.insert(file.into(), b"PK\x03\x04 not the wheel mcpod checked".to_vec());
    let body: Value = host.post_server(echo).await.json().await.unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    let logs = log_once_it_says(&host, body["server_id"].as_str().unwrap(), "nothing was run").await;
    assert!(logs.contains("as mcpod checked it; nothing was run"), "the server's log says why: {logs}");
    assert_eq!(wheels(&reg.lock().unwrap()), 3, "only the pod asked again");
}

/// `mcpod serve` as a user runs it (npx and uv on its PATH, a state
/// directory under `state`), verifying against the registries `packages`
/// names (lines of `[packages]`); the child, and its base URL.
fn serve_verifying(packages: &str, state: &std::path::Path) -> (KillOnDrop, String) {
    let config = state.join("mcpod.toml");
    std::fs::write(
        &config,
        format!(
            "[plugin_runtime]\ncache = false\n[packages]\n{packages}\n[limits]\nmax_restarts = 0\nstart_timeout_secs = 60\n"
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--insecure-no-auth"])
        .env("PATH", ensure_clients())
        .env("XDG_STATE_HOME", state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.0.stdout.take().unwrap()), &mut line).unwrap();
    let base = line.trim().strip_prefix("mcpod listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    mcpod::tls::install_provider();
    (child, base)
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Node MCP server with no dependencies, packed here as npm packs:
/// `mcpod-test-echo` 1.0.0, which no real registry has; its bytes and SRI
/// integrity.
fn echo_tarball() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("package");
    std::fs::create_dir(&package).unwrap();
    std::fs::write(
        package.join("package.json"),
        r#"{"name": "mcpod-test-echo", "version": "1.0.0", "bin": {"mcpod-test-echo": "index.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        package.join("index.js"),
        r#"#!/usr/bin/env node
require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return;
  const results = {
    initialize: { protocolVersion: (msg.params || {}).protocolVersion || "2025-06-18", capabilities: { tools: {} },
                  serverInfo: { name: "mcpod-test-echo", version: "1.0.0" } },
    "tools/list": { tools: [{ name: "echo", inputSchema: { type: "object" } }] },
    "tools/call": { content: [{ type: "text", text: "from the checked tarball" }] },
    ping: {},
  };
  const answer = msg.method in results
    ? { jsonrpc: "2.0", id: msg.id, result: results[msg.method] }
    : { jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "unknown" } };
  process.stdout.write(JSON.stringify(answer) + "\n");
});
"#,
    )
    .unwrap();
    let packed = std::process::Command::new("tar")
        .args(["czf", "echo.tgz", "package"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(packed.success());
    let tarball = std::fs::read(dir.path().join("echo.tgz")).unwrap();
    let integrity = {
        use base64::Engine as _;
        use sha2::Digest;
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&tarball)))
    };
    (tarball, integrity)
}

/// The registry document of [`echo_tarball`] at `base`, whose `bin` names
/// another command than the tarball does (no signature covers it).
fn echo_packument(base: &str, integrity: &str) -> Vec<u8> {
    let doc = json!({"name": "mcpod-test-echo", "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "mcpod-test-echo", "version": "1.0.0", "bin": {"node": "index.js"},
            "dist": {"tarball": format!("{base}{ECHO_TGZ}"), "integrity": integrity}}}});
    serde_json::to_vec(&doc).unwrap()
}

const ECHO_TGZ: &str = "/mcpod-test-echo/-/mcpod-test-echo-1.0.0.tgz";

/// On Kubernetes npx is handed the very tarball mcpod checked: the pod's
/// line is wrapped in `sh -c` (`supply::NPM_POD_FETCH`), `npm pack`
/// downloads it again and `sha512sum` checks it before npx runs; other
/// bytes run nothing and the server's log says why.
#[tokio::test(flavor = "multi_thread")]
async fn an_npm_pod_runs_the_tarball_mcpod_checked_and_nothing_when_the_registry_serves_it_other_bytes() {
    let (tarball, integrity) = echo_tarball();
    let (base, reg) = registry::start().await;
    {
        let mut r = reg.lock().unwrap();
        r.files.insert("/mcpod-test-echo".into(), echo_packument(&base, &integrity));
        r.files.insert(ECHO_TGZ.into(), tarball.clone());
    }
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.packages.npm_registry = base.clone();
        c.limits.max_restarts = 0;
    })
    .await;
    let echo = json!({"server_type": "npx", "package": "mcpod-test-echo"});
    let body = started(&host, &echo).await;
    let pinned = body["packages"][0].to_string();
    assert!(
        pinned
            .contains("in the pod, npx is handed that file downloaded again and checked against the same sha512 first"),
        "{pinned}"
    );
    let id = body["server_id"].as_str().unwrap();
    let session = McpSession::open_any(&format!("{}/servers/{id}/mcp", host.base)).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({})).await), "from the checked tarball");
    let tarballs = |r: &registry::Files| r.asked.iter().filter(|p| p.ends_with(".tgz")).count();
    // mcpod downloads it once; the pod's `npm pack` again (it reads a
    // remote tarball's manifest from the tarball, so more than once).
    let before = tarballs(&reg.lock().unwrap());
    assert!(before >= 2, "by mcpod and by the pod: {:?}", reg.lock().unwrap().asked);

    // The registry now serves the pod other bytes under the same name.
    reg.lock().unwrap().files.insert(ECHO_TGZ.into(), data("is-number-7.0.0.tgz"));
    let body: Value = host.post_server(echo).await.json().await.unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    // The pod may have said why before mcpod attached: the server's log
    // has the pod log's last lines once the stream ends.
    let logs = log_once_it_says(&host, body["server_id"].as_str().unwrap(), "nothing was run").await;
    assert!(logs.contains("as mcpod checked it; nothing was run"), "the server's log says why: {logs} {body}");
    assert!(tarballs(&reg.lock().unwrap()) > before, "the pod asked again");
}

#[tokio::test(flavor = "multi_thread")]
async fn npx_runs_the_very_tarball_mcpod_checked_and_never_a_download_of_its_own() {
    let (tarball, integrity) = echo_tarball();
    let (base, reg) = registry::start().await;
    {
        // The registry's document names another command than the tarball
        // does (no signature covers it): the tarball's own is run.
        let mut r = reg.lock().unwrap();
        r.files.insert("/mcpod-test-echo".into(), echo_packument(&base, &integrity));
        r.files.insert(ECHO_TGZ.into(), tarball.clone());
    }
    let state = tempfile::tempdir().unwrap();
    let (_host, host) = serve_verifying(&format!("npm_registry = \"{base}\""), state.path());
    let resp = reqwest::Client::new()
        .post(format!("{host}/api/v1/servers"))
        .json(&json!({"server_type": "npx", "package": "mcpod-test-echo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    // Without the kept tarball npx would ask its own registry (the
    // machine's), which has no such package, and the start would fail.
    assert_eq!(body["status"], "ready", "npx installed the kept tarball: {body}");
    assert!(body["packages"][0].to_string().contains("npx installs that checked file itself"), "{body}");
    let key = integrity.trim_end_matches('=').replace('+', "-").replace('/', "_");
    let kept = state.path().join("mcpod/packages/npm").join(key).join("mcpod-test-echo-1.0.0.tgz");
    assert_eq!(std::fs::read(&kept).unwrap(), tarball, "the checked bytes are kept");
    let id = body["server_id"].as_str().unwrap();
    let session = McpSession::open_any(&format!("{host}/servers/{id}/mcp")).await;
    assert_eq!(tool_text(&session.call(1, "echo", json!({})).await), "from the checked tarball");
}
