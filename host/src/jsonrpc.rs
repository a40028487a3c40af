//! JSON-RPC 2.0 messages as the bridge routes them: ids, method and the
//! envelope are typed; params, result and error stay raw JSON, so that a
//! message passes through unchanged except for what routing rewrites.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A request id: a number or a string. JSON-RPC allows any number; one
/// that is not an `i64` (`1.5`, `1e3`, `18446744073709551616`) is kept as
/// written, so that its answer carries the id byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id that fits an `i64`.
    Num(i64),
    /// A string id.
    Str(String),
    /// Any other number, as its JSON text.
    Number(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
            Id::Number(text) => f.write_str(text),
        }
    }
}

impl Id {
    /// The id in JSON text `raw`: a string, or a number kept as written.
    fn from_raw(raw: &RawValue) -> Result<Id, String> {
        let text = raw.get().trim();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str(text).map(Id::Str).map_err(|e| e.to_string()),
            // An `i64` writes back as it came unless it has a leading zero
            // (`-0`, `007`: JSON has none, but a number must survive as sent).
            Some(b'-' | b'0'..=b'9') => {
                let digits = text.strip_prefix('-').unwrap_or(text);
                let canonical = digits == "0" && text == "0" || !digits.starts_with('0');
                Ok(text
                    .parse::<i64>()
                    .ok()
                    .filter(|_| canonical)
                    .map(Id::Num)
                    .unwrap_or_else(|| Id::Number(text.to_string())))
            }
            _ => Err(format!("an id must be a string or a number, not {text}")),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Num(n) => s.serialize_i64(*n),
            Id::Str(text) => s.serialize_str(text),
            Id::Number(text) => RawValue::from_string(text.clone()).map_err(serde::ser::Error::custom)?.serialize(s),
        }
    }
}

/// From any deserializer (a `serde_json::Value` too): a number that is not
/// an `i64` keeps its digits when it is an integer; a fraction read from a
/// `Value` is as serde_json writes it (`1.50` becomes `1.5`). Messages are
/// read from text, through [`IdField`], which keeps every number exact.
impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Id;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Id, E> {
                Ok(Id::Num(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(i64::try_from(n).map(Id::Num).unwrap_or_else(|_| Id::Number(n.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Id, E> {
                serde_json::Number::from_f64(n)
                    .map(|n| Id::Number(n.to_string()))
                    .ok_or_else(|| E::custom("an id must be a finite number"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::Str(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Id, E> {
                Ok(Id::Str(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The `id` member: absent (notifications), `null` (errors about
/// unparseable requests), or a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IdField {
    /// No `id` member.
    #[default]
    Absent,
    /// `"id": null`.
    Null,
    /// A real id.
    Value(Id),
}

impl IdField {
    fn is_absent(&self) -> bool {
        matches!(self, IdField::Absent)
    }

    /// The id, if it has one.
    pub fn value(&self) -> Option<&Id> {
        match self {
            IdField::Value(id) => Some(id),
            _ => None,
        }
    }
}

impl Serialize for IdField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IdField::Value(id) => id.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

/// Read from the message's text, so that a number id keeps its exact digits.
impl<'de> Deserialize<'de> for IdField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Borrowed from the text: messages are parsed from text, never from a `Value`.
        let raw = <&RawValue>::deserialize(d)?;
        if raw.get().trim() == "null" {
            return Ok(IdField::Null);
        }
        Id::from_raw(raw).map(IdField::Value).map_err(serde::de::Error::custom)
    }
}

/// The `jsonrpc` member, which is always `"2.0"`: checked when read,
/// written when serialized, stored as nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version2;

impl Serialize for Version2 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("2.0")
    }
}

impl<'de> Deserialize<'de> for Version2 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor reads the string in place; `Cow<str>`'s own
        // `Deserialize` always copies it, on every message.
        struct Two;
        impl serde::de::Visitor<'_> for Two {
            type Value = Version2;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the string \"2.0\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Version2, E> {
                if v == "2.0" { Ok(Version2) } else { Err(E::custom(format!("`jsonrpc` must be \"2.0\", not {v:?}"))) }
            }
        }
        d.deserialize_str(Two)
    }
}

/// One JSON-RPC message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// Always `"2.0"`.
    pub jsonrpc: Version2,
    /// The id, for requests and responses.
    #[serde(default, skip_serializing_if = "IdField::is_absent")]
    pub id: IdField,
    /// The method, for requests and notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request or notification parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Box<RawValue>>,
    /// A success response's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    /// An error response's error object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<RawValue>>,
}

/// The shape of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request: `method` and `id`.
    Request,
    /// A notification: `method`, no `id`.
    Notification,
    /// A response: `result` or `error`.
    Response,
}

/// Standard JSON-RPC error codes.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Method not found.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid params.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The server behind mcpod is gone or restarting (implementation-defined range).
    pub const SERVER_UNAVAILABLE: i64 = -32001;
    /// A request or session limit was hit.
    pub const LIMIT_EXCEEDED: i64 = -32002;
    /// The server did not answer in time (the official SDKs' `RequestTimeout`).
    pub const REQUEST_TIMEOUT: i64 = -32001;
}

/// Why a text is not a message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong, naming the rule the text breaks.
    pub message: String,
    /// True when the text is not JSON at all (JSON-RPC's parse error,
    /// -32700); false when it is JSON but not a valid message (-32600).
    pub not_json: bool,
}

impl ParseError {
    fn invalid(message: impl Into<String>) -> ParseError {
        ParseError { message: message.into(), not_json: false }
    }

    fn from_json(context: &str, e: &serde_json::Error) -> ParseError {
        let not_json = matches!(e.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
        ParseError { message: format!("{context}: {e}"), not_json }
    }

    /// The JSON-RPC error code for a client that sent this.
    pub fn code(&self) -> i64 {
        if self.not_json { code::PARSE_ERROR } else { code::INVALID_REQUEST }
    }

    /// The error message for a client that sent this: JSON-RPC's name for
    /// the code, then what is wrong.
    pub fn client_message(&self) -> String {
        let name = if self.not_json { "Parse error" } else { "Invalid Request" };
        format!("{name}: {}", self.message)
    }
}

impl Message {
    /// Parses one message (not a batch).
    pub fn parse(text: &str) -> Result<Message, ParseError> {
        // serde reads a struct from an array of its fields as well.
        if text.trim_start().starts_with('[') {
            return Err(ParseError::invalid("a JSON-RPC message must be a JSON object, not an array"));
        }
        let msg: Message =
            serde_json::from_str(text).map_err(|e| ParseError::from_json("invalid JSON-RPC message", &e))?;
        if msg.method.is_none() && msg.result.is_none() && msg.error.is_none() {
            return Err(ParseError::invalid("a message needs a `method` or a `result`/`error`"));
        }
        if msg.method.is_some() && (msg.result.is_some() || msg.error.is_some()) {
            return Err(ParseError::invalid("a message cannot have both `method` and `result`/`error`"));
        }
        if msg.result.is_some() && msg.error.is_some() {
            return Err(ParseError::invalid("a response cannot have both `result` and `error`"));
        }
        if msg.method.is_none() && msg.id.is_absent() {
            return Err(ParseError::invalid("a response must carry an `id`"));
        }
        if msg.method.is_some() && msg.id == IdField::Null {
            return Err(ParseError::invalid("a request id must not be null"));
        }
        Ok(msg)
    }

    /// Parses a body that holds one message or a batch (a JSON array); true
    /// with the messages if it was a batch.
    pub fn parse_batch(text: &str) -> Result<(Vec<Message>, bool), ParseError> {
        let trimmed = text.trim_start();
        if trimmed.is_empty() {
            return Err(ParseError { message: "the body is empty".to_string(), not_json: true });
        }
        if trimmed.starts_with('[') {
            let items: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|e| ParseError::from_json("invalid JSON", &e))?;
            if items.is_empty() {
                return Err(ParseError::invalid("an empty batch is not a valid request"));
            }
            let msgs = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Message::parse(item.get())
                        .map_err(|e| ParseError::invalid(format!("batch item {i}: {}", e.message)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((msgs, true))
        } else {
            Ok((vec![Message::parse(text)?], false))
        }
    }

    /// Which shape this message has.
    pub fn kind(&self) -> Kind {
        match (&self.method, &self.id) {
            (Some(_), IdField::Value(_)) => Kind::Request,
            (Some(_), _) => Kind::Notification,
            (None, _) => Kind::Response,
        }
    }

    /// The method name, or `""` for responses.
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// A request.
    pub fn request(id: Id, method: &str, params: Option<Box<RawValue>>) -> Message {
        Message {
            jsonrpc: Version2,
            id: IdField::Value(id),
            method: Some(method.into()),
            params,
            result: None,
            error: None,
        }
    }

    /// A notification.
    pub fn notification(method: &str, params: Option<Box<RawValue>>) -> Message {
        Message {
            jsonrpc: Version2,
            id: IdField::Absent,
            method: Some(method.into()),
            params,
            result: None,
            error: None,
        }
    }

    /// A success response.
    pub fn response(id: Id, result: Box<RawValue>) -> Message {
        Message {
            jsonrpc: Version2,
            id: IdField::Value(id),
            method: None,
            params: None,
            result: Some(result),
            error: None,
        }
    }

    /// An error response; `id` `None` gives `"id": null`.
    pub fn error_response(id: Option<Id>, code: i64, message: &str) -> Message {
        let error = serde_json::json!({ "code": code, "message": message });
        Message {
            jsonrpc: Version2,
            id: id.map_or(IdField::Null, IdField::Value),
            method: None,
            params: None,
            result: None,
            error: Some(raw(&error)),
        }
    }

    /// The compact JSON text, as serde would write it. Written by hand:
    /// serde escaped every key on every message each way (2k instructions
    /// a proxied call); the raw parts are copied as they are.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let raws = [(",\"params\":", &self.params), (",\"result\":", &self.result), (",\"error\":", &self.error)];
        let size = raws.iter().filter_map(|(_, r)| r.as_ref()).map(|r| r.get().len()).sum::<usize>();
        let mut out = String::with_capacity(size + self.method.as_ref().map_or(0, String::len) + 48);
        out.push_str("{\"jsonrpc\":\"2.0\"");
        match &self.id {
            IdField::Absent => {}
            IdField::Null => out.push_str(",\"id\":null"),
            IdField::Value(Id::Num(n)) => {
                let _ = write!(out, ",\"id\":{n}");
            }
            IdField::Value(Id::Str(text)) => {
                out.push_str(",\"id\":");
                push_json_str(&mut out, text);
            }
            // Checked as serde checks it (`RawValue::from_string` parses as
            // this does, without the copy): text that is not JSON makes the
            // message unserializable.
            IdField::Value(Id::Number(text)) => match serde_json::from_str::<&RawValue>(text) {
                Ok(_) => {
                    out.push_str(",\"id\":");
                    out.push_str(text);
                }
                Err(_) => return UNSERIALIZABLE.to_string(),
            },
        }
        if let Some(method) = &self.method {
            out.push_str(",\"method\":");
            push_json_str(&mut out, method);
        }
        for (key, raw) in raws {
            if let Some(raw) = raw {
                out.push_str(key);
                out.push_str(raw.get());
            }
        }
        out.push('}');
        out
    }

    /// The params as a JSON value (`Null` when absent or unparseable).
    pub fn params_value(&self) -> serde_json::Value {
        self.params.as_ref().and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default()
    }
}

/// What [`Message::to_text`] gives for a message that cannot be written.
const UNSERIALIZABLE: &str =
    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"unserializable message"}}"#;

/// Appends `text` as a JSON string, escaped as serde_json escapes it: `"`, `\\`
/// and control characters; runs that need none are copied whole.
pub fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    // Nearly every string needs no escape: tell with a scan that has no
    // early exit (the compiler runs it on whole vector words), copy it whole.
    let plain = !text.bytes().fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        // Every byte escaped is ASCII, so `i` is a character boundary.
        out.push_str(&text[start..i]);
        match short.is_empty() {
            false => out.push_str(short),
            true => {
                out.push_str("\\u00");
                push_hex(out, b);
            }
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends `b` as two lowercase hex digits.
pub fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// A raw JSON value from a `serde_json::Value`.
pub fn raw(v: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::from_string("null".to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_keep_params_exactly() {
        let text =
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":[1,2.50]}}}"#;
        let m = Message::parse(text).unwrap();
        assert_eq!(m.kind(), Kind::Request);
        assert_eq!(m.id, IdField::Value(Id::Num(7)));
        assert_eq!(m.to_text(), text);
    }

    #[test]
    fn the_text_written_by_hand_is_what_serde_writes_for_every_shape_of_message() {
        let ids = [
            IdField::Absent,
            IdField::Null,
            IdField::Value(Id::Num(0)),
            IdField::Value(Id::Num(i64::MIN)),
            IdField::Value(Id::Str("a \"quoted\" \\ id\n\u{1}\u{7f} ü 🦀".into())),
            IdField::Value(Id::Str(String::new())),
            IdField::Value(Id::Number("1.50".into())),
            IdField::Value(Id::Number("not a number".into())),
        ];
        let raws = [None, Some(r#"{"x": [1, 2.50], "s":"\u00e9\n"}"#), Some("null"), Some(" 7 ")];
        let mut compared = 0;
        for id in &ids {
            for method in [None, Some("tools/call"), Some("odd \"method\"\t\u{0}")] {
                for (i, raw) in raws.iter().enumerate() {
                    let raw = || raw.map(|t| RawValue::from_string(t.to_string()).unwrap());
                    let m = Message {
                        jsonrpc: Version2,
                        id: id.clone(),
                        method: method.map(str::to_string),
                        params: raw(),
                        result: (i % 2 == 1).then(raw).flatten(),
                        error: (i >= 2).then(raw).flatten(),
                    };
                    let by_serde = serde_json::to_string(&m).unwrap_or_else(|_| UNSERIALIZABLE.to_string());
                    assert_eq!(m.to_text(), by_serde, "{m:?}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, ids.len() * 3 * raws.len());
    }

    #[test]
    fn any_json_number_is_an_id_and_comes_back_byte_for_byte() {
        for id in [
            "1.5",
            "1.50",
            "1e3",
            "-0",
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let m = Message::parse(&text).unwrap();
            assert_eq!(m.to_text(), text, "{id}");
            let answer = Message::response(m.id.value().unwrap().clone(), raw(&serde_json::json!({})));
            assert_eq!(answer.to_text(), format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#));
        }
        assert_eq!(Message::parse(r#"{"jsonrpc":"2.0","id":9,"method":"x"}"#).unwrap().id, IdField::Value(Id::Num(9)));
        let bad = Message::parse(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#).unwrap_err();
        assert!(bad.message.contains("an id must be a string or a number"), "{}", bad.message);
        assert!(Message::parse(r#"{"jsonrpc":"2.0","id":true,"method":"x"}"#).is_err());
    }

    #[test]
    fn shapes_and_null_ids() {
        let n = Message::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind(), Kind::Notification);
        let r = Message::parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(r.kind(), Kind::Response);
        let e = Message::error_response(None, code::PARSE_ERROR, "bad");
        assert_eq!(e.to_text(), r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#);
        let back = Message::parse(&e.to_text()).unwrap();
        assert_eq!(back.id, IdField::Null);
    }

    #[test]
    fn invalid_messages_say_why() {
        assert!(Message::parse(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).unwrap_err().message.contains("2.0"));
        assert!(Message::parse(r#"{"jsonrpc":"2.0","id":1}"#).unwrap_err().message.contains("method"));
        assert!(Message::parse(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).unwrap_err().message.contains("null"));
        assert!(Message::parse("[1,").is_err());
        assert!(Message::parse_batch("[]").unwrap_err().message.contains("empty"));
        let (b, is_batch) =
            Message::parse_batch(r#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":1,"method":"b"}]"#).unwrap();
        assert!(is_batch);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn a_client_error_is_a_parse_error_only_when_the_text_is_not_json() {
        for text in ["{not json", r#"{"jsonrpc":"2.0","id":1"#, "", "  ", "[1,"] {
            let e = Message::parse_batch(text).unwrap_err();
            assert_eq!(e.code(), code::PARSE_ERROR, "{text:?}: {e}");
            assert!(e.client_message().starts_with("Parse error: "), "{e}");
        }
        for (text, why) in [
            (r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, "2.0"),
            (r#"{"jsonrpc":"2.0","result":1}"#, "`id`"),
            (r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#, "both"),
            ("42", "invalid"),
            (r#"[{"jsonrpc":"2.0","method":"a"},[1]]"#, "batch item 1"),
            (r#"[["2.0",1,"tools/call"]]"#, "must be a JSON object"),
        ] {
            let e = Message::parse_batch(text).unwrap_err();
            assert_eq!(e.code(), code::INVALID_REQUEST, "{text}: {e}");
            assert!(e.client_message().starts_with("Invalid Request: ") && e.message.contains(why), "{text}: {e}");
        }
    }
}
