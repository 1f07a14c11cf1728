//! Spine's ratios to each peer and the verdict against the target.
//!
//! Spine and a peer are compared round by round (the two ran minutes
//! apart, on the same disk weather), and the median of those per-round
//! ratios is reported: it resists drift across rounds better than a ratio
//! of medians taken at different times.
//!
//! Invariants:
//! - Ratios come from max-rate runs only, and only from rounds in which
//!   both Spine and the peer ran with a non-zero throughput (a non-zero
//!   p99 for the latency ratio); anything else is `None` (`n/a` in the
//!   table), never infinite or NaN.
//! - The verdict uses medians only: the fastest durable peer by median
//!   throughput, and the median per-round ratios to it and to the rest.

use std::collections::BTreeMap;

use super::medians;
use super::mode::Mode;
use super::report::{PeerResult, Ratio, RunResult, Status, Verdict};

fn div(a: f64, b: f64) -> Option<f64> {
    let r = a / b;
    (b > 0.0 && r.is_finite()).then_some(r)
}

/// A mode's max-rate runs by round number, where it ran with a non-zero
/// throughput.
fn runs_by_round(p: &PeerResult) -> BTreeMap<u32, &RunResult> {
    match p.status {
        Status::Ran => p
            .rounds
            .iter()
            .filter_map(|r| Some((r.round, r.max_rate.as_ref()?)))
            .filter(|(_, r)| r.throughput_msgs_per_s > 0.0)
            .collect(),
        Status::NotRun { .. } => BTreeMap::new(),
    }
}

fn ratio(spine: &RunResult, peer: &RunResult) -> Ratio {
    Ratio {
        throughput: div(spine.throughput_msgs_per_s, peer.throughput_msgs_per_s),
        p99: div(spine.latency_us.p99 as f64, peer.latency_us.p99 as f64),
    }
}

/// Fills every peer's per-round and median `spine_ratio` and returns the
/// verdict.
pub(crate) fn compare(peers: &mut [PeerResult]) -> Verdict {
    let spine: BTreeMap<u32, RunResult> = peers
        .iter()
        .find(|p| p.mode == Mode::Spine.name())
        .map(|p| {
            runs_by_round(p)
                .into_iter()
                .map(|(n, r)| (n, r.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut fastest: Option<(String, f64, Option<f64>)> = None;
    let mut ahead_of_nats = None;
    let mut lower_p99: Option<bool> = None;
    for p in peers.iter_mut().filter(|p| p.mode != Mode::Spine.name()) {
        if runs_by_round(p).is_empty() {
            continue;
        }
        for round in &mut p.rounds {
            round.spine_ratio = match (spine.get(&round.round), &round.max_rate) {
                (Some(s), Some(r)) if r.throughput_msgs_per_s > 0.0 => Some(ratio(s, r)),
                _ => None,
            };
        }
        p.spine_ratio = medians::ratio(p.rounds.iter().filter_map(|r| r.spine_ratio.as_ref()));
        let median = p.max_rate.as_ref().map_or(0.0, |m| m.throughput_msgs_per_s);
        let to_spine = p.spine_ratio.as_ref().and_then(|r| r.throughput);
        if p.durable_ack && fastest.as_ref().is_none_or(|(_, t, _)| median > *t) {
            fastest = Some((p.mode.clone(), median, to_spine));
        }
        if p.mode == Mode::NatsDefault.name() {
            ahead_of_nats = to_spine.map(|r| r > 1.0);
        }
        if let Some(r) = p.spine_ratio.as_ref().and_then(|r| r.p99) {
            lower_p99 = Some(lower_p99.unwrap_or(true) && r < 1.0);
        }
    }
    let ratio_to_fastest = fastest.as_ref().and_then(|(_, _, r)| *r);
    Verdict {
        fastest_durable_peer: fastest.map(|(m, _, _)| m),
        ratio_to_fastest_durable: ratio_to_fastest,
        meets_1_5x_fastest_durable: ratio_to_fastest.map(|r| r >= 1.5),
        ahead_of_nats_default: ahead_of_nats,
        lower_p99_than_every_peer: lower_p99,
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::tests::{ran, ran_rounds, sample};
    use super::*;

    #[test]
    fn ratios_compare_spine_with_each_peer_that_ran() {
        let report = sample();
        let nats = &report.peers[0];
        let ratio = nats.spine_ratio.as_ref().expect("ratio");
        assert_eq!(ratio.throughput.map(|r| (r * 100.0).round()), Some(167.0));
        assert_eq!(ratio.p99, Some(0.5));
        assert!(report.peers[3].spine_ratio.is_none(), "not run: no ratio");
        assert!(report.peers[4].spine_ratio.is_none(), "Spine's own row");
        let v = &report.verdict;
        assert_eq!(v.fastest_durable_peer.as_deref(), Some("rabbitmq-quorum"));
        assert_eq!(v.ratio_to_fastest_durable, Some(10.0));
        assert_eq!(v.meets_1_5x_fastest_durable, Some(true));
        assert_eq!(v.ahead_of_nats_default, Some(true));
        assert_eq!(v.lower_p99_than_every_peer, Some(true));
    }

    #[test]
    fn ratios_are_per_round_then_median_not_a_ratio_of_medians() {
        // Spine 100, 200, 900; Redis 50, 400, 100 in the same rounds.
        // Per round: 2.0, 0.5, 9.0, median 2.0. Ratio of medians: 1.5.
        let mut peers = vec![
            ran_rounds(
                Mode::RedisAofAlways,
                &[(50.0, 1_000), (400.0, 1_000), (100.0, 1_000)],
            ),
            ran_rounds(Mode::Spine, &[(100.0, 500), (200.0, 4_000), (900.0, 500)]),
        ];
        let v = compare(&mut peers);
        let per_round: Vec<Option<f64>> = peers[0]
            .rounds
            .iter()
            .map(|r| r.spine_ratio.as_ref().and_then(|x| x.throughput))
            .collect();
        assert_eq!(per_round, vec![Some(2.0), Some(0.5), Some(9.0)]);
        assert_eq!(v.ratio_to_fastest_durable, Some(2.0));
        assert_eq!(v.meets_1_5x_fastest_durable, Some(true));
        // p99: 0.5, 4.0, 0.5 per round: median 0.5, lower.
        assert_eq!(peers[0].spine_ratio.as_ref().and_then(|r| r.p99), Some(0.5));
        assert_eq!(v.lower_p99_than_every_peer, Some(true));
    }

    #[test]
    fn a_round_either_side_missed_is_left_out_of_the_ratio() {
        // RabbitMQ failed round 2, Spine round 3: only round 1 pairs up.
        let mut peers = vec![
            ran_rounds(
                Mode::RabbitQuorum,
                &[(100.0, 1_000), (0.0, 0), (100.0, 1_000)],
            ),
            ran_rounds(Mode::Spine, &[(300.0, 1_000), (50.0, 1_000), (0.0, 0)]),
        ];
        peers[0].rounds[1].max_rate = None;
        peers[1].rounds[2].max_rate = None;
        let v = compare(&mut peers);
        let paired: Vec<bool> = peers[0]
            .rounds
            .iter()
            .map(|r| r.spine_ratio.is_some())
            .collect();
        assert_eq!(paired, vec![true, false, false]);
        assert_eq!(v.ratio_to_fastest_durable, Some(3.0));
    }

    #[test]
    fn the_fastest_durable_peer_is_chosen_by_median_throughput() {
        // Redis has the single fastest round, RabbitMQ the higher median.
        let mut peers = vec![
            ran_rounds(
                Mode::RabbitQuorum,
                &[(200.0, 1_000), (200.0, 1_000), (200.0, 1_000)],
            ),
            ran_rounds(
                Mode::RedisAofAlways,
                &[(900.0, 1_000), (100.0, 1_000), (100.0, 1_000)],
            ),
            ran_rounds(
                Mode::NatsDefault,
                &[(5_000.0, 1_000), (5_000.0, 1_000), (5_000.0, 1_000)],
            ),
            ran_rounds(Mode::Spine, &[(400.0, 900), (400.0, 900), (400.0, 900)]),
        ];
        let v = compare(&mut peers);
        assert_eq!(v.fastest_durable_peer.as_deref(), Some("rabbitmq-quorum"));
        assert_eq!(v.ratio_to_fastest_durable, Some(2.0));
        assert_eq!(v.ahead_of_nats_default, Some(false), "400 against 5,000");
    }

    #[test]
    fn a_slower_spine_fails_the_verdict() {
        let mut peers = vec![
            ran(Mode::NatsDefault, 90_000.0, 20_000),
            ran(Mode::RabbitQuorum, 15_000.0, 80_000),
            ran(Mode::Spine, 20_000.0, 30_000),
        ];
        let v = compare(&mut peers);
        assert_eq!(v.meets_1_5x_fastest_durable, Some(false));
        assert_eq!(v.ahead_of_nats_default, Some(false));
        assert_eq!(v.lower_p99_than_every_peer, Some(false));
    }

    #[test]
    fn without_spine_or_peers_nothing_is_claimed() {
        let mut only_peers = vec![ran(Mode::RabbitQuorum, 15_000.0, 80_000)];
        let v = compare(&mut only_peers);
        assert_eq!(v.fastest_durable_peer.as_deref(), Some("rabbitmq-quorum"));
        assert_eq!(v.meets_1_5x_fastest_durable, None);
        assert!(only_peers[0].spine_ratio.is_none());
        let mut zero = vec![ran(Mode::RabbitQuorum, 0.0, 0), ran(Mode::Spine, 10.0, 10)];
        let v = compare(&mut zero);
        assert_eq!(v.ratio_to_fastest_durable, None);
        assert!(zero[0].spine_ratio.is_none());
    }
}
