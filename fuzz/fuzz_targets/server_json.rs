//! libFuzzer entry of target `server_json` (see `mcpod_fuzz::server_json`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::server_json(data));
