//! In-process tests of the node through its handle.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use spine_core::directory::Directory;
use spine_core::ids::{MailboxId, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::random::SeededRandom;
use spine_core::time::{ManualClock, Timestamp};
use spine_core::ErrorCode;

use super::*;
use crate::node::handle::NodeParts;

fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

fn wf(s: &str) -> WorkflowId {
    WorkflowId::parse(s).unwrap()
}

fn parts(clock: Arc<ManualClock>) -> NodeParts {
    let directory = Directory::demo(&mut SeededRandom::new(1)).unwrap();
    NodeParts {
        runtime: RuntimeConfig {
            partitions: 4,
            expiry_interval_ms: 3_600_000,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_list_download_ack_and_recover_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let (node, _) = Node::start(storage(dir.path()), parts(Arc::clone(&clock)))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..20u8 {
        let req = SendRequest::simple(
            mb("X26ABC1"),
            mb("X26ABC2"),
            wf("TEST_WORKFLOW"),
            Bytes::from(vec![i; 100]),
        );
        let out = node.send(req).await.unwrap();
        assert_eq!(out.status, MessageStatus::Accepted);
        ids.push(out.message_id);
    }
    let page = node
        .list_inbox(&mb("X26ABC2"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 10);
    assert_eq!(page.total, 20);
    let got: Vec<_> = page
        .messages
        .iter()
        .map(|m| m.envelope.message_id)
        .collect();
    assert_eq!(got, ids[..10].to_vec(), "listed in acceptance order");
    let page2 = node
        .list_inbox(&mb("X26ABC2"), None, page.next, 10)
        .await
        .unwrap();
    assert_eq!(page2.messages.len(), 10);
    assert_eq!(page2.next, None);
    let d = node.download(&mb("X26ABC2"), &ids[3], 1).await.unwrap();
    assert_eq!(d.body.as_ref(), &[3u8; 100][..]);
    let denied = node.download(&mb("X26ABC3"), &ids[3], 1).await.unwrap_err();
    assert_eq!(denied.code(), "MSG_NOT_RECIPIENT");
    node.acknowledge(&mb("X26ABC2"), &ids[0]).await.unwrap();
    node.acknowledge(&mb("X26ABC2"), &ids[0]).await.unwrap();
    assert_eq!(
        node.track(&mb("X26ABC1"), &ids[0]).await.unwrap().status,
        MessageStatus::Acknowledged
    );
    node.shutdown().await.unwrap();

    let (node, summary) = Node::start(storage(dir.path()), parts(clock))
        .await
        .unwrap();
    assert_eq!(summary.in_inboxes, 19);
    let page = node
        .list_inbox(&mb("X26ABC2"), None, None, 100)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 19);
    let d = node.download(&mb("X26ABC2"), &ids[19], 1).await.unwrap();
    assert_eq!(d.body.as_ref(), &[19u8; 100][..]);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_sends_one_report_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let (node, _) = Node::start(storage(dir.path()), parts(Arc::clone(&clock)))
        .await
        .unwrap();
    let req = SendRequest::simple(
        mb("X26ABC1"),
        mb("X26ABC2"),
        wf("TEST_WORKFLOW"),
        Bytes::from_static(b"x"),
    );
    let id = node.send(req).await.unwrap().message_id;
    clock.advance(Duration::from_secs(5 * 86_400 + 1));
    assert_eq!(node.expire_now().await.unwrap(), 2);
    let mut reports = Vec::new();
    for _ in 0..100 {
        reports = node
            .list_inbox(&mb("X26ABC1"), None, None, 10)
            .await
            .unwrap()
            .messages;
        if !reports.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].envelope.linked_message_id.as_ref(), Some(&id));
    assert_eq!(
        node.track(&mb("X26ABC1"), &id).await.unwrap().status,
        MessageStatus::Expired
    );
    assert_eq!(node.expire_now().await.unwrap(), 0);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_running_frees_segments_and_keeps_live_messages() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let (node, _) = Node::start(storage(dir.path()), parts(Arc::clone(&clock)))
        .await
        .unwrap();
    let mut keep = Vec::new();
    for i in 0..300u32 {
        let to = if i % 2 == 0 { "X26ABC2" } else { "X26ABC3" };
        let req = SendRequest::simple(
            mb("X26ABC1"),
            mb(to),
            wf("ANY_WORKFLOW"),
            Bytes::from(vec![(i % 251) as u8; 1000]),
        );
        let id = node.send(req).await.unwrap().message_id;
        if i % 50 == 0 {
            keep.push((id, to, (i % 251) as u8));
        } else {
            node.acknowledge(&mb(to), &id).await.unwrap();
        }
    }
    let segments = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "wal")
            })
            .count()
    };
    let before = segments(dir.path());
    assert!(before >= 4, "log spans several segments: {before}");
    let mut removed = 0;
    for _ in 0..before {
        removed += node.compact_now().await.unwrap();
    }
    assert!(
        removed as usize >= before - 2,
        "removed {removed} of {before}"
    );
    assert!(segments(dir.path()) < before);
    for (id, to, byte) in &keep {
        let d = node.download(&mb(to), id, 1).await.unwrap();
        assert_eq!(
            d.body.as_ref(),
            &vec![*byte; 1000][..],
            "live message survives compaction"
        );
    }
    node.shutdown().await.unwrap();
    let (node, summary) = Node::start(storage(dir.path()), parts(clock))
        .await
        .unwrap();
    assert_eq!(summary.in_inboxes, keep.len() as u64);
    for (id, to, byte) in &keep {
        let d = node.download(&mb(to), id, 1).await.unwrap();
        assert_eq!(
            d.body.as_ref(),
            &vec![*byte; 1000][..],
            "and a restart after it"
        );
    }
    node.shutdown().await.unwrap();
}

/// Service state in the log survives runtime compaction (the WAL actor asks
/// the reference services to carry their records out of old segments) and
/// the restart after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_state_survives_runtime_compaction_and_restart() {
    use crate::services::ServiceRequest;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let storage = StorageConfig {
        segment_bytes: 8 * 1024,
        ..storage(dir.path())
    };
    let request = |interaction: &str, body: String| ServiceRequest {
        service: "scr".into(),
        interaction: interaction.into(),
        asid: None,
        message_id: None,
        body: Bytes::from(body),
    };
    let (node, _) = Node::start(storage.clone(), parts(Arc::clone(&clock)))
        .await
        .unwrap();
    // One summary written once, first: its only record is in the oldest
    // segment, so freeing that segment needs it carried forward. Then many
    // replacements of a few others: their old records are superseded.
    node.request(
        &mb("X26ABC1"),
        request(
            "upload",
            r#"{"nhs_number":"9000000033","summary":"once"}"#.into(),
        ),
    )
    .await
    .unwrap();
    for i in 0..300u32 {
        let n = ["9000000009", "9000000017", "9000000025"][(i % 3) as usize];
        let body = format!(r#"{{"nhs_number":"{n}","summary":{{"rev":{i}}}}}"#);
        node.request(&mb("X26ABC1"), request("upload", body))
            .await
            .unwrap();
    }
    let mut removed = 0;
    for _ in 0..50 {
        removed += node.compact_now().await.unwrap();
    }
    assert!(removed > 0, "compaction freed segments");
    let latest = |node: NodeHandle, n: &'static str| async move {
        let body = format!(r#"{{"nhs_number":"{n}"}}"#);
        let answer = node
            .request(&mb("X26ABC1"), request("get", body))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        v["content"].as_str().unwrap().to_owned()
    };
    assert_eq!(latest(node.clone(), "9000000009").await, r#"{"rev":297}"#);
    node.shutdown().await.unwrap();
    let (node, _) = Node::start(storage, parts(Arc::clone(&clock)))
        .await
        .unwrap();
    assert_eq!(latest(node.clone(), "9000000009").await, r#"{"rev":297}"#);
    assert_eq!(latest(node.clone(), "9000000017").await, r#"{"rev":298}"#);
    assert_eq!(latest(node.clone(), "9000000025").await, r#"{"rev":299}"#);
    assert_eq!(latest(node.clone(), "9000000033").await, r#""once""#);
    let e = node
        .request(
            &mb("X26ABC1"),
            request("get", r#"{"nhs_number":"9000000001"}"#.into()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ID_NHS_NUMBER_CHECK_DIGIT");
    node.shutdown().await.unwrap();
}

/// A subscriber whose buffer (4) is far smaller than what arrives while it
/// does not read still gets every message by push, in inbox order, each
/// once: the first directly with its body, the rest refilled from the inbox
/// with where their body lies; a message acknowledged before its refill is
/// not pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_refilled_in_order_from_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let mut p = parts(clock);
    p.runtime.subscriber_buffer = 4;
    let (node, _) = Node::start(storage(dir.path()), p).await.unwrap();
    let mut rx = node.subscribe(&mb("X26ABC2")).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..40u32 {
        let req = SendRequest::simple(
            mb("X26ABC1"),
            mb("X26ABC2"),
            wf("PATH_TEST"),
            Bytes::from(format!("body {i}")),
        );
        sent.push(node.send(req).await.unwrap().message_id);
    }
    // Acknowledged while still waiting for its refill: never pushed.
    let skipped = sent[30];
    node.acknowledge(&mb("X26ABC2"), &skipped).await.unwrap();
    let mut got = Vec::new();
    let mut orders = Vec::new();
    while got.len() < 39 {
        let n = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a refill within 10 s")
            .expect("the subscription stays open");
        let body = match (&n.body, n.body_at) {
            (Some(b), _) => b.clone(),
            (None, Some(loc)) => node.read_pushed_body(loc).await.unwrap(),
            (None, None) => panic!("no body or location for {}", n.envelope.message_id),
        };
        let i = sent
            .iter()
            .position(|id| *id == n.envelope.message_id)
            .unwrap();
        assert_eq!(body, Bytes::from(format!("body {i}")));
        got.push(n.envelope.message_id);
        orders.push(n.order);
        // Reads and requests let the partition refill.
        let _ = node
            .list_inbox(&mb("X26ABC2"), None, None, 1)
            .await
            .unwrap();
    }
    let want: Vec<_> = sent.iter().copied().filter(|id| *id != skipped).collect();
    assert_eq!(
        got, want,
        "every message once, in order, minus the acknowledged one"
    );
    assert!(orders.windows(2).all(|w| w[0] < w[1]));
    // Caught up: the next message is pushed directly, with its body.
    let req = SendRequest::simple(
        mb("X26ABC1"),
        mb("X26ABC2"),
        wf("PATH_TEST"),
        Bytes::from_static(b"live"),
    );
    let id = node.send(req).await.unwrap().message_id;
    let n = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.envelope.message_id, id);
    assert_eq!(n.body.as_deref(), Some(&b"live"[..]));
    assert!(rx.try_recv().is_err(), "nothing pushed twice");
    node.shutdown().await.unwrap();
}

/// Compaction carries a segment that holds far more messages than one
/// carry slice (`CARRY_SLICE`, 256) of one partition: every slice is carried,
/// the segment is freed, and every message (waiting or acknowledged) is
/// still there afterwards and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_carries_a_segment_larger_than_one_slice() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let storage = StorageConfig {
        segment_bytes: 1 << 20,
        ..storage(dir.path())
    };
    let (node, _) = Node::start(storage.clone(), parts(Arc::clone(&clock)))
        .await
        .unwrap();
    let mut waiting = Vec::new();
    let mut acked = Vec::new();
    for i in 0..3_000u32 {
        let req = SendRequest::simple(
            mb("X26ABC1"),
            mb("X26ABC2"),
            wf("ANY_WORKFLOW"),
            Bytes::from(format!("message {i}")),
        );
        let id = node.send(req).await.unwrap().message_id;
        if i % 10 == 0 {
            waiting.push((id, i));
        } else {
            node.acknowledge(&mb("X26ABC2"), &id).await.unwrap();
            acked.push(id);
        }
    }
    let removed = node.compact_now().await.unwrap();
    assert!(removed >= 1, "the oldest segment was freed");
    let check = |node: NodeHandle| {
        let (waiting, acked) = (waiting.clone(), acked.clone());
        async move {
            for (id, i) in &waiting {
                let d = node.download(&mb("X26ABC2"), id, 1).await.unwrap();
                assert_eq!(d.body, Bytes::from(format!("message {i}")));
            }
            for id in &acked {
                let view = node.track(&mb("X26ABC1"), id).await.unwrap();
                assert_eq!(view.status, MessageStatus::Acknowledged);
            }
        }
    };
    check(node.clone()).await;
    node.shutdown().await.unwrap();
    let (node, summary) = Node::start(storage, parts(clock)).await.unwrap();
    assert_eq!(summary.in_inboxes, waiting.len() as u64);
    check(node.clone()).await;
    node.shutdown().await.unwrap();
}

/// A batch of sends for several partitions and a batch of acknowledgements
/// answer per item, in item order, exactly as single requests would: a
/// refused item fails alone, acknowledging twice is fine, and an unknown
/// or someone else's message is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_answer_per_item_in_order_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )));
    let (node, _) = Node::start(storage(dir.path()), parts(clock))
        .await
        .unwrap();
    let to = ["X26ABC2", "X26ABC3", "X99ZZZ9", "X26ABC1", "X26ABC2"];
    let requests = to
        .iter()
        .enumerate()
        .map(|(i, r)| {
            SendRequest::simple(
                mb("X26ABC1"),
                mb(r),
                wf("PATH_TEST"),
                Bytes::from(format!("item {i}")),
            )
        })
        .collect();
    let results = node.send_many(requests).await;
    assert_eq!(results.len(), 5);
    let e = results[2].as_ref().unwrap_err();
    assert!(e.code().starts_with("DIR_"), "{e}: {}", e.code());
    let ids: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(i, r)| (i, r.as_ref().unwrap().message_id))
        .collect();
    for (i, id) in &ids {
        let d = node.download(&mb(to[*i]), id, 1).await.unwrap();
        assert_eq!(d.body, Bytes::from(format!("item {i}")), "item {i}");
    }
    // X26ABC2 has items 0 and 4, listed in that order.
    let page = node
        .list_inbox(&mb("X26ABC2"), None, None, 10)
        .await
        .unwrap();
    let listed: Vec<_> = page
        .messages
        .iter()
        .map(|m| m.envelope.message_id)
        .collect();
    assert_eq!(listed, vec![ids[0].1, ids[3].1]);

    let first = ids[0].1;
    let not_mine = ids[1].1; // X26ABC3's
    let unknown = spine_core::ids::MessageId::parse("20200601122152994285_D59900").unwrap();
    let acks = node
        .acknowledge_many(&mb("X26ABC2"), &[first, not_mine, first, unknown, ids[3].1])
        .await;
    assert_eq!(acks.len(), 5);
    assert!(
        acks[0].is_ok() && acks[2].is_ok() && acks[4].is_ok(),
        "{acks:?}"
    );
    assert!(acks[1].is_err(), "someone else's message");
    assert!(acks[3].is_err(), "an unknown message");
    assert_eq!(
        node.list_inbox(&mb("X26ABC2"), None, None, 10)
            .await
            .unwrap()
            .messages
            .len(),
        0
    );
    node.shutdown().await.unwrap();
}
