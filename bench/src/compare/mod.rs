//! `spine-bench compare`: Spine beside the brokers planners already know
//! (NATS JetStream, RabbitMQ quorum queues, Redis Streams), on the same
//! durable workload, on this machine, in one run.
//!
//! For each mode in `--peers` it runs a max-rate run and fixed-rate runs
//! at each `--rates` offered load (those over twice the mode's max rate are
//! skipped). Every run gets a fresh server: started on 127.0.0.1 in a new
//! directory under `--out`, waited for until it listens, stopped by the
//! pid it started, its data removed; so no run inherits another's backlog,
//! stored data or background work (compaction, snapshots). A mode whose
//! binary is missing or whose server fails to start or set up is a
//! "not run: <why>" row, never an error.
//! Then it writes `report.json`, `report.md`, `throughput.svg` and
//! `latency.svg`, with the machine's description and its raw `fdatasync`
//! rate measured in the same run on the same filesystem.
//!
//! Modules: [`options`] the flags and where binaries are found; [`runner`]
//! one mode's runs on fresh servers; [`mode`] the compared modes and what
//! their acks mean; [`process`] starting and stopping servers;
//! [`workload`] the generic producer/consumer driver; [`nats`], [`rabbit`],
//! [`redis`] and [`spine`] one peer each; [`machine`] the machine and disk
//! baseline; [`report`] ratios, verdict and the table; [`svg`] the charts.

mod machine;
mod mode;
pub(crate) mod nats;
pub(crate) mod options;
pub(crate) mod process;
mod rabbit;
mod redis;
mod report;
mod runner;
mod spine;
mod svg;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use spine_core::time::Timestamp;

use machine::Machine;
pub use options::CompareArgs;
use report::{Report, Status, Workload};

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
        let row = runtime.block_on(runner::run_mode(&args, mode, &work, &out.join("logs")));
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
