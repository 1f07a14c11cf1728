//! Errors from the message store.

use crate::envelope::EnvelopeError;
use crate::ids::{MailboxId, MessageId};
use crate::ErrorCode;

use super::status::MessageStatus;

/// Why a message operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such message (or not visible to the caller).
    #[error("message {0} does not exist; check the message id")]
    NotFound(MessageId),
    /// The caller is not the message's recipient.
    #[error("message {id} is not addressed to mailbox {mailbox}; a mailbox may only read and acknowledge its own messages")]
    NotRecipient {
        /// The message.
        id: MessageId,
        /// The caller.
        mailbox: MailboxId,
    },
    /// The caller is not the message's sender.
    #[error("message {id} was not sent by mailbox {mailbox}; only the sender may upload chunks or track it")]
    NotSender {
        /// The message.
        id: MessageId,
        /// The caller.
        mailbox: MailboxId,
    },
    /// A message with this id exists already.
    #[error("message {0} already exists")]
    AlreadyExists(MessageId),
    /// The envelope is invalid.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The upload is complete; no more chunks are accepted.
    #[error("message {0} is complete; no further chunks are accepted")]
    UploadComplete(MessageId),
    /// A chunk number outside 2..=total.
    #[error("chunk {chunk} is out of range for message {id} of {total} chunks; upload chunks 2..={total} after the first")]
    ChunkOutOfRange {
        /// The message.
        id: MessageId,
        /// The chunk number given.
        chunk: u32,
        /// The message's chunk count.
        total: u32,
    },
    /// The operation needs another status.
    #[error("message {id} is {status}; {what}")]
    WrongStatus {
        /// The message.
        id: MessageId,
        /// Its status.
        status: MessageStatus,
        /// What was attempted and why it cannot be.
        what: &'static str,
    },
    /// The idempotency key is unusable.
    #[error("idempotency key is invalid: {0}; use 1 to 128 visible ASCII characters")]
    IdempotencyKey(String),
    /// A configured limit would be exceeded.
    #[error("{what} limit of {limit} reached; {hint}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: u64,
        /// What to do.
        hint: &'static str,
    },
    /// A logged event could not be applied (during replay: corruption or a bug).
    #[error("event cannot be applied: {0}")]
    Replay(String),
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "MSG_NOT_FOUND",
            StoreError::NotRecipient { .. } => "MSG_NOT_RECIPIENT",
            StoreError::NotSender { .. } => "MSG_NOT_SENDER",
            StoreError::AlreadyExists(_) => "MSG_ALREADY_EXISTS",
            StoreError::Envelope(e) => e.code(),
            StoreError::UploadComplete(_) => "MSG_UPLOAD_COMPLETE",
            StoreError::ChunkOutOfRange { .. } => "MSG_CHUNK_OUT_OF_RANGE",
            StoreError::WrongStatus { .. } => "MSG_WRONG_STATUS",
            StoreError::IdempotencyKey(_) => "MSG_IDEMPOTENCY_KEY_INVALID",
            StoreError::Limit { .. } => "MSG_LIMIT",
            StoreError::Replay(_) => "MSG_REPLAY",
        }
    }
}
