//! Rebuilding one partition's state from the log after its actor failed.
//!
//! The node keeps running: other partitions go on appending. The caller
//! first takes a barrier on the log, so every record this partition ever
//! submitted is durable below `end`, and the scan
//! ([`scan_below`](crate::node::log_scan::scan_below)) stops there.
//! Records are routed as at start-up: creates and snapshots by their
//! recipient's partition, other events by whether their message belongs to
//! this partition; service records are skipped.

use std::collections::HashSet;

use spine_core::ids::MessageId;
use spine_core::message::{Event, MessageStore};
use spine_core::partition::PartitionMap;

use crate::node::log_scan::{scan_below, Scanned};
use crate::node::storage::StorageConfig;

/// Replays records below `end` that belong to partition `index`.
pub fn rebuild_partition(
    storage: &StorageConfig,
    map: &PartitionMap,
    index: u32,
    end: u64,
) -> Result<MessageStore, String> {
    let mut store = MessageStore::new(storage.store());
    let mut mine: HashSet<MessageId> = HashSet::new();
    scan_below(storage, end, |scanned| {
        let r = match scanned {
            Scanned::Segment(first_seq) => {
                store.set_log_start(first_seq);
                return Ok(());
            }
            Scanned::Record(r) => r,
        };
        if spine_core::services::is_service_kind(r.kind) {
            return Ok(());
        }
        let (event, body, body_loc) = Event::from_record(r.kind, &r.payload, r.location)?;
        let id = *event.message_id();
        let ours = match &event {
            Event::Create { envelope, .. } => map.partition_of(&envelope.recipient).0 == index,
            Event::Snapshot(s) => map.partition_of(&s.envelope.recipient).0 == index,
            _ => mine.contains(&id),
        };
        if !ours {
            return Ok(());
        }
        let purge = matches!(event, Event::Purge { .. });
        store
            .apply(r.seq, r.location, event, &body, body_loc)
            .map_err(|e| format!("record {}: {e}", r.seq))?;
        if purge {
            mine.remove(&id);
        } else {
            mine.insert(id);
        }
        Ok(())
    })?;
    Ok(store)
}
