//! The in-memory state of one message.

use std::sync::Arc;

use crate::envelope::Envelope;
use crate::time::Timestamp;

use super::event::{ChunkLoc, MessageSnapshot};
use super::status::MessageStatus;

/// Everything the node knows about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    /// The envelope, shared with readers without copying.
    pub envelope: Arc<Envelope>,
    /// The sender's idempotency key, if it gave one.
    pub idempotency_key: Option<String>,
    /// Current status.
    pub status: MessageStatus,
    /// Sequence number of the record that created or last snapshotted it.
    pub origin: u64,
    /// Segment holding that record.
    pub origin_segment: u64,
    /// Order key in the recipient's inbox: the sequence number at which it
    /// was accepted (kept across compaction so order never changes).
    pub accepted_seq: Option<u64>,
    /// When acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// When expired.
    pub expired_at: Option<Timestamp>,
    /// Where each chunk's bytes are (index 0 is chunk 1); `None` for chunks
    /// not yet uploaded, and all dropped once acknowledged.
    pub chunks: Vec<Option<ChunkLoc>>,
}

impl MessageState {
    /// Segments this message needs for replay: its origin and its chunks.
    pub fn segments(&self) -> Vec<u64> {
        let mut segs: Vec<u64> = self.chunks.iter().flatten().map(|c| c.segment).collect();
        segs.push(self.origin_segment);
        segs.sort_unstable();
        segs.dedup();
        segs
    }

    /// Bytes of message content still referenced.
    pub fn payload_bytes(&self) -> u64 {
        self.chunks.iter().flatten().map(|c| u64::from(c.len)).sum()
    }

    /// Chunks received so far.
    pub fn chunks_received(&self) -> usize {
        self.chunks.iter().filter(|c| c.is_some()).count()
    }

    /// Total size of the message content when every chunk is present.
    pub fn size(&self) -> u64 {
        self.payload_bytes()
    }

    /// The state as a compaction snapshot.
    pub fn snapshot(&self) -> MessageSnapshot {
        MessageSnapshot {
            envelope: (*self.envelope).clone(),
            idempotency_key: self.idempotency_key.clone(),
            status: self.status,
            accepted_seq: self.accepted_seq,
            acknowledged_at: self.acknowledged_at,
            expired_at: self.expired_at,
            chunks: self.chunks.clone(),
        }
    }
}
