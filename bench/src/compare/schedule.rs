//! The order of the runs: `--rounds` rounds of max-rate runs, every mode
//! once per round, interleaved (round 1: every mode, then round 2, ...),
//! each round opened by the raw disk baseline; then one set of fixed-rate
//! runs per mode against its median max rate.
//!
//! Interleaving makes drift on a shared machine (other work, the disk's
//! sync rate swinging between minutes) hit every mode alike, and pairs
//! Spine with each peer within a round for the per-round ratios.
//!
//! Invariant: every requested mode comes back as exactly one row; a mode
//! whose every round failed is "not run" with the first round's reason,
//! and its rounds are kept.

use std::path::Path;
use std::time::Duration;

use tokio::runtime::Runtime;

use super::machine::{self, FsyncBaseline};
use super::medians;
use super::options::CompareArgs;
use super::report::{PeerResult, Status};
use super::runner::{self, Paths, Ready};

/// Every mode's row, and the disk baseline of each round (empty with
/// `--baseline-seconds 0`).
pub(crate) fn run_all(
    args: &CompareArgs,
    runtime: &Runtime,
    work: &Path,
    logs: &Path,
) -> anyhow::Result<(Vec<PeerResult>, Vec<FsyncBaseline>)> {
    let paths = Paths { work, logs };
    let mut rows: Vec<(PeerResult, Option<Ready>)> = args
        .modes()
        .into_iter()
        .map(|mode| runner::prepare(args, mode))
        .collect();
    for (row, ready) in &rows {
        if let (Status::NotRun { reason }, None) = (&row.status, ready) {
            eprintln!("compare: {}: not run: {reason}", row.mode);
        }
    }
    let mut baselines = Vec::new();
    for round in 1..=args.rounds {
        eprintln!("compare: round {round} of {}", args.rounds);
        if args.baseline_seconds > 0.0 {
            eprintln!(
                "compare: raw write + fdatasync baseline for {} s",
                args.baseline_seconds
            );
            baselines.push(machine::fdatasync_baseline(
                work,
                Duration::from_secs_f64(args.baseline_seconds),
            )?);
        }
        for (row, ready) in &mut rows {
            let Some(ready) = ready else { continue };
            let (result, stopped) =
                runtime.block_on(runner::max_rate_round(args, ready, &paths, round));
            row.rounds.push(result);
            row.stopped.extend(stopped);
        }
    }
    let mut peers = Vec::new();
    for (mut row, ready) in rows {
        if let Some(ready) = ready {
            summarise(&mut row);
            let max = row.max_rate.as_ref().map(|m| m.throughput_msgs_per_s);
            if let (Some(max), false) = (max, args.max_only) {
                runtime.block_on(runner::fixed_rates(args, &ready, &paths, max, &mut row));
            }
        }
        peers.push(row);
    }
    Ok((peers, baselines))
}

/// Fills a row's medians from its rounds; a row none of whose rounds ran
/// becomes "not run" with the first round's reason.
pub(crate) fn summarise(row: &mut PeerResult) {
    row.max_rate = medians::max_rate(&row.rounds);
    row.disk_syncs_per_s = medians::disk_syncs_per_s(&row.rounds);
    if row.max_rate.is_none() {
        let first = row.rounds.iter().find_map(|r| {
            r.failed
                .as_ref()
                .map(|why| format!("no round ran; round {}: {why}", r.round))
        });
        let reason = first.unwrap_or_else(|| "no round ran".to_owned());
        eprintln!("compare: {}: not run: {reason}", row.mode);
        row.status = Status::NotRun { reason };
    }
}

#[cfg(test)]
mod tests {
    use super::super::mode::Mode;
    use super::super::report::tests::ran_rounds;
    use super::*;

    #[test]
    fn a_mode_that_ran_in_some_rounds_gets_medians_of_those() {
        let mut row = ran_rounds(Mode::RedisAofAlways, &[(100.0, 10), (300.0, 30)]);
        row.rounds[1].max_rate = None;
        row.rounds[1].failed = Some("run failed".into());
        summarise(&mut row);
        assert_eq!(row.status, Status::Ran);
        let m = row.max_rate.as_ref().expect("medians");
        assert_eq!((m.rounds, m.throughput_msgs_per_s), (1, 100.0));
        assert_eq!(row.rounds.len(), 2, "every round kept");
    }

    #[test]
    fn a_mode_whose_every_round_failed_is_not_run_with_the_first_reason() {
        let mut row = ran_rounds(Mode::RabbitQuorum, &[(1.0, 1), (1.0, 1)]);
        for (r, why) in row.rounds.iter_mut().zip(["failed to start: a", "b"]) {
            r.max_rate = None;
            r.failed = Some(why.into());
        }
        summarise(&mut row);
        assert_eq!(
            row.status,
            Status::NotRun {
                reason: "no round ran; round 1: failed to start: a".into()
            }
        );
        assert!(row.max_rate.is_none());
        assert_eq!(row.rounds.len(), 2);
    }
}
