//! `spine-bench compare`: Spine beside the brokers planners already know
//! (NATS JetStream, RabbitMQ quorum queues, Redis Streams), on the same
//! durable workload, on this machine, in one run.
//!
//! For each mode in `--peers` it runs a max-rate run and fixed-rate runs
//! at each `--rates` offered load (those over twice the mode's max rate are
//! skipped). Every run gets a fresh server: started on 127.0.0.1 in a new
//! directory under `--out`, waited for until it listens, stopped by the
//! pid it started, its data removed; so no run inherits another's backlog,
//! stored data or background work (compaction, snapshots). A mode whose binary is missing or whose server
//! fails to start or set up is a "not run: <why>" row, never an error.
//! Then it writes `report.json`, `report.md`, `throughput.svg` and
//! `latency.svg`, with the machine's description and its raw `fdatasync`
//! rate measured in the same run on the same filesystem.
//!
//! Modules: [`mode`] the compared modes and what their acks mean;
//! [`process`] starting and stopping servers; [`workload`] the generic
//! producer/consumer driver; [`nats`], [`rabbit`], [`redis`] and [`spine`]
//! one peer each; [`machine`] the machine and disk baseline; [`report`]
//! ratios, verdict and the table; [`svg`] the charts.

mod machine;
mod mode;
mod nats;
mod process;
mod rabbit;
mod redis;
mod report;
mod spine;
mod svg;
mod workload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use spine_client::Endpoint;
use spine_core::ids::{MailboxId, WorkflowId};
use spine_core::time::Timestamp;

use crate::load_bench::{self, LoadArgs, Output};
use machine::Machine;
pub(crate) use mode::Mode;
use process::Server;
use report::{PeerResult, Report, RunResult, Status, Workload};

/// `spine-bench compare` options.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Measured seconds of each run
    #[arg(long, default_value_t = 10.0)]
    pub(crate) seconds: f64,
    /// Output directory (default target/compare/<UTC timestamp>)
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Modes to run, comma-separated: nats-js-default, nats-js-sync-always,
    /// rabbitmq-quorum, redis-aof-always, spine
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "nats-js-default,nats-js-sync-always,rabbitmq-quorum,redis-aof-always,spine"
    )]
    pub(crate) peers: Vec<Mode>,
    /// Producer connections
    #[arg(long, default_value_t = 4)]
    pub(crate) producers: usize,
    /// Publishes in flight per producer
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
    /// Consumer connections (1 to 3: Spine's demo directory has 3 mailboxes)
    #[arg(long, default_value_t = 2)]
    pub(crate) consumers: usize,
    /// Message size in bytes (at least 8: the first 8 carry the check key)
    #[arg(long, default_value_t = 1024)]
    pub(crate) size: usize,
    /// Offered loads of the fixed-rate runs, msgs/s, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,5000,10000,20000,50000"
    )]
    pub(crate) rates: Vec<f64>,
    /// Only the max-rate run (no fixed-rate runs, no charts' points)
    #[arg(long)]
    pub(crate) max_only: bool,
    /// Most seconds consumers get to drain after each run (what is still
    /// unreceived then counts as lost)
    #[arg(long, default_value_t = 120.0)]
    pub(crate) drain_seconds: f64,
    /// Seconds of the raw write + fdatasync baseline (0: skip)
    #[arg(long, default_value_t = 2.0)]
    pub(crate) baseline_seconds: f64,
    /// The spine binary
    #[arg(long, env = "SPINE_BIN", default_value = "target/release/spine")]
    pub(crate) spine: PathBuf,
    /// nats-server binary (default: target/compare-tools/nats/bin/nats-server, then PATH)
    #[arg(long, env = "NATS_SERVER")]
    pub(crate) nats_server: Option<PathBuf>,
    /// redis-server binary (default: PATH)
    #[arg(long, env = "REDIS_SERVER")]
    pub(crate) redis_server: Option<PathBuf>,
    /// rabbitmq-server script (default: PATH, /usr/sbin)
    #[arg(long, env = "RABBITMQ_SERVER")]
    pub(crate) rabbitmq_server: Option<PathBuf>,
    /// epmd binary for RabbitMQ (default: PATH)
    #[arg(long, env = "EPMD")]
    pub(crate) epmd: Option<PathBuf>,
    /// The command line to record in the report (the wrapper script's)
    #[arg(long, env = "COMPARE_COMMAND", hide = true)]
    pub(crate) command_line: Option<String>,
}

impl CompareArgs {
    /// Checks the options; every message names the flag.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.seconds > 0.0 && self.seconds.is_finite(),
            "--seconds must be positive"
        );
        anyhow::ensure!(self.producers >= 1, "--producers must be at least 1");
        anyhow::ensure!(
            self.producers <= 0xffff,
            "--producers must be at most 65535"
        );
        anyhow::ensure!(self.window >= 1, "--window must be at least 1");
        anyhow::ensure!(
            (1..=spine::DEMO_MAILBOXES.len()).contains(&self.consumers),
            "--consumers must be 1 to {}",
            spine::DEMO_MAILBOXES.len()
        );
        anyhow::ensure!(
            (8..=1 << 20).contains(&self.size),
            "--size must be 8 to 1048576"
        );
        anyhow::ensure!(
            !self.peers.is_empty(),
            "--peers must name at least one mode"
        );
        for r in &self.rates {
            anyhow::ensure!(
                *r > 0.0 && r.is_finite(),
                "--rates must be positive numbers"
            );
        }
        anyhow::ensure!(
            self.drain_seconds >= 0.0 && self.drain_seconds.is_finite(),
            "--drain-seconds must be 0 or more"
        );
        anyhow::ensure!(
            self.baseline_seconds >= 0.0 && self.baseline_seconds.is_finite(),
            "--baseline-seconds must be 0 or more"
        );
        Ok(())
    }

    /// The modes to run, each once, in report order.
    pub(crate) fn modes(&self) -> Vec<Mode> {
        Mode::ALL
            .into_iter()
            .filter(|m| self.peers.contains(m))
            .collect()
    }

    /// `spine-bench load`'s options for one run against `target`.
    fn load_args(&self, target: String, rate: Option<f64>) -> LoadArgs {
        LoadArgs {
            target,
            producers: self.producers,
            consumers: self.consumers,
            mailboxes: self.consumers,
            mailbox_ids: spine::DEMO_MAILBOXES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            password: "password".to_owned(),
            workflow: "SPINE_LOAD".to_owned(),
            size: self.size,
            window: self.window,
            batch: 1,
            rate,
            max: rate.is_none(),
            seconds: self.seconds,
            drain_seconds: self.drain_seconds,
            no_baseline: true,
            ca: None,
            cert: None,
            key: None,
            json: None,
            shared_key: String::new(),
            consumer_connections: 1,
            poll_ms: 100,
        }
    }
}

/// Where a tool is: the flag's path, else the first candidate that exists,
/// else `name` on `PATH` (and the sbin directories root would have).
pub(crate) fn locate(given: Option<&Path>, candidates: &[PathBuf], name: &str) -> Option<PathBuf> {
    if let Some(p) = given {
        return p.is_file().then(|| p.to_owned());
    }
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Some(p.clone());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

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

/// The binaries a mode needs, or why it cannot run.
fn binaries(args: &CompareArgs, mode: Mode) -> Result<Vec<PathBuf>, String> {
    let missing = |what: &str, flag: &str| {
        format!("{what} not found (pass {flag}, or run bench/compare.sh, which installs it)")
    };
    match mode {
        Mode::NatsDefault | Mode::NatsSyncAlways => locate(
            args.nats_server.as_deref(),
            &[nats::default_binary(Path::new("target/compare-tools"))],
            "nats-server",
        )
        .map(|p| vec![p])
        .ok_or_else(|| missing("nats-server", "--nats-server")),
        Mode::RedisAofAlways => locate(args.redis_server.as_deref(), &[], "redis-server")
            .map(|p| vec![p])
            .ok_or_else(|| missing("redis-server", "--redis-server")),
        Mode::RabbitQuorum => {
            let server = locate(args.rabbitmq_server.as_deref(), &[], "rabbitmq-server")
                .ok_or_else(|| missing("rabbitmq-server", "--rabbitmq-server"))?;
            let epmd = locate(args.epmd.as_deref(), &[], "epmd")
                .ok_or_else(|| missing("epmd", "--epmd"))?;
            Ok(vec![server, epmd])
        }
        Mode::Spine => args
            .spine
            .is_file()
            .then(|| vec![args.spine.clone()])
            .ok_or_else(|| {
                format!(
                    "{} not found (cargo build --release -p spine-actors --bin spine, or pass --spine)",
                    args.spine.display()
                )
            }),
    }
}

fn version(mode: Mode, bins: &[PathBuf]) -> Option<String> {
    let first = bins.first()?;
    match mode {
        Mode::NatsDefault | Mode::NatsSyncAlways => nats::version(first),
        Mode::RedisAofAlways => redis::version(first),
        Mode::RabbitQuorum => rabbit::version(),
        Mode::Spine => spine::version(first),
    }
}

async fn start(mode: Mode, bins: &[PathBuf], dir: &Path) -> anyhow::Result<Started> {
    let bin = |i: usize| {
        bins.get(i)
            .ok_or_else(|| anyhow::anyhow!("no binary {i} for {mode}"))
    };
    Ok(match mode {
        Mode::NatsDefault | Mode::NatsSyncAlways => {
            let (server, addr) = nats::start(bin(0)?, dir, mode == Mode::NatsSyncAlways).await?;
            let driver = nats::Nats::setup(addr).await;
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

/// How one run on a fresh server failed.
enum RunFailure {
    /// The server did not start or could not be set up.
    Start(String),
    /// It started, but the run itself failed.
    Run(String),
}

/// One run on a fresh server: a new directory `work/<mode>/<label>`,
/// start, run, stop by pid, keep its log as `logs/<mode>-<label>-*.log`,
/// remove the directory. Every run starts from an empty server, so no run
/// inherits another's backlog, stored data or background work.
async fn run_fresh(
    args: &CompareArgs,
    mode: Mode,
    bins: &[PathBuf],
    work: &Path,
    logs: &Path,
    rate: Option<f64>,
) -> Result<(RunResult, String), RunFailure> {
    let label = rate.map_or_else(|| "max".to_owned(), |r| format!("rate-{r}"));
    let dir = work.join(mode.name()).join(&label);
    let dir = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::canonicalize(&dir))
        .map_err(|e| RunFailure::Start(format!("creating {}: {e}", dir.display())))?;
    let outcome = match start(mode, bins, &dir).await {
        Err(e) => Err(RunFailure::Start(format!("failed to start: {e:#}"))),
        Ok(mut started) => {
            eprintln!(
                "compare: {mode}: {label}: started pid(s) {:?}, {} s",
                started.pids(),
                args.seconds
            );
            let run = run_once(args, &started, rate, 0).await;
            let stopped = started.stop();
            match run {
                Ok(r) => Ok((r, stopped)),
                Err(e) => Err(RunFailure::Run(format!("{label} run failed: {e:#}"))),
            }
        }
    };
    keep_logs(&dir, logs, &format!("{mode}-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir(work.join(mode.name()));
    outcome
}

/// Runs every run of one mode; never fails (a failure is its row's status).
async fn run_mode(args: &CompareArgs, mode: Mode, work: &Path, logs: &Path) -> PeerResult {
    let bins = match binaries(args, mode) {
        Ok(b) => b,
        Err(why) => return PeerResult::not_run(mode, None, why),
    };
    let version = version(mode, &bins);
    eprintln!(
        "compare: {mode}: {}",
        version.as_deref().unwrap_or("version unknown")
    );
    let mut result = PeerResult {
        status: Status::Ran,
        ..PeerResult::not_run(mode, version.clone(), String::new())
    };
    match run_fresh(args, mode, &bins, work, logs, None).await {
        Ok((r, stopped)) => {
            result.max_rate = Some(r);
            result.stopped.push(stopped);
        }
        Err(RunFailure::Start(why) | RunFailure::Run(why)) => {
            return PeerResult::not_run(mode, version, why);
        }
    }
    let max = result
        .max_rate
        .as_ref()
        .map_or(0.0, |r| r.throughput_msgs_per_s);
    if args.max_only {
        return result;
    }
    for &rate in &args.rates {
        if rate > 2.0 * max {
            result.skipped_rates.push(rate);
            continue;
        }
        match run_fresh(args, mode, &bins, work, logs, Some(rate)).await {
            Ok((r, stopped)) => {
                result.fixed_rate.push(r);
                result.stopped.push(stopped);
            }
            Err(RunFailure::Start(why) | RunFailure::Run(why)) => {
                eprintln!("compare: {mode}: at {rate}/s: {why}");
                result.failed_runs.push(format!("at {rate}/s: {why}"));
            }
        }
    }
    result
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

/// `YYYY-MM-DD HH:MM:SS` and `YYYYMMDD-HHMMSS` for now, UTC.
fn now_utc() -> (String, String) {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let c = Timestamp::from_micros(micros).to_civil();
    (
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ),
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ),
    )
}

/// Writes the four outputs into `out`.
pub(crate) fn write_outputs(report: &Report, out: &Path) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("report.json", serde_json::to_string_pretty(report)?)?;
    write("report.md", report::markdown(report))?;
    write(
        "throughput.svg",
        svg::render(&svg::throughput_chart(report)),
    )?;
    write("latency.svg", svg::render(&svg::latency_chart(report)))?;
    Ok(())
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    args.validate()?;
    let (started_utc, stamp) = now_utc();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/compare").join(stamp));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Absolute, so servers started in their own directory find their paths.
    let out = std::fs::canonicalize(&out)?;
    let work = out.join("work");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let machine = Machine::describe(&work);
    let baseline = if args.baseline_seconds > 0.0 {
        eprintln!(
            "compare: raw write + fdatasync baseline for {} s",
            args.baseline_seconds
        );
        Some(machine::fdatasync_baseline(
            &work,
            Duration::from_secs_f64(args.baseline_seconds),
        )?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut peers = Vec::new();
    for mode in args.modes() {
        let row = runtime.block_on(run_mode(&args, mode, &work, &out.join("logs")));
        if let Status::NotRun { reason } = &row.status {
            eprintln!("compare: {mode}: not run: {reason}");
        }
        peers.push(row);
    }
    let _ = std::fs::remove_dir(&work);
    let machine = Machine {
        load_average_end: machine::load_average(),
        ..machine
    };
    let verdict = report::compare(&mut peers);
    let command = args
        .command_line
        .clone()
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let report = Report {
        benchmark: "compare",
        started_utc,
        command,
        machine,
        fdatasync_baseline: baseline,
        workload: Workload {
            size: args.size,
            producers: args.producers,
            window: args.window,
            consumers: args.consumers,
            seconds: args.seconds,
            drain_seconds: args.drain_seconds,
            rates: if args.max_only {
                Vec::new()
            } else {
                args.rates.clone()
            },
        },
        peers,
        verdict,
    };
    write_outputs(&report, &out)?;
    println!("{}", report::markdown(&report));
    eprintln!("compare: wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    fn parse(argv: &[&str]) -> anyhow::Result<CompareArgs> {
        let cli = Cli::try_parse_from(std::iter::once("compare").chain(argv.iter().copied()))?;
        cli.args.validate()?;
        Ok(cli.args)
    }

    #[test]
    fn defaults_run_every_mode_with_the_issue_workload() {
        let a = parse(&[]).expect("defaults");
        assert_eq!(a.modes(), Mode::ALL.to_vec());
        assert_eq!(
            (a.producers, a.window, a.consumers, a.size),
            (4, 256, 2, 1024)
        );
        assert_eq!(a.seconds, 10.0);
        assert_eq!(a.rates, vec![1000.0, 5000.0, 10000.0, 20000.0, 50000.0]);
    }

    #[test]
    fn peers_and_rates_are_lists_and_bad_values_are_refused() {
        let a = parse(&[
            "--peers",
            "spine,redis-aof-always",
            "--rates",
            "100,200",
            "--seconds",
            "1",
        ])
        .expect("parse");
        assert_eq!(a.modes(), vec![Mode::RedisAofAlways, Mode::Spine]);
        assert_eq!(a.rates, vec![100.0, 200.0]);
        for bad in [
            &["--peers", "kafka"][..],
            &["--seconds", "0"],
            &["--consumers", "4"],
            &["--consumers", "0"],
            &["--size", "4"],
            &["--rates", "-5"],
            &["--window", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn load_args_carry_the_workload() {
        let a = parse(&["--window", "32", "--consumers", "3"]).expect("parse");
        let l = a.load_args("native://127.0.0.1:1".into(), Some(500.0));
        assert_eq!((l.window, l.consumers, l.mailboxes, l.batch), (32, 3, 3, 1));
        assert_eq!(l.rate, Some(500.0));
        assert!(l.no_baseline);
        assert!(a.load_args("x".into(), None).max);
    }

    #[test]
    fn locate_prefers_the_flag_and_refuses_a_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "").expect("write");
        assert_eq!(locate(Some(&tool), &[], "sh"), Some(tool.clone()));
        assert_eq!(locate(Some(&dir.path().join("nope")), &[], "sh"), None);
        assert_eq!(
            locate(None, std::slice::from_ref(&tool), "no-such-tool"),
            Some(tool)
        );
        assert_eq!(locate(None, &[], "no-such-tool-anywhere-xyz"), None);
    }

    #[tokio::test]
    async fn a_missing_peer_binary_is_a_not_run_row() {
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
            let row = run_mode(&a, mode, &dir.path().join("work"), &dir.path().join("logs")).await;
            match &row.status {
                Status::NotRun { reason } => assert!(reason.contains("not found"), "{reason}"),
                Status::Ran => panic!("{mode} ran without its binary"),
            }
            assert!(row.max_rate.is_none());
        }
    }

    #[tokio::test]
    async fn a_peer_that_fails_to_start_is_a_not_run_row_with_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("redis-server");
        std::fs::write(&fake, "#!/bin/sh\necho cannot start: no disk\nexit 1\n").expect("write");
        let mut perms = std::fs::metadata(&fake).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).expect("chmod");
        let mut a = parse(&["--peers", "redis-aof-always"]).expect("parse");
        a.redis_server = Some(fake);
        let logs = dir.path().join("logs");
        let row = run_mode(&a, Mode::RedisAofAlways, &dir.path().join("work"), &logs).await;
        match &row.status {
            Status::NotRun { reason } => {
                assert!(reason.starts_with("failed to start"), "{reason}");
                assert!(reason.contains("no disk"), "{reason}");
            }
            Status::Ran => panic!("ran"),
        }
        assert!(logs.join("redis-aof-always-max-server.log").is_file());
        assert!(
            !dir.path().join("work/redis-aof-always").exists(),
            "data removed"
        );
    }
}
