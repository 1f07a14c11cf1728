//! Drivers: what runs a scenario's events against a node.
//!
//! - [`deterministic`]: the real core and actors in this process, on a
//!   virtual clock ([`ManualClock`](spine_core::time::ManualClock)) and
//!   seeded randomness. Events are applied one at a time, each awaited, so
//!   message ids, inbox orders and every outcome depend only on the
//!   scenario and the seed; hours of virtual time pass in seconds.
//! - `live`: the same events over the network against a running node.
//!
//! Both report through [`Observe`] and check invariants with
//! [`Checker`](crate::checker::Checker). With `[node]
//! service_requests_per_send = N` both follow every acknowledged send with
//! N PDS look-ups by its sender (`lookups`), reported through
//! [`Observe::service_requests`]; their failures are counted, not judged.

pub mod deterministic;
pub mod live;
mod live_outcomes;
mod lookups;
mod net_faults;
mod node;

use std::collections::BTreeMap;
use std::time::Duration;

use spine_core::time::Timestamp;

use crate::checker::Verdict;

/// What a driver tells the report as it runs.
pub trait Observe {
    /// A send was acknowledged after `wall` real time.
    fn send_accepted(&mut self, at: Timestamp, wall: Duration, bytes: u64);
    /// A send was refused with a stable error code.
    fn send_refused(&mut self, at: Timestamp, code: &str);
    /// A message was collected `end_to_end` (virtual) after acceptance.
    fn delivered(&mut self, at: Timestamp, end_to_end: Duration);
    /// An expiry round changed `n` messages.
    fn expired(&mut self, at: Timestamp, n: u64);
    /// A non-delivery report was collected.
    fn report_received(&mut self, at: Timestamp);
    /// A sender's national-service requests after its send at `at`: `ok`
    /// answered, `failed` not (failed or refused), by stable error code.
    fn service_requests(&mut self, at: Timestamp, ok: u64, failed: &BTreeMap<String, u64>);
    /// Queue depths sampled.
    fn queue_depth(&mut self, at: Timestamp, deepest_partition: usize, wal_in_flight: usize);
    /// Log totals sampled (cumulative).
    fn wal(&mut self, at: Timestamp, bytes_total: u64, fsyncs_total: u64);
    /// Resident memory sampled.
    fn memory(&mut self, at: Timestamp, rss_bytes: u64);
    /// A fault was injected.
    fn fault(&mut self, at: Timestamp, what: &str);
    /// Progress: events done and the virtual time reached.
    fn progress(&mut self, events: u64, at: Timestamp);
}

/// How the node stores its log in a deterministic run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Real files (durable; crash and fsync faults possible) in this
    /// directory (a temporary one when `None`).
    Disk(Option<std::path::PathBuf>),
    /// Memory only: faster, but node crashes and fsync faults are refused.
    Memory,
}

/// Settings of a deterministic run.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The run's seed.
    pub seed: u64,
    /// Virtual start time.
    pub start: Timestamp,
    /// Partition actors.
    pub partitions: u32,
    /// Inbox expiry.
    pub inbox_expiry: Duration,
    /// Resident-memory bound for the memory invariant (0: none).
    pub memory_limit: u64,
    /// Where the log lives.
    pub storage: Storage,
    /// How long, in virtual time, a failed log stays failed before the
    /// operator restarts the node.
    pub fsync_recovery: Duration,
    /// Also write every event-log line to this file.
    pub event_log: Option<std::path::PathBuf>,
    /// PDS look-ups each sender makes per message it sends (0: none).
    pub service_requests_per_send: u32,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The event log's hash.
    pub event_log_hash: String,
    /// Events recorded in the log.
    pub events: u64,
    /// Scenario events processed.
    pub scenario_events: u64,
    /// Virtual time covered.
    pub virtual_duration: Duration,
    /// Real time taken.
    pub wall_duration: Duration,
    /// Invariant results.
    pub verdicts: Vec<Verdict>,
    /// Sends acknowledged.
    pub accepted: u64,
    /// Sends refused, by code.
    pub refused: BTreeMap<String, u64>,
    /// Data messages collected.
    pub delivered: u64,
    /// Messages that expired.
    pub expired: u64,
    /// Reports collected.
    pub reports: u64,
    /// Acknowledged messages missing at the end.
    pub lost: u64,
    /// Messages collected by the wrong mailbox or with wrong bytes.
    pub misdelivered: u64,
    /// Listings out of order.
    pub out_of_order: u64,
    /// The last event-log lines (for a failed invariant's context).
    pub tail: Vec<String>,
}

impl RunResult {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.ok)
    }
}

/// Resident memory of this process (0 where unknown).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
