//! [`ClientError`]: everything a client call can fail with, each with a
//! stable code ([`ErrorCode`]) and a message that says what to do.
//!
//! Invariants and why:
//! - Errors the server reports in an `ERROR` frame stay whole in
//!   [`ClientError::Server`] (numeric class, precise name, message), so a
//!   program can switch on the class and a person can read the cause.
//! - Everything the client detects itself has a `CLIENT_*` code; the codes
//!   are never renamed, so scripts and dashboards can rely on them.

use std::time::Duration;

use spine_core::ErrorCode;
use spine_protocol::{ProtocolError, Response, WireError, WireErrorCode};
use thiserror::Error;

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint text could not be parsed.
    #[error(
        "endpoint {input:?} is invalid: {why}; write native://HOST:PORT, natives://HOST:PORT \
         (TLS) or quic://HOST:PORT"
    )]
    EndpointInvalid {
        /// The text given (cut to a readable length).
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// The client configuration is unusable.
    #[error("client configuration is invalid: {why}")]
    ConfigInvalid {
        /// What is wrong and what to change.
        why: String,
    },
    /// No connection could be established (resolution, refusal, handshake
    /// I/O, a server that closed the connection during `HELLO`).
    #[error(
        "could not connect to {endpoint}: {reason}; check that the server is running and that \
         the host, port and transport (native, natives, quic) are right"
    )]
    ConnectFailed {
        /// Where the client tried to connect.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// TLS could not be set up: certificate or key files, or the handshake.
    #[error("TLS failed: {reason}")]
    Tls {
        /// What failed and what to change.
        reason: String,
    },
    /// No answer (or no connection) within the configured time.
    #[error(
        "{what} got no answer within {after:?}; the server may be overloaded or unreachable: \
         retry, or raise the timeout"
    )]
    Timeout {
        /// What was waited for, e.g. `SEND request` or `connect`.
        what: String,
        /// How long the client waited.
        after: Duration,
    },
    /// The connection failed while the request was in flight (or before it
    /// could be written). The outcome of a write request is unknown: retry
    /// it (sends with the same idempotency key). The next call reconnects.
    #[error(
        "connection to the server was lost ({reason}); the request may or may not have taken \
         effect: retry it (sends with the same idempotency key), the next call reconnects"
    )]
    ConnectionLost {
        /// Why the connection ended.
        reason: String,
    },
    /// The server sent something this client cannot accept (a frame that
    /// does not decode, an answer of the wrong kind, a download out of
    /// sequence or over the size bound).
    #[error(
        "the server broke the protocol: {reason}; check that client and server versions match"
    )]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The request could not be encoded (a field too long, a body over the
    /// payload limit, a batch too large, ...).
    #[error("the request is invalid: {source}")]
    RequestInvalid {
        /// The encoder's explanation (with its `PROTO_*` code).
        #[source]
        source: ProtocolError,
    },
    /// `subscribe` was called while a subscription is active on this
    /// client's connection.
    #[error(
        "this client already has an active subscription; use it, or drop (or unsubscribe) it \
         before subscribing again"
    )]
    AlreadySubscribed,
    /// The client was closed with [`crate::Client::close`].
    #[error("the client was closed; connect a new one")]
    Closed,
    /// The server answered with an `ERROR` frame.
    #[error("the server refused the request: {0}")]
    Server(WireError),
    /// A service refused or failed the request; the fault's code is the
    /// precise stable code (`ID_NHS_NUMBER_CHECK_DIGIT`, `SVC_TIMEOUT`,
    /// an external provider's own code, ...).
    #[error("{} ({})", .0.message, .0.code)]
    Service(spine_protocol::ServiceFault),
}

impl ErrorCode for ClientError {
    fn code(&self) -> &'static str {
        match self {
            ClientError::EndpointInvalid { .. } => "CLIENT_ENDPOINT_INVALID",
            ClientError::ConfigInvalid { .. } => "CLIENT_CONFIG_INVALID",
            ClientError::ConnectFailed { .. } => "CLIENT_CONNECT_FAILED",
            ClientError::Tls { .. } => "CLIENT_TLS",
            ClientError::Timeout { .. } => "CLIENT_TIMEOUT",
            ClientError::ConnectionLost { .. } => "CLIENT_CONNECTION_LOST",
            ClientError::Protocol { .. } => "CLIENT_PROTOCOL",
            ClientError::RequestInvalid { .. } => "CLIENT_REQUEST_INVALID",
            ClientError::AlreadySubscribed => "CLIENT_ALREADY_SUBSCRIBED",
            ClientError::Closed => "CLIENT_CLOSED",
            ClientError::Server(e) => server_class_name(e.code),
            ClientError::Service(_) => "CLIENT_SERVICE_FAULT",
        }
    }
}

/// The class name of a server error number; an unknown number is treated
/// by its range, as WIRE.md asks.
fn server_class_name(code: u16) -> &'static str {
    if let Some(known) = WireErrorCode::from_u16(code) {
        return known.name();
    }
    match code {
        1000..=1999 => WireErrorCode::BadFrame.name(),
        2000..=2999 => WireErrorCode::InvalidRequest.name(),
        _ => WireErrorCode::Internal.name(),
    }
}

impl ClientError {
    /// The precise stable text code: the server's `name` (e.g.
    /// `MSG_NOT_FOUND`, `DIR_AUTH_FAILED`) for [`ClientError::Server`],
    /// otherwise [`ErrorCode::code`].
    pub fn name(&self) -> &str {
        match self {
            ClientError::Server(e) => &e.name,
            other => other.code(),
        }
    }

    /// The server's error, if this is one.
    pub fn server_error(&self) -> Option<&WireError> {
        match self {
            ClientError::Server(e) => Some(e),
            _ => None,
        }
    }

    /// The server error's numeric class (`ERROR` frame `code`), if this is
    /// a server error.
    pub fn wire_code(&self) -> Option<u16> {
        self.server_error().map(|e| e.code)
    }

    /// Whether retrying the same call later may succeed: a lost connection
    /// or a timeout (the next call reconnects), or a server that is busy,
    /// restarting a part, shutting down or unsure of the outcome. Retry
    /// sends with the same idempotency key.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::ConnectFailed { .. }
            | ClientError::Timeout { .. }
            | ClientError::ConnectionLost { .. } => true,
            ClientError::Server(e) => matches!(
                e.known_code(),
                Some(
                    WireErrorCode::Busy
                        | WireErrorCode::Unavailable
                        | WireErrorCode::ShuttingDown
                        | WireErrorCode::OutcomeUnknown
                        | WireErrorCode::TooManyInFlight
                )
            ),
            _ => false,
        }
    }

    pub(crate) fn request_invalid(source: ProtocolError) -> ClientError {
        ClientError::RequestInvalid { source }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            reason: reason.into(),
        }
    }

    pub(crate) fn lost(reason: impl Into<String>) -> ClientError {
        ClientError::ConnectionLost {
            reason: reason.into(),
        }
    }

    pub(crate) fn tls(reason: impl Into<String>) -> ClientError {
        ClientError::Tls {
            reason: reason.into(),
        }
    }

    /// The error for an answer of the wrong kind (an `ERROR` frame becomes
    /// [`ClientError::Server`]).
    pub(crate) fn unexpected(expected: &str, got: Response) -> ClientError {
        match got {
            Response::Error(e) => ClientError::Server(e),
            other => ClientError::protocol(format!(
                "expected {expected} but the server answered {}",
                other.kind()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let cases = [
            (
                ClientError::EndpointInvalid {
                    input: "x".into(),
                    why: "y".into(),
                },
                "CLIENT_ENDPOINT_INVALID",
            ),
            (
                ClientError::ConfigInvalid { why: "y".into() },
                "CLIENT_CONFIG_INVALID",
            ),
            (
                ClientError::ConnectFailed {
                    endpoint: "e".into(),
                    reason: "r".into(),
                },
                "CLIENT_CONNECT_FAILED",
            ),
            (ClientError::tls("r"), "CLIENT_TLS"),
            (
                ClientError::Timeout {
                    what: "PING request".into(),
                    after: Duration::from_secs(1),
                },
                "CLIENT_TIMEOUT",
            ),
            (ClientError::lost("r"), "CLIENT_CONNECTION_LOST"),
            (ClientError::protocol("r"), "CLIENT_PROTOCOL"),
            (
                ClientError::request_invalid(ProtocolError::FieldTooLong {
                    field: "f",
                    len: 2,
                    max: 1,
                }),
                "CLIENT_REQUEST_INVALID",
            ),
            (ClientError::AlreadySubscribed, "CLIENT_ALREADY_SUBSCRIBED"),
            (ClientError::Closed, "CLIENT_CLOSED"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.name(), code);
            assert!(error.server_error().is_none());
        }
    }

    #[test]
    fn server_errors_keep_class_and_name() {
        let e = ClientError::Server(WireError::new(
            WireErrorCode::AuthFailed,
            "DIR_AUTH_FAILED",
            "wrong password",
        ));
        assert_eq!(e.code(), "AUTH_FAILED");
        assert_eq!(e.name(), "DIR_AUTH_FAILED");
        assert_eq!(e.wire_code(), Some(2000));
        assert!(!e.is_transient());
        assert!(e.to_string().contains("wrong password"), "{e}");

        let unknown = |code| {
            ClientError::Server(WireError {
                code,
                name: "NEW_THING".into(),
                message: "m".into(),
            })
        };
        assert_eq!(unknown(1999).code(), "BAD_FRAME");
        assert_eq!(unknown(2999).code(), "INVALID_REQUEST");
        assert_eq!(unknown(3999).code(), "INTERNAL");
        assert_eq!(unknown(7).code(), "INTERNAL");

        let busy = ClientError::Server(WireError::new(WireErrorCode::Busy, "BUSY", "later"));
        assert!(busy.is_transient());
        assert!(ClientError::lost("x").is_transient());
    }
}
