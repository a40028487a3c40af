//! libFuzzer entry of target `kube_spec` (see `mcpod_fuzz::kube_spec`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpod_fuzz::kube_spec(data));
