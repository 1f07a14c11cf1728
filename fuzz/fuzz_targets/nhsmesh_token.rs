//! The NHSMESH Authorization token; see `src/nhsmesh_token.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spine_fuzz::nhsmesh_token::check(data));
