//! Directory file loading (JSONL and TOML); see `src/directory.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spine_fuzz::directory::check(data));
