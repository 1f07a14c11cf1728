//! The meta section: the rkyv-archived structured part of each frame kind,
//! and the only code that turns meta bytes into values.
//!
//! Invariants and why:
//! - The archived structs here hold plain strings and numbers, never the
//!   validated id types: an archive can hold any bytes, so nothing read from
//!   one is called a `MailboxId` (or any other id) until it has been parsed
//!   by that id's own parser (in `request.rs`/`response.rs`).
//! - [`decode`] copies the meta into an aligned buffer (rkyv needs the
//!   archive's root aligned; the receive buffer gives no such guarantee),
//!   validates it with bytecheck, and only then deserialises. Unvalidated
//!   archived bytes are never read. The copy is bounded by
//!   [`crate::Limits::max_meta_bytes`].
//! - Envelopes travel as nested `Envelope::to_rkyv_bytes` archives and are
//!   decoded by `Envelope::from_rkyv_bytes`, which re-parses every id and
//!   runs `Envelope::validate`: the same gate the write-ahead log uses.
//! - The archive format is rkyv 0.8's default (little-endian, aligned,
//!   32-bit relative pointers) as the workspace configures it; golden-byte
//!   tests in `src/tests/golden.rs` fail if it ever changes.
//! - Field order within these structs is part of the wire format: fields
//!   are never reordered or removed within a protocol version.

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::frame::FrameKind;

/// Serialises a meta struct.
pub(crate) fn encode<T>(kind: FrameKind, value: &T) -> Result<AlignedVec, ProtocolError>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    rkyv::to_bytes::<rancor::Error>(value).map_err(|e| ProtocolError::Encode {
        kind,
        reason: e.to_string(),
    })
}

/// Validates (bytecheck) and deserialises a meta struct from possibly
/// unaligned bytes.
pub(crate) fn decode<T>(kind: FrameKind, bytes: &[u8]) -> Result<T, ProtocolError>
where
    T: Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, HighDeserializer<rancor::Error>>,
{
    let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rancor::Error>(&aligned).map_err(|e| ProtocolError::BadMeta {
        kind,
        len: bytes.len() as u64,
        reason: e.to_string(),
    })
}

/// `HELLO`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct HelloMeta {
    pub client_name: String,
    pub mailbox: String,
    pub password: String,
}

/// The per-message part of `SEND` and of each `SEND_BATCH` item.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendHeaderMeta {
    pub recipient: String,
    pub workflow_id: String,
    pub subject: Option<String>,
    pub local_id: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub compressed: bool,
    pub encrypted: bool,
    pub checksum: Option<String>,
    pub partner_id: Option<String>,
    pub total_chunks: u32,
    pub idempotency_key: Option<String>,
}

/// One `SEND_BATCH` item: its header and the length of its body in the
/// payload (bodies follow each other in item order).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchItemMeta {
    pub header: SendHeaderMeta,
    pub body_len: u32,
}

/// `SEND_BATCH`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendBatchMeta {
    pub items: Vec<BatchItemMeta>,
}

/// `SEND_CHUNK` and `DOWNLOAD`: a message and a chunk number.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkRefMeta {
    pub message_id: String,
    pub chunk_no: u32,
}

/// `ACKNOWLEDGE` and `TRACK`: a message.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageRefMeta {
    pub message_id: String,
}

/// `ACKNOWLEDGE_BATCH`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AckBatchMeta {
    pub message_ids: Vec<String>,
}

/// `ACK_BATCH_OK`: per message, `None` when acknowledged.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AckBatchOkMeta {
    pub errors: Vec<Option<WireErrorMeta>>,
}

/// `LIST_INBOX`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListInboxMeta {
    pub workflow_filter: Option<String>,
    pub max_results: u32,
    pub after: Option<u64>,
}

/// `LOOKUP`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct LookupMeta {
    pub ods_code: Option<String>,
    pub workflow_id: String,
}

/// `SUBSCRIBE`, `CREDIT` and `SUBSCRIBED`: a credit count.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreditMeta {
    pub credit: u32,
}

/// The limits in `HELLO_OK`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerLimitsMeta {
    pub max_payload_bytes: u32,
    pub max_meta_bytes: u32,
    pub max_batch: u32,
    pub max_inbox_page: u32,
    pub max_credit: u32,
}

/// `HELLO_OK`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct HelloOkMeta {
    pub mailbox: String,
    pub server_name: String,
    pub limits: ServerLimitsMeta,
}

/// `SEND_OK`, and each successful `SEND_BATCH_OK` item.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendOkMeta {
    pub message_id: String,
    pub duplicate: bool,
    pub status: u8,
}

/// `ERROR`, and each failed `SEND_BATCH_OK` item.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireErrorMeta {
    pub code: u16,
    pub name: String,
    pub message: String,
}

/// One `SEND_BATCH_OK` item.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchResultMeta {
    Ok(SendOkMeta),
    Err(WireErrorMeta),
}

/// `SEND_BATCH_OK`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendBatchOkMeta {
    pub items: Vec<BatchResultMeta>,
}

/// `CHUNK_OK`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkOkMeta {
    pub complete: bool,
}

/// One `INBOX_PAGE` entry.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct InboxEntryMeta {
    pub message_id: String,
    pub message_type: u8,
    pub sender: String,
    pub workflow_id: String,
    pub total_chunks: u32,
    pub order: u64,
    pub created_at: u64,
    pub expires_at: u64,
}

/// `INBOX_PAGE`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct InboxPageMeta {
    pub messages: Vec<InboxEntryMeta>,
    pub next: Option<u64>,
    pub total: u64,
}

/// `DOWNLOAD_DATA`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct DownloadDataMeta {
    pub envelope: Option<Vec<u8>>,
    pub chunk_no: u32,
    pub total_len: u64,
    pub offset: u64,
}

/// `TRACK_INFO`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackInfoMeta {
    pub envelope: Vec<u8>,
    pub status: u8,
    pub order: Option<u64>,
    pub chunks_received: u32,
    pub acknowledged_at: Option<u64>,
    pub expired_at: Option<u64>,
}

/// One `LOOKUP_RESULT` entry.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct LookupEntryMeta {
    pub mailbox_id: String,
    pub mailbox_name: String,
    pub ods_code: String,
}

/// `LOOKUP_RESULT`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct LookupResultMeta {
    pub entries: Vec<LookupEntryMeta>,
}

/// `PUSH`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushMeta {
    pub envelope: Vec<u8>,
    pub order: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_from_unaligned_bytes() {
        let value = HelloMeta {
            client_name: "client".into(),
            mailbox: "X26ABC1".into(),
            password: "a much longer password than the inline limit".into(),
        };
        let bytes = encode(FrameKind::Hello, &value).unwrap();
        let mut shifted = vec![0u8; 3];
        shifted.extend_from_slice(&bytes);
        let back: HelloMeta = decode(FrameKind::Hello, &shifted[3..]).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn garbage_is_refused_by_bytecheck() {
        let e = decode::<HelloMeta>(FrameKind::Hello, &[]).unwrap_err();
        assert!(matches!(e, ProtocolError::BadMeta { .. }), "{e}");
        // Out-of-line strings whose pointers leave the buffer.
        let e = decode::<HelloMeta>(FrameKind::Hello, &[0x80; 24]).unwrap_err();
        assert!(matches!(e, ProtocolError::BadMeta { .. }), "{e}");
        // 0xFF bytes are empty inline strings to rkyv: structurally sound, so
        // refusing them is the id parsers' job, not bytecheck's.
        let empty = decode::<HelloMeta>(FrameKind::Hello, &[0xFF; 24]).unwrap();
        assert!(empty.mailbox.is_empty());
        // A batch-result tag that names no variant.
        let ok = encode(
            FrameKind::SendBatchOk,
            &SendBatchOkMeta {
                items: vec![BatchResultMeta::Ok(SendOkMeta {
                    message_id: "20200601122152994285_D59900".into(),
                    duplicate: false,
                    status: 1,
                })],
            },
        )
        .unwrap();
        for i in 0..ok.len() {
            let mut b = ok.to_vec();
            b[i] ^= 0xFF;
            let _ = decode::<SendBatchOkMeta>(FrameKind::SendBatchOk, &b);
        }
    }
}
