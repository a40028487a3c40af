//! The bridge between clients and one server: the session multiplexer
//! (pure routing), the instance that drives it (process, handshake,
//! restarts), and the upstream transports (stdio, the network ones, and a
//! 2026-07-28 server spoken to in its own revision).

pub mod instance;
pub mod modern_upstream;
pub mod mux;
pub mod network;
pub mod stdio;

pub use instance::{Delivery, DirectSink, Instance, InstanceState};
pub use mux::SessionId;
