//! The checks behind Spine's fuzz targets (issue 7, hostile input).
//!
//! Each module has one `check(data)` that drives a real parser with
//! arbitrary bytes and asserts what must hold for every input: no panic,
//! no endless loop, and whatever is accepted re-encodes and round-trips
//! where the API has an encoder. A failed assertion is a panic, which
//! libFuzzer reports as a crash.
//!
//! The targets in `fuzz_targets/` are one line each around these, so the
//! same checks also run without libFuzzer, on the stable toolchain, in
//! `tests/replay.rs` (every committed seed and regression input).
//! `corpus` builds the seed corpora from the real encoders.

pub mod corpus;
pub mod directory;
pub mod envelope;
pub mod frame_codec;
pub mod mesh_headers;
pub mod nhsmesh_token;

/// The fuzz targets, by name (directory names under `corpus/`).
pub const TARGETS: [&str; 5] = [
    "frame_codec",
    "envelope",
    "mesh_headers",
    "nhsmesh_token",
    "directory",
];

/// Runs target `name`'s check on `data`.
///
/// # Panics
/// When the check fails, or `name` is not in [`TARGETS`].
pub fn check(name: &str, data: &[u8]) {
    match name {
        "frame_codec" => frame_codec::check(data),
        "envelope" => envelope::check(data),
        "mesh_headers" => mesh_headers::check(data),
        "nhsmesh_token" => nhsmesh_token::check(data),
        "directory" => directory::check(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}
