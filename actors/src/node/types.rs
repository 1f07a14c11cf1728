//! Requests and answers of the node's operations (what transports expose).

use std::sync::Arc;

use bytes::Bytes;
use spine_core::envelope::Envelope;
use spine_core::ids::{LocalId, MailboxId, MessageId, WorkflowId};
use spine_core::message::{ChunkLoc, MessageState, MessageStatus, SendHeader};
use spine_core::time::Timestamp;

/// A new message (its first chunk): who sends it, what the sender says
/// about it, and chunk 1.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// The authenticated sender.
    pub sender: MailboxId,
    /// Recipient, workflow, optional metadata, chunk count, idempotency key.
    pub header: SendHeader,
    /// Chunk 1.
    pub body: Bytes,
}

impl SendRequest {
    /// A single-chunk DATA message with no optional metadata.
    pub fn simple(
        sender: MailboxId,
        recipient: MailboxId,
        workflow_id: WorkflowId,
        body: Bytes,
    ) -> SendRequest {
        SendRequest {
            sender,
            header: SendHeader::simple(recipient, workflow_id),
            body,
        }
    }
}

/// The answer to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    /// The message's id.
    pub message_id: MessageId,
    /// True when an earlier send with the same idempotency key is answered.
    pub duplicate: bool,
    /// Uploading (more chunks expected) or accepted.
    pub status: MessageStatus,
}

/// The answer to a chunk upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOutcome {
    /// True once every chunk has arrived (the message is accepted).
    pub complete: bool,
}

/// What the node knows of a message, shared without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// The envelope.
    pub envelope: Arc<Envelope>,
    /// Current status.
    pub status: MessageStatus,
    /// Inbox order key.
    pub accepted_seq: Option<u64>,
    /// When acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// When expired.
    pub expired_at: Option<Timestamp>,
    /// Chunk locations (index 0 is chunk 1).
    pub chunks: Vec<Option<ChunkLoc>>,
}

impl From<&MessageState> for MessageView {
    fn from(m: &MessageState) -> MessageView {
        MessageView {
            envelope: Arc::clone(&m.envelope),
            status: m.status,
            accepted_seq: m.accepted_seq,
            acknowledged_at: m.acknowledged_at,
            expired_at: m.expired_at,
            chunks: m.chunks.clone(),
        }
    }
}

/// One page of an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage {
    /// Messages in acceptance order.
    pub messages: Vec<MessageView>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<u64>,
    /// Messages waiting in the whole inbox (before filtering).
    pub total: usize,
}

/// A downloaded chunk.
#[derive(Debug, Clone)]
pub struct Download {
    /// The message.
    pub view: MessageView,
    /// Which chunk (1-based).
    pub chunk_no: u32,
    /// Its bytes.
    pub body: Bytes,
}

/// A REPORT to place in a mailbox's inbox, as mesh-sandbox's
/// `POST /messageexchange/admin/report` does: from the mailbox itself (as
/// the core's non-delivery reports are from the mailbox they are about),
/// with no content. Fields are checked like any envelope's (lengths,
/// control characters) before anything is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectReport {
    /// Whose inbox it goes to (also its sender); must be in the directory.
    pub recipient: MailboxId,
    /// MESH status code (`Mex-StatusCode`), e.g. `"02"`.
    pub code: String,
    /// Human-readable description (`Mex-StatusDescription`).
    pub description: String,
    /// The event reported on (`Mex-StatusEvent`); [`InjectReport::new`]
    /// sets [`InjectReport::DEFAULT_EVENT`].
    pub event: String,
    /// The workflow it is about.
    pub workflow_id: WorkflowId,
    /// `Mex-Subject`.
    pub subject: Option<String>,
    /// `Mex-LocalID`.
    pub local_id: Option<LocalId>,
    /// `Mex-FileName`.
    pub file_name: Option<String>,
    /// The message it reports on.
    pub linked_message_id: Option<MessageId>,
}

impl InjectReport {
    /// The event when none is given.
    pub const DEFAULT_EVENT: &'static str = "SEND";

    /// A report with event `SEND` and no optional fields.
    pub fn new(
        recipient: MailboxId,
        workflow_id: WorkflowId,
        code: impl Into<String>,
        description: impl Into<String>,
    ) -> InjectReport {
        InjectReport {
            recipient,
            code: code.into(),
            description: description.into(),
            event: Self::DEFAULT_EVENT.to_string(),
            workflow_id,
            subject: None,
            local_id: None,
            file_name: None,
            linked_message_id: None,
        }
    }
}

/// Largest body a [`Notification`] carries: a subscriber's buffer holds
/// at most `subscriber_buffer` notifications, so at most that many times
/// this in bodies.
pub const MAX_NOTIFICATION_BODY_BYTES: usize = 64 * 1024;

/// A message newly accepted into a subscribed inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The message.
    pub envelope: Arc<Envelope>,
    /// Inbox order key.
    pub order: u64,
    /// Its whole body (the same bytes that went to the log, uncopied) when
    /// it is a single chunk of at most [`MAX_NOTIFICATION_BODY_BYTES`] and
    /// was at hand; otherwise `None`, and a subscriber that wants it
    /// downloads it.
    pub body: Option<Bytes>,
    /// Where that body lies when it was not at hand (a message refilled
    /// to a subscriber that fell behind), so a pusher can read it instead
    /// of the subscriber downloading it.
    pub body_at: Option<ChunkLoc>,
}
