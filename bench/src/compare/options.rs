//! `spine-bench compare`'s options, their checks, and where each mode's
//! binaries are found.
//!
//! Invariants: [`CompareArgs::validate`] rejects every value the run could
//! not honour, naming the flag; a binary that is not found is `Err(why)`
//! from [`binaries`] (the mode's "not run" reason), never a failure of the
//! whole run.

use std::path::{Path, PathBuf};

use clap::Args;

use super::mode::Mode;
use super::{nats, spine};
use crate::load_bench::LoadArgs;

/// `spine-bench compare` options.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Measured seconds of each run
    #[arg(long, default_value_t = 10.0)]
    pub(crate) seconds: f64,
    /// Max-rate rounds: each runs every mode once, interleaved; the report
    /// gives medians over the rounds
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: u32,
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
    /// Spine only: most queued sends one connection packs into a SEND_BATCH
    /// (the client's `coalesce_sends`; 1: one SEND per message). Each
    /// message is still acknowledged on its own once durable.
    #[arg(long, default_value_t = spine_client::DEFAULT_COALESCE_SENDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) coalesce_sends: usize,
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
    /// Only the max-rate rounds (no fixed-rate runs, no charts' points)
    #[arg(long)]
    pub(crate) max_only: bool,
    /// Most seconds consumers get to drain after each run (what is still
    /// unreceived then counts as lost)
    #[arg(long, default_value_t = 120.0)]
    pub(crate) drain_seconds: f64,
    /// Seconds of the raw write + fdatasync baseline at the start of each
    /// round (0: skip; otherwise each mode also gets up to 1 s of it just
    /// before its max-rate run in each round)
    #[arg(long, default_value_t = 2.0)]
    pub(crate) baseline_seconds: f64,
    /// NATS stream retention: work-queue (an ack deletes the message: a
    /// queue, like the other peers) or limits (messages kept after the ack)
    #[arg(long, value_enum, default_value = "work-queue")]
    pub(crate) nats_retention: nats::Retention,
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
        anyhow::ensure!(self.rounds >= 1, "--rounds must be at least 1");
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
    pub(crate) fn load_args(&self, target: String, rate: Option<f64>) -> LoadArgs {
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
            coalesce_sends: self.coalesce_sends,
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
            requests_per_send: 0,
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

/// The binaries a mode needs, or why it cannot run.
pub(crate) fn binaries(args: &CompareArgs, mode: Mode) -> Result<Vec<PathBuf>, String> {
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

#[cfg(test)]
pub(crate) mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    /// Parses and validates `compare ARGV`.
    pub(crate) fn parse(argv: &[&str]) -> anyhow::Result<CompareArgs> {
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
        assert_eq!(a.rounds, 3);
        assert_eq!(a.rates, vec![1000.0, 5000.0, 10000.0, 20000.0, 50000.0]);
        assert_eq!(a.nats_retention, nats::Retention::WorkQueue);
        let l = parse(&["--nats-retention", "limits"]).expect("limits");
        assert_eq!(l.nats_retention, nats::Retention::Limits);
        assert!(parse(&["--nats-retention", "interest"]).is_err());
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
            &["--rounds", "-1"],
            &["--rounds", "two"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rounds_must_be_at_least_one_and_the_error_names_the_flag() {
        let err = parse(&["--rounds", "0"]).expect_err("zero rounds");
        assert_eq!(err.to_string(), "--rounds must be at least 1");
        assert_eq!(parse(&["--rounds", "1"]).expect("one").rounds, 1);
        assert_eq!(parse(&["--rounds", "5"]).expect("five").rounds, 5);
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
}
