//! The built-in `stdio` adapter, run natively. Its framer is a Rust crate
//! of this workspace (`plugins/adapter-stdio`), built to wasm for the plugin
//! host and linked into the host as well; a session of it (loaded as
//! `builtin:stdio`, with `plugin_runtime.native_adapters` on) calls the
//! linked code instead of its wasm instance. Same code, same frames and
//! errors, the same output limit: what changes is the cost of a call on
//! every stdio message's path (no store, no copies across the component
//! boundary), about 20,000 instructions per proxied call (benchmarks.md).
//!
//! Outside wasm's memory cap, a call must not allocate much more than it
//! is given: the stdio framer's output is the lines that call completed
//! and one short error per bad line, so a 64 KiB read gives at most a few
//! MiB. The `sse` and `http` adapters stay in wasm: an SSE `id:` of up to
//! the message limit is repeated in every later event, and an HTTP body's
//! `finish` gives an error per item of the whole body (4 MiB of tiny bad
//! items, some 100 MB), which wasm's memory cap bounds. `websocket` stays
//! too: it frames network upstreams, where its cost does not show. A
//! plugin loaded from a file, even one named `stdio`, always runs in wasm.

use crate::frame::Frame;
use crate::plugin::bindings::{ErrorCode, PluginError};
use crate::plugin::error::CallError;
use mcpod_plugin_sdk::protocol_adapter::{self as sdk, Framer};

/// Whether the host runs the code of the adapter built in as `name` natively.
pub fn runs_natively(name: &str) -> bool {
    name == "stdio"
}

/// The framing state of one connection, in the built-in stdio adapter's own code.
pub struct NativeFramer(mcpod_adapter_stdio::LineFramer);

impl NativeFramer {
    /// A fresh framer refusing messages over `max_message_bytes`.
    pub fn new(max_message_bytes: u32) -> NativeFramer {
        NativeFramer(Framer::new(max_message_bytes))
    }

    /// As the plugin's `framer.decode`: the frames `input` completes.
    pub fn decode(&self, plugin: &str, input: &[u8]) -> Result<Vec<Result<Frame, PluginError>>, CallError> {
        decoded(plugin, guarded(plugin, "framer.decode", || self.0.decode(input.to_vec()))?)
    }

    /// As the plugin's `framer.finish`: what was still buffered.
    pub fn finish(&self, plugin: &str) -> Result<Vec<Result<Frame, PluginError>>, CallError> {
        decoded(plugin, guarded(plugin, "framer.finish", || self.0.finish())?)
    }

    /// The lines `input` completes, or with `finish` what was still
    /// buffered, without the check that each is JSON-RPC: the caller parses
    /// each line and asks [`refusal`] of one it cannot parse.
    pub fn lines(
        &self,
        plugin: &str,
        input: &[u8],
        finish: bool,
    ) -> Result<Vec<Result<String, PluginError>>, CallError> {
        let lines = if finish {
            guarded(plugin, "framer.finish", || self.0.finish_unchecked())?
        } else {
            guarded(plugin, "framer.decode", || self.0.decode_unchecked(input))?
        };
        Ok(lines.into_iter().map(|l| l.map_err(error)).collect())
    }

    /// As the plugin's `framer.encode`: the bytes that carry `frame`.
    pub fn encode(&self, plugin: &str, frame: Frame) -> Result<Vec<u8>, CallError> {
        let frame = sdk::Frame { event: frame.event, id: frame.id, data: frame.data };
        guarded(plugin, "framer.encode", || self.0.encode(frame))?
            .map_err(|e| CallError::Plugin { plugin: plugin.to_string(), error: error(e) })
    }
}

/// Runs a framer call; a panic is reported as the plugin's, as a trap in
/// its wasm would be, so that the session starts a fresh framer.
fn guarded<T>(plugin: &str, function: &'static str, f: impl FnOnce() -> T) -> Result<T, CallError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".to_string());
        tracing::error!(plugin = %plugin, function, "plugin fault: {message}");
        CallError::Panic { plugin: plugin.to_string(), function, message }
    })
}

fn decoded(plugin: &str, out: sdk::Decoded) -> Result<Vec<Result<Frame, PluginError>>, CallError> {
    let list = out.map_err(|e| CallError::Plugin { plugin: plugin.to_string(), error: error(e) })?;
    Ok(list
        .into_iter()
        .map(|item| item.map(|f| Frame { event: f.event, id: f.id, data: f.data }).map_err(error))
        .collect())
}

/// The framer's error for a line that is not JSON-RPC (what `decode` gives
/// for it), or `None` for a line it takes as a message.
pub fn refusal(text: &str) -> Option<PluginError> {
    mcpod_plugin_sdk::protocol_adapter::check_message(text).err().map(|rule| error(mcpod_adapter_stdio::refused(rule)))
}

/// The SDK's error as the host's bindings spell it (one WIT type, two sides).
fn error(e: sdk::PluginError) -> PluginError {
    let code = match e.code {
        sdk::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
        sdk::ErrorCode::NotFound => ErrorCode::NotFound,
        sdk::ErrorCode::Denied => ErrorCode::Denied,
        sdk::ErrorCode::Unavailable => ErrorCode::Unavailable,
        sdk::ErrorCode::TooLarge => ErrorCode::TooLarge,
        sdk::ErrorCode::Internal => ErrorCode::Internal,
    };
    PluginError { code, message: e.message, field: e.field }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_native_adapter_code_is_the_plugins_fault_not_the_hosts() {
        let err = guarded("stdio", "framer.decode", || -> () { panic!("deliberate {}", 1) }).unwrap_err();
        assert!(err.is_fault(), "the session rebuilds its framer after it: {err}");
        assert_eq!(err.to_string(), "plugin `stdio` panicked in `framer.decode`: deliberate 1");
    }

    #[test]
    fn only_the_stdio_adapter_runs_natively() {
        assert!(runs_natively("stdio"));
        for name in ["sse", "http", "websocket", "npx"] {
            assert!(!runs_natively(name), "{name}");
        }
    }

    #[test]
    fn a_native_stdio_framer_frames_lines_with_the_plugins_errors() {
        let f = NativeFramer::new(64);
        let out = f.decode("stdio", b"{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\nnope\n").unwrap();
        assert_eq!(out[0].as_ref().unwrap().data, r#"{"jsonrpc":"2.0","method":"x"}"#);
        assert_eq!(out[1].as_ref().unwrap_err().code, ErrorCode::InvalidInput);
        let err = f.encode("stdio", Frame::message("a\nb".into())).unwrap_err();
        assert!(matches!(err, CallError::Plugin { .. }) && err.to_string().contains("newline"), "{err}");
    }
}
