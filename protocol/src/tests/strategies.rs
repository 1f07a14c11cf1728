//! proptest strategies producing valid messages of every kind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use spine_core::envelope::{Envelope, MessageType, ReportStatus, MAX_CHUNKS};
use spine_core::ids::{LocalId, MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::time::Timestamp;

use crate::download::DownloadData;
use crate::limits::{Limits, ServerLimits};
use crate::request::{BatchItem, Request};
use crate::response::Response;
use crate::service::{ServiceCall, ServiceFault};
use crate::wire_error::{WireError, WireErrorCode};
use crate::wire_types::{InboxEntry, LookupEntry, Password, SendHeader, SendOk, TrackInfo};

/// Limits small enough that list strategies reach them.
pub(crate) fn test_limits() -> Limits {
    Limits {
        max_batch: 8,
        max_inbox_page: 8,
        max_lookup_results: 8,
        max_credit: 1_000,
        ..Limits::default()
    }
}

pub(crate) fn mailbox() -> impl Strategy<Value = MailboxId> {
    "[A-Za-z0-9_-]{1,32}".prop_map(|s| MailboxId::parse(&s).unwrap())
}

pub(crate) fn workflow() -> impl Strategy<Value = WorkflowId> {
    "[!-~]{1,40}"
        .prop_filter("not a URL", |s| {
            let l = s.to_ascii_lowercase();
            !l.starts_with("http://") && !l.starts_with("https://")
        })
        .prop_map(|s| WorkflowId::parse(&s).unwrap())
}

pub(crate) fn ods() -> impl Strategy<Value = OdsCode> {
    "[A-Za-z0-9]{2,10}".prop_map(|s| OdsCode::parse(&s).unwrap())
}

pub(crate) fn local() -> impl Strategy<Value = LocalId> {
    proptest::collection::vec(
        any::<char>().prop_filter("no C0/DEL", |c| *c > '\u{1F}' && *c != '\u{7F}'),
        1..=40,
    )
    .prop_map(|v| LocalId::parse(&v.into_iter().collect::<String>()).unwrap())
}

pub(crate) fn message_id() -> impl Strategy<Value = MessageId> {
    (0..=Timestamp::MAX.as_micros(), 0u32..=0xFF_FFFF)
        .prop_map(|(t, s)| MessageId::from_parts(Timestamp::from_micros(t), s).unwrap())
}

pub(crate) fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0..=Timestamp::MAX.as_micros()).prop_map(Timestamp::from_micros)
}

pub(crate) fn status() -> impl Strategy<Value = MessageStatus> {
    prop_oneof![
        Just(MessageStatus::Uploading),
        Just(MessageStatus::Accepted),
        Just(MessageStatus::Acknowledged),
        Just(MessageStatus::Expired),
    ]
}

/// Free text: the codec bounds its length only, so any characters.
fn text(max_chars: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::collection::vec(any::<char>(), 0..=max_chars))
        .prop_map(|v| v.map(|c| c.into_iter().collect()))
}

pub(crate) fn body() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

prop_compose! {
    pub(crate) fn send_header()(
        recipient in mailbox(),
        workflow_id in workflow(),
        subject in text(100),
        local_id in proptest::option::of(local()),
        file_name in text(60),
        content_type in text(25),
        compressed: bool,
        encrypted: bool,
        checksum in text(25),
        partner_id in text(100),
        total_chunks: u32,
        idempotency_key in text(32),
    ) -> SendHeader {
        SendHeader {
            recipient, workflow_id, subject, local_id, file_name, content_type, compressed,
            encrypted, checksum, partner_id, total_chunks, idempotency_key,
        }
    }
}

/// A valid envelope (clean text, so `Envelope::validate` passes).
pub(crate) fn envelope() -> impl Strategy<Value = Arc<Envelope>> {
    (
        message_id(),
        any::<bool>(),
        mailbox(),
        mailbox(),
        workflow(),
        proptest::option::of("[ -~]{1,80}"),
        proptest::option::of(local()),
        0u32..=MAX_CHUNKS,
        0..Timestamp::MAX.as_micros(),
        1u64..=1_000_000_000_000,
        proptest::option::of(message_id()),
    )
        .prop_map(
            |(
                id,
                is_report,
                sender,
                recipient,
                workflow_id,
                subject,
                local_id,
                chunks,
                created,
                life,
                linked,
            )| {
                let created_at = Timestamp::from_micros(created);
                Arc::new(Envelope {
                    message_id: id,
                    message_type: if is_report {
                        MessageType::Report
                    } else {
                        MessageType::Data
                    },
                    sender,
                    recipient,
                    workflow_id,
                    subject,
                    local_id,
                    file_name: None,
                    content_type: Some("text/plain".into()),
                    compressed: false,
                    encrypted: is_report,
                    checksum: None,
                    partner_id: None,
                    total_chunks: if is_report { chunks % 2 } else { chunks.max(1) },
                    created_at,
                    expires_at: created_at.saturating_add(Duration::from_micros(life)),
                    linked_message_id: linked,
                    report: is_report.then(|| ReportStatus {
                        code: "14".into(),
                        event: "SEND".into(),
                        description: "not collected".into(),
                    }),
                })
            },
        )
}

pub(crate) fn request() -> impl Strategy<Value = Request> {
    let limits = test_limits();
    prop_oneof![
        (
            "[ -~]{1,128}",
            mailbox(),
            proptest::collection::vec(any::<char>(), 1..=200)
        )
            .prop_filter_map("password within bytes", |(client_name, mailbox, p)| {
                let password: String = p.into_iter().collect();
                (password.len() <= 1_024).then(|| Request::Hello {
                    client_name,
                    mailbox,
                    password: Password::new(password),
                })
            }),
        (send_header(), body()).prop_map(|(header, body)| Request::Send { header, body }),
        proptest::collection::vec(
            (send_header(), body()).prop_map(|(header, body)| BatchItem { header, body }),
            1..=limits.max_batch as usize
        )
        .prop_map(Request::SendBatch),
        (message_id(), 2..=MAX_CHUNKS, body()).prop_map(|(message_id, chunk_no, body)| {
            Request::SendChunk {
                message_id,
                chunk_no,
                body,
            }
        }),
        (
            proptest::option::of("[ -~]{1,255}"),
            1..=limits.max_inbox_page,
            any::<Option<u64>>()
        )
            .prop_map(|(workflow_filter, max_results, after)| Request::ListInbox {
                workflow_filter,
                max_results,
                after,
            }),
        (message_id(), 1..=MAX_CHUNKS).prop_map(|(message_id, chunk_no)| Request::Download {
            message_id,
            chunk_no
        }),
        message_id().prop_map(|message_id| Request::Acknowledge { message_id }),
        proptest::collection::vec(message_id(), 1..=limits.max_batch as usize)
            .prop_map(|message_ids| Request::AcknowledgeBatch { message_ids }),
        message_id().prop_map(|message_id| Request::Track { message_id }),
        (proptest::option::of(ods()), workflow()).prop_map(|(ods_code, workflow_id)| {
            Request::Lookup {
                ods_code,
                workflow_id,
            }
        }),
        (0..=limits.max_credit, any::<bool>())
            .prop_map(|(credit, inline)| Request::Subscribe { credit, inline }),
        (1..=limits.max_credit).prop_map(|add| Request::Credit { add }),
        Just(Request::Unsubscribe),
        Just(Request::Ping),
        (
            "[a-z][a-z0-9-]{0,31}",
            "[!-~]{1,128}",
            proptest::option::of("[0-9]{1,20}"),
            proptest::option::of("[!-~]{1,128}"),
            body()
        )
            .prop_map(|(service, interaction, asid, message_id, body)| {
                Request::ServiceRequest {
                    service,
                    interaction,
                    asid,
                    message_id,
                    body,
                }
            }),
        "[a-z][a-z0-9-]{0,31}".prop_map(|service| Request::RegisterProvider { service }),
        (any::<u64>(), service_outcome()).prop_map(|(correlation, result)| {
            Request::ProviderReply {
                correlation,
                result,
            }
        }),
    ]
}

/// A service outcome: a body or a fault.
pub(crate) fn service_outcome() -> impl Strategy<Value = Result<Bytes, ServiceFault>> {
    prop_oneof![
        body().prop_map(Ok),
        ("[A-Z0-9_]{1,64}", "[^\\p{Cc}]{0,200}")
            .prop_map(|(code, message)| Err(ServiceFault { code, message })),
    ]
}

/// A service call delivered to a provider.
pub(crate) fn service_call() -> impl Strategy<Value = ServiceCall> {
    (
        (any::<u64>(), "[a-z]{1,32}", "[!-~]{1,128}", "[a-z]{1,32}"),
        (
            "[0-9]{1,20}",
            "[A-Z0-9]{1,10}",
            proptest::option::of("[!-~]{1,128}"),
            body(),
        ),
    )
        .prop_map(
            |((correlation, service, interaction, operation), (asid, ods, message_id, body))| {
                ServiceCall {
                    correlation,
                    service,
                    interaction,
                    operation,
                    asid,
                    ods,
                    message_id,
                    body,
                }
            },
        )
}

pub(crate) fn send_ok() -> impl Strategy<Value = SendOk> {
    (message_id(), any::<bool>(), status()).prop_map(|(message_id, duplicate, status)| SendOk {
        message_id,
        duplicate,
        status,
    })
}

pub(crate) fn wire_error() -> impl Strategy<Value = WireError> {
    (
        any::<u16>(),
        "[A-Z0-9_]{1,64}",
        proptest::collection::vec(any::<char>(), 0..=200),
    )
        .prop_map(|(code, name, message)| {
            let message: String = message.into_iter().collect();
            let mut e = WireError::new(WireErrorCode::Internal, &name, &message);
            e.code = code;
            e
        })
}

pub(crate) fn inbox_entry() -> impl Strategy<Value = InboxEntry> {
    (
        message_id(),
        any::<bool>(),
        mailbox(),
        workflow(),
        any::<u32>(),
        any::<u64>(),
        timestamp(),
        timestamp(),
    )
        .prop_map(
            |(
                message_id,
                report,
                sender,
                workflow_id,
                total_chunks,
                order,
                created_at,
                expires_at,
            )| {
                InboxEntry {
                    message_id,
                    message_type: if report {
                        MessageType::Report
                    } else {
                        MessageType::Data
                    },
                    sender,
                    workflow_id,
                    total_chunks,
                    order,
                    created_at,
                    expires_at,
                }
            },
        )
}

/// A consistent piece of a download.
pub(crate) fn download_data() -> impl Strategy<Value = DownloadData> {
    (
        envelope(),
        1..=MAX_CHUNKS,
        body(),
        0u64..1_000,
        0u64..1_000,
        any::<bool>(),
    )
        .prop_map(|(envelope, chunk_no, body, before, after, first)| {
            let offset = if first { 0 } else { before + 1 };
            DownloadData {
                envelope: first.then_some(envelope),
                chunk_no,
                total_len: offset + body.len() as u64 + after,
                offset,
                body,
            }
        })
}

pub(crate) fn track_info() -> impl Strategy<Value = TrackInfo> {
    (
        envelope(),
        status(),
        any::<Option<u64>>(),
        any::<u32>(),
        proptest::option::of(timestamp()),
        proptest::option::of(timestamp()),
    )
        .prop_map(
            |(envelope, status, order, chunks_received, acknowledged_at, expired_at)| TrackInfo {
                envelope,
                status,
                order,
                chunks_received,
                acknowledged_at,
                expired_at,
            },
        )
}

pub(crate) fn server_limits() -> impl Strategy<Value = ServerLimits> {
    (
        1..=u32::MAX,
        1..=u32::MAX,
        1..=u32::MAX,
        1..=u32::MAX,
        1..=u32::MAX,
    )
        .prop_map(
            |(max_payload_bytes, max_meta_bytes, max_batch, max_inbox_page, max_credit)| {
                ServerLimits {
                    max_payload_bytes,
                    max_meta_bytes,
                    max_batch,
                    max_inbox_page,
                    max_credit,
                }
            },
        )
}

pub(crate) fn response() -> impl Strategy<Value = Response> {
    let limits = test_limits();
    prop_oneof![
        (mailbox(), "[ -~]{0,128}", server_limits()).prop_map(|(mailbox, server_name, limits)| {
            Response::HelloOk {
                mailbox,
                server_name,
                limits,
            }
        }),
        send_ok().prop_map(Response::SendOk),
        proptest::collection::vec(
            prop_oneof![send_ok().prop_map(Ok), wire_error().prop_map(Err)],
            1..=limits.max_batch as usize
        )
        .prop_map(Response::SendBatchOk),
        proptest::collection::vec(
            proptest::option::of(wire_error()).prop_map(|e| e.map_or(Ok(()), Err)),
            1..=limits.max_batch as usize
        )
        .prop_map(Response::AckBatchOk),
        any::<bool>().prop_map(|complete| Response::ChunkOk { complete }),
        (
            proptest::collection::vec(inbox_entry(), 0..=limits.max_inbox_page as usize),
            any::<Option<u64>>(),
            any::<u64>()
        )
            .prop_map(|(messages, next, total)| Response::InboxPage {
                messages,
                next,
                total
            }),
        download_data().prop_map(Response::DownloadData),
        Just(Response::AckOk),
        track_info().prop_map(Response::TrackInfo),
        proptest::collection::vec(
            (
                mailbox(),
                proptest::collection::vec(any::<char>(), 0..=100),
                ods()
            )
                .prop_map(|(mailbox_id, name, ods_code)| LookupEntry {
                    mailbox_id,
                    mailbox_name: name.into_iter().collect(),
                    ods_code,
                }),
            0..=limits.max_lookup_results as usize
        )
        .prop_map(Response::LookupResult),
        (0..=limits.max_credit).prop_map(|credit| Response::Subscribed { credit }),
        Just(Response::Unsubscribed),
        Just(Response::Pong),
        (
            envelope(),
            any::<u64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
        )
            .prop_map(|(envelope, order, body)| Response::Push {
                envelope,
                order,
                body: body.map(Bytes::from),
            }),
        wire_error().prop_map(Response::Error),
        service_outcome().prop_map(Response::ServiceResponse),
        (any::<u64>(), "[a-z][a-z0-9-]{0,31}").prop_map(|(provider_id, service)| {
            Response::ProviderRegistered {
                provider_id,
                service,
            }
        }),
        Just(Response::ProviderReplyOk),
        service_call().prop_map(Response::ServiceCall),
    ]
}

/// A request id valid for `response`'s kind.
pub(crate) fn response_id(response: &Response, id: u64) -> u64 {
    match response {
        Response::Push { .. } | Response::ServiceCall(_) => 0,
        Response::Error(_) => id,
        _ => id.max(1),
    }
}
