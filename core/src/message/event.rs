//! Message events: what the log records, and how they are framed.
//!
//! Every state change of a message is one [`Event`], logged as one WAL record
//! whose kind byte is the event's kind and whose payload is
//! `[u32 LE head length][head: rkyv-archived Event][body]`. The body is the
//! message bytes for `Create`, `Chunk` and `CarryChunk`, empty otherwise, so
//! message bytes are written straight from the caller's `Bytes` and read
//! back by location without ever being re-encoded.
//!
//! Decoding validates the archive (bytecheck), then re-parses every id and
//! re-validates every envelope: archived bytes are never trusted as typed
//! values until checked.
//!
//! `origin` on an event is the sequence number of the record that created
//! (or last snapshotted) the message it refers to. Replay uses it to tell an
//! event whose message was compacted away (origin before the log's start:
//! ignore) from an event for a message that should exist but does not
//! (corruption).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::envelope::Envelope;
use crate::ids::MessageId;
use crate::time::Timestamp;
use crate::wal::{PendingRecord, RecordLocation};

use super::arc_as_box::ArcAsBox;
use super::status::MessageStatus;

/// Kind byte of [`Event::Create`].
pub const KIND_CREATE: u8 = 1;
/// Kind byte of [`Event::Chunk`].
pub const KIND_CHUNK: u8 = 2;
/// Kind byte of [`Event::Acknowledge`].
pub const KIND_ACKNOWLEDGE: u8 = 3;
/// Kind byte of [`Event::Expire`].
pub const KIND_EXPIRE: u8 = 4;
/// Kind byte of [`Event::Purge`].
pub const KIND_PURGE: u8 = 5;
/// Kind byte of [`Event::Snapshot`].
pub const KIND_SNAPSHOT: u8 = 6;
/// Kind byte of [`Event::CarryChunk`].
pub const KIND_CARRY_CHUNK: u8 = 7;

/// Human name of a kind byte (for `spine wal inspect`).
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_CREATE => "create",
        KIND_CHUNK => "chunk",
        KIND_ACKNOWLEDGE => "acknowledge",
        KIND_EXPIRE => "expire",
        KIND_PURGE => "purge",
        KIND_SNAPSHOT => "snapshot",
        KIND_CARRY_CHUNK => "carry-chunk",
        crate::services::KIND_SERVICE_STATE => "service-state",
        _ => "unknown",
    }
}

/// Where one chunk's bytes live in the log.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct ChunkLoc {
    /// Segment (its first sequence number).
    pub segment: u64,
    /// Offset of the chunk bytes in the segment file.
    pub offset: u64,
    /// Length of the chunk.
    pub len: u32,
}

impl ChunkLoc {
    /// Where the body of a record lies: `head_len` bytes into the record's
    /// payload at `payload`, `body_len` bytes long.
    pub fn body_of(payload: RecordLocation, head_len: usize, body_len: usize) -> ChunkLoc {
        ChunkLoc {
            segment: payload.segment,
            offset: payload.offset + head_len as u64,
            len: body_len as u32,
        }
    }
}

impl From<ChunkLoc> for RecordLocation {
    fn from(c: ChunkLoc) -> RecordLocation {
        RecordLocation {
            segment: c.segment,
            offset: c.offset,
            len: c.len,
        }
    }
}

/// The full state of one message, written by compaction so that the records
/// that built it can be reclaimed.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct MessageSnapshot {
    /// The envelope.
    pub envelope: Envelope,
    /// The sender's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// Status at snapshot time.
    pub status: MessageStatus,
    /// Order key in the recipient's inbox (sequence of acceptance).
    pub accepted_seq: Option<u64>,
    /// When acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// When expired.
    pub expired_at: Option<Timestamp>,
    /// Chunk locations at snapshot time (index 0 is chunk 1).
    pub chunks: Vec<Option<ChunkLoc>>,
}

/// One logged change to a message.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Event {
    /// A message was sent; the body is chunk 1 (absent for 0-chunk reports).
    Create {
        /// The validated envelope: shared, so the store keeps this very
        /// allocation (it dwarfs every other event); archived as a `Box`.
        #[rkyv(with = ArcAsBox)]
        envelope: Arc<Envelope>,
        /// The sender's idempotency key.
        idempotency_key: Option<String>,
    },
    /// Chunk `chunk_no` (2..=total) of an uploading message; body = bytes.
    Chunk {
        /// The message.
        message_id: MessageId,
        /// See module docs.
        origin: u64,
        /// 1-based chunk number.
        chunk_no: u32,
    },
    /// The recipient acknowledged the message.
    Acknowledge {
        /// The message.
        message_id: MessageId,
        /// See module docs.
        origin: u64,
        /// When.
        at: Timestamp,
    },
    /// The message expired uncollected; `report_id` is the non-delivery
    /// report created in the same batch (none for reports themselves).
    Expire {
        /// The message.
        message_id: MessageId,
        /// See module docs.
        origin: u64,
        /// When.
        at: Timestamp,
        /// The NDR sent to the sender.
        report_id: Option<MessageId>,
    },
    /// The message is forgotten.
    Purge {
        /// The message.
        message_id: MessageId,
        /// See module docs.
        origin: u64,
        /// When.
        at: Timestamp,
    },
    /// Compaction: the message's whole state, superseding earlier events.
    Snapshot(Box<MessageSnapshot>),
    /// Compaction: chunk bytes copied forward (body), right after the
    /// message's snapshot in the same batch.
    CarryChunk {
        /// The message.
        message_id: MessageId,
        /// 1-based chunk number.
        chunk_no: u32,
    },
}

/// Size of the head length prefix.
const HEAD_LEN_PREFIX: usize = 4;

impl Event {
    /// The WAL kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Event::Create { .. } => KIND_CREATE,
            Event::Chunk { .. } => KIND_CHUNK,
            Event::Acknowledge { .. } => KIND_ACKNOWLEDGE,
            Event::Expire { .. } => KIND_EXPIRE,
            Event::Purge { .. } => KIND_PURGE,
            Event::Snapshot(_) => KIND_SNAPSHOT,
            Event::CarryChunk { .. } => KIND_CARRY_CHUNK,
        }
    }

    /// The message this event is about.
    pub fn message_id(&self) -> &MessageId {
        match self {
            Event::Create { envelope, .. } => &envelope.message_id,
            Event::Snapshot(s) => &s.envelope.message_id,
            Event::Chunk { message_id, .. }
            | Event::Acknowledge { message_id, .. }
            | Event::Expire { message_id, .. }
            | Event::Purge { message_id, .. }
            | Event::CarryChunk { message_id, .. } => message_id,
        }
    }

    /// Frames the event and its body as a WAL record.
    pub fn to_record(&self, body: Bytes) -> Result<PendingRecord, String> {
        let archived = rkyv::to_bytes::<rkyv::rancor::Error>(self).map_err(|e| e.to_string())?;
        let len = u32::try_from(archived.len()).map_err(|_| "event head too large".to_string())?;
        let mut head = BytesMut::with_capacity(HEAD_LEN_PREFIX + archived.len());
        head.put_u32_le(len);
        head.extend_from_slice(&archived);
        Ok(PendingRecord {
            kind: self.kind(),
            head: head.freeze(),
            body,
        })
    }

    /// Decodes a WAL record written by [`Event::to_record`]: returns the
    /// validated event, its body, and where the body lives on disk.
    pub fn from_record(
        kind: u8,
        payload: &Bytes,
        location: RecordLocation,
    ) -> Result<(Event, Bytes, ChunkLoc), String> {
        let prefix = payload
            .get(..HEAD_LEN_PREFIX)
            .ok_or("record shorter than its head length")?;
        let mut len = [0u8; HEAD_LEN_PREFIX];
        len.copy_from_slice(prefix);
        let head_len = u32::from_le_bytes(len) as usize;
        let body_start = HEAD_LEN_PREFIX
            .checked_add(head_len)
            .filter(|end| *end <= payload.len())
            .ok_or_else(|| {
                format!(
                    "event head of {head_len} bytes overruns a {}-byte record",
                    payload.len()
                )
            })?;
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(head_len);
        aligned.extend_from_slice(&payload[HEAD_LEN_PREFIX..body_start]);
        let archived = rkyv::access::<ArchivedEvent, rkyv::rancor::Error>(&aligned)
            .map_err(|e| format!("invalid event: {e}"))?;
        let event: Event = rkyv::deserialize::<Event, rkyv::rancor::Error>(archived)
            .map_err(|e| format!("invalid event: {e}"))?;
        let event = event.revalidate()?;
        if event.kind() != kind {
            return Err(format!(
                "record kind {kind} does not match its {} event",
                kind_name(event.kind())
            ));
        }
        let body = payload.slice(body_start..);
        let body_loc = ChunkLoc::body_of(location, body_start, body.len());
        Ok((event, body, body_loc))
    }

    /// Re-checks every id and envelope after decoding from an archive.
    fn revalidate(self) -> Result<Event, String> {
        fn id(m: MessageId) -> Result<MessageId, String> {
            MessageId::parse(m.as_str()).map_err(|e| e.to_string())
        }
        fn env(e: Envelope) -> Result<Envelope, String> {
            let e = e.revalidate_ids().map_err(|e| e.to_string())?;
            e.validate().map_err(|e| e.to_string())?;
            Ok(e)
        }
        Ok(match self {
            Event::Create {
                envelope,
                idempotency_key,
            } => Event::Create {
                envelope: Arc::new(env(Arc::unwrap_or_clone(envelope))?),
                idempotency_key,
            },
            Event::Chunk {
                message_id,
                origin,
                chunk_no,
            } => Event::Chunk {
                message_id: id(message_id)?,
                origin,
                chunk_no,
            },
            Event::Acknowledge {
                message_id,
                origin,
                at,
            } => Event::Acknowledge {
                message_id: id(message_id)?,
                origin,
                at,
            },
            Event::Expire {
                message_id,
                origin,
                at,
                report_id,
            } => Event::Expire {
                message_id: id(message_id)?,
                origin,
                at,
                report_id: report_id.map(id).transpose()?,
            },
            Event::Purge {
                message_id,
                origin,
                at,
            } => Event::Purge {
                message_id: id(message_id)?,
                origin,
                at,
            },
            Event::Snapshot(mut s) => {
                s.envelope = env(s.envelope)?;
                Event::Snapshot(s)
            }
            Event::CarryChunk {
                message_id,
                chunk_no,
            } => Event::CarryChunk {
                message_id: id(message_id)?,
                chunk_no,
            },
        })
    }
}
