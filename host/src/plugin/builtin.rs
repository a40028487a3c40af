//! The built-in plugins, compiled for `wasm32-wasip2` by the build script
//! and embedded in the binary.

use crate::config::{LimitsEntry, PluginKind};

/// One embedded plugin and its defaults.
pub struct Builtin {
    /// The plugin's name (`source = "builtin:NAME"`).
    pub name: &'static str,
    /// Its kind.
    pub kind: PluginKind,
    /// Hosts it may reach by default.
    pub allow_hosts: &'static [&'static str],
    /// Its default limits, where they differ from the host's.
    pub limits: fn() -> LimitsEntry,
    /// The component.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The built-in plugin named `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
