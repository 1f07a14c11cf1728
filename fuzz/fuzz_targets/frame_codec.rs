//! The native protocol's frame decoders; see `src/frame_codec.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spine_fuzz::frame_codec::check(data));
