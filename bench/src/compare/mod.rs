//! `spine-bench compare`: Spine beside the brokers planners already know
//! (NATS JetStream, RabbitMQ quorum queues, Redis Streams), on the same
//! durable workload, on this machine, in one run.
//!
//! It runs `--rounds` rounds; each round measures the raw disk baseline,
//! then every mode in `--peers`' max-rate run, one mode after another, so
//! drift on a shared machine hits every mode alike. The report gives each
//! mode's median throughput and latencies with the range over the rounds,
//! and Spine's ratio to each peer as the median of the per-round ratios.
//! After the rounds, each mode gets one fixed-rate run at each `--rates`
//! offered load (those over twice its median max rate are skipped). Every
//! run gets a fresh server: started on 127.0.0.1 in a new directory under
//! `--out`, waited for until it listens, stopped by the pid it started,
//! its data removed; so no run inherits another's backlog, stored data or
//! background work (compaction, snapshots). A mode whose binary is missing
//! or whose server never starts is a "not run: <why>" row, never an error.
//! Then it writes `report.json` (every round's figures and the medians),
//! `report.md`, `throughput.svg` and `latency.svg`, with the machine's
//! description.
//!
//! Modules: [`options`] the flags and where binaries are found;
//! [`schedule`] the rounds and the order of runs; [`runner`] one run on a
//! fresh server; [`mode`] the compared modes and what their acks mean;
//! [`process`] starting and stopping servers; [`workload`] the generic
//! producer/consumer driver; [`nats`], [`rabbit`], [`redis`] and [`spine`]
//! one peer each; [`machine`] the machine and disk baseline; [`report`]
//! the data model; [`medians`] the arithmetic over rounds; [`verdict`]
//! per-round ratios and the verdict; [`markdown`] `report.md`; [`svg`] the
//! charts.

mod machine;
mod markdown;
mod medians;
mod mode;
pub(crate) mod nats;
pub(crate) mod options;
pub(crate) mod process;
mod rabbit;
mod redis;
mod report;
mod runner;
mod schedule;
mod spine;
mod svg;
mod verdict;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use spine_core::time::Timestamp;

use machine::Machine;
pub use options::CompareArgs;
use report::{Report, Workload};

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
    write("report.md", markdown::markdown(report))?;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut peers, baselines) = schedule::run_all(&args, &runtime, &work, &out.join("logs"))?;
    let _ = std::fs::remove_dir(&work);
    let machine = Machine {
        load_average_end: machine::load_average(),
        ..machine
    };
    let verdict = verdict::compare(&mut peers);
    let command = args
        .command_line
        .clone()
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let report = Report {
        benchmark: "compare",
        started_utc,
        command,
        machine,
        fdatasync_baseline: medians::baseline(&baselines),
        fdatasync_baseline_rounds: baselines,
        workload: Workload {
            size: args.size,
            producers: args.producers,
            window: args.window,
            consumers: args.consumers,
            seconds: args.seconds,
            drain_seconds: args.drain_seconds,
            rounds: args.rounds,
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
    println!("{}", markdown::markdown(&report));
    eprintln!("compare: wrote {}", out.display());
    Ok(())
}
