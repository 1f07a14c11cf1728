//! The recorder's buckets summarised as rates and percentiles: what the
//! report and the charts plot.
//!
//! Invariants and why:
//! - Rates are per VIRTUAL second. A bucket's counts are divided by its
//!   span: its full width, except the bucket holding the run's end (see
//!   [`Recorder::set_end`]), whose span is the part that elapsed, so the
//!   last point does not dip just because the run stopped mid-bucket.
//! - WAL bytes/s and fsyncs/s come from cumulative counters: the increase
//!   from the previous reading (in any earlier bucket) to the bucket's last
//!   reading, over the virtual time between the two readings. A bucket
//!   without a reading, or holding only the very first one, has no rate
//!   (`None`), never a made-up zero. A reading lower than the previous one
//!   means the counter restarted (the node restarted): the increase is the
//!   reading itself.
//! - Gauges (queue depths, memory) are the maximum sampled in the bucket,
//!   `None` where nothing was sampled.

use std::time::Duration;

use spine_core::time::Timestamp;

use super::latency::Percentiles;
use super::recorder::{CounterSample, Recorder};

/// One bucket, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSummary {
    /// Position in the series (0-based).
    pub index: usize,
    /// Virtual time the bucket starts.
    pub start: Timestamp,
    /// Virtual time from the recorder's start to the bucket's start.
    pub offset: Duration,
    /// The virtual time the bucket covers (its width, or less for the
    /// bucket holding the run's end).
    pub span: Duration,
    /// Sends acknowledged.
    pub accepted: u64,
    /// Payload bytes of the acknowledged sends.
    pub accepted_bytes: u64,
    /// Sends refused.
    pub refused: u64,
    /// Messages collected by their recipients.
    pub delivered: u64,
    /// Messages expired.
    pub expired: u64,
    /// Non-delivery reports received.
    pub reports: u64,
    /// National-service requests answered.
    pub service_ok: u64,
    /// National-service requests failed or refused.
    pub service_failed: u64,
    /// National-service requests made (answered or not) per virtual
    /// second.
    pub service_per_sec: f64,
    /// Acknowledged sends per virtual second.
    pub accepted_per_sec: f64,
    /// Acknowledged payload bytes per virtual second.
    pub accepted_bytes_per_sec: f64,
    /// Refusals per virtual second.
    pub refused_per_sec: f64,
    /// Deliveries per virtual second.
    pub delivered_per_sec: f64,
    /// Expiries per virtual second.
    pub expired_per_sec: f64,
    /// Virtual end-to-end latency of this bucket's deliveries.
    pub end_to_end: Option<Percentiles>,
    /// Wall send latency of this bucket's acknowledged sends.
    pub send_wall: Option<Percentiles>,
    /// Deepest partition queue sampled.
    pub deepest_partition_max: Option<usize>,
    /// Most WAL appends in flight sampled.
    pub wal_in_flight_max: Option<usize>,
    /// WAL bytes written per virtual second.
    pub wal_bytes_per_sec: Option<f64>,
    /// WAL fsyncs per virtual second.
    pub wal_fsyncs_per_sec: Option<f64>,
    /// Largest resident memory sampled, bytes.
    pub rss_bytes_max: Option<u64>,
}

/// Increase of a cumulative counter from `prev` to `cur`; a decrease means
/// the counter restarted from zero.
pub(crate) fn counter_increase(prev: u64, cur: u64) -> u64 {
    if cur >= prev {
        cur - prev
    } else {
        cur
    }
}

/// Per-second rates of bytes and fsyncs between two readings, or `None` if
/// no virtual time passed between them.
pub(crate) fn counter_rates(prev: CounterSample, cur: CounterSample) -> Option<(f64, f64)> {
    let elapsed = cur.at.saturating_sub(prev.at).as_secs_f64();
    if elapsed <= 0.0 {
        return None;
    }
    Some((
        counter_increase(prev.bytes, cur.bytes) as f64 / elapsed,
        counter_increase(prev.fsyncs, cur.fsyncs) as f64 / elapsed,
    ))
}

fn per_sec(count: u64, span_secs: f64) -> f64 {
    if span_secs > 0.0 {
        count as f64 / span_secs
    } else {
        0.0
    }
}

impl Recorder {
    /// Every bucket, summarised, in time order.
    pub fn timeline(&self) -> Vec<BucketSummary> {
        let width = self.width_us;
        let mut prev_wal = self.wal_first;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (index, b) in self.buckets.iter().enumerate() {
            let offset_us = (index as u64).saturating_mul(width);
            let start = Timestamp::from_micros(self.start.as_micros().saturating_add(offset_us));
            let span_us = match self.end {
                Some(end) if end > start => {
                    let elapsed = end.as_micros() - start.as_micros();
                    elapsed.min(width)
                }
                _ => width,
            };
            let span = Duration::from_micros(span_us);
            let span_secs = span.as_secs_f64();

            let (wal_bytes_per_sec, wal_fsyncs_per_sec) = match (prev_wal, b.wal_last) {
                (Some(prev), Some(cur)) => {
                    let rates = counter_rates(prev, cur);
                    if cur.at >= prev.at {
                        prev_wal = Some(cur);
                    }
                    match rates {
                        Some((bytes, fsyncs)) => (Some(bytes), Some(fsyncs)),
                        None => (None, None),
                    }
                }
                _ => (None, None),
            };

            out.push(BucketSummary {
                index,
                start,
                offset: Duration::from_micros(offset_us),
                span,
                accepted: b.accepted,
                accepted_bytes: b.accepted_bytes,
                refused: b.refused,
                delivered: b.delivered,
                expired: b.expired,
                reports: b.reports,
                service_ok: b.service_ok,
                service_failed: b.service_failed,
                service_per_sec: per_sec(b.service_ok.saturating_add(b.service_failed), span_secs),
                accepted_per_sec: per_sec(b.accepted, span_secs),
                accepted_bytes_per_sec: per_sec(b.accepted_bytes, span_secs),
                refused_per_sec: per_sec(b.refused, span_secs),
                delivered_per_sec: per_sec(b.delivered, span_secs),
                expired_per_sec: per_sec(b.expired, span_secs),
                end_to_end: b.end_to_end.percentiles(),
                send_wall: b.send_wall.percentiles(),
                deepest_partition_max: b.deepest_partition_max,
                wal_in_flight_max: b.wal_in_flight_max,
                wal_bytes_per_sec,
                wal_fsyncs_per_sec,
                rss_bytes_max: b.rss_max,
            });
        }
        out
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

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn counter_increase_handles_restarts() {
        assert_eq!(counter_increase(10, 25), 15);
        assert_eq!(counter_increase(25, 25), 0);
        assert_eq!(counter_increase(1_000, 40), 40);
    }

    #[test]
    fn rates_are_per_virtual_second() {
        let mut r = Recorder::new(t0(), MIN);
        for s in 0..120 {
            r.send_accepted(at(s), Duration::from_micros(10), 1_000);
        }
        r.send_refused(at(61), "X");
        r.delivered(at(62), Duration::from_secs(2));
        let failed = std::collections::BTreeMap::from([("SVC_BUSY".to_owned(), 30)]);
        r.service_requests(at(63), 90, &failed);
        let tl = r.timeline();
        assert_eq!(tl.len(), 2);
        assert!(close(tl[1].service_per_sec, 2.0));
        assert_eq!((tl[1].service_ok, tl[1].service_failed), (90, 30));
        assert!(close(tl[0].service_per_sec, 0.0));
        assert!(close(tl[0].accepted_per_sec, 1.0));
        assert!(close(tl[0].accepted_bytes_per_sec, 1_000.0));
        assert!(close(tl[1].refused_per_sec, 1.0 / 60.0));
        assert!(close(tl[1].delivered_per_sec, 1.0 / 60.0));
        assert_eq!(tl[1].offset, MIN);
        assert_eq!(tl[1].start, at(60));
        assert_eq!(tl[1].end_to_end.map(|p| p.count), Some(1));
        assert_eq!(tl[0].end_to_end, None);
    }

    #[test]
    fn the_last_bucket_is_divided_by_its_elapsed_part() {
        let mut r = Recorder::new(t0(), MIN);
        for s in 60..75 {
            r.send_accepted(at(s), Duration::from_micros(10), 1);
        }
        r.set_end(at(75));
        let tl = r.timeline();
        assert_eq!(tl[1].span, Duration::from_secs(15));
        assert!(close(tl[1].accepted_per_sec, 1.0));
        assert_eq!(tl[0].span, MIN);
    }

    #[test]
    fn wal_rates_from_cumulative_counters() {
        let mut r = Recorder::new(t0(), MIN);
        // Bucket 0: first reading (baseline) and one 30 s later.
        r.wal(at(0), 1_000, 10);
        r.wal(at(30), 4_000, 40);
        // Bucket 1: nothing. Bucket 2: reading at 150 s.
        r.report_received(at(70));
        r.wal(at(150), 16_000, 100);
        // Bucket 3: the node restarted, counters from zero.
        r.wal(at(190), 800, 4);
        let tl = r.timeline();
        assert_eq!(tl.len(), 4);
        // 3000 bytes / 30 s, 30 fsyncs / 30 s.
        assert!(close(tl[0].wal_bytes_per_sec.unwrap_or(-1.0), 100.0));
        assert!(close(tl[0].wal_fsyncs_per_sec.unwrap_or(-1.0), 1.0));
        assert_eq!(tl[1].wal_bytes_per_sec, None);
        // 12000 bytes / 120 s since the previous reading.
        assert!(close(tl[2].wal_bytes_per_sec.unwrap_or(-1.0), 100.0));
        assert!(close(tl[2].wal_fsyncs_per_sec.unwrap_or(-1.0), 0.5));
        // Restart: 800 bytes / 40 s.
        assert!(close(tl[3].wal_bytes_per_sec.unwrap_or(-1.0), 20.0));
        assert!(close(tl[3].wal_fsyncs_per_sec.unwrap_or(-1.0), 0.1));
    }

    #[test]
    fn a_lone_first_reading_has_no_rate() {
        let mut r = Recorder::new(t0(), MIN);
        r.wal(at(5), 1_000, 10);
        r.wal(at(65), 7_000, 70);
        let tl = r.timeline();
        assert_eq!(tl[0].wal_bytes_per_sec, None);
        assert!(close(tl[1].wal_bytes_per_sec.unwrap_or(-1.0), 100.0));
    }

    #[test]
    fn gauges_keep_the_bucket_maximum() {
        let mut r = Recorder::new(t0(), MIN);
        r.queue_depth(at(1), 5, 2);
        r.queue_depth(at(2), 3, 9);
        r.memory(at(3), 100);
        r.memory(at(4), 50);
        r.memory(at(130), 70);
        let tl = r.timeline();
        assert_eq!(tl[0].deepest_partition_max, Some(5));
        assert_eq!(tl[0].wal_in_flight_max, Some(9));
        assert_eq!(tl[0].rss_bytes_max, Some(100));
        assert_eq!(tl[1].rss_bytes_max, None);
        assert_eq!(tl[1].deepest_partition_max, None);
        assert_eq!(tl[2].rss_bytes_max, Some(70));
    }
}
