//! The ramp: which offered rate to run next, given how the steps so far
//! went, and whether a step met the bound.
//!
//! Sans-IO: [`Ramp`] is a state machine fed one verdict per step; it reads
//! no clock and drives no node, so every path is unit-tested with made-up
//! verdicts. [`judge`] turns a step's figures into that verdict.
//!
//! Invariants and why:
//! - Rates are whole messages per second within `[min_rate, max_rate]`:
//!   fractional rates would suggest a precision the measurement lacks.
//! - While steps pass the rate grows geometrically (`× growth`); after the
//!   first failure with a pass below it, the ramp bisects between the
//!   highest pass and the lowest failure, `refine_steps` times or until they
//!   are within `tolerance` of each other. If the very first steps fail it
//!   ramps *down* geometrically until one passes (then bisects) or
//!   `min_rate` fails too.
//! - When both exist, `highest_pass < lowest_fail`: bisection only ever runs
//!   strictly between them, and each verdict moves one of the two ends
//!   inwards. A noisy machine can make a lower rate fail after a higher one
//!   passed; the bracket still shrinks and the result stays the highest rate
//!   actually seen to pass.
//! - It terminates: every step either moves the rate monotonically towards
//!   a bound (`max_rate`, `min_rate`) or shrinks the bracket; bisection is
//!   capped by `refine_steps`. Once [`Next::Done`], it stays done.
//! - A verdict always belongs to the rate [`Ramp::next`] asked for
//!   ([`Ramp::record`] takes no rate), so results cannot be misattributed.

use serde::{Deserialize, Serialize};

use super::error::{check, PlanError};

/// How the ramp moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampConfig {
    /// The first rate tried (msgs/s).
    pub start_rate: u64,
    /// Growth (and shrink) factor per step while bracketing; > 1.
    pub growth: f64,
    /// Never offer less (msgs/s); at least 1.
    pub min_rate: u64,
    /// Never offer more (msgs/s).
    pub max_rate: u64,
    /// Bisection steps after bracketing.
    pub refine_steps: u32,
    /// Stop bisecting once `lowest_fail - highest_pass <= tolerance ×
    /// highest_pass` (a fraction, e.g. 0.02).
    pub tolerance: f64,
}

impl RampConfig {
    /// Checks every value; names the option that is wrong.
    pub fn validate(&self) -> Result<(), PlanError> {
        check(
            self.min_rate >= 1,
            "min-rate",
            self.min_rate,
            "at least 1 msg/s",
        )?;
        check(
            self.start_rate >= self.min_rate && self.start_rate <= self.max_rate,
            "start-rate",
            self.start_rate,
            "a whole number of msgs/s between --min-rate and --max-rate",
        )?;
        check(
            self.growth.is_finite() && (1.1..=100.0).contains(&self.growth),
            "growth",
            self.growth,
            "a factor from 1.1 to 100",
        )?;
        check(
            self.refine_steps <= 20,
            "refine-steps",
            self.refine_steps,
            "0 to 20",
        )?;
        check(
            self.tolerance.is_finite() && (0.0..1.0).contains(&self.tolerance),
            "tolerance",
            self.tolerance,
            "a fraction from 0 to below 1",
        )
    }
}

/// Which part of the search a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Growing from the start rate while steps pass.
    Up,
    /// Shrinking because even the start rate failed.
    Down,
    /// Bisecting between the highest pass and the lowest failure.
    Refine,
}

/// Why the ramp stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A pass and a failure bracket the capacity, refined as allowed.
    Bracketed,
    /// Every step up to `max_rate` passed: the capacity is at least that.
    MaxRate,
    /// Even `min_rate` failed.
    NothingSustained,
    /// The caller ran out of time (`--max-seconds`).
    TimeBudget,
}

impl StopReason {
    /// A sentence for the report.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Bracketed => {
                "bracketed: a passing and a failing rate were found and refined between"
            }
            StopReason::MaxRate => {
                "every step passed up to --max-rate: the capacity is at least the highest rate"
            }
            StopReason::NothingSustained => "even the lowest rate tried failed the bound",
            StopReason::TimeBudget => {
                "stopped by --max-seconds before the search finished: the highest pass is a lower bound"
            }
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run a step at this offered rate (msgs/s).
    Run {
        /// Offered rate, msgs/s.
        rate: u64,
        /// Why this rate.
        phase: Phase,
    },
    /// The search is over.
    Done(StopReason),
}

/// The search state machine (see the module documentation).
#[derive(Debug, Clone)]
pub struct Ramp {
    config: RampConfig,
    next: Next,
    highest_pass: Option<u64>,
    lowest_fail: Option<u64>,
    refined: u32,
    steps: u32,
}

impl Ramp {
    /// A ramp that starts at `config.start_rate`.
    pub fn new(config: RampConfig) -> Result<Ramp, PlanError> {
        config.validate()?;
        Ok(Ramp {
            next: Next::Run {
                rate: config.start_rate,
                phase: Phase::Up,
            },
            config,
            highest_pass: None,
            lowest_fail: None,
            refined: 0,
            steps: 0,
        })
    }

    /// What to run now (unchanged until [`Ramp::record`] or [`Ramp::stop`]).
    pub fn next(&self) -> Next {
        self.next
    }

    /// The highest rate that passed.
    pub fn highest_pass(&self) -> Option<u64> {
        self.highest_pass
    }

    /// The lowest rate that failed.
    pub fn lowest_fail(&self) -> Option<u64> {
        self.lowest_fail
    }

    /// Steps recorded.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Ends the search now (e.g. out of time). No effect once done.
    pub fn stop(&mut self, reason: StopReason) {
        if let Next::Run { .. } = self.next {
            self.next = Next::Done(reason);
        }
    }

    /// Records whether the step [`Ramp::next`] asked for passed, and decides
    /// the next one. No effect once done.
    pub fn record(&mut self, passed: bool) {
        let Next::Run { rate, phase } = self.next else {
            return;
        };
        self.steps += 1;
        if passed {
            self.highest_pass = Some(self.highest_pass.map_or(rate, |h| h.max(rate)));
        } else {
            self.lowest_fail = Some(self.lowest_fail.map_or(rate, |l| l.min(rate)));
        }
        if phase == Phase::Refine {
            self.refined += 1;
        }
        self.next = match (phase, passed) {
            (Phase::Up, true) => self.grow(rate),
            (Phase::Up | Phase::Down, false) if self.highest_pass.is_none() => self.shrink(rate),
            _ => self.refine(),
        };
    }

    fn grow(&self, rate: u64) -> Next {
        if rate >= self.config.max_rate {
            return Next::Done(StopReason::MaxRate);
        }
        let grown = (rate as f64 * self.config.growth).ceil();
        // At least one more message per second, never past the cap.
        let grown = if grown.is_finite() && grown < self.config.max_rate as f64 {
            (grown as u64).max(rate + 1)
        } else {
            self.config.max_rate
        };
        Next::Run {
            rate: grown.min(self.config.max_rate),
            phase: Phase::Up,
        }
    }

    fn shrink(&self, rate: u64) -> Next {
        if rate <= self.config.min_rate {
            return Next::Done(StopReason::NothingSustained);
        }
        let shrunk = (rate as f64 / self.config.growth).floor() as u64;
        Next::Run {
            rate: shrunk.clamp(self.config.min_rate, rate - 1),
            phase: Phase::Down,
        }
    }

    fn refine(&self) -> Next {
        let (Some(pass), Some(fail)) = (self.highest_pass, self.lowest_fail) else {
            // Unreachable by construction (refine needs both); stop rather
            // than loop.
            return Next::Done(StopReason::Bracketed);
        };
        if self.refined >= self.config.refine_steps || fail <= pass {
            return Next::Done(StopReason::Bracketed);
        }
        let gap = fail - pass;
        let close_enough = (pass as f64 * self.config.tolerance).max(1.0);
        if gap as f64 <= close_enough {
            return Next::Done(StopReason::Bracketed);
        }
        Next::Run {
            rate: pass + gap / 2,
            phase: Phase::Refine,
        }
    }
}

/// The bound a step must meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// p99 send-to-acknowledgement latency at most this (µs).
    pub p99_limit_us: u64,
    /// Achieved at least this fraction of the offered rate (e.g. 0.95).
    pub min_achieved_fraction: f64,
    /// Recipients at most this many seconds' worth of messages behind at
    /// the end of the step.
    pub max_backlog_seconds: f64,
}

/// What [`judge`] needs of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFigures {
    /// Offered rate, msgs/s.
    pub offered_per_s: f64,
    /// Achieved rate, msgs/s.
    pub achieved_per_s: f64,
    /// p99 latency (µs), `None` if nothing completed.
    pub p99_us: Option<u64>,
    /// Sends answered with an error, or never answered.
    pub errors: u64,
    /// Messages accepted but not yet collected at the end of the step.
    pub backlog: u64,
}

/// Whether a step met the bound, and if not, every reason why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Met every criterion.
    pub passed: bool,
    /// One line per criterion missed (empty when passed).
    pub reasons: Vec<String>,
}

/// Judges a step: p99 within the bound, achieved within
/// `min_achieved_fraction` of offered, no errors, recipients keeping up.
pub fn judge(f: &StepFigures, c: &Criteria) -> Verdict {
    let mut reasons = Vec::new();
    match f.p99_us {
        None => reasons.push("no send completed".to_string()),
        Some(p99) if p99 > c.p99_limit_us => reasons.push(format!(
            "p99 {:.1} ms > {:.1} ms",
            p99 as f64 / 1000.0,
            c.p99_limit_us as f64 / 1000.0
        )),
        Some(_) => {}
    }
    let need = f.offered_per_s * c.min_achieved_fraction;
    // NaN (nothing measured) is not enough either.
    let enough = f.achieved_per_s >= need;
    if !enough {
        reasons.push(format!(
            "achieved {:.0}/s < {:.0}% of the {:.0}/s offered",
            f.achieved_per_s,
            c.min_achieved_fraction * 100.0,
            f.offered_per_s
        ));
    }
    if f.errors > 0 {
        reasons.push(format!("{} sends failed or timed out", f.errors));
    }
    let allowed = f.offered_per_s * c.max_backlog_seconds;
    if f.backlog as f64 > allowed.max(1.0) {
        reasons.push(format!(
            "recipients {:.1} s behind (> {:.1} s)",
            f.backlog as f64 / f.offered_per_s.max(1e-9),
            c.max_backlog_seconds
        ));
    }
    Verdict {
        passed: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RampConfig {
        RampConfig {
            start_rate: 1000,
            growth: 2.0,
            min_rate: 10,
            max_rate: 1_000_000,
            refine_steps: 2,
            tolerance: 0.02,
        }
    }

    /// Runs the ramp with `pass` as the machine's verdicts; answers the
    /// rates tried and why it stopped, checking the invariants on the way.
    fn drive(config: RampConfig, pass: impl Fn(u64) -> bool) -> (Vec<(u64, Phase)>, StopReason) {
        let mut ramp = Ramp::new(config).unwrap();
        let mut tried = Vec::new();
        for _ in 0..1000 {
            match ramp.next() {
                Next::Run { rate, phase } => {
                    assert!(
                        (config.min_rate..=config.max_rate).contains(&rate),
                        "{rate} out of range"
                    );
                    tried.push((rate, phase));
                    ramp.record(pass(rate));
                    if let (Some(p), Some(f)) = (ramp.highest_pass(), ramp.lowest_fail()) {
                        assert!(p < f, "bracket {p}..{f}");
                    }
                }
                Next::Done(reason) => return (tried, reason),
            }
        }
        panic!("the ramp did not terminate: {tried:?}");
    }

    #[test]
    fn grows_geometrically_then_bisects_twice() {
        let (tried, reason) = drive(config(), |r| r <= 10_000);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1000, 2000, 4000, 8000, 16_000, 12_000, 10_000]);
        assert_eq!(tried[5].1, Phase::Refine);
        assert_eq!(tried[4].1, Phase::Up);
        assert_eq!(reason, StopReason::Bracketed);
    }

    #[test]
    fn the_result_is_the_highest_pass_and_lowest_fail() {
        let mut ramp = Ramp::new(config()).unwrap();
        for passed in [true, true, false, false, true] {
            ramp.record(passed);
        }
        // 1000 ok, 2000 ok, 4000 fail, 3000 fail, 2500 ok: done (2 refinements).
        assert_eq!(ramp.highest_pass(), Some(2500));
        assert_eq!(ramp.lowest_fail(), Some(3000));
        assert_eq!(ramp.next(), Next::Done(StopReason::Bracketed));
        assert_eq!(ramp.steps(), 5);
        // Recording after the end changes nothing.
        ramp.record(true);
        assert_eq!(ramp.steps(), 5);
        assert_eq!(ramp.highest_pass(), Some(2500));
    }

    #[test]
    fn a_failing_start_ramps_down_then_refines() {
        let (tried, reason) = drive(config(), |r| r <= 300);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1000, 500, 250, 375, 312]);
        assert_eq!(tried[1].1, Phase::Down);
        assert_eq!(tried[3].1, Phase::Refine);
        assert_eq!(reason, StopReason::Bracketed);
    }

    #[test]
    fn nothing_sustained_ends_at_the_minimum() {
        let (tried, reason) = drive(config(), |_| false);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1000, 500, 250, 125, 62, 31, 15, 10]);
        assert_eq!(reason, StopReason::NothingSustained);
    }

    #[test]
    fn everything_passing_stops_at_the_cap_after_trying_it() {
        let c = RampConfig {
            max_rate: 5000,
            ..config()
        };
        let (tried, reason) = drive(c, |_| true);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1000, 2000, 4000, 5000]);
        assert_eq!(reason, StopReason::MaxRate);
    }

    #[test]
    fn without_refinement_it_stops_once_bracketed() {
        let c = RampConfig {
            refine_steps: 0,
            ..config()
        };
        let (tried, reason) = drive(c, |r| r < 3000);
        assert_eq!(tried.len(), 3);
        assert_eq!(reason, StopReason::Bracketed);
    }

    #[test]
    fn bisection_stops_within_tolerance_and_at_adjacent_rates() {
        // 1 → 2 → 3 (fail): the gap 2..3 is one message per second.
        let c = RampConfig {
            start_rate: 1,
            min_rate: 1,
            refine_steps: 10,
            ..config()
        };
        let (tried, reason) = drive(c, |r| r <= 2);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1, 2, 4, 3]);
        assert_eq!(reason, StopReason::Bracketed);
        // A 10% tolerance stops 1000 → 2000 → (fail 4000) after 3000, 2500,
        // 2250, 2125, 2062 ... once the gap is within 10% of the pass.
        let c = RampConfig {
            refine_steps: 20,
            tolerance: 0.1,
            ..config()
        };
        let (tried, _) = drive(c, |r| r <= 2100);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1000, 2000, 4000, 3000, 2500, 2250, 2125]);
    }

    #[test]
    fn a_noisy_machine_still_terminates_inside_the_bracket() {
        // Alternate verdicts regardless of rate.
        let flip = std::cell::Cell::new(false);
        let (tried, _) = drive(
            RampConfig {
                refine_steps: 20,
                tolerance: 0.0,
                ..config()
            },
            |_| {
                flip.set(!flip.get());
                flip.get()
            },
        );
        assert!(tried.len() < 40, "{tried:?}");
    }

    #[test]
    fn growth_always_advances_and_respects_the_cap() {
        let c = RampConfig {
            start_rate: 1,
            min_rate: 1,
            growth: 1.1,
            max_rate: 7,
            ..config()
        };
        let (tried, reason) = drive(c, |_| true);
        let rates: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(reason, StopReason::MaxRate);
    }

    #[test]
    fn stop_ends_the_search_once() {
        let mut ramp = Ramp::new(config()).unwrap();
        ramp.stop(StopReason::TimeBudget);
        assert_eq!(ramp.next(), Next::Done(StopReason::TimeBudget));
        ramp.stop(StopReason::MaxRate);
        assert_eq!(ramp.next(), Next::Done(StopReason::TimeBudget));
    }

    #[test]
    fn invalid_configurations_are_refused_by_name() {
        let bad = [
            (
                RampConfig {
                    min_rate: 0,
                    ..config()
                },
                "--min-rate",
            ),
            (
                RampConfig {
                    start_rate: 0,
                    ..config()
                },
                "--start-rate",
            ),
            (
                RampConfig {
                    start_rate: 2_000_000,
                    ..config()
                },
                "--start-rate",
            ),
            (
                RampConfig {
                    growth: 1.0,
                    ..config()
                },
                "--growth",
            ),
            (
                RampConfig {
                    growth: f64::NAN,
                    ..config()
                },
                "--growth",
            ),
            (
                RampConfig {
                    refine_steps: 21,
                    ..config()
                },
                "--refine-steps",
            ),
            (
                RampConfig {
                    tolerance: -0.1,
                    ..config()
                },
                "--tolerance",
            ),
        ];
        for (c, name) in bad {
            let e = Ramp::new(c).unwrap_err();
            assert!(e.to_string().starts_with(name), "{e}");
        }
    }

    fn criteria() -> Criteria {
        Criteria {
            p99_limit_us: 50_000,
            min_achieved_fraction: 0.95,
            max_backlog_seconds: 1.0,
        }
    }

    fn figures() -> StepFigures {
        StepFigures {
            offered_per_s: 1000.0,
            achieved_per_s: 990.0,
            p99_us: Some(10_000),
            errors: 0,
            backlog: 100,
        }
    }

    #[test]
    fn a_step_within_the_bound_passes() {
        let v = judge(&figures(), &criteria());
        assert!(v.passed, "{v:?}");
        assert!(v.reasons.is_empty());
        // Exactly at the limits still passes.
        let edge = StepFigures {
            achieved_per_s: 950.0,
            p99_us: Some(50_000),
            backlog: 1000,
            ..figures()
        };
        assert!(judge(&edge, &criteria()).passed);
    }

    #[test]
    fn every_missed_criterion_is_named() {
        let f = StepFigures {
            achieved_per_s: 900.0,
            p99_us: Some(62_100),
            errors: 3,
            backlog: 2500,
            ..figures()
        };
        let v = judge(&f, &criteria());
        assert!(!v.passed);
        assert_eq!(
            v.reasons,
            [
                "p99 62.1 ms > 50.0 ms",
                "achieved 900/s < 95% of the 1000/s offered",
                "3 sends failed or timed out",
                "recipients 2.5 s behind (> 1.0 s)",
            ]
        );
        let none = StepFigures {
            p99_us: None,
            achieved_per_s: f64::NAN,
            ..figures()
        };
        let v = judge(&none, &criteria());
        assert_eq!(v.reasons.len(), 2, "{v:?}");
        assert_eq!(v.reasons[0], "no send completed");
    }
}
