//! `spine-sim plan`: how many nodes a target rate needs, measured on this
//! machine.
//!
//! [`plan`] ramps open-loop load against a real, durable node in this
//! process ([`load`]), searching ([`ramp`]) for the highest rate it sustains
//! within a p99 latency bound; it measures the disk's raw `fdatasync` rate
//! and describes the machine ([`machine`]) so the figure reads as a ratio;
//! then it sizes the target ([`sizing`]): nodes, partitions, disk and
//! network (the latter from the protocol's own encoder, [`wire`]).
//! [`write()`] puts `plan.json` and `plan.md` ([`render`]) in a directory.
//!
//! Invariants and why:
//! - Inputs are checked before anything runs ([`PlanArgs::validate`]);
//!   every refusal names the option and the accepted range.
//! - The run is bounded: a step starts only if it fits in `--max-seconds`
//!   (estimated as its window plus [`STEP_OVERHEAD`]); a failing step adds
//!   at most its grace (`4 × p99` clamped to 1–10 s) and the drain limit.
//!   The report says when the budget, not the search, ended it.
//! - A run that sustained nothing still yields a report (the step table
//!   says why), with `sizing: null` and `sizing_error` stating why no
//!   figure can be given; only failures to run at all (no data directory,
//!   the node not starting) are errors of [`plan`].
//! - The node is always shut down (its log synced) and its scratch data
//!   directory removed, also when a step fails.
//! - The search, the verdicts and the arithmetic are pure and unit-tested;
//!   the only untested-by-construction figures are the measurements
//!   themselves, which the report labels with the machine and its noise
//!   (other processes' CPU per step).

pub mod error;
pub mod load;
pub mod machine;
pub mod ramp;
pub mod render;
pub mod sizing;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use spine_actors::node::RuntimeConfig;

pub use error::PlanError;
pub use machine::{DiskBaseline, Machine};
pub use ramp::{Phase, StopReason};
pub use sizing::{RatePoint, Sizing, SizingInput};
pub use wire::WireBytes;

use error::check;
use load::{Latency, Rig, RigConfig, StepMeasure, StepSpec};
use ramp::{judge, Criteria, Next, Ramp, RampConfig, StepFigures};

/// A step passes only if it achieved at least this fraction of the offered
/// rate.
pub const MIN_ACHIEVED_FRACTION: f64 = 0.95;

/// A step passes only if the recipients were at most this many seconds'
/// worth of messages behind when it ended.
pub const MAX_BACKLOG_SECONDS: f64 = 1.0;

/// Bisection stops once the bracket is within this fraction of the pass.
pub const TOLERANCE: f64 = 0.02;

/// Time a step costs beyond its window (spawning, the tail, draining),
/// for the budget check.
pub const STEP_OVERHEAD: Duration = Duration::from_secs(1);

/// How long the raw `fdatasync` baseline runs.
pub const BASELINE: Duration = Duration::from_secs(1);

/// `spine-sim plan`'s options.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct PlanArgs {
    /// Messages per second to plan for, all nodes together.
    #[arg(long)]
    pub target_rate: f64,
    /// The latency bound: p99 from a send's scheduled time to its durable
    /// acknowledgement, in milliseconds.
    #[arg(long)]
    pub p99_ms: f64,
    /// Write plan.json and plan.md into this directory.
    #[arg(long, default_value = "plan-out")]
    pub out: PathBuf,
    /// Seconds each step offers its rate for.
    #[arg(long, default_value_t = 3.0)]
    pub step_seconds: f64,
    /// Fraction of each node's measured capacity kept free (0 to below 1).
    #[arg(long, default_value_t = 0.3)]
    pub headroom: f64,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Partition actors of the measured node (and of each planned node).
    #[arg(long, default_value_t = RuntimeConfig::default().partitions)]
    pub partitions: u32,
    /// Directory on the disk to measure: a fresh subdirectory is made in it
    /// and removed afterwards (default: the system temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Upper bound on the whole run's time, seconds (steps that would not
    /// fit are not started).
    #[arg(long, default_value_t = 60.0)]
    pub max_seconds: f64,
    /// First rate tried, msgs/s.
    #[arg(long, default_value_t = 1000)]
    pub start_rate: u64,
    /// Rate factor between steps while bracketing.
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// Bisection steps between the highest pass and the lowest failure.
    #[arg(long, default_value_t = 2)]
    pub refine_steps: u32,
    /// Lowest rate tried when even the start rate fails, msgs/s.
    #[arg(long, default_value_t = 1)]
    pub min_rate: u64,
    /// Highest rate tried, msgs/s.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_rate: u64,
    /// Most sends in flight (open-loop senders).
    #[arg(long, default_value_t = 2048)]
    pub senders: usize,
    /// Mailboxes in the generated directory (senders and recipients).
    #[arg(long, default_value_t = 200)]
    pub mailboxes: usize,
    /// Consumer tasks polling, downloading and acknowledging.
    #[arg(long, default_value_t = 8)]
    pub consumers: usize,
    /// How often a consumer polls each of its mailboxes, milliseconds.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// Unmeasured seconds at the start rate before the first step.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// Seed of the directory's salts and the node's message-id randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// A wrapper so [`PlanArgs::parse_from`] can use clap (and its defaults).
#[derive(Debug, clap::Parser)]
#[command(name = "plan")]
struct PlanCli {
    #[command(flatten)]
    args: PlanArgs,
}

impl PlanArgs {
    /// Parses options as on the command line (`["--target-rate", "100",
    /// ...]`, without a program name), defaults applied.
    pub fn parse_from<I, T>(args: I) -> Result<PlanArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("plan"))
            .chain(args.into_iter().map(Into::into));
        Ok(PlanCli::try_parse_from(argv)?.args)
    }

    /// Checks every option; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), PlanError> {
        check(
            self.target_rate.is_finite() && self.target_rate > 0.0,
            "target-rate",
            self.target_rate,
            "a positive number of messages per second",
        )?;
        check(
            self.p99_ms.is_finite() && self.p99_ms > 0.0 && self.p99_ms <= 3_600_000.0,
            "p99-ms",
            self.p99_ms,
            "a positive number of milliseconds, at most 3600000",
        )?;
        check(
            self.step_seconds.is_finite() && (0.1..=600.0).contains(&self.step_seconds),
            "step-seconds",
            self.step_seconds,
            "0.1 to 600 seconds",
        )?;
        check(
            self.headroom.is_finite() && (0.0..1.0).contains(&self.headroom),
            "headroom",
            self.headroom,
            "a fraction from 0 to below 1 (0.3 keeps 30% of each node free)",
        )?;
        check(
            (1..=16 << 20).contains(&self.size),
            "size",
            self.size,
            "1 to 16777216 bytes",
        )?;
        check(
            (1..=4096).contains(&self.partitions),
            "partitions",
            self.partitions,
            "1 to 4096",
        )?;
        check(
            self.max_seconds.is_finite() && self.max_seconds > 0.0 && self.max_seconds <= 86_400.0,
            "max-seconds",
            self.max_seconds,
            "a positive number of seconds, at most 86400",
        )?;
        check(
            (1..=10_000_000).contains(&self.max_rate),
            "max-rate",
            self.max_rate,
            "1 to 10000000 msgs/s",
        )?;
        self.ramp_config().validate()?;
        check(
            (1..=100_000).contains(&self.senders),
            "senders",
            self.senders,
            "1 to 100000",
        )?;
        check(
            (1..=100_000).contains(&self.mailboxes),
            "mailboxes",
            self.mailboxes,
            "1 to 100000",
        )?;
        check(
            (1..=self.mailboxes.min(4096)).contains(&self.consumers),
            "consumers",
            self.consumers,
            "1 to 4096, and no more than --mailboxes",
        )?;
        check(
            (1..=60_000).contains(&self.poll_ms),
            "poll-ms",
            self.poll_ms,
            "1 to 60000 milliseconds",
        )?;
        check(
            self.warmup_seconds.is_finite() && (0.0..=60.0).contains(&self.warmup_seconds),
            "warmup-seconds",
            self.warmup_seconds,
            "0 to 60 seconds",
        )
    }

    fn ramp_config(&self) -> RampConfig {
        RampConfig {
            start_rate: self.start_rate,
            growth: self.growth,
            min_rate: self.min_rate,
            max_rate: self.max_rate,
            refine_steps: self.refine_steps,
            tolerance: TOLERANCE,
        }
    }

    fn bound(&self) -> Duration {
        Duration::from_secs_f64(self.p99_ms / 1000.0)
    }

    /// How long after a step's window sends may still start or finish.
    fn grace(&self) -> Duration {
        (self.bound() * 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }
}

/// One step of the search, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 1-based position in the search.
    pub index: usize,
    /// Why this rate.
    pub phase: Phase,
    /// Offered rate, msgs/s.
    pub offered_per_s: u64,
    /// Sending window, seconds.
    pub seconds: f64,
    /// Messages scheduled.
    pub scheduled: u64,
    /// Sends answered with success.
    pub accepted: u64,
    /// Answers by the end of the window plus the bound, per second of window.
    pub achieved_per_s: f64,
    /// Refused sends plus timed-out ones.
    pub errors: u64,
    /// Refused sends by error code.
    pub error_codes: BTreeMap<String, u64>,
    /// Sends not answered by the step's hard stop.
    pub timed_out: u64,
    /// Slots never started (the hard stop came first).
    pub unsent: u64,
    /// Scheduled time to durable acknowledgement.
    pub latency: Latency,
    /// Log bytes written from the step's start until it drained.
    pub log_bytes: u64,
    /// Log bytes per accepted message (its record and its acknowledgement's).
    pub log_bytes_per_msg: Option<f64>,
    /// `fdatasync` groups per second during the window.
    pub fsyncs_per_s: f64,
    /// Accepted messages per `fdatasync` group.
    pub msgs_per_fsync: Option<f64>,
    /// Messages downloaded and acknowledged during the step.
    pub collected: u64,
    /// Accepted but uncollected at the end of the window.
    pub backlog_at_end: u64,
    /// Failed collections.
    pub consumer_errors: u64,
    /// Busiest partition's queue at the end of the window.
    pub deepest_partition_queue: usize,
    /// Log records queued or in flight at the end of the window.
    pub wal_in_flight: usize,
    /// Cores this process (node, senders and consumers) kept busy.
    pub cpu_cores: Option<f64>,
    /// Cores the rest of the machine kept busy: the noise.
    pub other_cores: Option<f64>,
    /// Seconds until collected and idle after sending ended.
    pub drain_s: f64,
    /// Whether that happened within the drain limit.
    pub drained: bool,
    /// Met the bound.
    pub passed: bool,
    /// Why not, one line per criterion missed.
    pub reasons: Vec<String>,
}

/// Per-message costs, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Messages accepted over all steps.
    pub messages: u64,
    /// Log bytes written over all steps.
    pub log_bytes: u64,
    /// Log bytes per message (its record and its acknowledgement's).
    pub log_bytes_per_msg: Option<f64>,
    /// `fdatasync`s per second at the highest passing step.
    pub fsyncs_per_s_at_max: Option<f64>,
    /// Messages per `fdatasync` at the highest passing step.
    pub msgs_per_fsync_at_max: Option<f64>,
    /// The sustained rate over the disk's raw `fdatasync` rate: messages
    /// made durable per raw sync the disk can do.
    pub max_rate_per_raw_fdatasync: Option<f64>,
    /// `fdatasync`s per second at the highest passing step over the raw
    /// rate: how much of the disk's sync capacity the node used.
    pub fsync_share_of_raw_at_max: Option<f64>,
    /// CPU time of this process per message at the highest passing step,
    /// µs (node, senders and consumers together).
    pub cpu_us_per_msg_at_max: Option<f64>,
    /// Native-protocol bytes per message.
    pub wire: Option<WireBytes>,
}

/// Everything a plan found (`plan.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    /// Format version of this document.
    pub format: u32,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// The options it ran with.
    pub settings: PlanArgs,
    /// The machine it ran on.
    pub machine: Machine,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// Why the search ended.
    pub stop_reason: StopReason,
    /// The highest rate sustained within the bound (achieved msgs/s at the
    /// highest passing step).
    pub max_rate: Option<f64>,
    /// The offered rate of that step.
    pub max_rate_offered: Option<u64>,
    /// The lowest offered rate that failed, if any.
    pub lowest_failing_rate: Option<u64>,
    /// Per-message costs.
    pub measured: Measured,
    /// What the target needs; `None` when it cannot be sized.
    pub sizing: Option<Sizing>,
    /// Why there is no sizing.
    pub sizing_error: Option<String>,
    /// The answer in one paragraph.
    pub conclusion: String,
    /// What the figures assume, stated plainly.
    pub assumptions: Vec<String>,
}

/// Runs a plan (see the module documentation), reporting each step on
/// standard error as it completes.
pub async fn plan(args: &PlanArgs) -> anyhow::Result<PlanReport> {
    plan_with_progress(args, &mut |s: &StepReport| {
        eprintln!("plan: {}", render::step_line(s));
    })
    .await
}

/// [`plan`], calling `progress` after each step instead of printing.
pub async fn plan_with_progress(
    args: &PlanArgs,
    progress: &mut dyn FnMut(&StepReport),
) -> anyhow::Result<PlanReport> {
    args.validate()?;
    let clock = Instant::now();
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut machine = machine::describe();
    let base = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("spine-plan-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a scratch directory in {}", base.display()))?;
    let baseline_dir = work.path().to_path_buf();
    let disk =
        tokio::task::spawn_blocking(move || machine::fdatasync_baseline(&baseline_dir, BASELINE))
            .await
            .context("the fdatasync baseline task failed")?
            .with_context(|| format!("measuring fdatasync in {}", work.path().display()))?;
    machine.disk = Some(disk);
    let rig = Rig::start(
        &RigConfig {
            partitions: args.partitions,
            mailboxes: args.mailboxes,
            size: args.size,
            senders: args.senders,
            consumers: args.consumers,
            poll: Duration::from_millis(args.poll_ms),
            seed: args.seed,
        },
        work.path().join("node"),
    )
    .await?;
    let searched = search(&rig, args, clock, progress).await;
    let sample = rig.sample_envelope();
    let stopped = rig.stop().await;
    let (steps, ramp) = searched?;
    stopped?;
    drop(work);
    let wire = sample.and_then(|e| wire::wire_bytes(&e, args.size).ok());
    let mut report = summarise(args, machine, steps, &ramp, wire);
    report.started_unix_s = started_unix_s;
    report.elapsed_s = clock.elapsed().as_secs_f64();
    Ok(report)
}

/// The warm-up and the steps the ramp asks for, within the time budget.
async fn search(
    rig: &Rig,
    args: &PlanArgs,
    clock: Instant,
    progress: &mut dyn FnMut(&StepReport),
) -> anyhow::Result<(Vec<StepReport>, Ramp)> {
    let budget = Duration::from_secs_f64(args.max_seconds);
    let fits =
        |seconds: f64| clock.elapsed() + Duration::from_secs_f64(seconds) + STEP_OVERHEAD <= budget;
    let spec = |rate: u64, seconds: f64| StepSpec {
        rate,
        seconds,
        allowance: args.bound(),
        grace: args.grace(),
    };
    if args.warmup_seconds > 0.0 && fits(args.warmup_seconds + args.step_seconds) {
        rig.step(spec(args.start_rate, args.warmup_seconds)).await?;
    }
    let criteria = Criteria {
        p99_limit_us: (args.p99_ms * 1000.0).round() as u64,
        min_achieved_fraction: MIN_ACHIEVED_FRACTION,
        max_backlog_seconds: MAX_BACKLOG_SECONDS,
    };
    let mut ramp = Ramp::new(args.ramp_config())?;
    let mut steps = Vec::new();
    while let Next::Run { rate, phase } = ramp.next() {
        if !fits(args.step_seconds) {
            ramp.stop(StopReason::TimeBudget);
            break;
        }
        let m = rig.step(spec(rate, args.step_seconds)).await?;
        let report = step_report(steps.len() + 1, phase, &m, &criteria);
        ramp.record(report.passed);
        progress(&report);
        steps.push(report);
    }
    Ok((steps, ramp))
}

fn step_report(index: usize, phase: Phase, m: &StepMeasure, criteria: &Criteria) -> StepReport {
    let seconds = m.spec.seconds;
    let achieved_per_s = m.accepted_in_time as f64 / seconds;
    let refused: u64 = m.errors.values().sum();
    let errors = refused + m.timed_out;
    let verdict = judge(
        &StepFigures {
            offered_per_s: m.spec.rate as f64,
            achieved_per_s,
            p99_us: m.p99_us,
            errors,
            backlog: m.backlog_at_end,
        },
        criteria,
    );
    let fsyncs_per_s = m.fsyncs_in_window as f64 / seconds;
    StepReport {
        index,
        phase,
        offered_per_s: m.spec.rate,
        seconds,
        scheduled: m.scheduled,
        accepted: m.accepted,
        achieved_per_s,
        errors,
        error_codes: m.errors.clone(),
        timed_out: m.timed_out,
        unsent: m.unsent,
        latency: m.latency.clone(),
        log_bytes: m.log_bytes,
        log_bytes_per_msg: (m.accepted > 0).then(|| m.log_bytes as f64 / m.accepted as f64),
        fsyncs_per_s,
        msgs_per_fsync: (m.fsyncs_in_window > 0)
            .then(|| m.accepted as f64 / m.fsyncs_in_window as f64),
        collected: m.collected,
        backlog_at_end: m.backlog_at_end,
        consumer_errors: m.consumer_errors,
        deepest_partition_queue: m.deepest_partition_queue,
        wal_in_flight: m.wal_in_flight,
        cpu_cores: m.cpu_cores,
        other_cores: m.other_cores,
        drain_s: m.drain_s,
        drained: m.drained,
        passed: verdict.passed,
        reasons: verdict.reasons,
    }
}

/// Everything after the measurements: pure.
fn summarise(
    args: &PlanArgs,
    machine: Machine,
    steps: Vec<StepReport>,
    ramp: &Ramp,
    wire: Option<WireBytes>,
) -> PlanReport {
    let stop_reason = match ramp.next() {
        Next::Done(reason) => reason,
        // The search loop only ends when done or out of time.
        Next::Run { .. } => StopReason::TimeBudget,
    };
    let best = steps
        .iter()
        .filter(|s| s.passed)
        .max_by_key(|s| s.offered_per_s);
    let max_rate = best.map(|s| s.achieved_per_s);
    let messages: u64 = steps.iter().map(|s| s.accepted).sum();
    let log_bytes: u64 = steps.iter().map(|s| s.log_bytes).sum();
    let log_bytes_per_msg = (messages > 0).then(|| log_bytes as f64 / messages as f64);
    let raw = machine
        .disk
        .as_ref()
        .map(|d| d.fdatasync_per_s)
        .filter(|r| *r > 0.0);
    let measured = Measured {
        messages,
        log_bytes,
        log_bytes_per_msg,
        fsyncs_per_s_at_max: best.map(|s| s.fsyncs_per_s),
        msgs_per_fsync_at_max: best.and_then(|s| s.msgs_per_fsync),
        max_rate_per_raw_fdatasync: max_rate.zip(raw).map(|(m, r)| m / r),
        fsync_share_of_raw_at_max: best.map(|s| s.fsyncs_per_s).zip(raw).map(|(f, r)| f / r),
        cpu_us_per_msg_at_max: best.and_then(|s| {
            let cores = s.cpu_cores?;
            (s.achieved_per_s > 0.0).then(|| cores / s.achieved_per_s * 1e6)
        }),
        wire,
    };
    let input = SizingInput {
        target_rate: args.target_rate,
        p99_ms: args.p99_ms,
        max_rate,
        lowest_rate_tried: steps.iter().map(|s| s.offered_per_s).min(),
        headroom: args.headroom,
        partitions_per_node: args.partitions,
        log_bytes_per_msg,
        fsync_curve: steps
            .iter()
            .filter(|s| s.passed)
            .map(|s| RatePoint {
                rate: s.achieved_per_s,
                per_s: s.fsyncs_per_s,
            })
            .collect(),
        raw_fsyncs_per_s: raw,
        wire_in_per_msg: measured.wire.as_ref().map(|w| w.in_per_msg as f64),
        wire_out_per_msg: measured.wire.as_ref().map(|w| w.out_per_msg as f64),
    };
    let (sizing, sizing_error) = match sizing::size(&input) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut report = PlanReport {
        format: 1,
        started_unix_s: 0,
        elapsed_s: 0.0,
        settings: args.clone(),
        machine,
        stop_reason,
        max_rate,
        max_rate_offered: best.map(|s| s.offered_per_s),
        lowest_failing_rate: ramp.lowest_fail(),
        measured,
        sizing,
        sizing_error,
        conclusion: String::new(),
        assumptions: Vec::new(),
        steps,
    };
    report.conclusion = render::conclusion(&report);
    report.assumptions = render::assumptions(&report);
    report
}

/// Writes `plan.json` and `plan.md` into `dir` (created if missing).
pub fn write(dir: &Path, report: &PlanReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(report).context("encoding plan.json")?;
    let path = dir.join("plan.json");
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join("plan.md");
    std::fs::write(&path, render::markdown(report))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
