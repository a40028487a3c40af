//! One frame of a framed transport, as the host holds it: an event of an
//! event stream, a WebSocket text, a line of stdio. The protocol-adapter
//! plugins turn bytes into frames and back; `plugin::kinds::adapter`
//! converts at the plugin boundary, so the front and the upstreams never
//! see a WIT type.

/// One frame: a JSON-RPC message in `data`, or a named event (`endpoint`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// The event name, if any (`endpoint`); none for a message.
    pub event: Option<String>,
    /// The event id, if any (a stream position for resumption).
    pub id: Option<String>,
    /// The payload: one JSON-RPC message (or batch), or the event's data.
    pub data: String,
}

impl Frame {
    /// A frame carrying one message's text.
    pub fn message(data: String) -> Frame {
        Frame { event: None, id: None, data }
    }
}
