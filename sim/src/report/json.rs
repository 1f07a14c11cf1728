//! [`Report`]: the machine-readable report, serialised as `report.json`,
//! and the single source the Markdown and the charts are drawn from.
//!
//! Invariants and why:
//! - Built only from an [`Outcome`] and a [`Recorder`]
//!   ([`Report::build`]); `report.md` and the SVGs are rendered from the
//!   `Report`, so the three can never disagree.
//! - The JSON's top-level field names are a contract with CI and tooling:
//!   `event_log_hash` is exactly that, at the top level. A change of shape
//!   bumps [`SCHEMA_VERSION`].
//! - Every float is finite (non-finite values become 0), because JSON has
//!   no NaN or infinity and the file must read back with `serde_json`.
//! - Times: `t` is seconds of virtual time since the recorder's start (the
//!   start of the point's bucket), `at` the same instant in RFC 3339 UTC.
//!   Latencies are integer microseconds; rates are per virtual second.
//!   Fields that were not sampled in a bucket are `null`, never 0.

use serde::{Deserialize, Serialize};
use spine_core::time::Timestamp;

use super::latency::Percentiles;
use super::outcome::{InvariantResult, Mode, Outcome, Totals};
use super::recorder::{Recorder, RecorderNotes};

/// Version of the `report.json` layout (2: national-service requests in
/// `totals.services` and in each throughput point).
pub const SCHEMA_VERSION: u32 = 2;

/// The whole report. Field order is the order in `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`] of this layout.
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// `"deterministic"` or `"live"`.
    pub mode: Mode,
    /// Scenario scale factor.
    pub scale: f64,
    /// Hash of the event log (the run's deterministic fingerprint).
    pub event_log_hash: String,
    /// Every invariant held.
    pub passed: bool,
    /// Simulation events processed.
    pub events_processed: u64,
    /// Virtual start, RFC 3339.
    pub virtual_start: String,
    /// Virtual start, microseconds since the Unix epoch.
    pub virtual_start_unix_us: u64,
    /// Virtual time covered, seconds.
    pub virtual_duration_secs: f64,
    /// Real time taken, seconds.
    pub wall_duration_secs: f64,
    /// Events per real second.
    pub events_per_wall_sec: f64,
    /// Virtual seconds per real second.
    pub speedup: f64,
    /// Bucket width used, virtual seconds.
    pub bucket_secs: f64,
    /// Bucket width asked for (smaller if the run had to coarsen).
    pub requested_bucket_secs: f64,
    /// Run-wide counts.
    pub totals: Totals,
    /// Invariant verdicts.
    pub invariants: Vec<InvariantResult>,
    /// Run-wide latency percentiles.
    pub latency: OverallLatency,
    /// Counts and rates per bucket.
    pub throughput: Vec<ThroughputPoint>,
    /// Latency percentiles per bucket.
    pub latency_over_time: Vec<LatencyPoint>,
    /// Queue depths per bucket.
    pub queue_depth: Vec<QueuePoint>,
    /// WAL write and sync rates per bucket.
    pub wal: Vec<WalPoint>,
    /// Resident memory per bucket.
    pub memory: Vec<MemoryPoint>,
    /// Faults injected, in the order recorded.
    pub faults: Vec<FaultPoint>,
    /// What the recorder clamped, folded or dropped to stay bounded.
    pub recorder: RecorderNotes,
}

/// Run-wide latency percentiles (`null` when there were no samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverallLatency {
    /// Acceptance to collection, virtual time (deterministic).
    pub end_to_end_virtual: Option<Percentiles>,
    /// Time the node took to acknowledge a send, real time.
    pub send_wall: Option<Percentiles>,
}

/// One bucket's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputPoint {
    /// Bucket start, virtual seconds since the start.
    pub t: f64,
    /// Bucket start, RFC 3339.
    pub at: String,
    /// Virtual seconds the bucket covers.
    pub span_secs: f64,
    /// Sends acknowledged.
    pub accepted: u64,
    /// Sends refused.
    pub refused: u64,
    /// Messages collected.
    pub delivered: u64,
    /// Messages expired.
    pub expired: u64,
    /// Non-delivery reports received.
    pub reports: u64,
    /// Payload bytes acknowledged.
    pub accepted_bytes: u64,
    /// National-service requests answered.
    #[serde(default)]
    pub service_ok: u64,
    /// National-service requests failed or refused.
    #[serde(default)]
    pub service_failed: u64,
    /// National-service requests made per second.
    #[serde(default)]
    pub service_per_sec: f64,
    /// Sends acknowledged per second.
    pub accepted_per_sec: f64,
    /// Refusals per second.
    pub refused_per_sec: f64,
    /// Deliveries per second.
    pub delivered_per_sec: f64,
    /// Expiries per second.
    pub expired_per_sec: f64,
    /// Payload bytes acknowledged per second.
    pub accepted_bytes_per_sec: f64,
}

/// One bucket's latency percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Bucket start, virtual seconds since the start.
    pub t: f64,
    /// Bucket start, RFC 3339.
    pub at: String,
    /// End to end (virtual) of the bucket's deliveries.
    pub end_to_end_virtual: Option<Percentiles>,
    /// Send (wall) of the bucket's acknowledged sends.
    pub send_wall: Option<Percentiles>,
}

/// One bucket's queue depths (maxima of the samples taken in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuePoint {
    /// Bucket start, virtual seconds since the start.
    pub t: f64,
    /// Bucket start, RFC 3339.
    pub at: String,
    /// Deepest partition queue.
    pub deepest_partition_max: Option<u64>,
    /// WAL appends in flight.
    pub wal_in_flight_max: Option<u64>,
}

/// One bucket's WAL rates, from the cumulative counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalPoint {
    /// Bucket start, virtual seconds since the start.
    pub t: f64,
    /// Bucket start, RFC 3339.
    pub at: String,
    /// Bytes written per virtual second.
    pub bytes_per_sec: Option<f64>,
    /// `fdatasync`s per virtual second.
    pub fsyncs_per_sec: Option<f64>,
}

/// One bucket's resident memory (maximum sampled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// Bucket start, virtual seconds since the start.
    pub t: f64,
    /// Bucket start, RFC 3339.
    pub at: String,
    /// Resident set size, bytes.
    pub rss_bytes_max: Option<u64>,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultPoint {
    /// When, virtual seconds since the start.
    pub t: f64,
    /// When, RFC 3339.
    pub at: String,
    /// What.
    pub what: String,
}

/// `x`, or 0 if it is not finite.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        finite(num / den)
    } else {
        0.0
    }
}

fn opt_finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

impl Report {
    /// Assembles the report from the driver's outcome and the recorder.
    pub fn build(outcome: &Outcome, recorder: &Recorder) -> Report {
        let start = recorder.start();
        let virtual_secs = outcome.virtual_duration.as_secs_f64();
        let wall_secs = outcome.wall_duration.as_secs_f64();
        let timeline = recorder.timeline();

        let mut throughput = Vec::with_capacity(timeline.len());
        let mut latency_over_time = Vec::with_capacity(timeline.len());
        let mut queue_depth = Vec::with_capacity(timeline.len());
        let mut wal = Vec::with_capacity(timeline.len());
        let mut memory = Vec::with_capacity(timeline.len());
        for b in &timeline {
            let t = b.offset.as_secs_f64();
            let at = b.start.to_rfc3339();
            throughput.push(ThroughputPoint {
                t,
                at: at.clone(),
                span_secs: b.span.as_secs_f64(),
                accepted: b.accepted,
                refused: b.refused,
                delivered: b.delivered,
                expired: b.expired,
                reports: b.reports,
                accepted_bytes: b.accepted_bytes,
                service_ok: b.service_ok,
                service_failed: b.service_failed,
                service_per_sec: finite(b.service_per_sec),
                accepted_per_sec: finite(b.accepted_per_sec),
                refused_per_sec: finite(b.refused_per_sec),
                delivered_per_sec: finite(b.delivered_per_sec),
                expired_per_sec: finite(b.expired_per_sec),
                accepted_bytes_per_sec: finite(b.accepted_bytes_per_sec),
            });
            latency_over_time.push(LatencyPoint {
                t,
                at: at.clone(),
                end_to_end_virtual: b.end_to_end,
                send_wall: b.send_wall,
            });
            queue_depth.push(QueuePoint {
                t,
                at: at.clone(),
                deepest_partition_max: b.deepest_partition_max.map(|n| n as u64),
                wal_in_flight_max: b.wal_in_flight_max.map(|n| n as u64),
            });
            wal.push(WalPoint {
                t,
                at: at.clone(),
                bytes_per_sec: opt_finite(b.wal_bytes_per_sec),
                fsyncs_per_sec: opt_finite(b.wal_fsyncs_per_sec),
            });
            memory.push(MemoryPoint {
                t,
                at,
                rss_bytes_max: b.rss_bytes_max,
            });
        }

        let faults = recorder
            .faults()
            .iter()
            .map(|f| FaultPoint {
                t: f.at.saturating_sub(start).as_secs_f64(),
                at: f.at.to_rfc3339(),
                what: f.what.clone(),
            })
            .collect();

        Report {
            schema_version: SCHEMA_VERSION,
            scenario: outcome.scenario.clone(),
            seed: outcome.seed,
            mode: outcome.mode,
            scale: finite(outcome.scale),
            event_log_hash: outcome.event_log_hash.clone(),
            passed: outcome.passed(),
            events_processed: outcome.events_processed,
            virtual_start: start.to_rfc3339(),
            virtual_start_unix_us: start.as_micros(),
            virtual_duration_secs: virtual_secs,
            wall_duration_secs: wall_secs,
            events_per_wall_sec: ratio(outcome.events_processed as f64, wall_secs),
            speedup: ratio(virtual_secs, wall_secs),
            bucket_secs: recorder.bucket_width().as_secs_f64(),
            requested_bucket_secs: recorder.requested_bucket_width().as_secs_f64(),
            totals: outcome.totals.clone(),
            invariants: outcome.invariants.clone(),
            latency: OverallLatency {
                end_to_end_virtual: recorder.end_to_end_percentiles(),
                send_wall: recorder.send_wall_percentiles(),
            },
            throughput,
            latency_over_time,
            queue_depth,
            wal,
            memory,
            faults,
            recorder: recorder.notes(),
        }
    }

    /// The report as pretty-printed JSON (the content of `report.json`).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The virtual start as a timestamp.
    pub(crate) fn start(&self) -> Timestamp {
        Timestamp::from_micros(self.virtual_start_unix_us)
    }

    /// Virtual seconds the series covers: the buckets, the run, and any
    /// fault, whichever reaches furthest.
    pub(crate) fn x_extent_secs(&self) -> f64 {
        let buckets = self.throughput.last().map_or(0.0, |p| p.t + p.span_secs);
        let faults = self.faults.iter().map(|f| f.t).fold(0.0, f64::max);
        let extent = buckets.max(self.virtual_duration_secs).max(faults);
        if extent.is_finite() && extent > 0.0 {
            extent
        } else {
            1.0
        }
    }
}
