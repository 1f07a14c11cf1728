//! Helpers for black-box tests of the `spine` binary.
