//! [`Recorder`]: what happened during a run, in fixed-width buckets of
//! VIRTUAL time.
//!
//! Invariants and why:
//! - A sample at virtual time `at` lands in bucket
//!   `(at - start) / width`; buckets are contiguous, the same width, and
//!   aligned on `start`, so a chart's x axis is plain arithmetic. Samples
//!   before `start` are put in bucket 0 and counted
//!   ([`RecorderNotes::samples_before_start`]).
//! - Memory is bounded: never more than [`MAX_BUCKETS`] buckets. A sample
//!   that would need more doubles the width and merges neighbours in pairs
//!   (coarsening) until it fits; merging is exact (counts add, histograms
//!   add, maxima take the max, cumulative counters keep the later reading),
//!   and the bucket edges stay aligned on `start`. So a run of any length
//!   is summarised in at most [`MAX_BUCKETS`] points; the width used is
//!   reported next to the one asked for. Faults are capped at
//!   [`MAX_FAULTS`], and distinct refusal codes and service failure codes
//!   at [`MAX_ERROR_CODES`] each (the rest fold into `OTHER`); whatever is
//!   dropped is counted.
//! - National-service requests are counted per bucket (answered, failed)
//!   and over the run by failure code ([`Recorder::service_totals`]), so
//!   every request recorded is in both, whatever the coarsening.
//! - Bucketing uses only the virtual times given, so for a deterministic
//!   run every count and every end-to-end latency is reproducible. Wall
//!   latencies (`send_accepted`'s `wall`) and memory readings are not, and
//!   are kept apart from the deterministic series.
//! - Recording never panics and never fails: out-of-range values are
//!   clamped or saturated and counted.

use std::collections::BTreeMap;
use std::time::Duration;

use spine_core::time::Timestamp;

use super::latency::{LatencyHistogram, Percentiles, BUCKET_SIGFIG, OVERALL_SIGFIG};
use super::outcome::ServiceTotals;

/// Most buckets a recorder keeps; more would coarsen (see the module docs).
pub const MAX_BUCKETS: usize = 1024;
/// Most faults kept for the report; later ones are counted, not kept.
pub const MAX_FAULTS: usize = 10_000;
/// Most distinct refusal codes counted separately; later ones count as
/// [`OTHER_CODE`].
pub const MAX_ERROR_CODES: usize = 256;
/// Where refusal codes past [`MAX_ERROR_CODES`] are counted.
pub const OTHER_CODE: &str = "OTHER";

/// A reading of the WAL's cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CounterSample {
    pub(crate) at: Timestamp,
    pub(crate) bytes: u64,
    pub(crate) fsyncs: u64,
}

/// One bucket's raw data.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub(crate) accepted: u64,
    pub(crate) accepted_bytes: u64,
    pub(crate) refused: u64,
    pub(crate) delivered: u64,
    pub(crate) expired: u64,
    pub(crate) reports: u64,
    pub(crate) service_ok: u64,
    pub(crate) service_failed: u64,
    pub(crate) end_to_end: LatencyHistogram<u32>,
    pub(crate) send_wall: LatencyHistogram<u32>,
    pub(crate) deepest_partition_max: Option<usize>,
    pub(crate) wal_in_flight_max: Option<usize>,
    pub(crate) wal_last: Option<CounterSample>,
    pub(crate) rss_max: Option<u64>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            accepted: 0,
            accepted_bytes: 0,
            refused: 0,
            delivered: 0,
            expired: 0,
            reports: 0,
            service_ok: 0,
            service_failed: 0,
            end_to_end: LatencyHistogram::new(BUCKET_SIGFIG),
            send_wall: LatencyHistogram::new(BUCKET_SIGFIG),
            deepest_partition_max: None,
            wal_in_flight_max: None,
            wal_last: None,
            rss_max: None,
        }
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Adds `n` under `code`, or under [`OTHER_CODE`] (counted in `folded`)
/// once `counts` holds [`MAX_ERROR_CODES`] other codes.
fn count_code(counts: &mut BTreeMap<String, u64>, folded: &mut u64, code: &str, n: u64) {
    if let Some(c) = counts.get_mut(code) {
        *c = c.saturating_add(n);
        return;
    }
    let key = if counts.len() < MAX_ERROR_CODES {
        code.to_owned()
    } else {
        *folded = folded.saturating_add(n);
        OTHER_CODE.to_owned()
    };
    let c = counts.entry(key).or_insert(0);
    *c = c.saturating_add(n);
}

/// The later of two counter readings (the second on a tie: it was taken
/// after the first).
fn later(a: Option<CounterSample>, b: Option<CounterSample>) -> Option<CounterSample> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at >= a.at { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Bucket {
    /// Folds `other` (the bucket after this one) into this one.
    fn merge(&mut self, other: Bucket) {
        self.accepted = self.accepted.saturating_add(other.accepted);
        self.accepted_bytes = self.accepted_bytes.saturating_add(other.accepted_bytes);
        self.refused = self.refused.saturating_add(other.refused);
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.expired = self.expired.saturating_add(other.expired);
        self.reports = self.reports.saturating_add(other.reports);
        self.service_ok = self.service_ok.saturating_add(other.service_ok);
        self.service_failed = self.service_failed.saturating_add(other.service_failed);
        self.end_to_end.merge(&other.end_to_end);
        self.send_wall.merge(&other.send_wall);
        self.deepest_partition_max =
            max_opt(self.deepest_partition_max, other.deepest_partition_max);
        self.wal_in_flight_max = max_opt(self.wal_in_flight_max, other.wal_in_flight_max);
        self.wal_last = later(self.wal_last, other.wal_last);
        self.rss_max = max_opt(self.rss_max, other.rss_max);
    }
}

/// A fault, as marked on the charts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultMark {
    /// When (virtual).
    pub at: Timestamp,
    /// What, in words.
    pub what: String,
}

/// What the recorder had to clamp, fold or drop to stay bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecorderNotes {
    /// Samples timed before the recorder's start (counted in bucket 0).
    pub samples_before_start: u64,
    /// Latencies above the histograms' range, recorded as its maximum.
    pub latency_clamped: u64,
    /// Latencies that could not be recorded at all.
    pub latency_unrecorded: u64,
    /// Faults beyond [`MAX_FAULTS`], counted but not listed.
    pub faults_dropped: u64,
    /// Refusals and failed service requests whose code was counted as
    /// [`OTHER_CODE`].
    pub error_codes_folded: u64,
    /// How many times the bucket width was doubled to stay within
    /// [`MAX_BUCKETS`].
    pub coarsenings: u32,
}

/// Collects a run's time series in fixed-width buckets of virtual time.
/// See the module docs for the invariants.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub(crate) start: Timestamp,
    pub(crate) requested_width_us: u64,
    pub(crate) width_us: u64,
    pub(crate) buckets: Vec<Bucket>,
    pub(crate) end: Option<Timestamp>,
    pub(crate) wal_first: Option<CounterSample>,
    pub(crate) overall_end_to_end: LatencyHistogram<u64>,
    pub(crate) overall_send_wall: LatencyHistogram<u64>,
    pub(crate) refused_by_code: BTreeMap<String, u64>,
    pub(crate) service_ok: u64,
    pub(crate) service_failed_by_code: BTreeMap<String, u64>,
    pub(crate) faults: Vec<FaultMark>,
    pub(crate) notes: RecorderNotes,
}

impl Recorder {
    /// A recorder whose bucket 0 starts at `start`, each `bucket` wide.
    /// A width under one microsecond is taken as one microsecond.
    pub fn new(start: Timestamp, bucket: Duration) -> Recorder {
        let width_us = u64::try_from(bucket.as_micros()).unwrap_or(u64::MAX).max(1);
        Recorder {
            start,
            requested_width_us: width_us,
            width_us,
            buckets: Vec::new(),
            end: None,
            wal_first: None,
            overall_end_to_end: LatencyHistogram::new(OVERALL_SIGFIG),
            overall_send_wall: LatencyHistogram::new(OVERALL_SIGFIG),
            refused_by_code: BTreeMap::new(),
            service_ok: 0,
            service_failed_by_code: BTreeMap::new(),
            faults: Vec::new(),
            notes: RecorderNotes::default(),
        }
    }

    /// Microseconds from `start` to `at` (0 before it).
    fn offset_us(&self, at: Timestamp) -> u64 {
        at.as_micros().saturating_sub(self.start.as_micros())
    }

    /// Doubles the width, merging buckets in pairs. False if the width
    /// cannot double (it is then already wider than any offset).
    fn coarsen(&mut self) -> bool {
        let Some(width) = self.width_us.checked_mul(2) else {
            return false;
        };
        let old = std::mem::take(&mut self.buckets);
        let mut merged = Vec::with_capacity(old.len().div_ceil(2));
        let mut it = old.into_iter();
        while let Some(mut first) = it.next() {
            if let Some(second) = it.next() {
                first.merge(second);
            }
            merged.push(first);
        }
        self.buckets = merged;
        self.width_us = width;
        self.notes.coarsenings = self.notes.coarsenings.saturating_add(1);
        true
    }

    /// The index of the bucket holding `offset_us`, coarsening first if
    /// needed, and with the bucket vector grown to include it.
    fn index_for_offset(&mut self, offset_us: u64) -> usize {
        let limit = MAX_BUCKETS as u64;
        while offset_us / self.width_us >= limit {
            if !self.coarsen() {
                break;
            }
        }
        let index = usize::try_from(offset_us / self.width_us)
            .unwrap_or(MAX_BUCKETS - 1)
            .min(MAX_BUCKETS - 1);
        if self.buckets.len() <= index {
            self.buckets.resize_with(index + 1, Bucket::default);
        }
        index
    }

    /// The bucket for a sample at `at`.
    fn bucket(&mut self, at: Timestamp) -> &mut Bucket {
        if at < self.start {
            self.notes.samples_before_start = self.notes.samples_before_start.saturating_add(1);
        }
        let offset = self.offset_us(at);
        let index = self.index_for_offset(offset);
        // `index_for_offset` grew the vector to hold `index`.
        &mut self.buckets[index]
    }

    /// The node acknowledged a send at `at`; it took `wall` of real time
    /// (nondeterministic) and carried `bytes` of payload.
    pub fn send_accepted(&mut self, at: Timestamp, wall: Duration, bytes: u64) {
        self.overall_send_wall.record(wall);
        let b = self.bucket(at);
        b.accepted = b.accepted.saturating_add(1);
        b.accepted_bytes = b.accepted_bytes.saturating_add(bytes);
        b.send_wall.record(wall);
    }

    /// The node refused a send at `at` with the stable error `code`.
    pub fn send_refused(&mut self, at: Timestamp, code: &str) {
        let b = self.bucket(at);
        b.refused = b.refused.saturating_add(1);
        count_code(
            &mut self.refused_by_code,
            &mut self.notes.error_codes_folded,
            code,
            1,
        );
    }

    /// A sender's national-service requests after its send at `at`: `ok`
    /// answered, `failed` not, by stable error code.
    pub fn service_requests(&mut self, at: Timestamp, ok: u64, failed: &BTreeMap<String, u64>) {
        let failed_total = failed.values().fold(0u64, |s, n| s.saturating_add(*n));
        let b = self.bucket(at);
        b.service_ok = b.service_ok.saturating_add(ok);
        b.service_failed = b.service_failed.saturating_add(failed_total);
        self.service_ok = self.service_ok.saturating_add(ok);
        for (code, n) in failed {
            count_code(
                &mut self.service_failed_by_code,
                &mut self.notes.error_codes_folded,
                code,
                *n,
            );
        }
    }

    /// A recipient collected a message at `at`, `end_to_end` (virtual)
    /// after it was accepted.
    pub fn delivered(&mut self, at: Timestamp, end_to_end: Duration) {
        self.overall_end_to_end.record(end_to_end);
        let b = self.bucket(at);
        b.delivered = b.delivered.saturating_add(1);
        b.end_to_end.record(end_to_end);
    }

    /// `n` messages expired at `at`.
    pub fn expired(&mut self, at: Timestamp, n: u64) {
        let b = self.bucket(at);
        b.expired = b.expired.saturating_add(n);
    }

    /// A sender received a non-delivery report at `at`.
    pub fn report_received(&mut self, at: Timestamp) {
        let b = self.bucket(at);
        b.reports = b.reports.saturating_add(1);
    }

    /// Queue depths sampled at `at`: the deepest partition's queue and the
    /// WAL's in-flight appends. Each bucket keeps the largest of its samples.
    pub fn queue_depth(&mut self, at: Timestamp, deepest_partition: usize, wal_in_flight: usize) {
        let b = self.bucket(at);
        b.deepest_partition_max = max_opt(b.deepest_partition_max, Some(deepest_partition));
        b.wal_in_flight_max = max_opt(b.wal_in_flight_max, Some(wal_in_flight));
    }

    /// The WAL's cumulative counters read at `at`. Rates per virtual second
    /// are derived between consecutive readings; a reading lower than the
    /// previous one is taken as a restart of the counter from zero.
    pub fn wal(&mut self, at: Timestamp, bytes_total: u64, fsyncs_total: u64) {
        let sample = CounterSample {
            at,
            bytes: bytes_total,
            fsyncs: fsyncs_total,
        };
        if self.wal_first.is_none_or(|first| at < first.at) {
            self.wal_first = Some(sample);
        }
        let b = self.bucket(at);
        b.wal_last = later(b.wal_last, Some(sample));
    }

    /// The process's resident memory read at `at` (bytes). Each bucket
    /// keeps the largest reading.
    pub fn memory(&mut self, at: Timestamp, rss_bytes: u64) {
        let b = self.bucket(at);
        b.rss_max = max_opt(b.rss_max, Some(rss_bytes));
    }

    /// A fault was injected at `at`; `what` is shown on the charts.
    pub fn fault(&mut self, at: Timestamp, what: &str) {
        // Extend the series to the fault, so its marker lies on the chart.
        let _ = self.bucket(at);
        if self.faults.len() < MAX_FAULTS {
            self.faults.push(FaultMark {
                at,
                what: what.to_owned(),
            });
        } else {
            self.notes.faults_dropped = self.notes.faults_dropped.saturating_add(1);
        }
    }

    /// Marks the run's virtual end: the series extends to it (empty buckets
    /// included), and the bucket it falls in has its rates computed over the
    /// part that elapsed rather than its full width. Without it, every
    /// bucket counts as full. The latest call wins.
    pub fn set_end(&mut self, end: Timestamp) {
        let offset = self.offset_us(end);
        if offset > 0 {
            // The bucket holding the last instant before `end`.
            let _ = self.index_for_offset(offset - 1);
        }
        self.end = Some(end);
    }

    /// Virtual time of bucket 0's start.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// The bucket width in use (wider than asked if the run coarsened).
    pub fn bucket_width(&self) -> Duration {
        Duration::from_micros(self.width_us)
    }

    /// The bucket width asked for in [`Recorder::new`].
    pub fn requested_bucket_width(&self) -> Duration {
        Duration::from_micros(self.requested_width_us)
    }

    /// Buckets held (up to the latest sample or [`Recorder::set_end`]).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Run-wide percentiles of virtual end-to-end latency (deterministic).
    pub fn end_to_end_percentiles(&self) -> Option<Percentiles> {
        self.overall_end_to_end.percentiles()
    }

    /// Run-wide percentiles of wall send latency (nondeterministic).
    pub fn send_wall_percentiles(&self) -> Option<Percentiles> {
        self.overall_send_wall.percentiles()
    }

    /// Refusals per stable error code.
    pub fn refused_by_code(&self) -> &BTreeMap<String, u64> {
        &self.refused_by_code
    }

    /// National-service requests over the run.
    pub fn service_totals(&self) -> ServiceTotals {
        let failed = self.service_failed_by_code.clone();
        let issued = failed
            .values()
            .fold(self.service_ok, |s, n| s.saturating_add(*n));
        ServiceTotals {
            issued,
            ok: self.service_ok,
            failed,
        }
    }

    /// Faults in the order recorded.
    pub fn faults(&self) -> &[FaultMark] {
        &self.faults
    }

    /// What was clamped, folded or dropped to stay bounded.
    pub fn notes(&self) -> RecorderNotes {
        let mut notes = self.notes;
        notes.latency_clamped = self
            .overall_end_to_end
            .clamped()
            .saturating_add(self.overall_send_wall.clamped());
        notes.latency_unrecorded = self
            .overall_end_to_end
            .unrecorded()
            .saturating_add(self.overall_send_wall.unrecorded());
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn t0() -> Timestamp {
        Timestamp::from_unix_seconds(1_750_000_000)
    }

    fn at(secs: u64) -> Timestamp {
        t0().saturating_add(Duration::from_secs(secs))
    }

    #[test]
    fn samples_land_in_their_bucket() {
        let mut r = Recorder::new(t0(), MIN);
        r.send_accepted(at(0), Duration::from_micros(50), 10);
        r.send_accepted(at(59), Duration::from_micros(50), 20);
        r.send_accepted(at(60), Duration::from_micros(50), 30);
        r.delivered(at(185), Duration::from_millis(5));
        r.send_refused(at(61), "DIR_UNKNOWN_MAILBOX");
        r.expired(at(120), 7);
        r.report_received(at(121));
        assert_eq!(r.bucket_count(), 4);
        let b = &r.buckets;
        assert_eq!((b[0].accepted, b[0].accepted_bytes), (2, 30));
        assert_eq!(
            (b[1].accepted, b[1].accepted_bytes, b[1].refused),
            (1, 30, 1)
        );
        assert_eq!((b[2].expired, b[2].reports), (7, 1));
        assert_eq!(b[3].delivered, 1);
        assert_eq!(b[3].end_to_end.count(), 1);
        assert_eq!(r.bucket_width(), MIN);
    }

    #[test]
    fn early_samples_go_to_bucket_zero_and_are_counted() {
        let mut r = Recorder::new(at(600), MIN);
        r.report_received(at(0));
        assert_eq!(r.bucket_count(), 1);
        assert_eq!(r.buckets[0].reports, 1);
        assert_eq!(r.notes().samples_before_start, 1);
    }

    #[test]
    fn zero_width_is_one_microsecond() {
        let mut r = Recorder::new(t0(), Duration::ZERO);
        assert_eq!(r.bucket_width(), Duration::from_micros(1));
        r.report_received(t0().saturating_add(Duration::from_micros(3)));
        assert_eq!(r.bucket_count(), 4);
    }

    #[test]
    fn refusals_count_per_code_and_fold_past_the_cap() {
        let mut r = Recorder::new(t0(), MIN);
        r.send_refused(at(1), "A");
        r.send_refused(at(2), "A");
        r.send_refused(at(3), "B");
        assert_eq!(r.refused_by_code().get("A"), Some(&2));
        assert_eq!(r.refused_by_code().get("B"), Some(&1));
        for i in 0..MAX_ERROR_CODES + 5 {
            r.send_refused(at(4), &format!("CODE_{i}"));
        }
        assert_eq!(r.refused_by_code().len(), MAX_ERROR_CODES + 1);
        assert_eq!(r.notes().error_codes_folded, 7);
        assert_eq!(r.refused_by_code().get(OTHER_CODE), Some(&7));
        let total: u64 = r.refused_by_code().values().sum();
        assert_eq!(total, r.buckets[0].refused);
    }

    #[test]
    fn service_requests_count_per_bucket_and_by_code() {
        let mut r = Recorder::new(t0(), MIN);
        r.service_requests(at(1), 3, &BTreeMap::new());
        let busy = BTreeMap::from([("SVC_BUSY".to_owned(), 2)]);
        r.service_requests(at(61), 1, &busy);
        r.service_requests(at(62), 0, &busy);
        assert_eq!(
            (r.buckets[0].service_ok, r.buckets[0].service_failed),
            (3, 0)
        );
        assert_eq!(
            (r.buckets[1].service_ok, r.buckets[1].service_failed),
            (1, 4)
        );
        let totals = r.service_totals();
        assert_eq!((totals.issued, totals.ok), (8, 4));
        assert_eq!(totals.failed, BTreeMap::from([("SVC_BUSY".to_owned(), 4)]));
        assert_eq!(totals.failed_total(), 4);
        for i in 0..MAX_ERROR_CODES + 2 {
            let code = BTreeMap::from([(format!("CODE_{i}"), 1)]);
            r.service_requests(at(63), 0, &code);
        }
        // SVC_BUSY took one of the places: three fold into OTHER.
        assert_eq!(r.service_totals().failed.get(OTHER_CODE), Some(&3));
        assert_eq!(r.notes().error_codes_folded, 3);
        assert!(r.refused_by_code().is_empty(), "kept apart from refusals");
    }

    #[test]
    fn long_runs_coarsen_exactly_and_stay_bounded() {
        let mut r = Recorder::new(t0(), MIN);
        // Three days of one-minute samples: 4320 minutes > MAX_BUCKETS.
        let minutes = 3 * 24 * 60u64;
        for m in 0..minutes {
            r.send_accepted(at(m * 60), Duration::from_micros(100), 1);
            r.delivered(at(m * 60 + 1), Duration::from_millis(m % 100 + 1));
            r.queue_depth(at(m * 60), usize::try_from(m).unwrap_or(0), 1);
            r.service_requests(at(m * 60), 2, &BTreeMap::new());
        }
        assert!(r.bucket_count() <= MAX_BUCKETS);
        assert!(r.bucket_count() > MAX_BUCKETS / 2);
        // 4320 / 1024 → doubled three times to 8 minutes.
        assert_eq!(r.bucket_width(), MIN * 8);
        assert_eq!(r.requested_bucket_width(), MIN);
        assert_eq!(r.notes().coarsenings, 3);
        let accepted: u64 = r.buckets.iter().map(|b| b.accepted).sum();
        assert_eq!(accepted, minutes);
        let delivered: u64 = r.buckets.iter().map(|b| b.end_to_end.count()).sum();
        assert_eq!(delivered, minutes);
        assert!(r.buckets.iter().all(|b| b.accepted == 8));
        assert!(r.buckets.iter().all(|b| b.service_ok == 16));
        assert_eq!(r.service_totals().ok, 2 * minutes);
        // Maxima survive merging: bucket k holds minutes 8k..8k+7.
        assert_eq!(r.buckets[3].deepest_partition_max, Some(31));
    }

    #[test]
    fn a_far_future_sample_does_not_explode_memory() {
        let mut r = Recorder::new(t0(), Duration::from_micros(1));
        r.report_received(Timestamp::MAX);
        r.report_received(Timestamp::from_micros(u64::MAX));
        assert!(r.bucket_count() <= MAX_BUCKETS);
        let reports: u64 = r.buckets.iter().map(|b| b.reports).sum();
        assert_eq!(reports, 2);
    }

    #[test]
    fn set_end_extends_the_series_without_an_extra_bucket_on_an_edge() {
        let mut r = Recorder::new(t0(), MIN);
        r.report_received(at(10));
        r.set_end(at(300));
        assert_eq!(r.bucket_count(), 5);
        r.set_end(at(301));
        assert_eq!(r.bucket_count(), 6);
    }

    #[test]
    fn faults_are_kept_in_order_and_capped() {
        let mut r = Recorder::new(t0(), MIN);
        r.fault(at(90), "node crash");
        r.fault(at(30), "disk stall");
        assert_eq!(r.faults()[0].what, "node crash");
        assert_eq!(r.faults()[1].at, at(30));
        for _ in 0..MAX_FAULTS {
            r.fault(at(1), "x");
        }
        assert_eq!(r.faults().len(), MAX_FAULTS);
        assert_eq!(r.notes().faults_dropped, 2);
    }

    #[test]
    fn overall_percentiles_cover_every_sample() {
        let mut r = Recorder::new(t0(), MIN);
        for i in 1..=100u64 {
            r.delivered(at(i * 7), Duration::from_millis(i));
            r.send_accepted(at(i * 7), Duration::from_micros(i), 0);
        }
        let e2e = r.end_to_end_percentiles().expect("e2e");
        assert_eq!(e2e.count, 100);
        assert!(e2e.max_us.abs_diff(100_000) <= 100, "{e2e:?}"); // 3 significant figures
        let wall = r.send_wall_percentiles().expect("wall");
        assert_eq!(wall.p50_us, 50);
        assert_eq!(wall.max_us, 100);
    }
}
