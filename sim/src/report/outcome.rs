//! [`Outcome`]: what the driver hands the report at the end of a run.
//!
//! Invariants and why:
//! - Plain data, filled in by the driver and the invariant checkers; the
//!   report copies it verbatim into `report.json`, so every field here is
//!   part of the report's contract.
//! - `event_log_hash` is the deterministic fingerprint of the run (same
//!   scenario and seed, same hash in deterministic mode); everything timed
//!   by the wall clock is not.
//! - The run passed if and only if every invariant held
//!   ([`Outcome::passed`]); the totals are evidence, not the verdict.
//! - National-service requests (`[node] service_requests_per_send`) are
//!   counted in [`Totals::services`]: issued, answered, and failed by
//!   stable error code. Failures are shown, never a verdict: a look-up
//!   refused during an injected fault, or by a node that does not accredit
//!   the population, is something to see in the report, not a broken
//!   invariant of the message store. The counts come from the recorder
//!   (the drivers' [`Observe`](crate::driver::Observe) calls).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the run drove the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In-process, on a virtual clock with seeded randomness.
    Deterministic,
    /// Against a running node over the network.
    Live,
}

impl Mode {
    /// `"deterministic"` or `"live"`, as in `report.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Deterministic => "deterministic",
            Mode::Live => "live",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Run-wide counts, as the driver and the checkers tallied them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Sends the node acknowledged (accepted); refusals are not included.
    pub sent: u64,
    /// Sends refused, per stable error code.
    pub refused: BTreeMap<String, u64>,
    /// Messages collected by their recipients.
    pub delivered: u64,
    /// Messages that expired uncollected.
    pub expired: u64,
    /// Non-delivery reports received by senders.
    pub reports: u64,
    /// Acknowledged messages that could not be found afterwards.
    pub lost: u64,
    /// Messages delivered to a mailbox they were not addressed to.
    pub misdelivered: u64,
    /// Deliveries out of per-mailbox order.
    pub out_of_order: u64,
    /// National-service requests made by senders alongside their sends.
    #[serde(default)]
    pub services: ServiceTotals,
}

/// National-service requests over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTotals {
    /// Requests made (answered or not).
    pub issued: u64,
    /// Requests answered.
    pub ok: u64,
    /// Requests failed or refused, per stable error code (codes past the
    /// recorder's cap are counted as `OTHER`).
    pub failed: BTreeMap<String, u64>,
}

impl ServiceTotals {
    /// All failures, whatever the code.
    pub fn failed_total(&self) -> u64 {
        sum(&self.failed)
    }
}

fn sum(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().fold(0u64, |sum, n| sum.saturating_add(*n))
}

impl Totals {
    /// All refusals, whatever the code.
    pub fn refused_total(&self) -> u64 {
        sum(&self.refused)
    }
}

/// One invariant checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantResult {
    /// Which invariant, e.g. `no_acknowledged_message_lost`.
    pub name: String,
    /// Whether it held for the whole run.
    pub ok: bool,
    /// When broken: the seed and the event that broke it (free text).
    pub detail: Option<String>,
}

/// Everything about a finished run that the recorder does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// The seed the run used.
    pub seed: u64,
    /// Deterministic or live.
    pub mode: Mode,
    /// The scenario's scale factor (1.0: as written).
    pub scale: f64,
    /// Hash of the event log (hex); equal for equal seeds in deterministic
    /// mode.
    pub event_log_hash: String,
    /// Simulation events processed.
    pub events_processed: u64,
    /// Virtual time the run covered.
    pub virtual_duration: Duration,
    /// Real time the run took.
    pub wall_duration: Duration,
    /// Run-wide counts.
    pub totals: Totals,
    /// Every invariant checker's verdict.
    pub invariants: Vec<InvariantResult>,
}

impl Outcome {
    /// True if every invariant held.
    pub fn passed(&self) -> bool {
        self.invariants.iter().all(|i| i.ok)
    }
}
