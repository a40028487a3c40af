//! Errors of plugin loading and plugin calls. A call error never takes the
//! host down: it fails that one call, and says why.

use crate::config::PluginKind;
use crate::plugin::bindings::{ErrorCode, PluginError};

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{name}` ({source_desc}): {message}")]
pub struct LoadError {
    /// The plugin's name.
    pub name: String,
    /// Its kind.
    pub kind: PluginKind,
    /// `builtin:NAME` or the file path.
    pub source_desc: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Why loading could not begin at all: the WebAssembly runtime itself
/// failed, before any plugin was looked at (no plugin is to blame).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The engine could not be created.
    #[error(
        "cannot create the WebAssembly engine: {0}; try `[plugin_runtime] pooling = false` or a smaller `max_instances`"
    )]
    Engine(String),
    /// The host imports could not be linked (a build of mcpod at odds with its own WIT).
    #[error("cannot link the host imports into the WebAssembly engine: {0}; this build of mcpod is broken, report it")]
    Link(String),
}

/// The clause an "unknown plugin" message adds when a plugin of that name
/// failed to load (`: plugin `x` (source) failed to load: why; ...`), else nothing.
pub fn failed_to_load(failure: Option<&LoadError>) -> String {
    failure
        .map(|f| {
            format!(
                ": plugin `{}` ({}) failed to load: {}; fix it and restart mcpod (`mcpod plugins list` shows every failure)",
                f.name, f.source_desc, f.message
            )
        })
        .unwrap_or_default()
}

/// Why a call into a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error of its own: bad input, not found, ...
    #[error("{plugin}: {}", .error.message)]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The error it returned.
        error: PluginError,
    },
    /// No plugin of that name and kind is loaded.
    #[error("no {kind} plugin named `{name}` is loaded; `mcpod plugins list` shows the loaded ones")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The kind asked for.
        kind: PluginKind,
    },
    /// The guest used up its CPU budget.
    #[error("plugin `{plugin}` used more than its {budget_ms} ms CPU budget in `{function}` and was stopped")]
    Cpu {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The budget.
        budget_ms: u128,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("plugin `{plugin}` exceeded its {limit_mib} MiB memory limit in `{function}` and was stopped")]
    Memory {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The cap.
        limit_mib: usize,
    },
    /// The call took longer than the plugin's wall-clock timeout.
    #[error("plugin `{plugin}` did not finish `{function}` within {timeout_ms} ms and was stopped")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The timeout.
        timeout_ms: u128,
    },
    /// The guest panicked.
    #[error("plugin `{plugin}` panicked in `{function}`: {message}")]
    Panic {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The panic message from the guest's stderr.
        message: String,
    },
    /// The guest trapped for another reason.
    #[error("plugin `{plugin}` trapped in `{function}`: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The trap.
        message: String,
    },
    /// The result is over the plugin's output cap.
    #[error("plugin `{plugin}` returned {size} bytes from `{function}`, over its {limit}-byte output cap")]
    OutputTooLarge {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The result's size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The result breaks the contract (an empty command, a message that is not JSON, ...).
    #[error("plugin `{plugin}` returned an invalid result from `{function}`: {reason}")]
    BadOutput {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl CallError {
    /// The plugin's own error code, when the plugin returned one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            CallError::Plugin { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// True when the plugin misbehaved (trap, limit, garbage), as opposed to
    /// answering with an error of its own.
    pub fn is_fault(&self) -> bool {
        !matches!(self, CallError::Plugin { .. } | CallError::Unknown { .. })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorCode::InvalidInput => "invalid-input",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Denied => "denied",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Internal => "internal",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::HostError;

    #[test]
    fn an_engine_failure_blames_no_plugin_and_says_what_to_change() {
        let e = HostError::Engine("out of address space".into()).to_string();
        assert!(!e.contains("plugin `"), "{e}");
        assert!(e.contains("out of address space") && e.contains("pooling = false"), "{e}");
    }
}
