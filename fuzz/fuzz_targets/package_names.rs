//! libFuzzer entry of target `package_names` (see `mcpod_fuzz::package_names`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::package_names(data));
