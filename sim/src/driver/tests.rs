//! The deterministic driver on a small hand-written world: every kind of
//! event and fault, twice with the same seed (same hash), once with
//! another (different hash), and every invariant holding; and the PDS
//! look-ups that follow sends (`service_requests_per_send`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use spine_core::directory::{Credential, Directory, Mailbox, Workflow};
use spine_core::ids::{MailboxId, OdsCode, WorkflowId};
use spine_core::random::SeededRandom;
use spine_core::time::Timestamp;

use super::deterministic::run;
use super::{DriverConfig, Observe, RunResult, Storage};
use crate::model::{
    Action, ConsumerMode, Fault, Population, SendSpec, SimEvent, SimMailbox, SimWorkflow,
};
use crate::report::Recorder;

#[derive(Default)]
pub(super) struct Count {
    accepted: u64,
    refused: u64,
    pub(super) delivered: u64,
    faults: Vec<String>,
    /// (answered, failed by code), summed over the run.
    pub(super) service_ok: u64,
    pub(super) service_failed: BTreeMap<String, u64>,
    /// Calls of `service_requests`: one per acknowledged send.
    pub(super) service_batches: u64,
}

impl Observe for Count {
    fn send_accepted(&mut self, _: Timestamp, _: Duration, _: u64) {
        self.accepted += 1;
    }
    fn send_refused(&mut self, _: Timestamp, _: &str) {
        self.refused += 1;
    }
    fn delivered(&mut self, _: Timestamp, _: Duration) {
        self.delivered += 1;
    }
    fn expired(&mut self, _: Timestamp, _: u64) {}
    fn report_received(&mut self, _: Timestamp) {}
    fn service_requests(&mut self, _: Timestamp, ok: u64, failed: &BTreeMap<String, u64>) {
        self.service_ok += ok;
        self.service_batches += 1;
        for (code, n) in failed {
            *self.service_failed.entry(code.clone()).or_insert(0) += n;
        }
    }
    fn queue_depth(&mut self, _: Timestamp, _: usize, _: usize) {}
    fn wal(&mut self, _: Timestamp, _: u64, _: u64) {}
    fn memory(&mut self, _: Timestamp, _: u64) {}
    fn fault(&mut self, _: Timestamp, what: &str) {
        self.faults.push(what.to_string());
    }
    fn progress(&mut self, _: u64, _: Timestamp) {}
}

/// The test's counts and the report's recorder, fed together.
pub(super) struct Both<'a> {
    pub(super) count: &'a mut Count,
    pub(super) recorder: &'a mut Recorder,
}

impl Observe for Both<'_> {
    fn send_accepted(&mut self, at: Timestamp, wall: Duration, bytes: u64) {
        self.count.send_accepted(at, wall, bytes);
        self.recorder.send_accepted(at, wall, bytes);
    }
    fn send_refused(&mut self, at: Timestamp, code: &str) {
        self.count.send_refused(at, code);
        self.recorder.send_refused(at, code);
    }
    fn delivered(&mut self, at: Timestamp, end_to_end: Duration) {
        self.count.delivered(at, end_to_end);
    }
    fn expired(&mut self, _: Timestamp, _: u64) {}
    fn report_received(&mut self, _: Timestamp) {}
    fn service_requests(&mut self, at: Timestamp, ok: u64, failed: &BTreeMap<String, u64>) {
        self.count.service_requests(at, ok, failed);
        self.recorder.service_requests(at, ok, failed);
    }
    fn queue_depth(&mut self, _: Timestamp, _: usize, _: usize) {}
    fn wal(&mut self, _: Timestamp, _: u64, _: u64) {}
    fn memory(&mut self, _: Timestamp, _: u64) {}
    fn fault(&mut self, _: Timestamp, _: &str) {}
    fn progress(&mut self, _: u64, _: Timestamp) {}
}

/// `per_send` look-ups after each of `sends` sends, every one answered,
/// as the driver told the observer and as the recorder counted them.
pub(super) fn assert_all_answered(count: &Count, recorder: &Recorder, sends: u64, per_send: u64) {
    assert_eq!(count.service_batches, sends, "one batch per send");
    assert!(
        count.service_failed.is_empty(),
        "{:?}",
        count.service_failed
    );
    assert_eq!(count.service_ok, per_send * sends);
    let totals = recorder.service_totals();
    assert_eq!(
        (totals.issued, totals.ok, totals.failed_total()),
        (per_send * sends, per_send * sends, 0),
        "{totals:?}"
    );
}

pub(super) fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

fn world() -> (Population, Directory) {
    world_of("X26")
}

/// Three mailboxes (a poller, a push consumer, an absent one) of
/// organisation `ods`, all allowed to send `SIM_WF` to each other.
pub(super) fn world_of(ods: &str) -> (Population, Directory) {
    let modes = [
        (
            "POLLER1",
            ConsumerMode::Poll {
                interval_secs: 60,
                batch: 50,
            },
        ),
        ("PUSHED1", ConsumerMode::Push { delay_ms: 200 }),
        ("ABSENT1", ConsumerMode::Absent),
    ];
    let mailboxes: Vec<SimMailbox> = modes
        .iter()
        .map(|(id, consumer)| SimMailbox {
            id: mb(id),
            ods: OdsCode::parse(ods).unwrap(),
            password: "pw".to_string(),
            hub: false,
            consumer: *consumer,
        })
        .collect();
    let mut rng = SeededRandom::new(1);
    let directory = Directory::new(
        mailboxes.iter().map(|m| Mailbox {
            id: m.id.clone(),
            name: m.id.to_string(),
            ods_code: m.ods.clone(),
            org_code: None,
            org_name: None,
            billing_entity: None,
            active: true,
            credential: Credential::from_password(&m.password, &mut rng, 1).unwrap(),
        }),
        [Workflow {
            id: WorkflowId::parse("SIM_WF").unwrap(),
            senders: mailboxes
                .iter()
                .map(|m| m.id.clone())
                .collect::<BTreeSet<_>>(),
            receivers: mailboxes
                .iter()
                .map(|m| m.id.clone())
                .collect::<BTreeSet<_>>(),
        }],
    )
    .unwrap();
    let population = Population {
        mailboxes,
        workflows: vec![SimWorkflow {
            id: WorkflowId::parse("SIM_WF").unwrap(),
            senders: vec![],
            receivers: vec![],
        }],
    };
    (population, directory)
}

fn events(seed: u64) -> Vec<SimEvent> {
    let start = Timestamp::from_unix_seconds(1_800_000_000);
    let names = ["POLLER1", "PUSHED1", "ABSENT1"];
    let mut out = Vec::new();
    let mut seq = 0;
    let mut push = |secs: u64, action: Action| {
        seq += 1;
        out.push(SimEvent {
            at: start.saturating_add(Duration::from_secs(secs)),
            seq,
            action,
        });
    };
    for i in 0..60u64 {
        let from = names[(i % 3) as usize];
        let to = names[((i + 1 + seed) % 3) as usize];
        push(
            i,
            Action::Send(SendSpec {
                from: mb(from),
                to: mb(to),
                workflow: WorkflowId::parse("SIM_WF").unwrap(),
                bytes: 100 + i * 37,
                chunks: if i % 10 == 0 { 3 } else { 1 },
                content_seed: seed * 1000 + i,
            }),
        );
        if i == 10 {
            push(i, Action::Fault(Fault::PartitionPanic { partition: 1 }));
        }
        if i == 20 {
            push(i, Action::Fault(Fault::NodeCrash));
        }
        if i == 25 {
            push(
                i,
                Action::Fault(Fault::DiskStall {
                    millis: 2,
                    duration_secs: 5,
                }),
            );
        }
        if i == 30 {
            push(i, Action::Fault(Fault::FsyncFailure));
        }
        if i == 40 {
            push(i, Action::Fault(Fault::DropConnections));
            push(i, Action::Fault(Fault::ReconnectStorm { connections: 20 }));
            push(i, Action::Fault(Fault::MalformedInput { frames: 5 }));
        }
        if i % 15 == 0 {
            push(i, Action::Sample);
        }
    }
    for t in [61u64, 120, 200, 400, 700] {
        push(
            t,
            Action::Poll {
                mailbox: mb("POLLER1"),
            },
        );
        push(t, Action::ExpiryTick);
    }
    out
}

fn config(seed: u64, service_requests_per_send: u32) -> DriverConfig {
    DriverConfig {
        seed,
        start: Timestamp::from_unix_seconds(1_800_000_000),
        partitions: 4,
        inbox_expiry: Duration::from_secs(300),
        memory_limit: 4 << 30,
        storage: Storage::Disk(None),
        fsync_recovery: Duration::from_secs(3),
        event_log: None,
        service_requests_per_send,
    }
}

async fn once(seed: u64) -> (RunResult, Count) {
    let (population, directory) = world();
    let config = config(seed, 2);
    let mut count = Count::default();
    let result = run(
        &config,
        &population,
        directory,
        events(seed).into_iter(),
        &mut count,
    )
    .await
    .unwrap();
    (result, count)
}

/// Failpoints are process-global: this is the only test in the crate that
/// uses them, and it runs its three runs one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_and_fault_runs_reproducibly_with_invariants_held() {
    let (a, count) = once(7).await;
    assert!(a.passed(), "{:#?}\n{}", a.verdicts, a.tail.join("\n"));
    assert!(a.accepted > 40, "{a:?}");
    assert!(
        a.refused.values().sum::<u64>() >= 1,
        "the failed log refused sends: {a:?}"
    );
    assert!(a.delivered > 10, "{a:?}");
    assert!(
        a.expired > 0 && a.reports > 0,
        "absent consumer's messages expire: {a:?}"
    );
    assert_eq!(a.lost, 0);
    // Look-ups follow every acknowledged send, faults or not; whatever
    // failed is counted, and the run passed regardless.
    assert_eq!(count.service_batches, a.accepted);
    let failed: u64 = count.service_failed.values().sum();
    assert_eq!(count.service_ok + failed, 2 * a.accepted);
    assert!(count.service_ok > 0);
    assert!(
        count
            .faults
            .iter()
            .any(|f| f.contains("reconnect_storm connections=20 authenticated=20")),
        "{:?}",
        count.faults
    );
    assert!(
        count
            .faults
            .iter()
            .any(|f| f.contains("client_reconnected=true")),
        "{:?}",
        count.faults
    );
    assert!(
        count
            .faults
            .iter()
            .any(|f| f.contains("refused_with_answer=5")),
        "{:?}",
        count.faults
    );
    let (b, _) = once(7).await;
    assert_eq!(a.event_log_hash, b.event_log_hash, "same seed, same log");
    assert_eq!(a.events, b.events);
    let (c, _) = once(8).await;
    assert_ne!(
        a.event_log_hash, c.event_log_hash,
        "another seed, another log"
    );
}

/// N look-ups per acknowledged send, made by its sender: with no fault to
/// refuse them, N × accepted requests, every one answered, one batch per
/// send, counted by the report's recorder too; and the run stays
/// reproducible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_requests_per_send_are_made_after_every_acknowledged_send() {
    // Not a demo organisation: only the population's accreditation lets
    // it look patients up.
    let (population, directory) = world_of("SIM01");
    let quiet: Vec<SimEvent> = events(3)
        .into_iter()
        .filter(|e| !matches!(e.action, Action::Fault(_)))
        .collect();
    let mut hashes = Vec::new();
    for _ in 0..2 {
        let mut config = config(3, 3);
        config.storage = Storage::Memory;
        let mut count = Count::default();
        let mut recorder = Recorder::new(config.start, Duration::from_secs(60));
        let result = run(
            &config,
            &population,
            directory.clone(),
            quiet.clone().into_iter(),
            &mut Both {
                count: &mut count,
                recorder: &mut recorder,
            },
        )
        .await
        .unwrap();
        assert!(result.passed(), "{:#?}", result.verdicts);
        assert_eq!(result.accepted, 60, "{result:?}");
        assert_all_answered(&count, &recorder, 60, 3);
        hashes.push(result.event_log_hash);
    }
    assert_eq!(hashes[0], hashes[1]);
}
