//! libFuzzer entry of target `mux_sequence` (see `mcpod_fuzz::mux_sequence`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::mux_sequence(data));
