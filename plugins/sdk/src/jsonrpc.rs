//! A cheap structural check of JSON-RPC 2.0 messages, shared by adapters.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use std::borrow::Cow;

/// Which of the JSON-RPC message shapes a text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request: `method` and `id`.
    Request,
    /// A notification: `method`, no `id`.
    Notification,
    /// A response: `id` and `result` or `error`.
    Response,
    /// A JSON array of messages.
    Batch,
}

/// A field whose value is ignored; records only that the key was present,
/// even when its value is `null`.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Present,
    #[serde(default)]
    result: Present,
    #[serde(default)]
    error: Present,
}

/// Checks that `text` is one JSON-RPC 2.0 message or a batch of them and
/// says which; the error names the rule the text breaks.
pub fn check(text: &str) -> Result<Kind, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        if items.is_empty() {
            return Err("an empty JSON array is not a JSON-RPC batch".to_string());
        }
        for (i, item) in items.iter().enumerate() {
            if item.get().trim_start().starts_with('[') {
                return Err(format!("batch item {i} is itself an array"));
            }
            check(item.get()).map_err(|e| format!("batch item {i}: {e}"))?;
        }
        return Ok(Kind::Batch);
    }
    if !trimmed.starts_with('{') {
        return Err("a JSON-RPC message must be a JSON object or array".to_string());
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| format!("not valid JSON-RPC: {e}"))?;
    if env.jsonrpc.as_deref() != Some("2.0") {
        return Err("`jsonrpc` must be \"2.0\"".to_string());
    }
    match (env.method, env.id.0, env.result.0 || env.error.0) {
        (Some(_), true, false) => Ok(Kind::Request),
        (Some(_), false, false) => Ok(Kind::Notification),
        (None, true, true) => {
            if env.result.0 && env.error.0 {
                Err("a response must not carry both `result` and `error`".to_string())
            } else {
                Ok(Kind::Response)
            }
        }
        (None, false, true) => Err("a response must carry an `id`".to_string()),
        (Some(_), _, true) => Err("a message must not carry both `method` and `result`/`error`".to_string()),
        (None, _, false) => Err("a message needs a `method` (request) or a `result`/`error` (response)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_shape() {
        assert_eq!(check(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), Ok(Kind::Request));
        assert_eq!(check(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), Ok(Kind::Notification));
        assert_eq!(check(r#"{"jsonrpc":"2.0","id":"a","result":null}"#), Ok(Kind::Response));
        assert_eq!(check(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}"#), Ok(Kind::Response));
        assert_eq!(check(r#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]"#), Ok(Kind::Batch));
        assert_eq!(check(r#"{"jsonrpc":"2.0","method":"a\"b","id":1}"#), Ok(Kind::Request));
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(check("hello").unwrap_err().contains("JSON object"));
        assert!(check(r#"{"id":1,"method":"x"}"#).unwrap_err().contains("jsonrpc"));
        assert!(check(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).unwrap_err().contains("jsonrpc"));
        assert!(check(r#"{"jsonrpc":"2.0","id":1}"#).unwrap_err().contains("method"));
        assert!(check(r#"{"jsonrpc":"2.0","result":1}"#).unwrap_err().contains("id"));
        assert!(check(r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#).unwrap_err().contains("both"));
        assert!(check("[]").unwrap_err().contains("empty"));
        assert!(check(r#"{"jsonrpc":"2.0","id":1,"method":"x""#).unwrap_err().contains("JSON"));
        assert!(check(r#"[[{"jsonrpc":"2.0","method":"a"}]]"#).unwrap_err().contains("array"));
    }
}
