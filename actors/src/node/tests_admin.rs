//! Tests of the MESH admin and tracking operations through the node handle,
//! on a real data directory, across restarts: tracking by local id, sandbox
//! reset, report injection.

use std::sync::Arc;

use bytes::Bytes;
use spine_core::directory::Directory;
use spine_core::envelope::MessageType;
use spine_core::ids::{LocalId, MailboxId, MessageId, WorkflowId};
use spine_core::message::{MessageStatus, SendHeader};
use spine_core::partition::PartitionMap;
use spine_core::random::SeededRandom;
use spine_core::time::{ManualClock, Timestamp};
use spine_core::ErrorCode;

use super::*;
use crate::node::handle::NodeParts;

const PARTITIONS: u32 = 4;

fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

fn wf(s: &str) -> WorkflowId {
    WorkflowId::parse(s).unwrap()
}

fn lid(s: &str) -> LocalId {
    LocalId::parse(s).unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )))
}

/// `expiry_batch` also bounds the purges of one reset step: small values
/// make a reset take many steps.
fn parts(clock: Arc<ManualClock>, expiry_batch: usize) -> NodeParts {
    let directory = Directory::demo(&mut SeededRandom::new(1)).unwrap();
    NodeParts {
        runtime: RuntimeConfig {
            partitions: PARTITIONS,
            expiry_interval_ms: 3_600_000,
            expiry_batch,
            ..RuntimeConfig::default()
        },
        directory: Arc::new(directory),
        clock,
        rng: Box::new(SeededRandom::new(2)),
    }
}

fn storage(dir: &std::path::Path) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        segment_bytes: 64 * 1024,
        ..StorageConfig::default()
    }
}

async fn start(dir: &std::path::Path, clock: &Arc<ManualClock>, batch: usize) -> NodeHandle {
    Node::start(storage(dir), parts(Arc::clone(clock), batch))
        .await
        .unwrap()
        .0
}

/// Sends a message of `chunks` chunks (only chunk 1 uploaded) with an
/// optional local id, on a workflow no directory entry restricts.
async fn send(
    node: &NodeHandle,
    from: &str,
    to: &str,
    local: Option<&str>,
    chunks: u32,
) -> MessageId {
    let mut header = SendHeader::simple(mb(to), wf("ANY_WORKFLOW"));
    header.local_id = local.map(lid);
    header.total_chunks = chunks;
    let req = SendRequest {
        sender: mb(from),
        header,
        body: Bytes::from(format!("{from}->{to}")),
    };
    node.send(req).await.unwrap().message_id
}

fn ids(views: &[MessageView]) -> Vec<MessageId> {
    views.iter().map(|v| v.envelope.message_id).collect()
}

/// Everything a mailbox can observe of the node, for before/after
/// comparisons across a restart.
async fn observe(node: &NodeHandle, ids_known: &[MessageId]) -> Vec<String> {
    let mut out = Vec::new();
    for m in ["X26ABC1", "X26ABC2", "X26ABC3"] {
        let page = node.list_inbox(&mb(m), None, None, 1000).await.unwrap();
        out.push(format!(
            "{m} inbox {} {:?}",
            page.total,
            ids(&page.messages)
        ));
        for local in ["lid-1", "lid-2"] {
            let t = node.track_by_local_id(&mb(m), &lid(local)).await.unwrap();
            out.push(format!("{m} {local} {:?}", ids(&t)));
        }
    }
    for id in ids_known {
        let state = node.get(id).await.map(|v| v.status.to_string());
        out.push(format!("{id} {:?}", state.map_err(|e| e.code())));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_by_local_id_spans_partitions_in_creation_order_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let map = PartitionMap::new(PARTITIONS).unwrap();
    let recipients = ["X26ABC1", "X26ABC2", "X26ABC3"];
    let owners: std::collections::BTreeSet<_> = recipients
        .iter()
        .map(|m| map.partition_of(&mb(m)))
        .collect();
    assert!(owners.len() >= 2, "the recipients span partitions");

    let node = start(dir.path(), &clock, 1000).await;
    let mut expected = Vec::new();
    for round in 0..3 {
        for to in recipients {
            clock.advance(std::time::Duration::from_millis(1));
            expected.push(send(&node, "X26ABC1", to, Some("lid-1"), 1).await);
            send(&node, "X26ABC1", to, Some("lid-2"), 1).await;
            send(&node, "X26ABC1", to, None, 1).await;
            if round == 0 {
                // Another sender's use of the same local id is not ours.
                send(&node, "X26ABC3", to, Some("lid-1"), 1).await;
            }
        }
    }
    // Any status: acknowledged, and still uploading.
    node.acknowledge(&mb("X26ABC2"), &expected[1])
        .await
        .unwrap();
    let uploading = send(&node, "X26ABC1", "X26ABC3", Some("lid-1"), 3).await;
    expected.push(uploading);

    let tracked = node
        .track_by_local_id(&mb("X26ABC1"), &lid("lid-1"))
        .await
        .unwrap();
    assert_eq!(ids(&tracked), expected, "every partition, creation order");
    assert_eq!(tracked[1].status, MessageStatus::Acknowledged);
    assert_eq!(tracked.last().unwrap().status, MessageStatus::Uploading);
    assert!(tracked
        .iter()
        .all(|v| v.envelope.sender == mb("X26ABC1") && v.envelope.local_id == Some(lid("lid-1"))));
    assert_eq!(
        node.track_by_local_id(&mb("X26ABC3"), &lid("lid-1"))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(node
        .track_by_local_id(&mb("X26ABC2"), &lid("lid-1"))
        .await
        .unwrap()
        .is_empty());
    assert!(node
        .track_by_local_id(&mb("X26ABC1"), &lid("no-such-id"))
        .await
        .unwrap()
        .is_empty());
    let before = observe(&node, &expected).await;
    node.shutdown().await.unwrap();

    let node = start(dir.path(), &clock, 1000).await;
    assert_eq!(
        observe(&node, &expected).await,
        before,
        "same after restart"
    );
    let tracked = node
        .track_by_local_id(&mb("X26ABC1"), &lid("lid-1"))
        .await
        .unwrap();
    assert_eq!(ids(&tracked), expected);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_of_a_mailbox_removes_its_messages_durably_and_answers_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    // Three purges per step: the reset takes many steps per partition.
    let node = start(dir.path(), &clock, 3).await;
    let mut all = Vec::new();
    let mut kept = Vec::new();
    for i in 0..12 {
        for (from, to) in [
            ("X26ABC1", "X26ABC2"),
            ("X26ABC2", "X26ABC3"),
            ("X26ABC1", "X26ABC3"),
            ("X26ABC3", "X26ABC1"),
        ] {
            let chunks = if i % 5 == 0 { 2 } else { 1 };
            let id = send(&node, from, to, Some("lid-1"), chunks).await;
            if i % 3 == 0 && chunks == 1 {
                node.acknowledge(&mb(to), &id).await.unwrap();
            }
            if from != "X26ABC2" && to != "X26ABC2" {
                kept.push(id);
            }
            all.push(id);
        }
    }
    let removed = node.reset(Some(&mb("X26ABC2"))).await.unwrap();
    assert_eq!(removed, 24, "12 sent and 12 received, any status");
    // Lists, counts, downloads and tracking no longer see them.
    let inbox = node
        .list_inbox(&mb("X26ABC2"), None, None, 100)
        .await
        .unwrap();
    assert_eq!((inbox.total, inbox.messages.len()), (0, 0));
    assert!(node
        .track_by_local_id(&mb("X26ABC2"), &lid("lid-1"))
        .await
        .unwrap()
        .is_empty());
    for id in all.iter().filter(|id| !kept.contains(id)) {
        let err = node.download(&mb("X26ABC2"), id, 1).await.unwrap_err();
        assert_eq!(err.code(), "MSG_NOT_FOUND");
        let err = node.track(&mb("X26ABC2"), id).await.unwrap_err();
        assert_eq!(err.code(), "MSG_NOT_FOUND");
    }
    // The others are untouched.
    for id in &kept {
        node.get(id).await.unwrap();
    }
    let x3 = node
        .list_inbox(&mb("X26ABC3"), None, None, 100)
        .await
        .unwrap();
    assert!(x3
        .messages
        .iter()
        .all(|m| m.envelope.sender == mb("X26ABC1")));
    // Resetting again finds nothing.
    assert_eq!(node.reset(Some(&mb("X26ABC2"))).await.unwrap(), 0);
    // The mailbox works as before.
    let fresh = send(&node, "X26ABC1", "X26ABC2", Some("lid-1"), 1).await;
    kept.push(fresh);
    let before = observe(&node, &all).await;
    node.shutdown().await.unwrap();

    let node = start(dir.path(), &clock, 3).await;
    assert_eq!(observe(&node, &all).await, before, "same after restart");
    assert_eq!(
        ids(&node
            .list_inbox(&mb("X26ABC2"), None, None, 100)
            .await
            .unwrap()
            .messages),
        vec![fresh]
    );
    // Reset everything.
    assert_eq!(node.reset(None).await.unwrap(), kept.len());
    for m in ["X26ABC1", "X26ABC2", "X26ABC3"] {
        let page = node.list_inbox(&mb(m), None, None, 100).await.unwrap();
        assert_eq!(page.total, 0);
    }
    for id in &all {
        assert_eq!(node.get(id).await.unwrap_err().code(), "MSG_NOT_FOUND");
    }
    node.shutdown().await.unwrap();

    let (node, summary) = Node::start(storage(dir.path()), parts(Arc::clone(&clock), 3))
        .await
        .unwrap();
    assert_eq!(summary.messages, 0, "a restart after a full reset is empty");
    assert_eq!(node.reset(None).await.unwrap(), 0);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_while_sends_and_acks_run_keeps_the_node_and_its_log_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let node = start(dir.path(), &clock, 2).await;
    for _ in 0..60 {
        send(&node, "X26ABC1", "X26ABC2", Some("lid-1"), 1).await;
    }
    // Traffic to and from the mailbox being reset, during the reset.
    let traffic = {
        let node = node.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            for _ in 0..40 {
                let id = send(&node, "X26ABC1", "X26ABC2", None, 1).await;
                // May already be gone: that is the reset's business.
                let _ = node.acknowledge(&mb("X26ABC2"), &id).await;
                sent.push(id);
            }
            sent
        })
    };
    let removed = node.reset(Some(&mb("X26ABC2"))).await.unwrap();
    assert!(removed >= 60, "at least what existed before: {removed}");
    let sent = traffic.await.unwrap();
    let mut known: Vec<MessageId> = sent;
    known.extend(
        node.list_inbox(&mb("X26ABC2"), None, None, 1000)
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.envelope.message_id),
    );
    let before = observe(&node, &known).await;
    node.shutdown().await.unwrap();
    let node = start(dir.path(), &clock, 2).await;
    assert_eq!(observe(&node, &known).await, before, "same after restart");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_report_reaches_the_inbox_durably_with_no_content() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let node = start(dir.path(), &clock, 1000).await;
    let original = send(&node, "X26ABC1", "X26ABC2", Some("lid-1"), 1).await;
    let mut report = InjectReport::new(
        mb("X26ABC1"),
        wf("TEST_WORKFLOW"),
        "02",
        "Data file is missing or inaccessible",
    );
    assert_eq!(report.event, "SEND");
    report.subject = Some("about lid-1".into());
    report.local_id = Some(lid("lid-1"));
    report.file_name = Some("lid-1.dat".into());
    report.linked_message_id = Some(original);
    let id = node.inject_report(report.clone()).await.unwrap();

    let check = |view: &MessageView| {
        let env = &view.envelope;
        assert_eq!(env.message_type, MessageType::Report);
        assert_eq!(
            (&env.sender, &env.recipient),
            (&mb("X26ABC1"), &mb("X26ABC1"))
        );
        assert_eq!(env.workflow_id, wf("TEST_WORKFLOW"));
        assert_eq!(env.subject.as_deref(), Some("about lid-1"));
        assert_eq!(env.local_id, Some(lid("lid-1")));
        assert_eq!(env.file_name.as_deref(), Some("lid-1.dat"));
        assert_eq!(env.linked_message_id, Some(original));
        assert_eq!(env.total_chunks, 0);
        let status = env.report.as_ref().unwrap();
        assert_eq!(
            (
                status.code.as_str(),
                status.event.as_str(),
                status.description.as_str()
            ),
            ("02", "SEND", "Data file is missing or inaccessible")
        );
        assert_eq!(view.status, MessageStatus::Accepted);
    };
    let inbox = node
        .list_inbox(&mb("X26ABC1"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&inbox.messages), vec![id]);
    check(&inbox.messages[0]);
    let d = node.download(&mb("X26ABC1"), &id, 1).await.unwrap();
    assert!(d.body.is_empty());
    // Reports are not what the mailbox sent: tracking lists the data only.
    assert_eq!(
        ids(&node
            .track_by_local_id(&mb("X26ABC1"), &lid("lid-1"))
            .await
            .unwrap()),
        vec![original]
    );

    // Refusals, with nothing logged.
    let mut unknown = report.clone();
    unknown.recipient = mb("X26ZZZ9");
    let err = node.inject_report(unknown).await.unwrap_err();
    assert_eq!(err.code(), "DIR_RECIPIENT_UNREGISTERED");
    let mut long = report.clone();
    long.code = "9".repeat(spine_core::envelope::MAX_REPORT_CODE_BYTES + 1);
    assert_eq!(
        node.inject_report(long).await.unwrap_err().code(),
        "ENV_FIELD_TOO_LONG"
    );
    let mut empty = report;
    empty.event = String::new();
    assert!(node
        .inject_report(empty)
        .await
        .unwrap_err()
        .code()
        .starts_with("ENV_"));
    node.shutdown().await.unwrap();

    let node = start(dir.path(), &clock, 1000).await;
    let inbox = node
        .list_inbox(&mb("X26ABC1"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&inbox.messages), vec![id], "durable across a restart");
    check(&inbox.messages[0]);
    node.acknowledge(&mb("X26ABC1"), &id).await.unwrap();
    // A reset of the mailbox removes injected reports too.
    assert_eq!(node.reset(Some(&mb("X26ABC1"))).await.unwrap(), 2);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_racing_acknowledgements_removes_every_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let node = start(dir.path(), &clock, 1000).await;
    for _ in 0..5 {
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(send(&node, "X26ABC1", "X26ABC2", None, 1).await);
        }
        // Acknowledgements in flight while the reset steps: a reset waits
        // for a message's change in flight rather than purge it under it.
        let acks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (node, id) = (node.clone(), *id);
                tokio::spawn(async move { node.acknowledge(&mb("X26ABC2"), &id).await })
            })
            .collect();
        assert_eq!(node.reset(Some(&mb("X26ABC2"))).await.unwrap(), 50);
        for ack in acks {
            if let Err(e) = ack.await.unwrap() {
                assert_eq!(e.code(), "MSG_NOT_FOUND", "{e}");
            }
        }
        for id in &ids {
            assert_eq!(node.get(id).await.unwrap_err().code(), "MSG_NOT_FOUND");
        }
    }
    node.shutdown().await.unwrap();
    let (node, summary) = Node::start(storage(dir.path()), parts(Arc::clone(&clock), 1000))
        .await
        .unwrap();
    assert_eq!(summary.messages, 0);
    node.shutdown().await.unwrap();
}
