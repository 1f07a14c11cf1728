//! `spine-sim`: rehearse national peaks and fault drills, and plan capacity.
//!
//! - [`scenario`] reads a scenario file; [`model`] turns it and a seed into
//!   a population and a lazily generated, virtual-time-ordered stream of
//!   events (sans-IO, deterministic).
//! - [`driver`] runs the events against the real node: in this process on a
//!   virtual clock (deterministic mode), or over the network (live mode).
//! - [`checker`] holds the invariants; [`eventlog`] hashes what happened;
//!   [`report`] writes report.json, report.md and the charts.
//! - [`jsonl`] and [`services`] write a scenario's mailbox and service
//!   directories for a live node (`spine-sim directory`).
//!
//! Invariant: the same scenario and seed give the same event log, hence the
//! same `event_log_hash`, on any machine (tests check it through the
//! binary).

pub mod checker;
pub mod content;
pub mod driver;
pub mod eventlog;
pub mod jsonl;
pub mod model;
pub mod plan;
pub mod report;
pub mod run;
pub mod scenario;
pub mod services;
