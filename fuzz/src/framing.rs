//! The protocol adapters' framers (the same code that runs in wasm, built
//! natively): a byte stream cut into reads anywhere decodes to the same
//! frames as the whole stream in one read, every frame kept is within the
//! size limit, and what a framer writes it reads back.

use crate::script::Script;
use mcpod_plugin_sdk::protocol_adapter::{Decoded, Frame, Framer};

/// One decoded item, comparable: a frame, or the category of an error.
#[derive(Debug, PartialEq)]
enum Item {
    Frame(Option<String>, Option<String>, String),
    Error(String),
}

fn items(decoded: Decoded, out: &mut Vec<Item>) {
    let Ok(list) = decoded else {
        out.push(Item::Error("the whole read failed".to_string()));
        return;
    };
    for item in list {
        out.push(match item {
            Ok(f) => Item::Frame(f.event, f.id, f.data),
            Err(e) => Item::Error(format!("{:?}", e.code)),
        });
    }
}

/// A size limit (small, so that the limits are reached), cut points, and the stream.
struct Case {
    max: u32,
    cuts: Vec<usize>,
    stream: Vec<u8>,
}

fn case(data: &[u8]) -> Case {
    let mut s = Script::new(data);
    let max = 1 + u32::from(s.byte()) * 2;
    let n = usize::from(s.byte() % 8);
    let mut cuts: Vec<usize> = (0..n).map(|_| usize::from(s.byte())).collect();
    let stream = s.take(usize::MAX).to_vec();
    cuts.retain(|c| *c < stream.len());
    cuts.sort_unstable();
    cuts.dedup();
    Case { max, cuts, stream }
}

/// Decodes `c.stream` in one read, and cut at `c.cuts`: both must agree.
fn one_read_or_many<F: Framer>(c: &Case) -> Vec<Item> {
    let whole = F::new(c.max);
    let mut one = Vec::new();
    items(whole.decode(c.stream.clone()), &mut one);
    items(whole.finish(), &mut one);

    let cut = F::new(c.max);
    let mut many = Vec::new();
    let mut from = 0;
    for &to in c.cuts.iter().chain(std::iter::once(&c.stream.len())) {
        items(cut.decode(c.stream[from..to].to_vec()), &mut many);
        from = to;
    }
    items(cut.finish(), &mut many);
    assert_eq!(one, many, "the same stream read in one piece and cut at {:?} decodes differently", c.cuts);
    for item in &one {
        if let Item::Frame(None, _, data) = item {
            assert!(data.len() <= c.max as usize, "a {}-byte message passed the {}-byte limit", data.len(), c.max);
        }
    }
    one
}

/// Every message frame decoded is written and read back unchanged.
fn round_trip<F: Framer>(max: u32, decoded: &[Item]) {
    for item in decoded {
        let Item::Frame(None, id, data) = item else { continue };
        let framer = F::new(max);
        let Ok(bytes) = framer.encode(Frame { event: None, id: id.clone(), data: data.clone() }) else { continue };
        let mut back = Vec::new();
        items(framer.decode(bytes), &mut back);
        items(framer.finish(), &mut back);
        assert_eq!(back, vec![Item::Frame(None, id.clone(), data.clone())], "a frame written does not read back");
    }
}

/// Fuzz target `stdio_framing`: newline-delimited JSON-RPC.
pub fn stdio_framing(data: &[u8]) {
    let c = case(data);
    let decoded = one_read_or_many::<mcpod_adapter_stdio::LineFramer>(&c);
    for item in &decoded {
        if let Item::Frame(_, _, text) = item {
            assert!(!text.contains('\n'), "a line frame holds a newline");
        }
    }
    round_trip::<mcpod_adapter_stdio::LineFramer>(c.max, &decoded);
}

/// Fuzz target `sse_framing`: `text/event-stream` (legacy SSE and the
/// Streamable HTTP streams).
pub fn sse_framing(data: &[u8]) {
    let c = case(data);
    let decoded = one_read_or_many::<mcpod_adapter_sse::EventFramer>(&c);
    round_trip::<mcpod_adapter_sse::EventFramer>(c.max, &decoded);
}

/// Fuzz target `websocket_framing`: one message per WebSocket text frame.
pub fn websocket_framing(data: &[u8]) {
    let mut s = Script::new(data);
    let max = 1 + u32::from(s.byte()) * 2;
    let message = s.take(usize::MAX).to_vec();
    let framer = mcpod_adapter_websocket::MessageFramer::new(max);
    let mut decoded = Vec::new();
    items(framer.decode(message.clone()), &mut decoded);
    for item in &decoded {
        if let Item::Frame(_, _, text) = item {
            assert_eq!(text.as_bytes(), &message[..], "a WebSocket message is passed on as it came");
            assert!(text.len() <= max as usize, "a {}-byte message passed the {max}-byte limit", text.len());
        }
    }
    round_trip::<mcpod_adapter_websocket::MessageFramer>(max, &decoded);
}
