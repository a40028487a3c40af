//! Protocol-adapter sessions: one store and one framer per connection or
//! stream, kept warm across messages (a call costs a few microseconds), and
//! rebuilt from the `InstancePre` after a fault. Adapter calls are
//! synchronous: they run on the caller's stack, bounded by the CPU budget.
//! A session of the built-in `stdio` adapter runs the same code natively
//! ([`super::native`]) unless `plugin_runtime.native_adapters` is off.

use super::AdapterPlugin;
use super::native::NativeFramer;
use crate::frame::Frame;
use crate::jsonrpc::Message;
use crate::plugin::bindings::protocol_adapter::ProtocolAdapter;
use crate::plugin::bindings::{self, PluginError, Transport};
use crate::plugin::error::CallError;
use crate::plugin::instance::{guarded_sync, plugin_result};
use crate::plugin::state::PluginState;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

/// What `decode` and `finish` return: frames in order, with per-frame errors.
pub type Decoded = Vec<Result<Frame, PluginError>>;

/// What `decode_messages` and `finish_messages` return: messages in order,
/// each parsed once, with per-line errors.
pub type DecodedMessages = Vec<Result<Message, Unparsed>>;

/// Why a frame is not a message.
#[derive(Debug, Clone)]
pub enum Unparsed {
    /// The adapter refused it (a line too long, not UTF-8, not JSON-RPC).
    Refused(PluginError),
    /// The adapter passed it, but it is not a message mcpod can route.
    NotJsonRpc(String),
}

/// A live instance and its framer.
struct Live {
    store: Store<PluginState>,
    instance: ProtocolAdapter,
    framer: ResourceAny,
}

/// The framing state of one connection, inside one adapter instance (or,
/// for the built-in `stdio` adapter, in its code linked into the host).
pub struct AdapterSession {
    plugin: AdapterPlugin,
    max_message_bytes: u32,
    live: Option<Live>,
    native: Option<NativeFramer>,
}

impl AdapterSession {
    /// A session of adapter `plugin` refusing messages over `max_message_bytes`.
    pub fn open(plugin: AdapterPlugin, max_message_bytes: u32) -> Result<AdapterSession, CallError> {
        let native = plugin.native.then(|| NativeFramer::new(max_message_bytes));
        let mut session = AdapterSession { plugin, max_message_bytes, live: None, native };
        if session.native.is_none() {
            session.live()?;
        }
        Ok(session)
    }

    /// Whether this session runs the adapter's code natively, not in wasm.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// The live instance, instantiating it (again, after a fault) if needed.
    fn live(&mut self) -> Result<&mut Live, CallError> {
        let live = match self.live.take() {
            Some(live) => live,
            None => {
                let pre = &self.plugin.pre;
                let mut store = self.plugin.store();
                let max = self.max_message_bytes;
                let (instance, framer) = guarded_sync(&mut store, "framer.constructor", |s| {
                    let instance = pre.instantiate(&mut *s)?;
                    let framer = instance.mcpod_plugin_codec().framer().call_constructor(&mut *s, max)?;
                    Ok((instance, framer))
                })?;
                Live { store, instance, framer }
            }
        };
        Ok(self.live.insert(live))
    }

    /// Drops the instance after a fault, so that the next call starts afresh.
    fn after<T>(&mut self, r: Result<T, CallError>) -> Result<T, CallError> {
        if let Err(e) = &r
            && e.is_fault()
        {
            tracing::warn!(plugin = %self.plugin.name, error = %e, "the adapter faulted; its framer starts afresh");
            self.live = None;
            if let Some(native) = &mut self.native {
                *native = NativeFramer::new(self.max_message_bytes);
            }
        }
        r
    }

    /// Feeds bytes from the peer; returns the frames they complete.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, CallError> {
        let r = self.decode_inner(input, false);
        self.after(r)
    }

    /// Ends the stream; returns what was still buffered.
    pub fn finish(&mut self) -> Result<Decoded, CallError> {
        let r = self.decode_inner(&[], true);
        self.after(r)
    }

    fn decode_inner(&mut self, input: &[u8], finish: bool) -> Result<Decoded, CallError> {
        let function = if finish { "framer.finish" } else { "framer.decode" };
        let frames = match &self.native {
            // The built-in code checks every message frame is JSON-RPC
            // (`check_message`), so the JSON check of the wasm arm is not repeated.
            Some(native) if finish => native.finish(&self.plugin.name)?,
            Some(native) => native.decode(&self.plugin.name, input)?,
            None => {
                let plugin = self.plugin.clone();
                let live = self.live()?;
                let framer = live.framer;
                let instance = &live.instance;
                let out = guarded_sync(&mut live.store, function, |s| {
                    let codec = instance.mcpod_plugin_codec().framer();
                    if finish { codec.call_finish(s, framer) } else { codec.call_decode(s, framer, input) }
                })?;
                let frames = plugin_result(&plugin.ctx, out)?;
                if let Some(bad) = frames.iter().flatten().find(|f| f.event.is_none() && !is_json(&f.data)) {
                    return Err(CallError::BadOutput {
                        plugin: plugin.name.clone(),
                        function,
                        reason: format!("a message frame is not JSON: {:?}", truncate(&bad.data, 80)),
                    });
                }
                frames.into_iter().map(|f| f.map(from_wit)).collect()
            }
        };
        let size: usize = frames
            .iter()
            .map(|f| match f {
                Ok(f) => f.data.len() + f.event.as_ref().map_or(0, String::len) + f.id.as_ref().map_or(0, String::len),
                Err(e) => e.message.len(),
            })
            .sum();
        within_output_limit(&self.plugin, function, size)?;
        Ok(frames)
    }

    /// Feeds bytes from the peer; returns the messages they complete, each
    /// parsed once. Natively the framer's JSON-RPC check is not run on a
    /// line that parses as a message and could not fail it
    /// ([`needs_no_check`]); any other line is asked, so that its error is
    /// the one the plugin in wasm gives. The outcome is the same either way.
    pub fn decode_messages(&mut self, input: &[u8]) -> Result<DecodedMessages, CallError> {
        let r = self.messages_inner(input, false);
        self.after(r)
    }

    /// Ends the stream; returns the messages still buffered.
    pub fn finish_messages(&mut self) -> Result<DecodedMessages, CallError> {
        let r = self.messages_inner(&[], true);
        self.after(r)
    }

    fn messages_inner(&mut self, input: &[u8], finish: bool) -> Result<DecodedMessages, CallError> {
        let Some(native) = &self.native else {
            let frames = self.decode_inner(input, finish)?;
            return Ok(frames
                .into_iter()
                .map(|f| match f {
                    Ok(f) => Message::parse(&f.data).map_err(|e| Unparsed::NotJsonRpc(e.message)),
                    Err(e) => Err(Unparsed::Refused(e)),
                })
                .collect());
        };
        let function = if finish { "framer.finish" } else { "framer.decode" };
        let mut size = 0;
        let messages = native
            .lines(&self.plugin.name, input, finish)?
            .into_iter()
            .map(|line| {
                // Counted as `decode_inner` counts the frame or error the plugin gives.
                let text = line.inspect_err(|e| size += e.message.len()).map_err(Unparsed::Refused)?;
                let parsed = match Message::parse(&text) {
                    Ok(msg) if needs_no_check(&text) => Ok(msg),
                    parsed => match super::native::refusal(&text) {
                        Some(refused) => Err(Unparsed::Refused(refused)),
                        None => parsed.map_err(|e| Unparsed::NotJsonRpc(e.message)),
                    },
                };
                size += match &parsed {
                    Err(Unparsed::Refused(e)) => e.message.len(),
                    _ => text.len(),
                };
                parsed
            })
            .collect();
        within_output_limit(&self.plugin, function, size)?;
        Ok(messages)
    }

    /// The bytes that carry `frame` to the peer.
    pub fn encode(&mut self, frame: Frame) -> Result<Vec<u8>, CallError> {
        let r = self.encode_inner(frame);
        self.after(r)
    }

    fn encode_inner(&mut self, frame: Frame) -> Result<Vec<u8>, CallError> {
        let bytes = match &self.native {
            Some(native) => native.encode(&self.plugin.name, frame)?,
            None => {
                let plugin = self.plugin.clone();
                let frame = bindings::Frame { event: frame.event, id: frame.id, data: frame.data };
                let live = self.live()?;
                let framer = live.framer;
                let instance = &live.instance;
                let out = guarded_sync(&mut live.store, "framer.encode", |s| {
                    instance.mcpod_plugin_codec().framer().call_encode(s, framer, &frame)
                })?;
                plugin_result(&plugin.ctx, out)?
            }
        };
        within_output_limit(&self.plugin, "framer.encode", bytes.len())?;
        Ok(bytes)
    }
}

/// Whether a line that parsed as a message passes the framer's JSON-RPC
/// check without asking it: an object with no `null` in it. serde reads a
/// message from an array too, which the check refuses, and takes a `null`
/// `result` or `error` for none, where the check counts the key as there.
fn needs_no_check(text: &str) -> bool {
    text.trim_start().starts_with('{') && !text.contains("null")
}

/// Refuses a call's output of `size` bytes over the plugin's output limit
/// (natively too: the limit is the same whichever way the code runs).
fn within_output_limit(plugin: &AdapterPlugin, function: &'static str, size: usize) -> Result<(), CallError> {
    let limit = plugin.ctx.limits.output_bytes;
    if size > limit {
        return Err(CallError::OutputTooLarge { plugin: plugin.name.clone(), function, size, limit });
    }
    Ok(())
}

impl AdapterPlugin {
    /// The transport this adapter frames.
    pub fn transport_kind(&self) -> Result<Transport, CallError> {
        guarded_sync(&mut self.store(), "transport-kind", |s| {
            self.pre.instantiate(&mut *s)?.mcpod_plugin_codec().call_transport_kind(s)
        })
    }
}

/// A frame the adapter made, as the host holds it (its strings move, none is copied).
fn from_wit(f: bindings::Frame) -> Frame {
    Frame { event: f.event, id: f.id, data: f.data }
}

/// True if `text` is one JSON value.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
