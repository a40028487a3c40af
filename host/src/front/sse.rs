//! Server-sent event responses: frames from a channel, encoded by the
//! `sse` protocol-adapter plugin, as a streaming HTTP body.

use super::AdapterPool;
use crate::plugin::AdapterSession;
use crate::plugin::bindings::Frame;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Gives the encoder back to the pool when the response body is dropped.
struct Returning {
    adapter: Option<AdapterSession>,
    pool: Arc<AdapterPool>,
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let Some(a) = self.adapter.take() {
            self.pool.put(a);
        }
    }
}

/// A `text/event-stream` response carrying `first`, then every frame sent
/// on `rx` until the channel closes; the encoder goes back to `pool` afterwards.
pub fn response(
    adapter: AdapterSession,
    first: Vec<Frame>,
    rx: mpsc::Receiver<Frame>,
    pool: Arc<AdapterPool>,
) -> Response {
    let first: std::collections::VecDeque<Frame> = first.into();
    let state = (Returning { adapter: Some(adapter), pool }, first, rx);
    let stream = futures_util::stream::unfold(state, |(mut ret, mut first, mut rx)| async move {
        loop {
            let frame = match first.pop_front() {
                Some(f) => f,
                None => rx.recv().await?,
            };
            let adapter = ret.adapter.as_mut()?;
            match adapter.encode(&frame).await {
                Ok(bytes) => return Some((Ok::<Bytes, std::io::Error>(Bytes::from(bytes)), (ret, first, rx))),
                Err(e) => tracing::warn!(error = %e, "dropped an event the sse adapter refused to encode"),
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
