//! Just enough of Kubernetes' protobuf encoding to read what client-go's
//! typed clients send where the emulator cannot ask for JSON: the `k8s\0`
//! envelope (a `runtime.Unknown`) around an authentication/v1 TokenRequest,
//! which is how `kubectl create token` asks for a token.

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

/// The TokenRequest a protobuf body carries, as its JSON form.
pub fn token_request(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = fields(unknown)?.into_iter().find_map(|(n, f)| match (n, f) {
        (2, Field::Bytes(raw)) => Some(raw),
        _ => None,
    })?;
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
}
