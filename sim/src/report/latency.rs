//! Latency histograms (hdrhistogram) and the percentiles read from them.
//!
//! Invariants and why:
//! - Values are whole microseconds, clamped to [`MAX_LATENCY`] before they
//!   are recorded, so recording never fails for want of range and a wild
//!   value (a clock jump, a message collected days later) cannot grow a
//!   histogram without bound. Clamped samples are counted, not hidden.
//! - A histogram is allocated on its first sample: an empty bucket costs
//!   nothing, and percentiles of an empty histogram are `None`, never zeros
//!   that would read as "instant".
//! - Histograms auto-resize only up to the value recorded, so memory follows
//!   the largest latency seen (a few KiB per histogram at 2 significant
//!   figures), not the clamp.
//! - Nothing here panics: hdrhistogram's fallible calls are matched, and a
//!   sample that still could not be stored (only if allocation fails) is
//!   counted in `unrecorded`.

use std::time::Duration;

use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};

/// The largest latency a histogram distinguishes (30 days); larger values
/// are recorded as this and counted as clamped.
pub const MAX_LATENCY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Significant figures of the run-wide histograms (0.1 % resolution).
pub(crate) const OVERALL_SIGFIG: u8 = 3;
/// Significant figures of the per-bucket histograms (1 % resolution): they
/// exist once per bucket, so they are kept small.
pub(crate) const BUCKET_SIGFIG: u8 = 2;

/// Percentiles of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample (to the histogram's resolution).
    pub max_us: u64,
}

/// A latency histogram that allocates on first use and never panics.
#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram<T: Counter> {
    hist: Option<Histogram<T>>,
    sigfig: u8,
    clamped: u64,
    unrecorded: u64,
}

fn clamp_micros(latency: Duration) -> (u64, bool) {
    let max = MAX_LATENCY.as_micros();
    let micros = latency.as_micros();
    if micros > max {
        (u64::try_from(max).unwrap_or(u64::MAX), true)
    } else {
        (u64::try_from(micros).unwrap_or(u64::MAX), false)
    }
}

impl<T: Counter> LatencyHistogram<T> {
    /// An empty histogram keeping `sigfig` significant figures (0..=5).
    pub(crate) fn new(sigfig: u8) -> Self {
        LatencyHistogram {
            hist: None,
            sigfig,
            clamped: 0,
            unrecorded: 0,
        }
    }

    fn histogram(&mut self) -> Option<&mut Histogram<T>> {
        if self.hist.is_none() {
            // Auto-resizing, lowest discernible value 1 µs.
            self.hist = Histogram::new(self.sigfig).ok();
        }
        self.hist.as_mut()
    }

    /// Records one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let (micros, clamped) = clamp_micros(latency);
        if clamped {
            self.clamped = self.clamped.saturating_add(1);
        }
        let stored = match self.histogram() {
            Some(h) => h.record(micros).is_ok(),
            None => false,
        };
        if !stored {
            self.unrecorded = self.unrecorded.saturating_add(1);
        }
    }

    /// Adds every sample of `other` to this histogram.
    pub(crate) fn merge(&mut self, other: &LatencyHistogram<T>) {
        self.clamped = self.clamped.saturating_add(other.clamped);
        self.unrecorded = self.unrecorded.saturating_add(other.unrecorded);
        let Some(src) = other.hist.as_ref() else {
            return;
        };
        if src.is_empty() {
            return;
        }
        let added = match self.histogram() {
            Some(h) => h.add(src).is_ok(),
            None => false,
        };
        if !added {
            self.unrecorded = self.unrecorded.saturating_add(src.len());
        }
    }

    /// Samples stored.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, Histogram::len)
    }

    /// Samples larger than [`MAX_LATENCY`], stored as that.
    pub(crate) fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Samples that could not be stored at all.
    pub(crate) fn unrecorded(&self) -> u64 {
        self.unrecorded
    }

    /// The percentiles, or `None` if there are no samples.
    pub(crate) fn percentiles(&self) -> Option<Percentiles> {
        let h = self.hist.as_ref()?;
        if h.is_empty() {
            return None;
        }
        Some(Percentiles {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: u64, expected: u64, rel: f64) -> bool {
        let (a, e) = (actual as f64, expected as f64);
        (a - e).abs() <= e * rel
    }

    #[test]
    fn empty_has_no_percentiles() {
        let h = LatencyHistogram::<u64>::new(OVERALL_SIGFIG);
        assert_eq!(h.percentiles(), None);
        assert_eq!(h.count(), 0);
    }

    #[test]
    fn percentiles_of_uniform_ms() {
        let mut h = LatencyHistogram::<u64>::new(OVERALL_SIGFIG);
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let p = h.percentiles().expect("percentiles");
        assert_eq!(p.count, 1000);
        assert!(within(p.p50_us, 500_000, 0.002), "{p:?}");
        assert!(within(p.p90_us, 900_000, 0.002), "{p:?}");
        assert!(within(p.p99_us, 990_000, 0.002), "{p:?}");
        assert!(within(p.p999_us, 999_000, 0.002), "{p:?}");
        assert!(within(p.max_us, 1_000_000, 0.002), "{p:?}");
        assert!(p.p50_us <= p.p90_us && p.p90_us <= p.p99_us);
        assert!(p.p99_us <= p.p999_us && p.p999_us <= p.max_us);
    }

    #[test]
    fn bucket_precision_is_one_percent() {
        let mut h = LatencyHistogram::<u32>::new(BUCKET_SIGFIG);
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let p = h.percentiles().expect("percentiles");
        assert!(within(p.p50_us, 5_000, 0.01), "{p:?}");
        assert!(within(p.p99_us, 9_900, 0.01), "{p:?}");
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let mut h = LatencyHistogram::<u32>::new(BUCKET_SIGFIG);
        h.record(Duration::from_secs(u64::MAX));
        h.record(Duration::MAX);
        h.record(Duration::ZERO);
        assert_eq!(h.count(), 3);
        assert_eq!(h.clamped(), 2);
        assert_eq!(h.unrecorded(), 0);
        let p = h.percentiles().expect("percentiles");
        let max = u64::try_from(MAX_LATENCY.as_micros()).unwrap_or(u64::MAX);
        assert!(within(p.max_us, max, 0.01), "{p:?}");
    }

    #[test]
    fn merge_adds_samples() {
        let mut a = LatencyHistogram::<u32>::new(BUCKET_SIGFIG);
        let mut b = LatencyHistogram::<u32>::new(BUCKET_SIGFIG);
        for _ in 0..10 {
            a.record(Duration::from_millis(1));
            b.record(Duration::from_secs(10));
        }
        let mut all = LatencyHistogram::<u32>::new(BUCKET_SIGFIG);
        all.merge(&a);
        all.merge(&b);
        all.merge(&LatencyHistogram::<u32>::new(BUCKET_SIGFIG));
        let p = all.percentiles().expect("percentiles");
        assert_eq!(p.count, 20);
        assert!(within(p.p50_us, 1_000, 0.01), "{p:?}");
        assert!(within(p.max_us, 10_000_000, 0.01), "{p:?}");
    }
}
