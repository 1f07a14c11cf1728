//! `spine-sim run`: load a scenario, build its world from the seed, drive
//! it (deterministic or live), write the reports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use spine_core::time::Timestamp;

use crate::driver::deterministic;
use crate::driver::live::{self, LiveConfig};
use crate::driver::{DriverConfig, Observe, RunResult, Storage};
use crate::model;
use crate::report::{write_outcome, InvariantResult, Mode, Outcome, Progress, Recorder, Totals};
use crate::scenario::Scenario;

/// How to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunMode {
    /// In this process on a virtual clock: reproducible from the seed.
    Deterministic,
    /// Against a running node over the network (`--target`).
    Live,
}

/// Where a deterministic run keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// Real files (durable): every fault kind is possible.
    Disk,
    /// Memory: faster; crash and fsync faults are skipped.
    Memory,
}

/// `spine-sim run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (see sim/scenarios/README.md).
    pub scenario: PathBuf,
    /// Seed of everything random in the run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (report.json, report.md, charts); default
    /// sim-out/<scenario>-seed<seed>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Deterministic (in-process, virtual clock) or live (network).
    #[arg(long, value_enum, default_value_t = RunMode::Deterministic)]
    pub mode: RunMode,
    /// Deterministic mode: where the node's log lives.
    #[arg(long, value_enum, default_value_t = StorageKind::Disk)]
    pub storage: StorageKind,
    /// Deterministic mode: keep the node's data here (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Live mode: the node, native://HOST:PORT, natives://HOST:PORT or quic://HOST:PORT.
    #[arg(long, default_value = "native://127.0.0.1:7701")]
    pub target: String,
    /// Live mode: CA certificate for TLS and QUIC targets.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Live mode: virtual seconds per real second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// Live mode: most sends and polls in flight.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Live mode: most client connections at once.
    #[arg(long, default_value_t = 512)]
    pub max_clients: usize,
    /// Live mode: seconds to keep collecting after the last event.
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,
    /// Width of the report's time buckets, virtual seconds (default: about
    /// 200 buckets over the run).
    #[arg(long)]
    pub bucket_secs: Option<u64>,
    /// Deterministic mode: also write the event log, line by line, here
    /// (to compare two runs).
    #[arg(long)]
    pub event_log: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// The report and the progress display, fed by the driver.
struct Sink {
    recorder: Recorder,
    progress: Progress,
}

impl Observe for Sink {
    fn send_accepted(&mut self, at: Timestamp, wall: Duration, bytes: u64) {
        self.recorder.send_accepted(at, wall, bytes);
    }
    fn send_refused(&mut self, at: Timestamp, code: &str) {
        self.recorder.send_refused(at, code);
    }
    fn delivered(&mut self, at: Timestamp, end_to_end: Duration) {
        self.recorder.delivered(at, end_to_end);
    }
    fn expired(&mut self, at: Timestamp, n: u64) {
        self.recorder.expired(at, n);
    }
    fn report_received(&mut self, at: Timestamp) {
        self.recorder.report_received(at);
    }
    fn service_requests(&mut self, at: Timestamp, ok: u64, failed: &BTreeMap<String, u64>) {
        self.recorder.service_requests(at, ok, failed);
    }
    fn queue_depth(&mut self, at: Timestamp, deepest: usize, wal: usize) {
        self.recorder.queue_depth(at, deepest, wal);
    }
    fn wal(&mut self, at: Timestamp, bytes: u64, fsyncs: u64) {
        self.recorder.wal(at, bytes, fsyncs);
    }
    fn memory(&mut self, at: Timestamp, rss: u64) {
        self.recorder.memory(at, rss);
    }
    fn fault(&mut self, at: Timestamp, what: &str) {
        self.recorder.fault(at, what);
    }
    fn progress(&mut self, events: u64, at: Timestamp) {
        self.progress.update(events, at);
    }
}

/// What `run` hands back to `main`.
#[derive(Debug)]
pub struct Finished {
    /// The outcome (also in report.json).
    pub outcome: Outcome,
    /// Where the reports went.
    pub dir: PathBuf,
    /// The last events, for a failed invariant.
    pub tail: Vec<String>,
}

/// Runs a scenario and writes its reports.
pub async fn run(args: &RunArgs) -> anyhow::Result<Finished> {
    let scenario = Scenario::load(&args.scenario)?;
    let population = model::population(&scenario, args.seed);
    let schedule = model::schedule(&scenario, &population, args.seed);
    let estimate = schedule.estimated_events();
    let bucket = Duration::from_secs(
        args.bucket_secs
            .unwrap_or((scenario.duration / 200).max(1))
            .max(1),
    );
    let mut sink = Sink {
        recorder: Recorder::new(scenario.start, bucket),
        progress: if args.quiet {
            Progress::hidden()
        } else {
            Progress::new(estimate, scenario.start)
        },
    };
    let result: RunResult = match args.mode {
        RunMode::Deterministic => {
            let directory = model::directory(&population, args.seed)?;
            let config = DriverConfig {
                seed: args.seed,
                start: scenario.start,
                partitions: scenario.node.partitions,
                inbox_expiry: Duration::from_secs(scenario.node.inbox_expiry),
                memory_limit: scenario.node.memory_limit_bytes,
                storage: match args.storage {
                    StorageKind::Disk => Storage::Disk(args.data_dir.clone()),
                    StorageKind::Memory => Storage::Memory,
                },
                fsync_recovery: Duration::from_secs(scenario.node.expiry_tick.max(5)),
                event_log: args.event_log.clone(),
                service_requests_per_send: scenario.node.service_requests_per_send,
            };
            deterministic::run(&config, &population, directory, schedule, &mut sink).await?
        }
        RunMode::Live => {
            let config = LiveConfig {
                endpoint: args.target.clone(),
                ca: args.ca.clone(),
                speed: Some(args.speed).filter(|s| *s > 0.0),
                concurrency: args.concurrency.max(1),
                max_clients: args.max_clients.max(1),
                seed: args.seed,
                start: scenario.start,
                drain: Duration::from_secs(args.drain_secs),
                service_requests_per_send: scenario.node.service_requests_per_send,
            };
            live::run(&config, &population, schedule, &mut sink).await?
        }
    };
    sink.progress.finish();
    sink.recorder
        .set_end(scenario.start.saturating_add(result.virtual_duration));
    let outcome = Outcome {
        scenario: scenario.name.clone(),
        seed: args.seed,
        mode: match args.mode {
            RunMode::Deterministic => Mode::Deterministic,
            RunMode::Live => Mode::Live,
        },
        scale: scenario.scale,
        event_log_hash: result.event_log_hash.clone(),
        events_processed: result.scenario_events,
        virtual_duration: result.virtual_duration,
        wall_duration: result.wall_duration,
        totals: Totals {
            sent: result.accepted,
            refused: result.refused.clone(),
            delivered: result.delivered,
            expired: result.expired,
            reports: result.reports,
            lost: result.lost,
            misdelivered: result.misdelivered,
            out_of_order: result.out_of_order,
            services: sink.recorder.service_totals(),
        },
        invariants: result
            .verdicts
            .iter()
            .map(|v| InvariantResult {
                name: v.name.to_string(),
                ok: v.ok,
                detail: v.detail.clone(),
            })
            .collect(),
    };
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("sim-out").join(format!("{}-seed{}", scenario.name, args.seed))
    });
    write_outcome(&dir, &outcome, &sink.recorder)?;
    Ok(Finished {
        outcome,
        dir,
        tail: result.tail,
    })
}
