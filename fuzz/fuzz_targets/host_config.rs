//! libFuzzer entry of target `host_config` (see `mcpod_fuzz::host_config`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::host_config(data));
