//! The bridge between clients and one server: the session multiplexer
//! (pure routing) and the instance that drives it (process, handshake,
//! restarts) over one of the `upstream` transports.

pub mod federation;
pub mod instance;
pub mod mux;

pub use instance::{Delivery, DirectSink, Instance, InstanceState};
pub use mux::SessionId;
