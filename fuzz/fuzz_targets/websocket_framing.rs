//! libFuzzer entry of target `websocket_framing` (see `mcpod_fuzz::websocket_framing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::websocket_framing(data));
