//! Message store tests: the state machine, replay and compaction, driven
//! through a real [`Wal`] over the fault-injecting [`MemStorage`].

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::envelope::{Envelope, MessageType};
use crate::ids::{MailboxId, MessageId, MessageIdGenerator, WorkflowId};
use crate::random::SeededRandom;
use crate::time::Timestamp;
use crate::wal::{MemStorage, Wal, WalConfig};
use crate::ErrorCode;

const DAY: Duration = Duration::from_secs(86_400);

struct Harness {
    disk: MemStorage,
    wal: Wal<MemStorage>,
    store: MessageStore,
    ids: MessageIdGenerator,
    rng: SeededRandom,
    now: Timestamp,
}

fn wal_config() -> WalConfig {
    WalConfig {
        segment_bytes: 8 * 1024,
        max_record_bytes: 1 << 20,
        max_batch_records: 256,
    }
}

fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

impl Harness {
    fn new() -> Harness {
        let disk = MemStorage::new();
        let (wal, _) = Wal::open(disk.clone(), wal_config(), |_| Ok(())).unwrap();
        Harness {
            disk,
            wal,
            store: MessageStore::new(StoreConfig::default()),
            ids: MessageIdGenerator::new(),
            rng: SeededRandom::new(7),
            now: Timestamp::from_unix_seconds(1_780_000_000),
        }
    }

    fn next_id(&mut self) -> MessageId {
        self.ids.next(self.now, &mut self.rng).unwrap()
    }

    fn envelope(&mut self, from: &str, to: &str, chunks: u32) -> Envelope {
        Envelope {
            message_id: self.next_id(),
            message_type: MessageType::Data,
            sender: mb(from),
            recipient: mb(to),
            workflow_id: WorkflowId::parse("TEST_WORKFLOW").unwrap(),
            subject: Some("lab results".into()),
            local_id: None,
            file_name: Some("results.csv".into()),
            content_type: Some("text/csv".into()),
            compressed: false,
            encrypted: false,
            checksum: None,
            partner_id: None,
            total_chunks: chunks,
            created_at: self.now,
            expires_at: self.now.saturating_add(self.store.config().inbox_expiry),
            linked_message_id: None,
            report: None,
        }
    }

    /// Logs events (one atomic batch) and applies them once durable.
    fn log(&mut self, events: Vec<(Event, Bytes)>) -> Vec<Applied> {
        let records: Vec<_> = events
            .iter()
            .map(|(e, b)| e.to_record(b.clone()).unwrap())
            .collect();
        let appended = self.wal.append_batch(&records).unwrap();
        let mut out = Vec::new();
        for (((event, body), rec), app) in events.iter().zip(&records).zip(appended) {
            let body_loc = ChunkLoc::body_of(app.location, rec.head.len(), body.len());
            out.push(
                self.store
                    .apply(app.seq, app.location, event.clone(), body, body_loc)
                    .unwrap(),
            );
        }
        out
    }

    fn send(&mut self, from: &str, to: &str, body: &[u8]) -> MessageId {
        let env = self.envelope(from, to, 1);
        let id = env.message_id;
        match self.store.check_send(env, None).unwrap() {
            SendCheck::New(ev) => {
                self.log(vec![(ev, Bytes::copy_from_slice(body))]);
            }
            SendCheck::Duplicate(_) => panic!("unexpected duplicate"),
        }
        id
    }

    fn ack(&mut self, mailbox: &str, id: &MessageId) {
        match self.store.check_ack(&mb(mailbox), id, self.now).unwrap() {
            AckCheck::Log(ev) => {
                self.log(vec![(ev, Bytes::new())]);
            }
            AckCheck::AlreadyAcknowledged => {}
        }
    }

    fn content(&mut self, id: &MessageId) -> Vec<u8> {
        let chunks = self.store.get(id).unwrap().chunks.clone();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&self.wal.read(&c.expect("chunk present").into()).unwrap());
        }
        out
    }

    fn replayed(&self) -> MessageStore {
        let mut store = MessageStore::new(self.store.config().clone());
        let (_wal, _) = Wal::open(self.disk.clone(), wal_config(), |r| {
            store.replay(&r).map(|_| ())
        })
        .unwrap();
        store
    }

    fn inbox_ids(&self, mailbox: &str) -> Vec<MessageId> {
        self.store
            .inbox(&mb(mailbox), None, usize::MAX, |_| true)
            .iter()
            .map(|m| m.envelope.message_id)
            .collect()
    }
}

#[test]
fn a_single_chunk_send_is_accepted_listed_acknowledged_and_its_content_dropped() {
    let mut h = Harness::new();
    let id = h.send("X26ABC1", "X26ABC2", b"hello");
    let m = h.store.get(&id).unwrap();
    assert_eq!(m.status, MessageStatus::Accepted);
    assert_eq!(h.inbox_ids("X26ABC2"), vec![id]);
    assert!(h.inbox_ids("X26ABC1").is_empty());
    assert_eq!(h.content(&id), b"hello");
    assert_eq!(h.store.live_bytes(), 5);

    // Only the recipient may acknowledge.
    let err = h.store.check_ack(&mb("X26ABC3"), &id, h.now).unwrap_err();
    assert_eq!(err.code(), "MSG_NOT_RECIPIENT");
    h.ack("X26ABC2", &id);
    let m = h.store.get(&id).unwrap();
    assert_eq!(m.status, MessageStatus::Acknowledged);
    assert!(m.chunks.iter().all(Option::is_none));
    assert!(h.inbox_ids("X26ABC2").is_empty());
    assert_eq!(h.store.live_bytes(), 0);
    // Acknowledge is idempotent and logs nothing more.
    let before = h.wal.next_seq();
    assert_eq!(
        h.store.check_ack(&mb("X26ABC2"), &id, h.now).unwrap(),
        AckCheck::AlreadyAcknowledged
    );
    h.ack("X26ABC2", &id);
    assert_eq!(h.wal.next_seq(), before);
    h.store.check_invariants().unwrap();
}

#[test]
fn a_chunked_message_is_listed_only_once_complete() {
    let mut h = Harness::new();
    let env = h.envelope("X26ABC1", "X26ABC2", 3);
    let id = env.message_id;
    let SendCheck::New(ev) = h.store.check_send(env, None).unwrap() else {
        panic!()
    };
    assert_eq!(
        h.log(vec![(ev, Bytes::from_static(b"one-"))]),
        vec![Applied::Changed]
    );
    assert_eq!(h.store.get(&id).unwrap().status, MessageStatus::Uploading);
    assert!(h.inbox_ids("X26ABC2").is_empty());
    let later = h.send("X26ABC1", "X26ABC2", b"sent later, accepted first");

    assert_eq!(
        h.store
            .check_chunk(&mb("X26ABC2"), &id, 2)
            .unwrap_err()
            .code(),
        "MSG_NOT_SENDER"
    );
    assert_eq!(
        h.store
            .check_chunk(&mb("X26ABC1"), &id, 4)
            .unwrap_err()
            .code(),
        "MSG_CHUNK_OUT_OF_RANGE"
    );
    assert_eq!(
        h.store
            .check_chunk(&mb("X26ABC1"), &id, 1)
            .unwrap_err()
            .code(),
        "MSG_CHUNK_OUT_OF_RANGE"
    );
    let c3 = h.store.check_chunk(&mb("X26ABC1"), &id, 3).unwrap();
    assert_eq!(
        h.log(vec![(c3, Bytes::from_static(b"three"))]),
        vec![Applied::Changed]
    );
    let c2 = h.store.check_chunk(&mb("X26ABC1"), &id, 2).unwrap();
    assert_eq!(
        h.log(vec![(c2, Bytes::from_static(b"two-"))]),
        vec![Applied::Accepted]
    );
    assert_eq!(h.content(&id), b"one-two-three");
    assert_eq!(
        h.store
            .check_chunk(&mb("X26ABC1"), &id, 2)
            .unwrap_err()
            .code(),
        "MSG_UPLOAD_COMPLETE"
    );
    // Listed in acceptance order, not creation order.
    assert_eq!(h.inbox_ids("X26ABC2"), vec![later, id]);
    h.store.check_invariants().unwrap();
}

#[test]
fn a_repeated_idempotency_key_returns_the_original_message() {
    let mut h = Harness::new();
    let env = h.envelope("X26ABC1", "X26ABC2", 1);
    let id = env.message_id;
    let SendCheck::New(ev) = h.store.check_send(env, Some("order-42".into())).unwrap() else {
        panic!()
    };
    h.log(vec![(ev, Bytes::from_static(b"x"))]);
    let again = h.envelope("X26ABC1", "X26ABC2", 1);
    assert_eq!(
        h.store
            .check_send(again.clone(), Some("order-42".into()))
            .unwrap(),
        SendCheck::Duplicate(id)
    );
    // Another sender may use the same key.
    let mut other = again;
    other.sender = mb("X26ABC3");
    assert!(matches!(
        h.store.check_send(other, Some("order-42".into())).unwrap(),
        SendCheck::New(_)
    ));
    let bad = h.envelope("X26ABC1", "X26ABC2", 1);
    assert_eq!(
        h.store
            .check_send(bad, Some("has space".into()))
            .unwrap_err()
            .code(),
        "MSG_IDEMPOTENCY_KEY_INVALID"
    );
    // It survives a restart.
    let replayed = h.replayed();
    assert!(replayed
        .by_idempotency_key(&mb("X26ABC1"), "order-42")
        .is_some());
}

#[test]
fn an_uncollected_message_expires_and_its_sender_gets_exactly_one_report() {
    let mut h = Harness::new();
    let id = h.send("X26ABC1", "X26ABC2", b"never collected");
    let collected = h.send("X26ABC1", "X26ABC2", b"collected");
    h.ack("X26ABC2", &collected);
    assert!(h
        .store
        .expiry_events(h.now.saturating_add(DAY), 10, |_| unreachable!())
        .unwrap()
        .is_empty());
    h.now = h.now.saturating_add(5 * DAY);
    let mut ids = MessageIdGenerator::new();
    ids.observe(&id);
    let mut rng = SeededRandom::new(1);
    let now = h.now;
    let groups = h
        .store
        .expiry_events(now, 10, |_| Ok(ids.next(now, &mut rng).unwrap()))
        .unwrap();
    assert_eq!(groups.len(), 1, "only the uncollected message expires");
    for group in groups {
        h.log(group.into_iter().map(|e| (e, Bytes::new())).collect());
    }
    let m = h.store.get(&id).unwrap();
    assert_eq!(m.status, MessageStatus::Expired);
    assert!(h.inbox_ids("X26ABC2").is_empty());
    let reports = h.store.inbox(&mb("X26ABC1"), None, 10, |_| true);
    assert_eq!(reports.len(), 1);
    let r = &reports[0].envelope;
    assert_eq!(r.message_type, MessageType::Report);
    assert_eq!(r.linked_message_id.as_ref(), Some(&id));
    assert_eq!(r.report.as_ref().map(|s| s.code.as_str()), Some("14"));
    assert_eq!(r.subject.as_deref(), Some("NDR: lab results"));
    assert_eq!(r.sender, mb("X26ABC2"));
    // Nothing more is due; and a report that itself expires yields no report.
    assert!(h
        .store
        .expiry_events(h.now, 10, |_| unreachable!())
        .unwrap()
        .is_empty());
    h.now = h.now.saturating_add(6 * DAY);
    let groups = h
        .store
        .expiry_events(h.now, 10, |_| unreachable!())
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].len(), 1, "a report's expiry produces no report");
    assert_eq!(h.replayed(), h.store);
}

#[test]
fn messages_are_purged_after_thirty_days_whatever_their_status() {
    let mut h = Harness::new();
    let a = h.send("X26ABC1", "X26ABC2", b"a");
    let b = h.send("X26ABC1", "X26ABC2", b"b");
    h.ack("X26ABC2", &a);
    h.now = h.now.saturating_add(29 * DAY);
    assert!(h.store.purge_events(h.now, 10).is_empty());
    h.now = h.now.saturating_add(DAY);
    let purges = h.store.purge_events(h.now, 10);
    assert_eq!(purges.len(), 2);
    h.log(purges.into_iter().map(|e| (e, Bytes::new())).collect());
    assert!(h.store.get(&a).is_none() && h.store.get(&b).is_none());
    assert!(h.store.is_empty());
    assert_eq!(h.replayed(), h.store);
}

#[test]
fn sends_beyond_the_store_limits_are_refused_naming_the_settings() {
    let mut h = Harness::new();
    h.store = MessageStore::new(StoreConfig {
        max_messages: 3,
        max_inbox_depth: 2,
        ..StoreConfig::default()
    });
    let first = h.send("X26ABC1", "X26ABC2", b"1");
    h.send("X26ABC1", "X26ABC2", b"2");
    // The third to the same inbox is refused; another inbox still takes one.
    let env = h.envelope("X26ABC1", "X26ABC2", 1);
    let err = h.store.check_send(env, None).unwrap_err();
    assert_eq!(err.code(), "MSG_LIMIT");
    let text = err.to_string();
    assert!(
        text.starts_with("inbox depth limit of 2 reached")
            && text.contains("storage.max_inbox_depth (--max-inbox-depth)"),
        "{text}"
    );
    h.send("X26ABC1", "X26ABC3", b"3");
    // Acknowledging frees the inbox but not the store: a message counts
    // until it is purged.
    h.ack("X26ABC2", &first);
    let env = h.envelope("X26ABC1", "X26ABC2", 1);
    let err = h.store.check_send(env, None).unwrap_err();
    assert_eq!(err.code(), "MSG_LIMIT");
    let text = err.to_string();
    assert!(
        text.starts_with("stored messages limit of 3 reached")
            && text.contains("storage.max_messages (--max-messages)")
            && text.contains("storage.purge_after (--purge-after-secs)"),
        "{text}"
    );
    h.now = h.now.saturating_add(30 * DAY);
    let purges = h.store.purge_events(h.now, 10);
    h.log(purges.into_iter().map(|e| (e, Bytes::new())).collect());
    h.send("X26ABC1", "X26ABC2", b"4");
    h.store.check_invariants().unwrap();
}

#[test]
fn replay_refuses_an_event_for_a_message_that_should_exist() {
    let mut h = Harness::new();
    let id = h.send("X26ABC1", "X26ABC2", b"x");
    let ghost = Event::Acknowledge {
        message_id: h.next_id(),
        origin: 1,
        at: h.now,
    };
    let rec = ghost.to_record(Bytes::new()).unwrap();
    h.wal.append_batch(&[rec]).unwrap();
    let mut store = MessageStore::new(StoreConfig::default());
    let err = Wal::open(h.disk.clone(), wal_config(), |r| {
        store.replay(&r).map(|_| ())
    })
    .unwrap_err();
    assert_eq!(err.code(), "WAL_REPLAY");
    assert!(err.to_string().contains("unknown message"), "{err}");
    let _ = id;
}

#[test]
fn event_records_round_trip_and_garbage_is_refused() {
    let mut h = Harness::new();
    let env = h.envelope("X26ABC1", "X26ABC2", 2);
    let ev = Event::Create {
        envelope: env.into(),
        idempotency_key: Some("k".into()),
    };
    let rec = ev.to_record(Bytes::from_static(b"body")).unwrap();
    let mut payload = rec.head.to_vec();
    payload.extend_from_slice(&rec.body);
    let payload = Bytes::from(payload);
    let loc = crate::wal::RecordLocation {
        segment: 1,
        offset: 100,
        len: payload.len() as u32,
    };
    let (back, body, body_loc) = Event::from_record(rec.kind, &payload, loc).unwrap();
    assert_eq!(back, ev);
    assert_eq!(body.as_ref(), b"body");
    assert_eq!(body_loc.offset, 100 + rec.head.len() as u64);
    assert!(
        Event::from_record(event::KIND_CHUNK, &payload, loc).is_err(),
        "kind mismatch"
    );
    assert!(Event::from_record(1, &Bytes::from_static(&[9, 0, 0, 0, 1, 2]), loc).is_err());
    assert!(Event::from_record(1, &Bytes::from_static(&[1]), loc).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn garbage_event_bytes_never_panic(kind in 0u8..9, bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let loc = crate::wal::RecordLocation { segment: 1, offset: 0, len: bytes.len() as u32 };
        let _ = Event::from_record(kind, &Bytes::from(bytes), loc);
    }

    /// Any sequence of operations: the state rebuilt from the log equals the
    /// live state; compaction then replay equals it too; and every
    /// acknowledged-as-sent message's content survives byte for byte.
    #[test]
    fn replay_and_compaction_preserve_state(ops in proptest::collection::vec((0u8..6, 0usize..3, 0usize..3, 1usize..600), 1..80)) {
        let mut h = Harness::new();
        let boxes = ["X26ABC1", "X26ABC2", "X26ABC3"];
        let mut uploading: Vec<(MessageId, u32, u32)> = Vec::new();
        for (op, a, b, size) in ops {
            match op {
                0 | 1 => { h.send(boxes[a], boxes[b], &vec![a as u8; size]); }
                2 => {
                    let env = h.envelope(boxes[a], boxes[b], 3);
                    let id = env.message_id;
                    let SendCheck::New(ev) = h.store.check_send(env, None).unwrap() else { panic!() };
                    h.log(vec![(ev, Bytes::from(vec![7u8; size]))]);
                    uploading.push((id, 2, 3));
                }
                3 => if let Some((id, next, total)) = uploading.pop() {
                    // Purged after 30 simulated days: nothing more to upload.
                    let Some(sender) = h.store.get(&id).map(|m| m.envelope.sender.clone()) else { continue };
                    let ev = h.store.check_chunk(&sender, &id, next).unwrap();
                    h.log(vec![(ev, Bytes::from(vec![next as u8; size]))]);
                    if next < total { uploading.push((id, next + 1, total)); }
                },
                4 => {
                    let first = h.store.inbox(&mb(boxes[b]), None, 1, |_| true).first().map(|m| m.envelope.message_id);
                    if let Some(id) = first { h.ack(boxes[b], &id); }
                }
                _ => {
                    h.now = h.now.saturating_add(DAY * (size as u32 % 8));
                    let now = h.now;
                    let mut ids = std::mem::take(&mut h.ids);
                    let mut rng = SeededRandom::new(size as u64);
                    let groups = h.store.expiry_events(now, 100, |_| Ok(ids.next(now, &mut rng).unwrap())).unwrap();
                    h.ids = ids;
                    for g in groups { h.log(g.into_iter().map(|e| (e, Bytes::new())).collect()); }
                    let purges = h.store.purge_events(now, 100);
                    if !purges.is_empty() { h.log(purges.into_iter().map(|e| (e, Bytes::new())).collect()); }
                }
            }
        }
        h.store.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&h.replayed(), &h.store);

        let contents: Vec<(MessageId, Vec<u8>)> = h.store.messages.iter()
            .filter(|(_, m)| m.chunks.iter().all(Option::is_some))
            .map(|(id, _)| *id).collect::<Vec<_>>().into_iter()
            .map(|id| { let c = h.content(&id); (id, c) }).collect();
        h.wal.seal_active().unwrap();
        let existing = h.wal.next_seq();
        compact(&mut h.wal, &mut h.store, &CompactionPolicy::default(), true).unwrap();
        prop_assert!(
            h.wal.segments().iter().all(|s| s.first_seq >= existing),
            "every segment that existed before a forced compaction was reclaimed"
        );
        h.store.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&h.replayed(), &h.store);
        for (id, bytes) in contents {
            prop_assert_eq!(h.content(&id), bytes);
        }
    }
}

#[test]
fn compaction_makes_disk_use_follow_live_data() {
    let mut h = Harness::new();
    let keep = h.send("X26ABC1", "X26ABC2", &[1u8; 4000]);
    for _ in 0..200 {
        let id = h.send("X26ABC1", "X26ABC3", &[2u8; 4000]);
        h.ack("X26ABC3", &id);
    }
    let log_before = h.wal.total_bytes();
    assert!(log_before > 800_000);
    h.wal.seal_active().unwrap();
    let report = compact(&mut h.wal, &mut h.store, &CompactionPolicy::default(), true).unwrap();
    assert!(report.segments_removed >= 10, "{report:?}");
    assert!(report.messages_carried >= 1);
    let log_after = h.wal.total_bytes();
    // Acknowledged messages keep only metadata; content was reclaimed.
    assert!(
        log_after < log_before / 3,
        "log {log_before} -> {log_after}"
    );
    assert_eq!(h.content(&keep), vec![1u8; 4000]);
    assert_eq!(h.replayed(), h.store);
}

#[test]
fn a_crash_after_carrying_but_before_removal_replays_to_the_same_state() {
    let mut h = Harness::new();
    let keep = h.send("X26ABC1", "X26ABC2", &[9u8; 300]);
    for _ in 0..40 {
        let id = h.send("X26ABC1", "X26ABC3", &[3u8; 300]);
        h.ack("X26ABC3", &id);
    }
    h.wal.seal_active().unwrap();
    // Carry forward the oldest segment's messages, but "crash" before removal.
    let oldest = h.wal.oldest_sealed().unwrap().first_seq;
    for id in h.store.referencing(oldest) {
        let plan = h.store.carry_plan(&id, oldest).unwrap();
        let mut events = vec![(plan.snapshot, Bytes::new())];
        for (n, loc) in plan.chunks {
            let bytes = h.wal.read(&loc.into()).unwrap();
            events.push((
                Event::CarryChunk {
                    message_id: id,
                    chunk_no: n,
                },
                bytes,
            ));
        }
        h.log(events);
    }
    assert!(h.store.referencing(oldest).is_empty());
    assert_eq!(
        h.replayed(),
        h.store,
        "old segment still present: snapshot supersedes it"
    );
    // And once removed, replay still agrees.
    let report = compact(&mut h.wal, &mut h.store, &CompactionPolicy::default(), true).unwrap();
    assert!(report.segments_removed >= 1);
    assert_eq!(h.replayed(), h.store);
    assert_eq!(h.content(&keep), vec![9u8; 300]);
}

#[test]
fn splitting_by_partition_keeps_every_message_and_index() {
    let mut h = Harness::new();
    for (i, to) in ["X26ABC1", "X26ABC2", "X26ABC3"]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let id = h.send("X26ABC1", to, &[i as u8; 10]);
        if i % 4 == 0 {
            h.ack(to, &id);
        }
    }
    let whole = h.store.clone();
    let key = |m: &MailboxId| m.as_str().bytes().last().map_or(0, |b| usize::from(b) % 2);
    let parts = h.store.clone().split_by(2, key);
    assert_eq!(
        parts.iter().map(MessageStore::len).sum::<usize>(),
        whole.len()
    );
    for (i, part) in parts.iter().enumerate() {
        part.check_invariants().unwrap();
        assert!(part.messages().all(|m| key(&m.envelope.recipient) == i));
    }
    for mailbox in ["X26ABC1", "X26ABC2", "X26ABC3"] {
        let p = &parts[key(&mb(mailbox))];
        let ids = |s: &MessageStore| -> Vec<MessageId> {
            s.inbox(&mb(mailbox), None, usize::MAX, |_| true)
                .iter()
                .map(|m| m.envelope.message_id)
                .collect()
        };
        assert_eq!(
            ids(p),
            ids(&whole),
            "inbox order of {mailbox} survives the split"
        );
    }
}

// --- Tracking by local id, reset, injected reports -------------------------

fn lid(s: &str) -> crate::ids::LocalId {
    crate::ids::LocalId::parse(s).unwrap()
}

impl Harness {
    /// Sends a one-chunk message with local id `local` (if any).
    fn send_local(&mut self, from: &str, to: &str, local: Option<&str>) -> MessageId {
        let mut env = self.envelope(from, to, 1);
        env.local_id = local.map(lid);
        let id = env.message_id;
        let SendCheck::New(ev) = self.store.check_send(env, None).unwrap() else {
            panic!("unexpected duplicate")
        };
        self.log(vec![(ev, Bytes::from_static(b"x"))]);
        id
    }

    fn tracked(&self, sender: &str, local: &str) -> Vec<MessageId> {
        self.store
            .by_local_id(&mb(sender), &lid(local))
            .iter()
            .map(|m| m.envelope.message_id)
            .collect()
    }

    /// Runs a whole reset in steps of at most `limits`, logging each step's
    /// purges as one batch (as a partition does); answers messages removed
    /// and steps taken.
    fn reset(&mut self, mailbox: Option<&str>, limits: ResetLimits) -> (usize, usize) {
        let mailbox = mailbox.map(mb);
        let (mut removed, mut steps, mut after) = (0, 0, None);
        loop {
            let step =
                self.store
                    .reset_events(mailbox.as_ref(), after.as_ref(), self.now, limits, |_| {
                        false
                    });
            steps += 1;
            assert!(step.events.len() <= limits.purge);
            assert!(step.blocked_on.is_none());
            removed += step.events.len();
            if !step.events.is_empty() {
                let applied =
                    self.log(step.events.into_iter().map(|e| (e, Bytes::new())).collect());
                assert!(applied.iter().all(|a| *a == Applied::Changed));
            }
            if step.done {
                return (removed, steps);
            }
            after = step.after;
        }
    }
}

#[test]
fn tracking_by_local_id_lists_a_senders_data_messages_in_creation_order_until_purged() {
    let mut h = Harness::new();
    let a = h.send_local("X26ABC1", "X26ABC2", Some("order-7"));
    let _other_key = h.send_local("X26ABC1", "X26ABC2", Some("order-8"));
    let _no_key = h.send_local("X26ABC1", "X26ABC2", None);
    let other_sender = h.send_local("X26ABC3", "X26ABC2", Some("order-7"));
    h.now = h.now.saturating_add(Duration::from_secs(60));
    // A chunked message still uploading is tracked too, to another recipient.
    let mut env = h.envelope("X26ABC1", "X26ABC3", 2);
    env.local_id = Some(lid("order-7"));
    let uploading = env.message_id;
    let SendCheck::New(ev) = h.store.check_send(env, None).unwrap() else {
        panic!()
    };
    h.log(vec![(ev, Bytes::from_static(b"part"))]);
    h.ack("X26ABC2", &a);
    assert_eq!(h.tracked("X26ABC1", "order-7"), vec![a, uploading]);
    assert_eq!(h.tracked("X26ABC3", "order-7"), vec![other_sender]);
    assert!(
        h.tracked("X26ABC1", "ORDER-7").is_empty(),
        "local ids keep case"
    );
    assert!(h.tracked("X26ABC2", "order-7").is_empty());
    h.store.check_invariants().unwrap();

    // Expiry: the non-delivery report carries the local id, but it is a
    // report (sender X26ABC2), so X26ABC2 has sent nothing with it.
    h.now = h.now.saturating_add(5 * DAY);
    let now = h.now;
    let mut ids = std::mem::take(&mut h.ids);
    let mut rng = SeededRandom::new(3);
    let groups = h
        .store
        .expiry_events(now, 10, |_| Ok(ids.next(now, &mut rng).unwrap()))
        .unwrap();
    h.ids = ids;
    assert!(!groups.is_empty());
    for g in groups {
        h.log(g.into_iter().map(|e| (e, Bytes::new())).collect());
    }
    assert!(h.tracked("X26ABC2", "order-7").is_empty());
    assert_eq!(h.tracked("X26ABC1", "order-7"), vec![a, uploading]);
    h.store.check_invariants().unwrap();
    assert_eq!(h.replayed(), h.store);
    assert_eq!(
        h.replayed()
            .by_local_id(&mb("X26ABC1"), &lid("order-7"))
            .len(),
        2
    );

    // Compaction carries the messages forward; the index follows.
    h.wal.seal_active().unwrap();
    compact(&mut h.wal, &mut h.store, &CompactionPolicy::default(), true).unwrap();
    assert_eq!(h.tracked("X26ABC1", "order-7"), vec![a, uploading]);
    assert_eq!(h.replayed(), h.store);

    // Purged messages are no longer tracked.
    h.now = h.now.saturating_add(30 * DAY);
    let purges = h.store.purge_events(h.now, 100);
    h.log(purges.into_iter().map(|e| (e, Bytes::new())).collect());
    assert!(h.store.is_empty());
    assert!(h.tracked("X26ABC1", "order-7").is_empty());
    assert!(h.store.local_ids.is_empty());
    h.store.check_invariants().unwrap();
    assert_eq!(h.replayed(), h.store);
}

#[test]
fn a_corrupted_local_id_index_fails_the_invariant_check() {
    let mut h = Harness::new();
    let id = h.send_local("X26ABC1", "X26ABC2", Some("k"));
    h.store.check_invariants().unwrap();
    let entry = *h.store.local_ids.iter().next().unwrap();
    h.store.local_ids.remove(&entry);
    h.store.local_ids.insert((entry.0 ^ 1, id));
    assert!(h.store.check_invariants().is_err());
}

#[test]
fn reset_of_a_mailbox_removes_its_sent_and_received_messages_in_bounded_steps() {
    let mut h = Harness::new();
    let mut kept = Vec::new();
    for i in 0..30 {
        // Every status: accepted, acknowledged, uploading.
        let (from, to) = [
            ("X26ABC1", "X26ABC2"),
            ("X26ABC2", "X26ABC3"),
            ("X26ABC1", "X26ABC3"),
        ][i % 3];
        let id = h.send_local(from, to, Some("batch"));
        if i % 4 == 0 {
            h.ack(to, &id);
        }
        if from != "X26ABC2" && to != "X26ABC2" {
            kept.push(id);
        }
    }
    let mut env = h.envelope("X26ABC3", "X26ABC2", 3);
    env.local_id = Some(lid("batch"));
    let SendCheck::New(ev) = h.store.check_send(env, Some("key-1".into())).unwrap() else {
        panic!()
    };
    h.log(vec![(ev, Bytes::from_static(b"first of three"))]);
    assert_eq!(h.store.count_by_status(MessageStatus::Uploading), 1);
    let total = h.store.len();

    let limits = ResetLimits { scan: 4, purge: 3 };
    let (removed, steps) = h.reset(Some("X26ABC2"), limits);
    assert_eq!(removed, 21, "10 received + 10 sent + 1 uploading");
    assert!(steps >= total / 4, "bounded steps: {steps}");
    assert_eq!(h.store.len(), total - removed);
    let left: Vec<MessageId> = h.store.messages().map(|m| m.envelope.message_id).collect();
    assert_eq!(left, kept);
    assert!(h
        .store
        .messages()
        .all(|m| m.envelope.sender != mb("X26ABC2") && m.envelope.recipient != mb("X26ABC2")));
    assert!(h.inbox_ids("X26ABC2").is_empty());
    assert!(h.tracked("X26ABC2", "batch").is_empty());
    assert_eq!(h.tracked("X26ABC1", "batch").len(), kept.len());
    assert!(h
        .store
        .by_idempotency_key(&mb("X26ABC3"), "key-1")
        .is_none());
    h.store.check_invariants().unwrap();
    assert_eq!(h.replayed(), h.store);

    // Nothing left to remove for that mailbox: one step, nothing logged.
    let before = h.wal.next_seq();
    assert_eq!(h.reset(Some("X26ABC2"), limits), (0, 1 + kept.len() / 4));
    assert_eq!(h.wal.next_seq(), before);

    // Reset everything.
    let (removed, _) = h.reset(
        None,
        ResetLimits {
            scan: 100,
            purge: 4,
        },
    );
    assert_eq!(removed, kept.len());
    assert!(h.store.is_empty());
    h.store.check_invariants().unwrap();
    assert_eq!(h.replayed(), h.store);
    // The log survives compaction of the reset messages' segments.
    h.wal.seal_active().unwrap();
    compact(&mut h.wal, &mut h.store, &CompactionPolicy::default(), true).unwrap();
    assert_eq!(h.replayed(), h.store);
}

#[test]
fn a_reset_step_stops_before_a_busy_message() {
    let mut h = Harness::new();
    let a = h.send("X26ABC1", "X26ABC2", b"a");
    let b = h.send("X26ABC1", "X26ABC2", b"b");
    let c = h.send("X26ABC1", "X26ABC2", b"c");
    let limits = ResetLimits {
        scan: 10,
        purge: 10,
    };
    let step = h
        .store
        .reset_events(None, None, h.now, limits, |id| *id == b);
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].message_id(), &a);
    assert_eq!(step.after, Some(a));
    assert_eq!(step.blocked_on, Some(b));
    assert!(!step.done);
    // Blocked on the very first: nothing to log, resume from the start.
    let step = h
        .store
        .reset_events(None, None, h.now, limits, |id| *id == a);
    assert!(step.events.is_empty());
    assert_eq!((step.after, step.blocked_on), (None, Some(a)));
    // Messages of other mailboxes never block.
    let step = h
        .store
        .reset_events(Some(&mb("X26ABC9")), None, h.now, limits, |_| true);
    assert!(step.events.is_empty() && step.done);
    let _ = c;
}

#[test]
fn an_injected_report_is_accepted_with_no_content_and_survives_replay() {
    let mut h = Harness::new();
    let original = h.send_local("X26ABC1", "X26ABC2", Some("ref-1"));
    let id = h.next_id();
    let spec = ReportSpec {
        message_id: id,
        sender: mb("X26ABC1"),
        recipient: mb("X26ABC1"),
        workflow_id: WorkflowId::parse("TEST_WORKFLOW").unwrap(),
        subject: Some("about ref-1".into()),
        local_id: Some(lid("ref-1")),
        file_name: Some("ref-1.dat".into()),
        linked_message_id: Some(original),
        status: crate::envelope::ReportStatus {
            code: "02".into(),
            event: "SEND".into(),
            description: "Data file is missing or inaccessible".into(),
        },
    };
    let env = report_envelope(spec.clone(), h.now, h.store.config().inbox_expiry);
    assert_eq!(env.message_type, MessageType::Report);
    assert_eq!(env.total_chunks, 0);
    assert!(env.expires_at > env.created_at);
    let SendCheck::New(ev) = h.store.check_send(env, None).unwrap() else {
        panic!()
    };
    assert_eq!(h.log(vec![(ev, Bytes::new())]), vec![Applied::Accepted]);
    let m = h.store.get(&id).unwrap();
    assert_eq!(m.status, MessageStatus::Accepted);
    assert!(m.chunks.is_empty());
    assert_eq!(
        m.envelope.report.as_ref().map(|r| r.code.as_str()),
        Some("02")
    );
    assert_eq!(h.inbox_ids("X26ABC1"), vec![id]);
    // A report is not "sent" by the mailbox: tracking lists only the data.
    assert_eq!(h.tracked("X26ABC1", "ref-1"), vec![original]);
    h.store.check_invariants().unwrap();
    assert_eq!(h.replayed(), h.store);

    // Invalid report fields are refused before anything is logged.
    let mut bad = spec;
    bad.message_id = h.next_id();
    bad.status.code = "x".repeat(crate::envelope::MAX_REPORT_CODE_BYTES + 1);
    let env = report_envelope(bad, h.now, h.store.config().inbox_expiry);
    assert_eq!(
        h.store.check_send(env, None).unwrap_err().code(),
        "ENV_FIELD_TOO_LONG"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Any mix of sends (with and without local ids), acks, expiry, purges
    /// and bounded resets: tracking by local id equals a scan, the indexes
    /// hold, and replay (also after compaction) gives the same state.
    #[test]
    fn local_id_index_and_resets_agree_with_a_scan_and_replay(
        ops in proptest::collection::vec((0u8..7, 0usize..3, 0usize..3, 0usize..4), 1..60)
    ) {
        let mut h = Harness::new();
        let boxes = ["X26ABC1", "X26ABC2", "X26ABC3"];
        let locals = [Some("a"), Some("b"), Some("A"), None];
        for (op, x, y, z) in ops {
            match op {
                0..=2 => { h.send_local(boxes[x], boxes[y], locals[z]); }
                3 => {
                    let first = h.store.inbox(&mb(boxes[y]), None, 1, |_| true).first().map(|m| m.envelope.message_id);
                    if let Some(id) = first { h.ack(boxes[y], &id); }
                }
                4 => {
                    h.now = h.now.saturating_add(DAY * (z as u32 * 4));
                    let now = h.now;
                    let mut ids = std::mem::take(&mut h.ids);
                    let mut rng = SeededRandom::new(z as u64);
                    let groups = h.store.expiry_events(now, 100, |_| Ok(ids.next(now, &mut rng).unwrap())).unwrap();
                    h.ids = ids;
                    for g in groups { h.log(g.into_iter().map(|e| (e, Bytes::new())).collect()); }
                    let purges = h.store.purge_events(now, 100);
                    if !purges.is_empty() { h.log(purges.into_iter().map(|e| (e, Bytes::new())).collect()); }
                }
                5 => {
                    let expected = h.store.messages()
                        .filter(|m| m.envelope.sender == mb(boxes[x]) || m.envelope.recipient == mb(boxes[x]))
                        .count();
                    let (removed, _) = h.reset(Some(boxes[x]), ResetLimits { scan: 1 + y, purge: 1 + z });
                    prop_assert_eq!(removed, expected);
                }
                _ => if z == 0 {
                    let expected = h.store.len();
                    prop_assert_eq!(h.reset(None, ResetLimits { scan: 3, purge: 2 }).0, expected);
                    prop_assert!(h.store.is_empty());
                },
            }
        }
        for sender in boxes {
            for local in ["a", "b", "A"] {
                let scanned: Vec<MessageId> = h.store.messages()
                    .filter(|m| m.envelope.message_type == MessageType::Data
                        && m.envelope.sender == mb(sender)
                        && m.envelope.local_id.as_ref() == Some(&lid(local)))
                    .map(|m| m.envelope.message_id)
                    .collect();
                prop_assert_eq!(h.tracked(sender, local), scanned);
            }
        }
        h.store.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&h.replayed(), &h.store);
        h.wal.seal_active().unwrap();
        compact(&mut h.wal, &mut h.store, &CompactionPolicy::default(), true).unwrap();
        h.store.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&h.replayed(), &h.store);
    }
}
