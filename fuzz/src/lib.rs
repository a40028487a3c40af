//! The bodies of mcpod's fuzz targets. Each takes the fuzzer's bytes,
//! drives one parser or state machine that a client or a server can reach,
//! and panics when a property it must keep fails (a panic is what libFuzzer
//! reports as a crash). `fuzz_targets/*.rs` hand them to libFuzzer under
//! `cargo fuzz`; `tests/corpus.rs` replays the committed corpus and every
//! input that ever failed through them on stable Rust, in `cargo test`.

mod framing;
mod machines;
mod script;
mod shapes;

pub use framing::{sse_framing, stdio_framing, websocket_framing};
pub use machines::{federation_sequence, mux_sequence};
pub use shapes::{host_config, jsonrpc_envelope, kube_spec, package_names, rev_2026_07_28, server_json};

/// A fuzz target's body: the fuzzer's bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target by the name `cargo fuzz list` gives it.
pub const TARGETS: &[(&str, Target)] = &[
    ("jsonrpc_envelope", jsonrpc_envelope),
    ("mux_sequence", mux_sequence),
    ("federation_sequence", federation_sequence),
    ("rev_2026_07_28", rev_2026_07_28),
    ("stdio_framing", stdio_framing),
    ("sse_framing", sse_framing),
    ("websocket_framing", websocket_framing),
    ("host_config", host_config),
    ("server_json", server_json),
    ("package_names", package_names),
    ("kube_spec", kube_spec),
];
