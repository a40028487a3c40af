//! libFuzzer entry of target `federation_sequence` (see `mcpod_fuzz::federation_sequence`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::federation_sequence(data));
