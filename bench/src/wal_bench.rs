//! `spine-bench wal`: group-commit throughput vs the disk's own rate.
//!
//! Each round runs the WAL for `--seconds` with `--writers` tasks each
//! keeping `--window` appends in flight, then the raw baseline: one thread
//! doing `write` + `fdatasync` of batches of the same byte size as the WAL's
//! average batch in that round. Rounds alternate so drift on a shared
//! machine hits both sides; medians are reported.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use serde::Serialize;
use spine_actors::wal::{FileStorage, WalWriter, WriterConfig};
use spine_core::wal::{Wal, WalConfig, RECORD_HEADER_LEN};

use crate::report::{latency_histogram, median, Latency};

#[derive(Debug, Clone, Args)]
pub struct WalArgs {
    /// Concurrent appending tasks.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Appends each task keeps in flight.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Record payload size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds per measurement (each side of each round).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Alternating WAL/raw rounds; medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Unmeasured warm-up seconds before the first round (page cache,
    /// allocator, disk queue).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Directory on the disk under test (a fresh subdirectory is used and removed).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write the JSON result here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One WAL measurement (plus, for `spine-bench wal`, its raw baseline).
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub avg_batch_records: f64,
    pub fsyncs_per_s: f64,
    pub raw_mb_per_s: f64,
    pub raw_fsyncs_per_s: f64,
    pub latency_us: Latency,
}

/// The load of one WAL round: `in_flight` tasks, each appending one
/// `size`-byte record and awaiting it before the next, for `seconds`,
/// through a `WalWriter` configured with `wal` and `writer`.
#[derive(Debug, Clone)]
pub struct WalLoad {
    pub in_flight: usize,
    pub size: usize,
    pub seconds: f64,
    pub wal: WalConfig,
    pub writer: WriterConfig,
}

impl WalLoad {
    /// The settings `spine-bench wal` has always used: large segments and
    /// batches, so neither rotation nor a batch cap is what is measured.
    fn from_args(args: &WalArgs) -> WalLoad {
        WalLoad {
            in_flight: args.writers * args.window,
            size: args.size,
            seconds: args.seconds,
            wal: WalConfig {
                segment_bytes: 256 << 20,
                max_record_bytes: 16 << 20,
                max_batch_records: 8192,
            },
            writer: WriterConfig {
                max_in_flight: 1 << 20,
                max_batch_bytes: 16 << 20,
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct Output {
    benchmark: &'static str,
    writers: usize,
    window: usize,
    size: usize,
    seconds: f64,
    rounds: usize,
    records_per_s: f64,
    mb_per_s: f64,
    raw_mb_per_s: f64,
    ratio_to_raw: f64,
    avg_batch_records: f64,
    fsyncs_per_s: f64,
    raw_fsyncs_per_s: f64,
    latency_us: Latency,
    per_round: Vec<Round>,
}

pub fn run(args: WalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.writers > 0 && args.window > 0,
        "--writers and --window must be at least 1"
    );
    anyhow::ensure!(
        args.size > 0 && args.size <= 16 << 20,
        "--size must be between 1 and 16777216 bytes"
    );
    anyhow::ensure!(
        args.seconds > 0.0 && args.rounds > 0,
        "--seconds and --rounds must be positive"
    );
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("spine-bench-wal-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a scratch directory in {}", base.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    if args.warmup > 0.0 {
        let warm = WalLoad {
            seconds: args.warmup,
            ..WalLoad::from_args(&args)
        };
        let dir = work.path().join("warmup");
        runtime.block_on(wal_round(&warm, dir.clone()))?;
        std::fs::remove_dir_all(&dir).ok();
    }
    let load = WalLoad::from_args(&args);
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let dir = work.path().join(format!("round-{round}"));
        let wal = runtime.block_on(wal_round(&load, dir.clone()))?;
        std::fs::remove_dir_all(&dir).ok();
        let batch_bytes =
            (wal.avg_batch_records * (args.size + RECORD_HEADER_LEN) as f64).max(1.0) as usize;
        let (raw_mb, raw_syncs) = raw_round(
            &work.path().join(format!("raw-{round}")),
            batch_bytes,
            args.seconds,
        )?;
        let round = Round {
            raw_mb_per_s: raw_mb,
            raw_fsyncs_per_s: raw_syncs,
            ..wal
        };
        eprintln!(
            "round {}: wal {:.0} rec/s {:.1} MB/s (batch {:.1}, p99 {} us) | raw {:.1} MB/s, {:.0} fsync/s",
            rounds.len() + 1, round.records_per_s, round.mb_per_s, round.avg_batch_records, round.latency_us.p99,
            round.raw_mb_per_s, round.raw_fsyncs_per_s
        );
        rounds.push(round);
    }
    let pick = |f: &dyn Fn(&Round) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let mb = pick(&|r| r.mb_per_s);
    let raw = pick(&|r| r.raw_mb_per_s);
    let out = Output {
        benchmark: "wal",
        writers: args.writers,
        window: args.window,
        size: args.size,
        seconds: args.seconds,
        rounds: args.rounds,
        records_per_s: pick(&|r| r.records_per_s),
        mb_per_s: mb,
        raw_mb_per_s: raw,
        // Each round pairs the WAL with the raw baseline measured next to it;
        // the median of those paired ratios resists drift between rounds.
        ratio_to_raw: pick(&|r| {
            if r.raw_mb_per_s > 0.0 {
                r.mb_per_s / r.raw_mb_per_s
            } else {
                0.0
            }
        }),
        avg_batch_records: pick(&|r| r.avg_batch_records),
        fsyncs_per_s: pick(&|r| r.fsyncs_per_s),
        raw_fsyncs_per_s: pick(&|r| r.raw_fsyncs_per_s),
        latency_us: Latency {
            p50: pick(&|r| r.latency_us.p50 as f64) as u64,
            p99: pick(&|r| r.latency_us.p99 as f64) as u64,
            p999: pick(&|r| r.latency_us.p999 as f64) as u64,
            max: rounds.iter().map(|r| r.latency_us.max).max().unwrap_or(0),
            mean: pick(&|r| r.latency_us.mean),
        },
        per_round: rounds,
    };
    let json = serde_json::to_string_pretty(&out)?;
    println!("{json}");
    if let Some(path) = &args.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs `load` against a fresh log in `dir` (which the caller removes).
/// The raw fields of the result are left at zero. Shared by `spine-bench
/// wal` and `spine-bench node` (its raw WAL figure).
pub async fn wal_round(load: &WalLoad, dir: PathBuf) -> anyhow::Result<Round> {
    let storage = FileStorage::open(&dir)?;
    let (wal, _) = Wal::open(storage, load.wal.clone(), |_| Ok(()))?;
    let writer = WalWriter::start(wal, load.writer.clone())?;
    let handle = writer.handle();
    let payload = Bytes::from(vec![0x5a; load.size]);
    let deadline = Instant::now() + Duration::from_secs_f64(load.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..load.in_flight {
        let handle = handle.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = latency_histogram()?;
            let mut count = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                handle.append(1, Bytes::new(), payload.clone()).await?;
                hist.saturating_record(t.elapsed().as_micros() as u64);
                count += 1;
            }
            anyhow::Ok((hist, count))
        }));
    }
    let mut hist = latency_histogram()?;
    let mut records = 0u64;
    for t in tasks {
        let (h, n) = t.await??;
        hist.add(&h)?;
        records += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let batches = handle.stats().batches.load(Ordering::Relaxed).max(1);
    drop(handle);
    writer.shutdown();
    let disk_bytes = records as f64 * (load.size + RECORD_HEADER_LEN) as f64;
    Ok(Round {
        records_per_s: records as f64 / elapsed,
        mb_per_s: disk_bytes / elapsed / 1e6,
        avg_batch_records: records as f64 / batches as f64,
        fsyncs_per_s: batches as f64 / elapsed,
        raw_mb_per_s: 0.0,
        raw_fsyncs_per_s: 0.0,
        latency_us: Latency::from_hist(&hist),
    })
}

/// Plain `write` + `fdatasync` of `batch_bytes` per batch for `seconds`.
fn raw_round(
    dir: &std::path::Path,
    batch_bytes: usize,
    seconds: f64,
) -> anyhow::Result<(f64, f64)> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("raw.dat");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let buf = Arc::new(vec![0xa5u8; batch_bytes]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut batches = 0u64;
    while Instant::now() < deadline {
        file.write_all(&buf)?;
        file.sync_data()?;
        batches += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_dir_all(dir).ok();
    Ok((
        batches as f64 * batch_bytes as f64 / elapsed / 1e6,
        batches as f64 / elapsed,
    ))
}
