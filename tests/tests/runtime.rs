//! The node runtime's promises, tested in process through `NodeHandle` on
//! real data directories:
//!
//! - supervision under load (partition, expiry and service actors panic
//!   while senders run): nothing acknowledged is lost, before or after a
//!   restart, no caller hangs, and retries never duplicate;
//! - escalation: too many restarts fail the node, visibly;
//! - a fatal log error (storage failpoints): sends fail for good, reads go
//!   on, a restart recovers everything acknowledged;
//! - backpressure: queues stay within their limits when senders outrun the
//!   disk;
//! - request semantics: inbox order, idempotent acknowledgement and sends,
//!   chunked uploads, subscriptions, access checks, expiry reports;
//! - graceful shutdown with sends in flight.
//!
//! Every test holds [`SERIAL`]: the storage failpoints are process-global,
//! and one node at a time keeps the load tests meaningful on small machines.
//! Every await is bounded ([`within`]), so a hang fails with what it awaited.
//! Time inside the node comes from a `ManualClock`; nothing asserts on
//! wall-clock durations.
//!
//! Three tests began as findings (a partition restarted twice quickly could
//! stay dead; reports written by a partition that then restarted went
//! missing; closed subscriptions accumulated) and now guard their fixes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: helpers fail the test by panicking with context"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use spine_actors::node::{
    FaultTarget, MessageView, Node, NodeHandle, NodeParts, RequestError, RuntimeConfig,
    SendOutcome, SendRequest, StorageConfig,
};
use spine_actors::wal::failpoints;
use spine_core::directory::{load_toml, Directory};
use spine_core::envelope::MessageType;
use spine_core::ids::{MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::partition::PartitionMap;
use spine_core::random::SeededRandom;
use spine_core::time::{ManualClock, Timestamp};
use spine_core::ErrorCode;
use tempfile::TempDir;
use tokio::sync::Mutex;

/// One test at a time (the failpoints are process-global).
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Injected panics that actually happened (counted by the panic hook).
static INJECTED_PANICS: AtomicUsize = AtomicUsize::new(0);

/// The longest any single await may take before the test calls it a hang.
const STEP: Duration = Duration::from_secs(20);

/// A workflow the directory does not list: any sender may use it.
const WORKFLOW: &str = "RUNTIME_TEST";

/// Inbox expiry (the default, 5 days) plus a second.
const PAST_EXPIRY: Duration = Duration::from_secs(5 * 86_400 + 1);

const UNKNOWN: &str = "NODE_OUTCOME_UNKNOWN";
const UNAVAILABLE: &str = "NODE_PARTITION_UNAVAILABLE";
const SHUTTING_DOWN: &str = "NODE_SHUTTING_DOWN";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Takes the suite lock, quiets the expected panic messages of injected
/// faults, and resets the failpoints (also when the test fails).
async fn serial() -> (tokio::sync::MutexGuard<'static, ()>, FailpointReset) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if payload.starts_with("fault injection") {
                INJECTED_PANICS.fetch_add(1, Ordering::AcqRel);
            } else {
                default(info);
            }
        }));
    });
    let guard = SERIAL.lock().await;
    failpoints::fail_sync(false);
    failpoints::fail_write(false);
    (guard, FailpointReset)
}

/// Turns every failpoint off when dropped.
struct FailpointReset;

impl Drop for FailpointReset {
    fn drop(&mut self) {
        failpoints::fail_sync(false);
        failpoints::fail_write(false);
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`STEP`].
async fn within<T>(what: impl Display, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hang: {what} did not finish within {STEP:?}"),
    }
}

fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

fn workflow() -> WorkflowId {
    WorkflowId::parse(WORKFLOW).unwrap()
}

/// `X26ABC1..3` as in the demo directory, plus `X26RT00..X26RT39`, all
/// with password `password`; `LOOKUP_WF` is received by `X26RT00` and
/// `X26RT01`.
fn directory() -> Arc<Directory> {
    let mut toml = String::new();
    let mut ids: Vec<String> = (1..=3).map(|i| format!("X26ABC{i}")).collect();
    ids.extend((0..40).map(|i| format!("X26RT{i:02}")));
    for id in &ids {
        toml.push_str(&format!(
            "[[mailbox]]\nid = \"{id}\"\nname = \"{id}\"\nods_code = \"X26\"\npassword = \"password\"\n\n"
        ));
    }
    toml.push_str("[[workflow]]\nid = \"TEST_WORKFLOW\"\nsenders = [\"X26ABC1\"]\nreceivers = [\"X26ABC2\"]\n\n");
    toml.push_str("[[workflow]]\nid = \"LOOKUP_WF\"\nsenders = [\"X26ABC1\"]\nreceivers = [\"X26RT00\", \"X26RT01\"]\n");
    Arc::new(load_toml(&toml, &mut SeededRandom::new(7), 1).unwrap())
}

fn rt(i: usize) -> MailboxId {
    mb(&format!("X26RT{i:02}"))
}

/// The first `n` test mailboxes: `X26ABC1..3`, then `X26RT00..`.
fn mailboxes(n: usize) -> Vec<MailboxId> {
    let mut out: Vec<MailboxId> = (1..=3).map(|i| mb(&format!("X26ABC{i}"))).collect();
    out.extend((0..40).map(rt));
    out.truncate(n);
    out
}

/// Runtime settings for tests: 4 partitions, no timer-driven expiry,
/// bounded waits.
fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        partitions: 4,
        expiry_interval_ms: 3_600_000,
        request_wait_ms: 10_000,
        shutdown_drain_ms: 10_000,
        ..RuntimeConfig::default()
    }
}

/// A data directory, a clock and a directory that survive node restarts.
struct Harness {
    dir: TempDir,
    clock: Arc<ManualClock>,
    directory: Arc<Directory>,
    runtime: RuntimeConfig,
    storage: StorageConfig,
    starts: u64,
}

impl Harness {
    fn new(runtime: RuntimeConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            segment_bytes: 256 * 1024,
            ..StorageConfig::default()
        };
        Harness {
            dir,
            clock: Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
                1_780_000_000,
            ))),
            directory: directory(),
            runtime,
            storage,
            starts: 0,
        }
    }

    /// Starts a node on the data directory (recovering what is there).
    async fn start(&mut self) -> NodeHandle {
        self.starts += 1;
        let parts = NodeParts {
            runtime: self.runtime.clone(),
            directory: Arc::clone(&self.directory),
            clock: Arc::clone(&self.clock) as Arc<dyn spine_core::time::Clock>,
            rng: Box::new(SeededRandom::new(1000 + self.starts)),
        };
        let (node, _summary) = within(
            format!("Node::start on {}", self.dir.path().display()),
            Node::start(self.storage.clone(), parts),
        )
        .await
        .unwrap_or_else(|e| panic!("node start failed: {e}"));
        node
    }

    fn partition_of(&self, mailbox: &MailboxId) -> u32 {
        PartitionMap::new(self.runtime.partitions)
            .unwrap()
            .partition_of(mailbox)
            .0
    }
}

/// A deterministic body for an idempotency key: `key|` repeated, 64 to
/// ~2 KiB long, so the key can be read back from the stored bytes.
fn body_for(key: &str) -> Bytes {
    let len = 64 + key.bytes().map(usize::from).sum::<usize>() * 7 % 2000;
    let unit = format!("{key}|");
    Bytes::from(unit.repeat(len / unit.len() + 1).into_bytes())
}

fn key_of(body: &[u8]) -> String {
    let end = body.iter().position(|&b| b == b'|').unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

fn request(from: &MailboxId, to: &MailboxId, key: Option<&str>, body: Bytes) -> SendRequest {
    let mut req = SendRequest::simple(from.clone(), to.clone(), workflow(), body);
    req.header.idempotency_key = key.map(str::to_string);
    req
}

/// Sends until the node answers `Ok`, retrying (same idempotency key) on
/// the two errors a supervised restart may cause; any other error fails.
/// Returns the outcome and the error codes seen on the way.
async fn send_until_ok(node: &NodeHandle, req: SendRequest) -> (SendOutcome, Vec<&'static str>) {
    let mut seen = Vec::new();
    for _ in 0..200 {
        match within("send", node.send(req.clone())).await {
            Ok(out) => return (out, seen),
            Err(e) if e.code() == UNKNOWN || e.code() == UNAVAILABLE => {
                seen.push(e.code());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => panic!(
                "send {:?} failed with {} ({e}); only {UNKNOWN} / {UNAVAILABLE} are allowed",
                req.header.idempotency_key,
                e.code()
            ),
        }
    }
    panic!("send {:?} never succeeded", req.header.idempotency_key)
}

/// Every message waiting in `mailbox`'s inbox, following pages.
async fn inbox(node: &NodeHandle, mailbox: &MailboxId) -> Vec<MessageView> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = within(
            format!("list_inbox {mailbox}"),
            node.list_inbox(mailbox, None, after, 5000),
        )
        .await
        .unwrap_or_else(|e| panic!("list_inbox {mailbox}: {} ({e})", e.code()));
        out.extend(page.messages);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Asserts `result` is an error with `code`.
fn assert_code<T: std::fmt::Debug>(what: &str, result: Result<T, RequestError>, code: &str) {
    match result {
        Err(e) => assert_eq!(e.code(), code, "{what}: wrong error ({e})"),
        Ok(v) => panic!("{what}: expected {code}, got Ok({v:?})"),
    }
}

async fn download(node: &NodeHandle, to: &MailboxId, id: &MessageId, chunk: u32) -> Bytes {
    within(format!("download {id}"), node.download(to, id, chunk))
        .await
        .unwrap_or_else(|e| panic!("download {id} chunk {chunk}: {} ({e})", e.code()))
        .body
}

/// What a load run acknowledged: key → (recipient, message id).
type Acked = BTreeMap<String, (MailboxId, MessageId)>;

/// Checks the inboxes of `boxes` hold exactly the `acked` messages: one per
/// key, with the acknowledged id, in the right inbox, with the bytes sent.
async fn check_inboxes(node: &NodeHandle, boxes: &[MailboxId], acked: &Acked) {
    let mut found: BTreeMap<String, Vec<(MailboxId, MessageId)>> = BTreeMap::new();
    for m in boxes {
        for view in inbox(node, m).await {
            let id = view.envelope.message_id;
            let body = download(node, m, &id, 1).await;
            let key = key_of(&body);
            assert_eq!(body, body_for(&key), "bytes of {id} ({key}) differ");
            found.entry(key).or_default().push((m.clone(), id));
        }
    }
    for (key, copies) in &found {
        assert_eq!(
            copies.len(),
            1,
            "key {key} is stored {} times: {copies:?}",
            copies.len()
        );
    }
    for (key, (to, id)) in acked {
        let copies = found
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged {key} ({id} to {to}) is missing"));
        assert_eq!(&copies[0], &(to.clone(), *id), "key {key}");
    }
    assert_eq!(
        found.len(),
        acked.len(),
        "messages stored that no sender was told about"
    );
}

/// What a load run saw.
#[derive(Debug, Default)]
struct LoadReport {
    acked: Acked,
    /// Who sent each key.
    senders: BTreeMap<String, MailboxId>,
    /// Error codes answered before a retry succeeded.
    errors: BTreeMap<&'static str, usize>,
    /// Retries answered as duplicates of an earlier (unknown) attempt.
    recovered_by_key: usize,
}

/// `tasks` concurrent senders, `per_task` sends each, to recipients spread
/// over `boxes`, every send with its own idempotency key and retried until
/// `Ok`. `done` counts finished sends (for fault injectors to pace on).
async fn run_load(
    node: &NodeHandle,
    boxes: &[MailboxId],
    tasks: usize,
    per_task: usize,
    done: Arc<AtomicUsize>,
) -> LoadReport {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let node = node.clone();
        let boxes = boxes.to_vec();
        let done = Arc::clone(&done);
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let from = boxes[t % boxes.len()].clone();
            for i in 0..per_task {
                let to = boxes[(t * 7 + i) % boxes.len()].clone();
                let key = format!("t{t}-m{i}");
                let req = request(&from, &to, Some(&key), body_for(&key));
                let (outcome, seen) = send_until_ok(&node, req).await;
                done.fetch_add(1, Ordering::AcqRel);
                out.push((key, from.clone(), to, outcome, seen));
            }
            out
        }));
    }
    let mut report = LoadReport::default();
    for h in handles {
        for (key, from, to, outcome, seen) in within("a sender task", h).await.unwrap() {
            report.senders.insert(key.clone(), from);
            if !seen.is_empty() && outcome.duplicate {
                report.recovered_by_key += 1;
            }
            for code in seen {
                *report.errors.entry(code).or_default() += 1;
            }
            let previous = report.acked.insert(key.clone(), (to, outcome.message_id));
            assert!(previous.is_none(), "key {key} sent twice by the test");
        }
    }
    report
}

/// Waits until `done` reaches `n`.
async fn progress(done: &AtomicUsize, n: usize) {
    within(format!("{n} sends to finish"), async {
        while done.load(Ordering::Acquire) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// Kills the actor of partition `p` exactly once and waits until it is
/// gone. `probe` is a mailbox of that partition: a subscription to it lives
/// in the actor, so its channel closes when the actor dies.
async fn kill_partition(node: &NodeHandle, probe: &MailboxId, p: u32) {
    within(format!("kill partition {p}"), async {
        let mut rx = loop {
            // A live actor: the subscription is accepted and a later
            // request (same mailbox queue, so processed after it) answered.
            if let Ok(rx) = node.subscribe(probe).await {
                if node.list_inbox(probe, None, None, 10).await.is_ok() && !rx.is_closed() {
                    break rx;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        loop {
            match node.inject_panic(FaultTarget::Partition(p)).await {
                Ok(()) => break,
                Err(e) => {
                    assert_eq!(e.code(), UNAVAILABLE, "inject_panic: {e}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        while rx.recv().await.is_some() {}
    })
    .await;
}

/// Injects a panic into the expiry or service actor, retrying while the
/// supervisor is between the old actor and the new one.
async fn kill_actor(node: &NodeHandle, target: FaultTarget) {
    within(format!("inject {target:?}"), async {
        while node.inject_panic(target).await.is_err() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

async fn shutdown(node: &NodeHandle) {
    within("shutdown", node.shutdown())
        .await
        .unwrap_or_else(|e| panic!("shutdown failed: {e}"));
}

// ---------------------------------------------------------------------------
// 1. Supervision under load
// ---------------------------------------------------------------------------

/// 32 senders × 50 sends while `kill` runs (paced by `done`); then every
/// acknowledged send is in its inbox exactly once with its bytes, and again
/// after a restart. Returns the harness and the restarted node.
async fn load_with_faults<F, Fut>(mut h: Harness, kill: F) -> (Harness, NodeHandle, LoadReport)
where
    F: FnOnce(NodeHandle, Arc<AtomicUsize>, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    const TASKS: usize = 32;
    const PER_TASK: usize = 50;
    let boxes = mailboxes(8);
    let node = h.start().await;
    let done = Arc::new(AtomicUsize::new(0));
    let injector = tokio::spawn(kill(node.clone(), Arc::clone(&done), TASKS * PER_TASK));
    let report = run_load(&node, &boxes, TASKS, PER_TASK, Arc::clone(&done)).await;
    within("the fault injector", injector).await.unwrap();
    assert_eq!(report.acked.len(), TASKS * PER_TASK);
    check_inboxes(&node, &boxes, &report.acked).await;
    // Each sender can track what it sent.
    for (key, (to, id)) in &report.acked {
        let view = within("track", node.track(&report.senders[key], id))
            .await
            .unwrap_or_else(|e| panic!("track {key}: {} ({e})", e.code()));
        assert_eq!(
            (&view.envelope.recipient, view.status),
            (to, MessageStatus::Accepted)
        );
    }
    eprintln!(
        "load: {} acknowledged; errors retried: {:?}; retries answered by key: {}",
        report.acked.len(),
        report.errors,
        report.recovered_by_key
    );
    shutdown(&node).await;
    let node = h.start().await;
    check_inboxes(&node, &boxes, &report.acked).await;
    (h, node, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_panics_under_load_lose_nothing_acknowledged() {
    let _serial = serial().await;
    let h = Harness::new(runtime());
    // Four restarts of one partition (below max_restarts, 5) and two of
    // another, interleaved, while the load runs.
    let probe = mb("X26ABC2");
    let p = h.partition_of(&probe);
    let second = mailboxes(8)
        .into_iter()
        .find(|m| h.partition_of(m) != p)
        .expect("the load's mailboxes span two partitions");
    let q = h.partition_of(&second);
    let plan = [
        (&probe, p),
        (&second, q),
        (&probe, p),
        (&probe, p),
        (&second, q),
        (&probe, p),
    ];
    let plan: Vec<(MailboxId, u32)> = plan.iter().map(|(m, n)| ((*m).clone(), *n)).collect();
    let (_h, node, report) = load_with_faults(h, move |node, done, total| async move {
        let kills = plan.len();
        for (k, (probe, p)) in plan.iter().enumerate() {
            progress(&done, total * (k + 1) / (kills + 1)).await;
            kill_partition(&node, probe, *p).await;
        }
    })
    .await;
    assert!(
        report.errors.values().sum::<usize>() > 0,
        "the panics should have interrupted some sends"
    );
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_actor_panics_under_load_lose_nothing_and_expiry_resumes() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        expiry_interval_ms: 20,
        ..runtime()
    });
    // A probe that expires first: after the load and the panics, the
    // (restarted) expiry actor must still expire it by itself.
    let node = h.start().await;
    let probe = within(
        "probe send",
        // Outside the mailboxes the load uses.
        node.send(request(&rt(31), &rt(30), None, body_for("probe"))),
    )
    .await
    .unwrap()
    .message_id;
    shutdown(&node).await;
    h.clock.advance(Duration::from_secs(3 * 86_400));
    let kills = 4;
    let (h, node, report) = load_with_faults(h, move |node, done, total| async move {
        for k in 1..=kills {
            progress(&done, total * k / (kills + 1)).await;
            kill_actor(&node, FaultTarget::Expiry).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
    .await;
    assert!(
        report.errors.is_empty(),
        "expiry panics disturbed sends: {:?}",
        report.errors
    );
    shutdown(&node).await;

    // Again on one node: panics, then expiry by the timer alone.
    let mut h = h;
    let node = h.start().await;
    for _ in 0..4 {
        kill_actor(&node, FaultTarget::Expiry).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    h.clock.advance(Duration::from_secs(2 * 86_400 + 1));
    let sender = rt(31);
    let report_view = within("the restarted expiry actor to expire the probe", async {
        loop {
            let reports: Vec<MessageView> = inbox(&node, &sender)
                .await
                .into_iter()
                .filter(|m| m.envelope.linked_message_id.as_ref() == Some(&probe))
                .collect();
            if !reports.is_empty() {
                break reports;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(report_view.len(), 1);
    let tracked = within("track", node.track(&sender, &probe)).await.unwrap();
    assert_eq!(tracked.status, MessageStatus::Expired);
    // The load's messages were sent 3 days later: still waiting.
    let mut waiting = 0;
    for m in mailboxes(8) {
        waiting += inbox(&node, &m).await.len();
    }
    assert_eq!(waiting, report.acked.len());
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_actor_panics_under_load_lose_nothing_and_lookups_keep_answering() {
    let _serial = serial().await;
    let h = Harness::new(runtime());
    let answered = Arc::new(AtomicUsize::new(0));
    let answered2 = Arc::clone(&answered);
    let kills = 4;
    let (_h, node, report) = load_with_faults(h, move |node, done, total| async move {
        // Service callers run throughout: every call must be answered
        // correctly (the handle retries across a restart).
        let stop = Arc::new(AtomicBool::new(false));
        let mut callers = Vec::new();
        for c in 0..4 {
            let node = node.clone();
            let stop = Arc::clone(&stop);
            let answered = Arc::clone(&answered2);
            callers.push(tokio::spawn(async move {
                let ods = OdsCode::parse("X26").unwrap();
                let wf = WorkflowId::parse("LOOKUP_WF").unwrap();
                let expected: BTreeSet<MailboxId> = [rt(0), rt(1)].into_iter().collect();
                while !stop.load(Ordering::Acquire) {
                    let me = rt(c);
                    within("authenticate", node.authenticate(&me, "password"))
                        .await
                        .unwrap_or_else(|e| panic!("authenticate: {} ({e})", e.code()));
                    assert_code(
                        "wrong password",
                        within("authenticate", node.authenticate(&me, "nope")).await,
                        "DIR_AUTH_FAILED",
                    );
                    let found: BTreeSet<MailboxId> = within("lookup", node.lookup(&ods, &wf))
                        .await
                        .unwrap_or_else(|e| panic!("lookup: {} ({e})", e.code()))
                        .into_iter()
                        .map(|s| s.mailbox_id)
                        .collect();
                    assert_eq!(found, expected);
                    let found = within("workflow_search", node.workflow_search(&wf))
                        .await
                        .unwrap_or_else(|e| panic!("workflow_search: {} ({e})", e.code()));
                    assert_eq!(found.len(), 2);
                    answered.fetch_add(1, Ordering::AcqRel);
                }
            }));
        }
        for k in 1..=kills {
            progress(&done, total * k / (kills + 1)).await;
            kill_actor(&node, FaultTarget::Service).await;
        }
        progress(&done, total).await;
        stop.store(true, Ordering::Release);
        for c in callers {
            within("a service caller", c).await.unwrap();
        }
    })
    .await;
    assert!(
        report.errors.is_empty(),
        "service panics disturbed sends: {:?}",
        report.errors
    );
    assert!(answered.load(Ordering::Acquire) > 0);
    // And the restarted node's service works.
    within(
        "authenticate",
        node.authenticate(&mb("X26ABC1"), "password"),
    )
    .await
    .unwrap();
    shutdown(&node).await;
}

/// Panics as fast as the partition comes back: whatever the interleaving,
/// the partition must come back each time (or the node fail visibly); it
/// must never stay dead while the node claims to be running.
///
/// Regression (was a finding): the supervisor registers a restarted partition in
/// its `children` map only when it handles the `Restarted` message, but
/// ractor delivers supervision events ahead of ordinary messages. If the new
/// actor fails before `Restarted` is handled (a busy supervisor: every
/// service call goes through it), the failure is ignored as "unknown child":
/// no restart, no escalation, the slot keeps the dead actor, and every
/// request for the partition's mailboxes gets NODE_PARTITION_UNAVAILABLE
/// while the node looks healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_restart_storm_never_leaves_a_dead_partition() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        max_restarts: 1000,
        request_wait_ms: 3_000,
        ..runtime()
    });
    let node = h.start().await;
    let to = mb("X26ABC2");
    let p = h.partition_of(&to);
    let mut acked = Acked::new();
    for i in 0..10 {
        let key = format!("before-{i}");
        let (out, _) = send_until_ok(
            &node,
            request(&mb("X26ABC1"), &to, Some(&key), body_for(&key)),
        )
        .await;
        acked.insert(key, (to.clone(), out.message_id));
    }
    // Keep the supervisor's mailbox busy (every service call asks it for
    // the service actor), so restart notices queue behind other messages.
    let stop = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..16 {
        let node = node.clone();
        let stop = Arc::clone(&stop);
        flood.push(tokio::spawn(async move {
            let wf = WorkflowId::parse("LOOKUP_WF").unwrap();
            while !stop.load(Ordering::Acquire) {
                let _ = node.workflow_search(&wf).await;
            }
        }));
    }
    let panics_before = INJECTED_PANICS.load(Ordering::Acquire);
    let mut injected = 0;
    let storm_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < storm_until
        && INJECTED_PANICS.load(Ordering::Acquire) - panics_before < 300
    {
        if within("inject", node.inject_panic(FaultTarget::Partition(p)))
            .await
            .is_ok()
        {
            injected += 1;
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Release);
    for f in flood {
        within("flood task", f).await.unwrap();
    }
    let injected = (
        injected,
        INJECTED_PANICS.load(Ordering::Acquire) - panics_before,
    );
    eprintln!("storm: (casts, actual panics) = {injected:?} into partition {p}");
    // The partition must serve again (reads are retried by the handle
    // across restarts, for at most request_wait_ms).
    let listed = within(
        "list after the storm",
        node.list_inbox(&to, None, None, 100),
    )
    .await;
    if let Err(e) = listed {
        let failed = tokio::time::timeout(Duration::from_millis(100), node.failed()).await;
        panic!(
            "partition {p} stays dead after the storm ({}: {e}); node failed: {}",
            e.code(),
            failed.map_or("no".to_string(), |why| format!("yes ({why})"))
        );
    }
    assert_eq!(listed.unwrap().total, 10);
    let (out, _) = send_until_ok(
        &node,
        request(&mb("X26ABC1"), &to, Some("after"), body_for("after")),
    )
    .await;
    acked.insert("after".into(), (to.clone(), out.message_id));
    check_inboxes(&node, std::slice::from_ref(&to), &acked).await;
    shutdown(&node).await;
}

// ---------------------------------------------------------------------------
// 2. Escalation
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_many_partition_restarts_fail_the_node() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        max_restarts: 2,
        restart_window_secs: 60,
        ..runtime()
    });
    let node = h.start().await;
    let to = mb("X26ABC2");
    let p = h.partition_of(&to);
    // The limit is per child: two restarts each of another partition, the
    // expiry actor and the service actor do not fail the node.
    let other = (0..40)
        .map(rt)
        .find(|m| h.partition_of(m) != p)
        .expect("a mailbox on another partition");
    let q = h.partition_of(&other);
    for _ in 0..2 {
        kill_partition(&node, &other, q).await;
        kill_actor(&node, FaultTarget::Expiry).await;
        kill_actor(&node, FaultTarget::Service).await;
        // Answered only by a live (restarted) service actor.
        within("authenticate", node.authenticate(&to, "password"))
            .await
            .unwrap();
    }
    let (out, _) = send_until_ok(
        &node,
        request(&mb("X26ABC1"), &other, None, body_for("other")),
    )
    .await;
    assert!(!out.duplicate);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), node.failed())
            .await
            .is_err(),
        "two restarts of each of several children failed the node"
    );
    let mut acked = Acked::new();
    for k in 0..3 {
        let key = format!("before-kill-{k}");
        let (out, _) = send_until_ok(
            &node,
            request(&mb("X26ABC1"), &to, Some(&key), body_for(&key)),
        )
        .await;
        acked.insert(key, (to.clone(), out.message_id));
        assert!(
            tokio::time::timeout(Duration::from_millis(1), node.failed())
                .await
                .is_err(),
            "the node failed after only {k} restarts"
        );
        kill_partition(&node, &to, p).await;
    }
    let reason = within("node.failed()", node.failed()).await;
    assert!(reason.contains("partition"), "failure reason: {reason}");
    // Every later request is refused as NODE_FAILED, whichever partition.
    for m in mailboxes(8) {
        assert_code(
            "send after failure",
            within(
                "send",
                node.send(request(&mb("X26ABC1"), &m, None, body_for("x"))),
            )
            .await,
            "NODE_FAILED",
        );
        assert_code(
            "list after failure",
            within("list", node.list_inbox(&m, None, None, 10)).await,
            "NODE_FAILED",
        );
    }
    let id = &acked.values().next().unwrap().1;
    assert_code(
        "track after failure",
        within("track", node.track(&mb("X26ABC1"), id)).await,
        "NODE_FAILED",
    );
    assert_code(
        "authenticate after failure",
        within("authenticate", node.authenticate(&to, "password")).await,
        "NODE_FAILED",
    );
    // An operator restarts it: shutdown must finish and free the directory,
    // and the restarted node has everything acknowledged.
    let _ = within("shutdown of a failed node", node.shutdown()).await;
    let node = h.start().await;
    check_inboxes(&node, std::slice::from_ref(&to), &acked).await;
    shutdown(&node).await;
}

/// Restarts older than `restart_window_secs` no longer count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarts_outside_the_window_are_forgotten() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        max_restarts: 2,
        restart_window_secs: 1,
        ..runtime()
    });
    let node = h.start().await;
    let to = mb("X26ABC2");
    let p = h.partition_of(&to);
    kill_partition(&node, &to, p).await;
    kill_partition(&node, &to, p).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kill_partition(&node, &to, p).await;
    kill_partition(&node, &to, p).await;
    let (out, _) = send_until_ok(&node, request(&mb("X26ABC1"), &to, None, body_for("y"))).await;
    assert_eq!(out.status, MessageStatus::Accepted);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), node.failed())
            .await
            .is_err(),
        "restarts more than a window apart failed the node"
    );
    // A third within the window does.
    kill_partition(&node, &to, p).await;
    within("node.failed()", node.failed()).await;
    let _ = within("shutdown of a failed node", node.shutdown()).await;
}

// ---------------------------------------------------------------------------
// 3. Fatal log error
// ---------------------------------------------------------------------------

async fn log_failure_is_fatal_but_reads_and_restart_work(fail: fn(bool)) {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let (from, to) = (mb("X26ABC1"), mb("X26ABC2"));
    let mut acked = Acked::new();
    for i in 0..20 {
        let key = format!("ok-{i}");
        let out = within(
            "send",
            node.send(request(&from, &to, Some(&key), body_for(&key))),
        )
        .await
        .unwrap();
        acked.insert(key, (to.clone(), out.message_id));
    }
    let first = acked.values().next().unwrap().1;
    within("ack", node.acknowledge(&to, &first)).await.unwrap();
    // A chunked upload in progress when the disk dies.
    let mut chunked = request(&from, &to, Some("chunked"), body_for("c1"));
    chunked.header.total_chunks = 2;
    let uploading = within("send chunked", node.send(chunked))
        .await
        .unwrap()
        .message_id;

    fail(true);
    assert_code(
        "send while the disk fails",
        within(
            "send",
            node.send(request(&from, &to, Some("doomed"), body_for("doomed"))),
        )
        .await,
        "NODE_LOG_FAILED",
    );
    // Concurrent sends: all refused.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let node = node.clone();
        let (from, to) = (from.clone(), to.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("later-{i}");
            node.send(request(&from, &to, Some(&key), body_for(&key)))
                .await
        }));
    }
    for t in tasks {
        assert_code(
            "concurrent send after the failure",
            within("send", t).await.unwrap(),
            "NODE_LOG_FAILED",
        );
    }
    fail(false);
    // The failure is for good: no retry of the fsync, no new writes.
    for i in 0..5 {
        let key = format!("after-off-{i}");
        assert_code(
            "send after the failpoint is off",
            within(
                "send",
                node.send(request(&from, &to, Some(&key), body_for(&key))),
            )
            .await,
            "NODE_LOG_FAILED",
        );
    }
    let second = acked.values().nth(1).unwrap().1;
    assert_code(
        "ack",
        within("ack", node.acknowledge(&to, &second)).await,
        "NODE_LOG_FAILED",
    );
    assert_code(
        "chunk",
        within(
            "chunk",
            node.send_chunk(&from, &uploading, 2, body_for("c2")),
        )
        .await,
        "NODE_LOG_FAILED",
    );
    assert_code(
        "expire_now",
        within("expire_now", node.expire_now()).await,
        "NODE_LOG_FAILED",
    );

    // Reads still work, with the bytes acknowledged before the failure.
    let mut waiting = acked.clone();
    waiting.retain(|_, (_, id)| id != &first);
    let listed: Vec<MessageId> = inbox(&node, &to)
        .await
        .into_iter()
        .map(|m| m.envelope.message_id)
        .collect();
    for (key, (_, id)) in &waiting {
        assert!(listed.contains(id), "{key} not listed after the log failed");
        assert_eq!(download(&node, &to, id, 1).await, body_for(key));
        let view = within("track", node.track(&from, id)).await.unwrap();
        assert_eq!(view.status, MessageStatus::Accepted);
    }
    let view = within("track", node.track(&from, &first)).await.unwrap();
    assert_eq!(view.status, MessageStatus::Acknowledged);
    within("authenticate", node.authenticate(&from, "password"))
        .await
        .unwrap();

    // Shutdown reports the failure but completes and frees the directory.
    let result = within("shutdown after a log failure", node.shutdown()).await;
    eprintln!("shutdown after the log failure: {result:?}");
    assert!(
        result.is_err(),
        "shutdown should report that the log failed while running"
    );

    let node = h.start().await;
    let after: Vec<MessageView> = inbox(&node, &to).await;
    for (key, (_, id)) in &waiting {
        assert!(
            after.iter().any(|m| &m.envelope.message_id == id),
            "{key} acknowledged before the failure is lost after restart"
        );
        assert_eq!(download(&node, &to, id, 1).await, body_for(key));
    }
    let view = within("track", node.track(&from, &first)).await.unwrap();
    assert_eq!(view.status, MessageStatus::Acknowledged);
    // Sends refused with NODE_LOG_FAILED may or may not have reached the
    // disk before the fsync failed; if one did, it is whole.
    for m in &after {
        let id = &m.envelope.message_id;
        if !waiting.values().any(|(_, w)| w == id) {
            let body = download(&node, &to, id, 1).await;
            let key = key_of(&body);
            assert_eq!(body, body_for(&key));
            eprintln!("refused send {key} is present after restart (it reached the disk)");
        }
    }
    // The node works again.
    within(
        "send after restart",
        node.send(request(&from, &to, Some("new"), body_for("new"))),
    )
    .await
    .unwrap();
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_fsync_fails_the_log_for_good_but_reads_and_restart_work() {
    log_failure_is_fatal_but_reads_and_restart_work(failpoints::fail_sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_write_fails_the_log_for_good_but_reads_and_restart_work() {
    log_failure_is_fatal_but_reads_and_restart_work(failpoints::fail_write).await;
}

// ---------------------------------------------------------------------------
// 4. Backpressure
// ---------------------------------------------------------------------------

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backpressure_bounds_queues_when_senders_outrun_the_disk() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        partitions: 16,
        partition_queue: 8,
        ..runtime()
    });
    h.storage.max_in_flight = 64;
    let node = h.start().await;
    let boxes = mailboxes(43);
    let rss_before = rss_kib();

    // Sample from a plain thread, independent of the runtime's scheduling.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let node = node.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut max_p, mut max_w, mut max_rss, mut samples) = (0, 0, 0, 0u64);
            while !stop.load(Ordering::Acquire) {
                let q = node.queue_depths();
                assert_eq!(q.partition_limit, 8);
                assert_eq!(q.wal_limit, 64);
                for (i, d) in q.partitions.iter().enumerate() {
                    assert!(
                        *d <= q.partition_limit,
                        "partition {i} queue {d} > {}",
                        q.partition_limit
                    );
                }
                assert!(
                    q.wal_in_flight <= q.wal_limit,
                    "wal {} > {}",
                    q.wal_in_flight,
                    q.wal_limit
                );
                max_p = max_p.max(q.partitions.iter().copied().max().unwrap_or(0));
                max_w = max_w.max(q.wal_in_flight);
                if samples % 64 == 0 {
                    max_rss = max_rss.max(rss_kib().unwrap_or(0));
                }
                samples += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            (max_p, max_w, max_rss, samples)
        })
    };

    const SENDERS: usize = 1000;
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let node = node.clone();
        let from = boxes[s % boxes.len()].clone();
        let to = boxes[(s * 13 + 5) % boxes.len()].clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("bp-{s}");
            // 8 KiB bodies: the disk, not the CPU, is the bottleneck.
            let body = Bytes::from(
                format!("{key}|")
                    .repeat(8192 / (key.len() + 1))
                    .into_bytes(),
            );
            let out = node
                .send(request(&from, &to, Some(&key), body.clone()))
                .await;
            (key, to, body, out)
        }));
    }
    let mut acked = BTreeMap::new();
    for t in tasks {
        let (key, to, body, out) = within("a backpressured sender", t).await.unwrap();
        let out = out.unwrap_or_else(|e| panic!("{key}: {} ({e})", e.code()));
        acked.insert(key, (to, out.message_id, body));
    }
    stop.store(true, Ordering::Release);
    let (max_p, max_w, max_rss, samples) = sampler.join().unwrap();
    eprintln!(
        "backpressure: {samples} samples; max partition queue {max_p}/8, max wal in flight {max_w}/64; RSS {rss_before:?} KiB before, max {max_rss} KiB"
    );
    assert!(max_p > 0 && max_w > 0, "the sampler saw no load");
    if let Some(before) = rss_before {
        // 1000 × 8 KiB of bodies is 8 MiB; allow generous slack.
        assert!(
            max_rss.saturating_sub(before) < 512 * 1024,
            "RSS grew by {} KiB",
            max_rss.saturating_sub(before)
        );
    }
    // Every permit comes back (the log releases its own just after the
    // completion it serves, so allow it a moment).
    within("queues to drain", async {
        loop {
            let q = node.queue_depths();
            if q.partitions.iter().all(|d| *d == 0) && q.wal_in_flight == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert_eq!(node.active_requests(), 0);
    let mut stored = 0;
    for m in &boxes {
        for view in inbox(&node, m).await {
            let id = &view.envelope.message_id;
            let body = download(&node, m, id, 1).await;
            let (to, want_id, want_body) = &acked[&key_of(&body)];
            assert_eq!((to, want_id, &body), (m, id, want_body));
            stored += 1;
        }
    }
    assert_eq!(stored, SENDERS);
    shutdown(&node).await;
}

// ---------------------------------------------------------------------------
// 5. Semantics
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbox_order_is_acceptance_order_under_concurrent_senders() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let to = mb("X26ABC2");
    const TASKS: usize = 8;
    const EACH: usize = 40;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let node = node.clone();
        let to = to.clone();
        let from = if t == 0 { mb("X26ABC1") } else { rt(t) };
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..EACH {
                let key = format!("o{t}-{i}");
                let start = Instant::now();
                let out = within(
                    "send",
                    node.send(request(&from, &to, Some(&key), body_for(&key))),
                )
                .await
                .unwrap();
                sent.push((t, i, out.message_id, start, Instant::now()));
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(within("sender", t).await.unwrap());
    }
    let listed = inbox(&node, &to).await;
    assert_eq!(listed.len(), TASKS * EACH);
    let pos: BTreeMap<MessageId, usize> = listed
        .iter()
        .enumerate()
        .map(|(i, m)| (m.envelope.message_id, i))
        .collect();
    // Order keys strictly increase down the inbox.
    for w in listed.windows(2) {
        assert!(w[0].accepted_seq < w[1].accepted_seq);
    }
    // One sender's sequential sends appear in send order.
    for t in 0..TASKS {
        let mine: Vec<usize> = sent
            .iter()
            .filter(|s| s.0 == t)
            .map(|s| pos[&s.2])
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "sender {t}: {mine:?}");
    }
    // Across senders: no message listed before one that was acknowledged
    // before it was even sent.
    let mut by_pos: Vec<&(usize, usize, MessageId, Instant, Instant)> = sent.iter().collect();
    by_pos.sort_by_key(|s| pos[&s.2]);
    let mut latest_start: Option<(Instant, &MessageId)> = None;
    for s in &by_pos {
        if let Some((started, earlier)) = latest_start {
            assert!(
                started <= s.4,
                "{earlier} is listed before {} but was sent after {} was acknowledged",
                s.2,
                s.2
            );
        }
        if latest_start.is_none_or(|(st, _)| s.3 > st) {
            latest_start = Some((s.3, &s.2));
        }
    }
    // Paging with small pages gives the same sequence.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = within("page", node.list_inbox(&to, None, after, 7))
            .await
            .unwrap();
        assert_eq!(page.total, TASKS * EACH);
        paged.extend(page.messages.into_iter().map(|m| m.envelope.message_id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let all: Vec<MessageId> = listed.iter().map(|m| m.envelope.message_id).collect();
    assert_eq!(paged, all);
    // And the same order after a restart.
    shutdown(&node).await;
    let node = h.start().await;
    let again: Vec<MessageId> = inbox(&node, &to)
        .await
        .into_iter()
        .map(|m| m.envelope.message_id)
        .collect();
    assert_eq!(again, all);
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledge_is_idempotent() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let (from, to) = (mb("X26ABC1"), mb("X26ABC2"));
    let a = within("send", node.send(request(&from, &to, None, body_for("a"))))
        .await
        .unwrap()
        .message_id;
    let b = within("send", node.send(request(&from, &to, None, body_for("b"))))
        .await
        .unwrap()
        .message_id;
    within("ack", node.acknowledge(&to, &a)).await.unwrap();
    let first = within("track", node.track(&from, &a)).await.unwrap();
    assert_eq!(first.status, MessageStatus::Acknowledged);
    let at = first.acknowledged_at.expect("acknowledged_at");
    h.clock.advance(Duration::from_secs(60));
    within("ack again", node.acknowledge(&to, &a))
        .await
        .unwrap();
    // Many at once, on a message already acknowledged and on a fresh one.
    let mut tasks = Vec::new();
    for id in [&a, &b, &b, &a, &b, &b, &b, &a, &b, &b] {
        let node = node.clone();
        let (to, id) = (to.clone(), *id);
        tasks.push(tokio::spawn(
            async move { node.acknowledge(&to, &id).await },
        ));
    }
    for t in tasks {
        within("concurrent ack", t).await.unwrap().unwrap();
    }
    let a_view = within("track", node.track(&from, &a)).await.unwrap();
    assert_eq!(
        a_view.acknowledged_at,
        Some(at),
        "a repeated ack changed the ack time"
    );
    let b_view = within("track", node.track(&from, &b)).await.unwrap();
    assert_eq!(b_view.status, MessageStatus::Acknowledged);
    let b_at = b_view.acknowledged_at;
    assert!(inbox(&node, &to).await.is_empty());
    shutdown(&node).await;
    let node = h.start().await;
    h.clock.advance(Duration::from_secs(60));
    within("ack after restart", node.acknowledge(&to, &a))
        .await
        .unwrap();
    within("ack after restart", node.acknowledge(&to, &b))
        .await
        .unwrap();
    assert_eq!(
        within("track", node.track(&from, &a))
            .await
            .unwrap()
            .acknowledged_at,
        Some(at)
    );
    assert_eq!(
        within("track", node.track(&from, &b))
            .await
            .unwrap()
            .acknowledged_at,
        b_at
    );
    assert!(inbox(&node, &to).await.is_empty());
    shutdown(&node).await;
}

/// Message ids name their owning partition, so look-ups need no index;
/// after a restart with another partition count the ids no longer do, and
/// every message must still be found, downloaded and acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_are_found_after_restart_with_another_partition_count() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let boxes = mailboxes(12);
    let mut sent = Vec::new();
    for (i, to) in boxes.iter().enumerate() {
        let from = &boxes[(i + 1) % boxes.len()];
        let key = format!("m{i}");
        let out = within("send", node.send(request(from, to, None, body_for(&key))))
            .await
            .unwrap();
        sent.push((from.clone(), to.clone(), out.message_id, key));
    }
    shutdown(&node).await;
    for partitions in [3, 1, 7] {
        h.runtime.partitions = partitions;
        let node = h.start().await;
        for (from, to, id, key) in &sent {
            let view = within("track", node.track(from, id)).await.unwrap();
            assert_eq!(&view.envelope.recipient, to);
            assert_eq!(key_of(&download(&node, to, id, 1).await), *key);
        }
        // New sends on this partition count are found too.
        let (from, to) = (&boxes[0], &boxes[5]);
        let fresh = within(
            "send",
            node.send(request(from, to, None, body_for("fresh"))),
        )
        .await
        .unwrap()
        .message_id;
        assert_eq!(key_of(&download(&node, to, &fresh, 1).await), "fresh");
        within("ack", node.acknowledge(to, &fresh)).await.unwrap();
        shutdown(&node).await;
    }
    let node = h.start().await;
    for (from, to, id, _) in &sent {
        within("ack", node.acknowledge(to, id)).await.unwrap();
        let view = within("track", node.track(from, id)).await.unwrap();
        assert_eq!(view.status, MessageStatus::Acknowledged);
    }
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_with_one_idempotency_key_make_one_message() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let (from, to) = (mb("X26ABC1"), mb("X26ABC2"));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let node = node.clone();
        let req = request(&from, &to, Some("same-key"), body_for("same-key"));
        tasks.push(tokio::spawn(async move { node.send(req).await }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(within("send", t).await.unwrap().unwrap());
    }
    let id = outcomes[0].message_id;
    assert!(outcomes.iter().all(|o| o.message_id == id), "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| !o.duplicate).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(|o| o.status == MessageStatus::Accepted));
    let again = within(
        "send",
        node.send(request(&from, &to, Some("same-key"), body_for("x"))),
    )
    .await
    .unwrap();
    assert_eq!((again.message_id, again.duplicate), (id, true));
    // The key belongs to its sender: another sender's same key is new.
    let other = within(
        "send",
        node.send(request(
            &mb("X26ABC3"),
            &to,
            Some("same-key"),
            body_for("same-key"),
        )),
    )
    .await
    .unwrap();
    assert!(!other.duplicate);
    assert_ne!(other.message_id, id);
    let listed = inbox(&node, &to).await;
    assert_eq!(listed.len(), 2);
    shutdown(&node).await;
    let node = h.start().await;
    let again = within(
        "send",
        node.send(request(&from, &to, Some("same-key"), body_for("same-key"))),
    )
    .await
    .unwrap();
    assert_eq!((again.message_id, again.duplicate), (id, true));
    assert_eq!(inbox(&node, &to).await.len(), 2);
    assert_eq!(download(&node, &to, &id, 1).await, body_for("same-key"));
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunked_send_is_listed_only_when_complete() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let (from, to) = (mb("X26ABC1"), mb("X26ABC2"));
    let mut notes = within("subscribe", node.subscribe(&to)).await.unwrap();
    let chunks = [
        body_for("chunk-one"),
        body_for("chunk-two"),
        body_for("chunk-three"),
    ];
    let mut req = request(&from, &to, Some("chunked"), chunks[0].clone());
    req.header.total_chunks = 3;
    let out = within("send chunk 1", node.send(req)).await.unwrap();
    assert_eq!(out.status, MessageStatus::Uploading);
    let id = out.message_id;
    let page = within("list", node.list_inbox(&to, None, None, 10))
        .await
        .unwrap();
    assert!(
        page.messages.is_empty() && page.total == 0,
        "listed before complete"
    );
    assert_code(
        "download while uploading",
        within("dl", node.download(&to, &id, 1)).await,
        "MSG_WRONG_STATUS",
    );
    assert_code(
        "chunk from someone else",
        within(
            "chunk",
            node.send_chunk(&mb("X26ABC3"), &id, 2, chunks[1].clone()),
        )
        .await,
        "MSG_NOT_SENDER",
    );
    assert_code(
        "chunk out of range",
        within("chunk", node.send_chunk(&from, &id, 4, chunks[1].clone())).await,
        "MSG_CHUNK_OUT_OF_RANGE",
    );
    let c2 = within("chunk 2", node.send_chunk(&from, &id, 2, chunks[1].clone()))
        .await
        .unwrap();
    assert!(!c2.complete);
    assert!(within("list", node.list_inbox(&to, None, None, 10))
        .await
        .unwrap()
        .messages
        .is_empty());
    assert!(notes.try_recv().is_err(), "notified before complete");
    let c3 = within("chunk 3", node.send_chunk(&from, &id, 3, chunks[2].clone()))
        .await
        .unwrap();
    assert!(c3.complete);
    let listed = inbox(&node, &to).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].envelope.message_id, id);
    let note = within("notification", notes.recv()).await.unwrap();
    assert_eq!(note.envelope.message_id, id);
    for (i, want) in chunks.iter().enumerate() {
        assert_eq!(
            &download(&node, &to, &id, i as u32 + 1).await,
            want,
            "chunk {}",
            i + 1
        );
    }
    assert_code(
        "chunk 4",
        within("dl", node.download(&to, &id, 4)).await,
        "MSG_CHUNK_OUT_OF_RANGE",
    );
    assert_code(
        "chunk after complete",
        within("chunk", node.send_chunk(&from, &id, 3, chunks[2].clone())).await,
        "MSG_UPLOAD_COMPLETE",
    );
    // Idempotent first chunk: the key answers the same message.
    let mut again = request(&from, &to, Some("chunked"), chunks[0].clone());
    again.header.total_chunks = 3;
    assert_eq!(
        within("resend", node.send(again)).await.unwrap().message_id,
        id
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(notes.try_recv().is_err(), "notified twice");
    shutdown(&node).await;
    let node = h.start().await;
    assert_eq!(inbox(&node, &to).await.len(), 1);
    for (i, want) in chunks.iter().enumerate() {
        assert_eq!(&download(&node, &to, &id, i as u32 + 1).await, want);
    }
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriber_is_notified_of_each_accepted_message() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let (from, to, other) = (mb("X26ABC1"), mb("X26ABC2"), mb("X26ABC3"));
    let mut notes = within("subscribe", node.subscribe(&to)).await.unwrap();
    let mut other_notes = within("subscribe", node.subscribe(&from)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = node.clone();
        let dest = if i % 4 == 3 {
            other.clone()
        } else {
            to.clone()
        };
        let from = from.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("n{i}");
            let out = node
                .send(request(&from, &dest, Some(&key), body_for(&key)))
                .await;
            (dest, out.unwrap().message_id)
        }));
    }
    let mut expected = BTreeSet::new();
    for t in tasks {
        let (dest, id) = within("send", t).await.unwrap();
        if dest == to {
            expected.insert(id);
        }
    }
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let note = within("notification", notes.recv())
            .await
            .expect("subscription closed");
        assert_eq!(note.envelope.recipient, to);
        got.push(note);
    }
    assert!(
        got.windows(2).all(|w| w[0].order < w[1].order),
        "notifications out of order"
    );
    let ids: BTreeSet<MessageId> = got.iter().map(|n| n.envelope.message_id).collect();
    assert_eq!(ids, expected);
    let listed: Vec<u64> = inbox(&node, &to)
        .await
        .iter()
        .filter_map(|m| m.accepted_seq)
        .collect();
    assert_eq!(
        listed,
        got.iter().map(|n| n.order).collect::<Vec<_>>(),
        "order keys match the inbox"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(notes.try_recv().is_err(), "extra notification");
    assert!(
        other_notes.try_recv().is_err(),
        "notified for another mailbox"
    );
    shutdown(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_mailbox_access_is_refused() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let (from, to, stranger) = (mb("X26ABC1"), mb("X26ABC2"), mb("X26ABC3"));
    let id = within(
        "send",
        node.send(request(&from, &to, None, body_for("private"))),
    )
    .await
    .unwrap()
    .message_id;
    assert_code(
        "download by a stranger",
        within("dl", node.download(&stranger, &id, 1)).await,
        "MSG_NOT_RECIPIENT",
    );
    assert_code(
        "download by the sender",
        within("dl", node.download(&from, &id, 1)).await,
        "MSG_NOT_RECIPIENT",
    );
    assert_code(
        "ack by a stranger",
        within("ack", node.acknowledge(&stranger, &id)).await,
        "MSG_NOT_RECIPIENT",
    );
    assert_code(
        "ack by the sender",
        within("ack", node.acknowledge(&from, &id)).await,
        "MSG_NOT_RECIPIENT",
    );
    assert_code(
        "head by a stranger",
        within("head", node.head(&stranger, &id)).await,
        "MSG_NOT_RECIPIENT",
    );
    assert_code(
        "track by a stranger",
        within("track", node.track(&stranger, &id)).await,
        "MSG_NOT_FOUND",
    );
    assert_code(
        "track by the recipient",
        within("track", node.track(&to, &id)).await,
        "MSG_NOT_FOUND",
    );
    let unknown = MessageId::parse("20260101000000000000_ABCDEF").unwrap();
    assert_code(
        "track of an unknown id",
        within("track", node.track(&from, &unknown)).await,
        "MSG_NOT_FOUND",
    );
    assert_code(
        "chunk by a stranger",
        within("chunk", node.send_chunk(&stranger, &id, 2, body_for("x"))).await,
        "MSG_NOT_SENDER",
    );
    assert!(inbox(&node, &stranger).await.is_empty());
    // Nothing changed for the rightful recipient.
    let view = within("track", node.track(&from, &id)).await.unwrap();
    assert_eq!(view.status, MessageStatus::Accepted);
    assert_eq!(download(&node, &to, &id, 1).await, body_for("private"));
    within("ack", node.acknowledge(&to, &id)).await.unwrap();
    shutdown(&node).await;
}

/// All reports (non-delivery) in the inboxes of `boxes`.
async fn reports(node: &NodeHandle, boxes: &[MailboxId]) -> Vec<MessageView> {
    let mut out = Vec::new();
    for m in boxes {
        out.extend(
            inbox(node, m)
                .await
                .into_iter()
                .filter(|v| v.envelope.message_type == MessageType::Report),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_makes_exactly_one_report_per_expired_data_message() {
    let _serial = serial().await;
    // The expiry actor also ticks every 10 ms, racing the explicit rounds.
    let mut h = Harness::new(RuntimeConfig {
        expiry_interval_ms: 10,
        ..runtime()
    });
    let node = h.start().await;
    let boxes = mailboxes(8);
    let mut sent: Vec<(MailboxId, MailboxId, MessageId)> = Vec::new();
    for i in 0..24 {
        let from = boxes[i % boxes.len()].clone();
        let to = boxes[(i * 3 + 1) % boxes.len()].clone();
        let key = format!("e{i}");
        let out = within(
            "send",
            node.send(request(&from, &to, Some(&key), body_for(&key))),
        )
        .await
        .unwrap();
        sent.push((from, to, out.message_id));
    }
    // Two are collected in time: no report for them.
    for (_, to, id) in &sent[..2] {
        within("ack", node.acknowledge(to, id)).await.unwrap();
    }
    let expiring = &sent[2..];
    h.clock.advance(PAST_EXPIRY);
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let node = node.clone();
        rounds.push(tokio::spawn(async move { node.expire_now().await }));
    }
    for r in rounds {
        within("expire_now", r).await.unwrap().unwrap();
    }
    let check = |found: Vec<MessageView>| {
        let mut per: BTreeMap<MessageId, Vec<MessageView>> = BTreeMap::new();
        for r in found {
            let linked = r
                .envelope
                .linked_message_id
                .expect("a report links its message");
            per.entry(linked).or_default().push(r);
        }
        for (from, to, id) in expiring {
            let rs = per.remove(id).unwrap_or_default();
            assert_eq!(rs.len(), 1, "reports for {id}: {rs:?}");
            let r = &rs[0];
            assert_eq!((&r.envelope.sender, &r.envelope.recipient), (to, from));
            assert_eq!(
                r.envelope.report.as_ref().map(|s| s.code.as_str()),
                Some("14")
            );
        }
        assert!(
            per.is_empty(),
            "reports for messages that did not expire: {per:?}"
        );
    };
    let found = within("all reports", async {
        loop {
            let found = reports(&node, &boxes).await;
            if found.len() >= expiring.len() {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    check(found);
    // More rounds change nothing.
    assert_eq!(within("expire_now", node.expire_now()).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    check(reports(&node, &boxes).await);
    for (from, _, id) in expiring {
        assert_eq!(
            within("track", node.track(from, id)).await.unwrap().status,
            MessageStatus::Expired
        );
    }
    for (from, _, id) in &sent[..2] {
        assert_eq!(
            within("track", node.track(from, id)).await.unwrap().status,
            MessageStatus::Acknowledged
        );
    }
    // Replay after a restart yields the same reports.
    shutdown(&node).await;
    let node = h.start().await;
    check(reports(&node, &boxes).await);
    // Reports expire too, without reports of their own.
    h.clock.advance(PAST_EXPIRY);
    within("expire_now", node.expire_now()).await.unwrap();
    within("reports to expire", async {
        loop {
            let mut left = 0;
            for m in &boxes {
                left += inbox(&node, m).await.len();
            }
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    for m in &boxes {
        assert!(
            inbox(&node, m).await.is_empty(),
            "a report of a report in {m}"
        );
    }
    shutdown(&node).await;
}

// ---------------------------------------------------------------------------
// 6. Graceful shutdown
// ---------------------------------------------------------------------------

/// How each send of a tight-loop sender ended.
type Answer = (String, MailboxId, Result<MessageId, &'static str>);

/// `tasks` senders sending in tight loops until the first error (recorded
/// with its code). `done` counts acknowledged sends.
fn spawn_senders(
    node: &NodeHandle,
    tasks: usize,
    round: usize,
    done: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    let boxes = mailboxes(8);
    (0..tasks)
        .map(|t| {
            let node = node.clone();
            let boxes = boxes.clone();
            let done = Arc::clone(done);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let from = boxes[t % boxes.len()].clone();
                for i in 0..100_000 {
                    let to = boxes[(t + i) % boxes.len()].clone();
                    let key = format!("r{round}-s{t}-{i}");
                    let req = request(&from, &to, Some(&key), body_for(&key));
                    match within("send", node.send(req)).await {
                        Ok(out) => {
                            answers.push((key, to, Ok(out.message_id)));
                            done.fetch_add(1, Ordering::AcqRel);
                        }
                        Err(e) => {
                            answers.push((key, to, Err(e.code())));
                            break;
                        }
                    }
                }
                answers
            })
        })
        .collect()
}

async fn collect_answers(tasks: Vec<tokio::task::JoinHandle<Vec<Answer>>>) -> Vec<Answer> {
    let mut out = Vec::new();
    for t in tasks {
        out.extend(within("a sender", t).await.unwrap());
    }
    out
}

/// Runs tight-loop senders on a fresh start of `h`'s node and shuts it
/// down once `trigger` sends were acknowledged. Returns the node, what was
/// acknowledged, and every answer other than `Ok` or `NODE_SHUTTING_DOWN`.
async fn shutdown_under_load(
    h: &mut Harness,
    tasks: usize,
    trigger: usize,
    round: usize,
) -> (NodeHandle, Acked, Vec<String>) {
    let node = h.start().await;
    let done = Arc::new(AtomicUsize::new(0));
    let senders = spawn_senders(&node, tasks, round, &done);
    progress(&done, trigger).await;
    shutdown(&node).await;
    let mut acked = Acked::new();
    let mut other = Vec::new();
    for (key, to, answer) in collect_answers(senders).await {
        match answer {
            Ok(id) => {
                acked.insert(key, (to, id));
            }
            Err(SHUTTING_DOWN) => {}
            Err(code) => other.push(format!("{key}: {code}")),
        }
    }
    (node, acked, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_with_sends_in_flight_keeps_exactly_the_acknowledged_set() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        request_wait_ms: 5_000,
        ..runtime()
    });
    let boxes = mailboxes(8);
    let (node, acked, other) = shutdown_under_load(&mut h, 64, 500, 0).await;
    assert!(
        other.is_empty(),
        "sends in flight at shutdown failed otherwise than {SHUTTING_DOWN}: {other:?}"
    );
    eprintln!("shutdown: {} sends acknowledged before it", acked.len());

    // After shutdown every request is refused as shutting down.
    let (from, to) = (mb("X26ABC1"), mb("X26ABC2"));
    let (some_to, some_id) = acked.values().next().unwrap().clone();
    assert_code(
        "send",
        within(
            "send",
            node.send(request(&from, &to, None, body_for("late"))),
        )
        .await,
        SHUTTING_DOWN,
    );
    assert_code(
        "list",
        within("list", node.list_inbox(&to, None, None, 10)).await,
        SHUTTING_DOWN,
    );
    assert_code(
        "download",
        within("dl", node.download(&some_to, &some_id, 1)).await,
        SHUTTING_DOWN,
    );
    assert_code(
        "ack",
        within("ack", node.acknowledge(&some_to, &some_id)).await,
        SHUTTING_DOWN,
    );
    assert_code(
        "track",
        within("track", node.track(&from, &some_id)).await,
        SHUTTING_DOWN,
    );
    assert_code(
        "subscribe",
        within("subscribe", node.subscribe(&to)).await,
        SHUTTING_DOWN,
    );
    assert_code(
        "expire_now",
        within("expire_now", node.expire_now()).await,
        SHUTTING_DOWN,
    );
    assert_code(
        "authenticate",
        within("auth", node.authenticate(&to, "password")).await,
        SHUTTING_DOWN,
    );
    // A second shutdown is harmless.
    let _ = within("second shutdown", node.shutdown()).await;

    let node = h.start().await;
    check_inboxes(&node, &boxes, &acked).await;
    shutdown(&node).await;
}

/// Many short rounds of shutdown under load, at different moments: the
/// narrow windows (a request admitted just as shutdown begins) must also
/// answer only `Ok` or `NODE_SHUTTING_DOWN`, and what the restarted node
/// holds is exactly what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_shutdowns_under_load_answer_only_ok_or_shutting_down() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        request_wait_ms: 1_000,
        ..runtime()
    });
    let mut acked = Acked::new();
    let mut other = Vec::new();
    for round in 0..20 {
        let (_node, got, errors) = shutdown_under_load(&mut h, 96, 1 + round * 7, round).await;
        acked.extend(got);
        other.extend(errors);
    }
    eprintln!(
        "repeated shutdowns: {} acknowledged, other answers: {other:?}",
        acked.len()
    );
    let node = h.start().await;
    check_inboxes(&node, &mailboxes(8), &acked).await;
    shutdown(&node).await;
    assert!(
        other.is_empty(),
        "answers other than Ok / {SHUTTING_DOWN}: {other:?}"
    );
}

/// A non-delivery report is logged by the expired message's partition but
/// belongs to the sender's. If the expiring partition restarts between
/// logging the report and hearing that it is durable, the report must still
/// reach the sender's inbox (it is in the log), without a node restart.
///
/// Regression (was a finding): the report is forwarded to its owner only from
/// the logging partition's `Durable` handler; when that partition dies
/// first, its rebuild skips the report (it routes creates by recipient), and
/// the sender's partition never hears of it until the whole node restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_reach_the_sender_when_the_expiring_partition_restarts() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let sender = mb("X26ABC1");
    let s = h.partition_of(&sender);
    let to = (0..40)
        .map(rt)
        .find(|m| h.partition_of(m) != s)
        .expect("a mailbox on another partition");
    let r = h.partition_of(&to);
    const N: usize = 300;
    let mut ids = BTreeSet::new();
    for i in 0..N {
        let key = format!("x{i}");
        let out = within(
            "send",
            node.send(request(&sender, &to, Some(&key), body_for(&key))),
        )
        .await
        .unwrap();
        ids.insert(out.message_id);
    }
    h.clock.advance(PAST_EXPIRY);
    // expire_now answers once the events are handed to the log; the panic
    // lands while some of them are still on their way to disk.
    let logged = within("expire_now", node.expire_now()).await.unwrap();
    assert_eq!(logged, 2 * N);
    within("inject", node.inject_panic(FaultTarget::Partition(r)))
        .await
        .unwrap();
    let count_reports = |found: Vec<MessageView>| {
        found
            .iter()
            .filter(|m| {
                m.envelope
                    .linked_message_id
                    .as_ref()
                    .is_some_and(|l| ids.contains(l))
            })
            .count()
    };
    // Wait (bounded) for every report to show up in the sender's inbox.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = count_reports(inbox(&node, &sender).await);
        if seen == N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut expired = 0;
    for id in &ids {
        let v = within("track", node.track(&sender, id)).await.unwrap();
        expired += usize::from(v.status == MessageStatus::Expired);
    }
    shutdown(&node).await;
    let node = h.start().await;
    let after_restart = count_reports(inbox(&node, &sender).await);
    shutdown(&node).await;
    assert_eq!(
        seen, N,
        "only {seen} of {N} reports reached {sender} while running ({expired} messages \
         marked expired); after a node restart {after_restart} are there: the rest were \
         durable but never applied to the sender's partition"
    );
}

/// Subscriptions are what transports hold for long-polling clients, which
/// reconnect all day. A subscription whose receiver is gone must not stay
/// in the partition: on a mailbox that receives nothing, the dead ones are
/// never pruned today (they are only dropped when a notification fails),
/// so memory grows with every reconnect.
///
/// Regression (was a finding): ~1.2 KB per dropped subscription stays in the
/// partition's `subscribers` map until a message arrives for that mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_subscriptions_do_not_accumulate_on_a_quiet_mailbox() {
    let _serial = serial().await;
    let mut h = Harness::new(runtime());
    let node = h.start().await;
    let quiet = rt(20);
    // Warm up, so the allocator's first growth is not counted.
    for _ in 0..1000 {
        drop(within("subscribe", node.subscribe(&quiet)).await.unwrap());
    }
    within("list", node.list_inbox(&quiet, None, None, 10))
        .await
        .unwrap();
    let Some(before) = rss_kib() else {
        shutdown(&node).await;
        return; // no /proc: nothing to measure
    };
    const RECONNECTS: usize = 150_000;
    within("reconnecting subscribers", async {
        for _ in 0..RECONNECTS / 1000 {
            for _ in 0..1000 {
                drop(node.subscribe(&quiet).await.unwrap());
            }
            // The partition has handled those once this later request is
            // answered, so its mailbox never holds more than a batch.
            node.list_inbox(&quiet, None, None, 10).await.unwrap();
        }
    })
    .await;
    let grown = rss_kib().unwrap_or(0).saturating_sub(before);
    shutdown(&node).await;
    eprintln!("{RECONNECTS} dropped subscriptions: RSS grew {grown} KiB");
    assert!(
        grown < 48 * 1024,
        "{RECONNECTS} subscribe-then-drop cycles on a quiet mailbox grew RSS by {grown} KiB \
         (~{} bytes each): closed subscriptions are kept until a message arrives",
        grown * 1024 / RECONNECTS as u64
    );
}

/// Shutdown while a partition is being rebuilt after a panic: shutdown
/// finishes, every acknowledged send survives, a send refused as shutting
/// down was never stored, and only the sends the panic interrupted may have
/// an unknown outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_while_a_partition_restarts_keeps_every_acknowledged_send() {
    let _serial = serial().await;
    let mut h = Harness::new(RuntimeConfig {
        request_wait_ms: 5_000,
        ..runtime()
    });
    let boxes = mailboxes(8);
    let mut acked = Acked::new();
    let mut refused = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    let mut other = Vec::new();
    for round in 0..5 {
        let node = h.start().await;
        let p = h.partition_of(&boxes[round % boxes.len()]);
        let done = Arc::new(AtomicUsize::new(0));
        let senders = spawn_senders(&node, 64, round, &done);
        progress(&done, 100).await;
        within("inject", node.inject_panic(FaultTarget::Partition(p)))
            .await
            .unwrap();
        shutdown(&node).await;
        for (key, to, answer) in collect_answers(senders).await {
            match answer {
                Ok(id) => {
                    acked.insert(key, (to, id));
                }
                Err(SHUTTING_DOWN) => {
                    refused.insert(key);
                }
                Err(UNKNOWN) => {
                    unknown.insert(key);
                }
                Err(code) => other.push(format!("{key}: {code}")),
            }
        }
    }
    eprintln!(
        "shutdown during restart: {} acknowledged, {} refused, {} unknown, other {other:?}",
        acked.len(),
        refused.len(),
        unknown.len()
    );
    let node = h.start().await;
    let mut found: BTreeMap<String, Vec<MessageId>> = BTreeMap::new();
    for m in &boxes {
        for view in inbox(&node, m).await {
            let id = view.envelope.message_id;
            let body = download(&node, m, &id, 1).await;
            let key = key_of(&body);
            assert_eq!(body, body_for(&key));
            found.entry(key).or_default().push(id);
        }
    }
    for (key, (_, id)) in &acked {
        assert_eq!(found.get(key), Some(&vec![*id]), "acknowledged {key}");
    }
    for (key, ids) in &found {
        assert_eq!(ids.len(), 1, "{key} stored twice");
        assert!(
            acked.contains_key(key) || unknown.contains(key),
            "{key} is stored but its sender was told {}",
            if refused.contains(key) {
                SHUTTING_DOWN
            } else {
                "something else"
            }
        );
    }
    shutdown(&node).await;
    assert!(other.is_empty(), "unexpected answers: {other:?}");
}
