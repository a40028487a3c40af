//! A protocol adapter for stdio servers: one JSON-RPC message per line.
//! Named `stdio` in the host config, it replaces the built-in one for every
//! stdio server. Written from docs/plugins.md as a third-party author would.

use mcpod_plugin_sdk::protocol_adapter::*;
use std::cell::RefCell;

struct Lines;

impl Plugin for Lines {
    fn info() -> PluginInfo {
        plugin_info("lines", env!("CARGO_PKG_VERSION"), "One JSON-RPC message per line")
    }
}

impl ProtocolAdapter for Lines {
    type Framer = LineFramer;

    fn transport_kind() -> Transport {
        Transport::Stdio
    }
}

/// One connection: the bytes of a line not yet ended, and the size limit.
pub struct LineFramer {
    max: usize,
    pending: RefCell<Vec<u8>>,
}

/// One whole line: a frame, an error for a bad line, or nothing if blank.
fn frame(line: &[u8], max: usize) -> Option<Result<Frame, PluginError>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if line.len() > max {
        return Some(Err(PluginError::too_large(format!("a line is over the {max}-byte limit"))));
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Some(Err(PluginError::invalid("message", "a line is not UTF-8")));
    };
    Some(match check_message(text) {
        Ok(_) => Ok(Frame { event: None, id: None, data: text.to_string() }),
        Err(rule) => Err(PluginError::invalid("message", rule)),
    })
}

impl Framer for LineFramer {
    fn new(max_message_bytes: u32) -> Self {
        LineFramer { max: max_message_bytes as usize, pending: RefCell::new(Vec::new()) }
    }

    fn decode(&self, input: Vec<u8>) -> Decoded {
        let mut pending = self.pending.borrow_mut();
        pending.extend_from_slice(&input);
        let mut frames = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            frames.extend(frame(&line[..end], self.max));
        }
        if pending.len() > self.max {
            return Err(PluginError::too_large(format!("a line grew past the {}-byte limit", self.max)));
        }
        Ok(frames)
    }

    fn finish(&self) -> Decoded {
        let rest = std::mem::take(&mut *self.pending.borrow_mut());
        Ok(frame(&rest, self.max).into_iter().collect())
    }

    fn encode(&self, frame: Frame) -> Result<Vec<u8>, PluginError> {
        if frame.event.is_some() || frame.data.contains('\n') {
            return Err(PluginError::invalid("frame", "stdio carries single-line JSON-RPC messages only"));
        }
        let mut bytes = frame.data.into_bytes();
        bytes.push(b'\n');
        Ok(bytes)
    }
}

mcpod_plugin_sdk::export_protocol_adapter!(Lines);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_split_across_reads_is_one_frame_and_a_bad_line_an_error_item() {
        let framer = LineFramer::new(1024);
        assert_eq!(framer.decode(b"{\"jsonrpc\":\"2.0\",".to_vec()).unwrap(), []);
        let frames = framer.decode(b"\"id\":1,\"method\":\"ping\"}\nnot json\n".to_vec()).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].as_ref().unwrap().data, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        assert!(frames[1].is_err());
    }

    #[test]
    fn encoding_ends_the_message_with_a_newline() {
        let framer = LineFramer::new(1024);
        let frame = Frame { event: None, id: None, data: "{}".to_string() };
        assert_eq!(framer.encode(frame).unwrap(), b"{}\n");
    }
}
