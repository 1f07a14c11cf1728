//! Reading the durable log back while the node runs, to rebuild one
//! actor's state after it failed (a partition, the reference services).
//!
//! Invariants and why:
//! - [`after_barrier`] first takes a barrier on the log: everything the
//!   failed actor ever submitted is then durable below the barrier's end,
//!   and the actor being gone, nothing more of its can be submitted. So a
//!   scan up to that end sees exactly its effects, no more, no fewer.
//! - [`scan_below`] reads segment files as they are (read-only, no lock)
//!   while other actors go on appending: a segment's tail may be mid-write,
//!   so only its valid prefix is read, and the scan stops at the end.
//! - A segment listed but gone when opened was removed by compaction in
//!   the meantime. Compaction removes a segment only after every holder
//!   has carried forward (durably, into later segments) what still needed
//!   it, so skipping it loses nothing; start-up recovery would not see it
//!   either.

use std::sync::Arc;

use bytes::Bytes;
use spine_core::wal::recovery::{check_header, scan_segment, RecoveredRecord};
use spine_core::wal::segment::parse_segment_name;
use spine_core::wal::{RecordLocation, SegmentFile, Storage, RECORD_HEADER_LEN};

use super::shared::Shared;
use super::sink::LogSink;
use super::storage::StorageConfig;
use crate::wal::FileStorage;

/// Takes a barrier on the log, then runs `rebuild` with the storage and the
/// barrier's end on the blocking pool. Memory-only nodes cannot rebuild.
pub(crate) async fn after_barrier<T: Send + 'static>(
    shared: &Arc<Shared>,
    rebuild: impl FnOnce(&StorageConfig, u64) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let LogSink::Durable(wal) = &shared.sink else {
        return Err("memory-only nodes cannot rebuild state from the log".into());
    };
    let end = wal.barrier().await.map_err(|e| e.to_string())?;
    let storage = shared.storage.clone();
    tokio::task::spawn_blocking(move || rebuild(&storage, end))
        .await
        .map_err(|e| e.to_string())?
}

/// What [`scan_below`] visits.
pub(crate) enum Scanned<'a> {
    /// A segment starts (its first sequence number); its records follow.
    Segment(u64),
    /// A record.
    Record(&'a RecoveredRecord),
}

/// Visits every record with a sequence number below `end`, in log order,
/// each segment announced before its records.
pub(crate) fn scan_below(
    storage: &StorageConfig,
    end: u64,
    mut visit: impl FnMut(Scanned<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut files = FileStorage::open_read_only(&storage.data_dir).map_err(|e| e.to_string())?;
    let mut segments: Vec<(u64, String)> = files
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|s| (s, n)))
        .collect();
    segments.sort();
    for (first_seq, name) in segments {
        if first_seq >= end {
            break;
        }
        let file = match files.open(&name) {
            Ok(file) => file,
            // Removed by compaction since it was listed (module docs).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let len = file.len().map_err(|e| format!("{name}: {e}"))?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
        file.read_exact_at(0, &mut buf)
            .map_err(|e| format!("{name}: {e}"))?;
        let buf = Bytes::from(buf);
        check_header(&buf, &name, first_seq, None).map_err(|e| e.to_string())?;
        visit(Scanned::Segment(first_seq))?;
        let scan = scan_segment(&buf, first_seq, true, storage.max_record_bytes);
        for (header, at) in scan.records {
            if header.seq >= end {
                return Ok(());
            }
            let start = at as usize + RECORD_HEADER_LEN;
            let stop = start + header.len as usize;
            if stop > buf.len() {
                return Err(format!("{name}: record {} runs past the file", header.seq));
            }
            let payload = buf.slice(start..stop);
            visit(Scanned::Record(&RecoveredRecord {
                seq: header.seq,
                kind: header.kind,
                payload,
                location: RecordLocation {
                    segment: first_seq,
                    offset: start as u64,
                    len: header.len,
                },
            }))?;
        }
    }
    Ok(())
}
