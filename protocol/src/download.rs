//! Streamed downloads: [`DownloadData`] (one `DOWNLOAD_DATA` frame),
//! [`split_download`] (server side: one chunk into pieces) and
//! [`DownloadAssembler`] (client side: pieces back into the chunk).
//!
//! Invariants and why:
//! - The pieces of one answer tile `0..total_len` in order with no gap or
//!   overlap; the first (offset 0) alone carries the envelope and the last
//!   alone carries END. A piece is a `Bytes` slice of the stored chunk, so
//!   splitting copies nothing, and a chunk that fits in one piece is handed
//!   to the client without a copy too.
//! - Streaming lets a server bound every frame by a piece size of its
//!   choosing, so one large download does not hold up other answers on a
//!   pipelined connection for longer than one piece.
//! - The assembler checks `total_len` against its own bound before
//!   allocating, so a server cannot make a client allocate more than it
//!   agreed to.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use spine_core::envelope::{Envelope, MAX_CHUNKS};

use crate::error::ProtocolError;
use crate::frame::FrameKind;
use crate::limits::check_range;
use crate::response::Response;

/// One piece of a downloaded chunk (a `DOWNLOAD_DATA` frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadData {
    /// The message's envelope: present on the first piece (offset 0) only.
    pub envelope: Option<Arc<Envelope>>,
    /// Which chunk (1-based).
    pub chunk_no: u32,
    /// The whole chunk's length in bytes.
    pub total_len: u64,
    /// Where this piece starts within the chunk.
    pub offset: u64,
    /// This piece's bytes.
    pub body: Bytes,
}

impl DownloadData {
    /// Whether this is the last piece (it reaches `total_len`); the frame
    /// carries the END flag exactly then.
    pub fn is_end(&self) -> bool {
        self.offset.checked_add(self.body.len() as u64) == Some(self.total_len)
    }

    /// Checks the piece's own consistency.
    pub(crate) fn validate(&self) -> Result<(), ProtocolError> {
        check_range(
            "chunk_no",
            u64::from(self.chunk_no),
            1,
            u64::from(MAX_CHUNKS),
        )?;
        let inconsistent = |why: String| {
            Err(ProtocolError::Inconsistent {
                kind: FrameKind::DownloadData,
                why,
            })
        };
        let len = self.body.len() as u64;
        match self.offset.checked_add(len) {
            Some(end) if end <= self.total_len => {}
            _ => {
                return inconsistent(format!(
                    "a {len}-byte piece at offset {} runs past the chunk's {} bytes",
                    self.offset, self.total_len
                ))
            }
        }
        if self.envelope.is_some() != (self.offset == 0) {
            return inconsistent(format!(
                "the envelope must come with the first piece (offset 0) only, but the piece at \
                 offset {} {} one",
                self.offset,
                if self.envelope.is_some() {
                    "has"
                } else {
                    "lacks"
                }
            ));
        }
        Ok(())
    }
}

/// Splits one chunk into `DOWNLOAD_DATA` responses of at most `piece_bytes`
/// payload each (at least one, even for an empty chunk). No bytes are
/// copied. Use a `piece_bytes` within the payload limit.
pub fn split_download(
    envelope: Arc<Envelope>,
    chunk_no: u32,
    body: Bytes,
    piece_bytes: usize,
) -> DownloadPieces {
    DownloadPieces {
        envelope: Some(envelope),
        chunk_no,
        total_len: body.len() as u64,
        body,
        offset: 0,
        piece_bytes: piece_bytes.max(1),
        done: false,
    }
}

/// The iterator [`split_download`] returns.
#[derive(Clone, Debug)]
pub struct DownloadPieces {
    envelope: Option<Arc<Envelope>>,
    chunk_no: u32,
    total_len: u64,
    body: Bytes,
    offset: u64,
    piece_bytes: usize,
    done: bool,
}

impl Iterator for DownloadPieces {
    type Item = Response;

    fn next(&mut self) -> Option<Response> {
        if self.done {
            return None;
        }
        let take = self.piece_bytes.min(self.body.len());
        let piece = self.body.split_to(take);
        let data = DownloadData {
            envelope: self.envelope.take(),
            chunk_no: self.chunk_no,
            total_len: self.total_len,
            offset: self.offset,
            body: piece,
        };
        self.offset += take as u64;
        self.done = self.body.is_empty();
        Some(Response::DownloadData(data))
    }
}

/// A whole downloaded chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadedChunk {
    /// The message's envelope.
    pub envelope: Arc<Envelope>,
    /// Which chunk.
    pub chunk_no: u32,
    /// Its bytes.
    pub body: Bytes,
}

#[derive(Debug)]
enum Assembly {
    Waiting,
    Receiving {
        envelope: Arc<Envelope>,
        chunk_no: u32,
        total_len: u64,
        parts: BytesMut,
    },
    Done,
}

/// Reassembles the pieces of one download answer (one per request id).
#[derive(Debug)]
pub struct DownloadAssembler {
    max_total_bytes: u64,
    state: Assembly,
}

impl DownloadAssembler {
    /// An assembler that refuses chunks longer than `max_total_bytes`.
    pub fn new(max_total_bytes: u64) -> DownloadAssembler {
        DownloadAssembler {
            max_total_bytes,
            state: Assembly::Waiting,
        }
    }

    /// Adds the next piece; returns the whole chunk once its last piece has
    /// arrived.
    pub fn push(&mut self, piece: DownloadData) -> Result<Option<DownloadedChunk>, ProtocolError> {
        let sequence = |why: String| Err(ProtocolError::DownloadSequence { why });
        piece.validate()?;
        match std::mem::replace(&mut self.state, Assembly::Done) {
            Assembly::Waiting => {
                let Some(envelope) = piece.envelope.clone() else {
                    return sequence(format!(
                        "the first piece starts at offset {}, not 0",
                        piece.offset
                    ));
                };
                if piece.total_len > self.max_total_bytes {
                    return sequence(format!(
                        "the chunk is {} bytes, over this client's limit of {}",
                        piece.total_len, self.max_total_bytes
                    ));
                }
                if piece.is_end() {
                    return Ok(Some(DownloadedChunk {
                        envelope,
                        chunk_no: piece.chunk_no,
                        body: piece.body,
                    }));
                }
                // total_len <= max_total_bytes, a bound the caller chose.
                let capacity = usize::try_from(piece.total_len).unwrap_or(usize::MAX);
                let mut parts = BytesMut::with_capacity(capacity);
                parts.extend_from_slice(&piece.body);
                self.state = Assembly::Receiving {
                    envelope,
                    chunk_no: piece.chunk_no,
                    total_len: piece.total_len,
                    parts,
                };
                Ok(None)
            }
            Assembly::Receiving {
                envelope,
                chunk_no,
                total_len,
                mut parts,
            } => {
                let received = parts.len() as u64;
                if piece.offset != received
                    || piece.chunk_no != chunk_no
                    || piece.total_len != total_len
                {
                    return sequence(format!(
                        "expected chunk {chunk_no} of {total_len} bytes at offset {received}, \
                         got chunk {} of {} bytes at offset {}",
                        piece.chunk_no, piece.total_len, piece.offset
                    ));
                }
                parts.extend_from_slice(&piece.body);
                if piece.is_end() {
                    return Ok(Some(DownloadedChunk {
                        envelope,
                        chunk_no,
                        body: parts.freeze(),
                    }));
                }
                self.state = Assembly::Receiving {
                    envelope,
                    chunk_no,
                    total_len,
                    parts,
                };
                Ok(None)
            }
            Assembly::Done => sequence("a piece arrived after the last one".into()),
        }
    }
}
