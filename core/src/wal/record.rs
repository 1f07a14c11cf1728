//! Record framing.
//!
//! ```text
//! offset size field
//!      0    4 payload length (u32 LE)
//!      4    4 masked crc32c of the 4 length bytes
//!      8    8 sequence number (u64 LE)
//!     16    8 synced-upto watermark (u64 LE): every record with a lower
//!             sequence number was durable when this record was written
//!     24    1 kind (owned by the layer above)
//!     25    3 reserved, must be zero
//!     28    4 masked crc32c over bytes 0..28 and the payload
//!     32    . payload
//! ```
//!
//! The length has its own checksum so that a torn or flipped length can never
//! send recovery skipping over good data or reading past the end: a record is
//! trusted only when both checksums hold.
//!
//! The watermark is what lets recovery tell a torn tail from corruption even
//! when writes are pipelined ahead of syncs: an intact record whose
//! watermark is above a damaged record's sequence number proves the damaged
//! record had been synced (and acknowledged) before. Checksums are masked (as in LevelDB)
//! so that a record embedded in another record's payload does not look valid
//! by accident of crc-of-crc structure.

/// Size of the fixed record header.
pub const RECORD_HEADER_LEN: usize = 32;
const MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a crc so that crcs of data containing crcs stay well distributed.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The decoded fixed part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes.
    pub len: u32,
    /// Global sequence number.
    pub seq: u64,
    /// Every record below this sequence number was durable when this one
    /// was written.
    pub synced_upto: u64,
    /// Record kind, defined by the layer above.
    pub kind: u8,
}

impl RecordHeader {
    /// Encodes the header; the checksum covers the header and the payload
    /// `parts` in order.
    pub fn encode(&self, parts: &[&[u8]]) -> [u8; RECORD_HEADER_LEN] {
        let mut out = [0u8; RECORD_HEADER_LEN];
        let len = self.len.to_le_bytes();
        out[0..4].copy_from_slice(&len);
        out[4..8].copy_from_slice(&mask_crc(crc32c::crc32c(&len)).to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.synced_upto.to_le_bytes());
        out[24] = self.kind;
        let mut crc = crc32c::crc32c(&out[0..28]);
        for part in parts {
            crc = crc32c::crc32c_append(crc, part);
        }
        out[28..32].copy_from_slice(&mask_crc(crc).to_le_bytes());
        out
    }
}

/// Why bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameProblem {
    /// Fewer bytes remain than a header needs.
    ShortHeader,
    /// The length checksum does not match: the length cannot be trusted.
    BadLength,
    /// The length exceeds the configured maximum record size.
    Oversize,
    /// The header says more payload than the file holds.
    ShortPayload,
    /// Reserved bytes are not zero.
    BadReserved,
    /// The record checksum does not match.
    BadChecksum,
}

impl FrameProblem {
    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            FrameProblem::ShortHeader => "file ends inside a record header",
            FrameProblem::BadLength => "record length checksum mismatch",
            FrameProblem::Oversize => "record length exceeds the maximum record size",
            FrameProblem::ShortPayload => "file ends inside a record payload",
            FrameProblem::BadReserved => "reserved header bits are set",
            FrameProblem::BadChecksum => "record checksum mismatch",
        }
    }
}

/// Decodes and verifies the record starting at `buf[0..]`.
///
/// Returns the header; the payload is `buf[RECORD_HEADER_LEN..][..len]`.
pub fn decode(buf: &[u8], max_len: u32) -> Result<RecordHeader, FrameProblem> {
    let Some(head) = buf.get(..RECORD_HEADER_LEN) else {
        return Err(FrameProblem::ShortHeader);
    };
    let len_bytes = le4(head, 0);
    if mask_crc(crc32c::crc32c(&len_bytes)) != u32::from_le_bytes(le4(head, 4)) {
        return Err(FrameProblem::BadLength);
    }
    let len = u32::from_le_bytes(len_bytes);
    if len > max_len {
        return Err(FrameProblem::Oversize);
    }
    let end = RECORD_HEADER_LEN + len as usize;
    let Some(payload) = buf.get(RECORD_HEADER_LEN..end) else {
        return Err(FrameProblem::ShortPayload);
    };
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[0..28]), payload);
    if mask_crc(crc) != u32::from_le_bytes(le4(head, 28)) {
        return Err(FrameProblem::BadChecksum);
    }
    if head[25..28] != [0, 0, 0] {
        return Err(FrameProblem::BadReserved);
    }
    Ok(RecordHeader {
        len,
        seq: le8(head, 8),
        synced_upto: le8(head, 16),
        kind: head[24],
    })
}

fn le8(buf: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(out)
}

fn le4(buf: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&buf[at..at + 4]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(h: &RecordHeader, payload: &[u8]) -> Vec<u8> {
        let mut v = h.encode(&[payload]).to_vec();
        v.extend_from_slice(payload);
        v
    }

    proptest! {
        #[test]
        fn round_trip(seq in 1u64.., behind in 0u64..1000, kind: u8,
                      payload in proptest::collection::vec(any::<u8>(), 0..2048),
                      split in 0usize..2048) {
            let h = RecordHeader { len: payload.len() as u32, seq, synced_upto: seq.saturating_sub(behind), kind };
            let split = split.min(payload.len());
            let (a, b) = payload.split_at(split);
            let mut bytes = h.encode(&[a, b]).to_vec();
            bytes.extend_from_slice(&payload);
            prop_assert_eq!(decode(&bytes, u32::MAX), Ok(h));
        }

        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 0..256),
                                           bit in 0usize..(8 * (RECORD_HEADER_LEN + 256))) {
            let h = RecordHeader { len: payload.len() as u32, seq: 7, synced_upto: 1, kind: 3 };
            let mut bytes = frame(&h, &payload);
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bytes, u32::MAX).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, 1 << 20);
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let h = RecordHeader {
            len: 40,
            seq: 1,
            synced_upto: 1,
            kind: 1,
        };
        let bytes = frame(&h, &[0xAB; 40]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], u32::MAX).is_err(), "cut at {cut}");
        }
        assert!(decode(&bytes, u32::MAX).is_ok());
    }

    #[test]
    fn zeroed_tail_is_not_a_record() {
        assert_eq!(decode(&[0u8; 64], u32::MAX), Err(FrameProblem::BadLength));
    }

    #[test]
    fn oversize_is_refused_before_reading_payload() {
        let h = RecordHeader {
            len: 100,
            seq: 1,
            synced_upto: 1,
            kind: 1,
        };
        let bytes = frame(&h, &[1; 100]);
        assert_eq!(decode(&bytes, 99), Err(FrameProblem::Oversize));
    }
}
