//! Rebuilding one partition's state from the log after its actor failed.
//!
//! The node keeps running: other partitions go on appending. The caller
//! first takes a barrier on the log, so every record this partition ever
//! submitted is durable below `end`; the scan reads segment files as they
//! are (read-only, no lock) and stops at `end`. Records are routed as at
//! start-up: creates and snapshots by their recipient's partition, other
//! events by whether their message belongs to this partition.

use std::collections::HashSet;

use spine_core::ids::MessageId;
use spine_core::message::{Event, MessageStore};
use spine_core::partition::PartitionMap;
use spine_core::wal::recovery::{check_header, scan_segment};
use spine_core::wal::segment::parse_segment_name;
use spine_core::wal::{SegmentFile, Storage, RECORD_HEADER_LEN};

use crate::node::storage::StorageConfig;
use crate::wal::FileStorage;

/// Replays records below `end` that belong to partition `index`.
pub fn rebuild_partition(
    storage: &StorageConfig,
    map: &PartitionMap,
    index: u32,
    end: u64,
) -> Result<MessageStore, String> {
    let mut files = FileStorage::open_read_only(&storage.data_dir).map_err(|e| e.to_string())?;
    let mut segments: Vec<(u64, String)> = files
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|s| (s, n)))
        .collect();
    segments.sort();
    let mut store = MessageStore::new(storage.store());
    let mut mine: HashSet<MessageId> = HashSet::new();
    let max = storage.max_record_bytes;
    'segments: for (first_seq, name) in segments {
        if first_seq >= end {
            break;
        }
        let file = files.open(&name).map_err(|e| format!("{name}: {e}"))?;
        let len = file.len().map_err(|e| format!("{name}: {e}"))?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
        file.read_exact_at(0, &mut buf)
            .map_err(|e| format!("{name}: {e}"))?;
        let buf = bytes::Bytes::from(buf);
        check_header(&buf, &name, first_seq, None).map_err(|e| e.to_string())?;
        store.set_log_start(first_seq);
        // The tail may be mid-write by other partitions: the valid prefix
        // is all we need, since everything of ours lies below `end`.
        let scan = scan_segment(&buf, first_seq, true, max);
        for (header, at) in scan.records {
            if header.seq >= end {
                break 'segments;
            }
            let start = at as usize + RECORD_HEADER_LEN;
            let payload = buf.slice(start..start + header.len as usize);
            let location = spine_core::wal::RecordLocation {
                segment: first_seq,
                offset: start as u64,
                len: header.len,
            };
            if spine_core::services::is_service_kind(header.kind) {
                continue;
            }
            let (event, body, body_loc) = Event::from_record(header.kind, &payload, location)?;
            let id = *event.message_id();
            let ours = match &event {
                Event::Create { envelope, .. } => map.partition_of(&envelope.recipient).0 == index,
                Event::Snapshot(s) => map.partition_of(&s.envelope.recipient).0 == index,
                _ => mine.contains(&id),
            };
            if !ours {
                continue;
            }
            let purge = matches!(event, Event::Purge { .. });
            store
                .apply(header.seq, location, event, &body, body_loc)
                .map_err(|e| format!("record {}: {e}", header.seq))?;
            if purge {
                mine.remove(&id);
            } else {
                mine.insert(id);
            }
        }
    }
    Ok(store)
}
