//! [`Limits`]: every bound the codec enforces, and [`ServerLimits`], the
//! part a server advertises in `HELLO_OK`.
//!
//! Invariants and why:
//! - Every length the codec reads from the wire is checked against a limit
//!   *before* anything of that size is buffered or allocated, so a peer
//!   cannot make the codec use more memory than the limits allow.
//! - The encoder applies the same limits as the decoder: a message that
//!   encodes is one the peer (with the same limits) accepts.
//! - A valid [`Limits`] ([`Limits::validate`]) keeps every frame length
//!   within the `u32` length prefix, and leaves room in the meta section for
//!   the largest list response its own list limits allow (a full batch
//!   result, inbox page or look-up answer), so a server can always answer.
//! - Field limits that mirror MESH rules are taken from `spine-core`, so the
//!   wire and the node cannot disagree about them.

use crate::error::ProtocolError;
use crate::frame::MIN_FRAME_LENGTH;

/// Longest `idempotency_key` in a send, in bytes (the node's limit).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize =
    spine_core::message::commands::MAX_IDEMPOTENCY_KEY_BYTES;
/// Longest `workflow_filter` in an inbox listing, in bytes (the node's limit).
pub const MAX_WORKFLOW_FILTER_BYTES: usize = spine_core::message::filter::MAX_FILTER_LEN;
/// Room in a `HELLO` frame's meta for everything but the password and
/// client name (the mailbox id, the archive's own overhead), with margin.
const HELLO_META_SLACK_BYTES: u64 = 4 * 1024;
/// Longest `server_name` in `HELLO_OK`, in bytes.
pub const MAX_SERVER_NAME_BYTES: usize = 128;
/// Longest `mailbox_name` in a look-up answer, in bytes.
pub const MAX_MAILBOX_NAME_BYTES: usize = 512;
/// Longest error `name` (a stable upper-snake-case code), in bytes.
pub const MAX_ERROR_NAME_BYTES: usize = 64;
/// Longest error `message`, in bytes ([`crate::WireError::new`] truncates).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1_024;

/// Upper bound on the archived size of one `SEND_BATCH_OK` item (an error
/// with the longest name and message), in bytes; checked by a test.
pub(crate) const BATCH_RESULT_ITEM_META_BYTES: u64 = 1_200;
/// Upper bound on the archived size of one `INBOX_PAGE` entry, in bytes.
pub(crate) const INBOX_ENTRY_META_BYTES: u64 = 480;
/// Upper bound on the archived size of one `LOOKUP_RESULT` entry, in bytes.
pub(crate) const LOOKUP_ENTRY_META_BYTES: u64 = 600;
/// Room for a list response's fixed fields, in bytes.
pub(crate) const LIST_OVERHEAD_META_BYTES: u64 = 256;

/// Every bound the codec enforces. Both ends should use the same values;
/// a client can narrow its own to what the server advertised with
/// [`Limits::with_server`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest payload in one frame, in bytes: a message body, a chunk, the
    /// bodies of a whole batch, or one piece of a streamed download.
    pub max_payload_bytes: u32,
    /// Largest meta section in one frame, in bytes.
    pub max_meta_bytes: u32,
    /// Most messages in one `SEND_BATCH`.
    pub max_batch: u32,
    /// Longest `client_name` in `HELLO`, in bytes.
    pub max_client_name_bytes: u32,
    /// Longest `password` in `HELLO`, in bytes.
    pub max_password_bytes: u32,
    /// Most entries in one `INBOX_PAGE` (and largest `max_results`).
    pub max_inbox_page: u32,
    /// Most entries in one `LOOKUP_RESULT`.
    pub max_lookup_results: u32,
    /// Largest push credit a subscriber may hold (and grant at once).
    pub max_credit: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_payload_bytes: 16 * 1024 * 1024,
            max_meta_bytes: 2 * 1024 * 1024,
            max_batch: 1_024,
            max_client_name_bytes: 128,
            max_password_bytes: 1_024,
            max_inbox_page: 500,
            max_lookup_results: 1_000,
            max_credit: 65_536,
        }
    }
}

impl Limits {
    /// Largest value of the length prefix: the fixed header after the
    /// prefix, the largest meta and the largest payload.
    pub const fn max_frame_length(&self) -> u64 {
        MIN_FRAME_LENGTH as u64 + self.max_meta_bytes as u64 + self.max_payload_bytes as u64
    }

    /// Largest value of the length prefix a server reads before the
    /// connection has authenticated: only `HELLO` (no payload; its fields
    /// bounded by these limits) and `PING` are served then, so an
    /// unauthenticated peer cannot make the server buffer a large frame.
    pub const fn max_frame_length_before_hello(&self) -> u64 {
        let hello = MIN_FRAME_LENGTH as u64
            + HELLO_META_SLACK_BYTES
            + self.max_password_bytes as u64
            + self.max_client_name_bytes as u64;
        if hello < self.max_frame_length() {
            hello
        } else {
            self.max_frame_length()
        }
    }

    /// Checks the limits are usable: every limit at least 1, the largest
    /// frame within the `u32` length prefix, and the largest list answers
    /// within the meta limit.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let invalid = |why: String| Err(ProtocolError::InvalidLimits { why });
        let named = [
            ("max_payload_bytes", self.max_payload_bytes),
            ("max_meta_bytes", self.max_meta_bytes),
            ("max_batch", self.max_batch),
            ("max_client_name_bytes", self.max_client_name_bytes),
            ("max_password_bytes", self.max_password_bytes),
            ("max_inbox_page", self.max_inbox_page),
            ("max_lookup_results", self.max_lookup_results),
            ("max_credit", self.max_credit),
        ];
        if let Some((name, _)) = named.iter().find(|(_, v)| *v == 0) {
            return invalid(format!("{name} is 0; set it to at least 1"));
        }
        if self.max_frame_length() > u64::from(u32::MAX) {
            return invalid(format!(
                "max_meta_bytes + max_payload_bytes + {MIN_FRAME_LENGTH} is {}, more than the \
                 u32 length prefix can carry ({}); lower max_payload_bytes",
                self.max_frame_length(),
                u32::MAX
            ));
        }
        let lists = [
            ("max_batch", self.max_batch, BATCH_RESULT_ITEM_META_BYTES),
            (
                "max_inbox_page",
                self.max_inbox_page,
                INBOX_ENTRY_META_BYTES,
            ),
            (
                "max_lookup_results",
                self.max_lookup_results,
                LOOKUP_ENTRY_META_BYTES,
            ),
        ];
        for (name, count, per_item) in lists {
            let needed = u64::from(count) * per_item + LIST_OVERHEAD_META_BYTES;
            if needed > u64::from(self.max_meta_bytes) {
                return invalid(format!(
                    "{name} is {count}, but the largest answer with that many entries needs \
                     {needed} meta bytes and max_meta_bytes is {}; raise max_meta_bytes or \
                     lower {name}",
                    self.max_meta_bytes
                ));
            }
        }
        Ok(())
    }

    /// What a server tells its clients in `HELLO_OK`.
    pub const fn advertise(&self) -> ServerLimits {
        ServerLimits {
            max_payload_bytes: self.max_payload_bytes,
            max_meta_bytes: self.max_meta_bytes,
            max_batch: self.max_batch,
            max_inbox_page: self.max_inbox_page,
            max_credit: self.max_credit,
        }
    }

    /// These limits narrowed to what a server advertised (each the smaller
    /// of the two), for a client encoding requests to that server.
    #[must_use]
    pub fn with_server(&self, server: &ServerLimits) -> Limits {
        Limits {
            max_payload_bytes: self.max_payload_bytes.min(server.max_payload_bytes),
            max_meta_bytes: self.max_meta_bytes.min(server.max_meta_bytes),
            max_batch: self.max_batch.min(server.max_batch),
            max_inbox_page: self.max_inbox_page.min(server.max_inbox_page),
            max_credit: self.max_credit.min(server.max_credit),
            ..*self
        }
    }
}

/// The limits a server advertises in `HELLO_OK`; a client must stay within
/// them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerLimits {
    /// Largest payload per frame: the largest message body or chunk the
    /// server accepts in one `SEND`/`SEND_CHUNK`, and the largest total of
    /// bodies in one `SEND_BATCH`.
    pub max_payload_bytes: u32,
    /// Largest meta section per frame.
    pub max_meta_bytes: u32,
    /// Most messages per `SEND_BATCH`.
    pub max_batch: u32,
    /// Largest `max_results` of `LIST_INBOX`.
    pub max_inbox_page: u32,
    /// Largest push credit a subscriber may hold.
    pub max_credit: u32,
}

impl ServerLimits {
    /// Largest frame the server accepts, length prefix included.
    pub const fn max_frame_bytes(&self) -> u64 {
        crate::frame::HEADER_LEN as u64 + self.max_meta_bytes as u64 + self.max_payload_bytes as u64
    }
}

/// Checks a text field's byte length.
pub(crate) fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// Checks an optional text field's byte length.
pub(crate) fn check_opt_len(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), ProtocolError> {
    match value {
        Some(v) => check_len(field, v, max),
        None => Ok(()),
    }
}

/// Checks a count or number lies in `min..=max`.
pub(crate) fn check_range(
    field: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), ProtocolError> {
    if value < min || value > max {
        return Err(ProtocolError::FieldOutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::ErrorCode;

    #[test]
    fn defaults_are_valid() {
        let limits = Limits::default();
        limits.validate().unwrap();
        assert_eq!(
            limits.max_frame_length(),
            16 + 2 * 1024 * 1024 + 16 * 1024 * 1024
        );
        assert_eq!(
            limits.advertise().max_frame_bytes(),
            limits.max_frame_length() + 4
        );
    }

    #[test]
    fn invalid_limits_say_what_to_change() {
        let zero = Limits {
            max_batch: 0,
            ..Limits::default()
        };
        let e = zero.validate().unwrap_err();
        assert_eq!(e.code(), "PROTO_LIMITS_INVALID");
        assert!(e.to_string().contains("max_batch is 0"), "{e}");

        let huge = Limits {
            max_payload_bytes: u32::MAX,
            ..Limits::default()
        };
        assert!(huge
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lower max_payload_bytes"));

        let crowded = Limits {
            max_batch: 100_000,
            ..Limits::default()
        };
        assert!(crowded
            .validate()
            .unwrap_err()
            .to_string()
            .contains("raise max_meta_bytes or lower max_batch"));
    }

    #[test]
    fn with_server_takes_the_smaller() {
        let server = Limits {
            max_batch: 10,
            max_payload_bytes: 1_000,
            ..Limits::default()
        };
        let client = Limits {
            max_inbox_page: 20,
            ..Limits::default()
        };
        let narrowed = client.with_server(&server.advertise());
        assert_eq!(narrowed.max_batch, 10);
        assert_eq!(narrowed.max_payload_bytes, 1_000);
        assert_eq!(narrowed.max_inbox_page, 20);
        assert_eq!(narrowed.max_password_bytes, client.max_password_bytes);
    }
}
