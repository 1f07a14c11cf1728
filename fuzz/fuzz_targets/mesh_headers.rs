//! MESH request routing and headers; see `src/mesh_headers.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spine_fuzz::mesh_headers::check(data));
