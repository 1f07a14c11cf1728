//! Read-only verification of a log, for `spine wal inspect`.
//!
//! Unlike [`super::Wal::open`], inspection never modifies anything: a torn
//! tail is reported, not truncated, and it goes on past a bad segment so an
//! operator sees every problem at once.

use bytes::Bytes;

use super::error::WalError;
use super::recovery::{check_header, scan_segment, ScanEnd};
use super::segment::{parse_segment_name, SEGMENT_HEADER_LEN};
use super::storage::{SegmentFile, Storage};

/// What inspection found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// File name.
    pub name: String,
    /// First sequence number (from the name).
    pub first_seq: u64,
    /// File size.
    pub bytes: u64,
    /// Valid records.
    pub records: u64,
    /// Record counts by kind byte, for kinds that occur.
    pub kinds: Vec<(u8, u64)>,
    /// `None` when every byte verified; otherwise the first bad offset and why.
    pub problem: Option<(u64, String)>,
    /// Whether the problem is a torn tail recovery would truncate.
    pub torn_tail: bool,
}

/// Inspects every segment. Only listing or reading errors fail it.
pub fn inspect<S: Storage>(
    storage: &mut S,
    max_record: u32,
) -> Result<Vec<SegmentReport>, WalError> {
    let names = storage
        .list()
        .map_err(|e| WalError::io("list", "data directory", e))?;
    let mut segs: Vec<(u64, String)> = names
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|s| (s, n)))
        .collect();
    segs.sort();
    let mut out = Vec::with_capacity(segs.len());
    let mut expected: Option<u64> = None;
    let count = segs.len();
    for (i, (seq, name)) in segs.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let file = storage
            .open(&name)
            .map_err(|e| WalError::io("open", &name, e))?;
        let len = file.len().map_err(|e| WalError::io("stat", &name, e))?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(0, &mut buf)
            .map_err(|e| WalError::io("read", &name, e))?;
        let buf = Bytes::from(buf);
        let mut report = SegmentReport {
            name: name.clone(),
            first_seq: seq,
            bytes: len,
            records: 0,
            kinds: Vec::new(),
            problem: None,
            torn_tail: false,
        };
        match check_header(&buf, &name, seq, expected) {
            Err(WalError::Corrupt { offset, detail, .. }) => {
                report.torn_tail = is_last && buf.len() <= SEGMENT_HEADER_LEN;
                report.problem = Some((offset, detail));
                expected = None;
            }
            Err(other) => return Err(other),
            Ok(header) => {
                let scan = scan_segment(&buf, header.first_seq, is_last, max_record);
                report.records = scan.records.len() as u64;
                let mut kinds = std::collections::BTreeMap::<u8, u64>::new();
                for (h, _) in &scan.records {
                    *kinds.entry(h.kind).or_default() += 1;
                }
                report.kinds = kinds.into_iter().collect();
                match scan.end {
                    ScanEnd::Clean => {}
                    ScanEnd::TornTail { offset, problem } => {
                        report.torn_tail = true;
                        report.problem = Some((offset, format!("torn tail: {problem}")));
                    }
                    ScanEnd::Corrupt { offset, detail } => report.problem = Some((offset, detail)),
                }
                expected = Some(header.first_seq + report.records);
            }
        }
        out.push(report);
    }
    Ok(out)
}
