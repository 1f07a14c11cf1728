//! Crate-level tests: round trips of every message, the decoder against
//! split, truncated, malformed and arbitrary input, pinned wire bytes, and
//! the limits' worst cases.

mod decoder;
mod download;
mod golden;
mod limits_fit;
mod round_trip;
mod service;
mod strategies;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use spine_core::envelope::{Envelope, MessageType, ReportStatus};
use spine_core::ids::{LocalId, MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::time::Timestamp;

use crate::frame::{MIN_FRAME_LENGTH, PROTOCOL_VERSION};

pub(crate) fn mailbox(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

pub(crate) fn workflow(s: &str) -> WorkflowId {
    WorkflowId::parse(s).unwrap()
}

pub(crate) fn ods(s: &str) -> OdsCode {
    OdsCode::parse(s).unwrap()
}

pub(crate) fn message_id(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

pub(crate) const SAMPLE_ID: &str = "20200601122152994285_D59900";

/// A fixed, valid DATA envelope.
pub(crate) fn envelope() -> Arc<Envelope> {
    let created_at = Timestamp::from_micros(1_795_480_569_123_456);
    Arc::new(Envelope {
        message_id: message_id(SAMPLE_ID),
        message_type: MessageType::Data,
        sender: mailbox("X26ABC1"),
        recipient: mailbox("X26ABC2"),
        workflow_id: workflow("PATH_TEST"),
        subject: Some("Lab results".into()),
        local_id: Some(LocalId::parse("ref-1").unwrap()),
        file_name: Some("results.csv".into()),
        content_type: Some("text/csv".into()),
        compressed: false,
        encrypted: true,
        checksum: Some("md5:0123abcd".into()),
        partner_id: None,
        total_chunks: 1,
        created_at,
        expires_at: created_at.saturating_add(Duration::from_secs(5 * 86_400)),
        linked_message_id: None,
        report: None,
    })
}

/// A fixed, valid REPORT envelope.
pub(crate) fn report_envelope() -> Arc<Envelope> {
    let original = envelope();
    Arc::new(Envelope {
        message_type: MessageType::Report,
        total_chunks: 0,
        linked_message_id: Some(original.message_id),
        report: Some(ReportStatus {
            code: "14".into(),
            event: "SEND".into(),
            description: "Message not collected by recipient after 5 days".into(),
        }),
        ..(*original).clone()
    })
}

/// A frame built by hand, for malformed-input tests.
pub(crate) fn raw_frame(
    kind: u8,
    flags: u16,
    request_id: u64,
    meta: &[u8],
    payload: &[u8],
) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u32((MIN_FRAME_LENGTH + meta.len() + payload.len()) as u32);
    b.put_u8(PROTOCOL_VERSION);
    b.put_u8(kind);
    b.put_u16(flags);
    b.put_u64(request_id);
    b.put_u32(meta.len() as u32);
    b.extend_from_slice(meta);
    b.extend_from_slice(payload);
    b
}
