//! Segment files: naming and the fixed header.
//!
//! ```text
//! offset size field
//!      0    8 magic "SPINEWAL"
//!      8    4 format version (u32 LE), currently 1
//!     12    8 sequence number of the segment's first record (u64 LE)
//!     20    8 reserved, zero
//!     28    4 masked crc32c of bytes 0..28
//! ```
//!
//! The name (`{first_seq:020}.wal`) and the header must agree; zero-padding
//! makes lexical order equal numeric order so a directory listing sorts.

use super::record::mask_crc;

/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Segment magic bytes.
pub const MAGIC: &[u8; 8] = b"SPINEWAL";
/// Current on-disk format version.
pub const FORMAT_VERSION: u32 = 1;
const SUFFIX: &str = ".wal";

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the first record stored in this segment.
    pub first_seq: u64,
}

/// Why a segment header is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The file is shorter than a header.
    Short,
    /// The magic bytes are wrong: not a Spine log segment.
    BadMagic,
    /// The header checksum does not match.
    BadChecksum,
    /// A version this build cannot read.
    UnsupportedVersion(u32),
}

impl HeaderProblem {
    /// A human description.
    pub fn describe(self) -> String {
        match self {
            HeaderProblem::Short => "file is shorter than a segment header".into(),
            HeaderProblem::BadMagic => "not a Spine WAL segment (bad magic)".into(),
            HeaderProblem::BadChecksum => "segment header checksum mismatch".into(),
            HeaderProblem::UnsupportedVersion(v) => {
                format!("segment format version {v} is not supported by this build (expected {FORMAT_VERSION})")
            }
        }
    }
}

impl SegmentHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.first_seq.to_le_bytes());
        let crc = mask_crc(crc32c::crc32c(&out[0..28]));
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and verifies a header from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        let Some(head) = buf.get(..SEGMENT_HEADER_LEN) else {
            return Err(HeaderProblem::Short);
        };
        if &head[0..8] != MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&head[28..32]);
        if mask_crc(crc32c::crc32c(&head[0..28])) != u32::from_le_bytes(crc) {
            return Err(HeaderProblem::BadChecksum);
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&head[8..12]);
        let version = u32::from_le_bytes(v);
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::UnsupportedVersion(version));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&head[12..20]);
        Ok(SegmentHeader {
            first_seq: u64::from_le_bytes(seq),
        })
    }
}

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SUFFIX}")
}

/// Parses a segment file name; `None` for files that are not segments.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = SegmentHeader { first_seq: 42 };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        assert_eq!(
            SegmentHeader::decode(&bytes[..10]),
            Err(HeaderProblem::Short)
        );
        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::BadMagic));
        let mut bad = bytes;
        bad[13] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::BadChecksum));
    }

    #[test]
    fn names_sort_numerically_and_parse_back() {
        assert_eq!(segment_name(1), "00000000000000000001.wal");
        assert_eq!(
            parse_segment_name(&segment_name(987_654_321)),
            Some(987_654_321)
        );
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("1.wal"), None);
        assert_eq!(parse_segment_name("0000000000000000000a.wal"), None);
        assert_eq!(parse_segment_name("00000000000000000001.tmp"), None);
    }
}
