//! `wasi:io/streams` and `wasi:io/poll` for plugins called synchronously
//! (protocol adapters): every operation finishes at once or fails; none
//! waits.
//!
//! An adapter call runs on the task that needs its result, with no fiber
//! and no yield. wasmtime-wasi's synchronous WASI would run a blocking
//! stream or poll operation through `Handle::block_on`, which panics on a
//! tokio worker, and a guest that panics writes its message to stderr. So
//! these interfaces replace those two for adapters: each operation is
//! polled once, and one that would have to wait traps with a message
//! saying why. Stdout and stderr are in-memory pipes and stdin is closed,
//! so writing and reading them never waits.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::io::streams::{HostInputStream as AsyncInput, HostOutputStream as AsyncOutput};
use wasmtime_wasi::p2::bindings::sync::io::poll::{self, Pollable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{self, InputStream, OutputStream};
use wasmtime_wasi::p2::{StreamError, StreamResult};

/// A store's resource table, seen through the no-wait interfaces.
pub struct NoWait<'a>(pub &'a mut ResourceTable);

struct NoWaitIo;

impl HasData for NoWaitIo {
    type Data<'a> = NoWait<'a>;
}

/// Links the no-wait streams and poll into `linker` in place of WASI's own
/// (which must be linked first), reaching each store's table with `table`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    table: fn(&mut T) -> NoWait<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    streams::add_to_linker::<T, NoWaitIo>(linker, table)?;
    poll::add_to_linker::<T, NoWaitIo>(linker, table)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The trap of an operation that would have had to wait.
fn would_wait(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "`{what}` would wait, and a protocol adapter cannot: its calls run synchronously on the host's \
         message path. Do not sleep or wait on a pollable in an adapter"
    ))
}

/// The output of `f` if it is ready at its first poll.
fn at_once<F: Future>(what: &str, f: F) -> wasmtime::Result<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(would_wait(what)),
    }
}

/// [`at_once`] for a stream operation: waiting becomes a trap of the call.
fn stream_at_once<T>(what: &str, f: impl Future<Output = StreamResult<T>>) -> StreamResult<T> {
    at_once(what, f).map_err(StreamError::Trap)?
}

impl streams::Host for NoWait<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

impl streams::HostOutputStream for NoWait<'_> {
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        at_once("output-stream.drop", AsyncOutput::drop(self.0, stream))?
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        AsyncOutput::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        AsyncOutput::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        stream_at_once("blocking-write-and-flush", AsyncOutput::blocking_write_and_flush(self.0, stream, bytes))
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        stream_at_once(
            "blocking-write-zeroes-and-flush",
            AsyncOutput::blocking_write_zeroes_and_flush(self.0, stream, len),
        )
    }

    fn subscribe(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<Resource<Pollable>> {
        AsyncOutput::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        AsyncOutput::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        AsyncOutput::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        stream_at_once("blocking-flush", AsyncOutput::blocking_flush(self.0, stream))
    }

    fn splice(&mut self, dst: Resource<OutputStream>, src: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        AsyncOutput::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        stream_at_once("blocking-splice", AsyncOutput::blocking_splice(self.0, dst, src, len))
    }
}

impl streams::HostInputStream for NoWait<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        at_once("input-stream.drop", AsyncInput::drop(self.0, stream))?
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        AsyncInput::read(self.0, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        stream_at_once("blocking-read", AsyncInput::blocking_read(self.0, stream, len))
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        AsyncInput::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        stream_at_once("blocking-skip", AsyncInput::blocking_skip(self.0, stream, len))
    }

    fn subscribe(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<Resource<Pollable>> {
        AsyncInput::subscribe(self.0, stream)
    }
}

impl poll::Host for NoWait<'_> {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> wasmtime::Result<Vec<u32>> {
        at_once("poll", async_poll::Host::poll(self.0, pollables))?
    }
}

impl poll::HostPollable for NoWait<'_> {
    fn ready(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<bool> {
        at_once("pollable.ready", async_poll::HostPollable::ready(self.0, pollable))?
    }

    fn block(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        at_once("pollable.block", async_poll::HostPollable::block(self.0, pollable))?
    }

    fn drop(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.0, pollable)
    }
}
