//! The `http` protocol adapter: the JSON body of an MCP Streamable HTTP
//! POST (or of a JSON response): one message, or a batch as protocol
//! 2025-03-26 allows. `decode` accumulates, `finish` parses; each batch
//! element is checked on its own.

use mcpod_plugin_sdk::protocol_adapter::*;
use serde_json::value::RawValue;
use std::cell::RefCell;

/// The plugin.
pub struct Http;

impl Plugin for Http {
    fn info() -> PluginInfo {
        plugin_info("http", env!("CARGO_PKG_VERSION"), "JSON bodies of MCP Streamable HTTP")
    }
}

impl ProtocolAdapter for Http {
    type Framer = BodyFramer;

    fn transport_kind() -> Transport {
        Transport::StreamableHttp
    }
}

/// One body at a time: accumulated, then parsed at `finish`.
pub struct BodyFramer {
    max: usize,
    body: RefCell<Vec<u8>>,
    /// Set once the body went over the cap; the rest is ignored.
    oversized: RefCell<bool>,
}

/// Splits a body into checked frames.
fn frames(body: &[u8]) -> Vec<Result<Frame, PluginError>> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => return vec![Err(PluginError::invalid("body", format!("the body is not UTF-8: {e}")))],
    };
    if text.trim().is_empty() {
        return vec![Err(PluginError::invalid("body", "the body is empty"))];
    }
    let one = |raw: &str| match check_message(raw) {
        Ok(MessageKind::Batch) => Err(PluginError::invalid("body", "a batch must not contain another batch")),
        Ok(_) => Ok(Frame { event: None, id: None, data: raw.trim().to_string() }),
        Err(rule) => Err(PluginError::invalid("message", rule)),
    };
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) if items.is_empty() => {
                vec![Err(PluginError::invalid("body", "an empty batch is not a valid request"))]
            }
            Ok(items) => items.iter().map(|i| one(i.get())).collect(),
            Err(e) => vec![Err(PluginError::invalid("body", format!("not valid JSON: {e}")))],
        }
    } else {
        vec![one(text)]
    }
}

impl Framer for BodyFramer {
    fn new(max_message_bytes: u32) -> Self {
        BodyFramer { max: max_message_bytes as usize, body: RefCell::new(Vec::new()), oversized: RefCell::new(false) }
    }

    fn decode(&self, input: Vec<u8>) -> Decoded {
        let mut body = self.body.borrow_mut();
        let mut oversized = self.oversized.borrow_mut();
        if *oversized {
            return Ok(Vec::new());
        }
        if body.len() + input.len() > self.max {
            *oversized = true;
            body.clear();
            return Ok(vec![Err(PluginError::too_large(format!("the body exceeds the {}-byte limit", self.max)))]);
        }
        body.extend_from_slice(&input);
        Ok(Vec::new())
    }

    fn finish(&self) -> Decoded {
        let body = std::mem::take(&mut *self.body.borrow_mut());
        if std::mem::take(&mut *self.oversized.borrow_mut()) {
            return Ok(Vec::new());
        }
        Ok(frames(&body))
    }

    fn encode(&self, frame: Frame) -> Result<Vec<u8>, PluginError> {
        if let Some(event) = frame.event {
            return Err(PluginError::invalid("event", format!("a JSON body carries no named events (got `{event}`)")));
        }
        if frame.data.len() > self.max {
            return Err(PluginError::too_large(format!(
                "a {}-byte message exceeds the {}-byte limit",
                frame.data.len(),
                self.max
            )));
        }
        Ok(frame.data.into_bytes())
    }
}

mcpod_plugin_sdk::export_protocol_adapter!(Http);

#[cfg(test)]
mod tests {
    use super::*;

    fn body(f: &BodyFramer, parts: &[&str]) -> Vec<Result<String, ErrorCode>> {
        for p in parts {
            assert!(f.decode(p.as_bytes().to_vec()).unwrap().is_empty());
        }
        f.finish().unwrap().into_iter().map(|r| r.map(|f| f.data).map_err(|e| e.code)).collect()
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    #[test]
    fn one_message_in_pieces() {
        let f = BodyFramer::new(1024);
        assert_eq!(body(&f, &[&PING[..5], &PING[5..]]), vec![Ok(PING.to_string())]);
        assert_eq!(body(&f, &[PING]), vec![Ok(PING.to_string())], "reusable after finish");
    }

    #[test]
    fn batches_are_checked_per_item() {
        let f = BodyFramer::new(1024);
        let out = body(&f, &[&format!(r#"[{PING}, {{"id":2}}, {{"jsonrpc":"2.0","method":"n"}}]"#)]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Ok(PING.to_string()));
        assert_eq!(out[1], Err(ErrorCode::InvalidInput));
        assert!(out[2].is_ok());
        assert_eq!(body(&f, &["[]"]), vec![Err(ErrorCode::InvalidInput)]);
        assert_eq!(body(&f, &["[[1]]"]), vec![Err(ErrorCode::InvalidInput)]);
    }

    #[test]
    fn bad_bodies() {
        let f = BodyFramer::new(1024);
        assert_eq!(body(&f, &["{nope"]), vec![Err(ErrorCode::InvalidInput)]);
        assert_eq!(body(&f, &[""]), vec![Err(ErrorCode::InvalidInput)]);
        let small = BodyFramer::new(10);
        let first = small.decode(PING.as_bytes().to_vec()).unwrap();
        assert_eq!(first[0].as_ref().unwrap_err().code, ErrorCode::TooLarge);
        assert!(small.decode(b"more".to_vec()).unwrap().is_empty(), "reported once");
        assert!(small.finish().unwrap().is_empty());
        assert_eq!(body(&small, &["{}"]), vec![Err(ErrorCode::InvalidInput)], "the next body starts afresh");
    }
}
