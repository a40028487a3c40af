//! libFuzzer entry of target `jsonrpc_envelope` (see `mcpod_fuzz::jsonrpc_envelope`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::jsonrpc_envelope(data));
