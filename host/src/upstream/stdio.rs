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
        match adapter.decode(&buf[..n]) {
            Ok(frames) => handle(&server, frames, &deliver),
            Err(e) => tracing::warn!(server = %server, error = %e, "the stdio adapter failed on server output"),
        }
    }
    if let Ok(frames) = adapter.finish() {
        handle(&server, frames, &deliver);
    }
}

fn handle(server: &str, frames: crate::plugin::kinds::adapter::Decoded, deliver: &impl Fn(Message)) {
    for frame in frames {
        match frame {
            Ok(f) => match Message::parse(&f.data) {
                Ok(msg) => deliver(msg),
                Err(e) => tracing::warn!(server = %server, error = %e, "ignored a server message that is not JSON-RPC"),
            },
            Err(e) => tracing::warn!(server = %server, error = %e.message, "ignored a malformed line on server stdout"),
        }
    }
}
