//! Rates over virtual time and the expected size of a run.
//!
//! [`RateModel`] is one flow's rate as a piecewise-constant function of the
//! offset from the scenario start; the schedule draws arrivals from it and
//! [`Scenario::estimate`] integrates it. Both only use `+ - * /` and
//! `floor`, so they are bit-for-bit reproducible.

use super::{ConsumerKind, Flow, Scenario};

const SECONDS_PER_HOUR: f64 = 3600.0;
const SECONDS_PER_DAY: u64 = 86_400;

/// One flow's rate (messages per virtual second, after `scale`) as a
/// function of the offset from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct RateModel {
    base: f64,
    hourly: [f64; 24],
    /// `(start, end, multiplier)` offsets in seconds.
    peaks: Vec<(f64, f64, f64)>,
    /// Seconds since midnight UTC at the start.
    start_of_day: f64,
    duration: f64,
}

impl RateModel {
    /// The rate model of `flow` in `scenario` (an unusable diurnal curve
    /// counts as flat; validation refuses one).
    pub fn new(scenario: &Scenario, flow: &Flow) -> RateModel {
        let base = if flow.rate.is_finite() && scenario.scale.is_finite() {
            (flow.rate * scenario.scale).max(0.0)
        } else {
            0.0
        };
        let peaks = scenario
            .peaks
            .iter()
            .chain(&flow.peaks)
            .map(|p| {
                let m = if p.multiplier.is_finite() {
                    p.multiplier.max(0.0)
                } else {
                    1.0
                };
                (p.at as f64, p.end() as f64, m)
            })
            .collect();
        let micros_of_day = scenario.start.as_micros() % (SECONDS_PER_DAY * 1_000_000);
        RateModel {
            base,
            hourly: flow.diurnal.multipliers().unwrap_or([1.0; 24]),
            peaks,
            start_of_day: micros_of_day as f64 / 1e6,
            duration: scenario.duration as f64,
        }
    }

    /// The scenario's length, seconds.
    pub fn duration(&self) -> f64 {
        self.duration
    }

    /// The rate at `offset` and the offset where it next changes (always
    /// greater than `offset`; at most the duration when `offset` is before
    /// it).
    pub fn segment(&self, offset: f64) -> (f64, f64) {
        let absolute = self.start_of_day + offset;
        let hours = (absolute / SECONDS_PER_HOUR).floor();
        let hour = (hours as u64 % 24) as usize;
        let mut end = (hours + 1.0) * SECONDS_PER_HOUR - self.start_of_day;
        let mut rate = self.base * self.hourly.get(hour).copied().unwrap_or(1.0);
        for &(at, until, multiplier) in &self.peaks {
            if offset < at {
                end = end.min(at);
            } else if offset < until {
                end = end.min(until);
                rate *= multiplier;
            }
        }
        if offset < self.duration {
            end = end.min(self.duration);
        }
        if end <= offset {
            // Only reachable with offsets far beyond any valid scenario
            // (where rounding swallows an hour); never stall.
            end = if offset + 1.0 > offset {
                offset + 1.0
            } else {
                f64::INFINITY
            };
        }
        (rate, end)
    }

    /// The rate at `offset`.
    pub fn rate_at(&self, offset: f64) -> f64 {
        self.segment(offset).0
    }

    /// Expected arrivals in `[from, to)` (offsets, clamped to the run).
    pub fn expected(&self, from: f64, to: f64) -> f64 {
        let to = to.min(self.duration);
        let mut t = from.max(0.0);
        let mut total = 0.0;
        while t < to {
            let (rate, end) = self.segment(t);
            let end = end.min(to);
            total += rate * (end - t);
            t = end;
        }
        total
    }
}

/// What a run of a scenario is expected to generate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// Sends (after scale).
    pub sends: f64,
    /// Polls (an upper estimate when polls follow traffic).
    pub polls: f64,
    /// Non-delivery reports expected within the run.
    pub reports: f64,
    /// Expiry ticks.
    pub expiry_ticks: u64,
    /// Samples.
    pub samples: u64,
    /// Faults.
    pub faults: u64,
    /// Mean bytes per send, over all flows.
    pub mean_bytes: f64,
}

impl Estimate {
    /// Total events the schedule is expected to yield.
    pub fn events(&self) -> u64 {
        let fractional = (self.sends + self.polls).ceil();
        let fractional = if fractional.is_finite() && fractional < 1e18 {
            fractional as u64
        } else {
            u64::MAX / 2
        };
        fractional
            .saturating_add(self.expiry_ticks)
            .saturating_add(self.samples)
            .saturating_add(self.faults)
    }
}

impl Scenario {
    /// Each flow's rate model, in flow order.
    pub fn rate_models(&self) -> Vec<RateModel> {
        self.flows.iter().map(|f| RateModel::new(self, f)).collect()
    }

    /// Total messages per virtual second at `offset` seconds from the
    /// start, over all flows, after scale.
    pub fn rate_at(&self, offset: f64) -> f64 {
        self.rate_models().iter().map(|m| m.rate_at(offset)).sum()
    }

    /// What a run is expected to generate. Seed-independent: counts of
    /// absent and slow mailboxes are exact, poll intervals are taken at
    /// their mean.
    pub fn estimate(&self) -> Estimate {
        let duration = self.duration as f64;
        let classes = self.classes.len();
        let mut to_class = vec![0.0f64; classes];
        let mut in_any_flow = vec![false; classes];
        let (mut sends, mut bytes) = (0.0, 0.0);
        for flow in &self.flows {
            let n = RateModel::new(self, flow).expected(0.0, duration);
            sends += n;
            bytes += n * flow.size.mean_bytes();
            for (class, share) in self.target_shares(&flow.to) {
                if let (Some(t), Some(seen)) = (to_class.get_mut(class), in_any_flow.get_mut(class))
                {
                    *t += n * share;
                    *seen = true;
                }
            }
            for (class, _) in self.target_shares(&flow.from) {
                if let Some(seen) = in_any_flow.get_mut(class) {
                    *seen = true;
                }
            }
        }
        // Reports: messages to absent mailboxes sent early enough for their
        // expiry (and the next tick) to fall inside the run.
        let report_delay = self.node.inbox_expiry.saturating_add(self.node.expiry_tick) as f64;
        let report_window = if duration > 0.0 {
            ((duration - report_delay) / duration).max(0.0)
        } else {
            0.0
        };
        let mut reports = 0.0;
        let mut polls = 0.0;
        for (i, class) in self.classes.iter().enumerate() {
            let n = class.mailboxes();
            let (absent, slow) = class.consumer.split(n);
            let absent_share = if n == 0 {
                0.0
            } else {
                absent as f64 / n as f64
            };
            let received = to_class.get(i).copied().unwrap_or(0.0);
            reports += received * absent_share * report_window;
            let c = &class.consumer;
            if c.mode != ConsumerKind::Poll || !in_any_flow.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mean_interval = ((c.interval as f64 + c.interval_max() as f64) / 2.0).max(1.0);
            let normal = (n - absent - slow) as f64;
            let slow_interval = mean_interval * c.slow_factor.max(1) as f64;
            let every_tick = duration * (normal / mean_interval + slow as f64 / slow_interval);
            if c.idle_polls {
                polls += every_tick;
            } else {
                polls += every_tick.min(received * (1.0 - absent_share));
            }
        }
        // Senders collect their reports by polling (bounded by the reports).
        polls += reports;
        let ticks = |every: u64| self.duration / every.max(1);
        Estimate {
            sends,
            polls,
            reports,
            expiry_ticks: ticks(self.node.expiry_tick),
            samples: ticks(self.node.sample_interval).saturating_add(1),
            faults: self.faults.len() as u64,
            mean_bytes: if sends > 0.0 { bytes / sends } else { 0.0 },
        }
    }

    /// Expected total events (see [`Scenario::estimate`]).
    pub fn estimated_events(&self) -> u64 {
        self.estimate().events()
    }
}
