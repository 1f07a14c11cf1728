//! Scenario files: what a simulation run is made of.
//!
//! A scenario is a TOML file (see `sim/scenarios/*.toml` and
//! `sim/scenarios/README.md` for the format) describing the organisations
//! and their mailboxes (`[[class]]`), how each class collects its mail
//! (`[class.consumer]`), the traffic (`[[flow]]`, with diurnal curves,
//! peaks, size distributions and chunking), global peaks (`[[peak]]`), the
//! fault schedule (`[[fault]]`) and the node settings the driver applies
//! (`[node]`).
//!
//! Invariants and why:
//! - Every table refuses unknown keys (`deny_unknown_fields`): a typo is an
//!   error naming the key, never a silently ignored setting.
//! - A [`Scenario`] returned by [`Scenario::parse`] or [`Scenario::load`]
//!   has passed [`Scenario::validate`]: every range, every reference
//!   between sections, the generated ids' validity, and the sanity cap on
//!   the number of events (`max_events`) that `rate × scale × duration`
//!   plus polls implies. Fields are public so tests and tools can adjust a
//!   loaded scenario; call [`Scenario::validate`] again after doing so.
//!   The generators in [`crate::model`] never panic on an unvalidated
//!   scenario, but may then yield fewer mailboxes or events.
//! - Times and durations are virtual seconds unless the key says otherwise
//!   (`_ms`, `_bytes`); `start` is UTC and the diurnal curve is indexed by
//!   the UTC hour.
//! - `scale` (0 < scale <= 1) multiplies every rate: a national day runs
//!   with `rate × scale` messages, and reports must state the scale.
//! - Nothing here reads a clock or OS randomness; the same text always
//!   gives the same scenario.

mod classes;
mod error;
mod faults;
mod rates;
mod start;
mod traffic;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Deserialize;
use spine_core::time::Timestamp;

pub use classes::{Consumer, ConsumerKind, MailboxClass, MAX_ODS_PREFIX, MIN_ODS_DIGITS};
pub use error::{ScenarioError, INLINE_ORIGIN};
pub use faults::{
    FaultKind, FaultSpec, DEFAULT_MALFORMED_FRAMES, DEFAULT_STALL_MILLIS, DEFAULT_STALL_SECS,
    DEFAULT_STORM_CONNECTIONS,
};
pub use rates::{Estimate, RateModel};
pub use start::parse_rfc3339;
pub use traffic::{
    Diurnal, Flow, Peak, SizeDist, Targets, WeightedSize, DEFAULT_CHUNK_BYTES,
    DEFAULT_MESSAGE_BYTES, DIURNAL_NAMES, MAX_CHUNK_BYTES, MAX_MESSAGE_BYTES, MAX_MULTIPLIER,
    MAX_RATE,
};

/// Default sanity cap on generated events.
pub const DEFAULT_MAX_EVENTS: u64 = 10_000_000;
/// Highest `max_events` accepted.
pub const MAX_MAX_EVENTS: u64 = 1_000_000_000;
/// Longest scenario, virtual seconds (a year).
pub const MAX_DURATION: u64 = 366 * 86_400;
/// Most mailboxes in a population.
pub const MAX_MAILBOXES: u64 = 1_000_000;

/// A validated simulation scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (reports use it).
    pub name: String,
    /// What the scenario rehearses.
    #[serde(default)]
    pub description: String,
    /// Virtual start time (UTC).
    #[serde(deserialize_with = "start::deserialize")]
    pub start: Timestamp,
    /// Virtual length, seconds (1..=31,622,400).
    pub duration: u64,
    /// Fraction of the national rates generated (0 < scale <= 1; default 1).
    #[serde(default = "full_scale")]
    pub scale: f64,
    /// Refuse the scenario if it implies more events than this (default
    /// 10,000,000; at most 1,000,000,000).
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Settings the driver applies to the node (`[node]`).
    #[serde(default)]
    pub node: NodeSettings,
    /// Organisation classes (`[[class]]`), in file order.
    #[serde(rename = "class")]
    pub classes: Vec<MailboxClass>,
    /// Traffic (`[[flow]]`), in file order.
    #[serde(rename = "flow")]
    pub flows: Vec<Flow>,
    /// Peaks applying to every flow (`[[peak]]`).
    #[serde(default, rename = "peak")]
    pub peaks: Vec<Peak>,
    /// Fault schedule (`[[fault]]`).
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
}

fn full_scale() -> f64 {
    1.0
}

fn default_max_events() -> u64 {
    DEFAULT_MAX_EVENTS
}

/// Node settings the driver applies (`[node]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSettings {
    /// Partition actors (1..=4096; default 8).
    pub partitions: u32,
    /// Seconds a message may wait in an inbox before it expires and its
    /// sender gets a non-delivery report (default 5 days).
    pub inbox_expiry: u64,
    /// Seconds after which a message is purged entirely (at least
    /// `inbox_expiry`; default the larger of 30 days and `inbox_expiry`).
    pub purge_after: Option<u64>,
    /// Seconds between expiry rounds (`ExpiryTick` events; default 60).
    pub expiry_tick: u64,
    /// Seconds between samples for the report (`Sample` events; default 60).
    pub sample_interval: u64,
    /// Memory the node may use, bytes: the memory invariant's bound
    /// (default 4 GiB).
    pub memory_limit_bytes: u64,
    /// PDS look-ups each sender makes per message it sends (0..=1000;
    /// default 0): Spine's service traffic mixed with MESH's. About 32 is
    /// the national proportion (1.3 billion Spine messages a month against
    /// MESH's 40 million files). Both modes; a live node needs the
    /// `services.toml` `spine-sim directory` writes.
    pub service_requests_per_send: u32,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            partitions: 8,
            inbox_expiry: 5 * 86_400,
            purge_after: None,
            expiry_tick: 60,
            sample_interval: 60,
            memory_limit_bytes: 4 << 30,
            service_requests_per_send: 0,
        }
    }
}

impl NodeSettings {
    /// `purge_after`, defaulted.
    pub fn purge_after(&self) -> u64 {
        self.purge_after
            .unwrap_or_else(|| self.inbox_expiry.max(30 * 86_400))
    }
}

/// Where one class's mailboxes sit in the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassSpan {
    /// Index into [`Scenario::classes`].
    pub class: usize,
    /// Index of its first mailbox in `Population::mailboxes`.
    pub first: usize,
    /// How many mailboxes.
    pub len: usize,
}

impl Scenario {
    /// Parses and validates scenario text (errors name [`INLINE_ORIGIN`]).
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_from(text, INLINE_ORIGIN)
    }

    /// Parses and validates scenario text read from `file` (used in
    /// errors).
    pub fn parse_from(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            file: file.to_owned(),
            detail: e.to_string().trim_end().to_owned(),
        })?;
        scenario.validate_in(file)?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        Scenario::parse_from(&text, &file)
    }

    /// Checks every value and reference (see the module documentation).
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_in(INLINE_ORIGIN)
    }

    /// The virtual end time, `start + duration` (clamped to the calendar).
    pub fn end(&self) -> Timestamp {
        self.start
            .saturating_add(std::time::Duration::from_secs(self.duration))
    }

    /// Total mailboxes.
    pub fn mailbox_count(&self) -> u64 {
        self.classes
            .iter()
            .map(MailboxClass::mailboxes)
            .fold(0, u64::saturating_add)
    }

    /// Index of the class called `name`.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.name == name)
    }

    /// Where each class's mailboxes sit in the population: hub classes
    /// first, then the others, each group in file order.
    pub fn class_spans(&self) -> Vec<ClassSpan> {
        let order = self
            .classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.hub)
            .chain(self.classes.iter().enumerate().filter(|(_, c)| !c.hub));
        let mut first = 0usize;
        order
            .map(|(class, c)| {
                let len = usize::try_from(c.mailboxes()).unwrap_or(usize::MAX);
                let span = ClassSpan { class, first, len };
                first = first.saturating_add(len);
                span
            })
            .collect()
    }

    /// The classes `targets` covers, each with its share of the traffic
    /// (shares sum to 1 unless nothing is covered). Unknown names and
    /// classes without mailboxes are left out.
    pub fn target_shares(&self, targets: &Targets) -> Vec<(usize, f64)> {
        let by_size = |indices: Vec<usize>| -> Vec<(usize, f64)> {
            indices
                .into_iter()
                .filter_map(|i| {
                    let n = self.classes.get(i)?.mailboxes();
                    (n > 0).then_some((i, n as f64))
                })
                .collect()
        };
        let weighted = match targets {
            Targets::Any => by_size((0..self.classes.len()).collect()),
            Targets::Classes(names) => {
                let mut indices: Vec<usize> =
                    names.iter().filter_map(|n| self.class_index(n)).collect();
                indices.sort_unstable();
                indices.dedup();
                by_size(indices)
            }
            Targets::Weighted(pairs) => pairs
                .iter()
                .filter_map(|(name, w)| {
                    let i = self.class_index(name)?;
                    let usable = w.is_finite() && *w > 0.0;
                    (usable && self.classes.get(i)?.mailboxes() > 0).then_some((i, *w))
                })
                .collect(),
        };
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        if total <= 0.0 || !total.is_finite() {
            return Vec::new();
        }
        weighted.into_iter().map(|(i, w)| (i, w / total)).collect()
    }
}
