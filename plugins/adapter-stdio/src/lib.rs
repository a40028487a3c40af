//! The `stdio` protocol adapter: newline-delimited JSON-RPC, as MCP's stdio
//! transport defines it (one message per line, no embedded newlines).

use mcpod_plugin_sdk::protocol_adapter::*;
use std::cell::RefCell;

/// The plugin.
pub struct Stdio;

impl Plugin for Stdio {
    fn info() -> PluginInfo {
        plugin_info("stdio", env!("CARGO_PKG_VERSION"), "Newline-delimited JSON-RPC over stdin/stdout")
    }
}

impl ProtocolAdapter for Stdio {
    type Framer = LineFramer;

    fn transport_kind() -> Transport {
        Transport::Stdio
    }
}

/// Splits a byte stream into lines and checks each one.
pub struct LineFramer {
    state: RefCell<LineState>,
}

/// The bytes of an unfinished line, and whether an oversized line is being skipped.
struct LineState {
    max: usize,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    /// True while skipping the rest of a line that was already too long.
    skipping: bool,
}

/// One line's text, or why it was refused.
type Line = Result<String, PluginError>;

impl LineState {
    /// Takes `input`; each line it completes goes to `out`, checked to be
    /// JSON-RPC when `check` is set.
    fn push(&mut self, input: &[u8], out: &mut Vec<Line>, check: bool) {
        self.buf.extend_from_slice(input);
        let mut start = 0;
        while let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
            let end = self.scanned + pos;
            if self.skipping {
                self.skipping = false;
            } else {
                let line = &self.buf[start..end];
                if let Some(item) = self.line(line, check) {
                    out.push(item);
                }
            }
            start = end + 1;
            self.scanned = start;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        // One byte more than the limit may be a `\r` that a `\n` in the next
        // read turns into a line end, so that where a read ends changes nothing.
        if self.buf.len() > self.max + 1 {
            if !self.skipping {
                out.push(Err(too_long(self.max)));
            }
            self.skipping = true;
            self.buf.clear();
            self.scanned = 0;
        }
    }

    /// What is still buffered, as a last line, when the stream ends.
    fn finish(&mut self, check: bool) -> Vec<Line> {
        let mut out = Vec::new();
        if !self.skipping && !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            if let Some(item) = self.line(&rest, check) {
                out.push(item);
            }
        }
        self.buf.clear();
        self.scanned = 0;
        self.skipping = false;
        out
    }

    /// One complete line: its text, an error, or nothing for a blank line.
    fn line(&self, line: &[u8], check: bool) -> Option<Line> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            return Some(Err(too_long(self.max)));
        }
        // White space around a JSON text is no part of it: trimmed, so that
        // what is decoded is what encoding writes back (`{…}\r\r\n`).
        let line = line.trim_ascii_end();
        if line.is_empty() || line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => return Some(Err(PluginError::invalid("message", format!("line is not UTF-8: {e}")))),
        };
        if check && let Err(rule) = check_message(text) {
            return Some(Err(refused(rule)));
        }
        Some(Ok(text.to_string()))
    }
}

/// The error of a line that is not a JSON-RPC message, naming the rule it breaks.
pub fn refused(rule: String) -> PluginError {
    PluginError::invalid("message", rule)
}

/// Message frames of lines.
fn frames(lines: Vec<Line>) -> Decoded {
    Ok(lines.into_iter().map(|l| l.map(|data| Frame { event: None, id: None, data })).collect())
}

impl LineFramer {
    /// The lines `input` completes, as `decode` gives them but without its
    /// check that each is JSON-RPC: for a host that parses every line
    /// itself and asks [`check_message`] (and [`refused`]) only of a line it
    /// could not parse, so that a line is parsed once, not twice.
    pub fn decode_unchecked(&self, input: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        self.state.borrow_mut().push(input, &mut out, false);
        out
    }

    /// `finish` without the check, as [`LineFramer::decode_unchecked`].
    pub fn finish_unchecked(&self) -> Vec<Line> {
        self.state.borrow_mut().finish(false)
    }
}

fn too_long(max: usize) -> PluginError {
    PluginError::too_large(format!("a line exceeds the {max}-byte message limit and was skipped"))
}

impl Framer for LineFramer {
    fn new(max_message_bytes: u32) -> Self {
        LineFramer {
            state: RefCell::new(LineState {
                max: max_message_bytes as usize,
                buf: Vec::new(),
                scanned: 0,
                skipping: false,
            }),
        }
    }

    fn decode(&self, input: Vec<u8>) -> Decoded {
        let mut out = Vec::new();
        self.state.borrow_mut().push(&input, &mut out, true);
        frames(out)
    }

    fn finish(&self) -> Decoded {
        frames(self.state.borrow_mut().finish(true))
    }

    fn encode(&self, frame: Frame) -> Result<Vec<u8>, PluginError> {
        if let Some(event) = frame.event {
            return Err(PluginError::invalid("event", format!("stdio carries no named events (got `{event}`)")));
        }
        let max = self.state.borrow().max;
        if frame.data.len() > max {
            return Err(PluginError::too_large(format!(
                "a {}-byte message exceeds the {max}-byte limit",
                frame.data.len()
            )));
        }
        if frame.data.contains('\n') {
            return Err(PluginError::invalid("message", "a stdio message must not contain a newline"));
        }
        let mut bytes = Vec::with_capacity(frame.data.len() + 1);
        bytes.extend_from_slice(frame.data.as_bytes());
        bytes.push(b'\n');
        Ok(bytes)
    }
}

mcpod_plugin_sdk::export_protocol_adapter!(Stdio);

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(f: &LineFramer, input: &str) -> Vec<Result<String, (ErrorCode, String)>> {
        f.decode(input.as_bytes().to_vec())
            .unwrap()
            .into_iter()
            .map(|r| r.map(|f| f.data).map_err(|e| (e.code, e.message)))
            .collect()
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    #[test]
    fn splits_lines_across_chunks() {
        let f = LineFramer::new(1024);
        assert!(decode(&f, &PING[..10]).is_empty());
        let out = decode(&f, &format!("{}\n\r\n{PING}\r\n{}", &PING[10..], &PING[..5]));
        assert_eq!(out, vec![Ok(PING.to_string()), Ok(PING.to_string())]);
        let rest = f.finish().unwrap();
        assert_eq!(rest.len(), 1, "the unfinished tail is reported at the end");
        assert!(rest[0].is_err());
    }

    #[test]
    fn bad_line_is_an_error_and_decoding_goes_on() {
        let f = LineFramer::new(1024);
        let out = decode(&f, &format!("not json\n{PING}\n"));
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], Err((ErrorCode::InvalidInput, m)) if m.contains("JSON")));
        assert_eq!(out[1], Ok(PING.to_string()));
    }

    #[test]
    fn oversized_line_is_skipped_once_and_the_next_one_kept() {
        let f = LineFramer::new(64);
        let big = format!(r#"{{"jsonrpc":"2.0","method":"x","params":"{}"}}"#, "a".repeat(100));
        let out = decode(&f, &big[..80]);
        assert!(matches!(&out[..], [Err((ErrorCode::TooLarge, _))]));
        assert!(decode(&f, &big[80..]).is_empty());
        assert_eq!(decode(&f, &format!("\n{PING}\n")), vec![Ok(PING.to_string())]);
    }

    #[test]
    fn where_a_read_ends_changes_nothing_for_a_line_of_exactly_the_limit_ended_by_cr_lf() {
        // Found writing the fuzz target stdio_framing (one read or many, the
        // same frames): cut between its CR and LF,
        // a line of exactly the limit was refused; in one read it passed.
        let max = PING.len() as u32;
        let f = LineFramer::new(max);
        assert!(decode(&f, &format!("{PING}\r")).is_empty());
        assert_eq!(decode(&f, "\n"), vec![Ok(PING.to_string())]);
        let whole = LineFramer::new(max);
        assert_eq!(decode(&whole, &format!("{PING}\r\n")), vec![Ok(PING.to_string())]);
    }

    #[test]
    fn a_blank_line_longer_than_the_limit_is_refused_in_one_read_as_in_two() {
        let blank = " ".repeat(80);
        let whole = LineFramer::new(64);
        assert!(matches!(&decode(&whole, &format!("{blank}\n"))[..], [Err((ErrorCode::TooLarge, _))]));
        let cut = LineFramer::new(64);
        assert!(matches!(&decode(&cut, &blank)[..], [Err((ErrorCode::TooLarge, _))]));
        assert!(decode(&cut, "\n").is_empty());
    }

    #[test]
    fn white_space_after_a_message_is_no_part_of_it_so_it_encodes_back_the_same() {
        // Found by the fuzz target stdio_framing: `{…}\r\r\n` decoded with a
        // trailing CR, which encoding then wrote as `{…}\r\n` and read back
        // without it.
        let f = LineFramer::new(1024);
        assert_eq!(decode(&f, &format!("{PING}\r\r\n{PING} \t\n")), vec![Ok(PING.to_string()), Ok(PING.to_string())]);
    }

    #[test]
    fn encode_appends_newline_and_refuses_embedded_ones() {
        let f = LineFramer::new(1024);
        let frame = |data: &str| Frame { event: None, id: None, data: data.to_string() };
        assert_eq!(f.encode(frame(PING)).unwrap(), format!("{PING}\n").into_bytes());
        assert!(f.encode(frame("{\n}")).is_err());
        assert!(f.encode(Frame { event: Some("endpoint".into()), id: None, data: "/x".into() }).is_err());
    }
}
