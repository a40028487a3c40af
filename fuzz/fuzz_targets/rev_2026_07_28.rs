//! libFuzzer entry of target `rev_2026_07_28` (see `mcpod_fuzz::rev_2026_07_28`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::rev_2026_07_28(data));
