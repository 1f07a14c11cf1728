//! Scanning segments: the logic shared by recovery and `spine wal inspect`.
//!
//! A segment scan classifies the end of a segment as clean, a torn tail, or
//! corruption. Only the last segment may have a torn tail (a segment is
//! synced in full before its successor is created). Within it, bad bytes at
//! record `E` are a torn tail unless some intact later record carries a
//! synced-upto watermark above `E`: that record proves `E` had been synced,
//! i.e. acknowledged, so its damage is corruption, never silently cut.

use bytes::Bytes;

use super::error::WalError;
use super::log::RecordLocation;
use super::record::{self, RecordHeader, RECORD_HEADER_LEN};
use super::segment::{SegmentHeader, SEGMENT_HEADER_LEN};

/// A record handed to the layer above during recovery.
#[derive(Debug, Clone)]
pub struct RecoveredRecord {
    /// Sequence number.
    pub seq: u64,
    /// Kind byte.
    pub kind: u8,
    /// The payload (a slice of the segment buffer, not a copy).
    pub payload: Bytes,
    /// Where the payload lives on disk.
    pub location: RecordLocation,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments replayed.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Bytes of valid log replayed (headers included).
    pub bytes: u64,
    /// First sequence number in the log (next_seq if empty).
    pub first_seq: u64,
    /// Sequence number the next append gets.
    pub next_seq: u64,
    /// A torn tail that was cut off: file, offset and bytes removed.
    pub truncated: Option<(String, u64, u64)>,
    /// A last segment removed because its creation was torn.
    pub removed_torn_segment: Option<String>,
}

/// How a segment scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// Bad bytes from `offset` on are a torn final batch (last segment only).
    TornTail {
        /// First bad offset.
        offset: u64,
        /// What was found there.
        problem: String,
    },
    /// Corruption at `offset`.
    Corrupt {
        /// First bad offset.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
}

/// The result of scanning one segment's bytes.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    /// Valid records in order: header and offset of the record start.
    pub records: Vec<(RecordHeader, u64)>,
    /// Offset just past the last valid record.
    pub valid_len: u64,
    /// How the scan ended.
    pub end: ScanEnd,
}

/// Scans a segment's bytes. `expected_first` is the sequence number the
/// first record must carry (from the name and the previous segment).
pub fn scan_segment(
    buf: &[u8],
    expected_first: u64,
    is_last: bool,
    max_record: u32,
) -> SegmentScan {
    let mut records = Vec::new();
    let mut expected = expected_first;
    let mut offset = SEGMENT_HEADER_LEN;
    while offset < buf.len() {
        match record::decode(&buf[offset..], max_record) {
            Ok(h) if h.seq == expected => {
                records.push((h, offset as u64));
                expected += 1;
                offset += RECORD_HEADER_LEN + h.len as usize;
            }
            Ok(h) => {
                let detail = format!("sequence gap: expected record {expected}, found {}", h.seq);
                return SegmentScan {
                    records,
                    valid_len: offset as u64,
                    end: ScanEnd::Corrupt {
                        offset: offset as u64,
                        detail,
                    },
                };
            }
            Err(problem) => {
                let end = classify_bad(
                    buf,
                    offset,
                    expected,
                    is_last,
                    max_record,
                    problem.describe(),
                );
                return SegmentScan {
                    records,
                    valid_len: offset as u64,
                    end,
                };
            }
        }
    }
    SegmentScan {
        records,
        valid_len: offset as u64,
        end: ScanEnd::Clean,
    }
}

fn classify_bad(
    buf: &[u8],
    bad: usize,
    expected: u64,
    is_last: bool,
    max_record: u32,
    problem: &str,
) -> ScanEnd {
    if !is_last {
        return ScanEnd::Corrupt {
            offset: bad as u64,
            detail: format!("{problem} inside a sealed segment"),
        };
    }
    for at in bad + 1..buf.len() {
        if let Ok(h) = record::decode(&buf[at..], max_record) {
            if h.seq > expected && h.synced_upto > expected {
                return ScanEnd::Corrupt {
                    offset: bad as u64,
                    detail: format!(
                        "{problem}, but record {} at offset {at} is intact and was written after record {expected} had been synced: acknowledged data was damaged",
                        h.seq
                    ),
                };
            }
        }
    }
    ScanEnd::TornTail {
        offset: bad as u64,
        problem: problem.to_string(),
    }
}

/// Checks a segment header against its file name and the expected sequence.
pub fn check_header(
    buf: &[u8],
    name: &str,
    name_seq: u64,
    expected: Option<u64>,
) -> Result<SegmentHeader, WalError> {
    let header = SegmentHeader::decode(buf).map_err(|p| WalError::Corrupt {
        file: name.to_string(),
        offset: 0,
        detail: p.describe(),
    })?;
    if header.first_seq != name_seq {
        return Err(WalError::Corrupt {
            file: name.to_string(),
            offset: 0,
            detail: format!(
                "header says first record {} but the file name says {name_seq}",
                header.first_seq
            ),
        });
    }
    if let Some(exp) = expected {
        if header.first_seq != exp {
            return Err(WalError::Corrupt {
                file: name.to_string(),
                offset: 0,
                detail: format!(
                    "sequence gap between segments: expected first record {exp}, found {}",
                    header.first_seq
                ),
            });
        }
    }
    Ok(header)
}
