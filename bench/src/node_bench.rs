//! `spine-bench node`: in-process sends through a whole node, durable and
//! not, beside the raw WAL figure of the same round.
//!
//! Each round makes three measurements, each `--seconds` long, with
//! `--senders` tasks each looping "send one `--size`-byte message, await
//! its answer" (so `--senders` sends are in flight, as that many client
//! connections would keep):
//!
//! - **durable**: `Node::start` on a fresh data directory; an answer means
//!   the message is on disk (`fdatasync` returned);
//! - **nondurable**: the same load on `Node::start_in_memory` (memory-only
//!   log, NOT durable): what the runtime costs without the disk;
//! - **raw WAL**: `--senders` tasks appending `--size`-byte records straight
//!   into a `WalWriter` with the node's storage settings (the round of
//!   `spine-bench wal`): what the disk allows.
//!
//! The order of the three rotates from round to round so drift on a shared
//! machine is spread over all of them; medians are reported.
//!
//! Messages go from and to a generated directory of `--mailboxes`
//! mailboxes (`MB00000`, ...; password hashing with one iteration) with an
//! unregistered workflow, so any mailbox may send to any. Sends only:
//! nothing is downloaded or acknowledged, so every inbox grows. The node
//! keeps only metadata in memory for a durable message (the body is on
//! disk); the memory-only node keeps the body too, but every send shares
//! one `Bytes`, so it holds a reference, not a copy. Peak RSS per
//! measurement is reported so growth stays visible, and a measurement ends
//! early (flagged) if resident memory passes `--max-rss-mb`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use serde::Serialize;
use spine_actors::node::{Node, NodeHandle, NodeParts, RuntimeConfig, SendRequest, StorageConfig};
use spine_actors::system::SystemClock;
use spine_actors::wal::WriterConfig;
use spine_core::directory::{Credential, Directory, Mailbox};
use spine_core::ids::{MailboxId, OdsCode, WorkflowId};
use spine_core::random::SeededRandom;
use spine_core::ErrorCode;

use crate::report::{compact_latency_histogram, median, Latency};
use crate::wal_bench::{wal_round, WalLoad};

/// Tokio worker threads: the target machine has two cores.
const WORKER_THREADS: usize = 2;

/// A workflow id no directory entry registers: unrestricted.
const WORKFLOW: &str = "SPINE_BENCH";

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Concurrent sender tasks (each keeps one send in flight).
    #[arg(long, default_value_t = 512)]
    senders: usize,
    /// Mailboxes in the generated directory; senders and recipients cycle through them.
    #[arg(long, default_value_t = 1000)]
    mailboxes: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds per measurement (three measurements per round).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Partition actors of the node.
    #[arg(long, default_value_t = RuntimeConfig::default().partitions)]
    partitions: u32,
    /// Rounds (durable, memory-only, raw WAL each); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Unmeasured warm-up seconds (a durable node) before the first round.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Directory on the disk under test (a fresh subdirectory is used and
    /// removed); default: the system temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write the JSON result here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Ends a measurement early (flagged `stopped_early`) once the
    /// process's resident memory passes this many MB: the node keeps every
    /// message's metadata (~1.2 KB) for as long as it runs. Default: the
    /// RSS at start plus half the memory then available.
    #[arg(long)]
    max_rss_mb: Option<f64>,
    /// Let the heap use transparent huge pages, as `spine serve
    /// --huge-pages` does (default off, as `spine serve`'s default).
    #[arg(long)]
    huge_pages: bool,
}

/// One run of the send load against one node.
#[derive(Debug, Clone, Serialize)]
struct Measurement {
    msgs_per_s: f64,
    messages: u64,
    elapsed_s: f64,
    latency_us: Latency,
    /// Mean over 10 ms samples of the requests queued or running, summed
    /// over the partitions.
    avg_partition_queue: f64,
    /// Mean over 10 ms samples of the log's records queued or in flight.
    avg_wal_in_flight: f64,
    /// Peak resident memory of the process during the measurement (MB), if
    /// the OS reports it.
    peak_rss_mb: Option<f64>,
    /// Peak RSS minus RSS at the start of the measurement (MB): what the
    /// node's state grew by (the allocator keeps freed memory, so the start
    /// includes what earlier measurements left).
    rss_growth_mb: Option<f64>,
    /// CPU time of the whole process (every thread, user + system) per
    /// message, in microseconds; Linux only.
    cpu_us_per_msg: Option<f64>,
    /// Mean cores busy: process CPU time over wall time.
    cpu_cores: Option<f64>,
    /// Log bytes on disk per message (segment files after shutdown);
    /// durable node only.
    disk_bytes_per_msg: Option<f64>,
    /// Cores kept busy by everything else on the machine meanwhile (other
    /// processes, interrupts, hypervisor steal): the noise indicator of a
    /// shared machine; Linux only.
    other_cores: Option<f64>,
    /// Seconds from the end of `shutdown()` until the process was idle
    /// (the node freeing its state); not part of the measurement.
    settle_s: f64,
    /// The memory limit (`--max-rss-mb`) ended this measurement early.
    stopped_early: bool,
}

/// The raw WAL figure of a round.
#[derive(Debug, Clone, Serialize)]
struct RawWal {
    records_per_s: f64,
    mb_per_s: f64,
    avg_batch_records: f64,
    fsyncs_per_s: f64,
    latency_us: Latency,
    /// Cores kept busy by everything else on the machine meanwhile.
    other_cores: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct Round {
    durable: Measurement,
    nondurable: Measurement,
    raw_wal: RawWal,
    /// Durable messages per second over raw WAL records per second.
    durable_to_raw_wal: f64,
}

#[derive(Debug, Serialize)]
struct Config {
    senders: usize,
    mailboxes: usize,
    size: usize,
    seconds: f64,
    partitions: u32,
    rounds: usize,
    warmup: f64,
    worker_threads: usize,
    max_rss_mb: Option<f64>,
    huge_pages: bool,
    dir: PathBuf,
    storage: StorageConfig,
}

#[derive(Debug, Serialize)]
struct Output {
    benchmark: &'static str,
    config: Config,
    durable_msgs_per_s: f64,
    nondurable_msgs_per_s: f64,
    raw_wal_records_per_s: f64,
    /// Median of the per-round ratios durable / raw WAL.
    durable_to_raw_wal: f64,
    /// Durable send-to-ack latency (medians of the per-round percentiles).
    latency_us: Latency,
    nondurable_latency_us: Latency,
    raw_wal_latency_us: Latency,
    raw_wal_mb_per_s: f64,
    raw_wal_avg_batch_records: f64,
    /// Process CPU time per message (all threads), medians.
    durable_cpu_us_per_msg: f64,
    nondurable_cpu_us_per_msg: f64,
    /// Log bytes on disk per durable message (the raw WAL writes `size` + 32).
    durable_disk_bytes_per_msg: f64,
    per_round: Vec<Round>,
}

/// What every measurement shares: the directory, the ids, the body.
struct Plan {
    directory: Arc<Directory>,
    mailboxes: Arc<Vec<MailboxId>>,
    workflow: WorkflowId,
    body: Bytes,
    senders: usize,
    partitions: u32,
    seconds: f64,
    max_rss_mb: Option<f64>,
}

pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.senders > 0, "--senders must be at least 1");
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.mailboxes),
        "--mailboxes must be 1 to 1000000"
    );
    anyhow::ensure!(
        args.size > 0 && args.size <= 16 << 20,
        "--size must be between 1 and 16777216 bytes"
    );
    anyhow::ensure!(
        args.seconds > 0.0 && args.rounds > 0,
        "--seconds and --rounds must be positive"
    );
    anyhow::ensure!(
        (1..=4096).contains(&args.partitions),
        "--partitions must be 1 to 4096"
    );
    spine_actors::memory::set_transparent_huge_pages(args.huge_pages)
        .context("setting the transparent-huge-pages flag")?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("spine-bench-node-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a scratch directory in {}", base.display()))?;
    let max_rss_mb = args.max_rss_mb.or_else(|| {
        let available = meminfo_mb("MemAvailable:")?;
        Some(rss_mb("VmRSS:").unwrap_or(0.0) + available / 2.0)
    });
    let plan = Plan {
        max_rss_mb,
        directory: Arc::new(generated_directory(args.mailboxes)?),
        mailboxes: Arc::new(mailbox_ids(args.mailboxes)?),
        workflow: WorkflowId::parse(WORKFLOW)?,
        body: Bytes::from(vec![0x5a; args.size]),
        senders: args.senders,
        partitions: args.partitions,
        seconds: args.seconds,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()?;
    if args.warmup > 0.0 {
        let warm = Plan {
            seconds: args.warmup,
            directory: Arc::clone(&plan.directory),
            mailboxes: Arc::clone(&plan.mailboxes),
            workflow: plan.workflow.clone(),
            body: plan.body.clone(),
            ..plan
        };
        let dir = work.path().join("warmup");
        runtime.block_on(node_measurement(&warm, Some(dir.clone()), 0))?;
        std::fs::remove_dir_all(&dir).ok();
    }
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let mut durable = None;
        let mut nondurable = None;
        let mut raw = None;
        // Rotate the order so drift does not always favour the same side.
        for step in 0..3 {
            match (round + step) % 3 {
                0 => {
                    let dir = work.path().join(format!("durable-{round}"));
                    let m = runtime.block_on(node_measurement(
                        &plan,
                        Some(dir.clone()),
                        round as u64 + 1,
                    ))?;
                    std::fs::remove_dir_all(&dir).ok();
                    durable = Some(m);
                }
                1 => {
                    nondurable =
                        Some(runtime.block_on(node_measurement(&plan, None, round as u64 + 1))?);
                }
                _ => {
                    let dir = work.path().join(format!("wal-{round}"));
                    let load = raw_wal_load(&plan, args.size);
                    let (cpu0, busy0, t0) = (
                        process_cpu_seconds(),
                        machine_busy_seconds(),
                        Instant::now(),
                    );
                    let r = runtime.block_on(wal_round(&load, dir.clone()))?;
                    let other_cores = others(cpu0, busy0, t0.elapsed().as_secs_f64());
                    std::fs::remove_dir_all(&dir).ok();
                    runtime.block_on(settle());
                    raw = Some(RawWal {
                        records_per_s: r.records_per_s,
                        mb_per_s: r.mb_per_s,
                        avg_batch_records: r.avg_batch_records,
                        fsyncs_per_s: r.fsyncs_per_s,
                        latency_us: r.latency_us,
                        other_cores,
                    });
                }
            }
        }
        let (Some(durable), Some(nondurable), Some(raw_wal)) = (durable, nondurable, raw) else {
            anyhow::bail!("round {round} missed a measurement");
        };
        let round = Round {
            durable_to_raw_wal: ratio(durable.msgs_per_s, raw_wal.records_per_s),
            durable,
            nondurable,
            raw_wal,
        };
        eprintln!(
            "round {}: durable {:.0} msg/s (p50 {} p99 {} p999 {} us, {:.1} cpu us/msg, rss +{:.0} MB, others {:.2} cores) | memory-only {:.0} msg/s (p99 {} us, {:.1} cpu us/msg, others {:.2} cores) | raw wal {:.0} rec/s (batch {:.1}, p99 {} us, others {:.2} cores) | durable/raw {:.2}",
            rounds.len() + 1,
            round.durable.msgs_per_s,
            round.durable.latency_us.p50,
            round.durable.latency_us.p99,
            round.durable.latency_us.p999,
            round.durable.cpu_us_per_msg.unwrap_or(0.0),
            round.durable.rss_growth_mb.unwrap_or(0.0),
            round.durable.other_cores.unwrap_or(0.0),
            round.nondurable.msgs_per_s,
            round.nondurable.latency_us.p99,
            round.nondurable.cpu_us_per_msg.unwrap_or(0.0),
            round.nondurable.other_cores.unwrap_or(0.0),
            round.raw_wal.records_per_s,
            round.raw_wal.avg_batch_records,
            round.raw_wal.latency_us.p99,
            round.raw_wal.other_cores.unwrap_or(0.0),
            round.durable_to_raw_wal,
        );
        rounds.push(round);
    }
    let pick = |f: &dyn Fn(&Round) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let latency = |f: &dyn Fn(&Round) -> &Latency| Latency {
        p50: pick(&|r| f(r).p50 as f64) as u64,
        p99: pick(&|r| f(r).p99 as f64) as u64,
        p999: pick(&|r| f(r).p999 as f64) as u64,
        max: rounds.iter().map(|r| f(r).max).max().unwrap_or(0),
        mean: pick(&|r| f(r).mean),
    };
    let out = Output {
        benchmark: "node",
        config: Config {
            senders: args.senders,
            mailboxes: args.mailboxes,
            size: args.size,
            seconds: args.seconds,
            partitions: args.partitions,
            rounds: args.rounds,
            warmup: args.warmup,
            worker_threads: WORKER_THREADS,
            max_rss_mb,
            huge_pages: args.huge_pages,
            dir: base,
            storage: storage_config(PathBuf::new()),
        },
        durable_msgs_per_s: pick(&|r| r.durable.msgs_per_s),
        nondurable_msgs_per_s: pick(&|r| r.nondurable.msgs_per_s),
        raw_wal_records_per_s: pick(&|r| r.raw_wal.records_per_s),
        durable_to_raw_wal: pick(&|r| r.durable_to_raw_wal),
        latency_us: latency(&|r| &r.durable.latency_us),
        nondurable_latency_us: latency(&|r| &r.nondurable.latency_us),
        raw_wal_latency_us: latency(&|r| &r.raw_wal.latency_us),
        raw_wal_mb_per_s: pick(&|r| r.raw_wal.mb_per_s),
        raw_wal_avg_batch_records: pick(&|r| r.raw_wal.avg_batch_records),
        durable_cpu_us_per_msg: pick(&|r| r.durable.cpu_us_per_msg.unwrap_or(f64::NAN)),
        nondurable_cpu_us_per_msg: pick(&|r| r.nondurable.cpu_us_per_msg.unwrap_or(f64::NAN)),
        durable_disk_bytes_per_msg: pick(&|r| r.durable.disk_bytes_per_msg.unwrap_or(f64::NAN)),
        per_round: rounds,
    };
    let json = serde_json::to_string_pretty(&out)?;
    println!("{json}");
    if let Some(path) = &args.json {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The node's storage settings: the defaults `spine serve` uses.
fn storage_config(data_dir: PathBuf) -> StorageConfig {
    StorageConfig {
        data_dir,
        ..StorageConfig::default()
    }
}

/// The raw WAL load of a round: the same concurrency and record size,
/// through a writer with the node's storage settings.
fn raw_wal_load(plan: &Plan, size: usize) -> WalLoad {
    let storage = storage_config(PathBuf::new());
    WalLoad {
        in_flight: plan.senders,
        size,
        seconds: plan.seconds,
        wal: storage.wal(),
        writer: WriterConfig {
            max_in_flight: storage.max_in_flight,
            max_batch_bytes: storage.max_batch_bytes,
        },
    }
}

fn mailbox_name(i: usize) -> String {
    format!("MB{i:05}")
}

fn mailbox_ids(n: usize) -> anyhow::Result<Vec<MailboxId>> {
    (0..n)
        .map(|i| Ok(MailboxId::parse(&mailbox_name(i))?))
        .collect()
}

/// `n` active mailboxes, ten per ODS code, no workflows; passwords hashed
/// with one PBKDF2 iteration (nothing here authenticates).
fn generated_directory(n: usize) -> anyhow::Result<Directory> {
    let mut rng = SeededRandom::new(0x5e11_d1c7);
    let mut mailboxes = Vec::with_capacity(n);
    for i in 0..n {
        mailboxes.push(Mailbox {
            id: MailboxId::parse(&mailbox_name(i))?,
            name: format!("BENCH MAILBOX {i}"),
            ods_code: OdsCode::parse(&format!("B{:05}", i / 10))?,
            org_code: None,
            org_name: None,
            billing_entity: None,
            active: true,
            credential: Credential::from_password("password", &mut rng, 1)?,
        });
    }
    Ok(Directory::new(mailboxes, Vec::new())?)
}

/// Starts a node (durable in `dir`, or memory-only when `dir` is `None`),
/// runs the send load on it, and shuts it down.
async fn node_measurement(
    plan: &Plan,
    dir: Option<PathBuf>,
    seed: u64,
) -> anyhow::Result<Measurement> {
    let parts = NodeParts {
        runtime: RuntimeConfig {
            partitions: plan.partitions,
            ..RuntimeConfig::default()
        },
        directory: Arc::clone(&plan.directory),
        clock: Arc::new(SystemClock::new()),
        rng: Box::new(SeededRandom::new(seed)),
    };
    let data_dir = dir.clone();
    let node = match dir {
        Some(dir) => {
            let (node, _) = Node::start(storage_config(dir), parts).await?;
            anyhow::ensure!(node.is_durable(), "Node::start gave a memory-only node");
            node
        }
        None => Node::start_in_memory(storage_config(PathBuf::new()), parts).await?,
    };
    let result = send_load(&node, plan).await;
    node.shutdown().await?;
    drop(node);
    // The partitions free their state after shutdown returns; wait for
    // that here, or it would run during (and slow) the next measurement.
    let settle = settle().await;
    let mut m = result?;
    m.settle_s = settle;
    if let Some(dir) = &data_dir {
        let bytes = dir_bytes(dir)?;
        m.disk_bytes_per_msg = Some(bytes as f64 / m.messages.max(1) as f64);
    }
    Ok(m)
}

/// Waits until this process is idle (at most one 10 ms CPU tick over
/// 200 ms), for at most 30 s; answers how long that took in seconds.
async fn settle() -> f64 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let before = process_cpu_seconds();
        tokio::time::sleep(Duration::from_millis(200)).await;
        match process_cpu_seconds().zip(before) {
            Some((after, before)) if after - before > 0.0105 => {}
            _ => break,
        }
    }
    started.elapsed().as_secs_f64()
}

/// Total size of the files directly in `dir`.
fn dir_bytes(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// `plan.senders` tasks, each sending and awaiting one message at a time
/// until the deadline.
async fn send_load(node: &NodeHandle, plan: &Plan) -> anyhow::Result<Measurement> {
    reset_peak_rss();
    let rss_at_start = rss_mb("VmRSS:");
    let (cpu_at_start, busy_at_start) = (process_cpu_seconds(), machine_busy_seconds());
    let deadline = Instant::now() + Duration::from_secs_f64(plan.seconds);
    let sampling = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_queues(
        node.clone(),
        Arc::clone(&sampling),
        plan.max_rss_mb,
        Arc::clone(&stop),
    ));
    let started = Instant::now();
    let m = plan.mailboxes.len();
    let mut tasks = Vec::with_capacity(plan.senders);
    for i in 0..plan.senders {
        let node = node.clone();
        let mailboxes = Arc::clone(&plan.mailboxes);
        let workflow = plan.workflow.clone();
        let body = plan.body.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut hist = compact_latency_histogram()?;
            let sender = mailboxes[i % m].clone();
            // Spread the senders' starting recipients over the directory.
            let mut to = (i * 7919 + 1) % m;
            let mut count = 0u64;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let req = SendRequest::simple(
                    sender.clone(),
                    mailboxes[to].clone(),
                    workflow.clone(),
                    body.clone(),
                );
                let t = Instant::now();
                node.send(req)
                    .await
                    .map_err(|e| anyhow::anyhow!("send failed ({}): {e}", e.code()))?;
                hist.saturating_record(t.elapsed().as_micros() as u64);
                count += 1;
                to = (to + 1) % m;
            }
            anyhow::Ok((hist, count))
        }));
    }
    let mut hist = compact_latency_histogram()?;
    let mut messages = 0u64;
    let mut failure = None;
    for t in tasks {
        match t.await? {
            Ok((h, n)) => {
                hist.add(&h)?;
                messages += n;
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds()
        .zip(cpu_at_start)
        .map(|(end, start)| end - start);
    let other_cores = others(cpu_at_start, busy_at_start, elapsed);
    sampling.store(false, Ordering::Release);
    let (avg_partition_queue, avg_wal_in_flight) = sampler.await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let stopped_early = stop.load(Ordering::Acquire);
    if stopped_early {
        eprintln!(
            "warning: stopped after {elapsed:.1} s: resident memory passed --max-rss-mb {:.0}",
            plan.max_rss_mb.unwrap_or(0.0)
        );
    }
    Ok(Measurement {
        msgs_per_s: messages as f64 / elapsed,
        messages,
        elapsed_s: elapsed,
        latency_us: Latency::from_hist(&hist),
        avg_partition_queue,
        avg_wal_in_flight,
        peak_rss_mb: rss_mb("VmHWM:"),
        rss_growth_mb: rss_mb("VmHWM:")
            .zip(rss_at_start)
            .map(|(peak, start)| peak - start),
        cpu_us_per_msg: cpu.map(|c| c * 1e6 / messages.max(1) as f64),
        cpu_cores: cpu.map(|c| c / elapsed),
        disk_bytes_per_msg: None,
        other_cores,
        settle_s: 0.0,
        stopped_early,
    })
}

/// Samples queue depths every 10 ms while `running`; answers the means.
/// Every 100 ms it also checks resident memory against `max_rss_mb` and
/// sets `stop` once it is passed.
async fn sample_queues(
    node: NodeHandle,
    running: Arc<AtomicBool>,
    max_rss_mb: Option<f64>,
    stop: Arc<AtomicBool>,
) -> (f64, f64) {
    let (mut partitions, mut wal, mut samples) = (0usize, 0usize, 0usize);
    while running.load(Ordering::Acquire) {
        let depths = node.queue_depths();
        partitions += depths.partitions.iter().sum::<usize>();
        wal += depths.wal_in_flight;
        samples += 1;
        if samples % 10 == 0 {
            let over = max_rss_mb
                .zip(rss_mb("VmRSS:"))
                .is_some_and(|(limit, rss)| rss > limit);
            if over {
                stop.store(true, Ordering::Release);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let n = samples.max(1) as f64;
    (partitions as f64 / n, wal as f64 / n)
}

/// User + system CPU seconds of this process, every thread (Linux
/// `/proc/self/stat`, in clock ticks of 10 ms).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Cores the rest of the machine kept busy since the readings
/// `cpu_at_start` (this process) and `busy_at_start` (the machine), over
/// `elapsed` seconds.
fn others(cpu_at_start: Option<f64>, busy_at_start: Option<f64>, elapsed: f64) -> Option<f64> {
    let ours = process_cpu_seconds()? - cpu_at_start?;
    let busy = machine_busy_seconds()? - busy_at_start?;
    Some(((busy - ours) / elapsed.max(1e-9)).max(0.0))
}

/// Busy CPU seconds of the whole machine, every core (Linux `/proc/stat`:
/// user, nice, system, irq, softirq and steal, in 10 ms ticks).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(busy / 100.0)
}

/// Resets the process's peak RSS (Linux: `clear_refs` 5); best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A figure of the machine's memory in MB (Linux `/proc/meminfo`, e.g.
/// `MemAvailable:`).
fn meminfo_mb(field: &str) -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A memory figure of this process in MB: `VmRSS:` (now) or `VmHWM:`
/// (peak since the last reset), from Linux's `/proc/self/status`.
fn rss_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_directory_lets_any_mailbox_send_to_any_other() {
        let directory = generated_directory(25).unwrap();
        let ids = mailbox_ids(25).unwrap();
        let workflow = WorkflowId::parse(WORKFLOW).unwrap();
        assert_eq!(directory.len(), 25);
        for from in &ids {
            for to in &ids {
                directory.check_send(from, to, &workflow).unwrap();
            }
        }
    }

    #[test]
    fn process_and_machine_cpu_readings_are_sane_on_linux() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let ours = process_cpu_seconds().unwrap();
        let machine = machine_busy_seconds().unwrap();
        assert!(ours >= 0.0 && machine >= ours);
        assert!(rss_mb("VmRSS:").unwrap() > 0.0);
        assert!(meminfo_mb("MemAvailable:").unwrap() > 0.0);
    }
}
