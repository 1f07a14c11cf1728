//! Criterion benchmarks of rkyv envelope encoding and validation
//! (`spine_core::envelope`), what every logged send and every replayed
//! record pays.
//!
//! - `envelope/to_rkyv`: archiving a typical DATA envelope.
//! - `envelope/from_rkyv_validated`: checking archived bytes with
//!   bytecheck, re-parsing every id and re-validating the envelope, then
//!   building the owned value (the path for bytes from disk or the wire).
//! - `envelope/validate`: the field checks alone on an owned envelope.
//! - `envelope/reject_corrupt`: a flipped byte refused (never a panic).
//!
//! `cargo test --benches` runs each once so CI keeps them working.

// A benchmark whose setup fails must stop loudly; there is no caller to
// return an error to.
#![allow(clippy::expect_used)]

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use spine_core::envelope::{Envelope, MessageType};
use spine_core::ids::{MailboxId, MessageId, WorkflowId};
use spine_core::time::Timestamp;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn envelope() -> Envelope {
    let now = Timestamp::from_unix_seconds(1_780_000_000);
    Envelope {
        message_id: MessageId::from_parts(now, 0x00ab_cdef).expect("message id"),
        message_type: MessageType::Data,
        sender: MailboxId::parse("X26ABC1").expect("sender"),
        recipient: MailboxId::parse("X26ABC2").expect("recipient"),
        workflow_id: WorkflowId::parse("PATH_TEST_RESULTS").expect("workflow"),
        subject: Some("lab results".into()),
        local_id: None,
        file_name: Some("results.csv".into()),
        content_type: Some("text/csv".into()),
        compressed: false,
        encrypted: false,
        checksum: None,
        partner_id: None,
        total_chunks: 1,
        created_at: now,
        expires_at: Timestamp::from_unix_seconds(1_780_432_000),
        linked_message_id: None,
        report: None,
    }
}

fn bench(c: &mut Criterion) {
    let env = envelope();
    env.validate().expect("valid envelope");
    let bytes = env.to_rkyv_bytes().expect("archive");
    assert_eq!(Envelope::from_rkyv_bytes(&bytes).expect("decode"), env);
    let mut corrupt = bytes.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let mut group = c.benchmark_group("envelope");
    group.bench_function("to_rkyv", |b| {
        b.iter(|| black_box(&env).to_rkyv_bytes().expect("archive").len())
    });
    group.bench_function("from_rkyv_validated", |b| {
        b.iter(|| Envelope::from_rkyv_bytes(black_box(&bytes)).expect("decode"))
    });
    group.bench_function("validate", |b| {
        b.iter(|| black_box(&env).validate().is_ok())
    });
    group.bench_function("reject_corrupt", |b| {
        b.iter(|| Envelope::from_rkyv_bytes(black_box(&corrupt)).is_err())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config(false);
    targets = bench
}
criterion_main!(benches);
