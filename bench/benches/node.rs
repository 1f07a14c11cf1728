//! Criterion benchmarks of a whole node, in process.
//!
//! - `node_send_1k_x256/durable`: 256 concurrent 1 KiB sends through a
//!   `NodeHandle` into a durable node (`Node::start`, data directory in a
//!   scratch directory under `std::env::temp_dir()`), until every one is
//!   acknowledged, i.e. on disk. Point `TMPDIR` at the disk under test (not
//!   a tmpfs, or `fdatasync` is free).
//! - `node_send_1k_x256/in_memory`: the same on `Node::start_in_memory`
//!   (memory-only log, NOT durable): the runtime's own cost.
//!
//! Senders and recipients are 1,000 generated mailboxes on an unregistered
//! workflow (any mailbox may send to any). Sample counts and times are
//! small so `cargo bench -p spine-bench --bench node` stays under a minute;
//! `cargo test -p spine-bench --benches` runs each benchmark once.

// A benchmark whose setup fails must stop loudly; there is no caller to
// return an error to.
#![allow(clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spine_actors::node::{Node, NodeHandle, NodeParts, RuntimeConfig, SendRequest, StorageConfig};
use spine_actors::system::SystemClock;
use spine_core::directory::{Credential, Directory, Mailbox};
use spine_core::ids::{MailboxId, OdsCode, WorkflowId};
use spine_core::random::SeededRandom;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: usize = 1024;
const IN_FLIGHT: usize = 256;
const MAILBOXES: usize = 1000;

fn mailbox_ids() -> Vec<MailboxId> {
    (0..MAILBOXES)
        .map(|i| MailboxId::parse(&format!("MB{i:05}")).expect("mailbox id"))
        .collect()
}

fn directory(ids: &[MailboxId]) -> Directory {
    let mut rng = SeededRandom::new(7);
    let mailboxes = ids.iter().enumerate().map(|(i, id)| Mailbox {
        id: id.clone(),
        name: format!("BENCH MAILBOX {i}"),
        ods_code: OdsCode::parse(&format!("B{:05}", i / 10)).expect("ods code"),
        org_code: None,
        org_name: None,
        billing_entity: None,
        active: true,
        credential: Credential::from_password("password", &mut rng, 1).expect("credential"),
    });
    Directory::new(mailboxes.collect::<Vec<_>>(), Vec::new()).expect("directory")
}

fn parts(directory: &Arc<Directory>) -> NodeParts {
    NodeParts {
        runtime: RuntimeConfig::default(),
        directory: Arc::clone(directory),
        clock: Arc::new(SystemClock::new()),
        rng: Box::new(SeededRandom::new(11)),
    }
}

fn storage(dir: &Path) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        ..StorageConfig::default()
    }
}

/// What one batch sends.
struct Load {
    ids: Arc<Vec<MailboxId>>,
    workflow: WorkflowId,
    body: Bytes,
}

/// `IN_FLIGHT` concurrent sends (batch `round`), awaited until all are
/// answered.
async fn send_batch(node: &NodeHandle, load: &Load, round: u64) {
    let mut set = JoinSet::new();
    for i in 0..IN_FLIGHT {
        let n = round as usize * IN_FLIGHT + i;
        let req = SendRequest::simple(
            load.ids[n % MAILBOXES].clone(),
            load.ids[(n * 7 + 1) % MAILBOXES].clone(),
            load.workflow.clone(),
            load.body.clone(),
        );
        let node = node.clone();
        set.spawn(async move { node.send(req).await });
    }
    while let Some(done) = set.join_next().await {
        done.expect("send task").expect("send");
    }
}

fn bench_node(c: &mut Criterion, rt: &Runtime, name: &str, node: &NodeHandle, load: &Load) {
    let mut group = c.benchmark_group("node_send_1k_x256");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    let mut round = 0u64;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    send_batch(node, load, round).await;
                    round += 1;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn node(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ids = mailbox_ids();
    let directory = Arc::new(directory(&ids));
    let load = Load {
        ids: Arc::new(ids),
        workflow: WorkflowId::parse("SPINE_BENCH").expect("workflow id"),
        body: Bytes::from(vec![0x5a; BODY]),
    };
    let scratch = tempfile::Builder::new()
        .prefix("spine-bench-node-")
        .tempdir_in(std::env::temp_dir())
        .expect("scratch directory");

    let (durable, _) = rt
        .block_on(Node::start(storage(scratch.path()), parts(&directory)))
        .expect("start durable node");
    assert!(durable.is_durable());
    bench_node(c, &rt, "durable", &durable, &load);
    rt.block_on(durable.shutdown())
        .expect("shut down durable node");

    let memory = rt
        .block_on(Node::start_in_memory(
            storage(&scratch.path().join("unused")),
            parts(&directory),
        ))
        .expect("start memory-only node");
    bench_node(c, &rt, "in_memory", &memory, &load);
    rt.block_on(memory.shutdown())
        .expect("shut down memory-only node");
}

criterion_group! {
    name = benches;
    config = support::config(true);
    targets = node
}
criterion_main!(benches);
