//! [`WireErrorCode`], the stable numeric error codes of `ERROR` frames, and
//! [`WireError`], the error a peer receives.
//!
//! Invariants and why:
//! - A numeric code never changes meaning and is never reused: clients
//!   switch on it (retry, re-authenticate, give up). New codes may be added;
//!   a client that meets a number it does not know treats it by its range
//!   (1xxx protocol, 2xxx request, 3xxx server) and keeps the text `name`.
//! - The numeric code is the coarse class; `name` is the precise stable
//!   text code of whatever failed (`PROTO_FIELD_TOO_LONG`, `MSG_NOT_FOUND`,
//!   `NODE_SHUTTING_DOWN`, ...), so no detail is lost in the mapping.
//! - `name` is upper snake case (`A-Z`, `0-9`, `_`), 1..=64 bytes; `message`
//!   is at most [`MAX_ERROR_MESSAGE_BYTES`] and is cut at a character
//!   boundary by [`WireError::new`], so an error can always be encoded.

use std::fmt;

use spine_core::ErrorCode;

use crate::error::ProtocolError;
use crate::limits::{MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_NAME_BYTES};

/// The stable numeric class of an error (`ERROR` frame `code`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum WireErrorCode {
    /// A malformed frame or meta section (structure, flags, request id,
    /// archive validation).
    BadFrame = 1000,
    /// A frame, meta section or payload larger than the limits.
    FrameTooLarge = 1001,
    /// A protocol version this peer does not speak.
    UnsupportedVersion = 1002,
    /// A frame kind this peer does not know.
    UnknownKind = 1003,
    /// A known frame kind that is not allowed here (a response sent to a
    /// server, a second `HELLO`, ...).
    UnexpectedFrame = 1004,
    /// A request other than `HELLO`/`PING` before authentication.
    NotAuthenticated = 1005,
    /// A `SEND_BATCH` with more messages than allowed.
    BatchTooLarge = 1006,
    /// A text field longer than its limit.
    FieldTooLong = 1007,
    /// More requests in flight on the connection than the server allows.
    TooManyInFlight = 1008,
    /// Wrong mailbox or password.
    AuthFailed = 2000,
    /// The message belongs to another mailbox.
    Forbidden = 2001,
    /// No such message (or not one this mailbox may see).
    NotFound = 2002,
    /// A field or id is invalid.
    InvalidRequest = 2003,
    /// The message is in the wrong state for this (already complete, not
    /// yet accepted, ...).
    Conflict = 2004,
    /// The directory refuses the delivery (unknown or inactive recipient,
    /// workflow not registered).
    DeliveryRefused = 2005,
    /// A configured limit of the node would be exceeded.
    LimitExceeded = 2006,
    /// Anything else that went wrong on the server.
    Internal = 3000,
    /// The server is overloaded; retry later (backpressure).
    Busy = 3001,
    /// A part of the node is restarting; retry shortly.
    Unavailable = 3002,
    /// The node's log failed: sends are refused until an operator restarts it.
    LogFailed = 3003,
    /// The node is shutting down; retry against another node.
    ShuttingDown = 3004,
    /// The request may or may not have taken effect; retry (a send with the
    /// same idempotency key is answered with the original id).
    OutcomeUnknown = 3005,
    /// The node has failed and serves no requests; retry another node.
    NodeFailed = 3006,
}

impl WireErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [WireErrorCode; 23] = [
        WireErrorCode::BadFrame,
        WireErrorCode::FrameTooLarge,
        WireErrorCode::UnsupportedVersion,
        WireErrorCode::UnknownKind,
        WireErrorCode::UnexpectedFrame,
        WireErrorCode::NotAuthenticated,
        WireErrorCode::BatchTooLarge,
        WireErrorCode::FieldTooLong,
        WireErrorCode::TooManyInFlight,
        WireErrorCode::AuthFailed,
        WireErrorCode::Forbidden,
        WireErrorCode::NotFound,
        WireErrorCode::InvalidRequest,
        WireErrorCode::Conflict,
        WireErrorCode::DeliveryRefused,
        WireErrorCode::LimitExceeded,
        WireErrorCode::Internal,
        WireErrorCode::Busy,
        WireErrorCode::Unavailable,
        WireErrorCode::LogFailed,
        WireErrorCode::ShuttingDown,
        WireErrorCode::OutcomeUnknown,
        WireErrorCode::NodeFailed,
    ];

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self as u16
    }

    /// The code with this number, if this version knows it.
    pub fn from_u16(value: u16) -> Option<WireErrorCode> {
        WireErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_u16() == value)
    }

    /// The class's own stable text name, e.g. `"AUTH_FAILED"`.
    pub const fn name(self) -> &'static str {
        match self {
            WireErrorCode::BadFrame => "BAD_FRAME",
            WireErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            WireErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            WireErrorCode::UnknownKind => "UNKNOWN_KIND",
            WireErrorCode::UnexpectedFrame => "UNEXPECTED_FRAME",
            WireErrorCode::NotAuthenticated => "NOT_AUTHENTICATED",
            WireErrorCode::BatchTooLarge => "BATCH_TOO_LARGE",
            WireErrorCode::FieldTooLong => "FIELD_TOO_LONG",
            WireErrorCode::TooManyInFlight => "TOO_MANY_IN_FLIGHT",
            WireErrorCode::AuthFailed => "AUTH_FAILED",
            WireErrorCode::Forbidden => "FORBIDDEN",
            WireErrorCode::NotFound => "NOT_FOUND",
            WireErrorCode::InvalidRequest => "INVALID_REQUEST",
            WireErrorCode::Conflict => "CONFLICT",
            WireErrorCode::DeliveryRefused => "DELIVERY_REFUSED",
            WireErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            WireErrorCode::Internal => "INTERNAL",
            WireErrorCode::Busy => "BUSY",
            WireErrorCode::Unavailable => "UNAVAILABLE",
            WireErrorCode::LogFailed => "LOG_FAILED",
            WireErrorCode::ShuttingDown => "SHUTTING_DOWN",
            WireErrorCode::OutcomeUnknown => "OUTCOME_UNKNOWN",
            WireErrorCode::NodeFailed => "NODE_FAILED",
        }
    }

    /// The class of a stable text code: one of this enum's own names, a
    /// protocol code (`PROTO_*`), or a code of the node and core (`DIR_*`,
    /// `MSG_*`, `ENV_*`, `ID_*`, `NODE_*`). Anything unknown is
    /// [`WireErrorCode::Internal`].
    pub fn from_name(name: &str) -> WireErrorCode {
        if let Some(own) = WireErrorCode::ALL.iter().find(|c| c.name() == name) {
            return *own;
        }
        if let Some(code) = ProtocolError::wire_code_of(name) {
            return code;
        }
        match name {
            "DIR_AUTH_FAILED" | "DIR_MAILBOX_INACTIVE" => WireErrorCode::AuthFailed,
            "MSG_NOT_RECIPIENT" | "MSG_NOT_SENDER" | "DIR_SENDER_UNKNOWN" => {
                WireErrorCode::Forbidden
            }
            "MSG_NOT_FOUND" => WireErrorCode::NotFound,
            "MSG_WRONG_STATUS" | "MSG_UPLOAD_COMPLETE" | "MSG_ALREADY_EXISTS" => {
                WireErrorCode::Conflict
            }
            "DIR_RECIPIENT_UNREGISTERED"
            | "DIR_RECIPIENT_INACTIVE"
            | "DIR_WORKFLOW_NOT_REGISTERED" => WireErrorCode::DeliveryRefused,
            "MSG_LIMIT" => WireErrorCode::LimitExceeded,
            "MSG_CHUNK_OUT_OF_RANGE"
            | "MSG_IDEMPOTENCY_KEY_INVALID"
            | "MSG_WORKFLOW_FILTER_INVALID"
            | "NODE_REQUEST_INVALID" => WireErrorCode::InvalidRequest,
            "NODE_LOG_FAILED" => WireErrorCode::LogFailed,
            "NODE_SHUTTING_DOWN" => WireErrorCode::ShuttingDown,
            "NODE_OUTCOME_UNKNOWN" => WireErrorCode::OutcomeUnknown,
            "NODE_PARTITION_UNAVAILABLE" => WireErrorCode::Unavailable,
            "NODE_FAILED" => WireErrorCode::NodeFailed,
            other if other.starts_with("ENV_") || other.starts_with("ID_") => {
                WireErrorCode::InvalidRequest
            }
            _ => WireErrorCode::Internal,
        }
    }
}

impl fmt::Display for WireErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_u16())
    }
}

/// An error as it travels in an `ERROR` frame or a batch result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WireError {
    /// The numeric class ([`WireErrorCode`]); kept as a number so that
    /// codes added by a newer server survive decoding.
    pub code: u16,
    /// The precise stable text code, e.g. `"MSG_NOT_FOUND"`.
    pub name: String,
    /// What went wrong and what to do, for people.
    pub message: String,
}

impl WireError {
    /// An error of class `code` with text code `name`; `message` is cut to
    /// [`MAX_ERROR_MESSAGE_BYTES`] at a character boundary (with `…`).
    pub fn new(code: WireErrorCode, name: &str, message: &str) -> WireError {
        WireError {
            code: code.as_u16(),
            name: name.to_owned(),
            message: truncate(message, MAX_ERROR_MESSAGE_BYTES),
        }
    }

    /// The wire form of any error with a stable code: the class comes from
    /// [`WireErrorCode::from_name`], the message from its `Display`.
    pub fn from_error<E: ErrorCode + fmt::Display + ?Sized>(error: &E) -> WireError {
        let name = error.code();
        WireError::new(WireErrorCode::from_name(name), name, &error.to_string())
    }

    /// The numeric class, if this version knows it.
    pub fn known_code(&self) -> Option<WireErrorCode> {
        WireErrorCode::from_u16(self.code)
    }

    /// Checks the name's alphabet and both lengths.
    pub(crate) fn validate(&self) -> Result<(), ProtocolError> {
        if self.name.is_empty()
            || self.name.len() > MAX_ERROR_NAME_BYTES
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ProtocolError::FieldInvalid {
                field: "error.name",
                why: format!(
                    "{:?} is not a stable code; use 1 to {MAX_ERROR_NAME_BYTES} characters \
                     A-Z, 0-9 and '_'",
                    spine_core::ids::bounded_input(&self.name)
                ),
            });
        }
        crate::limits::check_len("error.message", &self.message, MAX_ERROR_MESSAGE_BYTES)
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name, self.code, self.message)
    }
}

impl std::error::Error for WireError {}

/// `text` cut to at most `max` bytes at a character boundary, with `…`
/// appended when anything was cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut cut = max.saturating_sub(ellipsis.len_utf8());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + ellipsis.len_utf8());
    out.push_str(text.get(..cut).unwrap_or(""));
    out.push(ellipsis);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in WireErrorCode::ALL {
            assert!(seen.insert(code.as_u16()), "{code} repeated");
            assert_eq!(WireErrorCode::from_u16(code.as_u16()), Some(code));
            assert_eq!(WireErrorCode::from_name(code.name()), code);
        }
        // The published table: these numbers never change.
        let table = [
            (WireErrorCode::BadFrame, 1000),
            (WireErrorCode::FrameTooLarge, 1001),
            (WireErrorCode::UnsupportedVersion, 1002),
            (WireErrorCode::UnknownKind, 1003),
            (WireErrorCode::UnexpectedFrame, 1004),
            (WireErrorCode::NotAuthenticated, 1005),
            (WireErrorCode::BatchTooLarge, 1006),
            (WireErrorCode::FieldTooLong, 1007),
            (WireErrorCode::TooManyInFlight, 1008),
            (WireErrorCode::AuthFailed, 2000),
            (WireErrorCode::Forbidden, 2001),
            (WireErrorCode::NotFound, 2002),
            (WireErrorCode::InvalidRequest, 2003),
            (WireErrorCode::Conflict, 2004),
            (WireErrorCode::DeliveryRefused, 2005),
            (WireErrorCode::LimitExceeded, 2006),
            (WireErrorCode::Internal, 3000),
            (WireErrorCode::Busy, 3001),
            (WireErrorCode::Unavailable, 3002),
            (WireErrorCode::LogFailed, 3003),
            (WireErrorCode::ShuttingDown, 3004),
            (WireErrorCode::OutcomeUnknown, 3005),
            (WireErrorCode::NodeFailed, 3006),
        ];
        assert_eq!(table.len(), WireErrorCode::ALL.len());
        for (code, number) in table {
            assert_eq!(code.as_u16(), number, "{code}");
        }
        assert_eq!(WireErrorCode::from_u16(0), None);
        assert_eq!(WireErrorCode::from_u16(4000), None);
    }

    #[test]
    fn node_codes_map_to_classes() {
        let cases = [
            ("DIR_AUTH_FAILED", WireErrorCode::AuthFailed),
            ("MSG_NOT_RECIPIENT", WireErrorCode::Forbidden),
            ("MSG_NOT_FOUND", WireErrorCode::NotFound),
            ("MSG_WRONG_STATUS", WireErrorCode::Conflict),
            ("DIR_RECIPIENT_UNREGISTERED", WireErrorCode::DeliveryRefused),
            ("MSG_LIMIT", WireErrorCode::LimitExceeded),
            ("ENV_FIELD_CONTROL_CHAR", WireErrorCode::InvalidRequest),
            ("ID_MAILBOX_INVALID", WireErrorCode::InvalidRequest),
            ("NODE_REQUEST_INVALID", WireErrorCode::InvalidRequest),
            ("NODE_LOG_FAILED", WireErrorCode::LogFailed),
            ("NODE_SHUTTING_DOWN", WireErrorCode::ShuttingDown),
            ("NODE_OUTCOME_UNKNOWN", WireErrorCode::OutcomeUnknown),
            ("NODE_PARTITION_UNAVAILABLE", WireErrorCode::Unavailable),
            ("NODE_FAILED", WireErrorCode::NodeFailed),
            ("NODE_READ_FAILED", WireErrorCode::Internal),
            ("PROTO_FRAME_TOO_LARGE", WireErrorCode::FrameTooLarge),
            ("PROTO_BATCH_TOO_LARGE", WireErrorCode::BatchTooLarge),
            ("SOMETHING_NEW", WireErrorCode::Internal),
            ("", WireErrorCode::Internal),
        ];
        for (name, code) in cases {
            assert_eq!(WireErrorCode::from_name(name), code, "{name}");
        }
    }

    #[test]
    fn from_error_keeps_the_precise_code() {
        let id_error = spine_core::ids::MailboxId::parse("a b").unwrap_err();
        let wire = WireError::from_error(&id_error);
        assert_eq!(wire.code, WireErrorCode::InvalidRequest.as_u16());
        assert_eq!(wire.name, "ID_MAILBOX_INVALID");
        assert_eq!(wire.message, id_error.to_string());
        assert_eq!(wire.known_code(), Some(WireErrorCode::InvalidRequest));
        wire.validate().unwrap();
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_MESSAGE_BYTES);
        let wire = WireError::new(WireErrorCode::Internal, "INTERNAL", &long);
        assert!(wire.message.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(wire.message.ends_with('…'));
        wire.validate().unwrap();
        let exact = "a".repeat(MAX_ERROR_MESSAGE_BYTES);
        assert_eq!(
            WireError::new(WireErrorCode::Internal, "X", &exact).message,
            exact
        );
    }

    #[test]
    fn names_must_be_stable_codes() {
        for bad in ["", "lower", "WITH SPACE", &"A".repeat(65)] {
            let e = WireError::new(WireErrorCode::Internal, bad, "m")
                .validate()
                .unwrap_err();
            assert_eq!(e.code(), "PROTO_FIELD_INVALID", "{bad:?}");
        }
    }
}
