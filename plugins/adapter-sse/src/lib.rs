//! The `sse` protocol adapter: `text/event-stream` as the WHATWG HTML
//! specification's "event stream interpretation" defines it. Message events
//! carry JSON-RPC; named events (`endpoint` in legacy SSE) pass through.

use mcpod_plugin_sdk::protocol_adapter::*;
use std::cell::RefCell;

/// The plugin.
pub struct Sse;

impl Plugin for Sse {
    fn info() -> PluginInfo {
        plugin_info("sse", env!("CARGO_PKG_VERSION"), "Server-sent events (text/event-stream)")
    }
}

impl ProtocolAdapter for Sse {
    type Framer = EventFramer;

    fn transport_kind() -> Transport {
        Transport::Sse
    }
}

/// The parser state of one event stream.
#[derive(Default)]
struct State {
    max: usize,
    /// Bytes of the line being read.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF of the next one ends nothing.
    after_cr: bool,
    /// Whether the start of the stream (and a BOM there) was handled.
    started: bool,
    event_type: String,
    data: String,
    /// The last event id, which persists across events.
    last_id: Option<String>,
    /// Skipping the rest of an event that grew past the cap.
    skipping: bool,
    /// Dropping the rest of a line that grew past the line cap (its end
    /// ends nothing: it is not a blank line).
    discarding: bool,
}

/// How much longer than the message limit a line may be: the longest
/// field prefix (`data: `), so that a message of exactly the limit fits.
const LINE_SLACK: usize = 6;

impl State {
    fn push(&mut self, input: &[u8], out: &mut Vec<Result<Frame, PluginError>>) {
        let mut input = input;
        if !self.started {
            if self.line.len() + input.len() < 3 && b"\xEF\xBB\xBF".starts_with(&[&self.line[..], input].concat()) {
                self.line.extend_from_slice(input);
                return;
            }
            self.started = true;
            let mut head = std::mem::take(&mut self.line);
            head.extend_from_slice(input);
            let rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head).to_vec();
            return self.push_lines(&rest, out);
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
            }
        }
        self.push_lines(input, out);
    }

    fn push_lines(&mut self, input: &[u8], out: &mut Vec<Result<Frame, PluginError>>) {
        let mut start = 0;
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if b == b'\n' || b == b'\r' {
                let mut line = std::mem::take(&mut self.line);
                if std::mem::take(&mut self.discarding) {
                    line.clear();
                } else {
                    line.extend_from_slice(&input[start..i]);
                    self.line_done(&line, out);
                }
                if b == b'\r' {
                    if i + 1 < input.len() {
                        if input[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.after_cr = true;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        if self.discarding {
            return;
        }
        self.line.extend_from_slice(&input[start..]);
        if self.line.len() > self.max + LINE_SLACK {
            // The same rule as a whole line's (`line_done`), so that where a
            // read ends changes nothing; the rest of the line is dropped.
            self.line.clear();
            self.discarding = true;
            self.oversized(out);
        }
    }

    fn oversized(&mut self, out: &mut Vec<Result<Frame, PluginError>>) {
        if !self.skipping {
            out.push(Err(PluginError::too_large(format!(
                "an event exceeds the {}-byte message limit and was skipped",
                self.max
            ))));
        }
        self.skipping = true;
        self.data.clear();
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Result<Frame, PluginError>>) {
        if line.is_empty() {
            return self.dispatch(out);
        }
        if line.len() > self.max + LINE_SLACK {
            return self.oversized(out);
        }
        if self.skipping || line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return self.oversized(out);
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                out.push(Ok(Frame { event: Some("retry".to_string()), id: None, data: value.to_string() }));
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Result<Frame, PluginError>>) {
        let event_type = std::mem::take(&mut self.event_type);
        let mut data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.skipping) || data.is_empty() {
            return;
        }
        data.pop();
        let id = self.last_id.clone().filter(|i| !i.is_empty());
        if event_type.is_empty() || event_type == "message" {
            out.push(match check_message(&data) {
                Ok(_) => Ok(Frame { event: None, id, data }),
                Err(rule) => Err(PluginError::invalid("data", rule)),
            });
        } else {
            out.push(Ok(Frame { event: Some(event_type), id, data }));
        }
    }
}

/// Parses and writes one event stream.
pub struct EventFramer {
    state: RefCell<State>,
}

/// Checks an `id` or `event` field: one line, no longer than a reader of
/// this stream accepts (`NAME: VALUE` within the message limit and its slack).
fn check_field(name: &str, value: &str, max: usize) -> Result<(), PluginError> {
    if value.contains(['\r', '\n']) {
        return Err(PluginError::invalid(name, format!("an event {name} must not contain a line break")));
    }
    if name.len() + 2 + value.len() > max + LINE_SLACK {
        return Err(PluginError::too_large(format!(
            "an event {name} of {} bytes makes a line longer than this stream's {max}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

impl Framer for EventFramer {
    fn new(max_message_bytes: u32) -> Self {
        EventFramer { state: RefCell::new(State { max: max_message_bytes as usize, ..State::default() }) }
    }

    fn decode(&self, input: Vec<u8>) -> Decoded {
        let mut out = Vec::new();
        self.state.borrow_mut().push(&input, &mut out);
        Ok(out)
    }

    fn finish(&self) -> Decoded {
        // An event not ended by a blank line is discarded, as the spec says.
        let mut state = self.state.borrow_mut();
        let max = state.max;
        *state = State { max, ..State::default() };
        Ok(Vec::new())
    }

    fn encode(&self, frame: Frame) -> Result<Vec<u8>, PluginError> {
        let max = self.state.borrow().max;
        if frame.data.len() > max {
            return Err(PluginError::too_large(format!(
                "a {}-byte event exceeds the {max}-byte limit",
                frame.data.len()
            )));
        }
        let mut out = String::with_capacity(frame.data.len() + 32);
        if let Some(id) = &frame.id {
            check_field("id", id, max)?;
            out.push_str("id: ");
            out.push_str(id);
            out.push('\n');
        }
        if let Some(event) = &frame.event {
            check_field("event", event, max)?;
            out.push_str("event: ");
            out.push_str(event);
            out.push('\n');
        }
        let data = frame.data.replace("\r\n", "\n").replace('\r', "\n");
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        Ok(out.into_bytes())
    }
}

mcpod_plugin_sdk::export_protocol_adapter!(Sse);

#[cfg(test)]
mod tests {
    use super::*;

    type Item = Result<(Option<String>, Option<String>, String), ErrorCode>;

    fn run(chunks: &[&[u8]], max: u32) -> Vec<Item> {
        let f = EventFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(f.decode(c.to_vec()).unwrap());
        }
        out.into_iter().map(|r| r.map(|f| (f.event, f.id, f.data)).map_err(|e| e.code)).collect()
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    fn stream() -> String {
        format!(
            "\u{feff}: comment\r\nevent: endpoint\r\ndata: /messages?sessionId=1\r\n\r\nid: 7\ndata: {PING}\n\nretry: 3000\rdata: {{\"jsonrpc\":\"2.0\",\ndata: \"method\":\"x\"}}\r\r"
        )
    }

    fn expected() -> Vec<Item> {
        vec![
            Ok((Some("endpoint".into()), None, "/messages?sessionId=1".into())),
            Ok((None, Some("7".into()), PING.into())),
            Ok((Some("retry".into()), None, "3000".into())),
            Ok((None, Some("7".into()), "{\"jsonrpc\":\"2.0\",\n\"method\":\"x\"}".into())),
        ]
    }

    #[test]
    fn parses_every_field_and_line_ending() {
        assert_eq!(run(&[stream().as_bytes()], 1 << 16), expected());
    }

    #[test]
    fn any_split_gives_the_same_frames() {
        let s = stream();
        let bytes = s.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(run(&[&bytes[..cut], &bytes[cut..]], 1 << 16), expected(), "split at {cut}");
        }
        let ones: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&ones, 1 << 16), expected(), "byte by byte");
    }

    #[test]
    fn empty_data_is_not_dispatched_and_invalid_messages_are_errors() {
        assert!(run(&[b"event: x\n\n"], 1024).is_empty());
        let out = run(&[b"data: not json\n\nevent: endpoint\ndata: not json either\n\n"], 1024);
        assert_eq!(out[0], Err(ErrorCode::InvalidInput));
        assert_eq!(out[1], Ok((Some("endpoint".into()), None, "not json either".into())));
    }

    #[test]
    fn ids_with_nul_are_ignored_and_retry_needs_digits() {
        let out = run(&[b"id: 1\n\nid: a\0b\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"m\"}\nretry: 1s\n\n"], 1024);
        assert_eq!(out, vec![Ok((None, Some("1".into()), "{\"jsonrpc\":\"2.0\",\"method\":\"m\"}".into()))]);
    }

    #[test]
    fn an_oversized_event_is_reported_once_and_skipped() {
        let big = format!("data: {}\ndata: more\n\ndata: {PING}\n\n", "x".repeat(100));
        let out = run(&[big.as_bytes()], 64);
        assert_eq!(out, vec![Err(ErrorCode::TooLarge), Ok((None, None, PING.into()))]);
        let unterminated = "data: ".to_string() + &"y".repeat(100);
        assert_eq!(run(&[unterminated.as_bytes(), b"\n\n", PING.as_bytes()], 64), vec![Err(ErrorCode::TooLarge)]);
    }

    #[test]
    fn a_long_line_of_any_field_is_refused_in_one_read_as_in_two() {
        // Found by the fuzz target sse_framing: a long comment or unknown
        // field passed in one read, but cut by a read it was refused and
        // took the next event with it.
        let long = format!(": {}\n", "c".repeat(100));
        let event = format!("data: {PING}\n\n");
        let whole = run(&[format!("{long}{event}").as_bytes()], 64);
        let cut = run(&[&long.as_bytes()[..80], &long.as_bytes()[80..], event.as_bytes()], 64);
        assert_eq!(whole, vec![Err(ErrorCode::TooLarge)]);
        assert_eq!(cut, whole);
    }

    #[test]
    fn the_end_of_a_dropped_line_is_not_a_blank_line() {
        // Cut right before its line end, an oversized line's end must not
        // end the event: the event it belongs to is skipped, in one read or two.
        let long = format!("data: {}", "a".repeat(100));
        let next = format!("data: {PING}\n\n");
        let cut = run(&[long.as_bytes(), b"\n", next.as_bytes()], 64);
        let whole = run(&[format!("{long}\n{next}").as_bytes()], 64);
        assert_eq!(whole, vec![Err(ErrorCode::TooLarge)]);
        assert_eq!(cut, whole);
    }

    #[test]
    fn an_id_too_long_for_a_reader_of_the_stream_is_refused_when_written() {
        // Found by the fuzz target sse_framing: an id decoded from bytes that
        // are not UTF-8 grows (each becomes U+FFFD), and was written back as
        // a line the reader then refused as oversized.
        let f = EventFramer::new(64);
        let frame = |id: String| Frame { event: None, id: Some(id), data: PING.to_string() };
        let err = f.encode(frame("\u{fffd}".repeat(30))).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
        let written = f.encode(frame("7".repeat(60))).unwrap();
        assert_eq!(run(&[&written], 64), vec![Ok((None, Some("7".repeat(60)), PING.into()))]);
    }

    #[test]
    fn a_message_of_exactly_the_limit_passes_in_any_read() {
        // The limit counts the event's data with its line end.
        let max = PING.len() as u32 + 1;
        let event = format!("data: {PING}\n\n");
        assert_eq!(run(&[event.as_bytes()], max), vec![Ok((None, None, PING.into()))]);
        let (a, b) = event.as_bytes().split_at(PING.len() + 3);
        assert_eq!(run(&[a, b], max), vec![Ok((None, None, PING.into()))]);
    }

    #[test]
    fn an_unfinished_event_is_discarded_at_the_end() {
        let f = EventFramer::new(1024);
        assert!(f.decode(format!("data: {PING}\n").into_bytes()).unwrap().is_empty());
        assert!(f.finish().unwrap().is_empty());
    }

    #[test]
    fn encode_round_trips() {
        let f = EventFramer::new(1024);
        let frames = [
            Frame { event: None, id: Some("3".into()), data: PING.into() },
            Frame { event: Some("endpoint".into()), id: None, data: "/m?s=1".into() },
            Frame { event: None, id: None, data: "{\"jsonrpc\":\"2.0\",\n\"method\":\"x\"}".into() },
        ];
        let mut bytes = Vec::new();
        for fr in &frames {
            bytes.extend(f.encode(fr.clone()).unwrap());
        }
        assert!(String::from_utf8_lossy(&bytes).starts_with("id: 3\ndata: {"));
        let back = EventFramer::new(1024).decode(bytes).unwrap();
        let back: Vec<Frame> = back.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(back[0], frames[0]);
        assert_eq!((&back[1].event, &back[1].data), (&frames[1].event, &frames[1].data));
        assert_eq!(back[1].id.as_deref(), Some("3"), "the last event id persists");
        assert_eq!(back[2].data, frames[2].data);
        assert!(f.encode(Frame { event: Some("a\nb".into()), id: None, data: "x".into() }).is_err());
        assert!(f.encode(Frame { event: None, id: Some("1\r".into()), data: "x".into() }).is_err());
    }
}
