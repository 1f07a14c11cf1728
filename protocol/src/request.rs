//! [`Request`]: what a client sends, one variant per request frame kind.
//!
//! Invariants and why:
//! - [`Request::validate`] is the single statement of what a valid request
//!   is; encoding runs it before writing and decoding runs it after parsing
//!   every id, so whatever encodes also decodes, and nothing invalid gets
//!   past the decoder.
//! - The sender of a send is not on the wire: the server takes it from the
//!   authenticated connection, so a client cannot send as another mailbox.
//! - A batch's bodies are concatenated in the payload in item order, each
//!   item's meta holding its body length; the lengths must add up to the
//!   payload exactly. Bodies are handed out as slices of the payload.

use bytes::{Bytes, BytesMut};
use spine_core::envelope::MAX_CHUNKS;
use spine_core::ids::{MailboxId, MessageId, OdsCode, WorkflowId};

use crate::codec::{assemble, EncodedFrame};
use crate::error::ProtocolError;
use crate::frame::{Flags, Frame, FrameHeader, FrameKind};
use crate::limits::{check_len, check_opt_len, check_range, Limits, MAX_WORKFLOW_FILTER_BYTES};
use crate::meta::{
    self, AckBatchMeta, BatchItemMeta, ChunkRefMeta, CreditMeta, HelloMeta, ListInboxMeta,
    LookupMeta, MessageRefMeta, SendBatchMeta, SendHeaderMeta,
};
use crate::service::{
    self, ProviderReplyMeta, RegisterProviderMeta, ServiceRequestMeta, MAX_INTERACTION_BYTES,
    MAX_SERVICE_FIELD_BYTES,
};
use crate::shape;
use crate::wire_types::{parse_id, parse_opt_id, Password, SendHeader, SendHeaderWire};

/// One message of a `SEND_BATCH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// What the sender says about the message.
    pub header: SendHeader,
    /// Its body (a single-chunk message, or chunk 1 of a chunked one).
    pub body: Bytes,
}

/// A request from client to server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Authenticate the connection as `mailbox`. Must come first.
    Hello {
        /// The client software's name and version, for logs.
        client_name: String,
        /// The mailbox to act as.
        mailbox: MailboxId,
        /// Its password.
        password: Password,
    },
    /// Send one message (or chunk 1 of a chunked one).
    Send {
        /// What the sender says about the message.
        header: SendHeader,
        /// The body.
        body: Bytes,
    },
    /// Send several messages in one frame; answered item by item.
    SendBatch(Vec<BatchItem>),
    /// Upload chunk `chunk_no` (2..) of a chunked message.
    SendChunk {
        /// The message, as `SEND_OK` named it.
        message_id: MessageId,
        /// The chunk number, 2..=total_chunks.
        chunk_no: u32,
        /// The chunk's bytes.
        body: Bytes,
    },
    /// One page of the inbox, in acceptance order.
    ListInbox {
        /// A MESH workflow filter.
        workflow_filter: Option<String>,
        /// Most entries wanted (1..=max_inbox_page).
        max_results: u32,
        /// Continue after this order key (`next` of the previous page).
        after: Option<u64>,
    },
    /// Download chunk `chunk_no` of a message in the inbox.
    Download {
        /// The message.
        message_id: MessageId,
        /// The chunk number, 1-based.
        chunk_no: u32,
    },
    /// Acknowledge a message in the inbox (idempotent).
    Acknowledge {
        /// The message.
        message_id: MessageId,
    },
    /// Acknowledge several messages at once (1..=max_batch), each as
    /// [`Request::Acknowledge`] would; answered with one result per message.
    AcknowledgeBatch {
        /// The messages.
        message_ids: Vec<MessageId>,
    },
    /// Track a message this mailbox sent.
    Track {
        /// The message.
        message_id: MessageId,
    },
    /// Mailboxes receiving `workflow_id`, at organisation `ods_code` or,
    /// without one, anywhere.
    Lookup {
        /// The organisation, if any.
        ods_code: Option<OdsCode>,
        /// The workflow.
        workflow_id: WorkflowId,
    },
    /// Start push delivery of newly accepted messages, with `credit` pushes
    /// allowed before more credit is granted.
    Subscribe {
        /// Initial credit (0..=max_credit).
        credit: u32,
        /// Push each message's body with its notification when the server
        /// can (a single-chunk body no larger than the server's
        /// `push_inline_bytes`), saving a `DOWNLOAD` (the INLINE flag).
        inline: bool,
    },
    /// Allow `add` more pushes (1..=max_credit). Has no response.
    Credit {
        /// Credit to add.
        add: u32,
    },
    /// Stop push delivery.
    Unsubscribe,
    /// Liveness check; answered with `PONG`.
    Ping,
    /// A request to a national service; answered with `SERVICE_RESPONSE`.
    ServiceRequest {
        /// The service (`pds`).
        service: String,
        /// The interaction: full id, short id or operation name.
        interaction: String,
        /// The accredited system to act as, if named.
        asid: Option<String>,
        /// A message id for duplicate elimination.
        message_id: Option<String>,
        /// The body.
        body: Bytes,
    },
    /// Register this connection as a provider of `service`; requests then
    /// arrive as `SERVICE_CALL` pushes.
    RegisterProvider {
        /// The service.
        service: String,
    },
    /// A provider's answer to a `SERVICE_CALL`.
    ProviderReply {
        /// The call's correlation id.
        correlation: u64,
        /// The response body, or a fault.
        result: Result<Bytes, crate::service::ServiceFault>,
    },
}

impl Request {
    /// The frame kind this request travels as.
    pub fn kind(&self) -> FrameKind {
        match self {
            Request::Hello { .. } => FrameKind::Hello,
            Request::Send { .. } => FrameKind::Send,
            Request::SendBatch(_) => FrameKind::SendBatch,
            Request::SendChunk { .. } => FrameKind::SendChunk,
            Request::ListInbox { .. } => FrameKind::ListInbox,
            Request::Download { .. } => FrameKind::Download,
            Request::Acknowledge { .. } => FrameKind::Acknowledge,
            Request::AcknowledgeBatch { .. } => FrameKind::AcknowledgeBatch,
            Request::Track { .. } => FrameKind::Track,
            Request::Lookup { .. } => FrameKind::Lookup,
            Request::Subscribe { .. } => FrameKind::Subscribe,
            Request::Credit { .. } => FrameKind::Credit,
            Request::Unsubscribe => FrameKind::Unsubscribe,
            Request::Ping => FrameKind::Ping,
            Request::ServiceRequest { .. } => FrameKind::ServiceRequest,
            Request::RegisterProvider { .. } => FrameKind::RegisterProvider,
            Request::ProviderReply { .. } => FrameKind::ProviderReply,
        }
    }

    /// Checks every field bound; ids are valid by their types.
    pub fn validate(&self, limits: &Limits) -> Result<(), ProtocolError> {
        match self {
            Request::Hello {
                client_name,
                password,
                ..
            } => {
                check_len(
                    "client_name",
                    client_name,
                    limits.max_client_name_bytes as usize,
                )?;
                check_text("client_name", client_name)?;
                if password.expose().is_empty() {
                    return Err(ProtocolError::FieldInvalid {
                        field: "password",
                        why: "it is empty; give the mailbox's password".into(),
                    });
                }
                check_len(
                    "password",
                    password.expose(),
                    limits.max_password_bytes as usize,
                )
            }
            Request::Send { header, .. } => header.validate(),
            Request::SendBatch(items) => {
                check_batch_len(items.len(), limits)?;
                items.iter().try_for_each(|item| item.header.validate())
            }
            Request::AcknowledgeBatch { message_ids } => check_batch_len(message_ids.len(), limits),
            Request::SendChunk { chunk_no, .. } => {
                check_range("chunk_no", u64::from(*chunk_no), 2, u64::from(MAX_CHUNKS))
            }
            Request::ListInbox {
                workflow_filter,
                max_results,
                ..
            } => {
                check_opt_len(
                    "workflow_filter",
                    workflow_filter.as_deref(),
                    MAX_WORKFLOW_FILTER_BYTES,
                )?;
                check_range(
                    "max_results",
                    u64::from(*max_results),
                    1,
                    u64::from(limits.max_inbox_page),
                )
            }
            Request::Download { chunk_no, .. } => {
                check_range("chunk_no", u64::from(*chunk_no), 1, u64::from(MAX_CHUNKS))
            }
            Request::Subscribe { credit, .. } => check_range(
                "credit",
                u64::from(*credit),
                0,
                u64::from(limits.max_credit),
            ),
            Request::Credit { add } => {
                check_range("add", u64::from(*add), 1, u64::from(limits.max_credit))
            }
            Request::ServiceRequest {
                service,
                interaction,
                asid,
                message_id,
                ..
            } => {
                service::check_field("service", service, MAX_SERVICE_FIELD_BYTES)?;
                service::check_field("interaction", interaction, MAX_INTERACTION_BYTES)?;
                service::check_opt_field("asid", asid.as_deref(), MAX_SERVICE_FIELD_BYTES)?;
                service::check_opt_field("message_id", message_id.as_deref(), MAX_INTERACTION_BYTES)
            }
            Request::RegisterProvider { service } => {
                service::check_field("service", service, MAX_SERVICE_FIELD_BYTES)
            }
            Request::ProviderReply { result, .. } => service::validate_outcome(result),
            Request::Acknowledge { .. }
            | Request::Track { .. }
            | Request::Lookup { .. }
            | Request::Unsubscribe
            | Request::Ping => Ok(()),
        }
    }

    /// Encodes the request with id `request_id` (not 0), leaving bodies as
    /// separate payload pieces.
    pub fn to_frame(
        &self,
        request_id: u64,
        limits: &Limits,
    ) -> Result<EncodedFrame, ProtocolError> {
        self.validate(limits)?;
        let kind = self.kind();
        let flags = match self {
            Request::Subscribe { inline: true, .. } => Flags::INLINE,
            _ => Flags::NONE,
        };
        let header = FrameHeader {
            kind,
            flags,
            request_id,
        };
        let (meta, payload) = match self {
            Request::Hello {
                client_name,
                mailbox,
                password,
            } => {
                let m = HelloMeta {
                    client_name: client_name.clone(),
                    mailbox: mailbox.as_str().to_owned(),
                    password: password.expose().to_owned(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::Send { header, body } => (
                Some(meta::encode(kind, &header.to_meta())?),
                vec![body.clone()],
            ),
            Request::SendBatch(items) => {
                let mut metas = Vec::with_capacity(items.len());
                for item in items {
                    let body_len = u32::try_from(item.body.len()).map_err(|_| {
                        ProtocolError::PayloadTooLarge {
                            kind,
                            len: item.body.len() as u64,
                            max: u64::from(limits.max_payload_bytes),
                        }
                    })?;
                    metas.push(BatchItemMeta {
                        header: item.header.to_meta(),
                        body_len,
                    });
                }
                let m = SendBatchMeta { items: metas };
                let bodies = items.iter().map(|i| i.body.clone()).collect();
                (Some(meta::encode(kind, &m)?), bodies)
            }
            Request::SendChunk {
                message_id,
                chunk_no,
                body,
            } => {
                let m = ChunkRefMeta {
                    message_id: message_id.as_str().to_owned(),
                    chunk_no: *chunk_no,
                };
                (Some(meta::encode(kind, &m)?), vec![body.clone()])
            }
            Request::ListInbox {
                workflow_filter,
                max_results,
                after,
            } => {
                let m = ListInboxMeta {
                    workflow_filter: workflow_filter.clone(),
                    max_results: *max_results,
                    after: *after,
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::Download {
                message_id,
                chunk_no,
            } => {
                let m = ChunkRefMeta {
                    message_id: message_id.as_str().to_owned(),
                    chunk_no: *chunk_no,
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::Acknowledge { message_id } | Request::Track { message_id } => {
                let m = MessageRefMeta {
                    message_id: message_id.as_str().to_owned(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::AcknowledgeBatch { message_ids } => {
                let m = AckBatchMeta {
                    message_ids: message_ids
                        .iter()
                        .map(|id| id.as_str().to_owned())
                        .collect(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::Lookup {
                ods_code,
                workflow_id,
            } => {
                let m = LookupMeta {
                    ods_code: ods_code.as_ref().map(|o| o.as_str().to_owned()),
                    workflow_id: workflow_id.as_str().to_owned(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::Subscribe { credit, .. } => {
                let m = CreditMeta { credit: *credit };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::Credit { add } => {
                let m = CreditMeta { credit: *add };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::ServiceRequest {
                service,
                interaction,
                asid,
                message_id,
                body,
            } => {
                let m = ServiceRequestMeta {
                    service: service.clone(),
                    interaction: interaction.clone(),
                    asid: asid.clone(),
                    message_id: message_id.clone(),
                };
                (Some(meta::encode(kind, &m)?), vec![body.clone()])
            }
            Request::RegisterProvider { service } => {
                let m = RegisterProviderMeta {
                    service: service.clone(),
                };
                (Some(meta::encode(kind, &m)?), vec![])
            }
            Request::ProviderReply {
                correlation,
                result,
            } => {
                let m = ProviderReplyMeta {
                    correlation: *correlation,
                    fault: service::fault_meta(result),
                };
                let body = result.as_ref().ok().cloned().unwrap_or_default();
                (Some(meta::encode(kind, &m)?), vec![body])
            }
            Request::Unsubscribe | Request::Ping => (None, vec![]),
        };
        assemble(header, meta.as_deref().unwrap_or_default(), payload, limits)
    }

    /// Encodes the request with id `request_id` (not 0) and appends it to
    /// `dst`.
    pub fn encode(
        &self,
        request_id: u64,
        limits: &Limits,
        dst: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        self.to_frame(request_id, limits)?.write_to(dst);
        Ok(())
    }

    /// Decodes a request from a frame: checks the frame's shape and limits,
    /// validates the meta archive, parses every id and runs
    /// [`Request::validate`].
    pub fn from_frame(frame: &Frame, limits: &Limits) -> Result<Request, ProtocolError> {
        let kind = frame.header.kind;
        if !kind.is_request() {
            return Err(ProtocolError::UnexpectedKind {
                kind,
                receiver: "server",
                expected: "request kinds (0x01..=0x7F) only",
            });
        }
        shape::check_frame(frame, limits)?;
        let m = &frame.meta;
        let request = match kind {
            FrameKind::Hello => {
                let h: HelloMeta = meta::decode(kind, m)?;
                Request::Hello {
                    mailbox: parse_id("mailbox", &h.mailbox, MailboxId::parse)?,
                    client_name: h.client_name,
                    password: Password::new(h.password),
                }
            }
            FrameKind::Send => {
                let h: SendHeaderMeta = meta::decode(kind, m)?;
                Request::Send {
                    header: SendHeader::from_meta(h)?,
                    body: frame.payload.clone(),
                }
            }
            FrameKind::SendBatch => {
                let b: SendBatchMeta = meta::decode(kind, m)?;
                Request::SendBatch(batch_items(b, &frame.payload, limits)?)
            }
            FrameKind::SendChunk => {
                let c: ChunkRefMeta = meta::decode(kind, m)?;
                Request::SendChunk {
                    message_id: parse_id("message_id", &c.message_id, MessageId::parse)?,
                    chunk_no: c.chunk_no,
                    body: frame.payload.clone(),
                }
            }
            FrameKind::ListInbox => {
                let l: ListInboxMeta = meta::decode(kind, m)?;
                Request::ListInbox {
                    workflow_filter: l.workflow_filter,
                    max_results: l.max_results,
                    after: l.after,
                }
            }
            FrameKind::Download => {
                let c: ChunkRefMeta = meta::decode(kind, m)?;
                Request::Download {
                    message_id: parse_id("message_id", &c.message_id, MessageId::parse)?,
                    chunk_no: c.chunk_no,
                }
            }
            FrameKind::Acknowledge => {
                let r: MessageRefMeta = meta::decode(kind, m)?;
                Request::Acknowledge {
                    message_id: parse_id("message_id", &r.message_id, MessageId::parse)?,
                }
            }
            FrameKind::AcknowledgeBatch => {
                let b: AckBatchMeta = meta::decode(kind, m)?;
                check_batch_len(b.message_ids.len(), limits)?;
                Request::AcknowledgeBatch {
                    message_ids: b
                        .message_ids
                        .iter()
                        .map(|id| parse_id("message_id", id, MessageId::parse))
                        .collect::<Result<_, _>>()?,
                }
            }
            FrameKind::Track => {
                let r: MessageRefMeta = meta::decode(kind, m)?;
                Request::Track {
                    message_id: parse_id("message_id", &r.message_id, MessageId::parse)?,
                }
            }
            FrameKind::Lookup => {
                let l: LookupMeta = meta::decode(kind, m)?;
                Request::Lookup {
                    ods_code: parse_opt_id("ods_code", l.ods_code.as_deref(), OdsCode::parse)?,
                    workflow_id: parse_id("workflow_id", &l.workflow_id, WorkflowId::parse)?,
                }
            }
            FrameKind::Subscribe => {
                let c: CreditMeta = meta::decode(kind, m)?;
                Request::Subscribe {
                    credit: c.credit,
                    inline: frame.header.flags.contains(Flags::INLINE),
                }
            }
            FrameKind::Credit => {
                let c: CreditMeta = meta::decode(kind, m)?;
                Request::Credit { add: c.credit }
            }
            FrameKind::Unsubscribe => Request::Unsubscribe,
            FrameKind::Ping => Request::Ping,
            FrameKind::ServiceRequest => {
                let r: ServiceRequestMeta = meta::decode(kind, m)?;
                Request::ServiceRequest {
                    service: r.service,
                    interaction: r.interaction,
                    asid: r.asid,
                    message_id: r.message_id,
                    body: frame.payload.clone(),
                }
            }
            FrameKind::RegisterProvider => {
                let r: RegisterProviderMeta = meta::decode(kind, m)?;
                Request::RegisterProvider { service: r.service }
            }
            FrameKind::ProviderReply => {
                let r: ProviderReplyMeta = meta::decode(kind, m)?;
                service::fault_has_no_body(kind, &r.fault, &frame.payload)?;
                Request::ProviderReply {
                    correlation: r.correlation,
                    result: service::outcome(r.fault, frame.payload.clone()),
                }
            }
            other => {
                return Err(ProtocolError::UnexpectedKind {
                    kind: other,
                    receiver: "server",
                    expected: "request kinds (0x01..=0x7F) only",
                })
            }
        };
        request.validate(limits)?;
        Ok(request)
    }
}

/// Refuses control characters in a text field that ends up in logs.
fn check_text(field: &'static str, value: &str) -> Result<(), ProtocolError> {
    match value.chars().enumerate().find(|(_, c)| c.is_control()) {
        Some((position, found)) => Err(ProtocolError::FieldInvalid {
            field,
            why: format!(
                "it contains control character {found:?} at position {position}; remove \
                 control characters"
            ),
        }),
        None => Ok(()),
    }
}

/// Checks a batch has 1..=max_batch items.
fn check_batch_len(items: usize, limits: &Limits) -> Result<(), ProtocolError> {
    if items > limits.max_batch as usize {
        return Err(ProtocolError::BatchTooLarge {
            items: items as u64,
            max: u64::from(limits.max_batch),
        });
    }
    check_range("batch items", items as u64, 1, u64::from(limits.max_batch))
}

/// Splits a batch's payload into its items' bodies (no copy).
fn batch_items(
    batch: SendBatchMeta,
    payload: &Bytes,
    limits: &Limits,
) -> Result<Vec<BatchItem>, ProtocolError> {
    check_batch_len(batch.items.len(), limits)?;
    let declared: u64 = batch.items.iter().map(|i| u64::from(i.body_len)).sum();
    if declared != payload.len() as u64 {
        return Err(ProtocolError::Inconsistent {
            kind: FrameKind::SendBatch,
            why: format!(
                "the items' body lengths add up to {declared} bytes but the payload is {} bytes; \
                 they must be equal",
                payload.len()
            ),
        });
    }
    let mut at = 0usize;
    let mut items = Vec::with_capacity(batch.items.len());
    for item in batch.items {
        // The sum equals the payload length, so every range is in bounds.
        let end = at + item.body_len as usize;
        items.push(BatchItem {
            header: SendHeader::from_meta(item.header)?,
            body: payload.slice(at..end),
        });
        at = end;
    }
    Ok(items)
}
