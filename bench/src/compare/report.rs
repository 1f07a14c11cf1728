//! The comparison's results: the data model written to `report.json`.
//! [`super::medians`] fills the medians, [`super::verdict`] the ratios and
//! the verdict, [`super::markdown`] renders `report.md`.
//!
//! Invariants:
//! - Every requested mode has exactly one row: a peer that could not be
//!   run is a row saying `not run: <why>`, never a missing row or an error.
//! - Every round's raw figures are kept (`rounds`) beside the medians
//!   (`max_rate`), so a reader can recompute or question any median.
//! - Each row states whether its acknowledgement means durable.

use serde::Serialize;

use super::machine::{FsyncBaseline, Machine};
use super::mode::Mode;
use crate::report::Latency;

/// One measured run (max-rate, or one fixed offered load).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RunResult {
    /// `None` for the max-rate run.
    pub(crate) offered_msgs_per_s: Option<f64>,
    pub(crate) throughput_msgs_per_s: f64,
    pub(crate) latency_us: Latency,
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) send_errors: u64,
    pub(crate) consumer_errors: u64,
    pub(crate) drain_s: f64,
    /// Messages received (and acknowledged) by the consumers per second of
    /// the whole run including the drain: the rate messages get through
    /// end to end, whether or not the consumers kept up during the run.
    pub(crate) delivered_msgs_per_s: f64,
    pub(crate) first_errors: Vec<String>,
}

/// Whether a mode ran (in at least one round).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Status {
    Ran,
    NotRun { reason: String },
}

/// Spine's standing against one peer at max rate: in one round, or the
/// medians of the per-round ratios.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Ratio {
    /// Spine's throughput over the peer's.
    pub(crate) throughput: Option<f64>,
    /// Spine's p99 over the peer's (below 1: Spine's is lower).
    pub(crate) p99: Option<f64>,
}

/// One mode in one round: its max-rate run on a fresh server, or why
/// there was none.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RoundResult {
    /// 1-based.
    pub(crate) round: u32,
    /// The raw 1 KiB write + `fdatasync` rate measured just before this
    /// run, on the same filesystem.
    pub(crate) disk_syncs_per_s: Option<f64>,
    pub(crate) max_rate: Option<RunResult>,
    /// Why this round has no run (the server did not start, or the run
    /// failed).
    pub(crate) failed: Option<String>,
    /// Spine's ratio to this mode in this round (only where both ran).
    pub(crate) spine_ratio: Option<Ratio>,
}

/// A mode's max-rate figures over the rounds it ran in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct MaxRate {
    /// Rounds with a run (the medians are over these).
    pub(crate) rounds: usize,
    /// Median throughput.
    pub(crate) throughput_msgs_per_s: f64,
    pub(crate) throughput_min_msgs_per_s: f64,
    pub(crate) throughput_max_msgs_per_s: f64,
    /// Median end-to-end delivery rate ([`RunResult::delivered_msgs_per_s`])
    /// and drain time.
    pub(crate) delivered_msgs_per_s: f64,
    pub(crate) drain_s: f64,
    /// Medians of the rounds' p50, p99, p999 and mean; `max` is the
    /// largest of the rounds'.
    pub(crate) latency_us: Latency,
    /// Totals over the rounds.
    pub(crate) acked: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    /// Rounds in which anything was lost or duplicated.
    pub(crate) rounds_with_loss: Vec<u32>,
}

/// One row: a mode and its runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct PeerResult {
    pub(crate) mode: String,
    pub(crate) version: Option<String>,
    pub(crate) durable_ack: bool,
    pub(crate) ack_means: String,
    #[serde(flatten)]
    pub(crate) status: Status,
    /// Medians of `rounds` (absent when no round ran).
    pub(crate) max_rate: Option<MaxRate>,
    /// Every round's max-rate run, in round order.
    pub(crate) rounds: Vec<RoundResult>,
    /// One run per offered load, after the rounds (not medians).
    pub(crate) fixed_rate: Vec<RunResult>,
    /// Offered loads skipped because they were far above the mode's
    /// median max rate.
    pub(crate) skipped_rates: Vec<f64>,
    /// Medians of Spine's per-round ratios to this peer (absent on Spine's
    /// own row).
    pub(crate) spine_ratio: Option<Ratio>,
    /// Median of the rounds' `disk_syncs_per_s`: this machine's disk
    /// varies several-fold between minutes, and every durable row stands
    /// on it.
    pub(crate) disk_syncs_per_s: Option<f64>,
    /// How each run's server stopped, in run order.
    pub(crate) stopped: Vec<String>,
    /// Fixed-rate runs that failed, and why.
    pub(crate) failed_runs: Vec<String>,
}

impl PeerResult {
    /// A row for a mode that could not be run.
    pub(crate) fn not_run(mode: Mode, version: Option<String>, reason: String) -> PeerResult {
        PeerResult {
            mode: mode.name().to_owned(),
            version,
            durable_ack: mode.durable_ack(),
            ack_means: mode.ack_meaning().to_owned(),
            status: Status::NotRun { reason },
            max_rate: None,
            rounds: Vec::new(),
            fixed_rate: Vec::new(),
            skipped_rates: Vec::new(),
            spine_ratio: None,
            disk_syncs_per_s: None,
            stopped: Vec::new(),
            failed_runs: Vec::new(),
        }
    }
}

/// The workload every mode got.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Workload {
    pub(crate) size: usize,
    pub(crate) producers: usize,
    pub(crate) window: usize,
    pub(crate) consumers: usize,
    pub(crate) seconds: f64,
    pub(crate) drain_seconds: f64,
    /// Max-rate rounds (every mode once per round, interleaved).
    pub(crate) rounds: u32,
    pub(crate) rates: Vec<f64>,
}

/// How Spine stands against the target, from the medians.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Verdict {
    /// The durable peer with the highest median max-rate throughput.
    pub(crate) fastest_durable_peer: Option<String>,
    /// Median of Spine's per-round throughput ratios to that peer.
    pub(crate) ratio_to_fastest_durable: Option<f64>,
    /// At least 1.5x the fastest durable peer.
    pub(crate) meets_1_5x_fastest_durable: Option<bool>,
    /// Ahead of NATS JetStream with its default (non-durable) sync.
    pub(crate) ahead_of_nats_default: Option<bool>,
    /// Spine's median p99 ratio below 1 against every peer that ran.
    pub(crate) lower_p99_than_every_peer: Option<bool>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Report {
    pub(crate) benchmark: &'static str,
    pub(crate) started_utc: String,
    pub(crate) command: String,
    pub(crate) machine: Machine,
    /// Medians of `fdatasync_baseline_rounds`.
    pub(crate) fdatasync_baseline: Option<FsyncBaseline>,
    /// The raw disk baseline measured at the start of each round.
    pub(crate) fdatasync_baseline_rounds: Vec<FsyncBaseline>,
    pub(crate) workload: Workload,
    pub(crate) peers: Vec<PeerResult>,
    pub(crate) verdict: Verdict,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::{medians, verdict};
    use super::*;

    pub(crate) fn run(throughput: f64, p99: u64, offered: Option<f64>) -> RunResult {
        RunResult {
            offered_msgs_per_s: offered,
            throughput_msgs_per_s: throughput,
            latency_us: Latency {
                p50: p99 / 2,
                p99,
                p999: p99 * 2,
                max: p99 * 3,
                mean: p99 as f64 / 2.0,
            },
            sent: 10,
            acked: 10,
            received: 10,
            lost: 0,
            duplicates: 0,
            send_errors: 0,
            consumer_errors: 0,
            drain_s: 0.0,
            delivered_msgs_per_s: throughput,
            first_errors: Vec::new(),
        }
    }

    /// A row that ran one max-rate run per `(throughput, p99)`, round 1 up.
    pub(crate) fn ran_rounds(mode: Mode, runs: &[(f64, u64)]) -> PeerResult {
        let rounds: Vec<RoundResult> = (1..)
            .zip(runs)
            .map(|(n, &(throughput, p99))| RoundResult {
                round: n,
                disk_syncs_per_s: (mode == Mode::Spine).then_some(5_500.0),
                max_rate: Some(run(throughput, p99, None)),
                failed: None,
                spine_ratio: None,
            })
            .collect();
        PeerResult {
            disk_syncs_per_s: medians::disk_syncs_per_s(&rounds),
            status: Status::Ran,
            max_rate: medians::max_rate(&rounds),
            rounds,
            ..PeerResult::not_run(mode, Some("v1".into()), String::new())
        }
    }

    /// A row with one round and two fixed-rate runs.
    pub(crate) fn ran(mode: Mode, throughput: f64, p99: u64) -> PeerResult {
        PeerResult {
            fixed_rate: vec![
                run(throughput.min(1000.0), p99 / 4, Some(1000.0)),
                run(throughput.min(5000.0), p99 / 2, Some(5000.0)),
            ],
            ..ran_rounds(mode, &[(throughput, p99)])
        }
    }

    pub(crate) fn sample() -> Report {
        let mut peers = vec![
            ran(Mode::NatsDefault, 90_000.0, 20_000),
            ran(Mode::NatsSyncAlways, 3_500.0, 200_000),
            ran(Mode::RabbitQuorum, 15_000.0, 80_000),
            PeerResult::not_run(Mode::RedisAofAlways, None, "redis-server not found".into()),
            ran(Mode::Spine, 150_000.0, 10_000),
        ];
        let verdict = verdict::compare(&mut peers);
        Report {
            benchmark: "compare",
            started_utc: "2026-11-24 10:00:00".into(),
            command: "spine-bench compare --seconds 10".into(),
            machine: Machine {
                cores: 2,
                cpu_model: "Xeon".into(),
                memory_gib: 24.0,
                kernel: "6.18".into(),
                data_filesystem: "ext4 /dev/vda".into(),
                load_average_start: "0.10 0.20 0.30".into(),
                load_average_end: "1.00 0.50 0.40".into(),
            },
            fdatasync_baseline: None,
            fdatasync_baseline_rounds: Vec::new(),
            workload: Workload {
                size: 1024,
                producers: 4,
                window: 256,
                consumers: 2,
                seconds: 10.0,
                drain_seconds: 120.0,
                rounds: 1,
                rates: vec![1000.0, 5000.0],
            },
            peers,
            verdict,
        }
    }

    #[test]
    fn json_has_the_medians_and_every_rounds_figures() {
        let mut report = sample();
        report.peers[0] = ran_rounds(
            Mode::NatsDefault,
            &[(90_000.0, 20_000), (70_000.0, 30_000), (80_000.0, 10_000)],
        );
        report.verdict = verdict::compare(&mut report.peers);
        let v = serde_json::to_value(&report).expect("json");
        let nats = &v["peers"][0];
        assert_eq!(nats["mode"], "nats-js-default");
        assert_eq!(nats["durable_ack"], false);
        assert_eq!(nats["status"], "ran");
        assert_eq!(nats["max_rate"]["rounds"], 3);
        assert_eq!(nats["max_rate"]["throughput_msgs_per_s"], 80_000.0);
        assert_eq!(nats["max_rate"]["throughput_min_msgs_per_s"], 70_000.0);
        assert_eq!(nats["max_rate"]["latency_us"]["p99"], 20_000);
        assert_eq!(nats["max_rate"]["lost"], 0);
        let rounds = nats["rounds"].as_array().expect("rounds");
        assert_eq!(rounds.len(), 3);
        assert_eq!(rounds[1]["round"], 2);
        assert_eq!(rounds[1]["max_rate"]["throughput_msgs_per_s"], 70_000.0);
        assert!(rounds[0]["spine_ratio"]["throughput"].is_number());
        assert!(nats["spine_ratio"]["throughput"].is_number());
        let redis = &v["peers"][3];
        assert_eq!(redis["status"], "not_run");
        assert_eq!(redis["reason"], "redis-server not found");
        assert_eq!(v["workload"]["rounds"], 1);
        assert_eq!(v["verdict"]["meets_1_5x_fastest_durable"], true);
    }
}
