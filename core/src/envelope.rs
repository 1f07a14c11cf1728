//! The message [`Envelope`]: everything MESH carries about a message in its
//! `Mex-*` headers, separate from the payload bytes.
//!
//! Invariants and why:
//! - The identifier fields are validated types, so they are valid by
//!   construction. The free-text fields are plain `String`s (the fields are
//!   public for ease of construction), so [`Envelope::validate`] is the gate
//!   that enforces the MESH header limits: byte lengths, no control
//!   characters (they would allow header or log injection), the checksum
//!   alphabet, chunk counts, expiry after creation, and "REPORT messages
//!   carry a [`ReportStatus`], DATA messages do not". `Some("")` is refused
//!   so that an absent header has exactly one representation, `None`.
//! - An envelope is only ever encoded after passing `validate`, and decoding
//!   ([`Envelope::from_rkyv_bytes`]) re-checks everything: rkyv's bytecheck
//!   proves the bytes are a structurally sound archive, not that the ids in
//!   it obey their rules, so every id is re-parsed and `validate` runs
//!   again. Decoding arbitrary bytes returns an error; it never panics.
//! - serde deserialisation validates each id but not the envelope as a
//!   whole; call [`Envelope::validate`] after deserialising from JSON.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{bounded_input, IdError, LocalId, MailboxId, MessageId, WorkflowId};
use crate::time::Timestamp;
use crate::ErrorCode;

/// Longest `subject` (`Mex-Subject`), in bytes.
pub const MAX_SUBJECT_BYTES: usize = 500;
/// Longest `file_name` (`Mex-FileName`), in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 300;
/// Longest `content_type` (`Mex-Content-Type`), in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 100;
/// Longest `checksum` (`Mex-Checksum`), in bytes.
pub const MAX_CHECKSUM_BYTES: usize = 100;
/// Longest `partner_id` (`Mex-PartnerID`), in bytes.
pub const MAX_PARTNER_ID_BYTES: usize = 500;
/// Longest report `code` (`Mex-StatusCode`, e.g. `14`), in bytes.
pub const MAX_REPORT_CODE_BYTES: usize = 20;
/// Longest report `event` (`Mex-StatusEvent`, e.g. `SEND`), in bytes.
pub const MAX_REPORT_EVENT_BYTES: usize = 50;
/// Longest report `description` (`Mex-StatusDescription`), in bytes.
pub const MAX_REPORT_DESCRIPTION_BYTES: usize = 1_000;
/// Most chunks a DATA message may be split into.
pub const MAX_CHUNKS: u32 = 100_000;

/// The kind of MESH message (`Mex-MessageType`).
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub enum MessageType {
    /// An ordinary message carrying a payload.
    Data,
    /// A report about another message, e.g. a non-delivery report.
    Report,
}

impl MessageType {
    /// `"DATA"` or `"REPORT"`, as in the `Mex-MessageType` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Data => "DATA",
            MessageType::Report => "REPORT",
        }
    }

    /// Parses `DATA` or `REPORT` (ASCII case-insensitive).
    pub fn parse(input: &str) -> Result<MessageType, EnvelopeError> {
        if input.eq_ignore_ascii_case("DATA") {
            Ok(MessageType::Data)
        } else if input.eq_ignore_ascii_case("REPORT") {
            Ok(MessageType::Report)
        } else {
            Err(EnvelopeError::MessageType {
                input: bounded_input(input),
            })
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageType {
    type Err = EnvelopeError;

    fn from_str(s: &str) -> Result<MessageType, EnvelopeError> {
        MessageType::parse(s)
    }
}

/// The status carried by a REPORT message (`Mex-StatusCode`,
/// `Mex-StatusEvent`, `Mex-StatusDescription`).
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct ReportStatus {
    /// MESH status code, e.g. `"14"` (undelivered within the expiry period).
    pub code: String,
    /// The event the status is about, e.g. `"SEND"`.
    pub event: String,
    /// Human-readable description.
    pub description: String,
}

/// Everything MESH knows about a message apart from its payload.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct Envelope {
    /// MESH message id (`Mex-MessageID`).
    pub message_id: MessageId,
    /// DATA or REPORT (`Mex-MessageType`).
    pub message_type: MessageType,
    /// Sending mailbox (`Mex-From`).
    pub sender: MailboxId,
    /// Receiving mailbox (`Mex-To`).
    pub recipient: MailboxId,
    /// Business workflow (`Mex-WorkflowID`).
    pub workflow_id: WorkflowId,
    /// `Mex-Subject`, at most [`MAX_SUBJECT_BYTES`].
    pub subject: Option<String>,
    /// Sender's own reference (`Mex-LocalID`).
    pub local_id: Option<LocalId>,
    /// `Mex-FileName`, at most [`MAX_FILE_NAME_BYTES`].
    pub file_name: Option<String>,
    /// `Mex-Content-Type`, at most [`MAX_CONTENT_TYPE_BYTES`].
    pub content_type: Option<String>,
    /// Payload is compressed (`Mex-Content-Compressed`).
    pub compressed: bool,
    /// Payload is encrypted (`Mex-Content-Encrypted`).
    pub encrypted: bool,
    /// `Mex-Checksum`: letters, digits, spaces and `:-/`, at most [`MAX_CHECKSUM_BYTES`].
    pub checksum: Option<String>,
    /// `Mex-PartnerID`, at most [`MAX_PARTNER_ID_BYTES`].
    pub partner_id: Option<String>,
    /// Number of chunks: 1..=[`MAX_CHUNKS`] for DATA, 0 or 1 for REPORT.
    pub total_chunks: u32,
    /// When the message was accepted.
    pub created_at: Timestamp,
    /// When the message expires if undelivered; strictly after `created_at`.
    pub expires_at: Timestamp,
    /// The message this one refers to (e.g. the original of a report).
    pub linked_message_id: Option<MessageId>,
    /// Present exactly when `message_type` is REPORT.
    pub report: Option<ReportStatus>,
}

/// Why an envelope is invalid or could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// `Mex-MessageType` is neither DATA nor REPORT.
    #[error("message type {input:?} is not recognised; use \"DATA\" or \"REPORT\"")]
    MessageType {
        /// The input (truncated).
        input: String,
    },
    /// A text field is longer than its MESH limit.
    #[error("{field} is {len} bytes long; shorten it to at most {max} bytes")]
    FieldTooLong {
        /// Field name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// An optional text field is `Some("")`.
    #[error("{field} is present but empty; use None when there is no value")]
    FieldEmpty {
        /// Field name.
        field: &'static str,
    },
    /// A required text field is empty.
    #[error("{field} is empty; give it a value")]
    FieldRequired {
        /// Field name.
        field: &'static str,
    },
    /// A text field contains a control character.
    #[error(
        "{field} contains control character {found:?} at position {position}; remove control \
         characters (U+0000-U+001F, U+007F)"
    )]
    ControlChar {
        /// Field name.
        field: &'static str,
        /// The offending character.
        found: char,
        /// Its 0-based character position.
        position: usize,
    },
    /// The checksum contains a character outside its alphabet.
    #[error(
        "checksum contains {found:?} at position {position}; use only letters A-Z/a-z, \
         digits, spaces and ':', '-', '/'"
    )]
    ChecksumChar {
        /// The offending character.
        found: char,
        /// Its 0-based character position.
        position: usize,
    },
    /// `total_chunks` is out of range for the message type.
    #[error("total_chunks is {total_chunks} for a {message_type} message; use {min} to {max}")]
    TotalChunks {
        /// The message type.
        message_type: MessageType,
        /// The value given.
        total_chunks: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// `expires_at` is not after `created_at`.
    #[error(
        "expires_at {expires_at} is not after created_at {created_at}; set an expiry later \
         than the creation time"
    )]
    Expiry {
        /// Creation time.
        created_at: Timestamp,
        /// Expiry time.
        expires_at: Timestamp,
    },
    /// A REPORT without a status, or a DATA message with one.
    #[error("{}", report_mismatch_message(*.message_type))]
    ReportMismatch {
        /// The message type.
        message_type: MessageType,
    },
    /// An id read from an archive failed re-validation.
    #[error("{field} in the stored envelope is invalid: {source}")]
    Id {
        /// Field name.
        field: &'static str,
        /// Why the id is invalid.
        source: IdError,
    },
    /// The bytes are not a valid archived envelope.
    #[error(
        "stored envelope bytes ({len} bytes) are not a valid archive: {reason}; the record is \
         corrupt or was written by an incompatible version"
    )]
    Decode {
        /// Length of the input.
        len: usize,
        /// The decoder's explanation.
        reason: String,
    },
    /// Serialising the envelope failed.
    #[error("could not serialise envelope: {reason}")]
    Encode {
        /// The serialiser's explanation.
        reason: String,
    },
}

fn report_mismatch_message(message_type: MessageType) -> &'static str {
    match message_type {
        MessageType::Report => {
            "REPORT message has no report status; set report to Some(ReportStatus { .. })"
        }
        MessageType::Data => {
            "DATA message carries a report status; set report to None or message_type to REPORT"
        }
    }
}

impl ErrorCode for EnvelopeError {
    fn code(&self) -> &'static str {
        match self {
            EnvelopeError::MessageType { .. } => "ENV_MESSAGE_TYPE_INVALID",
            EnvelopeError::FieldTooLong { .. } => "ENV_FIELD_TOO_LONG",
            EnvelopeError::FieldEmpty { .. } => "ENV_FIELD_EMPTY",
            EnvelopeError::FieldRequired { .. } => "ENV_FIELD_REQUIRED",
            EnvelopeError::ControlChar { .. } => "ENV_FIELD_CONTROL_CHAR",
            EnvelopeError::ChecksumChar { .. } => "ENV_CHECKSUM_INVALID",
            EnvelopeError::TotalChunks { .. } => "ENV_TOTAL_CHUNKS_INVALID",
            EnvelopeError::Expiry { .. } => "ENV_EXPIRY_INVALID",
            EnvelopeError::ReportMismatch { .. } => "ENV_REPORT_MISMATCH",
            EnvelopeError::Id { .. } => "ENV_ID_INVALID",
            EnvelopeError::Decode { .. } => "ENV_DECODE_FAILED",
            EnvelopeError::Encode { .. } => "ENV_ENCODE_FAILED",
        }
    }
}

impl Envelope {
    /// Checks every rule in the module docs; the first violation is returned.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        optional_text("subject", self.subject.as_deref(), MAX_SUBJECT_BYTES)?;
        optional_text("file_name", self.file_name.as_deref(), MAX_FILE_NAME_BYTES)?;
        optional_text(
            "content_type",
            self.content_type.as_deref(),
            MAX_CONTENT_TYPE_BYTES,
        )?;
        optional_text("checksum", self.checksum.as_deref(), MAX_CHECKSUM_BYTES)?;
        if let Some(checksum) = &self.checksum {
            checksum_alphabet(checksum)?;
        }
        optional_text(
            "partner_id",
            self.partner_id.as_deref(),
            MAX_PARTNER_ID_BYTES,
        )?;

        let (min, max) = match self.message_type {
            MessageType::Data => (1, MAX_CHUNKS),
            MessageType::Report => (0, 1),
        };
        if self.total_chunks < min || self.total_chunks > max {
            return Err(EnvelopeError::TotalChunks {
                message_type: self.message_type,
                total_chunks: self.total_chunks,
                min,
                max,
            });
        }
        if self.expires_at <= self.created_at {
            return Err(EnvelopeError::Expiry {
                created_at: self.created_at,
                expires_at: self.expires_at,
            });
        }
        match (self.message_type, &self.report) {
            (MessageType::Report, Some(report)) => report.validate(),
            (MessageType::Data, None) => Ok(()),
            (message_type, _) => Err(EnvelopeError::ReportMismatch { message_type }),
        }
    }

    /// Validates, then serialises to rkyv bytes (for the write-ahead log).
    pub fn to_rkyv_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        self.validate()?;
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|bytes| bytes.into_vec())
            .map_err(|e| EnvelopeError::Encode {
                reason: e.to_string(),
            })
    }

    /// Decodes bytes written by [`Envelope::to_rkyv_bytes`], checking the
    /// archive structure, re-parsing every id, and running
    /// [`Envelope::validate`]. `bytes` need not be aligned.
    pub fn from_rkyv_bytes(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let decode = |e: rkyv::rancor::Error| EnvelopeError::Decode {
            len: bytes.len(),
            reason: e.to_string(),
        };
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        let archived =
            rkyv::access::<ArchivedEnvelope, rkyv::rancor::Error>(&aligned).map_err(decode)?;
        let raw: Envelope =
            rkyv::deserialize::<Envelope, rkyv::rancor::Error>(archived).map_err(decode)?;
        let envelope = raw.revalidate_ids()?;
        envelope.validate()?;
        Ok(envelope)
    }

    /// Re-parses every id (archives bypass the ids' constructors).
    pub(crate) fn revalidate_ids(self) -> Result<Envelope, EnvelopeError> {
        fn id<T>(
            field: &'static str,
            value: &str,
            parse: fn(&str) -> Result<T, IdError>,
        ) -> Result<T, EnvelopeError> {
            parse(value).map_err(|source| EnvelopeError::Id { field, source })
        }
        Ok(Envelope {
            message_id: id("message_id", self.message_id.as_str(), MessageId::parse)?,
            sender: id("sender", self.sender.as_str(), MailboxId::parse)?,
            recipient: id("recipient", self.recipient.as_str(), MailboxId::parse)?,
            workflow_id: id("workflow_id", self.workflow_id.as_str(), WorkflowId::parse)?,
            local_id: match &self.local_id {
                Some(l) => Some(id("local_id", l.as_str(), LocalId::parse)?),
                None => None,
            },
            linked_message_id: match &self.linked_message_id {
                Some(m) => Some(id("linked_message_id", m.as_str(), MessageId::parse)?),
                None => None,
            },
            ..self
        })
    }
}

impl ReportStatus {
    /// Checks the report fields: `code` and `event` non-empty, all three
    /// within their byte limits and free of control characters.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        required_text("report.code", &self.code, MAX_REPORT_CODE_BYTES)?;
        required_text("report.event", &self.event, MAX_REPORT_EVENT_BYTES)?;
        text(
            "report.description",
            &self.description,
            MAX_REPORT_DESCRIPTION_BYTES,
        )
    }
}

/// A MESH control character: C0 (U+0000..=U+001F) or DEL (U+007F). Same
/// definition as [`LocalId`] uses.
fn is_forbidden_control(c: char) -> bool {
    c <= '\u{1F}' || c == '\u{7F}'
}

fn text(field: &'static str, value: &str, max: usize) -> Result<(), EnvelopeError> {
    if value.len() > max {
        return Err(EnvelopeError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    match value
        .chars()
        .enumerate()
        .find(|&(_, c)| is_forbidden_control(c))
    {
        Some((position, found)) => Err(EnvelopeError::ControlChar {
            field,
            found,
            position,
        }),
        None => Ok(()),
    }
}

fn required_text(field: &'static str, value: &str, max: usize) -> Result<(), EnvelopeError> {
    if value.is_empty() {
        return Err(EnvelopeError::FieldRequired { field });
    }
    text(field, value, max)
}

fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), EnvelopeError> {
    match value {
        None => Ok(()),
        Some("") => Err(EnvelopeError::FieldEmpty { field }),
        Some(v) => text(field, v, max),
    }
}

fn checksum_alphabet(checksum: &str) -> Result<(), EnvelopeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | ':' | '-' | '/');
    match checksum.chars().enumerate().find(|&(_, c)| !allowed(c)) {
        Some((position, found)) => Err(EnvelopeError::ChecksumChar { found, position }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::strategies;
    use proptest::prelude::*;
    use std::time::Duration;

    fn sample() -> Envelope {
        let created_at = Timestamp::from_micros(1_795_480_569_123_456);
        Envelope {
            message_id: MessageId::from_parts(created_at, 0xABCDEF).unwrap(),
            message_type: MessageType::Data,
            sender: MailboxId::parse("X26ABC1").unwrap(),
            recipient: MailboxId::parse("ALICE").unwrap(),
            workflow_id: WorkflowId::parse("PATH_TEST").unwrap(),
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
        }
    }

    fn report() -> Envelope {
        let original = sample();
        Envelope {
            message_type: MessageType::Report,
            total_chunks: 0,
            linked_message_id: Some(original.message_id),
            report: Some(ReportStatus {
                code: "14".into(),
                event: "SEND".into(),
                description: "Message not collected by recipient after 5 days".into(),
            }),
            ..original
        }
    }

    fn err(e: &Envelope) -> EnvelopeError {
        e.validate().unwrap_err()
    }

    #[test]
    fn message_type_text() {
        assert_eq!(MessageType::Data.as_str(), "DATA");
        assert_eq!(MessageType::Report.to_string(), "REPORT");
        assert_eq!(MessageType::parse("data"), Ok(MessageType::Data));
        assert_eq!("REPORT".parse::<MessageType>(), Ok(MessageType::Report));
        let e = MessageType::parse("DATUM").unwrap_err();
        assert_eq!(e.code(), "ENV_MESSAGE_TYPE_INVALID");
        assert_eq!(
            serde_json::to_string(&MessageType::Report).unwrap(),
            "\"REPORT\""
        );
    }

    #[test]
    fn valid_envelopes_pass() {
        sample().validate().unwrap();
        report().validate().unwrap();
        let mut one_chunk_report = report();
        one_chunk_report.total_chunks = 1;
        one_chunk_report.validate().unwrap();
        let mut max = sample();
        max.total_chunks = MAX_CHUNKS;
        max.subject = Some("é".repeat(250));
        max.validate().unwrap();
    }

    #[test]
    fn length_limits_are_bytes() {
        let mut e = sample();
        e.subject = Some("é".repeat(251)); // 502 bytes
        let error = err(&e);
        assert_eq!(error.code(), "ENV_FIELD_TOO_LONG");
        assert_eq!(
            error.to_string(),
            "subject is 502 bytes long; shorten it to at most 500 bytes"
        );
        type Setter = fn(&mut Envelope, String);
        let cases: [(Setter, usize, &str); 4] = [
            (
                |e, v| e.file_name = Some(v),
                MAX_FILE_NAME_BYTES,
                "file_name",
            ),
            (
                |e, v| e.content_type = Some(v),
                MAX_CONTENT_TYPE_BYTES,
                "content_type",
            ),
            (|e, v| e.checksum = Some(v), MAX_CHECKSUM_BYTES, "checksum"),
            (
                |e, v| e.partner_id = Some(v),
                MAX_PARTNER_ID_BYTES,
                "partner_id",
            ),
        ];
        for (set, max, name) in cases {
            let mut e = sample();
            set(&mut e, "a".repeat(max));
            e.validate().unwrap();
            set(&mut e, "a".repeat(max + 1));
            assert_eq!(
                err(&e),
                EnvelopeError::FieldTooLong {
                    field: name,
                    len: max + 1,
                    max
                }
            );
        }
    }

    #[test]
    fn control_chars_and_empty_values_are_refused() {
        let mut e = sample();
        e.subject = Some("hi\r\nX-Evil: 1".into());
        let error = err(&e);
        assert_eq!(error.code(), "ENV_FIELD_CONTROL_CHAR");
        assert!(error
            .to_string()
            .starts_with("subject contains control character '\\r' at position 2"));
        e.subject = Some("tab\there".into());
        assert_eq!(err(&e).code(), "ENV_FIELD_CONTROL_CHAR");
        e.subject = Some(String::new());
        assert_eq!(err(&e), EnvelopeError::FieldEmpty { field: "subject" });

        let mut r = report();
        r.report.as_mut().unwrap().description = "bad\u{7F}".into();
        assert_eq!(err(&r).code(), "ENV_FIELD_CONTROL_CHAR");
        r.report.as_mut().unwrap().description = String::new();
        r.validate().unwrap();
        r.report.as_mut().unwrap().code = String::new();
        assert_eq!(
            err(&r),
            EnvelopeError::FieldRequired {
                field: "report.code"
            }
        );
    }

    #[test]
    fn checksum_alphabet_is_enforced() {
        let mut e = sample();
        e.checksum = Some("SHA-256: ab/CD 09".into());
        e.validate().unwrap();
        e.checksum = Some("md5=abc".into());
        let error = err(&e);
        assert_eq!(error.code(), "ENV_CHECKSUM_INVALID");
        assert!(error.to_string().contains("'=' at position 3"), "{error}");
    }

    #[test]
    fn chunk_counts_depend_on_type() {
        let mut e = sample();
        e.total_chunks = 0;
        assert_eq!(err(&e).code(), "ENV_TOTAL_CHUNKS_INVALID");
        e.total_chunks = MAX_CHUNKS + 1;
        assert_eq!(
            err(&e).to_string(),
            "total_chunks is 100001 for a DATA message; use 1 to 100000"
        );
        let mut r = report();
        r.total_chunks = 2;
        assert_eq!(err(&r).code(), "ENV_TOTAL_CHUNKS_INVALID");
    }

    #[test]
    fn expiry_must_follow_creation() {
        let mut e = sample();
        e.expires_at = e.created_at;
        let error = err(&e);
        assert_eq!(error.code(), "ENV_EXPIRY_INVALID");
        assert!(
            error.to_string().contains("is not after created_at"),
            "{error}"
        );
    }

    #[test]
    fn report_presence_matches_type() {
        let mut d = sample();
        d.report = report().report;
        assert_eq!(err(&d).code(), "ENV_REPORT_MISMATCH");
        let mut r = report();
        r.report = None;
        assert_eq!(err(&r).code(), "ENV_REPORT_MISMATCH");
        assert!(err(&r)
            .to_string()
            .starts_with("REPORT message has no report status"));
    }

    #[test]
    fn rkyv_round_trip_including_unaligned_input() {
        for e in [sample(), report()] {
            let bytes = e.to_rkyv_bytes().unwrap();
            assert_eq!(Envelope::from_rkyv_bytes(&bytes).unwrap(), e);
            let mut shifted = vec![0u8];
            shifted.extend_from_slice(&bytes);
            assert_eq!(Envelope::from_rkyv_bytes(&shifted[1..]).unwrap(), e);
        }
    }

    #[test]
    fn encoding_refuses_invalid_envelopes() {
        let mut e = sample();
        e.total_chunks = 0;
        assert_eq!(
            e.to_rkyv_bytes().unwrap_err().code(),
            "ENV_TOTAL_CHUNKS_INVALID"
        );
    }

    #[test]
    fn decoding_revalidates_ids() {
        // Forge an archive whose id breaks its rules but whose structure is
        // sound, as a corrupted log record could be: bytecheck accepts it.
        let good = sample();
        let bytes = good.to_rkyv_bytes().unwrap();
        // Same length as "X26ABC1" so the archive layout is unchanged.
        let forged: Vec<u8> = {
            let needle = b"X26ABC1";
            let mut b = bytes.clone();
            let at = b.windows(needle.len()).position(|w| w == needle).unwrap();
            b[at..at + needle.len()].copy_from_slice(b"X26 BC1");
            b
        };
        let error = Envelope::from_rkyv_bytes(&forged).unwrap_err();
        assert_eq!(error.code(), "ENV_ID_INVALID");
        assert!(
            error
                .to_string()
                .starts_with("sender in the stored envelope is invalid"),
            "{error}"
        );
    }

    #[test]
    fn decoding_garbage_fails_cleanly() {
        assert_eq!(
            Envelope::from_rkyv_bytes(&[]).unwrap_err().code(),
            "ENV_DECODE_FAILED"
        );
        let bytes = sample().to_rkyv_bytes().unwrap();
        assert!(Envelope::from_rkyv_bytes(&bytes[..bytes.len() - 1]).is_err());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            let _ = Envelope::from_rkyv_bytes(&b);
        }
    }

    #[test]
    fn serde_json_round_trip() {
        let e = report();
        let json = serde_json::to_string(&e).unwrap();
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let bad = json.replace("\"X26ABC1\"", "\"X26 ABC1\"");
        assert!(serde_json::from_str::<Envelope>(&bad).is_err());
    }

    fn opt_text(max_chars: usize) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(
            proptest::collection::vec(
                any::<char>().prop_filter("no control", |c| !is_forbidden_control(*c)),
                1..=max_chars,
            )
            .prop_map(|v| v.into_iter().collect::<String>()),
        )
    }

    prop_compose! {
        fn arb_message_id()(micros in 0..=Timestamp::MAX.as_micros(), suffix in 0u32..=0xFF_FFFF) -> MessageId {
            MessageId::from_parts(Timestamp::from_micros(micros), suffix).unwrap()
        }
    }

    prop_compose! {
        fn arb_report()(code in "[0-9]{1,20}", event in "[A-Z]{1,50}", description in "[ -~]{0,200}") -> ReportStatus {
            ReportStatus { code, event, description }
        }
    }

    prop_compose! {
        fn arb_envelope()(
            message_id in arb_message_id(),
            is_report: bool,
            report in arb_report(),
            sender in strategies::mailbox(),
            recipient in strategies::mailbox(),
            workflow in strategies::workflow(),
            subject in opt_text(MAX_SUBJECT_BYTES / 4),
            local in proptest::option::of(strategies::local()),
            file_name in opt_text(MAX_FILE_NAME_BYTES / 4),
            content_type in proptest::option::of("[a-z]{1,20}/[a-z0-9.+-]{1,50}"),
            compressed: bool,
            encrypted: bool,
            checksum in proptest::option::of("[A-Za-z0-9 :/-]{1,100}"),
            partner_id in opt_text(MAX_PARTNER_ID_BYTES / 4),
            chunks in 0u32..=MAX_CHUNKS,
            created in 0..Timestamp::MAX.as_micros(),
            lifetime in 1u64..=1_000_000_000_000,
            linked in proptest::option::of(arb_message_id()),
        ) -> Envelope {
            let created_at = Timestamp::from_micros(created);
            Envelope {
                message_id,
                message_type: if is_report { MessageType::Report } else { MessageType::Data },
                sender: MailboxId::parse(&sender).unwrap(),
                recipient: MailboxId::parse(&recipient).unwrap(),
                workflow_id: WorkflowId::parse(&workflow).unwrap(),
                subject,
                local_id: local.map(|l| LocalId::parse(&l).unwrap()),
                file_name,
                content_type,
                compressed,
                encrypted,
                checksum,
                partner_id,
                total_chunks: if is_report { chunks % 2 } else { chunks.max(1) },
                created_at,
                expires_at: created_at.saturating_add(Duration::from_micros(lifetime)),
                linked_message_id: linked,
                report: is_report.then_some(report),
            }
        }
    }

    proptest! {
        #[test]
        fn generated_envelopes_round_trip(e in arb_envelope()) {
            prop_assert_eq!(e.validate(), Ok(()));
            let bytes = e.to_rkyv_bytes().unwrap();
            prop_assert_eq!(Envelope::from_rkyv_bytes(&bytes), Ok(e.clone()));
            let json = serde_json::to_string(&e).unwrap();
            prop_assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), e);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(e) = Envelope::from_rkyv_bytes(&bytes) {
                prop_assert_eq!(e.validate(), Ok(()));
            }
        }

        #[test]
        fn corrupted_encodings_never_panic(e in arb_envelope(), flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8)) {
            let mut bytes = e.to_rkyv_bytes().unwrap();
            for (index, mask) in flips {
                let i = index.index(bytes.len());
                bytes[i] ^= mask;
            }
            if let Ok(decoded) = Envelope::from_rkyv_bytes(&bytes) {
                prop_assert_eq!(decoded.validate(), Ok(()));
            }
        }

        #[test]
        fn message_type_parse_never_panics(s in ".{0,10}") {
            if let Ok(t) = MessageType::parse(&s) {
                prop_assert!(t.as_str().eq_ignore_ascii_case(&s));
            }
        }
    }
}
