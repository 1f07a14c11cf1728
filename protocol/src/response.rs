//! [`Response`]: what a server sends, one variant per response frame kind
//! (answers, pushes and errors).
//!
//! Invariants and why:
//! - As for requests, [`Response::validate`] is the single statement of
//!   validity, run by the encoder before writing and by the decoder after
//!   parsing every id and validating every envelope.
//! - Envelopes are decoded with `Envelope::from_rkyv_bytes` (bytecheck, id
//!   re-parse, `Envelope::validate`): a client never sees an envelope the
//!   node itself would refuse.
//! - A download answer is one or more `DOWNLOAD_DATA` frames for the same
//!   request id, whose pieces tile `0..total_len` in order; the first
//!   (offset 0) alone carries the envelope and the last alone carries END.
//!   Each frame states this consistently or is refused (see `download.rs`
//!   for the splitter and the reassembler).
//! - List answers (batch results, inbox pages, look-ups) are bounded by
//!   their limits, which [`crate::Limits::validate`] keeps within the meta
//!   limit, so a server can always encode a full one.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use spine_core::envelope::Envelope;
use spine_core::ids::MailboxId;

use crate::codec::{assemble, EncodedFrame};
use crate::download::DownloadData;
use crate::error::ProtocolError;
use crate::frame::{Flags, Frame, FrameHeader, FrameKind};
use crate::limits::{check_len, check_range, Limits, ServerLimits, MAX_SERVER_NAME_BYTES};
use crate::meta::{
    self, AckBatchOkMeta, BatchResultMeta, ChunkOkMeta, CreditMeta, DownloadDataMeta, HelloOkMeta,
    InboxPageMeta, LookupResultMeta, PushMeta, SendBatchOkMeta, SendOkMeta, ServerLimitsMeta,
    TrackInfoMeta, WireErrorMeta,
};
use crate::service::{
    self, ProviderRegisteredMeta, ServiceCall, ServiceCallMeta, ServiceFault, ServiceResponseMeta,
    MAX_SERVICE_FIELD_BYTES,
};
use crate::shape;
use crate::wire_error::WireError;
use crate::wire_types::{
    envelope_from_wire, envelope_to_wire, parse_id, InboxEntry, LookupEntry, SendOk, TrackInfo,
};

/// A frame from server to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The connection is authenticated.
    HelloOk {
        /// The mailbox the connection acts as (normalised).
        mailbox: MailboxId,
        /// The server's name and version, for logs.
        server_name: String,
        /// What the client must stay within.
        limits: ServerLimits,
    },
    /// The message is durable.
    SendOk(SendOk),
    /// One result per batch item, in item order.
    SendBatchOk(Vec<Result<SendOk, WireError>>),
    /// One result per message of an `ACKNOWLEDGE_BATCH`, in its order.
    AckBatchOk(Vec<Result<(), WireError>>),
    /// The chunk is durable.
    ChunkOk {
        /// True once every chunk has arrived (the message is accepted).
        complete: bool,
    },
    /// One page of the inbox.
    InboxPage {
        /// Messages in acceptance order.
        messages: Vec<InboxEntry>,
        /// Pass as `after` to get the next page; `None` on the last page.
        next: Option<u64>,
        /// Messages waiting in the whole inbox (before filtering).
        total: u64,
    },
    /// One piece of a downloaded chunk.
    DownloadData(DownloadData),
    /// The message is acknowledged.
    AckOk,
    /// What the node knows of a tracked message.
    TrackInfo(TrackInfo),
    /// The mailboxes found.
    LookupResult(Vec<LookupEntry>),
    /// Push delivery has started with this much credit.
    Subscribed {
        /// The credit now available.
        credit: u32,
    },
    /// Push delivery has stopped.
    Unsubscribed,
    /// The answer to `PING`.
    Pong,
    /// A message newly accepted into the subscribed inbox (request id 0;
    /// uses one credit).
    Push {
        /// Its envelope.
        envelope: Arc<Envelope>,
        /// Its inbox order key.
        order: u64,
        /// Its whole body, when the subscription asked for bodies inline
        /// and the server could push it (the INLINE flag); otherwise the
        /// recipient downloads it.
        body: Option<Bytes>,
    },
    /// The answer to `SERVICE_REQUEST`: the response body or a fault.
    ServiceResponse(Result<bytes::Bytes, ServiceFault>),
    /// The connection is now a provider.
    ProviderRegistered {
        /// Its provider id (for logs).
        provider_id: u64,
        /// The service.
        service: String,
    },
    /// The provider's reply was taken.
    ProviderReplyOk,
    /// A request for this provider to serve (request id 0).
    ServiceCall(ServiceCall),
    /// The request failed (or, with request id 0, the connection did).
    Error(WireError),
}

impl Response {
    /// The frame kind this response travels as.
    pub fn kind(&self) -> FrameKind {
        match self {
            Response::HelloOk { .. } => FrameKind::HelloOk,
            Response::SendOk(_) => FrameKind::SendOk,
            Response::SendBatchOk(_) => FrameKind::SendBatchOk,
            Response::AckBatchOk(_) => FrameKind::AckBatchOk,
            Response::ChunkOk { .. } => FrameKind::ChunkOk,
            Response::InboxPage { .. } => FrameKind::InboxPage,
            Response::DownloadData(_) => FrameKind::DownloadData,
            Response::AckOk => FrameKind::AckOk,
            Response::TrackInfo(_) => FrameKind::TrackInfo,
            Response::LookupResult(_) => FrameKind::LookupResult,
            Response::Subscribed { .. } => FrameKind::Subscribed,
            Response::Unsubscribed => FrameKind::Unsubscribed,
            Response::Pong => FrameKind::Pong,
            Response::Push { .. } => FrameKind::Push,
            Response::ServiceResponse(_) => FrameKind::ServiceResponse,
            Response::ProviderRegistered { .. } => FrameKind::ProviderRegistered,
            Response::ProviderReplyOk => FrameKind::ProviderReplyOk,
            Response::ServiceCall(_) => FrameKind::ServiceCall,
            Response::Error(_) => FrameKind::Error,
        }
    }

    /// Checks every field bound and cross-field rule; ids and envelopes are
    /// valid by their types (envelopes are validated again when encoded).
    pub fn validate(&self, limits: &Limits) -> Result<(), ProtocolError> {
        match self {
            Response::HelloOk {
                server_name,
                limits: advertised,
                ..
            } => {
                check_len("server_name", server_name, MAX_SERVER_NAME_BYTES)?;
                let fields = [
                    ("limits.max_payload_bytes", advertised.max_payload_bytes),
                    ("limits.max_meta_bytes", advertised.max_meta_bytes),
                    ("limits.max_batch", advertised.max_batch),
                    ("limits.max_inbox_page", advertised.max_inbox_page),
                    ("limits.max_credit", advertised.max_credit),
                ];
                for (field, value) in fields {
                    check_range(field, u64::from(value), 1, u64::from(u32::MAX))?;
                }
                Ok(())
            }
            Response::SendBatchOk(items) => check_batch_results_of(items, limits),
            Response::AckBatchOk(items) => check_batch_results_of(items, limits),
            Response::InboxPage { messages, .. } => check_range(
                "inbox page entries",
                messages.len() as u64,
                0,
                u64::from(limits.max_inbox_page),
            ),
            Response::DownloadData(data) => data.validate(),
            Response::LookupResult(entries) => {
                check_range(
                    "look-up entries",
                    entries.len() as u64,
                    0,
                    u64::from(limits.max_lookup_results),
                )?;
                entries.iter().try_for_each(LookupEntry::validate)
            }
            Response::Subscribed { credit } => check_range(
                "credit",
                u64::from(*credit),
                0,
                u64::from(limits.max_credit),
            ),
            Response::Error(e) => e.validate(),
            Response::ServiceResponse(result) => service::validate_outcome(result),
            Response::ProviderRegistered { service, .. } => {
                service::check_field("service", service, MAX_SERVICE_FIELD_BYTES)
            }
            Response::ServiceCall(call) => call.validate(),
            Response::ProviderReplyOk
            | Response::SendOk(_)
            | Response::ChunkOk { .. }
            | Response::AckOk
            | Response::TrackInfo(_)
            | Response::Unsubscribed
            | Response::Pong
            | Response::Push { .. } => Ok(()),
        }
    }

    /// Encodes the response to request `request_id` (0 for a push or a
    /// connection-level error), leaving the payload as its own piece.
    pub fn to_frame(
        &self,
        request_id: u64,
        limits: &Limits,
    ) -> Result<EncodedFrame, ProtocolError> {
        self.validate(limits)?;
        let kind = self.kind();
        let mut flags = Flags::NONE;
        let (meta, payload) = match self {
            Response::HelloOk {
                mailbox,
                server_name,
                limits: advertised,
            } => {
                let m = HelloOkMeta {
                    mailbox: mailbox.as_str().to_owned(),
                    server_name: server_name.clone(),
                    limits: ServerLimitsMeta {
                        max_payload_bytes: advertised.max_payload_bytes,
                        max_meta_bytes: advertised.max_meta_bytes,
                        max_batch: advertised.max_batch,
                        max_inbox_page: advertised.max_inbox_page,
                        max_credit: advertised.max_credit,
                    },
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::SendOk(ok) => (Some(meta::encode(kind, &ok.to_meta())?), vec![]),
            Response::AckBatchOk(items) => {
                let m = AckBatchOkMeta {
                    errors: items
                        .iter()
                        .map(|item| item.as_ref().err().map(WireError::to_meta))
                        .collect(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::SendBatchOk(items) => {
                let m = SendBatchOkMeta {
                    items: items
                        .iter()
                        .map(|item| match item {
                            Ok(ok) => BatchResultMeta::Ok(ok.to_meta()),
                            Err(e) => BatchResultMeta::Err(e.to_meta()),
                        })
                        .collect(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::ChunkOk { complete } => {
                let m = ChunkOkMeta {
                    complete: *complete,
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::InboxPage {
                messages,
                next,
                total,
            } => {
                let m = InboxPageMeta {
                    messages: messages.iter().map(InboxEntry::to_meta).collect(),
                    next: *next,
                    total: *total,
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::DownloadData(data) => {
                let m = DownloadDataMeta {
                    envelope: data
                        .envelope
                        .as_deref()
                        .map(|e| envelope_to_wire("envelope", e))
                        .transpose()?,
                    chunk_no: data.chunk_no,
                    total_len: data.total_len,
                    offset: data.offset,
                };
                if data.is_end() {
                    flags = Flags::END;
                }
                (Some(meta::encode(kind, &m)?), vec![data.body.clone()])
            }
            Response::TrackInfo(info) => (Some(meta::encode(kind, &info.to_meta()?)?), vec![]),
            Response::LookupResult(entries) => {
                let m = LookupResultMeta {
                    entries: entries.iter().map(LookupEntry::to_meta).collect(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::Subscribed { credit } => {
                let m = CreditMeta { credit: *credit };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::Push {
                envelope,
                order,
                body,
            } => {
                let m = PushMeta {
                    envelope: envelope_to_wire("envelope", envelope)?,
                    order: *order,
                };
                let payload = match body {
                    Some(body) => {
                        flags = Flags::INLINE;
                        vec![body.clone()]
                    }
                    None => vec![],
                };
                (Some(meta::encode(kind, &m)?), payload)
            }
            Response::Error(e) => (Some(meta::encode(kind, &e.to_meta())?), vec![]),
            Response::ServiceResponse(result) => {
                let m = ServiceResponseMeta {
                    fault: service::fault_meta(result),
                };
                let body = result.as_ref().ok().cloned().unwrap_or_default();
                (Some(meta::encode(kind, &m)?), vec![body])
            }
            Response::ProviderRegistered {
                provider_id,
                service,
            } => {
                let m = ProviderRegisteredMeta {
                    provider_id: *provider_id,
                    service: service.clone(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Response::ServiceCall(call) => (
                Some(meta::encode(kind, &call.to_meta())?),
                vec![call.body.clone()],
            ),
            Response::AckOk
            | Response::Unsubscribed
            | Response::Pong
            | Response::ProviderReplyOk => (None, vec![]),
        };
        let header = FrameHeader {
            kind,
            flags,
            request_id,
        };
        assemble(header, meta.as_deref().unwrap_or_default(), payload, limits)
    }

    /// Encodes the response to request `request_id` and appends it to `dst`.
    pub fn encode(
        &self,
        request_id: u64,
        limits: &Limits,
        dst: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        self.to_frame(request_id, limits)?.write_to(dst);
        Ok(())
    }

    /// Decodes a response from a frame: checks the frame's shape and
    /// limits, validates the meta archive, parses every id, decodes every
    /// envelope and runs [`Response::validate`].
    pub fn from_frame(frame: &Frame, limits: &Limits) -> Result<Response, ProtocolError> {
        let kind = frame.header.kind;
        let unexpected = || ProtocolError::UnexpectedKind {
            kind,
            receiver: "client",
            expected: "response kinds (0x80..=0xFF) only",
        };
        if kind.is_request() {
            return Err(unexpected());
        }
        shape::check_frame(frame, limits)?;
        let m = &frame.meta;
        let response = match kind {
            FrameKind::HelloOk => {
                let h: HelloOkMeta = meta::decode(kind, m)?;
                Response::HelloOk {
                    mailbox: parse_id("mailbox", &h.mailbox, MailboxId::parse)?,
                    server_name: h.server_name,
                    limits: ServerLimits {
                        max_payload_bytes: h.limits.max_payload_bytes,
                        max_meta_bytes: h.limits.max_meta_bytes,
                        max_batch: h.limits.max_batch,
                        max_inbox_page: h.limits.max_inbox_page,
                        max_credit: h.limits.max_credit,
                    },
                }
            }
            FrameKind::SendOk => {
                let s: SendOkMeta = meta::decode(kind, m)?;
                Response::SendOk(SendOk::from_meta(s)?)
            }
            FrameKind::SendBatchOk => {
                let b: SendBatchOkMeta = meta::decode(kind, m)?;
                check_batch_results(b.items.len(), limits)?;
                let items = b
                    .items
                    .into_iter()
                    .map(|item| match item {
                        BatchResultMeta::Ok(ok) => SendOk::from_meta(ok).map(Ok),
                        BatchResultMeta::Err(e) => WireError::from_meta(e).map(Err),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Response::SendBatchOk(items)
            }
            FrameKind::AckBatchOk => {
                let b: AckBatchOkMeta = meta::decode(kind, m)?;
                check_batch_results(b.errors.len(), limits)?;
                let items = b
                    .errors
                    .into_iter()
                    .map(|e| match e {
                        None => Ok(Ok(())),
                        Some(e) => WireError::from_meta(e).map(Err),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Response::AckBatchOk(items)
            }
            FrameKind::ChunkOk => {
                let c: ChunkOkMeta = meta::decode(kind, m)?;
                Response::ChunkOk {
                    complete: c.complete,
                }
            }
            FrameKind::InboxPage => {
                let p: InboxPageMeta = meta::decode(kind, m)?;
                check_range(
                    "inbox page entries",
                    p.messages.len() as u64,
                    0,
                    u64::from(limits.max_inbox_page),
                )?;
                Response::InboxPage {
                    messages: p
                        .messages
                        .into_iter()
                        .map(InboxEntry::from_meta)
                        .collect::<Result<_, _>>()?,
                    next: p.next,
                    total: p.total,
                }
            }
            FrameKind::DownloadData => {
                let d: DownloadDataMeta = meta::decode(kind, m)?;
                let data = DownloadData {
                    envelope: d
                        .envelope
                        .as_deref()
                        .map(|e| envelope_from_wire("envelope", e))
                        .transpose()?,
                    chunk_no: d.chunk_no,
                    total_len: d.total_len,
                    offset: d.offset,
                    body: frame.payload.clone(),
                };
                data.validate()?;
                if frame.header.flags.contains(Flags::END) != data.is_end() {
                    return Err(ProtocolError::Inconsistent {
                        kind,
                        why: format!(
                            "END is {} but the piece {} at offset {} of {} bytes; END must be \
                             set exactly on the last piece",
                            if data.is_end() { "clear" } else { "set" },
                            if data.is_end() {
                                "ends"
                            } else {
                                "does not end"
                            },
                            data.offset,
                            data.total_len
                        ),
                    });
                }
                Response::DownloadData(data)
            }
            FrameKind::AckOk => Response::AckOk,
            FrameKind::TrackInfo => {
                let t: TrackInfoMeta = meta::decode(kind, m)?;
                Response::TrackInfo(TrackInfo::from_meta(t)?)
            }
            FrameKind::LookupResult => {
                let l: LookupResultMeta = meta::decode(kind, m)?;
                check_range(
                    "look-up entries",
                    l.entries.len() as u64,
                    0,
                    u64::from(limits.max_lookup_results),
                )?;
                Response::LookupResult(
                    l.entries
                        .into_iter()
                        .map(LookupEntry::from_meta)
                        .collect::<Result<_, _>>()?,
                )
            }
            FrameKind::Subscribed => {
                let c: CreditMeta = meta::decode(kind, m)?;
                Response::Subscribed { credit: c.credit }
            }
            FrameKind::Unsubscribed => Response::Unsubscribed,
            FrameKind::Pong => Response::Pong,
            FrameKind::Push => {
                let p: PushMeta = meta::decode(kind, m)?;
                let inline = frame.header.flags.contains(Flags::INLINE);
                if !inline && !frame.payload.is_empty() {
                    return Err(ProtocolError::Inconsistent {
                        kind,
                        why: format!(
                            "a PUSH without the INLINE flag carries a {}-byte payload; only an \
                             inline body may be sent",
                            frame.payload.len()
                        ),
                    });
                }
                Response::Push {
                    envelope: envelope_from_wire("envelope", &p.envelope)?,
                    order: p.order,
                    body: inline.then(|| frame.payload.clone()),
                }
            }
            FrameKind::Error => {
                let e: WireErrorMeta = meta::decode(kind, m)?;
                Response::Error(WireError::from_meta(e)?)
            }
            FrameKind::ServiceResponse => {
                let r: ServiceResponseMeta = meta::decode(kind, m)?;
                service::fault_has_no_body(kind, &r.fault, &frame.payload)?;
                Response::ServiceResponse(service::outcome(r.fault, frame.payload.clone()))
            }
            FrameKind::ProviderRegistered => {
                let r: ProviderRegisteredMeta = meta::decode(kind, m)?;
                Response::ProviderRegistered {
                    provider_id: r.provider_id,
                    service: r.service,
                }
            }
            FrameKind::ProviderReplyOk => Response::ProviderReplyOk,
            FrameKind::ServiceCall => {
                let c: ServiceCallMeta = meta::decode(kind, m)?;
                Response::ServiceCall(ServiceCall::from_meta(c, frame.payload.clone()))
            }
            _ => return Err(unexpected()),
        };
        response.validate(limits)?;
        Ok(response)
    }
}

/// Checks a batch answer has 1..=max_batch results.
fn check_batch_results(results: usize, limits: &Limits) -> Result<(), ProtocolError> {
    check_range(
        "batch results",
        results as u64,
        1,
        u64::from(limits.max_batch),
    )
}

/// Checks a batch answer's count and each refusal in it.
fn check_batch_results_of<T>(
    items: &[Result<T, WireError>],
    limits: &Limits,
) -> Result<(), ProtocolError> {
    check_batch_results(items.len(), limits)?;
    items.iter().try_for_each(|item| match item {
        Ok(_) => Ok(()),
        Err(e) => e.validate(),
    })
}
