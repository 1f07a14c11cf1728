//! The embedded demo directory, matching NHS mesh-sandbox's canned data:
//! mailboxes X26ABC1 and X26ABC2 (ODS X26) and X26ABC3 (ODS X27), all with
//! password `password`, and the three `TEST_WORKFLOW*` workflows.
//!
//! The data lives in `demo/*.jsonl` and goes through the ordinary JSONL
//! loader, so the demo exercises the same path as real files. It returns a
//! `Result` rather than unwrapping; the tests prove it always loads.

use crate::directory::credentials::DEFAULT_HASH_ITERATIONS;
use crate::directory::{jsonl, Directory, DirectoryError};
use crate::random::RandomSource;

/// Contents of the demo `mailboxes.jsonl`.
pub const DEMO_MAILBOXES_JSONL: &str = include_str!("demo/mailboxes.jsonl");
/// Contents of the demo `workflows.jsonl`.
pub const DEMO_WORKFLOWS_JSONL: &str = include_str!("demo/workflows.jsonl");

impl Directory {
    /// The demo directory, hashing its passwords with
    /// [`DEFAULT_HASH_ITERATIONS`] and salts from `rng`. Never fails in
    /// practice (the embedded data is tested); the `Result` is kept so no
    /// code path can panic.
    pub fn demo(rng: &mut dyn RandomSource) -> Result<Directory, DirectoryError> {
        jsonl::load_jsonl(
            DEMO_MAILBOXES_JSONL,
            DEMO_WORKFLOWS_JSONL,
            rng,
            DEFAULT_HASH_ITERATIONS,
        )
    }
}
