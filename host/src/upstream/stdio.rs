//! The stdio upstream: bytes to and from a server's stdin and stdout,
//! framed by the `stdio` protocol-adapter plugin; stderr into the logs.

use crate::frame::Frame;
use crate::jsonrpc::Message;
use crate::plugin::AdapterSession;
use crate::runtime::{Reader, Writer};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// A stdio server's stdin, shared by every task that sends to the server.
/// A message is encoded and written by the task that sent it, at once,
/// when no other write is under way: no hand-off to a writer task on the
/// way to the server. Otherwise the write under way, or the writer's own
/// task, takes it along. Messages reach stdin whole, in the order queued.
pub struct StdinWriter {
    server: String,
    queue: std::sync::Mutex<VecDeque<Message>>,
    io: Arc<tokio::sync::Mutex<StdinIo>>,
    /// Wakes the writer's own task, which writes what no sender could.
    wake: Notify,
    closed: AtomicBool,
}

/// What only the task that is writing touches.
struct StdinIo {
    stdin: Writer,
    adapter: AdapterSession,
    /// Set once stdin failed: nothing more is written.
    broken: bool,
}

impl StdinWriter {
    /// A writer to `stdin` that frames with `adapter`, and its own task.
    pub fn spawn(server: String, stdin: Writer, adapter: AdapterSession) -> Arc<StdinWriter> {
        let writer = Arc::new(StdinWriter {
            server,
            queue: std::sync::Mutex::new(VecDeque::new()),
            io: Arc::new(tokio::sync::Mutex::new(StdinIo { stdin, adapter, broken: false })),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(writer.clone().run());
        writer
    }

    /// Queues `msg` for the server; the caller's next [`flush`]
    /// (`StdinWriter::flush`) writes it.
    pub fn queue(&self, msg: Message) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(msg);
        }
    }

    /// Whether a message is queued and not yet taken by a write.
    pub fn has_queued(&self) -> bool {
        self.queue.lock().map(|q| !q.is_empty()).unwrap_or(false)
    }

    /// Writes what is queued from the calling task. When a write is under
    /// way, or the caller is not on the runtime, the writer's own task
    /// writes it instead, after that write: it is woken only then. A write
    /// that has to wait (a full pipe) goes on in a task of its own, so that
    /// a caller that goes away (a client that disconnects) never cuts a
    /// message in half.
    pub fn flush(self: &Arc<Self>) {
        let io = match tokio::runtime::Handle::try_current() {
            Ok(_) => self.io.clone().try_lock_owned().ok(),
            Err(_) => None,
        };
        let Some(io) = io else {
            self.wake.notify_one();
            return;
        };
        let mut write = Box::pin(self.clone().write_queued(io));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if write.as_mut().poll(&mut cx).is_pending() {
            tokio::spawn(write);
        }
    }

    /// Ends the writer's task once what is queued is written; stdin closes.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The writer's own task: writes whatever no sender's flush took.
    async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let io = self.io.clone().lock_owned().await;
            self.clone().write_queued(io).await;
            if self.closed.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Encodes and writes every queued message, until the queue is empty.
    async fn write_queued(self: Arc<Self>, mut io: tokio::sync::OwnedMutexGuard<StdinIo>) {
        loop {
            let batch: Vec<Message> = match self.queue.lock() {
                Ok(mut q) => q.drain(..).collect(),
                Err(_) => return,
            };
            if batch.is_empty() || io.broken {
                return;
            }
            let mut bytes = Vec::new();
            for msg in batch {
                match io.adapter.encode(Frame::message(msg.to_text())) {
                    Ok(b) => bytes.extend_from_slice(&b),
                    Err(e) => {
                        tracing::warn!(server = %self.server, error = %e, "dropped a message the adapter refused to encode")
                    }
                }
            }
            if let Err(e) = async {
                io.stdin.write_all(&bytes).await?;
                io.stdin.flush().await
            }
            .await
            {
                tracing::debug!(server = %self.server, error = %e, "server stdin closed");
                io.broken = true;
                return;
            }
        }
    }
}

/// Reads the server's stdout, decodes it with `adapter` and hands each
/// message to `deliver`. Returns when stdout ends.
pub async fn read_loop(server: String, mut stdout: Reader, mut adapter: AdapterSession, deliver: impl Fn(Message)) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match adapter.decode_messages(&buf[..n]) {
            Ok(messages) => handle(&server, messages, &deliver),
            Err(e) => tracing::warn!(server = %server, error = %e, "the stdio adapter failed on server output"),
        }
    }
    if let Ok(messages) = adapter.finish_messages() {
        handle(&server, messages, &deliver);
    }
}

fn handle(server: &str, messages: crate::plugin::kinds::adapter::DecodedMessages, deliver: &impl Fn(Message)) {
    use crate::plugin::kinds::adapter::Unparsed;
    for message in messages {
        match message {
            Ok(msg) => deliver(msg),
            Err(Unparsed::NotJsonRpc(e)) => {
                tracing::warn!(server = %server, error = %e, "ignored a server message that is not JSON-RPC")
            }
            Err(Unparsed::Refused(e)) => {
                tracing::warn!(server = %server, error = %e.message, "ignored a malformed line on server stdout")
            }
        }
    }
}

/// Requests matched to their answers over one stdio connection, for a
/// server that speaks MCP 2026-07-28 there (see
/// [`super::rev_2026_07_28`]): what HTTP gives each request for free (its
/// own exchange, closed to cancel it) made over one pair of pipes.
/// Everything the server writes passes through [`StdioExchange::route`]:
/// an answer goes to the request waiting for it, a `subscriptions/listen`
/// event to its listen request, and the rest to `fallback` (the instance's
/// mux), so the same reader serves a handshake-era server unchanged.
pub struct StdioExchange {
    writer: Arc<StdinWriter>,
    waiting: std::sync::Mutex<std::collections::HashMap<crate::jsonrpc::Id, Waiting>>,
    /// How many are waiting: lets the reader skip the lock when none is.
    count: std::sync::atomic::AtomicUsize,
    fallback: super::Deliver,
    /// Set once stdout ended: nothing more will be answered.
    ended: AtomicBool,
}

/// One request waiting for its answer.
struct Waiting {
    answer: tokio::sync::oneshot::Sender<Message>,
    /// Where the events of a stream it opened go (a listen request's).
    along: super::Deliver,
}

impl StdioExchange {
    /// An exchange writing through `writer`; unmatched messages go to `fallback`.
    pub fn new(writer: Arc<StdinWriter>, fallback: super::Deliver) -> Arc<StdioExchange> {
        Arc::new(StdioExchange {
            writer,
            waiting: Default::default(),
            count: Default::default(),
            fallback,
            ended: AtomicBool::new(false),
        })
    }

    /// The server's name, for logs.
    pub fn server(&self) -> &str {
        &self.writer.server
    }

    /// Sends a message that expects no answer.
    pub fn send(&self, msg: Message) {
        self.writer.queue(msg);
        self.writer.flush();
    }

    /// Sends `req` and waits for its answer; notifications tagged as events
    /// of its stream (`io.modelcontextprotocol/subscriptionId` naming it) go
    /// to `along`. Dropped before the answer, the server is told with
    /// `notifications/cancelled`. `None` if stdout ended first.
    pub async fn round_trip(self: &Arc<Self>, req: Message, along: super::Deliver) -> Option<Message> {
        let id = req.id.value()?.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            // Checked under the lock `end` takes: a request is either
            // refused here or cleared (and so answered `None`) there.
            let mut w = self.waiting.lock().ok()?;
            if self.ended.load(Ordering::Acquire) {
                return None;
            }
            w.insert(id.clone(), Waiting { answer: tx, along });
            self.count.store(w.len(), Ordering::Release);
        }
        let mut guard = Unanswered { exchange: self, id: Some(id) };
        self.send(req);
        let answer = rx.await.ok();
        guard.id = None;
        answer
    }

    /// Hands one message from the server to whoever waits for it.
    pub fn route(&self, msg: Message) {
        if self.count.load(Ordering::Acquire) == 0 {
            return (self.fallback)(msg);
        }
        let key = match msg.kind() {
            crate::jsonrpc::Kind::Response => msg.id.value().cloned(),
            crate::jsonrpc::Kind::Notification => subscription_of(&msg),
            crate::jsonrpc::Kind::Request => None,
        };
        let Some(key) = key else { return (self.fallback)(msg) };
        let Ok(mut w) = self.waiting.lock() else { return };
        if msg.kind() == crate::jsonrpc::Kind::Response {
            match w.remove(&key) {
                Some(waiting) => {
                    self.count.store(w.len(), Ordering::Release);
                    drop(w);
                    let _ = waiting.answer.send(msg);
                }
                None => {
                    drop(w);
                    (self.fallback)(msg);
                }
            }
        } else {
            let along = w.get(&key).map(|waiting| waiting.along.clone());
            drop(w);
            match along {
                Some(along) => along(msg),
                None => (self.fallback)(msg),
            }
        }
    }

    /// Stdout ended: every waiting request gets `None`.
    pub fn end(&self) {
        if let Ok(mut w) = self.waiting.lock() {
            self.ended.store(true, Ordering::Release);
            w.clear();
            self.count.store(0, Ordering::Release);
        }
    }
}

/// The listen request a stream event belongs to.
fn subscription_of(msg: &Message) -> Option<crate::jsonrpc::Id> {
    let params = msg.params.as_ref()?;
    if !params.get().contains(crate::rev_2026_07_28::META_SUBSCRIPTION) {
        return None;
    }
    let v = msg.params_value();
    serde_json::from_value(v.get("_meta")?.get(crate::rev_2026_07_28::META_SUBSCRIPTION)?.clone()).ok()
}

/// A request sent and not yet answered: dropped so, it is withdrawn from
/// the server with `notifications/cancelled`.
struct Unanswered<'a> {
    exchange: &'a StdioExchange,
    id: Option<crate::jsonrpc::Id>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let was_waiting = match self.exchange.waiting.lock() {
            Ok(mut w) => {
                let removed = w.remove(&id).is_some();
                self.exchange.count.store(w.len(), Ordering::Release);
                removed
            }
            Err(_) => false,
        };
        if was_waiting && !self.exchange.ended.load(Ordering::Acquire) {
            let params = serde_json::json!({"requestId": id, "reason": "the client no longer waits for it"});
            self.exchange.send(Message::notification("notifications/cancelled", Some(crate::jsonrpc::raw(&params))));
        }
    }
}

impl Drop for StdioExchange {
    fn drop(&mut self) {
        self.writer.close();
    }
}
