//! `spine-actors`: the Spine node runtime.
//!
//! This crate is the async shell around the sans-IO `spine-core`: it owns
//! threads, files and sockets. Today it holds the write-ahead log on real
//! disks ([`wal`]), the production clock and randomness ([`system`]) and the
//! node's startup and recovery ([`node`]); the actor tree, transports and
//! metrics build on these.

pub mod node;
pub mod system;
pub mod wal;
