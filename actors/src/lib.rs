//! `spine-actors`: the Spine node runtime.
//!
//! The async shell around the sans-IO `spine-core`: it owns threads, files
//! and actors. [`wal`] is the write-ahead log on real disks (pipelined group
//! commit); [`node`] opens storage and runs the actor tree behind a
//! [`node::NodeHandle`]; [`partition`], [`supervisor`], [`expiry`] and
//! [`service`] are the actors; [`system`] the production clock and
//! randomness; [`metrics`] the Prometheus exporter and the series the node
//! emits.

mod budget;
pub mod expiry;
pub mod listen;
pub mod memory;
pub mod mesh;
pub mod metrics;
pub mod node;
pub mod partition;
pub mod service;
pub mod services;
pub mod supervisor;
pub mod system;
pub mod tls;
pub mod transport;
pub mod wal;
pub mod wal_actor;
