//! Envelope rkyv decoding; see `src/envelope.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spine_fuzz::envelope::check(data));
