//! The `websocket` protocol adapter: the host owns WebSocket framing and
//! passes each complete text message to `decode`; each is one JSON-RPC
//! message (subprotocol `mcp`).

use mcpod_plugin_sdk::protocol_adapter::*;

/// The plugin.
pub struct WebSocket;

impl Plugin for WebSocket {
    fn info() -> PluginInfo {
        plugin_info("websocket", env!("CARGO_PKG_VERSION"), "One JSON-RPC message per WebSocket text frame")
    }
}

impl ProtocolAdapter for WebSocket {
    type Framer = MessageFramer;

    fn transport_kind() -> Transport {
        Transport::Websocket
    }
}

/// Checks whole messages; keeps no state between them.
pub struct MessageFramer {
    max: usize,
}

impl Framer for MessageFramer {
    fn new(max_message_bytes: u32) -> Self {
        MessageFramer { max: max_message_bytes as usize }
    }

    fn decode(&self, input: Vec<u8>) -> Decoded {
        if input.is_empty() {
            return Ok(Vec::new());
        }
        if input.len() > self.max {
            return Ok(vec![Err(PluginError::too_large(format!(
                "a {}-byte message exceeds the {}-byte limit",
                input.len(),
                self.max
            )))]);
        }
        let text = match String::from_utf8(input) {
            Ok(t) => t,
            Err(e) => {
                return Ok(vec![Err(PluginError::invalid("message", format!("a text frame must be UTF-8: {e}")))]);
            }
        };
        Ok(vec![match check_message(&text) {
            Ok(_) => Ok(Frame { event: None, id: None, data: text }),
            Err(rule) => Err(PluginError::invalid("message", rule)),
        }])
    }

    fn finish(&self) -> Decoded {
        Ok(Vec::new())
    }

    fn encode(&self, frame: Frame) -> Result<Vec<u8>, PluginError> {
        if let Some(event) = frame.event {
            return Err(PluginError::invalid("event", format!("WebSocket carries no named events (got `{event}`)")));
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

mcpod_plugin_sdk::export_protocol_adapter!(WebSocket);

#[cfg(test)]
mod tests {
    use super::*;

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    #[test]
    fn one_message_per_frame() {
        let f = MessageFramer::new(1024);
        let out = f.decode(PING.as_bytes().to_vec()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().data, PING);
        assert!(f.decode(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn bad_frames_are_error_items() {
        let f = MessageFramer::new(32);
        assert_eq!(f.decode(PING.as_bytes().to_vec()).unwrap()[0].as_ref().unwrap_err().code, ErrorCode::TooLarge);
        let f = MessageFramer::new(1024);
        assert_eq!(f.decode(b"{\"x\":1}".to_vec()).unwrap()[0].as_ref().unwrap_err().code, ErrorCode::InvalidInput);
        assert!(f.decode(vec![0xff, 0xfe]).unwrap()[0].as_ref().unwrap_err().message.contains("UTF-8"));
    }

    #[test]
    fn encode_refuses_events_and_oversized_data() {
        let f = MessageFramer::new(64);
        assert_eq!(f.encode(Frame { event: None, id: None, data: PING.into() }).unwrap(), PING.as_bytes());
        assert!(f.encode(Frame { event: Some("endpoint".into()), id: None, data: "x".into() }).is_err());
        assert!(f.encode(Frame { event: None, id: None, data: "x".repeat(65) }).is_err());
    }
}
