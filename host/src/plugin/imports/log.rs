//! `mcpod:plugin/log`: plugin log records, written through `tracing` with
//! the plugin's name as a field.

use crate::plugin::bindings::services::mcpod::plugin::log::{Host, Level};
use crate::plugin::state::PluginState;

/// The longest message or field value kept; longer ones are cut, so that a
/// plugin cannot flood the host's logs.
const MAX_TEXT: usize = 4096;

fn cut(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Host for PluginState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let plugin = self.ctx.name.as_str();
        let fields: Vec<String> = fields.iter().take(32).map(|(k, v)| format!("{}={}", cut(k), cut(v))).collect();
        let fields = fields.join(" ");
        let message = cut(&message);
        match level {
            Level::Trace => tracing::trace!(target: "mcpod::plugin", plugin, fields, "{message}"),
            Level::Debug => tracing::debug!(target: "mcpod::plugin", plugin, fields, "{message}"),
            Level::Info => tracing::info!(target: "mcpod::plugin", plugin, fields, "{message}"),
            Level::Warn => tracing::warn!(target: "mcpod::plugin", plugin, fields, "{message}"),
            Level::Error => tracing::error!(target: "mcpod::plugin", plugin, fields, "{message}"),
        }
    }
}
