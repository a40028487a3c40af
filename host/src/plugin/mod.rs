//! The plugin runtime: wasmtime components implementing the WIT worlds in
//! `wit/`, loaded from the binary or from files, each call run under limits.

pub mod bindings;
pub mod builtin;
pub mod cache;
pub mod engine;
pub mod error;
pub mod host;
pub mod imports;
pub mod instance;
pub mod kinds;
pub mod limits;
pub mod state;
pub mod world;

pub use error::{CallError, HostError, LoadError};
pub use host::{LoadedPlugin, PluginHost};
pub use kinds::adapter::AdapterSession;
pub use kinds::{AdapterPlugin, CatalogPlugin, RegistryPlugin, ServerTypePlugin};
