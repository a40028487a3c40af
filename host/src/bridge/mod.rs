//! The bridge between clients and one server: the session multiplexer
//! (pure routing), the instance that drives it (process, handshake,
//! restarts), and the upstream transports.

pub mod instance;
pub mod mux;
pub mod network;
pub mod stdio;

pub use instance::{Delivery, DirectSink, Instance, InstanceState};
pub use mux::SessionId;
