//! Service account tokens, as the API server issues and checks them. The
//! `serviceaccounts/token` subresource (TokenRequest) mints a JWT bound to
//! a ServiceAccount's uid (and optionally to a Pod or Secret); `tokenreviews`
//! (TokenReview) authenticates one: signature, audience, expiry, and that
//! what it is bound to still exists with the same uid, so deleting (or
//! recreating) the ServiceAccount revokes its tokens. Tokens are signed with
//! HMAC-SHA256 under a key drawn when the emulator starts, not RS256: only
//! the emulator checks them.

use crate::State;
use crate::store::status;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The API server's audience, and the issuer of its tokens.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// The lifetime of a token whose request names none, in seconds.
pub const DEFAULT_TTL: i64 = 3600;
/// The shortest lifetime a TokenRequest may ask for, in seconds.
pub const MIN_TTL: i64 = 600;
/// The clock skew the API server forgives when it checks a token's times.
const LEEWAY: i64 = 60;
const EXTRA: &str = "authentication.kubernetes.io/";

/// The key that signs this emulator's tokens.
pub struct Signer {
    key: [u8; 32],
    kid: String,
}

impl Default for Signer {
    fn default() -> Self {
        let key: [u8; 32] = rand::random();
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(Sha256::digest(key)));
        Signer { key, kid }
    }
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new().chain_update(ipad).chain_update(message).finalize();
    Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
}

impl Signer {
    /// `claims` as a compact JWS.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "kid": self.kid});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = hmac_sha256(&self.key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The claims of a token this key signed, or why it is not one.
    fn verify(&self, token: &str) -> Result<Value, String> {
        // What is no JWT of this issuer, the service account authenticator
        // passes over; the API server then calls the token invalid.
        let invalid = || "invalid bearer token".to_string();
        let parts: Vec<&str> = token.trim().split('.').collect();
        let [header, payload, signature] = parts.as_slice() else { return Err(invalid()) };
        let claims: Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .filter(Value::is_object)
            .ok_or_else(invalid)?;
        if claims["iss"] != API_AUDIENCE {
            return Err(invalid());
        }
        let expected = hmac_sha256(&self.key, format!("{header}.{payload}").as_bytes());
        let given = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        if given.len() != expected.len() || given.iter().zip(expected).fold(0, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err("go-jose/go-jose: error in cryptographic primitive".into());
        }
        Ok(claims)
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A 422 Invalid Status for one field of a TokenRequest, worded as the API server words it.
fn invalid(name: &str, field: &str, value: &Value, detail: &str) -> Value {
    let cause = format!("Invalid value: {value}: {detail}");
    let mut s =
        status(422, "Invalid", &format!("TokenRequest.authentication.k8s.io \"{name}\" is invalid: {field}: {cause}"));
    s["details"] = json!({"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
        "causes": [{"reason": "FieldValueInvalid", "message": cause, "field": field}]});
    s
}

fn conflict(resource: &str, name: &str, why: &str) -> Value {
    status(409, "Conflict", &format!("Operation cannot be fulfilled on {resource} \"{name}\": {why}"))
}

/// The claims of a token for ServiceAccount `sa`, bound to `bound`
/// (`("pod" | "secret", the object)`) if given.
fn claims(sa: &Value, audiences: &[String], iat: i64, exp: i64, bound: Option<(&str, &Value)>) -> Value {
    let meta = &sa["metadata"];
    let (ns, name) = (text(&meta["namespace"]), text(&meta["name"]));
    let mut k8s = json!({"namespace": ns, "serviceaccount": {"name": name, "uid": meta["uid"]}});
    if let Some((claim, obj)) = bound {
        k8s[claim] = json!({"name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]});
        if let Some(node) = obj.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            k8s["node"] = json!({"name": node});
        }
    }
    let r: [u8; 16] = rand::random();
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    let jti = format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..]);
    json!({"aud": audiences, "exp": exp, "iat": iat, "nbf": iat, "iss": API_AUDIENCE, "jti": jti,
        "sub": format!("system:serviceaccount:{ns}:{name}"), "kubernetes.io": k8s})
}

/// The object a TokenRequest's `spec.boundObjectRef` names, checked as the API server checks it.
fn bound_object(st: &State, ns: &str, sa: &str, r: &Value) -> Result<Option<(&'static str, Value)>, Value> {
    if !r.is_object() {
        return Ok(None);
    }
    let (kind, name, api_version) = (text(&r["kind"]), text(&r["name"]), text(&r["apiVersion"]));
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let (claim, resource, scope) = match (group, kind.as_str()) {
        ("", "Pod") => ("pod", "pods", ns),
        ("", "Secret") => ("secret", "secrets", ns),
        // The emulator has no nodes: binding to one finds none.
        ("", "Node") => ("node", "nodes", ""),
        _ => {
            let gvk = format!("{group}/{version}, Kind={kind}");
            return Err(status(400, "BadRequest", &format!("cannot bind token to object of type {gvk}")));
        }
    };
    let Some(obj) = st.store.get(&(resource.into(), scope.into(), name.clone())) else {
        return Err(status(404, "NotFound", &format!("{resource} \"{name}\" not found")));
    };
    if claim == "pod" {
        let runs_as = ["/spec/serviceAccountName", "/spec/serviceAccount"]
            .iter()
            .find_map(|p| obj.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .unwrap_or("default");
        if runs_as != sa {
            let why = format!(
                "cannot bind token for serviceaccount \"{sa}\" to pod running with different serviceaccount name."
            );
            return Err(status(400, "BadRequest", &why));
        }
    }
    let uid = &obj["metadata"]["uid"];
    if r.get("uid").is_some_and(|u| u != uid) {
        let why = format!(
            "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
            text(&r["uid"])
        );
        return Err(conflict(&kind, &name, &why));
    }
    Ok(Some((claim, obj)))
}

/// `POST .../serviceaccounts/NAME/token`: the TokenRequest in `body` (JSON,
/// or protobuf as typed clients send it) answered with a token.
pub fn request(st: &State, ns: &str, name: &str, content_type: &str, body: &[u8]) -> Result<Value, Value> {
    let req = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        crate::proto::token_request(body).ok_or_else(|| status(400, "BadRequest", "the body is not a TokenRequest"))?
    } else {
        serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| status(400, "BadRequest", "the body is not JSON"))?
    };
    let meta = &req["metadata"];
    for (field, want, what) in [("name", name, "name"), ("namespace", ns, "namespace")] {
        let given = text(&meta[field]);
        if !given.is_empty() && given != want {
            let detail = format!("must match the service account {what} if specified");
            return Err(invalid(name, &format!("metadata.{field}"), &json!(given), &detail));
        }
    }
    let Some(sa) = st.store.get(&("serviceaccounts".into(), ns.into(), name.into())) else {
        return Err(status(404, "NotFound", &format!("serviceaccounts \"{name}\" not found")));
    };
    let sa_uid = text(&sa["metadata"]["uid"]);
    let uid = text(&meta["uid"]);
    if !uid.is_empty() && uid != sa_uid {
        let why =
            format!("the UID in the token request ({uid}) does not match the UID of the service account ({sa_uid})");
        return Err(conflict("TokenRequest.authentication.k8s.io", name, &why));
    }
    let spec = &req["spec"];
    let mut audiences: Vec<String> =
        spec["audiences"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    if audiences.is_empty() {
        audiences.push(API_AUDIENCE.to_string());
    }
    let ttl = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_TTL,
        v => v.as_i64().ok_or_else(|| status(400, "BadRequest", "spec.expirationSeconds is not an integer"))?,
    };
    if ttl < MIN_TTL {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            &json!(ttl),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if ttl > 1 << 32 {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            &json!(ttl),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let bound = bound_object(st, ns, name, &spec["boundObjectRef"])?;
    let now = now();
    let token = st.signer.sign(&claims(&sa, &audiences, now, now + ttl, bound.as_ref().map(|(c, o)| (*c, o))));
    let expires = jiff::Timestamp::from_second(now + ttl).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let mut out_spec = json!({"audiences": audiences, "expirationSeconds": ttl});
    if bound.is_some() {
        out_spec["boundObjectRef"] = spec["boundObjectRef"].clone();
    }
    Ok(json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "uid": sa_uid, "creationTimestamp": crate::store::now()},
        "spec": out_spec, "status": {"token": token, "expirationTimestamp": expires.unwrap_or_default()}}))
}

/// A token for ServiceAccount `ns/name`, as TokenRequest mints it but with
/// any lifetime (negative: it expired that long ago); `None` without the ServiceAccount.
pub fn mint(st: &State, ns: &str, name: &str, audiences: &[String], ttl: i64) -> Option<String> {
    let sa = st.store.get(&("serviceaccounts".into(), ns.into(), name.into()))?;
    let mut audiences = audiences.to_vec();
    if audiences.is_empty() {
        audiences.push(API_AUDIENCE.to_string());
    }
    let exp = now() + ttl;
    let iat = if ttl > 0 { now() } else { exp - DEFAULT_TTL };
    Some(st.signer.sign(&claims(&sa, &audiences, iat, exp, None)))
}

/// Go's `%q` of a list of strings: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" "))
}

/// Checks that the object a token's claim `claim` names still exists with its uid.
fn still_bound(st: &State, ns: &str, claim: &Value, resource: &str, what: &str) -> Result<(), String> {
    let key = (resource.to_string(), ns.to_string(), text(&claim["name"]));
    let obj = st.store.get(&key).ok_or("service account token has been invalidated")?;
    let uid = &obj["metadata"]["uid"];
    if *uid != claim["uid"] {
        return Err(format!(
            "{what} UID ({}) does not match service account {what} ref claim ({})",
            text(uid),
            text(&claim["uid"])
        ));
    }
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Err("service account token has been invalidated".into());
    }
    Ok(())
}

/// Who a token authenticates as for one of `wanted` audiences, and which of them it is good for.
fn authenticate(st: &State, token: &str, wanted: &[String]) -> Result<(Value, Vec<String>), String> {
    let claims = st.signer.verify(token)?;
    let token_auds: Vec<String> = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        v => v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect(),
    };
    let auds: Vec<String> = token_auds.iter().filter(|a| wanted.contains(a)).cloned().collect();
    if auds.is_empty() {
        let (have, want) = (go_quoted(&token_auds), go_quoted(wanted));
        return Err(format!("token audiences {have} is invalid for the target audiences {want}"));
    }
    let (now, time) = (now(), |k: &str| claims[k].as_i64());
    if time("exp").is_some_and(|exp| now - LEEWAY > exp) {
        return Err("service account token has expired".into());
    }
    if time("nbf").is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err("service account token is not valid yet".into());
    }
    if time("iat").is_some_and(|iat| iat > now + LEEWAY) {
        return Err("service account token is issued in the future".into());
    }
    let k8s = &claims["kubernetes.io"];
    let (ns, name, uid) =
        (text(&k8s["namespace"]), text(&k8s["serviceaccount"]["name"]), text(&k8s["serviceaccount"]["uid"]));
    let sa = st.store.get(&("serviceaccounts".into(), ns.clone(), name.clone()));
    let sa = sa.ok_or_else(|| format!("serviceaccount \"{name}\" not found"))?;
    let sa_uid = text(&sa["metadata"]["uid"]);
    if sa_uid != uid {
        return Err(format!("service account UID ({sa_uid}) does not match claim ({uid})"));
    }
    if sa.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(format!("service account {ns}/{name} has been deleted"));
    }
    let mut extra = serde_json::Map::new();
    if k8s["secret"].is_object() {
        still_bound(st, &ns, &k8s["secret"], "secrets", "secret")?;
    }
    if k8s["pod"].is_object() {
        still_bound(st, &ns, &k8s["pod"], "pods", "pod")?;
        extra.insert(format!("{EXTRA}pod-name"), json!([k8s["pod"]["name"]]));
        extra.insert(format!("{EXTRA}pod-uid"), json!([k8s["pod"]["uid"]]));
        if let Some(node) = k8s["node"]["name"].as_str() {
            extra.insert(format!("{EXTRA}node-name"), json!([node]));
        }
    }
    if let Some(jti) = claims["jti"].as_str() {
        extra.insert(format!("{EXTRA}credential-id"), json!([format!("JTI={jti}")]));
    }
    let user = json!({"username": format!("system:serviceaccount:{ns}:{name}"), "uid": uid,
        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
        "extra": extra});
    Ok((user, auds))
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`: the TokenReview in
/// `body`, with the status the API server gives it (`authenticated` is
/// omitted when false, as Go's `omitempty` omits it).
pub fn review(st: &State, body: &[u8]) -> Result<Value, Value> {
    let Some(mut review) = serde_json::from_slice::<Value>(body).ok().filter(Value::is_object) else {
        return Err(status(400, "BadRequest", "the body is not JSON"));
    };
    let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default().to_string();
    if token.is_empty() {
        return Err(status(400, "BadRequest", "token is required for TokenReview in authentication"));
    }
    let mut wanted: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if wanted.is_empty() {
        wanted.push(API_AUDIENCE.to_string());
    }
    review["kind"] = json!("TokenReview");
    review["apiVersion"] = json!("authentication.k8s.io/v1");
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["status"] = match authenticate(st, &token, &wanted) {
        Ok((user, audiences)) => json!({"authenticated": true, "user": user, "audiences": audiences}),
        Err(error) => json!({"user": {}, "error": error}),
    };
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 has a short key; the signer's keys are 32 bytes, zero-padded here as HMAC pads them.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn a_signer_verifies_its_own_tokens_only() {
        let (a, b) = (Signer::default(), Signer::default());
        let token = a.sign(&json!({"iss": API_AUDIENCE, "sub": "x"}));
        assert_eq!(a.verify(&token).map(|c| c["sub"].clone()), Ok(json!("x")));
        assert!(b.verify(&token).unwrap_err().contains("cryptographic primitive"));
        assert_eq!(a.verify("not.a-token").unwrap_err(), "invalid bearer token");
        let other_issuer = a.sign(&json!({"iss": "someone-else"}));
        assert_eq!(a.verify(&other_issuer).unwrap_err(), "invalid bearer token");
        assert_eq!(go_quoted(&["a".into(), "b".into()]), r#"["a" "b"]"#);
    }
}
