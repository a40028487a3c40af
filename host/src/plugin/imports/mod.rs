//! The host imports a plugin can be given, one module per WIT interface.
//! Each checks the plugin's grants itself.

pub mod config;
pub mod http;
pub mod log;
pub mod no_wait_io;
