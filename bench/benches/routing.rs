//! Criterion benchmarks of routing decisions in `spine-core`: what the
//! node computes for every request before any I/O.
//!
//! - `routing/partition_of`: mailbox → partition (xxh3, then jump
//!   consistent hash), over 1,000 mailboxes and 8 partitions.
//! - `routing/hinted_by`: message id → the partition its suffix names.
//! - `routing/next_tagged_id`: issuing a message id tagged with the
//!   recipient's partition.
//! - `routing/check_send`: the directory's may-A-send-to-B-on-W check
//!   (registered workflow with sender and receiver lists).
//!
//! `cargo test --benches` runs each once so CI keeps them working.

// A benchmark whose setup fails must stop loudly; there is no caller to
// return an error to.
#![allow(clippy::expect_used)]

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spine_core::directory::{Credential, Directory, Mailbox, Workflow};
use spine_core::ids::{MailboxId, MessageIdGenerator, OdsCode, WorkflowId};
use spine_core::partition::PartitionMap;
use spine_core::random::SeededRandom;
use spine_core::time::Timestamp;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MAILBOXES: usize = 1000;
const PARTITIONS: u32 = 8;

fn mailbox_ids() -> Vec<MailboxId> {
    (0..MAILBOXES)
        .map(|i| MailboxId::parse(&format!("MB{i:05}")).expect("mailbox id"))
        .collect()
}

fn directory(ids: &[MailboxId], workflow: &WorkflowId) -> Directory {
    let mut rng = SeededRandom::new(7);
    let mailboxes: Vec<Mailbox> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Mailbox {
            id: id.clone(),
            name: format!("BENCH MAILBOX {i}"),
            ods_code: OdsCode::parse(&format!("B{:05}", i / 10)).expect("ods code"),
            org_code: None,
            org_name: None,
            billing_entity: None,
            active: true,
            credential: Credential::from_password("password", &mut rng, 1).expect("credential"),
        })
        .collect();
    let workflows = vec![Workflow {
        id: workflow.clone(),
        senders: ids.iter().cloned().collect(),
        receivers: ids.iter().cloned().collect(),
    }];
    Directory::new(mailboxes, workflows).expect("directory")
}

fn bench(c: &mut Criterion) {
    let ids = mailbox_ids();
    let map = PartitionMap::new(PARTITIONS).expect("partition map");
    let workflow = WorkflowId::parse("PATH_TEST_RESULTS").expect("workflow");
    let dir = directory(&ids, &workflow);
    let mut generator = MessageIdGenerator::new();
    let mut rng = SeededRandom::new(11);
    let now = Timestamp::from_unix_seconds(1_780_000_000);
    let msg_ids: Vec<_> = ids
        .iter()
        .map(|m| {
            generator
                .next_tagged(now, &mut rng, map.id_tag(m))
                .expect("message id")
        })
        .collect();
    // Routing agrees: an id issued for a mailbox names that mailbox's partition.
    for (m, id) in ids.iter().zip(&msg_ids) {
        assert_eq!(map.hinted_by(id), map.partition_of(m));
    }
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(MAILBOXES as u64));
    group.bench_function("partition_of", |b| {
        b.iter(|| {
            ids.iter()
                .map(|m| map.partition_of(black_box(m)).index())
                .sum::<usize>()
        })
    });
    group.bench_function("hinted_by", |b| {
        b.iter(|| {
            msg_ids
                .iter()
                .map(|id| map.hinted_by(black_box(id)).index())
                .sum::<usize>()
        })
    });
    group.bench_function("next_tagged_id", |b| {
        b.iter(|| {
            ids.iter()
                .filter_map(|m| generator.next_tagged(now, &mut rng, map.id_tag(m)).ok())
                .count()
        })
    });
    group.bench_function("check_send", |b| {
        b.iter(|| {
            ids.iter()
                .zip(ids.iter().rev())
                .filter(|(from, to)| dir.check_send(from, to, black_box(&workflow)).is_ok())
                .count()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config(false);
    targets = bench
}
criterion_main!(benches);
