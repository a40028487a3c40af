//! Server-sent event responses: frames from a channel as a streaming
//! `text/event-stream` body, in the format of the HTML standard's
//! `EventSource` (an `id:`, an `event:`, one `data:` line per line of data).

use crate::frame::Frame;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::mpsc;

/// One event on its way to a client, and whether it is the answer to the
/// request whose stream it is on: the one way the front says "this is the
/// final answer" (known when it was routed, so that a handler need not
/// parse it again).
pub struct Routed {
    /// The event.
    pub frame: Frame,
    /// True for the request's answer.
    pub answer: bool,
    /// What it counts against its stream's bytes queued and not yet read,
    /// given back when it is taken (dropped).
    pub charge: Option<Charge>,
}

impl Routed {
    /// An event that counts against no stream's budget.
    pub fn new(frame: Frame, answer: bool) -> Routed {
        Routed { frame, answer, charge: None }
    }
}

/// Bytes one queued event holds against its stream's budget; given back
/// when dropped, that is, when the stream took the event (or was dropped with it).
pub struct Charge {
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    bytes: usize,
}

impl Charge {
    /// Counts `bytes` in `queued` until dropped.
    pub fn new(queued: &std::sync::Arc<std::sync::atomic::AtomicUsize>, bytes: usize) -> Charge {
        queued.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        Charge { queued: queued.clone(), bytes }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

impl From<Routed> for Frame {
    fn from(r: Routed) -> Frame {
        r.frame
    }
}

impl From<Frame> for Routed {
    fn from(frame: Frame) -> Routed {
        Routed::new(frame, false)
    }
}

/// A `text/event-stream` response carrying `first`, then every frame sent
/// on `rx` until the channel closes.
pub fn response<T: Into<Frame> + Send + 'static>(first: Vec<Frame>, rx: mpsc::Receiver<T>) -> Response {
    let first: std::collections::VecDeque<Frame> = first.into();
    let stream = futures_util::stream::unfold((first, rx), |(mut first, mut rx)| async move {
        let frame = match first.pop_front() {
            Some(f) => f,
            None => rx.recv().await?.into(),
        };
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(event(&frame))), (first, rx)))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// One event's bytes. The id and event name come from the host (stream
/// positions, `endpoint`), never from a peer; a line break in them would
/// end the field early, so it is dropped.
pub fn event(frame: &Frame) -> String {
    let mut out = String::with_capacity(frame.data.len() + 32);
    let mut field = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.extend(value.chars().filter(|c| *c != '\n' && *c != '\r'));
        out.push('\n');
    };
    if let Some(id) = &frame.id {
        field("id", id);
    }
    if let Some(name) = &frame.event {
        field("event", name);
    }
    let mut rest = frame.data.as_str();
    loop {
        let (line, tail) = match rest.find(['\r', '\n']) {
            Some(i) => {
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..i], Some(&rest[i + skip..]))
            }
            None => (rest, None),
        };
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
        match tail {
            Some(t) => rest = t,
            None => break,
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: Option<&str>, name: Option<&str>, data: &str) -> Frame {
        Frame { id: id.map(str::to_string), event: name.map(str::to_string), data: data.to_string() }
    }

    #[test]
    fn events_carry_id_name_and_one_data_line_per_line() {
        assert_eq!(event(&frame(Some("7"), None, r#"{"a":1}"#)), "id: 7\ndata: {\"a\":1}\n\n");
        assert_eq!(event(&frame(None, Some("endpoint"), "/m?s=1")), "event: endpoint\ndata: /m?s=1\n\n");
        assert_eq!(event(&frame(Some("3"), None, "")), "id: 3\ndata: \n\n", "a priming event has an id and no data");
        assert_eq!(event(&frame(None, None, "a\nb\r\nc\rd")), "data: a\ndata: b\ndata: c\ndata: d\n\n");
        assert_eq!(event(&frame(Some("1\n2"), None, "x")), "id: 12\ndata: x\n\n", "a line break cannot end a field");
    }
}
