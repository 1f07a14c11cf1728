//! The arithmetic over rounds: a mode's median max-rate figures, the
//! median of Spine's per-round ratios, and the median disk baseline.
//!
//! Invariants:
//! - A median is over the rounds that have the figure; a round in which a
//!   mode did not run (or a ratio could not be formed) is left out, never
//!   counted as zero. No figure in any round: `None`, never 0 or NaN.
//! - An even count's median is the mean of the middle two
//!   ([`crate::report::median`]), rounded to whole microseconds for
//!   latencies.
//! - Losses are never averaged away: `lost` and `duplicates` are totals
//!   over the rounds, and every round with either is named.

use super::machine::FsyncBaseline;
use super::report::{MaxRate, Ratio, RoundResult, RunResult};
use crate::report::{median, Latency};

/// The median of `values`, or `None` when there are none.
fn median_of(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().collect();
    (!v.is_empty()).then(|| median(&v))
}

/// Per-percentile medians of `all` (`max`: the largest); zeros if empty.
pub(crate) fn latency(all: &[Latency]) -> Latency {
    let whole = |f: fn(&Latency) -> u64| {
        median_of(all.iter().map(|l| f(l) as f64)).map_or(0, |m| m.round() as u64)
    };
    Latency {
        p50: whole(|l| l.p50),
        p99: whole(|l| l.p99),
        p999: whole(|l| l.p999),
        max: all.iter().map(|l| l.max).max().unwrap_or(0),
        mean: median_of(all.iter().map(|l| l.mean)).unwrap_or(0.0),
    }
}

/// A mode's max-rate figures over the rounds in which it ran.
pub(crate) fn max_rate(rounds: &[RoundResult]) -> Option<MaxRate> {
    let runs: Vec<(u32, &RunResult)> = rounds
        .iter()
        .filter_map(|r| r.max_rate.as_ref().map(|run| (r.round, run)))
        .collect();
    let throughputs = || runs.iter().map(|(_, r)| r.throughput_msgs_per_s);
    let latencies: Vec<Latency> = runs.iter().map(|(_, r)| r.latency_us).collect();
    Some(MaxRate {
        rounds: runs.len(),
        throughput_msgs_per_s: median_of(throughputs())?,
        throughput_min_msgs_per_s: throughputs().fold(f64::INFINITY, f64::min),
        throughput_max_msgs_per_s: throughputs().fold(0.0, f64::max),
        delivered_msgs_per_s: median_of(runs.iter().map(|(_, r)| r.delivered_msgs_per_s))?,
        drain_s: median_of(runs.iter().map(|(_, r)| r.drain_s))?,
        latency_us: latency(&latencies),
        acked: runs.iter().map(|(_, r)| r.acked).sum(),
        lost: runs.iter().map(|(_, r)| r.lost).sum(),
        duplicates: runs.iter().map(|(_, r)| r.duplicates).sum(),
        rounds_with_loss: runs
            .iter()
            .filter(|(_, r)| r.lost + r.duplicates > 0)
            .map(|(n, _)| *n)
            .collect(),
    })
}

/// Medians of the per-round ratios (each over the rounds that have it);
/// `None` when no round has either.
pub(crate) fn ratio<'a>(per_round: impl IntoIterator<Item = &'a Ratio> + Clone) -> Option<Ratio> {
    let throughput = median_of(per_round.clone().into_iter().filter_map(|r| r.throughput));
    let p99 = median_of(per_round.into_iter().filter_map(|r| r.p99));
    (throughput.is_some() || p99.is_some()).then_some(Ratio { throughput, p99 })
}

/// The median of the disk rates measured just before each round's run.
pub(crate) fn disk_syncs_per_s(rounds: &[RoundResult]) -> Option<f64> {
    median_of(rounds.iter().filter_map(|r| r.disk_syncs_per_s))
}

/// The rounds' raw disk baselines as one: median rate and latencies.
pub(crate) fn baseline(rounds: &[FsyncBaseline]) -> Option<FsyncBaseline> {
    let latencies: Vec<Latency> = rounds.iter().map(|b| b.latency_us).collect();
    Some(FsyncBaseline {
        syncs_per_s: median_of(rounds.iter().map(|b| b.syncs_per_s))?,
        latency_us: latency(&latencies),
        seconds: median_of(rounds.iter().map(|b| b.seconds))?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::report::tests::run;
    use super::*;

    fn round(n: u32, throughput: Option<f64>, p99: u64) -> RoundResult {
        RoundResult {
            round: n,
            disk_syncs_per_s: Some(1000.0 * f64::from(n)),
            max_rate: throughput.map(|t| run(t, p99, None)),
            failed: throughput.is_none().then(|| "failed to start".to_owned()),
            spine_ratio: None,
        }
    }

    #[test]
    fn an_odd_count_takes_the_middle_round_of_each_figure() {
        let rounds = [
            round(1, Some(300.0), 9_000),
            round(2, Some(100.0), 1_000),
            round(3, Some(200.0), 5_000),
        ];
        let m = max_rate(&rounds).expect("ran");
        assert_eq!(m.rounds, 3);
        assert_eq!(m.throughput_msgs_per_s, 200.0);
        assert_eq!(
            (m.throughput_min_msgs_per_s, m.throughput_max_msgs_per_s),
            (100.0, 300.0)
        );
        // `run` makes p50 = p99 / 2, p999 = 2 p99, max = 3 p99.
        assert_eq!(
            (m.latency_us.p50, m.latency_us.p99, m.latency_us.p999),
            (2_500, 5_000, 10_000)
        );
        assert_eq!(m.latency_us.max, 27_000, "the largest, not a median");
        assert_eq!(m.acked, 30);
        assert_eq!(disk_syncs_per_s(&rounds), Some(2000.0));
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        let rounds = [
            round(1, Some(100.0), 1_000),
            round(2, Some(400.0), 4_001),
            round(3, Some(200.0), 2_000),
            round(4, Some(1000.0), 9_000),
        ];
        let m = max_rate(&rounds).expect("ran");
        assert_eq!(m.throughput_msgs_per_s, 300.0);
        assert_eq!(m.latency_us.p99, 3_001, "(2000 + 4001) / 2, rounded");
        assert_eq!(disk_syncs_per_s(&rounds), Some(2500.0));
    }

    #[test]
    fn a_round_without_a_run_is_left_out_not_counted_as_zero() {
        let rounds = [
            round(1, Some(100.0), 1_000),
            round(2, None, 0),
            round(3, Some(300.0), 3_000),
        ];
        let m = max_rate(&rounds).expect("ran");
        assert_eq!(m.rounds, 2);
        assert_eq!(m.throughput_msgs_per_s, 200.0);
        assert_eq!(m.throughput_min_msgs_per_s, 100.0);
        assert_eq!(m.latency_us.p99, 2_000);
        assert_eq!(max_rate(&[round(1, None, 0)]), None);
        assert_eq!(max_rate(&[]), None);
    }

    #[test]
    fn losses_are_totals_and_name_their_rounds() {
        let mut rounds = [
            round(1, Some(100.0), 1_000),
            round(2, Some(100.0), 1_000),
            round(3, Some(100.0), 1_000),
        ];
        if let Some(r) = rounds[1].max_rate.as_mut() {
            r.lost = 7;
        }
        if let Some(r) = rounds[2].max_rate.as_mut() {
            r.duplicates = 2;
        }
        let m = max_rate(&rounds).expect("ran");
        assert_eq!((m.lost, m.duplicates), (7, 2));
        assert_eq!(m.rounds_with_loss, vec![2, 3]);
    }

    #[test]
    fn ratios_are_medians_of_the_rounds_that_have_them() {
        let r = |t: Option<f64>, p: Option<f64>| Ratio {
            throughput: t,
            p99: p,
        };
        let rounds = [
            r(Some(2.0), Some(0.5)),
            r(None, None),
            r(Some(4.0), Some(0.1)),
            r(Some(3.0), None),
        ];
        let m = ratio(&rounds).expect("some");
        assert_eq!(m.throughput, Some(3.0), "odd: 2, 3, 4");
        assert_eq!(m.p99, Some(0.3), "even: (0.1 + 0.5) / 2");
        assert_eq!(ratio(&[r(None, None)]), None);
        assert_eq!(ratio(&[]), None);
    }

    #[test]
    fn baselines_combine_into_medians() {
        let b = |syncs: f64, p50: u64| FsyncBaseline {
            syncs_per_s: syncs,
            latency_us: Latency {
                p50,
                ..Latency::default()
            },
            seconds: 2.0,
        };
        let m = baseline(&[b(300.0, 30), b(5_000.0, 2), b(900.0, 10)]).expect("some");
        assert_eq!(
            (m.syncs_per_s, m.latency_us.p50, m.seconds),
            (900.0, 10, 2.0)
        );
        assert_eq!(baseline(&[]), None);
    }
}
