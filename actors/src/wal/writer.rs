//! Group commit, pipelined: a writer thread owns the [`Wal`] and turns
//! whatever appends are waiting into one vectored write; a syncer thread
//! `fdatasync`s whatever has been written and then completes the waiters.
//!
//! Appenders push onto a lock-free crossbeam queue and await a oneshot. The
//! writer blocks for the first request, then drains what else is queued (up
//! to `max_batch_records` / `max_batch_bytes`) into one write. While the
//! syncer is inside `fdatasync` for earlier batches, the writer keeps
//! writing new ones into the page cache; when the sync returns, the syncer
//! takes every batch written meanwhile and covers them with one more sync.
//! So the disk is never idle while work is waiting, a busy node pays one
//! sync per group rather than per record, and an idle node pays no batching
//! delay at all.
//!
//! Invariants:
//! - A completion is sent `Ok` only after an `fdatasync` that started after
//!   its batch's write returned.
//! - Records from one `append_many` call land in one batch, in order.
//! - The queue is bounded by a semaphore of `max_in_flight` records: when it
//!   is exhausted appenders wait (backpressure), nothing is dropped.
//! - After a fatal error every pending and later append fails with the same
//!   reason; the writer never retries an fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use spine_core::wal::{
    AppendedRecord, PendingRecord, SegmentFile, SegmentInfo, Storage, SyncData, Wal, WalError,
};
use spine_core::ErrorCode;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Writer limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Most records queued or being written at once (backpressure bound).
    pub max_in_flight: usize,
    /// Most bytes gathered into one batch.
    pub max_batch_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_in_flight: 65_536,
            max_batch_bytes: 8 << 20,
        }
    }
}

/// Why an append did not become durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The log failed (now or earlier); nothing more is accepted.
    #[error("{message}")]
    Failed {
        /// Stable code of the underlying log error.
        code: &'static str,
        /// Its message.
        message: String,
    },
    /// The request itself was invalid (too large, empty); the log is fine.
    #[error("{message}")]
    Rejected {
        /// Stable code.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// The writer has shut down.
    #[error("the write-ahead log writer has shut down; the node is stopping")]
    Closed,
}

impl ErrorCode for AppendError {
    fn code(&self) -> &'static str {
        match self {
            AppendError::Failed { code, .. } | AppendError::Rejected { code, .. } => code,
            AppendError::Closed => "WAL_CLOSED",
        }
    }
}

impl AppendError {
    fn from_wal(e: &WalError) -> AppendError {
        if e.is_fatal() {
            AppendError::Failed {
                code: e.code(),
                message: e.to_string(),
            }
        } else {
            AppendError::Rejected {
                code: e.code(),
                message: e.to_string(),
            }
        }
    }
}

type Done<T> = oneshot::Sender<Result<T, AppendError>>;

/// The outcome of an append: the durable records, or why not.
pub type AppendResult = Result<Vec<AppendedRecord>, AppendError>;

/// How an appender learns its outcome. Callbacks run on the WAL's own
/// threads, in sequence-number order, so a callback must be quick and must
/// not block (sending on an unbounded channel or an actor mailbox is fine).
/// A completion dropped without an outcome (a WAL thread died) reports
/// `Closed`, so no appender waits forever.
pub enum Completion {
    /// Resolve a future.
    Oneshot(Done<Vec<AppendedRecord>>),
    /// Call a function.
    Callback(Callback),
}

/// A callback that is called exactly once: with the outcome, or with
/// `Closed` if it is dropped unused.
pub struct Callback(Option<Box<dyn FnOnce(AppendResult) + Send>>);

impl Callback {
    /// Wraps a function.
    pub fn new(f: Box<dyn FnOnce(AppendResult) + Send>) -> Callback {
        Callback(Some(f))
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback")
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(AppendError::Closed));
        }
    }
}

impl Completion {
    fn complete(self, result: AppendResult) {
        match self {
            Completion::Oneshot(tx) => {
                let _ = tx.send(result);
            }
            Completion::Callback(mut cb) => {
                if let Some(f) = cb.0.take() {
                    f(result);
                }
            }
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Completion::Oneshot(_) => "Completion::Oneshot",
            Completion::Callback(_) => "Completion::Callback",
        })
    }
}

enum Command {
    Append {
        records: Vec<PendingRecord>,
        done: Completion,
        _permit: OwnedSemaphorePermit,
    },
    Barrier {
        done: Done<u64>,
    },
    Seal {
        done: Done<()>,
    },
    RemoveOldest {
        upto_exclusive: u64,
        done: Done<Vec<SegmentInfo>>,
    },
    Stop,
    Segments {
        done: Done<Vec<SegmentInfo>>,
    },
}

/// Counters shared with metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Sync groups completed (each one `fdatasync` covering one or more writes).
    pub batches: AtomicU64,
    /// Records written.
    pub records: AtomicU64,
    /// Payload bytes written.
    pub bytes: AtomicU64,
    /// Total nanoseconds spent in write + fdatasync.
    pub io_nanos: AtomicU64,
    /// Largest sync group so far, in records.
    pub max_batch: AtomicU64,
    /// Sum over sync groups of the time from the group's first write to durable.
    pub write_to_durable_nanos: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    failed: OnceLock<AppendError>,
    stats: WriterStats,
    max_record_bytes: u32,
}

/// A cheap, cloneable handle for appending to the log.
#[derive(Debug, Clone)]
pub struct WalHandle {
    tx: Sender<Command>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// Owns the writer thread; dropping every handle and this stops it.
#[derive(Debug)]
pub struct WalWriter {
    handle: WalHandle,
    thread: Option<JoinHandle<()>>,
}

impl WalWriter {
    /// Starts the writer thread over an opened (recovered) log.
    pub fn start<S: Storage + 'static>(
        wal: Wal<S>,
        config: WriterConfig,
    ) -> std::io::Result<WalWriter> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            failed: OnceLock::new(),
            stats: WriterStats::default(),
            max_record_bytes: wal.config().max_record_bytes,
        });
        let max_in_flight = config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("spine-wal-writer".into())
            .spawn(move || run(wal, rx, config, thread_shared))?;
        let handle = WalHandle {
            tx,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            shared,
        };
        Ok(WalWriter {
            handle,
            thread: Some(thread),
        })
    }

    /// A handle for appenders.
    pub fn handle(&self) -> WalHandle {
        self.handle.clone()
    }

    /// Stops accepting, lets queued work finish, and joins the thread. Other
    /// handles must have been dropped for the join to complete.
    pub fn shutdown(mut self) {
        self.join();
    }

    fn join(&mut self) {
        // Stop is queued behind everything already sent, so queued work
        // is written and synced first; handles still held elsewhere then
        // get `Closed`.
        let _ = self.handle.tx.send(Command::Stop);
        let (dead_tx, _) = crossbeam_channel::bounded(0);
        self.handle.tx = dead_tx;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        self.join();
    }
}

impl WalHandle {
    /// Appends one record; resolves once it is durable.
    pub async fn append(
        &self,
        kind: u8,
        head: Bytes,
        body: Bytes,
    ) -> Result<AppendedRecord, AppendError> {
        let mut out = self
            .append_many(vec![PendingRecord { kind, head, body }])
            .await?;
        out.pop().ok_or(AppendError::Closed)
    }

    /// Appends records atomically into one batch; resolves once durable.
    pub async fn append_many(
        &self,
        records: Vec<PendingRecord>,
    ) -> Result<Vec<AppendedRecord>, AppendError> {
        let (done, rx) = oneshot::channel();
        self.append_with(records, Completion::Oneshot(done)).await?;
        rx.await.map_err(|_| self.closed_reason())?
    }

    /// Queues records atomically into one batch and returns once they are
    /// queued (waiting for room first: backpressure); `done` learns the
    /// outcome. Completions of successive appends run in sequence order.
    pub async fn append_with(
        &self,
        records: Vec<PendingRecord>,
        done: Completion,
    ) -> Result<(), AppendError> {
        self.precheck(&records)?;
        let n = u32::try_from(records.len().min(self.max_in_flight)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.permits)
            .acquire_many_owned(n)
            .await
            .map_err(|_| AppendError::Closed)?;
        self.tx
            .send(Command::Append {
                records,
                done,
                _permit: permit,
            })
            .map_err(|_| AppendError::Closed)
    }

    /// Resolves once everything queued before it is durable (or the log
    /// failed), with the sequence number the next record will get.
    pub async fn barrier(&self) -> Result<u64, AppendError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Barrier { done })
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| self.closed_reason())?
    }

    /// Records queued or in flight right now (the queue depth).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }

    /// Blocking variant of [`WalHandle::append_many`] for non-async callers.
    pub fn append_many_blocking(
        &self,
        records: Vec<PendingRecord>,
    ) -> Result<Vec<AppendedRecord>, AppendError> {
        self.precheck(&records)?;
        let n = u32::try_from(records.len().min(self.max_in_flight)).unwrap_or(u32::MAX);
        let permit = loop {
            match Arc::clone(&self.permits).try_acquire_many_owned(n) {
                Ok(p) => break p,
                Err(tokio::sync::TryAcquireError::Closed) => return Err(AppendError::Closed),
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    std::thread::sleep(std::time::Duration::from_micros(50))
                }
            }
        };
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Append {
                records,
                done: Completion::Oneshot(done),
                _permit: permit,
            })
            .map_err(|_| AppendError::Closed)?;
        rx.blocking_recv().map_err(|_| self.closed_reason())?
    }

    fn precheck(&self, records: &[PendingRecord]) -> Result<(), AppendError> {
        if let Some(e) = self.shared.failed.get() {
            return Err(e.clone());
        }
        if records.is_empty() {
            return Err(AppendError::Rejected {
                code: "WAL_INVALID_BATCH",
                message: "nothing to append".into(),
            });
        }
        let max = u64::from(self.shared.max_record_bytes);
        if let Some(r) = records.iter().find(|r| r.payload_len() > max) {
            let e = WalError::RecordTooLarge {
                len: r.payload_len(),
                max: self.shared.max_record_bytes,
            };
            return Err(AppendError::from_wal(&e));
        }
        Ok(())
    }

    fn closed_reason(&self) -> AppendError {
        self.shared
            .failed
            .get()
            .cloned()
            .unwrap_or(AppendError::Closed)
    }

    /// The fatal error that failed the log, if any.
    pub fn failure(&self) -> Option<AppendError> {
        self.shared.failed.get().cloned()
    }

    /// Counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Seals the active segment (the next append starts a new one).
    pub async fn seal(&self) -> Result<(), AppendError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Seal { done })
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| self.closed_reason())?
    }

    /// Removes sealed segments whose first record is below `upto_exclusive`
    /// and whose successor starts at or below it (i.e. wholly older).
    pub async fn remove_segments_before(
        &self,
        upto_exclusive: u64,
    ) -> Result<Vec<SegmentInfo>, AppendError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::RemoveOldest {
                upto_exclusive,
                done,
            })
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| self.closed_reason())?
    }

    /// The current segments, oldest first.
    pub async fn segments(&self) -> Result<Vec<SegmentInfo>, AppendError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Segments { done })
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| self.closed_reason())?
    }
}

struct Waiting {
    count: usize,
    done: Completion,
    _permit: Option<OwnedSemaphorePermit>,
}

/// A written batch handed to the syncer.
struct SyncJob<Y> {
    syncer: Arc<Y>,
    end_seq: u64,
    records: Vec<AppendedRecord>,
    waiting: Vec<Waiting>,
    bytes: u64,
    written_at: Instant,
}

type SyncerOf<S> = <<S as Storage>::File as SegmentFile>::Syncer;

fn run<S: Storage>(
    mut wal: Wal<S>,
    rx: Receiver<Command>,
    config: WriterConfig,
    shared: Arc<Shared>,
) {
    let (sync_tx, sync_rx) = crossbeam_channel::unbounded::<SyncJob<SyncerOf<S>>>();
    let durable = Arc::new(AtomicU64::new(wal.synced_upto()));
    let syncer_shared = Arc::clone(&shared);
    let syncer_durable = Arc::clone(&durable);
    let syncer = std::thread::Builder::new()
        .name("spine-wal-sync".into())
        .spawn(move || sync_loop(sync_rx, syncer_shared, syncer_durable));
    let syncer = match syncer {
        Ok(t) => t,
        Err(e) => {
            let _ = shared.failed.set(AppendError::Failed {
                code: "WAL_IO",
                message: format!("cannot start the WAL sync thread: {e}"),
            });
            return;
        }
    };
    let max_records = wal.config().max_batch_records;
    let mut batch: Vec<PendingRecord> = Vec::with_capacity(max_records);
    let mut waiting: Vec<Waiting> = Vec::with_capacity(max_records);
    let mut deferred: Option<Command> = None;
    let mut stopping = false;
    loop {
        if stopping {
            break;
        }
        let first = match deferred.take() {
            Some(c) => c,
            None => match rx.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append {
                    records,
                    done,
                    _permit,
                } => {
                    let size: usize = records.iter().map(|r| r.payload_len() as usize).sum();
                    let fits = batch.is_empty()
                        || (batch.len() + records.len() <= max_records
                            && bytes + size <= config.max_batch_bytes);
                    if !fits {
                        deferred = Some(Command::Append {
                            records,
                            done,
                            _permit,
                        });
                        break;
                    }
                    bytes += size;
                    waiting.push(Waiting {
                        count: records.len(),
                        done,
                        _permit: Some(_permit),
                    });
                    batch.extend(records);
                }
                Command::Stop if batch.is_empty() => {
                    stopping = true;
                    break;
                }
                Command::Barrier { done } if batch.is_empty() => {
                    let end = wal.next_seq();
                    let reply =
                        Completion::Callback(Callback::new(Box::new(move |r: AppendResult| {
                            let _ = done.send(r.map(|_| end));
                        })));
                    match (shared.failed.get(), wal.active_syncer()) {
                        (Some(failure), _) => reply.complete(Err(failure.clone())),
                        (None, None) => reply.complete(Ok(Vec::new())),
                        (None, Some(syncer)) => {
                            let job = SyncJob {
                                syncer,
                                end_seq: end,
                                records: Vec::new(),
                                waiting: vec![Waiting {
                                    count: 0,
                                    done: reply,
                                    _permit: None,
                                }],
                                bytes: 0,
                                written_at: Instant::now(),
                            };
                            if let Err(failed) = sync_tx.send(job) {
                                for w in failed.0.waiting {
                                    w.done.complete(Err(AppendError::Closed));
                                }
                            }
                        }
                    }
                }
                control => {
                    if batch.is_empty() {
                        wal.mark_synced(durable.load(Ordering::Acquire));
                        if let Some(failure) = shared.failed.get() {
                            // The syncer failed: the log must not touch the
                            // disk again (no fsync is ever retried).
                            wal.fail_external(failure.to_string());
                        }
                        control_command(&mut wal, control, &shared);
                    } else {
                        deferred = Some(control);
                        break;
                    }
                }
            }
            if batch.len() >= max_records || bytes >= config.max_batch_bytes {
                break;
            }
            match rx.try_recv() {
                Ok(c) => next = Some(c),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Some(failure) = shared.failed.get() {
            // Everything queued behind a failure gets that same failure.
            wal.fail_external(failure.to_string());
            for w in waiting.drain(..) {
                w.done.complete(Err(failure.clone()));
            }
            batch.clear();
            continue;
        }
        wal.mark_synced(durable.load(Ordering::Acquire));
        let written_at = Instant::now();
        let result = wal
            .write_batch(&batch)
            .and_then(|w| match wal.active_syncer() {
                Some(syncer) => Ok((w, syncer)),
                None => Err(WalError::Failed {
                    reason: "no active segment after a write".into(),
                }),
            });
        match result {
            Ok((written, syncer)) => {
                let job = SyncJob {
                    syncer,
                    end_seq: written.end_seq,
                    records: written.records,
                    waiting: std::mem::take(&mut waiting),
                    bytes: batch.iter().map(|r| r.payload_len()).sum(),
                    written_at,
                };
                if let Err(failed) = sync_tx.send(job) {
                    for w in failed.0.waiting {
                        w.done.complete(Err(AppendError::Closed));
                    }
                }
            }
            Err(e) => {
                let err = note_failure(&e, &shared);
                for w in waiting.drain(..) {
                    w.done.complete(Err(err.clone()));
                }
            }
        }
        batch.clear();
    }
    drop(sync_tx);
    let _ = syncer.join();
    // Drain: make whatever was written before shutdown durable.
    if shared.failed.get().is_none() {
        if let Err(e) = wal.sync() {
            note_failure(&e, &shared);
        }
    }
}

fn note_failure(e: &WalError, shared: &Shared) -> AppendError {
    let err = AppendError::from_wal(e);
    if e.is_fatal() {
        tracing::error!(code = e.code(), error = %e, "write-ahead log failed; refusing all further writes");
        let _ = shared.failed.set(err.clone());
    }
    err
}

fn sync_loop<Y: SyncData>(rx: Receiver<SyncJob<Y>>, shared: Arc<Shared>, durable: Arc<AtomicU64>) {
    let mut jobs: Vec<SyncJob<Y>> = Vec::new();
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        while let Ok(more) = rx.try_recv() {
            jobs.push(more);
        }
        let started = Instant::now();
        let mut result = match shared.failed.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        if result.is_ok() {
            // Usually one file; after a rotation the old one was synced by
            // the writer already, but syncing it again is harmless.
            let mut synced: Vec<&Arc<Y>> = Vec::new();
            for job in &jobs {
                if synced.iter().any(|s| Arc::ptr_eq(s, &job.syncer)) {
                    continue;
                }
                synced.push(&job.syncer);
            }
            for s in synced.into_iter().rev() {
                if let Err(e) = s.sync_data() {
                    let err =
                        note_failure(&WalError::io("fdatasync", "active segment", e), &shared);
                    result = Err(err);
                    break;
                }
            }
        }
        let stats = &shared.stats;
        match result {
            Ok(()) => {
                let end = jobs.iter().map(|j| j.end_seq).max().unwrap_or(0);
                durable.fetch_max(end, Ordering::Release);
                let records: usize = jobs.iter().map(|j| j.records.len()).sum();
                let sync_time = started.elapsed();
                metrics::histogram!("spine_wal_fsync_seconds").record(sync_time.as_secs_f64());
                metrics::histogram!("spine_wal_batch_records").record(records as f64);
                metrics::counter!("spine_wal_records_total").increment(records as u64);
                metrics::counter!("spine_wal_fsyncs_total").increment(1);
                stats
                    .io_nanos
                    .fetch_add(sync_time.as_nanos() as u64, Ordering::Relaxed);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.records.fetch_add(records as u64, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(jobs.iter().map(|j| j.bytes).sum(), Ordering::Relaxed);
                stats.max_batch.fetch_max(records as u64, Ordering::Relaxed);
                if let Some(oldest) = jobs.first() {
                    stats.write_to_durable_nanos.fetch_add(
                        oldest.written_at.elapsed().as_nanos() as u64,
                        Ordering::Relaxed,
                    );
                }
                for job in jobs.drain(..) {
                    let mut rest = job.records.into_iter();
                    for w in job.waiting {
                        let mine: Vec<AppendedRecord> = rest.by_ref().take(w.count).collect();
                        w.done.complete(Ok(mine));
                    }
                }
            }
            Err(err) => {
                for job in jobs.drain(..) {
                    for w in job.waiting {
                        w.done.complete(Err(err.clone()));
                    }
                }
            }
        }
    }
}

fn control_command<S: Storage>(wal: &mut Wal<S>, cmd: Command, shared: &Shared) {
    let note = |e: &WalError| {
        shared
            .failed
            .get()
            .cloned()
            .unwrap_or_else(|| note_failure(e, shared))
    };
    match cmd {
        Command::Append { .. } | Command::Barrier { .. } | Command::Stop => {}
        Command::Seal { done } => {
            let _ = done.send(wal.seal_active().map_err(|e| note(&e)));
        }
        Command::RemoveOldest {
            upto_exclusive,
            done,
        } => {
            if let Some(failure) = shared.failed.get() {
                let _ = done.send(Err(failure.clone()));
                return;
            }
            let mut removed = Vec::new();
            let result = loop {
                let segs = wal.segments();
                // A sealed segment is wholly below the bound when its successor starts at or below it.
                let removable = segs.len() >= 2
                    && segs[1].first_seq <= upto_exclusive
                    && wal.oldest_sealed().is_some();
                if !removable {
                    break Ok(removed);
                }
                match wal.remove_oldest_sealed() {
                    Ok(Some(info)) => removed.push(info),
                    Ok(None) => break Ok(removed),
                    Err(e) => break Err(note(&e)),
                }
            };
            let _ = done.send(result);
        }
        Command::Segments { done } => {
            let _ = done.send(Ok(wal.segments()));
        }
    }
}
