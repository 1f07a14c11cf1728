//! The run report: what a simulation run measured, and the files it leaves
//! behind.
//!
//! - [`Recorder`] (`recorder.rs`) collects time series over VIRTUAL time in
//!   fixed-width buckets, with hdrhistogram latencies (`latency.rs`);
//!   [`Recorder::timeline`] (`timeline.rs`) turns the buckets into rates
//!   and percentiles.
//! - [`Outcome`] (`outcome.rs`) is what the driver hands over at the end:
//!   identity of the run, totals, invariant verdicts.
//! - [`Report`] (`json.rs`) is both together, the content of
//!   `report.json`; `report.md` (`markdown.rs`) and the SVG charts
//!   (`svg.rs`) are rendered from it. [`write_report`] / [`write_outcome`]
//!   (`write.rs`) put them in the output directory.
//! - [`Progress`] (`progress.rs`) shows how far a long run has got.
//!
//! Invariants across the module:
//! - Bounded memory, whatever the run's length: at most [`MAX_BUCKETS`]
//!   buckets (coarsened, never dropped), capped fault and error-code lists,
//!   clamped latencies; whatever was clamped or folded is reported.
//! - Deterministic inputs give deterministic series: bucketing depends on
//!   virtual time only. Wall-clock measurements (send latency, memory,
//!   events per second) are labelled as such.
//! - Nothing reachable from input panics; file errors are [`ReportError`]s
//!   with the path and a stable code.

mod format;
mod json;
mod latency;
mod markdown;
mod outcome;
mod progress;
mod recorder;
mod svg;
mod timeline;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod xml_check;

pub use json::{
    FaultPoint, LatencyPoint, MemoryPoint, OverallLatency, QueuePoint, Report, ThroughputPoint,
    WalPoint, SCHEMA_VERSION,
};
pub use latency::{Percentiles, MAX_LATENCY};
pub use outcome::{InvariantResult, Mode, Outcome, ServiceTotals, Totals};
pub use progress::Progress;
pub use recorder::{
    FaultMark, Recorder, RecorderNotes, MAX_BUCKETS, MAX_ERROR_CODES, MAX_FAULTS, OTHER_CODE,
};
pub use timeline::BucketSummary;
pub use write::{
    write_outcome, write_report, ReportError, ReportFiles, LATENCY_SVG, QUEUE_DEPTH_SVG,
    REPORT_JSON, REPORT_MD, THROUGHPUT_SVG,
};
