//! The load of a plan: one real, durable node in this process, open-loop
//! senders at a fixed rate per step, and consumers that collect and
//! acknowledge what arrives.
//!
//! Invariants and why:
//! - **The node is the production one**: `Node::start` on a real data
//!   directory, the wall clock (`SystemClock`), the default storage and
//!   runtime settings except the partition count. An answer to a send means
//!   `fdatasync` returned.
//! - **Open loop, no coordinated omission.** Message `k` of a step is
//!   *scheduled* at `t0 + k / rate`, whatever happened to earlier ones.
//!   Up to `senders` sends are in flight; a slot that finds them all busy
//!   starts late, and its latency is measured from the scheduled time, so
//!   queueing shows. A send may start up to [`TIMER_SLACK`] *early* (the
//!   timer's granularity); its latency then counts from when it started, so
//!   that never flatters either.
//! - **Every scheduled message is accounted for**: answered (`accepted`),
//!   refused (`errors`, by code), not answered by the step's hard stop
//!   (`timed_out`, recorded with the time waited so far: a lower bound), or
//!   never started because the hard stop came first (`unsent`, likewise
//!   recorded with a lower bound). Nothing is silently dropped from the
//!   latency distribution.
//! - **Achieved** counts answers that arrived by the end of the step plus
//!   the latency bound, over the step's length: a node that keeps pace
//!   within the bound achieves ~100% of the offered rate; one that falls
//!   behind achieves only what it drained.
//! - **Consumers keep inboxes bounded**: each polls its share of the
//!   mailboxes every `poll` (a cursor per mailbox, so nothing is listed
//!   twice), downloads and acknowledges each message (the acknowledgement is
//!   a durable write too), with at most [`COLLECT_IN_FLIGHT`] collections in
//!   flight. Between steps the rig waits (bounded) until everything
//!   accepted has been collected and no request is in progress, so one
//!   step's backlog does not load the next.
//! - Memory is bounded: latencies are buffered per sender and flushed into
//!   one histogram every [`FLUSH_EVERY`] samples.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use spine_actors::node::{Node, NodeHandle, NodeParts, RuntimeConfig, SendRequest, StorageConfig};
use spine_actors::system::SystemClock;
use spine_core::directory::{Credential, Directory, Mailbox};
use spine_core::envelope::Envelope;
use spine_core::ids::{MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::random::SeededRandom;
use spine_core::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::machine::CpuMark;

/// A workflow no directory entry registers: any mailbox may send it.
pub const WORKFLOW: &str = "SPINE_PLAN";

/// How early a send may start before its scheduled time.
pub const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Collections (download + acknowledge) in flight, all consumers together.
pub const COLLECT_IN_FLIGHT: usize = 4096;

/// Latency samples a sender buffers before flushing into the histogram.
pub const FLUSH_EVERY: usize = 1024;

/// The largest latency distinguished (µs): one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Inbox page size the consumers ask for.
const PAGE: usize = 500;

/// Pages a consumer reads from one mailbox per visit before moving on.
const PAGES_PER_VISIT: usize = 4;

/// The longest the rig waits after a step for the consumers to catch up.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How the rig is built.
#[derive(Debug, Clone)]
pub struct RigConfig {
    /// Partition actors of the node.
    pub partitions: u32,
    /// Mailboxes in the generated directory.
    pub mailboxes: usize,
    /// Message body size, bytes.
    pub size: usize,
    /// Most sends in flight.
    pub senders: usize,
    /// Consumer tasks (each polls `mailboxes / consumers` mailboxes).
    pub consumers: usize,
    /// How often a consumer visits each of its mailboxes.
    pub poll: Duration,
    /// Seeds the directory's salts and the node's message-id randomness.
    pub seed: u64,
}

/// One step to run.
#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    /// Offered rate, msgs/s (at least 1).
    pub rate: u64,
    /// Length of the sending window, seconds.
    pub seconds: f64,
    /// Answers arriving this long after the window still count as achieved
    /// (the latency bound).
    pub allowance: Duration,
    /// After the window, how long sends may still start or be awaited
    /// before they are counted as unsent or timed out.
    pub grace: Duration,
}

/// Latency percentiles of a step, milliseconds (`None` without samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
    /// Mean.
    pub mean_ms: Option<f64>,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        let some = |v: f64| (!h.is_empty()).then_some(v);
        Latency {
            count: h.len(),
            p50_ms: some(ms(h.value_at_quantile(0.50))),
            p99_ms: some(ms(h.value_at_quantile(0.99))),
            p999_ms: some(ms(h.value_at_quantile(0.999))),
            max_ms: some(ms(h.max())),
            mean_ms: some(h.mean() / 1000.0),
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone)]
pub struct StepMeasure {
    /// The step as run.
    pub spec: StepSpec,
    /// Messages scheduled (`rate × seconds`).
    pub scheduled: u64,
    /// Sends answered with success.
    pub accepted: u64,
    /// Of those, answered by the end of the window plus the allowance.
    pub accepted_in_time: u64,
    /// Refused sends, by error code.
    pub errors: BTreeMap<String, u64>,
    /// Sends not answered by the hard stop.
    pub timed_out: u64,
    /// Slots never started because the hard stop came first.
    pub unsent: u64,
    /// Latency from scheduled time to answer (lower bounds for timed-out
    /// and unsent slots).
    pub latency: Latency,
    /// p99 in µs (for judging), `None` without samples.
    pub p99_us: Option<u64>,
    /// Log bytes written from the start of the step until it drained.
    pub log_bytes: u64,
    /// `fdatasync` groups completed during the window.
    pub fsyncs_in_window: u64,
    /// Messages collected (downloaded and acknowledged) during the step.
    pub collected: u64,
    /// Collections that failed during the step.
    pub consumer_errors: u64,
    /// Accepted but not yet collected at the end of the window (all
    /// steps so far).
    pub backlog_at_end: u64,
    /// Requests queued or running in the busiest partition at the end of
    /// the window.
    pub deepest_partition_queue: usize,
    /// Log records queued or in flight at the end of the window.
    pub wal_in_flight: usize,
    /// Cores this process kept busy during the window.
    pub cpu_cores: Option<f64>,
    /// Cores everything else on the machine kept busy meanwhile.
    pub other_cores: Option<f64>,
    /// Seconds from the end of sending until collected and idle.
    pub drain_s: f64,
    /// Whether it got there within the drain limit.
    pub drained: bool,
    /// Wall time of the whole step, seconds.
    pub elapsed_s: f64,
}

/// The node, its directory and the consumers.
#[derive(Debug)]
pub struct Rig {
    node: NodeHandle,
    mailboxes: Arc<Vec<MailboxId>>,
    workflow: WorkflowId,
    body: Bytes,
    senders: usize,
    accepted: Arc<AtomicU64>,
    consumers: Arc<Consumers>,
    consumer_tasks: Vec<JoinHandle<()>>,
}

/// What the consumers share.
#[derive(Debug)]
struct Consumers {
    collected: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
    permits: Arc<Semaphore>,
    /// One collected message's envelope, for the wire-size figure.
    sample: OnceLock<Arc<Envelope>>,
}

impl Rig {
    /// Generates the directory, starts a durable node in `data_dir` and the
    /// consumers.
    pub async fn start(config: &RigConfig, data_dir: PathBuf) -> anyhow::Result<Rig> {
        let mut rng = SeededRandom::new(config.seed);
        let mailboxes = mailbox_ids(config.mailboxes)?;
        let directory = Arc::new(generated_directory(&mailboxes, &mut rng)?);
        let parts = NodeParts {
            runtime: RuntimeConfig {
                partitions: config.partitions,
                ..RuntimeConfig::default()
            },
            directory,
            clock: Arc::new(SystemClock::new()),
            rng: Box::new(SeededRandom::new(config.seed.wrapping_add(0x9e37_79b9))),
        };
        let storage = StorageConfig {
            data_dir: data_dir.clone(),
            ..StorageConfig::default()
        };
        let (node, _) = Node::start(storage, parts)
            .await
            .with_context(|| format!("starting a durable node in {}", data_dir.display()))?;
        anyhow::ensure!(node.is_durable(), "Node::start gave a memory-only node");
        let consumers = Arc::new(Consumers {
            collected: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            permits: Arc::new(Semaphore::new(COLLECT_IN_FLIGHT)),
            sample: OnceLock::new(),
        });
        let n = config.consumers.max(1);
        let consumer_tasks = (0..n)
            .map(|c| {
                let mine: Vec<MailboxId> = mailboxes.iter().skip(c).step_by(n).cloned().collect();
                tokio::spawn(consume(
                    node.clone(),
                    mine,
                    Arc::clone(&consumers),
                    config.poll,
                ))
            })
            .collect();
        Ok(Rig {
            node,
            mailboxes: Arc::new(mailboxes),
            workflow: WorkflowId::parse(WORKFLOW)?,
            body: Bytes::from(vec![0x5a; config.size]),
            senders: config.senders.max(1),
            accepted: Arc::new(AtomicU64::new(0)),
            consumers,
            consumer_tasks,
        })
    }

    /// One collected message's envelope, once any was collected.
    pub fn sample_envelope(&self) -> Option<Arc<Envelope>> {
        self.consumers.sample.get().cloned()
    }

    /// Runs one step (see the module documentation).
    pub async fn step(&self, spec: StepSpec) -> anyhow::Result<StepMeasure> {
        let began = Instant::now();
        let rate = spec.rate.max(1);
        let scheduled = ((rate as f64) * spec.seconds).round().max(1.0) as u64;
        let (bytes_at_start, fsyncs_at_start) = self.node.log_totals();
        let collected_at_start = self.consumers.collected.load(Ordering::Acquire);
        let consumer_errors_at_start = self.consumers.errors.load(Ordering::Acquire);
        // A short lead so every sender is spawned before the first slot.
        let t0 = Instant::now() + Duration::from_millis(20);
        let window_end = t0 + Duration::from_secs_f64(spec.seconds);
        let ctx = Arc::new(StepCtx {
            node: self.node.clone(),
            mailboxes: Arc::clone(&self.mailboxes),
            workflow: self.workflow.clone(),
            body: self.body.clone(),
            next: AtomicU64::new(0),
            scheduled,
            rate,
            t0,
            in_time: window_end + spec.allowance,
            hard_stop: window_end + spec.grace.max(spec.allowance),
            accepted: Arc::clone(&self.accepted),
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                    .context("creating the latency histogram")?,
            ),
        });
        let senders: Vec<JoinHandle<Tally>> = (0..self.senders.min(scheduled as usize))
            .map(|_| tokio::spawn(send_slots(Arc::clone(&ctx))))
            .collect();
        tokio::time::sleep_until(t0).await;
        let cpu = CpuMark::now();
        tokio::time::sleep_until(window_end).await;
        let (cpu_cores, other_cores) = cpu.since();
        let (_, fsyncs_at_end) = self.node.log_totals();
        let backlog_at_end = self
            .accepted
            .load(Ordering::Acquire)
            .saturating_sub(self.consumers.collected.load(Ordering::Acquire));
        let depths = self.node.queue_depths();
        let mut tally = Tally::default();
        for s in senders {
            tally.merge(s.await.context("a sender task failed")?);
        }
        let sending_done = Instant::now();
        let drained = self.drain().await;
        let drain_s = sending_done.elapsed().as_secs_f64();
        let (bytes_at_end, _) = self.node.log_totals();
        let histogram = ctx.histogram.lock().unwrap_or_else(|p| p.into_inner());
        let latency = Latency::of(&histogram);
        let p99_us = (!histogram.is_empty()).then(|| histogram.value_at_quantile(0.99));
        drop(histogram);
        Ok(StepMeasure {
            spec,
            scheduled,
            accepted: tally.accepted,
            accepted_in_time: tally.accepted_in_time,
            errors: tally.errors,
            timed_out: tally.timed_out,
            unsent: tally.unsent,
            latency,
            p99_us,
            log_bytes: bytes_at_end.saturating_sub(bytes_at_start),
            fsyncs_in_window: fsyncs_at_end.saturating_sub(fsyncs_at_start),
            collected: self
                .consumers
                .collected
                .load(Ordering::Acquire)
                .saturating_sub(collected_at_start),
            consumer_errors: self
                .consumers
                .errors
                .load(Ordering::Acquire)
                .saturating_sub(consumer_errors_at_start),
            backlog_at_end,
            deepest_partition_queue: depths.partitions.iter().copied().max().unwrap_or(0),
            wal_in_flight: depths.wal_in_flight,
            cpu_cores,
            other_cores,
            drain_s,
            drained,
            elapsed_s: began.elapsed().as_secs_f64(),
        })
    }

    /// Waits until everything accepted was collected (or failed to be) and
    /// no request is in progress; at most [`DRAIN_LIMIT`].
    async fn drain(&self) -> bool {
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            let settled = self.consumers.collected.load(Ordering::Acquire)
                + self.consumers.errors.load(Ordering::Acquire);
            if settled >= self.accepted.load(Ordering::Acquire) && self.node.active_requests() == 0
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the consumers and shuts the node down (its log synced).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.consumers.stop.store(true, Ordering::Release);
        // Wake consumers waiting for a collection permit.
        self.consumers.permits.close();
        for task in self.consumer_tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.node
            .shutdown()
            .await
            .context("shutting the node down")?;
        Ok(())
    }
}

/// What every sender of a step shares.
#[derive(Debug)]
struct StepCtx {
    node: NodeHandle,
    mailboxes: Arc<Vec<MailboxId>>,
    workflow: WorkflowId,
    body: Bytes,
    /// The next slot to claim.
    next: AtomicU64,
    scheduled: u64,
    rate: u64,
    t0: Instant,
    in_time: Instant,
    hard_stop: Instant,
    accepted: Arc<AtomicU64>,
    histogram: Mutex<Histogram<u64>>,
}

impl StepCtx {
    /// When slot `k` is due.
    fn due(&self, k: u64) -> Instant {
        self.t0 + slot_offset(k, self.rate)
    }

    fn flush(&self, buffer: &mut Vec<u64>) {
        let mut h = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        for v in buffer.drain(..) {
            h.saturating_record(v.clamp(1, MAX_LATENCY_US));
        }
    }
}

/// One sender's counts.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    accepted_in_time: u64,
    errors: BTreeMap<String, u64>,
    timed_out: u64,
    unsent: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.accepted_in_time += other.accepted_in_time;
        self.timed_out += other.timed_out;
        self.unsent += other.unsent;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }
}

/// Claims slots until none is left, sending each at its scheduled time.
async fn send_slots(ctx: Arc<StepCtx>) -> Tally {
    let mut tally = Tally::default();
    let mut buffer = Vec::with_capacity(FLUSH_EVERY);
    let m = ctx.mailboxes.len().max(1) as u64;
    loop {
        let k = ctx.next.fetch_add(1, Ordering::Relaxed);
        if k >= ctx.scheduled {
            break;
        }
        let due = ctx.due(k);
        if let Some(wake) = due.checked_sub(TIMER_SLACK) {
            if wake > Instant::now() {
                tokio::time::sleep_until(wake).await;
            }
        }
        let started = Instant::now();
        if started >= ctx.hard_stop {
            tally.unsent += 1;
            buffer.push(micros(ctx.hard_stop.saturating_duration_since(due)));
        } else {
            let from = due.min(started);
            let (sender, recipient) = ((k % m) as usize, ((k * 7919 + 1) % m) as usize);
            let (Some(sender), Some(recipient)) =
                (ctx.mailboxes.get(sender), ctx.mailboxes.get(recipient))
            else {
                *tally.errors.entry("PLAN_NO_MAILBOX".into()).or_default() += 1;
                continue;
            };
            let req = SendRequest::simple(
                sender.clone(),
                recipient.clone(),
                ctx.workflow.clone(),
                ctx.body.clone(),
            );
            match tokio::time::timeout_at(ctx.hard_stop, ctx.node.send(req)).await {
                Ok(Ok(_)) => {
                    let done = Instant::now();
                    ctx.accepted.fetch_add(1, Ordering::AcqRel);
                    tally.accepted += 1;
                    if done <= ctx.in_time {
                        tally.accepted_in_time += 1;
                    }
                    buffer.push(micros(done.saturating_duration_since(from)));
                }
                Ok(Err(e)) => {
                    *tally.errors.entry(e.code().to_string()).or_default() += 1;
                }
                Err(_) => {
                    tally.timed_out += 1;
                    buffer.push(micros(ctx.hard_stop.saturating_duration_since(from)));
                }
            }
        }
        if buffer.len() >= FLUSH_EVERY {
            ctx.flush(&mut buffer);
        }
    }
    ctx.flush(&mut buffer);
    tally
}

/// How long after the step's start slot `k` is due at `rate` msgs/s:
/// exactly `k / rate` seconds, to the nanosecond, without drift.
fn slot_offset(k: u64, rate: u64) -> Duration {
    let nanos = u128::from(k) * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Polls `mine` every `poll`, collecting what is new, until stopped.
async fn consume(node: NodeHandle, mine: Vec<MailboxId>, shared: Arc<Consumers>, poll: Duration) {
    let mut cursors: Vec<Option<u64>> = vec![None; mine.len()];
    let mut collecting = JoinSet::new();
    'run: while !shared.stop.load(Ordering::Acquire) {
        let pass = Instant::now();
        for (mailbox, cursor) in mine.iter().zip(cursors.iter_mut()) {
            for _ in 0..PAGES_PER_VISIT {
                let Ok(page) = node.list_inbox(mailbox, None, *cursor, PAGE).await else {
                    break;
                };
                for view in page.messages {
                    if view.accepted_seq.is_some() {
                        *cursor = view.accepted_seq;
                    }
                    let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else {
                        // Closed: the rig is stopping.
                        break 'run;
                    };
                    collecting.spawn(collect(
                        node.clone(),
                        mailbox.clone(),
                        view.envelope.message_id,
                        Arc::clone(&shared),
                        permit,
                    ));
                }
                while collecting.try_join_next().is_some() {}
                if page.next.is_none() {
                    break;
                }
            }
            if shared.stop.load(Ordering::Acquire) {
                break 'run;
            }
        }
        tokio::time::sleep_until(pass + poll).await;
    }
    while collecting.join_next().await.is_some() {}
}

/// Downloads and acknowledges one message.
async fn collect(
    node: NodeHandle,
    mailbox: MailboxId,
    id: MessageId,
    shared: Arc<Consumers>,
    _permit: OwnedSemaphorePermit,
) {
    match node.download(&mailbox, &id, 1).await {
        Ok(d) => {
            if shared.sample.get().is_none() {
                let _ = shared.sample.set(d.view.envelope);
            }
        }
        Err(_) => {
            shared.errors.fetch_add(1, Ordering::AcqRel);
            return;
        }
    }
    match node.acknowledge(&mailbox, &id).await {
        Ok(()) => shared.collected.fetch_add(1, Ordering::AcqRel),
        Err(_) => shared.errors.fetch_add(1, Ordering::AcqRel),
    };
}

fn mailbox_ids(n: usize) -> anyhow::Result<Vec<MailboxId>> {
    (0..n)
        .map(|i| Ok(MailboxId::parse(&format!("PL{i:05}"))?))
        .collect()
}

/// Active mailboxes, ten per ODS code, no workflows (so any may send to
/// any); passwords hashed with one PBKDF2 iteration (nothing here
/// authenticates).
fn generated_directory(ids: &[MailboxId], rng: &mut SeededRandom) -> anyhow::Result<Directory> {
    let mut mailboxes = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        mailboxes.push(Mailbox {
            id: id.clone(),
            name: format!("PLAN MAILBOX {i}"),
            ods_code: OdsCode::parse(&format!("P{:05}", i / 10))?,
            org_code: None,
            org_name: None,
            billing_entity: None,
            active: true,
            credential: Credential::from_password("password", rng, 1)?,
        });
    }
    Ok(Directory::new(mailboxes, Vec::new())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_directory_lets_any_mailbox_send_to_any() {
        let ids = mailbox_ids(12).unwrap();
        let d = generated_directory(&ids, &mut SeededRandom::new(1)).unwrap();
        let w = WorkflowId::parse(WORKFLOW).unwrap();
        for from in &ids {
            for to in &ids {
                d.check_send(from, to, &w).unwrap();
            }
        }
    }

    #[test]
    fn slots_are_evenly_spaced_without_drift() {
        assert_eq!(slot_offset(0, 1000), Duration::ZERO);
        assert_eq!(slot_offset(1, 1000), Duration::from_millis(1));
        assert_eq!(slot_offset(3, 3), Duration::from_secs(1));
        // 1/3 s steps do not accumulate rounding: slot 3,000,000 is at
        // exactly 1,000,000 s.
        assert_eq!(slot_offset(3_000_000, 3), Duration::from_secs(1_000_000));
        assert_eq!(slot_offset(1, 3), Duration::from_nanos(333_333_333));
        // A zero rate is treated as 1 msg/s, not a division by zero.
        assert_eq!(slot_offset(2, 0), Duration::from_secs(2));
    }

    #[test]
    fn tallies_merge_counts_and_codes() {
        let mut a = Tally {
            accepted: 3,
            accepted_in_time: 2,
            errors: [("X".to_string(), 1)].into(),
            timed_out: 1,
            unsent: 0,
        };
        a.merge(Tally {
            accepted: 1,
            accepted_in_time: 1,
            errors: [("X".to_string(), 2), ("Y".to_string(), 1)].into(),
            timed_out: 0,
            unsent: 5,
        });
        assert_eq!(
            (a.accepted, a.accepted_in_time, a.timed_out, a.unsent),
            (4, 3, 1, 5)
        );
        assert_eq!(a.errors["X"], 3);
        assert_eq!(a.errors["Y"], 1);
    }
}
