//! [`ProtocolError`]: why bytes are not a valid frame or message, or why a
//! message cannot be encoded; and [`DecodeError`], the same with the
//! request id it concerns.
//!
//! Invariants and why:
//! - Every variant has a stable `PROTO_*` code ([`ErrorCode`]) and a
//!   message that says what to change; offending text is echoed through
//!   `bounded_input` only, so hostile input cannot flood logs.
//! - [`ProtocolError::is_fatal`] is true exactly for errors after which the
//!   byte stream can no longer be split into frames (a bad length prefix,
//!   version or meta length). After any other decode error the bad frame has
//!   been consumed and decoding may continue with the next one, so a server
//!   can answer that request with an `ERROR` frame and carry on.

use spine_core::envelope::EnvelopeError;
use spine_core::ids::IdError;
use spine_core::ErrorCode;
use thiserror::Error;

use crate::frame::FrameKind;
use crate::wire_error::{WireError, WireErrorCode};

/// Why bytes are not a valid frame or message, or why a message cannot be
/// encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The length prefix is below the fixed header size.
    #[error(
        "frame length {len} is shorter than the {min}-byte fixed header after the length \
         prefix; the peer is not speaking this protocol or the stream is out of step"
    )]
    FrameTooShort {
        /// The length prefix.
        len: u64,
        /// The smallest valid length.
        min: u64,
    },
    /// The length prefix exceeds the limit.
    #[error(
        "frame length {len} exceeds the limit of {max} bytes; send bodies larger than the \
         payload limit as chunks"
    )]
    FrameTooLarge {
        /// The length prefix (or the length the frame would have).
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A frame before authentication longer than `HELLO` or `PING` can be.
    #[error(
        "frame length {len} exceeds the limit of {max} bytes for a connection that has not \
         authenticated; send HELLO (mailbox and password) first"
    )]
    FrameTooLargeBeforeHello {
        /// The length prefix.
        len: u64,
        /// The largest allowed before `HELLO` succeeds.
        max: u64,
    },
    /// The version byte is not [`crate::PROTOCOL_VERSION`].
    #[error("protocol version {version} is not supported; this peer speaks version {supported}")]
    UnsupportedVersion {
        /// The version received.
        version: u8,
        /// The version spoken here.
        supported: u8,
    },
    /// The meta length runs past the end of the frame.
    #[error(
        "meta length {meta_len} runs past the end of the {frame_len}-byte frame; the frame \
         header is corrupt"
    )]
    MetaOutOfBounds {
        /// The meta length field.
        meta_len: u64,
        /// The frame's length prefix.
        frame_len: u64,
    },
    /// The kind byte is not a known kind.
    #[error("frame kind 0x{kind:02X} is unknown to this peer (protocol version {version})")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
        /// The version spoken here.
        version: u8,
    },
    /// A known kind that may not travel in this direction.
    #[error("{kind} frames may not be sent to a {receiver}; send {expected}")]
    UnexpectedKind {
        /// The kind received.
        kind: FrameKind,
        /// `"server"` or `"client"`.
        receiver: &'static str,
        /// What is allowed, e.g. `"requests only"`.
        expected: &'static str,
    },
    /// Flag bits that are undefined, or not allowed on this kind.
    #[error("flags 0x{flags:04X} are not allowed on {kind}; {why}")]
    InvalidFlags {
        /// The kind.
        kind: FrameKind,
        /// The flags received.
        flags: u16,
        /// What is allowed.
        why: &'static str,
    },
    /// A request id that breaks the rules (0 on a request, non-zero on a push, ...).
    #[error("request id {request_id} is not allowed on {kind}; {why}")]
    InvalidRequestId {
        /// The kind.
        kind: FrameKind,
        /// The id received.
        request_id: u64,
        /// What is allowed.
        why: &'static str,
    },
    /// The meta section exceeds the limit.
    #[error("{kind} meta section is {len} bytes, over the limit of {max}; {hint}")]
    MetaTooLarge {
        /// The kind.
        kind: FrameKind,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
        /// What to do.
        hint: &'static str,
    },
    /// The payload exceeds the limit.
    #[error(
        "{kind} payload is {len} bytes, over the limit of {max}; split the body into chunks \
         (or smaller batches) of at most {max} bytes"
    )]
    PayloadTooLarge {
        /// The kind.
        kind: FrameKind,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A meta section on a kind that has none.
    #[error("{kind} carries no meta section, but {len} meta bytes were sent; send none")]
    UnexpectedMeta {
        /// The kind.
        kind: FrameKind,
        /// The meta length.
        len: u64,
    },
    /// A payload on a kind that has none.
    #[error("{kind} carries no payload, but {len} payload bytes were sent; send none")]
    UnexpectedPayload {
        /// The kind.
        kind: FrameKind,
        /// The payload length.
        len: u64,
    },
    /// The meta section is not a valid archive of the kind's structure.
    #[error(
        "{kind} meta section ({len} bytes) is not a valid archive: {reason}; the sender is \
         broken or speaks an incompatible version"
    )]
    BadMeta {
        /// The kind.
        kind: FrameKind,
        /// The meta length.
        len: u64,
        /// The validator's explanation.
        reason: String,
    },
    /// Serialising a meta section failed.
    #[error("could not encode {kind} meta section: {reason}")]
    Encode {
        /// The kind.
        kind: FrameKind,
        /// The serialiser's explanation.
        reason: String,
    },
    /// A text field exceeds its byte limit.
    #[error("{field} is {len} bytes long; shorten it to at most {max} bytes")]
    FieldTooLong {
        /// Field name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A number outside its range.
    #[error("{field} is {value}; use {min} to {max}")]
    FieldOutOfRange {
        /// Field name.
        field: &'static str,
        /// The value received.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A field that breaks another rule.
    #[error("{field} is invalid: {why}")]
    FieldInvalid {
        /// Field name.
        field: &'static str,
        /// What is wrong and what is allowed.
        why: String,
    },
    /// An id that fails its parser.
    #[error("{field} is invalid: {source}")]
    Id {
        /// Field name.
        field: &'static str,
        /// Why.
        source: Box<IdError>,
    },
    /// An embedded envelope that fails decoding or validation.
    #[error("{field} is invalid: {source}")]
    Envelope {
        /// Field name.
        field: &'static str,
        /// Why.
        source: Box<EnvelopeError>,
    },
    /// A batch with too many messages.
    #[error("batch has {items} messages, over the limit of {max}; split it into batches of at most {max}")]
    BatchTooLarge {
        /// Messages in the batch.
        items: u64,
        /// The limit.
        max: u64,
    },
    /// Fields of one frame that contradict each other.
    #[error("{kind} frame is inconsistent: {why}")]
    Inconsistent {
        /// The kind.
        kind: FrameKind,
        /// What contradicts what.
        why: String,
    },
    /// The pieces of a streamed download do not fit together.
    #[error("streamed download is out of sequence: {why}")]
    DownloadSequence {
        /// What does not fit.
        why: String,
    },
    /// The configured limits are unusable.
    #[error("protocol limits are invalid: {why}")]
    InvalidLimits {
        /// What is wrong and what to change.
        why: String,
    },
}

/// Every code with its wire class; the single table both
/// [`ErrorCode::code`] and [`WireErrorCode::from_name`] agree with.
const CODES: [(&str, WireErrorCode); 24] = [
    ("PROTO_FRAME_TOO_SHORT", WireErrorCode::BadFrame),
    ("PROTO_FRAME_TOO_LARGE", WireErrorCode::FrameTooLarge),
    (
        "PROTO_FRAME_TOO_LARGE_BEFORE_HELLO",
        WireErrorCode::FrameTooLarge,
    ),
    (
        "PROTO_UNSUPPORTED_VERSION",
        WireErrorCode::UnsupportedVersion,
    ),
    ("PROTO_META_OUT_OF_BOUNDS", WireErrorCode::BadFrame),
    ("PROTO_UNKNOWN_KIND", WireErrorCode::UnknownKind),
    ("PROTO_UNEXPECTED_KIND", WireErrorCode::UnexpectedFrame),
    ("PROTO_FLAGS_INVALID", WireErrorCode::BadFrame),
    ("PROTO_REQUEST_ID_INVALID", WireErrorCode::BadFrame),
    ("PROTO_META_TOO_LARGE", WireErrorCode::FrameTooLarge),
    ("PROTO_PAYLOAD_TOO_LARGE", WireErrorCode::FrameTooLarge),
    ("PROTO_UNEXPECTED_META", WireErrorCode::BadFrame),
    ("PROTO_UNEXPECTED_PAYLOAD", WireErrorCode::BadFrame),
    ("PROTO_META_INVALID", WireErrorCode::BadFrame),
    ("PROTO_ENCODE_FAILED", WireErrorCode::Internal),
    ("PROTO_FIELD_TOO_LONG", WireErrorCode::FieldTooLong),
    ("PROTO_FIELD_OUT_OF_RANGE", WireErrorCode::InvalidRequest),
    ("PROTO_FIELD_INVALID", WireErrorCode::InvalidRequest),
    ("PROTO_ID_INVALID", WireErrorCode::InvalidRequest),
    ("PROTO_ENVELOPE_INVALID", WireErrorCode::InvalidRequest),
    ("PROTO_BATCH_TOO_LARGE", WireErrorCode::BatchTooLarge),
    ("PROTO_FRAME_INCONSISTENT", WireErrorCode::BadFrame),
    ("PROTO_DOWNLOAD_SEQUENCE", WireErrorCode::BadFrame),
    ("PROTO_LIMITS_INVALID", WireErrorCode::Internal),
];

impl ErrorCode for ProtocolError {
    fn code(&self) -> &'static str {
        match self {
            ProtocolError::FrameTooShort { .. } => "PROTO_FRAME_TOO_SHORT",
            ProtocolError::FrameTooLarge { .. } => "PROTO_FRAME_TOO_LARGE",
            ProtocolError::FrameTooLargeBeforeHello { .. } => "PROTO_FRAME_TOO_LARGE_BEFORE_HELLO",
            ProtocolError::UnsupportedVersion { .. } => "PROTO_UNSUPPORTED_VERSION",
            ProtocolError::MetaOutOfBounds { .. } => "PROTO_META_OUT_OF_BOUNDS",
            ProtocolError::UnknownKind { .. } => "PROTO_UNKNOWN_KIND",
            ProtocolError::UnexpectedKind { .. } => "PROTO_UNEXPECTED_KIND",
            ProtocolError::InvalidFlags { .. } => "PROTO_FLAGS_INVALID",
            ProtocolError::InvalidRequestId { .. } => "PROTO_REQUEST_ID_INVALID",
            ProtocolError::MetaTooLarge { .. } => "PROTO_META_TOO_LARGE",
            ProtocolError::PayloadTooLarge { .. } => "PROTO_PAYLOAD_TOO_LARGE",
            ProtocolError::UnexpectedMeta { .. } => "PROTO_UNEXPECTED_META",
            ProtocolError::UnexpectedPayload { .. } => "PROTO_UNEXPECTED_PAYLOAD",
            ProtocolError::BadMeta { .. } => "PROTO_META_INVALID",
            ProtocolError::Encode { .. } => "PROTO_ENCODE_FAILED",
            ProtocolError::FieldTooLong { .. } => "PROTO_FIELD_TOO_LONG",
            ProtocolError::FieldOutOfRange { .. } => "PROTO_FIELD_OUT_OF_RANGE",
            ProtocolError::FieldInvalid { .. } => "PROTO_FIELD_INVALID",
            ProtocolError::Id { .. } => "PROTO_ID_INVALID",
            ProtocolError::Envelope { .. } => "PROTO_ENVELOPE_INVALID",
            ProtocolError::BatchTooLarge { .. } => "PROTO_BATCH_TOO_LARGE",
            ProtocolError::Inconsistent { .. } => "PROTO_FRAME_INCONSISTENT",
            ProtocolError::DownloadSequence { .. } => "PROTO_DOWNLOAD_SEQUENCE",
            ProtocolError::InvalidLimits { .. } => "PROTO_LIMITS_INVALID",
        }
    }
}

impl ProtocolError {
    /// True when the byte stream can no longer be split into frames: the
    /// connection must be closed (after an `ERROR` frame with request id 0,
    /// if possible).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProtocolError::FrameTooShort { .. }
                | ProtocolError::FrameTooLarge { .. }
                | ProtocolError::FrameTooLargeBeforeHello { .. }
                | ProtocolError::UnsupportedVersion { .. }
                | ProtocolError::MetaOutOfBounds { .. }
        )
    }

    /// The numeric class this error travels under.
    pub fn wire_code(&self) -> WireErrorCode {
        ProtocolError::wire_code_of(self.code()).unwrap_or(WireErrorCode::Internal)
    }

    /// The `ERROR` frame body for this error.
    pub fn to_wire(&self) -> WireError {
        WireError::new(self.wire_code(), self.code(), &self.to_string())
    }

    /// The wire class of a `PROTO_*` code, if it is one.
    pub(crate) fn wire_code_of(name: &str) -> Option<WireErrorCode> {
        CODES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }
}

/// A [`ProtocolError`] met while decoding, with the request id of the frame
/// it concerns when the header got that far.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{error}", match .request_id { Some(id) => format!("request {id}: "), None => String::new() })]
pub struct DecodeError {
    /// The request id of the offending frame; `None` when the header could
    /// not be read (always the case for fatal errors).
    pub request_id: Option<u64>,
    /// What is wrong.
    pub error: ProtocolError,
}

impl DecodeError {
    /// A decode error about the frame with this request id.
    pub(crate) fn at(request_id: u64, error: ProtocolError) -> DecodeError {
        DecodeError {
            request_id: Some(request_id),
            error,
        }
    }

    /// A decode error about the stream itself (fatal).
    pub(crate) fn stream(error: ProtocolError) -> DecodeError {
        DecodeError {
            request_id: None,
            error,
        }
    }

    /// See [`ProtocolError::is_fatal`].
    pub fn is_fatal(&self) -> bool {
        self.error.is_fatal()
    }

    /// The request id to answer with: the frame's, or 0 for the connection.
    pub fn reply_id(&self) -> u64 {
        self.request_id.unwrap_or(0)
    }

    /// The `ERROR` frame body for this error.
    pub fn to_wire(&self) -> WireError {
        self.error.to_wire()
    }
}

impl ErrorCode for DecodeError {
    fn code(&self) -> &'static str {
        self.error.code()
    }
}

impl From<DecodeError> for ProtocolError {
    fn from(e: DecodeError) -> ProtocolError {
        e.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_class() {
        let id_error = spine_core::ids::MailboxId::parse("").unwrap_err();
        let env_error = spine_core::envelope::Envelope::from_rkyv_bytes(&[]).unwrap_err();
        let k = FrameKind::Send;
        let samples = [
            ProtocolError::FrameTooShort { len: 1, min: 16 },
            ProtocolError::FrameTooLarge { len: 9, max: 8 },
            ProtocolError::FrameTooLargeBeforeHello { len: 9, max: 8 },
            ProtocolError::UnsupportedVersion {
                version: 2,
                supported: 1,
            },
            ProtocolError::MetaOutOfBounds {
                meta_len: 9,
                frame_len: 8,
            },
            ProtocolError::UnknownKind {
                kind: 0x42,
                version: 1,
            },
            ProtocolError::UnexpectedKind {
                kind: k,
                receiver: "client",
                expected: "responses",
            },
            ProtocolError::InvalidFlags {
                kind: k,
                flags: 1,
                why: "no",
            },
            ProtocolError::InvalidRequestId {
                kind: k,
                request_id: 0,
                why: "no",
            },
            ProtocolError::MetaTooLarge {
                kind: k,
                len: 2,
                max: 1,
                hint: "less",
            },
            ProtocolError::PayloadTooLarge {
                kind: k,
                len: 2,
                max: 1,
            },
            ProtocolError::UnexpectedMeta { kind: k, len: 1 },
            ProtocolError::UnexpectedPayload { kind: k, len: 1 },
            ProtocolError::BadMeta {
                kind: k,
                len: 1,
                reason: "x".into(),
            },
            ProtocolError::Encode {
                kind: k,
                reason: "x".into(),
            },
            ProtocolError::FieldTooLong {
                field: "subject",
                len: 2,
                max: 1,
            },
            ProtocolError::FieldOutOfRange {
                field: "credit",
                value: 2,
                min: 0,
                max: 1,
            },
            ProtocolError::FieldInvalid {
                field: "status",
                why: "x".into(),
            },
            ProtocolError::Id {
                field: "mailbox",
                source: Box::new(id_error),
            },
            ProtocolError::Envelope {
                field: "envelope",
                source: Box::new(env_error),
            },
            ProtocolError::BatchTooLarge { items: 2, max: 1 },
            ProtocolError::Inconsistent {
                kind: k,
                why: "x".into(),
            },
            ProtocolError::DownloadSequence { why: "x".into() },
            ProtocolError::InvalidLimits { why: "x".into() },
        ];
        assert_eq!(samples.len(), CODES.len());
        let codes: std::collections::BTreeSet<&str> = samples.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), CODES.len(), "codes repeat");
        for e in samples {
            assert!(
                ProtocolError::wire_code_of(e.code()).is_some(),
                "{}",
                e.code()
            );
            let wire = e.to_wire();
            assert_eq!(wire.name, e.code());
            wire.validate().unwrap();
        }
        assert_eq!(
            ProtocolError::BatchTooLarge { items: 2, max: 1 }.wire_code(),
            WireErrorCode::BatchTooLarge
        );
        assert!(ProtocolError::FrameTooShort { len: 1, min: 16 }.is_fatal());
        assert!(!ProtocolError::UnknownKind {
            kind: 1,
            version: 1
        }
        .is_fatal());
    }

    #[test]
    fn decode_error_names_the_request() {
        let e = DecodeError::at(
            7,
            ProtocolError::FieldTooLong {
                field: "subject",
                len: 501,
                max: 500,
            },
        );
        assert_eq!(
            e.to_string(),
            "request 7: subject is 501 bytes long; shorten it to at most 500 bytes"
        );
        assert_eq!(e.reply_id(), 7);
        assert!(!e.is_fatal());
        let s = DecodeError::stream(ProtocolError::FrameTooShort { len: 3, min: 16 });
        assert_eq!(s.reply_id(), 0);
        assert!(s.is_fatal());
        assert!(s.to_string().starts_with("frame length 3"));
    }
}
