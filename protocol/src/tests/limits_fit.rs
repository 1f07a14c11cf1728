//! The worst-case list answers fit the meta limit, as `Limits::validate`
//! assumes: the per-item bounds in `limits.rs` hold for the largest items.

use spine_core::ids::MessageId;
use spine_core::time::Timestamp;

use super::{mailbox, message_id, ods, SAMPLE_ID};
use crate::frame::{FrameKind, HEADER_LEN};
use crate::limits::{
    Limits, BATCH_RESULT_ITEM_META_BYTES, INBOX_ENTRY_META_BYTES, LIST_OVERHEAD_META_BYTES,
    LOOKUP_ENTRY_META_BYTES, MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_NAME_BYTES, MAX_MAILBOX_NAME_BYTES,
};
use crate::response::Response;
use crate::wire_error::{WireError, WireErrorCode};
use crate::wire_types::{InboxEntry, LookupEntry};

fn meta_len(response: &Response) -> u64 {
    let frame = response.to_frame(1, &Limits::default()).unwrap();
    (frame.head.len() - HEADER_LEN) as u64
}

fn worst_error() -> WireError {
    WireError::new(
        WireErrorCode::Internal,
        &"E".repeat(MAX_ERROR_NAME_BYTES),
        &"m".repeat(MAX_ERROR_MESSAGE_BYTES),
    )
}

fn worst_inbox_entry() -> InboxEntry {
    InboxEntry {
        message_id: message_id(SAMPLE_ID),
        message_type: spine_core::envelope::MessageType::Data,
        sender: mailbox(&"S".repeat(32)),
        workflow_id: super::workflow(&"W".repeat(300)),
        total_chunks: u32::MAX,
        order: u64::MAX,
        created_at: Timestamp::MAX,
        expires_at: Timestamp::MAX,
    }
}

fn worst_lookup_entry() -> LookupEntry {
    LookupEntry {
        mailbox_id: mailbox(&"M".repeat(32)),
        mailbox_name: "n".repeat(MAX_MAILBOX_NAME_BYTES),
        ods_code: ods(&"O".repeat(10)),
    }
}

/// Checks `make(n)` grows by at most `per_item` per item and starts within
/// the overhead.
fn check_bound(make: impl Fn(usize) -> Response, per_item: u64) {
    let one = meta_len(&make(1));
    let nine = meta_len(&make(9));
    assert!(
        one <= LIST_OVERHEAD_META_BYTES + per_item,
        "one item: {one}"
    );
    let grown = (nine - one) / 8;
    assert!(grown <= per_item, "{grown} bytes per item > {per_item}");
}

#[test]
fn per_item_bounds_hold() {
    check_bound(
        |n| Response::SendBatchOk(vec![Err(worst_error()); n]),
        BATCH_RESULT_ITEM_META_BYTES,
    );
    check_bound(
        |n| {
            let id = MessageId::parse(SAMPLE_ID).unwrap();
            Response::SendBatchOk(vec![
                Ok(crate::SendOk {
                    message_id: id,
                    duplicate: true,
                    status: spine_core::message::MessageStatus::Accepted,
                });
                n
            ])
        },
        BATCH_RESULT_ITEM_META_BYTES,
    );
    check_bound(
        |n| Response::InboxPage {
            messages: vec![worst_inbox_entry(); n],
            next: Some(u64::MAX),
            total: u64::MAX,
        },
        INBOX_ENTRY_META_BYTES,
    );
    check_bound(
        |n| Response::LookupResult(vec![worst_lookup_entry(); n]),
        LOOKUP_ENTRY_META_BYTES,
    );
}

#[test]
fn full_default_answers_encode() {
    let limits = Limits::default();
    let answers = [
        Response::SendBatchOk(vec![Err(worst_error()); limits.max_batch as usize]),
        Response::InboxPage {
            messages: vec![worst_inbox_entry(); limits.max_inbox_page as usize],
            next: Some(1),
            total: 1,
        },
        Response::LookupResult(vec![
            worst_lookup_entry();
            limits.max_lookup_results as usize
        ]),
    ];
    for answer in answers {
        let frame = answer.to_frame(1, &limits).unwrap();
        assert!(frame.head.len() as u64 <= HEADER_LEN as u64 + u64::from(limits.max_meta_bytes));
    }
}

#[test]
fn an_oversize_batch_meta_says_to_split() {
    // Headers at their limits: 1,024 of them do not fit 2 MiB of meta.
    let mut header =
        crate::SendHeader::simple(mailbox("X26ABC2"), super::workflow(&"W".repeat(300)));
    header.subject = Some("s".repeat(500));
    header.partner_id = Some("p".repeat(500));
    header.file_name = Some("f".repeat(300));
    header.local_id = Some(spine_core::ids::LocalId::parse(&"é".repeat(300)).unwrap());
    let batch = crate::Request::SendBatch(vec![
        crate::BatchItem {
            header,
            body: bytes::Bytes::new(),
        };
        1_024
    ]);
    let e = batch.to_frame(1, &Limits::default()).unwrap_err();
    assert!(matches!(
        e,
        crate::ProtocolError::MetaTooLarge {
            kind: FrameKind::SendBatch,
            ..
        }
    ));
    assert!(e.to_string().contains("smaller batches"), "{e}");
}
