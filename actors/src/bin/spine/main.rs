//! The `spine` command.
fn main() {}
