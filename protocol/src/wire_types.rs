//! The typed parts shared by several messages ([`SendHeader`], [`SendOk`],
//! [`InboxEntry`], [`LookupEntry`], [`TrackInfo`], [`Password`]) and their
//! conversions to and from the archived meta structs.
//!
//! Invariants and why:
//! - Every id in these types is a validated `spine-core` id; the conversions
//!   from meta parse each one with its own parser, so a value of these
//!   types is valid whether it was built in code or read from the wire.
//! - Enumerations travel as explicit numbers ([`status_to_wire`],
//!   [`message_type_to_wire`]) rather than rkyv's enum layout, so the wire
//!   does not change if `spine-core` reorders its variants.
//! - Free-text fields are bounded here (byte lengths); their content rules
//!   (control characters, the checksum alphabet) are the node's, applied by
//!   `Envelope::validate` when it builds the envelope.

use std::fmt;
use std::sync::Arc;

use spine_core::envelope::{
    Envelope, MessageType, MAX_CHECKSUM_BYTES, MAX_CONTENT_TYPE_BYTES, MAX_FILE_NAME_BYTES,
    MAX_PARTNER_ID_BYTES, MAX_SUBJECT_BYTES,
};
use spine_core::ids::{IdError, LocalId, MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::time::Timestamp;

use crate::error::ProtocolError;
use crate::limits::{check_len, check_opt_len, MAX_IDEMPOTENCY_KEY_BYTES, MAX_MAILBOX_NAME_BYTES};
use crate::meta::{
    InboxEntryMeta, LookupEntryMeta, SendHeaderMeta, SendOkMeta, TrackInfoMeta, WireErrorMeta,
};
use crate::wire_error::WireError;

/// Parses an id read from the wire, naming the field on failure.
pub(crate) fn parse_id<T>(
    field: &'static str,
    value: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, ProtocolError> {
    parse(value).map_err(|source| ProtocolError::Id {
        field,
        source: Box::new(source),
    })
}

/// Parses an optional id read from the wire.
pub(crate) fn parse_opt_id<T>(
    field: &'static str,
    value: Option<&str>,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<Option<T>, ProtocolError> {
    value.map(|v| parse_id(field, v, parse)).transpose()
}

/// A timestamp read from the wire (µs since the epoch, at most year 9999).
pub(crate) fn timestamp(field: &'static str, micros: u64) -> Result<Timestamp, ProtocolError> {
    Timestamp::try_from_micros(micros).map_err(|e| ProtocolError::FieldInvalid {
        field,
        why: e.to_string(),
    })
}

/// An envelope to its nested archive (validating it first).
pub(crate) fn envelope_to_wire(
    field: &'static str,
    envelope: &Envelope,
) -> Result<Vec<u8>, ProtocolError> {
    envelope
        .to_rkyv_bytes()
        .map_err(|source| ProtocolError::Envelope {
            field,
            source: Box::new(source),
        })
}

/// A nested envelope archive to a validated envelope.
pub(crate) fn envelope_from_wire(
    field: &'static str,
    bytes: &[u8],
) -> Result<Arc<Envelope>, ProtocolError> {
    Envelope::from_rkyv_bytes(bytes)
        .map(Arc::new)
        .map_err(|source| ProtocolError::Envelope {
            field,
            source: Box::new(source),
        })
}

/// The wire number of a message status (stable: 0 uploading, 1 accepted,
/// 2 acknowledged, 3 expired).
pub const fn status_to_wire(status: MessageStatus) -> u8 {
    match status {
        MessageStatus::Uploading => 0,
        MessageStatus::Accepted => 1,
        MessageStatus::Acknowledged => 2,
        MessageStatus::Expired => 3,
    }
}

/// The message status with this wire number.
pub fn status_from_wire(value: u8) -> Result<MessageStatus, ProtocolError> {
    match value {
        0 => Ok(MessageStatus::Uploading),
        1 => Ok(MessageStatus::Accepted),
        2 => Ok(MessageStatus::Acknowledged),
        3 => Ok(MessageStatus::Expired),
        other => Err(ProtocolError::FieldInvalid {
            field: "status",
            why: format!(
                "{other} is not a message status; use 0 (uploading), 1 (accepted), \
                 2 (acknowledged) or 3 (expired)"
            ),
        }),
    }
}

/// The wire number of a message type (stable: 0 DATA, 1 REPORT).
pub const fn message_type_to_wire(message_type: MessageType) -> u8 {
    match message_type {
        MessageType::Data => 0,
        MessageType::Report => 1,
    }
}

/// The message type with this wire number.
pub fn message_type_from_wire(value: u8) -> Result<MessageType, ProtocolError> {
    match value {
        0 => Ok(MessageType::Data),
        1 => Ok(MessageType::Report),
        other => Err(ProtocolError::FieldInvalid {
            field: "message_type",
            why: format!("{other} is not a message type; use 0 (DATA) or 1 (REPORT)"),
        }),
    }
}

/// A mailbox password. Its `Debug` output is redacted so that logging a
/// request never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    /// The password text, for checking it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

pub use spine_core::message::SendHeader;

/// The wire side of [`SendHeader`] (defined in `spine-core`).
pub(crate) trait SendHeaderWire: Sized {
    /// Checks the byte length of every free-text field.
    fn validate(&self) -> Result<(), ProtocolError>;
    /// The archived form.
    fn to_meta(&self) -> SendHeaderMeta;
    /// From the archived form, every id re-parsed and every field checked.
    fn from_meta(meta: SendHeaderMeta) -> Result<Self, ProtocolError>;
}

impl SendHeaderWire for SendHeader {
    fn validate(&self) -> Result<(), ProtocolError> {
        check_opt_len("subject", self.subject.as_deref(), MAX_SUBJECT_BYTES)?;
        check_opt_len("file_name", self.file_name.as_deref(), MAX_FILE_NAME_BYTES)?;
        check_opt_len(
            "content_type",
            self.content_type.as_deref(),
            MAX_CONTENT_TYPE_BYTES,
        )?;
        check_opt_len("checksum", self.checksum.as_deref(), MAX_CHECKSUM_BYTES)?;
        check_opt_len(
            "partner_id",
            self.partner_id.as_deref(),
            MAX_PARTNER_ID_BYTES,
        )?;
        check_opt_len(
            "idempotency_key",
            self.idempotency_key.as_deref(),
            MAX_IDEMPOTENCY_KEY_BYTES,
        )
    }

    fn to_meta(&self) -> SendHeaderMeta {
        SendHeaderMeta {
            recipient: self.recipient.as_str().to_owned(),
            workflow_id: self.workflow_id.as_str().to_owned(),
            subject: self.subject.clone(),
            local_id: self.local_id.as_ref().map(|l| l.as_str().to_owned()),
            file_name: self.file_name.clone(),
            content_type: self.content_type.clone(),
            compressed: self.compressed,
            encrypted: self.encrypted,
            checksum: self.checksum.clone(),
            partner_id: self.partner_id.clone(),
            total_chunks: self.total_chunks,
            idempotency_key: self.idempotency_key.clone(),
        }
    }

    fn from_meta(meta: SendHeaderMeta) -> Result<SendHeader, ProtocolError> {
        let header = SendHeader {
            recipient: parse_id("recipient", &meta.recipient, MailboxId::parse)?,
            workflow_id: parse_id("workflow_id", &meta.workflow_id, WorkflowId::parse)?,
            local_id: parse_opt_id("local_id", meta.local_id.as_deref(), LocalId::parse)?,
            subject: meta.subject,
            file_name: meta.file_name,
            content_type: meta.content_type,
            compressed: meta.compressed,
            encrypted: meta.encrypted,
            checksum: meta.checksum,
            partner_id: meta.partner_id,
            total_chunks: meta.total_chunks,
            idempotency_key: meta.idempotency_key,
        };
        header.validate()?;
        Ok(header)
    }
}

/// The answer to one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOk {
    /// The message's id.
    pub message_id: MessageId,
    /// True when an earlier send with the same idempotency key is answered.
    pub duplicate: bool,
    /// Uploading (more chunks expected) or accepted.
    pub status: MessageStatus,
}

impl SendOk {
    pub(crate) fn to_meta(&self) -> SendOkMeta {
        SendOkMeta {
            message_id: self.message_id.as_str().to_owned(),
            duplicate: self.duplicate,
            status: status_to_wire(self.status),
        }
    }

    pub(crate) fn from_meta(meta: SendOkMeta) -> Result<SendOk, ProtocolError> {
        Ok(SendOk {
            message_id: parse_id("message_id", &meta.message_id, MessageId::parse)?,
            duplicate: meta.duplicate,
            status: status_from_wire(meta.status)?,
        })
    }
}

impl WireError {
    pub(crate) fn to_meta(&self) -> WireErrorMeta {
        WireErrorMeta {
            code: self.code,
            name: self.name.clone(),
            message: self.message.clone(),
        }
    }

    pub(crate) fn from_meta(meta: WireErrorMeta) -> Result<WireError, ProtocolError> {
        let error = WireError {
            code: meta.code,
            name: meta.name,
            message: meta.message,
        };
        error.validate()?;
        Ok(error)
    }
}

/// One message in an inbox page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// The message's id.
    pub message_id: MessageId,
    /// DATA or REPORT.
    pub message_type: MessageType,
    /// Who sent it.
    pub sender: MailboxId,
    /// Its workflow.
    pub workflow_id: WorkflowId,
    /// How many chunks to download.
    pub total_chunks: u32,
    /// Its inbox order key (pass the last one as `after` to page on).
    pub order: u64,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When it expires if not acknowledged.
    pub expires_at: Timestamp,
}

impl InboxEntry {
    /// The entry for a message with this envelope and inbox order key.
    pub fn from_envelope(envelope: &Envelope, order: u64) -> InboxEntry {
        InboxEntry {
            message_id: envelope.message_id,
            message_type: envelope.message_type,
            sender: envelope.sender.clone(),
            workflow_id: envelope.workflow_id.clone(),
            total_chunks: envelope.total_chunks,
            order,
            created_at: envelope.created_at,
            expires_at: envelope.expires_at,
        }
    }

    pub(crate) fn to_meta(&self) -> InboxEntryMeta {
        InboxEntryMeta {
            message_id: self.message_id.as_str().to_owned(),
            message_type: message_type_to_wire(self.message_type),
            sender: self.sender.as_str().to_owned(),
            workflow_id: self.workflow_id.as_str().to_owned(),
            total_chunks: self.total_chunks,
            order: self.order,
            created_at: self.created_at.as_micros(),
            expires_at: self.expires_at.as_micros(),
        }
    }

    pub(crate) fn from_meta(meta: InboxEntryMeta) -> Result<InboxEntry, ProtocolError> {
        Ok(InboxEntry {
            message_id: parse_id("message_id", &meta.message_id, MessageId::parse)?,
            message_type: message_type_from_wire(meta.message_type)?,
            sender: parse_id("sender", &meta.sender, MailboxId::parse)?,
            workflow_id: parse_id("workflow_id", &meta.workflow_id, WorkflowId::parse)?,
            total_chunks: meta.total_chunks,
            order: meta.order,
            created_at: timestamp("created_at", meta.created_at)?,
            expires_at: timestamp("expires_at", meta.expires_at)?,
        })
    }
}

/// One mailbox found by a look-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupEntry {
    /// The mailbox.
    pub mailbox_id: MailboxId,
    /// Its display name, at most [`MAX_MAILBOX_NAME_BYTES`].
    pub mailbox_name: String,
    /// Its organisation.
    pub ods_code: OdsCode,
}

impl LookupEntry {
    pub(crate) fn validate(&self) -> Result<(), ProtocolError> {
        check_len("mailbox_name", &self.mailbox_name, MAX_MAILBOX_NAME_BYTES)
    }

    pub(crate) fn to_meta(&self) -> LookupEntryMeta {
        LookupEntryMeta {
            mailbox_id: self.mailbox_id.as_str().to_owned(),
            mailbox_name: self.mailbox_name.clone(),
            ods_code: self.ods_code.as_str().to_owned(),
        }
    }

    pub(crate) fn from_meta(meta: LookupEntryMeta) -> Result<LookupEntry, ProtocolError> {
        let entry = LookupEntry {
            mailbox_id: parse_id("mailbox_id", &meta.mailbox_id, MailboxId::parse)?,
            mailbox_name: meta.mailbox_name,
            ods_code: parse_id("ods_code", &meta.ods_code, OdsCode::parse)?,
        };
        entry.validate()?;
        Ok(entry)
    }
}

/// What a sender learns by tracking its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// The envelope.
    pub envelope: Arc<Envelope>,
    /// Current status.
    pub status: MessageStatus,
    /// Inbox order key, once accepted.
    pub order: Option<u64>,
    /// Chunks received so far (all of them once accepted).
    pub chunks_received: u32,
    /// When the recipient acknowledged it.
    pub acknowledged_at: Option<Timestamp>,
    /// When it expired undelivered.
    pub expired_at: Option<Timestamp>,
}

impl TrackInfo {
    pub(crate) fn to_meta(&self) -> Result<TrackInfoMeta, ProtocolError> {
        Ok(TrackInfoMeta {
            envelope: envelope_to_wire("envelope", &self.envelope)?,
            status: status_to_wire(self.status),
            order: self.order,
            chunks_received: self.chunks_received,
            acknowledged_at: self.acknowledged_at.map(Timestamp::as_micros),
            expired_at: self.expired_at.map(Timestamp::as_micros),
        })
    }

    pub(crate) fn from_meta(meta: TrackInfoMeta) -> Result<TrackInfo, ProtocolError> {
        Ok(TrackInfo {
            envelope: envelope_from_wire("envelope", &meta.envelope)?,
            status: status_from_wire(meta.status)?,
            order: meta.order,
            chunks_received: meta.chunks_received,
            acknowledged_at: meta
                .acknowledged_at
                .map(|t| timestamp("acknowledged_at", t))
                .transpose()?,
            expired_at: meta
                .expired_at
                .map(|t| timestamp("expired_at", t))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_numbers_are_stable() {
        for (status, n) in [
            (MessageStatus::Uploading, 0),
            (MessageStatus::Accepted, 1),
            (MessageStatus::Acknowledged, 2),
            (MessageStatus::Expired, 3),
        ] {
            assert_eq!(status_to_wire(status), n);
            assert_eq!(status_from_wire(n).unwrap(), status);
        }
        assert!(status_from_wire(4).is_err());
        assert_eq!(message_type_to_wire(MessageType::Data), 0);
        assert_eq!(message_type_to_wire(MessageType::Report), 1);
        assert_eq!(message_type_from_wire(1).unwrap(), MessageType::Report);
        assert!(message_type_from_wire(2).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let p = Password::new("secret");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(p.expose(), "secret");
    }

    #[test]
    fn header_lengths_are_checked() {
        let mut h = SendHeader::simple(
            MailboxId::parse("X26ABC1").unwrap(),
            WorkflowId::parse("PATH_TEST").unwrap(),
        );
        h.validate().unwrap();
        h.idempotency_key = Some("k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1));
        assert_eq!(
            h.validate().unwrap_err().to_string(),
            "idempotency_key is 129 bytes long; shorten it to at most 128 bytes"
        );
    }
}
