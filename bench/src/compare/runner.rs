//! Running one mode: every run on a fresh server (start in a new
//! directory, drive, stop by pid, keep the log, remove the data). The
//! schedule ([`super::schedule`]) calls [`prepare`] once per mode, then
//! [`max_rate_round`] once per round, then [`fixed_rates`].
//!
//! Invariant: nothing here fails the comparison; a missing binary makes the
//! mode's row "not run: <why>", a server that does not start or set up, or
//! a failed max-rate run, is that round's `failed`, and a failed fixed-rate
//! run is listed in `failed_runs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spine_client::Endpoint;
use spine_core::ids::{MailboxId, WorkflowId};

use super::mode::Mode;
use super::options::{binaries, CompareArgs};
use super::process::{self, Server};
use super::report::{PeerResult, RoundResult, RunResult, Status};
use super::{machine, nats, rabbit, redis, spine, workload};
use crate::load_bench::{self, Output};

/// A started peer: its processes and its driver.
enum Started {
    Nats(Server, nats::Nats),
    Rabbit(rabbit::Running, rabbit::Rabbit),
    Redis(Server, redis::Redis),
    Spine(Server, SocketAddr),
}

impl Started {
    /// The pids this tool started (each also a process group id).
    fn pids(&self) -> Vec<u32> {
        match self {
            Started::Nats(s, _) | Started::Redis(s, _) | Started::Spine(s, _) => {
                s.pid().into_iter().collect()
            }
            Started::Rabbit(r, _) => r.broker.pid().into_iter().chain(r.epmd.pid()).collect(),
        }
    }

    fn stop(&mut self) -> String {
        match self {
            Started::Nats(s, _) | Started::Redis(s, _) | Started::Spine(s, _) => {
                s.stop(Duration::from_secs(30))
            }
            Started::Rabbit(r, _) => r.stop(),
        }
    }
}

fn version(mode: Mode, bins: &[PathBuf]) -> Option<String> {
    let first = bins.first()?;
    match mode {
        Mode::NatsDefault | Mode::NatsSyncAlways | Mode::RedisAofAlways | Mode::Spine => {
            process::version(first)
        }
        Mode::RabbitQuorum => rabbit::version(),
    }
}

async fn start(
    args: &CompareArgs,
    mode: Mode,
    bins: &[PathBuf],
    dir: &Path,
) -> anyhow::Result<Started> {
    let bin = |i: usize| {
        bins.get(i)
            .ok_or_else(|| anyhow::anyhow!("no binary {i} for {mode}"))
    };
    Ok(match mode {
        Mode::NatsDefault | Mode::NatsSyncAlways => {
            let (server, addr) = nats::start(bin(0)?, dir, mode == Mode::NatsSyncAlways).await?;
            let driver = nats::Nats::setup(addr, args.nats_retention).await;
            Started::Nats(server, driver?)
        }
        Mode::RedisAofAlways => {
            let (server, addr) = redis::start(bin(0)?, dir).await?;
            Started::Redis(server, redis::Redis::setup(addr).await?)
        }
        Mode::RabbitQuorum => {
            let (running, addr) = rabbit::start(bin(0)?, bin(1)?, dir).await?;
            Started::Rabbit(running, rabbit::Rabbit::setup(addr).await?)
        }
        Mode::Spine => {
            let (server, addr) = spine::start(bin(0)?, dir).await?;
            Started::Spine(server, addr)
        }
    })
}

fn run_result(o: Output, offered: Option<f64>) -> RunResult {
    let whole_run = o.seconds + o.drain_s;
    let delivered = if whole_run > 0.0 {
        o.received as f64 / whole_run
    } else {
        0.0
    };
    RunResult {
        offered_msgs_per_s: offered,
        throughput_msgs_per_s: o.throughput_msgs_per_s,
        latency_us: o.latency_us,
        sent: o.sent,
        acked: o.acked,
        received: o.received,
        lost: o.lost,
        duplicates: o.duplicates,
        send_errors: o.send_errors,
        consumer_errors: o.consumer_errors,
        drain_s: o.drain_s,
        delivered_msgs_per_s: delivered,
        first_errors: o.first_errors,
    }
}

/// One run against a started peer.
async fn run_once(
    args: &CompareArgs,
    started: &Started,
    rate: Option<f64>,
    run: u8,
) -> anyhow::Result<RunResult> {
    let output = match started {
        Started::Spine(_, addr) => {
            let load = args.load_args(format!("native://{addr}"), rate);
            let mailboxes: Vec<MailboxId> = spine::DEMO_MAILBOXES
                .iter()
                .take(args.consumers)
                .map(|m| MailboxId::parse(m))
                .collect::<Result<_, _>>()?;
            let workflow = WorkflowId::parse(&load.workflow)?;
            let endpoint = Endpoint::parse(&load.target)?;
            load_bench::drive(&load, endpoint, mailboxes, args.consumers, workflow).await?
        }
        Started::Nats(_, peer) => {
            workload::drive(peer, &args.load_args("nats".into(), rate), run).await?
        }
        Started::Redis(_, peer) => {
            workload::drive(peer, &args.load_args("redis".into(), rate), run).await?
        }
        Started::Rabbit(_, peer) => {
            workload::drive(peer, &args.load_args("amqp".into(), rate), run).await?
        }
    };
    Ok(run_result(output, rate))
}

/// One run on a fresh server: a new directory `work/<mode>/<label>`,
/// start, run, stop by pid, keep its log as `logs/<mode>-<label>-*.log`,
/// remove the directory. Every run starts from an empty server, so no run
/// inherits another's backlog, stored data or background work.
async fn run_fresh(
    args: &CompareArgs,
    ready: &Ready,
    paths: &Paths<'_>,
    label: &str,
    rate: Option<f64>,
) -> Result<(RunResult, String), String> {
    let mode = ready.mode;
    let dir = paths.work.join(mode.name()).join(label);
    let dir = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::canonicalize(&dir))
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let outcome = match start(args, mode, &ready.bins, &dir).await {
        Err(e) => Err(format!("failed to start: {e:#}")),
        Ok(mut started) => {
            eprintln!(
                "compare: {mode}: {label}: started pid(s) {:?}, {} s",
                started.pids(),
                args.seconds
            );
            let run = run_once(args, &started, rate, 0).await;
            let stopped = started.stop();
            run.map(|r| (r, stopped))
                .map_err(|e| format!("{label} run failed: {e:#}"))
        }
    };
    keep_logs(&dir, paths.logs, &format!("{mode}-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir(paths.work.join(mode.name()));
    outcome
}

/// Where runs keep their data (removed after each run) and their logs.
pub(crate) struct Paths<'a> {
    pub(crate) work: &'a Path,
    pub(crate) logs: &'a Path,
}

/// A mode whose binaries were found.
pub(crate) struct Ready {
    pub(crate) mode: Mode,
    bins: Vec<PathBuf>,
}

/// Finds a mode's binaries: its row (status `Ran`, no runs yet) and the
/// mode ready to run, or its "not run" row and `None`.
pub(crate) fn prepare(args: &CompareArgs, mode: Mode) -> (PeerResult, Option<Ready>) {
    let bins = match binaries(args, mode) {
        Ok(b) => b,
        Err(why) => return (PeerResult::not_run(mode, None, why), None),
    };
    let version = version(mode, &bins);
    eprintln!(
        "compare: {mode}: {}",
        version.as_deref().unwrap_or("version unknown")
    );
    let mut row = PeerResult {
        status: Status::Ran,
        ..PeerResult::not_run(mode, version, String::new())
    };
    if matches!(mode, Mode::NatsDefault | Mode::NatsSyncAlways) {
        row.ack_means = format!("{}; {}", row.ack_means, args.nats_retention.describe());
    }
    (row, Some(Ready { mode, bins }))
}

/// One round of one mode: up to 1 s of the raw disk baseline (unless
/// `--baseline-seconds 0`), then the max-rate run on a fresh server.
/// Returns the round and how the server stopped.
pub(crate) async fn max_rate_round(
    args: &CompareArgs,
    ready: &Ready,
    paths: &Paths<'_>,
    round: u32,
) -> (RoundResult, Option<String>) {
    let mode = ready.mode;
    let mut result = RoundResult {
        round,
        disk_syncs_per_s: None,
        max_rate: None,
        failed: None,
        spine_ratio: None,
    };
    if args.baseline_seconds > 0.0 {
        let _ = std::fs::create_dir_all(paths.work);
        let seconds = args.baseline_seconds.min(1.0);
        match machine::fdatasync_baseline(paths.work, Duration::from_secs_f64(seconds)) {
            Ok(b) => result.disk_syncs_per_s = Some(b.syncs_per_s),
            Err(e) => eprintln!("compare: {mode}: round {round}: disk baseline: {e:#}"),
        }
    }
    let label = format!("round-{round}-max");
    match run_fresh(args, ready, paths, &label, None).await {
        Ok((r, stopped)) => {
            result.max_rate = Some(r);
            (result, Some(stopped))
        }
        Err(why) => {
            eprintln!("compare: {mode}: round {round}: {why}");
            result.failed = Some(why);
            (result, None)
        }
    }
}

/// The fixed-rate runs, one per offered load at most twice `max` (the
/// mode's median max rate), into `row`.
pub(crate) async fn fixed_rates(
    args: &CompareArgs,
    ready: &Ready,
    paths: &Paths<'_>,
    max: f64,
    row: &mut PeerResult,
) {
    for &rate in &args.rates {
        if rate > 2.0 * max {
            row.skipped_rates.push(rate);
            continue;
        }
        match run_fresh(args, ready, paths, &format!("rate-{rate}"), Some(rate)).await {
            Ok((r, stopped)) => {
                row.fixed_rate.push(r);
                row.stopped.push(stopped);
            }
            Err(why) => {
                eprintln!("compare: {}: at {rate}/s: {why}", ready.mode);
                row.failed_runs.push(format!("at {rate}/s: {why}"));
            }
        }
    }
}

/// Copies the server logs of a run's directory into `logs`.
fn keep_logs(dir: &Path, logs: &Path, prefix: &str) {
    let _ = std::fs::create_dir_all(logs);
    for name in ["server.log", "epmd.log"] {
        let from = dir.join(name);
        if from.is_file() {
            let _ = std::fs::copy(&from, logs.join(format!("{prefix}-{name}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::tests::parse;
    use super::*;

    #[test]
    fn a_missing_peer_binary_is_a_not_run_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let mut a = parse(&[
            "--peers",
            "redis-aof-always,spine,nats-js-default,rabbitmq-quorum",
        ])
        .expect("parse");
        a.redis_server = Some(missing.clone());
        a.nats_server = Some(missing.clone());
        a.rabbitmq_server = Some(missing.clone());
        a.spine = missing;
        for mode in a.modes() {
            let (row, ready) = prepare(&a, mode);
            assert!(ready.is_none(), "{mode} is ready without its binary");
            match &row.status {
                Status::NotRun { reason } => assert!(reason.contains("not found"), "{reason}"),
                Status::Ran => panic!("{mode} ran without its binary"),
            }
            assert!(row.max_rate.is_none() && row.rounds.is_empty());
        }
    }

    #[tokio::test]
    async fn a_peer_that_fails_to_start_fails_its_round_and_keeps_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("redis-server");
        std::fs::write(&fake, "#!/bin/sh\necho cannot start: no disk\nexit 1\n").expect("write");
        let mut perms = std::fs::metadata(&fake).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).expect("chmod");
        let mut a =
            parse(&["--peers", "redis-aof-always", "--baseline-seconds", "0"]).expect("parse");
        a.redis_server = Some(fake);
        let (row, ready) = prepare(&a, Mode::RedisAofAlways);
        let ready = ready.expect("the fake binary exists");
        assert_eq!(row.status, Status::Ran);
        let (work, logs) = (dir.path().join("work"), dir.path().join("logs"));
        let paths = Paths {
            work: &work,
            logs: &logs,
        };
        let (round, stopped) = max_rate_round(&a, &ready, &paths, 2).await;
        assert_eq!(round.round, 2);
        assert!(round.max_rate.is_none() && stopped.is_none());
        let reason = round.failed.expect("failed");
        assert!(reason.starts_with("failed to start"), "{reason}");
        assert!(reason.contains("no disk"), "{reason}");
        assert!(logs
            .join("redis-aof-always-round-2-max-server.log")
            .is_file());
        assert!(!work.join("redis-aof-always").exists(), "data removed");
    }
}
