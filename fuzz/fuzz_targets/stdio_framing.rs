//! libFuzzer entry of target `stdio_framing` (see `mcpod_fuzz::stdio_framing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::stdio_framing(data));
