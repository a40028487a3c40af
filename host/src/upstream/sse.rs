//! Legacy HTTP+SSE as a client: a GET event stream whose `endpoint` event
//! names where to POST; answers come on the stream.

use super::{Deliver, Link, UpstreamError, client, open, read_events, refuse};
use crate::frame::Frame;
use crate::jsonrpc::Message;
use crate::plugin::AdapterPlugin;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use std::time::Duration;
use tokio::sync::mpsc;

/// Legacy HTTP+SSE as a client: a GET event stream whose `endpoint` event
/// names where to POST; answers come on the stream.
pub async fn run(link: Link, mut rx: mpsc::UnboundedReceiver<Message>, deliver: Deliver) -> UpstreamError {
    let http = match client(&link) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let req = match super::oauth::authorize(http.get(link.url.clone()), link.oauth.as_deref()).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    let resp = match req.header(ACCEPT, "text/event-stream").send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            return UpstreamError::Unreachable(format!(
                "the server's event stream at {} answered HTTP {}",
                link.url,
                r.status()
            ));
        }
        Err(e) => {
            let why = super::causes(&e);
            return UpstreamError::Unreachable(format!("cannot open the server's event stream at {}: {why}", link.url));
        }
    };
    let mut codec = match open(&link.codecs.sse, link.max_message_bytes) {
        Ok(c) => c,
        Err(e) => return UpstreamError::Setup(e),
    };
    let (endpoint_tx, mut endpoint_rx) = mpsc::unbounded_channel::<String>();
    let base = link.url.clone();
    let server = link.server.clone();
    let reader_deliver = deliver.clone();
    let mut reader = tokio::spawn(async move {
        read_events(&server, resp.bytes_stream(), &mut codec, &reader_deliver, |f| {
            if f.event.as_deref() == Some("endpoint") {
                let _ = endpoint_tx.send(f.data);
            }
        })
        .await;
    });
    let post_url = tokio::select! {
        e = endpoint_rx.recv() => match e.map(|e| base.join(e.trim())) {
            Some(Ok(u)) => u,
            Some(Err(e)) => return UpstreamError::Refused(format!("the server's `endpoint` event is not a URL: {e}")),
            None => return UpstreamError::Lost("the server's event stream ended before its `endpoint` event".to_string()),
        },
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            reader.abort();
            return UpstreamError::Refused("the server sent no `endpoint` event within 30 s".to_string());
        }
    };
    if post_url.origin() != base.origin() {
        reader.abort();
        return UpstreamError::Refused(format!(
            "the server's `endpoint` event points at another origin ({post_url}); refused"
        ));
    }
    let codecs = link.codecs.clone();
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(msg) = m else {
                    reader.abort();
                    return UpstreamError::Closed;
                };
                tokio::spawn(post_legacy(http.clone(), post_url.clone(), codecs.http.clone(), link.max_message_bytes, msg, deliver.clone(), link.oauth.clone()));
            }
            _ = &mut reader => return UpstreamError::Lost("the server's event stream ended".to_string()),
        }
    }
}

async fn post_legacy(
    http: reqwest::Client,
    url: url::Url,
    codec: AdapterPlugin,
    max: u32,
    msg: Message,
    deliver: Deliver,
    oauth: Option<std::sync::Arc<super::oauth::TokenSource>>,
) {
    let mut body = match open(&codec, max) {
        Ok(c) => c,
        Err(e) => return refuse(&msg, &e, &deliver),
    };
    let encoded = match body.encode(Frame::message(msg.to_text())) {
        Ok(b) => b,
        Err(e) => return refuse(&msg, &format!("the http adapter refused the message: {e}"), &deliver),
    };
    let req = match super::oauth::authorize(http.post(url), oauth.as_deref()).await {
        Ok(r) => r,
        Err(e) => return refuse(&msg, &e.to_string(), &deliver),
    };
    match req.header(CONTENT_TYPE, "application/json").body(encoded).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => refuse(&msg, &format!("the server refused the message: HTTP {}", r.status()), &deliver),
        Err(e) => refuse(&msg, &format!("the server did not take the message: {}", super::causes(&e)), &deliver),
    }
}
