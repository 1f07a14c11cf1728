//! Behavioural tests of the group-commit [`WalWriter`] over the
//! fault-injecting [`MemStorage`] and over [`FileStorage`] in a temporary
//! directory.
//!
//! Every await that depends on the writer is bounded by [`LIMIT`], so a bug
//! fails the test instead of hanging it; a [`Rig`] that is dropped while a
//! test is panicking leaks its writer rather than joining it (a join could
//! block forever on a sync held by [`MemStorage::pause_syncs`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use spine_core::wal::{
    self, AppendedRecord, MemStorage, PendingRecord, RecordHeader, RecordLocation, RecoveryReport,
    Storage, Wal, WalConfig, RECORD_HEADER_LEN,
};
use spine_core::ErrorCode;
use tokio::task::coop::unconstrained;
use tokio::task::JoinHandle;

use super::{AppendError, FileStorage, WalHandle, WalWriter, WriterConfig};

/// Upper bound on anything a test waits for.
const LIMIT: Duration = Duration::from_secs(10);
const MAX_RECORD: u32 = 4096;

fn cfg(segment_bytes: u64) -> WalConfig {
    WalConfig {
        segment_bytes,
        max_record_bytes: MAX_RECORD,
        max_batch_records: 256,
    }
}

fn writer_cfg(max_in_flight: usize) -> WriterConfig {
    WriterConfig {
        max_in_flight,
        ..WriterConfig::default()
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`LIMIT`].
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: not done within {LIMIT:?}"),
    }
}

/// Waits (bounded by [`LIMIT`]) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls a future once, outside tokio's cooperative budget: for an append
/// or control call this takes its permit and sends its command, so the
/// command is queued (in call order) before the test goes on.
fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Payload of record `i` of task `t`: a head and a body of varying length,
/// unique per (t, i) so a misplaced record cannot match by accident.
fn parts(t: usize, i: usize) -> (Bytes, Bytes) {
    let head = Bytes::from(format!("t{t}:i{i}|"));
    let len = 1 + (t * 131 + i * 37) % 300;
    let body = Bytes::from(vec![(t * 31 + i) as u8; len]);
    (head, body)
}

fn kind(t: usize, i: usize) -> u8 {
    ((t + i) % 5) as u8
}

fn pending(t: usize, i: usize) -> PendingRecord {
    let (head, body) = parts(t, i);
    PendingRecord {
        kind: kind(t, i),
        head,
        body,
    }
}

fn joined(r: &PendingRecord) -> Vec<u8> {
    [&r.head[..], &r.body[..]].concat()
}

async fn append(h: &WalHandle, t: usize, i: usize) -> Result<AppendedRecord, AppendError> {
    let (head, body) = parts(t, i);
    h.append(kind(t, i), head, body).await
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Replayed {
    seq: u64,
    kind: u8,
    payload: Vec<u8>,
    location: RecordLocation,
}

/// Opens (recovers) the log, returning every replayed record in order.
fn open<S: Storage>(storage: S, config: WalConfig) -> (Wal<S>, RecoveryReport, Vec<Replayed>) {
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(storage, config, |r| {
        seen.push(Replayed {
            seq: r.seq,
            kind: r.kind,
            payload: r.payload.to_vec(),
            location: r.location,
        });
        Ok(())
    })
    .expect("the log reopens");
    (wal, report, seen)
}

/// Records currently in the segment files (synced or not), by scanning them.
fn records_on_disk(disk: &MemStorage) -> u64 {
    wal::inspect(&mut disk.clone(), MAX_RECORD)
        .expect("inspect")
        .iter()
        .map(|s| s.records)
        .sum()
}

fn describe(e: &AppendError) -> (&'static str, String) {
    (e.code(), e.to_string())
}

fn assert_failed_with(e: &AppendError, code: &str) {
    assert!(
        matches!(e, AppendError::Failed { .. }),
        "expected AppendError::Failed, got {e:?}"
    );
    assert_eq!(e.code(), code, "{e}");
}

/// A running writer. Shut down explicitly (bounded); when dropped during a
/// panic the writer is leaked so the failing test reports instead of hanging.
struct Rig {
    writer: Option<WalWriter>,
    handle: Option<WalHandle>,
}

impl Rig {
    fn start<S: Storage + 'static>(wal: Wal<S>, config: WriterConfig) -> Rig {
        let writer = WalWriter::start(wal, config).expect("writer starts");
        let handle = writer.handle();
        Rig {
            writer: Some(writer),
            handle: Some(handle),
        }
    }

    fn handle(&self) -> WalHandle {
        self.handle.clone().expect("rig is running")
    }

    /// Drops the rig's handle and joins the writer, failing after [`LIMIT`].
    /// Every other handle must have been dropped.
    fn shutdown(mut self) {
        self.handle = None;
        if let Some(w) = self.writer.take() {
            shutdown_within(w);
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.handle = None;
        if let Some(w) = self.writer.take() {
            if std::thread::panicking() {
                std::mem::forget(w);
            } else {
                shutdown_within(w);
            }
        }
    }
}

fn shutdown_within(writer: WalWriter) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        writer.shutdown();
        let _ = tx.send(());
    });
    rx.recv_timeout(LIMIT)
        .expect("writer shut down (are all handles dropped?)");
}

async fn join<T>(what: &str, task: JoinHandle<T>) -> T {
    within(what, task).await.expect("task panicked")
}

// ---------------------------------------------------------------------------
// Many concurrent appenders
// ---------------------------------------------------------------------------

const TASKS: usize = 64;
const PER_TASK: usize = 50;

/// 64 tasks x 50 appends: every append is Ok with a distinct sequence number,
/// together exactly 1..=3200; each task's own appends are in order; the
/// writer grouped them; a reopen replays exactly those records, in order,
/// with the right kind, bytes and location.
async fn concurrent_appends_round_trip<S: Storage + 'static>(
    storage: S,
    reopen: impl FnOnce() -> S,
    config: WalConfig,
) {
    let (wal, report, replayed) = open(storage, config.clone());
    assert!(replayed.is_empty());
    assert_eq!(report.next_seq, 1);
    let rig = Rig::start(wal, WriterConfig::default());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let h = rig.handle();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(PER_TASK);
            for i in 0..PER_TASK {
                out.push(append(&h, t, i).await.expect("append succeeds"));
            }
            out
        }));
    }
    let mut acked: BTreeMap<u64, (usize, usize, AppendedRecord)> = BTreeMap::new();
    for (t, task) in tasks.into_iter().enumerate() {
        let out = join("appender", task).await;
        assert!(
            out.windows(2).all(|w| w[0].seq < w[1].seq),
            "task {t}: its sequential appends got increasing sequence numbers"
        );
        for (i, r) in out.into_iter().enumerate() {
            let before = acked.insert(r.seq, (t, i, r));
            assert!(before.is_none(), "sequence number {} given twice", r.seq);
        }
    }
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "sequence numbers are exactly 1..={total}"
    );
    let h = rig.handle();
    assert_eq!(h.stats().records.load(Ordering::Relaxed), total);
    let batches = h.stats().batches.load(Ordering::Relaxed);
    drop(h);
    assert!(
        batches > 0 && batches < total,
        "{total} concurrent records should share sync groups, got {batches} groups"
    );
    rig.shutdown();

    let (_, report, replayed) = open(reopen(), config);
    assert_eq!(report.records, total);
    assert_eq!(report.truncated, None);
    assert_eq!(report.next_seq, total + 1);
    assert_eq!(replayed.len() as u64, total);
    for (rec, (seq, (t, i, appended))) in replayed.iter().zip(&acked) {
        let (head, body) = parts(*t, *i);
        assert_eq!(rec.seq, *seq, "replay is in sequence order");
        assert_eq!(rec.kind, kind(*t, *i), "kind of record {seq}");
        assert_eq!(
            rec.payload,
            [&head[..], &body[..]].concat(),
            "bytes of {seq}"
        );
        assert_eq!(rec.location, appended.location, "location of {seq}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_contiguous_seqs_and_replay_exactly_mem() {
    let disk = MemStorage::new();
    // Small segments: the run also crosses many segment rotations.
    concurrent_appends_round_trip(disk.clone(), || disk.clone(), cfg(64 << 10)).await;
    assert!(disk.file_names().len() > 3, "rotated across segments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_contiguous_seqs_and_replay_exactly_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = FileStorage::open(dir.path()).expect("open storage");
    let path = dir.path().to_path_buf();
    concurrent_appends_round_trip(
        storage,
        || FileStorage::open(&path).expect("reopen after shutdown releases the lock"),
        cfg(256 << 10),
    )
    .await;
}

// ---------------------------------------------------------------------------
// append_many
// ---------------------------------------------------------------------------

/// Concurrent `append_many` calls (1..=12 records) interleaved with single
/// appends: each call's records get consecutive sequence numbers and
/// adjacent locations in one segment, and replay returns them in call order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_many_lands_contiguously_in_order() {
    let disk = MemStorage::new();
    let config = cfg(64 << 10);
    let (wal, _, _) = open(disk.clone(), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let mut tasks = Vec::new();
    for t in 0..16 {
        let h = rig.handle();
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut i = 0;
            for call in 0..20 {
                let n = if t % 2 == 0 { 1 + (t + call) % 12 } else { 1 };
                let records: Vec<PendingRecord> = (i..i + n).map(|j| pending(t, j)).collect();
                i += n;
                let out = h.append_many(records.clone()).await.expect("append_many");
                calls.push((records, out));
            }
            calls
        }));
    }
    let mut by_seq: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for task in tasks {
        for (records, out) in join("append_many task", task).await {
            assert_eq!(out.len(), records.len());
            for w in out.windows(2) {
                assert_eq!(w[1].seq, w[0].seq + 1, "one call's records are consecutive");
                assert_eq!(w[1].location.segment, w[0].location.segment);
                assert_eq!(
                    w[1].location.offset,
                    w[0].location.offset + u64::from(w[0].location.len) + RECORD_HEADER_LEN as u64,
                    "one call's records are adjacent in the file"
                );
            }
            for (r, a) in records.iter().zip(&out) {
                assert!(by_seq.insert(a.seq, joined(r)).is_none());
            }
        }
    }
    let total = by_seq.len() as u64;
    assert_eq!(by_seq.keys().next(), Some(&1));
    assert_eq!(by_seq.keys().last(), Some(&total), "no gaps");
    rig.shutdown();

    let (_, _, replayed) = open(disk, config);
    let got: Vec<(u64, Vec<u8>)> = replayed.into_iter().map(|r| (r.seq, r.payload)).collect();
    assert_eq!(got, by_seq.into_iter().collect::<Vec<_>>());
}

/// A call with more records than `max_in_flight` takes every permit rather
/// than waiting forever for more permits than exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_many_larger_than_max_in_flight_completes() {
    let disk = MemStorage::new();
    let (wal, _, _) = open(disk.clone(), cfg(1 << 20));
    let rig = Rig::start(wal, writer_cfg(4));
    let h = rig.handle();
    let records: Vec<PendingRecord> = (0..10).map(|i| pending(0, i)).collect();
    let out = within("append_many of 10", h.append_many(records))
        .await
        .expect("append_many");
    assert_eq!(
        out.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    drop(h);
    rig.shutdown();
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/// Appends pending when an fdatasync fails all get that failure (WAL_IO);
/// so does every later append, even once the disk works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_failure_fails_pending_and_every_later_append_with_wal_io() {
    let disk = MemStorage::new();
    let (wal, _, _) = open(disk.clone(), cfg(1 << 20));
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    within("first append", append(&h, 0, 0))
        .await
        .expect("healthy append");

    // Hold syncs so that all eight appends are written and waiting on the
    // sync that is about to fail.
    disk.pause_syncs();
    let tasks: Vec<_> = (1..=8)
        .map(|t| {
            let h = h.clone();
            tokio::spawn(async move { append(&h, t, 0).await })
        })
        .collect();
    wait_until("eight appends are written", || records_on_disk(&disk) == 9).await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "no append completes before its sync"
    );
    disk.set_fail_sync(true);
    disk.resume_syncs();

    let mut errors = Vec::new();
    for task in tasks {
        let err = join("pending append", task).await.expect_err("sync failed");
        assert_failed_with(&err, "WAL_IO");
        errors.push(describe(&err));
    }
    let failure = h.failure().expect("the log is failed");
    assert_failed_with(&failure, "WAL_IO");
    assert!(failure.to_string().contains("fdatasync"), "{failure}");
    assert!(
        errors.iter().all(|e| *e == describe(&failure)),
        "one failure for all"
    );

    disk.set_fail_sync(false);
    let later = within("later append", append(&h, 9, 0))
        .await
        .expect_err("log stays failed");
    assert_eq!(describe(&later), describe(&failure));
    let later = within("later append_many", h.append_many(vec![pending(9, 1)]))
        .await
        .expect_err("log stays failed");
    assert_eq!(describe(&later), describe(&failure));
    drop(h);
    rig.shutdown();
}

/// A failed write fails its append with WAL_IO and the log for good; the
/// record acknowledged before it survives a reopen, the failed one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_failure_fails_the_log_for_good() {
    let disk = MemStorage::new();
    let config = cfg(1 << 20);
    let (wal, _, _) = open(disk.clone(), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    let ok = within("first append", append(&h, 0, 0))
        .await
        .expect("healthy append");
    assert_eq!(ok.seq, 1);

    disk.set_fail_write(true);
    let err = within("append", append(&h, 0, 1))
        .await
        .expect_err("write failed");
    assert_failed_with(&err, "WAL_IO");
    assert!(err.to_string().contains("write"), "{err}");
    let failure = h.failure().expect("the log is failed");
    assert_eq!(describe(&failure), describe(&err));

    disk.set_fail_write(false);
    let later = within("later append", append(&h, 0, 2))
        .await
        .expect_err("stays failed");
    assert_eq!(describe(&later), describe(&failure));
    drop(h);
    rig.shutdown();

    let (_, report, replayed) = open(disk, config);
    assert_eq!(report.records, 1);
    assert_eq!(replayed[0].payload, joined(&pending(0, 0)));
}

/// Splitmix64: a tiny seeded generator so every case is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Nothing acknowledged is lost: concurrent appends, an fdatasync failure
/// injected after a random number of acknowledgements, a power loss that
/// keeps a random part of each file's unsynced bytes, then a reopen. Every
/// record whose append returned Ok is present with the right bytes, and
/// every recovered record is one that was appended (no phantoms, no
/// duplicates). Seeded: a failure names the seed that reproduces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sync_failure_and_crash() {
    for seed in 0..48u64 {
        let mut rng = Rng(seed);
        let disk = MemStorage::new();
        let config = cfg(if rng.below(2) == 0 { 4096 } else { 1 << 20 });
        let max_in_flight = [1, 4, 64, 65_536][rng.below(4) as usize];
        let tasks = 1 + rng.below(16) as usize;
        let per_task = 1 + rng.below(40) as usize;
        let total = tasks * per_task;
        // == total: no failure at all; the crash then must lose nothing.
        let fail_after = rng.below(total as u64 + 1) as usize;
        let ctx = format!(
            "seed {seed}: {tasks}x{per_task}, fail after {fail_after} acks, \
             segment {} bytes, max_in_flight {max_in_flight}",
            config.segment_bytes
        );

        let (wal, _, _) = open(disk.clone(), config.clone());
        let rig = Rig::start(wal, writer_cfg(max_in_flight));
        if fail_after == 0 {
            disk.set_fail_sync(true);
        }
        let acks = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (h, disk, acks) = (rig.handle(), disk.clone(), Arc::clone(&acks));
            handles.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..per_task {
                    match append(&h, t, i).await {
                        Ok(r) => {
                            acked.push((r.seq, t, i));
                            if acks.fetch_add(1, Ordering::SeqCst) + 1 == fail_after {
                                disk.set_fail_sync(true);
                            }
                        }
                        Err(e) => assert!(
                            matches!(e, AppendError::Failed { .. }),
                            "only the injected failure may fail an append: {e:?}"
                        ),
                    }
                }
                acked
            }));
        }
        let mut acked: HashMap<u64, Vec<u8>> = HashMap::new();
        for task in handles {
            for (seq, t, i) in join("appender", task).await {
                assert!(acked.insert(seq, joined(&pending(t, i))).is_none(), "{ctx}");
            }
        }
        if fail_after == total {
            assert_eq!(acked.len(), total, "{ctx}: nothing failed");
        } else {
            assert!(acked.len() >= fail_after, "{ctx}");
        }
        rig.shutdown();

        let rng = Mutex::new(rng);
        disk.crash(|_, unsynced| {
            let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
            rng.below(unsynced as u64 + 1) as usize
        });
        let (mut wal, report, replayed) = open(disk.clone(), config.clone());
        let attempted: HashSet<Vec<u8>> = (0..tasks)
            .flat_map(|t| (0..per_task).map(move |i| joined(&pending(t, i))))
            .collect();
        let mut seen = BTreeSet::new();
        let recovered: HashMap<u64, &Vec<u8>> =
            replayed.iter().map(|r| (r.seq, &r.payload)).collect();
        for r in &replayed {
            assert!(
                attempted.contains(&r.payload),
                "{ctx}: phantom record {}",
                r.seq
            );
            assert!(
                seen.insert(r.payload.clone()),
                "{ctx}: record {} duplicated",
                r.seq
            );
        }
        for (seq, bytes) in &acked {
            assert_eq!(
                recovered.get(seq).copied(),
                Some(bytes),
                "{ctx}: acknowledged record {seq} lost or changed"
            );
        }
        // The recovered log accepts appends again, after its last record.
        let more = wal
            .append_batch(&[pending(99, 0)])
            .unwrap_or_else(|e| panic!("{ctx}: append after recovery: {e}"));
        assert_eq!(more[0].seq, report.next_seq, "{ctx}");
    }
}

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

/// An oversize record (head + body together) is rejected with
/// WAL_RECORD_TOO_LARGE, alone or inside append_many, without failing the
/// log or consuming a sequence number; a record of exactly the maximum fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_records_are_rejected_without_failing_the_log() {
    let disk = MemStorage::new();
    let config = cfg(1 << 20);
    let (wal, _, _) = open(disk.clone(), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    let max = MAX_RECORD as usize;
    let head = Bytes::from(vec![1u8; 1000]);

    let err = within(
        "oversize",
        h.append(1, head.clone(), Bytes::from(vec![2u8; max - 999])),
    )
    .await
    .expect_err("one byte too many");
    assert!(matches!(err, AppendError::Rejected { .. }), "{err:?}");
    assert_eq!(err.code(), "WAL_RECORD_TOO_LARGE");

    let mixed = vec![
        pending(0, 0),
        PendingRecord {
            kind: 1,
            head: Bytes::new(),
            body: Bytes::from(vec![0u8; max + 1]),
        },
    ];
    let err = within("mixed", h.append_many(mixed))
        .await
        .expect_err("rejected");
    assert_eq!(err.code(), "WAL_RECORD_TOO_LARGE");
    assert!(h.failure().is_none());

    let exact = within(
        "exact",
        h.append(1, head, Bytes::from(vec![2u8; max - 1000])),
    )
    .await
    .expect("a record of exactly max_record_bytes fits");
    assert_eq!(exact.seq, 1, "rejections consumed no sequence numbers");
    assert_eq!(exact.location.len, MAX_RECORD);
    drop(h);
    rig.shutdown();
    let (_, report, replayed) = open(disk, config);
    assert_eq!(report.records, 1);
    assert_eq!(replayed[0].payload.len(), max);
}

/// A call with more records than `max_batch_records` cannot be one batch:
/// it is rejected (WAL_INVALID_BATCH) without failing the log, and appends
/// queued around it succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_max_batch_records_is_rejected_without_failing_the_log() {
    let disk = MemStorage::new();
    let config = WalConfig {
        max_batch_records: 8,
        ..cfg(1 << 20)
    };
    let (wal, _, _) = open(disk.clone(), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    let mut before = Box::pin(unconstrained(append(&h, 0, 0)));
    assert!(poll_once(before.as_mut()).is_pending());
    let mut big = Box::pin(unconstrained(
        h.append_many((0..9).map(|i| pending(1, i)).collect()),
    ));
    assert!(poll_once(big.as_mut()).is_pending());
    let mut after = Box::pin(unconstrained(append(&h, 0, 1)));
    assert!(poll_once(after.as_mut()).is_pending());

    let err = within("big", big).await.expect_err("too many records");
    assert!(matches!(err, AppendError::Rejected { .. }), "{err:?}");
    assert_eq!(err.code(), "WAL_INVALID_BATCH");
    assert_eq!(within("before", before).await.expect("ok").seq, 1);
    assert_eq!(within("after", after).await.expect("ok").seq, 2);
    assert!(h.failure().is_none());
    drop(h);
    rig.shutdown();
    let (_, report, _) = open(disk, config);
    assert_eq!(report.records, 2);
}

// ---------------------------------------------------------------------------
// Backpressure
// ---------------------------------------------------------------------------

/// With max_in_flight = 4 and syncs held, exactly four appends get into the
/// writer (they are written, not completed); the rest wait for permits and
/// are not written, however long we wait. Once syncs resume all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_bounds_records_in_flight() {
    let disk = MemStorage::new();
    let (wal, _, _) = open(disk.clone(), cfg(1 << 20));
    let rig = Rig::start(wal, writer_cfg(4));
    let h = rig.handle();
    // Creates the segment (its creation syncs) before syncs are held.
    within("first append", append(&h, 0, 0)).await.expect("ok");

    disk.pause_syncs();
    let tasks: Vec<_> = (1..=12)
        .map(|t| {
            let h = h.clone();
            tokio::spawn(async move { append(&h, t, 0).await })
        })
        .collect();
    wait_until("four appends are written", || records_on_disk(&disk) == 5).await;
    // The writer writes whatever it is sent at once (only syncs are held),
    // so a fifth admitted append would show up on disk within this window.
    let grew = tokio::time::timeout(
        Duration::from_millis(300),
        wait_until("more are written", || records_on_disk(&disk) > 5),
    )
    .await;
    assert!(grew.is_err(), "a fifth record got past max_in_flight = 4");
    assert_eq!(records_on_disk(&disk), 5);
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "nothing completes while its sync is held"
    );

    disk.resume_syncs();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(
            join("append", task)
                .await
                .expect("completes after resume")
                .seq,
        );
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=13).collect::<Vec<_>>());
    drop(h);
    rig.shutdown();
}

// ---------------------------------------------------------------------------
// Control commands
// ---------------------------------------------------------------------------

fn first_seqs(segs: &[wal::SegmentInfo]) -> Vec<u64> {
    segs.iter().map(|s| s.first_seq).collect()
}

/// seal() starts a new segment for the next append (and is a no-op on an
/// empty one); remove_segments_before(seq) removes only sealed segments
/// wholly below seq, never the active one; the log still reopens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_and_remove_segments_before() {
    let disk = MemStorage::new();
    let config = cfg(1 << 20);
    let (wal, _, _) = open(disk.clone(), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    let mut seq = 0;
    for seg in 0..3 {
        for i in 0..3 {
            let r = within("append", append(&h, seg, i)).await.expect("ok");
            seq += 1;
            assert_eq!(r.seq, seq);
            assert_eq!(
                r.location.segment,
                3 * seg as u64 + 1,
                "record {seq}'s segment"
            );
        }
        within("seal", h.seal()).await.expect("seal");
        within("seal again", h.seal())
            .await
            .expect("sealing an empty segment");
    }
    let r = within("append", append(&h, 3, 0)).await.expect("ok");
    assert_eq!(
        (r.seq, r.location.segment),
        (10, 10),
        "the seal started a new segment"
    );
    let segs = within("segments", h.segments()).await.expect("segments");
    assert_eq!(first_seqs(&segs), [1, 4, 7, 10]);
    assert_eq!(
        segs.iter().map(|s| s.records).collect::<Vec<_>>(),
        [3, 3, 3, 1]
    );

    let removed = |upto| {
        let h = h.clone();
        async move {
            let r = within("remove", h.remove_segments_before(upto))
                .await
                .expect("remove");
            first_seqs(&r)
        }
    };
    assert_eq!(
        removed(3).await,
        Vec::<u64>::new(),
        "segment 1 still holds record 3"
    );
    assert_eq!(removed(5).await, [1]);
    assert_eq!(removed(7).await, [4], "segment 4 ends at 6: wholly below 7");
    assert_eq!(removed(9).await, Vec::<u64>::new(), "segment 7 holds 9");
    assert_eq!(removed(u64::MAX).await, [7], "never the active segment");
    let segs = within("segments", h.segments()).await.expect("segments");
    assert_eq!(first_seqs(&segs), [10]);
    assert_eq!(disk.file_names(), ["00000000000000000010.wal"]);
    let r = within("append", append(&h, 3, 1)).await.expect("ok");
    assert_eq!(r.seq, 11);
    drop(h);
    rig.shutdown();

    let (_, report, replayed) = open(disk, config);
    assert_eq!(
        (report.first_seq, report.next_seq, report.records),
        (10, 12, 2)
    );
    let payloads: Vec<_> = replayed.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(payloads, [joined(&pending(3, 0)), joined(&pending(3, 1))]);
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

/// Appends queued (and abandoned by their callers) before shutdown are
/// written and synced by shutdown: it does not return while their sync is
/// held, and a power loss right after it, dropping every unsynced byte,
/// loses none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_makes_everything_queued_durable() {
    let disk = MemStorage::new();
    let config = cfg(1 << 20);
    let (wal, _, _) = open(disk.clone(), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    within("first append", append(&h, 0, 0)).await.expect("ok");

    // Hold syncs so nothing queued below can be durable before shutdown.
    disk.pause_syncs();
    let syncs = disk.sync_count();
    for i in 1..=20 {
        let mut fut = Box::pin(unconstrained(append(&h, 0, i)));
        assert!(poll_once(fut.as_mut()).is_pending(), "queued, not done");
    } // each caller gives up: its future is dropped, its command stays queued
    drop(h);
    assert_eq!(disk.sync_count(), syncs, "nothing synced yet");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        rig.shutdown();
        let _ = tx.send(());
    });
    // Shutdown cannot be done while the sync it must wait for is held.
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "shutdown returned before the queued records were synced"
    );
    disk.resume_syncs();
    rx.recv_timeout(LIMIT).expect("shutdown finishes");

    disk.crash(|_, _| 0);
    let (_, report, replayed) = open(disk, config);
    assert_eq!(report.records, 21);
    for (i, r) in replayed.iter().enumerate() {
        assert_eq!(r.payload, joined(&pending(0, i)), "record {}", r.seq);
    }
}

// ---------------------------------------------------------------------------
// Known bugs in writer.rs (see the report that added these tests): run with
// `cargo test -p spine-actors -- --ignored` to see them fail.
// ---------------------------------------------------------------------------

/// Writer docs: "After a fatal error every pending and later append fails
/// with the same reason". An append already queued when a control command's
/// sync fails gets WAL_FAILED ("has failed earlier") instead of the WAL_IO
/// failure that `failure()` and every later append report, because `run`
/// pushes it through `Wal::write_batch` on the failed log instead of
/// completing it with `shared.failed`. The same path is hit, racily, by
/// appends queued while the syncer's fdatasync fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_behind_a_failing_sync_get_the_same_failure() {
    let disk = MemStorage::new();
    let (wal, _, _) = open(disk.clone(), cfg(1 << 20));
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    within("first append", append(&h, 0, 0)).await.expect("ok");

    disk.pause_syncs();
    // The writer runs the seal first (its new segment's sync is held), then
    // the append queued behind it.
    let mut seal = Box::pin(unconstrained(h.seal()));
    assert!(poll_once(seal.as_mut()).is_pending());
    let mut queued = Box::pin(unconstrained(append(&h, 0, 1)));
    assert!(poll_once(queued.as_mut()).is_pending());
    disk.set_fail_sync(true);
    disk.resume_syncs();

    let seal_err = within("seal", seal).await.expect_err("its sync failed");
    assert_failed_with(&seal_err, "WAL_IO");
    let failure = h.failure().expect("failed");
    assert_eq!(describe(&failure), describe(&seal_err));
    let queued_err = within("queued append", queued)
        .await
        .expect_err("log failed");
    assert_eq!(describe(&queued_err), describe(&failure));
    drop(h);
    rig.shutdown();
}

/// Log docs: "Retrying an fsync after a failure is unsafe on Linux ... so we
/// never do", and a failed log refuses every later operation. After the
/// syncer's fdatasync fails, `seal()` still runs on the writer thread
/// against a `Wal` that was never told of the failure: it fdatasyncs the
/// failed segment again and, if that now succeeds, seals it, so a segment
/// whose contents the kernel may have dropped is sealed (and recovery then
/// refuses to start on bad bytes in a sealed segment). The writer should
/// `fail_external` the `Wal` before running control commands too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fsync_is_retried_after_a_sync_failure() {
    let disk = MemStorage::new();
    let (wal, _, _) = open(disk.clone(), cfg(1 << 20));
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    within("first append", append(&h, 0, 0)).await.expect("ok");
    disk.set_fail_sync(true);
    let err = within("append", append(&h, 0, 1))
        .await
        .expect_err("sync failed");
    assert_failed_with(&err, "WAL_IO");
    disk.set_fail_sync(false);

    let syncs = disk.sync_count();
    let files = disk.file_names();
    let sealed = within("seal", h.seal()).await;
    assert!(
        matches!(sealed, Err(AppendError::Failed { .. })),
        "seal on a failed log: {sealed:?}"
    );
    let removed = within("remove", h.remove_segments_before(u64::MAX)).await;
    assert!(
        matches!(removed, Err(AppendError::Failed { .. })),
        "remove on a failed log: {removed:?}"
    );
    assert_eq!(
        disk.sync_count(),
        syncs,
        "an fdatasync was retried after failing"
    );
    assert_eq!(
        disk.file_names(),
        files,
        "a failed log changed its segments"
    );
    drop(h);
    rig.shutdown();
}

// ---------------------------------------------------------------------------
// FileStorage
// ---------------------------------------------------------------------------

/// The directory lock: a second open of a directory in use (by a bare
/// storage or by a running writer) fails; once released, open succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_storage_lock_refuses_a_second_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = FileStorage::open(dir.path()).expect("first open");
    let err = FileStorage::open(dir.path()).expect_err("second open is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(err.to_string().contains("locked"), "{err}");
    drop(first);

    let (wal, _, _) = open(FileStorage::open(dir.path()).expect("reopen"), cfg(1 << 20));
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    within("append", append(&h, 0, 0)).await.expect("ok");
    assert!(
        FileStorage::open(dir.path()).is_err(),
        "the writer holds the lock"
    );
    drop(h);
    rig.shutdown();
    FileStorage::open(dir.path()).expect("released by shutdown");
}

/// A torn final record written by hand into the last segment file:
/// `open_read_only` + `inspect` report it as a torn tail without changing a
/// byte; reopening truncates exactly the torn bytes, keeps every record,
/// and the log then appends after them and reopens clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_torn_tail_is_inspected_read_only_then_truncated_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = cfg(1 << 20);
    let (wal, _, _) = open(FileStorage::open(dir.path()).expect("open"), config.clone());
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    for i in 0..10 {
        within("append", append(&h, 0, i)).await.expect("ok");
    }
    drop(h);
    rig.shutdown();

    let name = "00000000000000000001.wal";
    let path = dir.path().join(name);
    let good = std::fs::read(&path).expect("read segment");
    // The first 60 of 132 bytes of record 11: a write torn by power loss.
    let body = [7u8; 100];
    let header = RecordHeader {
        len: 100,
        seq: 11,
        synced_upto: 11,
        kind: 1,
    }
    .encode(&[&body]);
    let mut torn = good.clone();
    torn.extend_from_slice(&header);
    torn.extend_from_slice(&body[..28]);
    std::fs::write(&path, &torn).expect("write torn tail");

    let mut ro = FileStorage::open_read_only(dir.path()).expect("read-only");
    let reports = wal::inspect(&mut ro, MAX_RECORD).expect("inspect");
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!((report.name.as_str(), report.records), (name, 10));
    assert!(report.torn_tail, "{report:?}");
    assert_eq!(
        report.problem.as_ref().map(|p| p.0),
        Some(good.len() as u64)
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        torn,
        "inspect changed the file"
    );

    let (wal, report, replayed) =
        open(FileStorage::open(dir.path()).expect("open"), config.clone());
    assert_eq!(
        report.truncated,
        Some((
            name.to_string(),
            good.len() as u64,
            (torn.len() - good.len()) as u64
        ))
    );
    assert_eq!(replayed.len(), 10);
    assert_eq!(
        std::fs::read(&path).expect("read"),
        good,
        "exactly the tail was cut"
    );
    let rig = Rig::start(wal, WriterConfig::default());
    let h = rig.handle();
    assert_eq!(
        within("append", append(&h, 0, 10)).await.expect("ok").seq,
        11
    );
    drop(h);
    rig.shutdown();

    let (_, report, replayed) = open(FileStorage::open(dir.path()).expect("open"), config);
    assert_eq!((report.records, report.truncated), (11, None));
    for (i, r) in replayed.iter().enumerate() {
        assert_eq!(r.payload, joined(&pending(0, i)), "record {}", r.seq);
    }
}

#[test]
fn a_callback_dropped_unused_reports_closed() {
    let (tx, rx) = std::sync::mpsc::channel();
    let cb = super::writer::Callback::new(Box::new(move |r| {
        let _ = tx.send(r.map(|v| v.len()));
    }));
    drop(cb);
    match rx.recv_timeout(std::time::Duration::from_secs(1)) {
        Ok(Err(AppendError::Closed)) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
}
