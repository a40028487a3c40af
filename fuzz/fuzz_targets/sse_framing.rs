//! libFuzzer entry of target `sse_framing` (see `mcpod_fuzz::sse_framing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::sse_framing(data));
