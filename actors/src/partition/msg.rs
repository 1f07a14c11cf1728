//! Messages a partition actor handles.

use std::sync::Arc;

use bytes::Bytes;
use spine_core::envelope::Envelope;
use spine_core::ids::{LocalId, MailboxId, MessageId};
use spine_core::message::{ChunkLoc, Event, WorkflowFilter};
use spine_core::time::Timestamp;
use spine_core::wal::RecordLocation;
use tokio::sync::{mpsc, oneshot};

use crate::node::error::RequestError;

/// A durable event another partition logged for a message owned here.
#[derive(Debug, Clone)]
pub struct Foreign {
    /// Its sequence number.
    pub seq: u64,
    /// Its record location.
    pub location: RecordLocation,
    /// The event.
    pub event: Event,
    /// Where its body is.
    pub body_loc: ChunkLoc,
    /// The body a notification of it carries, if any.
    pub inline: Option<Bytes>,
}
use crate::node::types::{ChunkOutcome, InboxPage, MessageView, Notification, SendOutcome};
use crate::wal::AppendResult;

/// A reply channel.
pub type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

/// How far one partition's reset has come (the answer to
/// [`PartitionMsg::Reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetProgress {
    /// Messages this step removed (durably: answered once applied).
    pub removed: usize,
    /// Continue after this message id.
    pub after: Option<MessageId>,
    /// Nothing more to remove in this partition.
    pub done: bool,
}

/// One send of a [`PartitionMsg::SendMany`].
#[derive(Debug)]
pub struct SendItem {
    /// The validated envelope, id assigned.
    pub envelope: Arc<Envelope>,
    /// The sender's idempotency key.
    pub idempotency_key: Option<String>,
    /// Chunk 1.
    pub body: Bytes,
    /// Where to answer.
    pub reply: Reply<SendOutcome>,
}

/// What a partition actor is asked to do.
pub enum PartitionMsg {
    /// Create a message (its first chunk).
    Send {
        /// The validated envelope, id assigned.
        envelope: Arc<Envelope>,
        /// The sender's idempotency key.
        idempotency_key: Option<String>,
        /// Chunk 1.
        body: Bytes,
        /// Where to answer.
        reply: Reply<SendOutcome>,
    },
    /// Several sends for this partition (a `SEND_BATCH`), each handled
    /// exactly as a `Send` of its own.
    SendMany(Vec<SendItem>),
    /// Several acknowledgements by `mailbox` (an `ACKNOWLEDGE_BATCH`), each
    /// handled exactly as an `Ack` of its own.
    AckMany {
        /// The caller (must be the recipient).
        mailbox: MailboxId,
        /// The messages and where to answer each.
        items: Vec<(MessageId, Reply<()>)>,
    },
    /// Upload chunk `chunk_no` of an uploading message.
    Chunk {
        /// The caller (must be the sender).
        sender: MailboxId,
        /// The message.
        id: MessageId,
        /// 1-based chunk number.
        chunk_no: u32,
        /// The bytes.
        body: Bytes,
        /// Where to answer.
        reply: Reply<ChunkOutcome>,
    },
    /// Acknowledge a message (idempotent).
    Ack {
        /// The caller (must be the recipient).
        mailbox: MailboxId,
        /// The message.
        id: MessageId,
        /// Where to answer.
        reply: Reply<()>,
    },
    /// List an inbox page.
    List {
        /// Whose inbox.
        mailbox: MailboxId,
        /// Optional workflow filter.
        filter: Option<WorkflowFilter>,
        /// Continue after this order key.
        after: Option<u64>,
        /// Page size.
        limit: usize,
        /// Where to answer.
        reply: Reply<InboxPage>,
    },
    /// Look a message up.
    Get {
        /// The message.
        id: MessageId,
        /// Where to answer.
        reply: Reply<Option<MessageView>>,
    },
    /// Messages `sender` sent with local id `local_id`, any status.
    TrackLocal {
        /// The sender.
        sender: MailboxId,
        /// The local id.
        local_id: LocalId,
        /// Where to answer.
        reply: Reply<Vec<MessageView>>,
    },
    /// One bounded step of a reset: purge the messages after `after` whose
    /// sender or recipient is `mailbox` (every message when `None`).
    Reset {
        /// Whose messages; `None`: all.
        mailbox: Option<MailboxId>,
        /// Continue after this message id.
        after: Option<MessageId>,
        /// Where to answer (once the step's purges are durable and applied).
        reply: Reply<ResetProgress>,
    },
    /// Expire and purge what is due at `now`; answers how many events were logged.
    Expire {
        /// The current time.
        now: Timestamp,
        /// Where to answer (optional).
        reply: Option<Reply<usize>>,
    },
    /// Apply an event another partition logged for a message owned here
    /// (the non-delivery report of an expired message).
    ApplyForeign(Box<Foreign>),
    /// Push newly accepted messages for `mailbox` into `tx`.
    Subscribe {
        /// The mailbox.
        mailbox: MailboxId,
        /// Where to push.
        tx: mpsc::Sender<Notification>,
    },
    /// Compaction: carry forward up to `limit` of the messages that still
    /// need a segment at or below `upto_segment`, logged as one group;
    /// answers what it did and what is left (see [`CarryProgress`]).
    Carry {
        /// The newest segment to free.
        upto_segment: u64,
        /// Most messages to carry in this request: compaction asks in
        /// slices so the partition serves sends and acknowledgements in
        /// between instead of stalling behind a whole segment's carries.
        limit: usize,
        /// Where to answer.
        reply: Reply<CarryProgress>,
    },
    /// Live message bytes held by this partition.
    LiveBytes {
        /// Where to answer.
        reply: Reply<u64>,
    },
    /// Drain the ingress queue (requests from the node handle).
    Drain,
    /// A logged batch became durable (or failed): apply and answer.
    Durable {
        /// Which pending operation.
        token: u64,
        /// The outcome.
        result: AppendResult,
    },
    /// Fault injection: panic inside the handler.
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
}

/// What one [`PartitionMsg::Carry`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarryProgress {
    /// Carries submitted by this request.
    pub submitted: usize,
    /// Messages still needing the segments whose earlier carry (or other
    /// change) is not yet durable.
    pub busy: usize,
    /// Whether it stopped at `limit` with more to carry.
    pub more: bool,
}

impl CarryProgress {
    /// Messages that still hold the segments: 0 means they can go.
    pub fn left(&self) -> usize {
        self.submitted + self.busy
    }
}

impl std::fmt::Debug for PartitionMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            PartitionMsg::Send { .. } => "Send",
            PartitionMsg::SendMany(_) => "SendMany",
            PartitionMsg::AckMany { .. } => "AckMany",
            PartitionMsg::Chunk { .. } => "Chunk",
            PartitionMsg::Ack { .. } => "Ack",
            PartitionMsg::List { .. } => "List",
            PartitionMsg::Get { .. } => "Get",
            PartitionMsg::TrackLocal { .. } => "TrackLocal",
            PartitionMsg::Reset { .. } => "Reset",
            PartitionMsg::Expire { .. } => "Expire",
            PartitionMsg::ApplyForeign(_) => "ApplyForeign",
            PartitionMsg::Subscribe { .. } => "Subscribe",
            PartitionMsg::Durable { .. } => "Durable",
            PartitionMsg::Carry { .. } => "Carry",
            PartitionMsg::Drain => "Drain",
            PartitionMsg::LiveBytes { .. } => "LiveBytes",
            #[cfg(any(test, feature = "fault-injection"))]
            PartitionMsg::Panic => "Panic",
        };
        f.write_str(name)
    }
}

impl PartitionMsg {
    /// The existing message this request changes, if any: such requests
    /// wait while an earlier change to the same message is in flight.
    pub(crate) fn touches(&self) -> Option<&MessageId> {
        match self {
            PartitionMsg::Chunk { id, .. } | PartitionMsg::Ack { id, .. } => Some(id),
            _ => None,
        }
    }
}
