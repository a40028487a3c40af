//! Just enough of Kubernetes' protobuf encoding to read what client-go's
//! typed clients send where the emulator cannot ask for JSON: the `k8s\0`
//! envelope (a `runtime.Unknown`) around an authentication/v1 TokenRequest,
//! which is how `kubectl create token` asks for a token, and around the
//! core/v1 Namespace, Secret and ConfigMap that `kubectl create namespace`,
//! `create secret generic` and `create configmap` send.

use serde_json::{Value, json};

/// One field of a protobuf message.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a message by number, in order; `None` if it is malformed.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let (mut pos, mut out) = (0, Vec::new());
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let field = match tag & 7 {
            0 => Field::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let bytes = buf.get(pos..end)?;
                pos = end;
                Field::Bytes(bytes)
            }
            wire @ (1 | 5) => {
                pos = pos.checked_add(if wire == 1 { 8 } else { 4 })?;
                Field::Fixed
            }
            _ => return None,
        };
        out.push((tag >> 3, field));
    }
    (pos == buf.len()).then_some(out)
}

/// The non-empty strings among fields `numbers` of `msg`, keyed by `names`.
fn strings(msg: &[u8], numbers: &[(u64, &str)]) -> Option<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for (n, f) in fields(msg)? {
        if let (Some((_, name)), Field::Bytes(b)) = (numbers.iter().find(|(m, _)| *m == n), f) {
            let text = std::str::from_utf8(b).ok()?;
            if !text.is_empty() {
                out.insert(name.to_string(), json!(text));
            }
        }
    }
    Some(out)
}

/// The `runtime.Unknown` in the `k8s\0` envelope: its kind (`TypeMeta`)
/// and the raw message.
fn envelope(body: &[u8]) -> Option<(String, &[u8])> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let (mut kind, mut raw) = (String::new(), None);
    for (n, f) in fields(unknown)? {
        match (n, f) {
            (1, Field::Bytes(meta)) => {
                kind = strings(meta, &[(2, "kind")])?.get("kind").and_then(Value::as_str).unwrap_or_default().into();
            }
            (2, Field::Bytes(bytes)) => raw = Some(bytes),
            _ => {}
        }
    }
    Some((kind, raw?))
}

/// A `map<string, string>` entry (key 1, value 2); `bytes` values are
/// base64-encoded, as their JSON form is.
fn map_entry(entry: &[u8], bytes: bool) -> Option<(String, Value)> {
    use base64::Engine;
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(entry)? {
        match (n, f) {
            (1, Field::Bytes(k)) => key = std::str::from_utf8(k).ok()?.to_string(),
            (2, Field::Bytes(v)) if bytes => value = json!(base64::engine::general_purpose::STANDARD.encode(v)),
            (2, Field::Bytes(v)) => value = json!(std::str::from_utf8(v).ok()?),
            _ => {}
        }
    }
    Some((key, value))
}

/// An `ObjectMeta` as a client writes it: name, generateName, namespace,
/// labels, annotations and finalizers (the rest is the server's to set).
fn object_meta(meta: &[u8]) -> Option<Value> {
    let mut out = strings(meta, &[(1, "name"), (2, "generateName"), (3, "namespace")])?;
    for (n, f) in fields(meta)? {
        match (n, f) {
            (11 | 12, Field::Bytes(entry)) => {
                let (k, v) = map_entry(entry, false)?;
                let field = if n == 11 { "labels" } else { "annotations" };
                out.entry(field).or_insert_with(|| json!({}))[k] = v;
            }
            (14, Field::Bytes(f)) => {
                let finalizers = out.entry("finalizers").or_insert_with(|| json!([]));
                finalizers.as_array_mut()?.push(json!(std::str::from_utf8(f).ok()?));
            }
            _ => {}
        }
    }
    Some(Value::Object(out))
}

/// The object a protobuf body carries, as its JSON form: a core/v1
/// Namespace, Secret or ConfigMap. The error says what was not understood.
pub fn object(body: &[u8]) -> Result<Value, String> {
    let (kind, raw) = envelope(body).ok_or("the body is not a Kubernetes protobuf message (`k8s\\0` envelope)")?;
    // Field numbers of k8s.io/api/core/v1/generated.proto: after metadata (1),
    // the maps and strings of each kind; `bytes` maps are base64 in JSON.
    let layout: &[(u64, &str, &str)] = match kind.as_str() {
        "Namespace" => &[],
        "Secret" => &[(2, "data", "bytes"), (3, "type", "string"), (4, "stringData", "map"), (5, "immutable", "bool")],
        "ConfigMap" => &[(2, "data", "map"), (3, "binaryData", "bytes"), (4, "immutable", "bool")],
        other => {
            return Err(format!(
                "the emulator reads protobuf bodies of Namespace, Secret and ConfigMap only, not {other:?}: send it as JSON"
            ));
        }
    };
    let bad = || format!("the {kind} in the body is malformed protobuf");
    let mut obj = json!({"apiVersion": "v1", "kind": kind, "metadata": {}});
    for (n, f) in fields(raw).ok_or_else(bad)? {
        let Some((_, name, shape)) = layout.iter().find(|(m, _, _)| *m == n) else {
            if let (1, Field::Bytes(meta)) = (n, f) {
                obj["metadata"] = object_meta(meta).ok_or_else(bad)?;
            }
            continue;
        };
        match (*shape, f) {
            ("map" | "bytes", Field::Bytes(entry)) => {
                let (k, v) = map_entry(entry, *shape == "bytes").ok_or_else(bad)?;
                obj[*name][k] = v;
            }
            ("string", Field::Bytes(text)) => {
                let text = std::str::from_utf8(text).map_err(|_| bad())?;
                if !text.is_empty() {
                    obj[*name] = json!(text);
                }
            }
            ("bool", Field::Varint(v)) => obj[*name] = json!(v != 0),
            _ => return Err(bad()),
        }
    }
    Ok(obj)
}

/// The TokenRequest a protobuf body carries, as its JSON form.
pub fn token_request(body: &[u8]) -> Option<Value> {
    let (kind, raw) = envelope(body)?;
    if kind != "TokenRequest" {
        return None;
    }
    let mut req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {}, "spec": {}});
    for (n, f) in fields(raw)? {
        match (n, f) {
            (1, Field::Bytes(meta)) => {
                req["metadata"] = Value::Object(strings(meta, &[(1, "name"), (3, "namespace"), (5, "uid")])?);
            }
            (2, Field::Bytes(spec)) => {
                let mut audiences = Vec::new();
                for (n, f) in fields(spec)? {
                    match (n, f) {
                        (1, Field::Bytes(a)) => audiences.push(json!(std::str::from_utf8(a).ok()?)),
                        (3, Field::Bytes(r)) => {
                            let names = [(1, "kind"), (2, "apiVersion"), (3, "name"), (4, "uid")];
                            req["spec"]["boundObjectRef"] = Value::Object(strings(r, &names)?);
                        }
                        // int64, two's complement in a varint.
                        (4, Field::Varint(v)) => req["spec"]["expirationSeconds"] = json!(v as i64),
                        _ => {}
                    }
                }
                if !audiences.is_empty() {
                    req["spec"]["audiences"] = Value::Array(audiences);
                }
            }
            _ => {}
        }
    }
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_request_kubectl_sends_decodes() {
        // `kubectl create token agent --audience mcpod --duration 10m`, as sent (kubectl v1.37).
        let body = b"k8s\0\x0a\x28\x0a\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12\x24\
            \x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\
            \x12\x0a\x0a\x05mcpod\x20\xd8\x04\x1a\x04\x0a\x00\x12\x00\x1a\x00\x22\x00";
        let req = token_request(body).expect("it decodes");
        assert_eq!(req["spec"], json!({"audiences": ["mcpod"], "expirationSeconds": 600}));
        assert_eq!(req["metadata"], json!({}));
        assert!(token_request(b"k8s\0\x12\x05\x0a\x09").is_none(), "a truncated body is refused");
        assert!(token_request(b"{}").is_none());
    }

    #[test]
    fn the_namespace_secret_and_configmap_kubectl_create_sends_decode() {
        // As sent by kubectl v1.37.1 (`-v=9`), to the emulator.
        // `kubectl create namespace t1`
        let namespace = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1a\x0a\x12\x0a\x02t1\x12\x00\x1a\
            \x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";
        assert_eq!(
            object(namespace).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t1"}})
        );
        // `kubectl create secret generic s1 -n default --from-literal=token=abc --from-literal=b=x`
        let secret = b"k8s\0\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x33\x0a\x19\x0a\x02s1\x12\x00\x1a\x07default\
            \x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01b\x12\x01x\x12\x0c\x0a\x05token\
            \x12\x03abc\x1a\x00\x1a\x00\x22\x00";
        assert_eq!(
            object(secret).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "namespace": "default"},
                "data": {"b": "eA==", "token": "YWJj"}}),
            "data is bytes, base64 in JSON; the empty type is left for the server to default"
        );
        // `kubectl create configmap c1 -n default --from-literal=a=b --from-literal=k2=v2`
        let configmap = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x2d\x0a\x19\x0a\x02c1\x12\x00\x1a\
            \x07default\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01a\x12\x01b\x12\x08\x0a\x02k2\
            \x12\x02v2\x1a\x00\x22\x00";
        assert_eq!(
            object(configmap).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "namespace": "default"},
                "data": {"a": "b", "k2": "v2"}})
        );
        // Labels, annotations and finalizers in the metadata.
        let meta = b"\x0a\x01n\x5a\x08\x0a\x01k\x12\x03val\x62\x06\x0a\x01a\x12\x01b\x72\x02fz";
        assert_eq!(
            object_meta(meta).unwrap(),
            json!({"name": "n", "labels": {"k": "val"}, "annotations": {"a": "b"}, "finalizers": ["fz"]})
        );
    }

    #[test]
    fn a_body_the_emulator_cannot_read_is_refused_with_what_is_wrong() {
        let pod = b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x00";
        assert!(object(pod).unwrap_err().contains("not \"Pod\": send it as JSON"));
        assert!(object(b"{}").unwrap_err().contains("not a Kubernetes protobuf message"));
        let cut = b"k8s\0\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x04\x12\x09\x0a\x01";
        assert_eq!(object(cut).unwrap_err(), "the Secret in the body is malformed protobuf");
        let token = b"k8s\0\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x00";
        assert!(token_request(token).is_none(), "a Secret is no TokenRequest");
    }
}
