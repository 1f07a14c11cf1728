//! The log's event format is a contract with every log already on disk:
//! these tests pin the exact bytes [`Event::to_record`] writes for each
//! kind of event (`testdata/events-v1.hex`, written once by the format's
//! first version) and check that those bytes still decode to the same
//! event. A change to the in-memory types (say, how an envelope is held)
//! must not change a byte of the archive.
//!
//! To add an event to the golden file, run the tests with
//! `SPINE_BLESS_EVENTS=1`; never re-bless an existing line.

use bytes::Bytes;

use super::*;
use crate::envelope::{Envelope, MessageType, ReportStatus};
use crate::ids::{LocalId, MailboxId, MessageId, WorkflowId};
use crate::time::Timestamp;
use crate::wal::RecordLocation;

const GOLDEN: &str = include_str!("testdata/events-v1.hex");
const GOLDEN_PATH: &str = "src/message/testdata/events-v1.hex";

fn id(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

fn envelope_with_everything() -> Envelope {
    let at = Timestamp::from_unix_seconds(1_780_000_000);
    Envelope {
        message_id: id("20260528120000000000_ABCDEF"),
        message_type: MessageType::Data,
        sender: MailboxId::parse("X26ABC1").unwrap(),
        recipient: MailboxId::parse("X26ABC2").unwrap(),
        workflow_id: WorkflowId::parse("PATH_RESULTS").unwrap(),
        subject: Some("lab results".into()),
        local_id: Some(LocalId::parse("order-42").unwrap()),
        file_name: Some("results.csv".into()),
        content_type: Some("text/csv".into()),
        compressed: true,
        encrypted: true,
        checksum: Some("md5:abc".into()),
        partner_id: Some("partner".into()),
        total_chunks: 3,
        created_at: at,
        expires_at: at.saturating_add(std::time::Duration::from_secs(86_400)),
        linked_message_id: None,
        report: None,
    }
}

fn report_envelope() -> Envelope {
    let mut env = envelope_with_everything();
    env.message_id = id("20260528120000000001_FEDCBA");
    env.message_type = MessageType::Report;
    env.local_id = None;
    env.total_chunks = 0;
    env.linked_message_id = Some(id("20260528120000000000_ABCDEF"));
    env.report = Some(ReportStatus {
        code: "14".into(),
        event: "TRANSFER".into(),
        description: "Message not collected by recipient after 5 days".into(),
    });
    env
}

/// One event of every kind, named.
fn events() -> Vec<(&'static str, Event, Bytes)> {
    let at = Timestamp::from_unix_seconds(1_780_000_100);
    let msg = id("20260528120000000000_ABCDEF");
    vec![
        (
            "create-data",
            Event::Create {
                envelope: envelope_with_everything().into(),
                idempotency_key: Some("key-1".into()),
            },
            Bytes::from_static(b"chunk one"),
        ),
        (
            "create-report",
            Event::Create {
                envelope: report_envelope().into(),
                idempotency_key: None,
            },
            Bytes::new(),
        ),
        (
            "chunk",
            Event::Chunk {
                message_id: msg,
                origin: 7,
                chunk_no: 2,
            },
            Bytes::from_static(b"chunk two"),
        ),
        (
            "acknowledge",
            Event::Acknowledge {
                message_id: msg,
                origin: 7,
                at,
            },
            Bytes::new(),
        ),
        (
            "expire",
            Event::Expire {
                message_id: msg,
                origin: 7,
                at,
                report_id: Some(id("20260528120000000001_FEDCBA")),
            },
            Bytes::new(),
        ),
        (
            "purge",
            Event::Purge {
                message_id: msg,
                origin: 7,
                at,
            },
            Bytes::new(),
        ),
        (
            "snapshot",
            Event::Snapshot(Box::new(MessageSnapshot {
                envelope: envelope_with_everything(),
                idempotency_key: Some("key-1".into()),
                status: MessageStatus::Acknowledged,
                accepted_seq: Some(9),
                acknowledged_at: Some(at),
                expired_at: None,
                chunks: vec![
                    Some(ChunkLoc {
                        segment: 1,
                        offset: 4096,
                        len: 9,
                    }),
                    None,
                    None,
                ],
            })),
            Bytes::new(),
        ),
        (
            "carry-chunk",
            Event::CarryChunk {
                message_id: msg,
                chunk_no: 3,
            },
            Bytes::from_static(b"chunk three"),
        ),
    ]
}

/// The golden file's lines: `name kind hex-of-head`.
fn golden() -> Vec<(String, u8, Vec<u8>)> {
    GOLDEN
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap().to_owned();
            let kind = parts.next().unwrap().parse().unwrap();
            (name, kind, hex::decode(parts.next().unwrap()).unwrap())
        })
        .collect()
}

#[test]
fn every_event_is_written_byte_for_byte_as_the_golden_file_says() {
    let events = events();
    if std::env::var_os("SPINE_BLESS_EVENTS").is_some() {
        let known = golden();
        let mut out = String::from(GOLDEN);
        for (name, event, body) in &events {
            if known.iter().all(|(n, _, _)| n != name) {
                let r = event.to_record(body.clone()).unwrap();
                out.push_str(&format!("{name} {} {}\n", r.kind, hex::encode(&r.head)));
            }
        }
        std::fs::write(GOLDEN_PATH, out).unwrap();
        return;
    }
    let golden = golden();
    assert_eq!(golden.len(), events.len(), "one golden line per event kind");
    for ((name, event, body), (gname, gkind, ghead)) in events.iter().zip(&golden) {
        assert_eq!(name, gname);
        let r = event.to_record(body.clone()).unwrap();
        assert_eq!(r.kind, *gkind, "{name}: kind");
        assert_eq!(
            hex::encode(&r.head),
            hex::encode(ghead),
            "{name}: the archive changed"
        );
    }
}

#[test]
fn the_golden_records_decode_to_the_same_events() {
    for ((name, event, body), (_, kind, head)) in events().into_iter().zip(golden()) {
        let mut payload = head.clone();
        payload.extend_from_slice(&body);
        let location = RecordLocation {
            segment: 1,
            offset: 100,
            len: payload.len() as u32,
        };
        let (decoded, decoded_body, body_loc) =
            Event::from_record(kind, &Bytes::from(payload), location).unwrap();
        assert_eq!(decoded, event, "{name}");
        assert_eq!(decoded_body, body, "{name}");
        assert_eq!(body_loc.offset, 100 + head.len() as u64, "{name}");
    }
}
