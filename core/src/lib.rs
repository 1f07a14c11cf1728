//! `spine-core`: the sans-IO heart of Spine.
//!
//! Everything here is deterministic: no threads, no sockets, no clock or
//! random-number reads. Time comes in through [`time::Clock`] and randomness
//! through [`random::RandomSource`], and the only I/O is behind
//! [`wal::Storage`], so the simulator can drive the very same code on a
//! virtual clock with injected faults.
//!
//! Invariants kept by this crate:
//! - Every value that came from outside (identifiers, directory files, log
//!   bytes) is validated on construction; a validated type cannot hold an
//!   invalid value.
//! - Library errors are `thiserror` enums whose `code()` is stable across
//!   releases; nothing reachable from input panics.
//! - Applying the same sequence of log events always yields the same state.

pub mod directory;
pub mod envelope;
pub mod error_code;
pub mod ids;
pub mod message;
pub mod partition;
pub mod random;
pub mod services;
pub mod time;
pub mod wal;

pub use error_code::ErrorCode;
