//! Criterion benchmarks of the write-ahead log.
//!
//! - `record/*`: encoding (header + crc32c over a 1 KiB payload) and
//!   decoding (both checksums verified) of one record.
//! - `recovery/scan_4mib_segment`: the recovery scan of a 4 MiB segment of
//!   1 KiB records, in memory.
//! - `append_mem/batch64_1k`: the log's own cost of appending (framing,
//!   checksums, segment rotation) without a disk: `Wal::append_batch` of
//!   64 records of 1 KiB on `MemStorage`, oldest sealed segments removed
//!   as it goes so memory stays bounded.
//! - `append_1k_x256/*`: 256 concurrent 1 KiB appends through the
//!   group-commit `WalWriter` on `FileStorage`, until all are durable, beside
//!   the raw baseline: the same bytes (headers included) in one `write` and
//!   one `fdatasync`. Files live in a scratch directory under
//!   `std::env::temp_dir()`: point `TMPDIR` at the disk under test (not a
//!   tmpfs, or `fdatasync` is free and the comparison means nothing).
//!
//! Sample counts and times are small so `cargo bench -p spine-bench` stays
//! well under two minutes; `cargo test -p spine-bench --benches` runs each
//! benchmark once, so CI keeps them compiling and working.

// A benchmark whose setup fails must stop loudly; there is no caller to
// return an error to.
#![allow(clippy::expect_used)]

mod support;

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use spine_actors::wal::{FileStorage, WalHandle, WalWriter, WriterConfig};
use spine_core::wal::record::decode;
use spine_core::wal::recovery::scan_segment;
use spine_core::wal::{
    MemStorage, PendingRecord, RecordHeader, SegmentHeader, Wal, WalConfig, RECORD_HEADER_LEN,
};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORD: usize = 1024;
const IN_FLIGHT: usize = 256;
const MAX_RECORD: u32 = 1 << 20;

fn header(seq: u64) -> RecordHeader {
    RecordHeader {
        len: RECORD as u32,
        seq,
        synced_upto: seq,
        kind: 1,
    }
}

fn payload(seq: u64) -> Vec<u8> {
    (0..RECORD).map(|i| (i as u64 ^ seq) as u8).collect()
}

fn framed(seq: u64) -> Vec<u8> {
    let body = payload(seq);
    let mut out = header(seq).encode(&[&body]).to_vec();
    out.extend_from_slice(&body);
    out
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes((RECORD_HEADER_LEN + RECORD) as u64));
    let body = payload(7);
    group.bench_function("encode_1k", |b| {
        b.iter(|| black_box(header(black_box(7)).encode(&[black_box(&body)])))
    });
    let bytes = framed(7);
    assert_eq!(decode(&bytes, MAX_RECORD), Ok(header(7)));
    group.bench_function("decode_1k", |b| {
        b.iter(|| decode(black_box(&bytes), MAX_RECORD))
    });
    group.finish();
}

fn recovery(c: &mut Criterion) {
    let mut segment = SegmentHeader { first_seq: 1 }.encode().to_vec();
    let mut seq = 1;
    while segment.len() + RECORD_HEADER_LEN + RECORD <= 4 << 20 {
        segment.extend_from_slice(&framed(seq));
        seq += 1;
    }
    let records = (seq - 1) as usize;
    let scan = scan_segment(&segment, 1, true, MAX_RECORD);
    assert_eq!(scan.records.len(), records, "the segment scans clean");
    let mut group = c.benchmark_group("recovery");
    group.throughput(Throughput::Bytes(segment.len() as u64));
    group.bench_function("scan_4mib_segment", |b| {
        b.iter(|| {
            scan_segment(black_box(&segment), 1, true, MAX_RECORD)
                .records
                .len()
        })
    });
    group.finish();
}

/// Appends `IN_FLIGHT` records concurrently and waits until all are durable.
fn append_mem(c: &mut Criterion) {
    const BATCH: usize = 64;
    let config = WalConfig {
        segment_bytes: 4 << 20,
        ..WalConfig::default()
    };
    let (mut wal, _) = Wal::open(MemStorage::new(), config, |_| Ok(())).expect("in-memory log");
    let batch: Vec<PendingRecord> = (0..BATCH as u64)
        .map(|seq| PendingRecord {
            kind: 1,
            head: Bytes::new(),
            body: Bytes::from(payload(seq)),
        })
        .collect();
    let mut group = c.benchmark_group("append_mem");
    group.throughput(Throughput::Bytes((BATCH * RECORD) as u64));
    group.bench_function("batch64_1k", |b| {
        b.iter(|| {
            let appended = wal.append_batch(black_box(&batch)).expect("append");
            while wal.segments().len() > 2 {
                wal.remove_oldest_sealed().expect("remove sealed");
            }
            appended.len()
        })
    });
    group.finish();
}

async fn append_round(handle: &WalHandle, body: &Bytes) {
    let mut set = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (h, body) = (handle.clone(), body.clone());
        set.spawn(async move { h.append(1, Bytes::new(), body).await });
    }
    while let Some(done) = set.join_next().await {
        done.expect("append task").expect("append");
    }
}

/// Drops every old segment so the log stays small across samples.
async fn reclaim(handle: &WalHandle) {
    handle.seal().await.expect("seal");
    handle
        .remove_segments_before(u64::MAX)
        .await
        .expect("remove segments");
}

fn wal_append(c: &mut Criterion, rt: &Runtime, dir: &Path) {
    let config = WalConfig {
        segment_bytes: 64 << 20,
        max_record_bytes: MAX_RECORD,
        max_batch_records: 4096,
    };
    let storage = FileStorage::open(&dir.join("wal")).expect("open storage");
    let (wal, _) = Wal::open(storage, config, |_| Ok(())).expect("open log");
    let writer = WalWriter::start(wal, WriterConfig::default()).expect("start writer");
    let handle = writer.handle();
    let body = Bytes::from(payload(1));

    let raw_path = dir.join("raw");
    let raw = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw_path)
        .expect("open raw file");
    // The bytes the WAL writes for one round: headers and payloads.
    let raw_batch: Vec<u8> = (0..IN_FLIGHT as u64).flat_map(framed).collect();

    let mut group = c.benchmark_group("append_1k_x256");
    group.throughput(Throughput::Bytes((IN_FLIGHT * RECORD) as u64));
    group.bench_function("wal_writer", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                reclaim(&handle).await;
                let start = Instant::now();
                for _ in 0..iters {
                    append_round(&handle, &body).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("raw_write_fdatasync", |b| {
        b.iter_batched(
            || reset(&raw),
            |()| {
                (&raw).write_all(&raw_batch).expect("write");
                raw.sync_data().expect("fdatasync");
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(handle);
    writer.shutdown();
}

/// Keeps the raw file from growing without bound. Appending past the end
/// (as the WAL does) is what is measured, so the file is emptied, not
/// rewritten in place, and the truncation is made durable outside the
/// timed section.
fn reset(file: &File) {
    if file.metadata().expect("stat raw file").len() >= 64 << 20 {
        file.set_len(0).expect("truncate raw file");
        file.sync_all().expect("sync raw file");
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::Builder::new()
        .prefix("spine-bench-wal-")
        .tempdir_in(std::env::temp_dir())
        .expect("scratch directory");
    wal_append(c, &rt, dir.path());
}

criterion_group! {
    name = benches;
    config = support::config(true);
    targets = record, recovery, append_mem, append
}
criterion_main!(benches);
