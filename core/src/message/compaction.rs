//! Compaction: reclaim old segments so disk use follows live data.
//!
//! The oldest sealed segment can be deleted once no live message needs it
//! for replay. A message needs a segment if its origin record (create or
//! snapshot) or any of its chunks is there. To free a segment, each message
//! still needing it is carried forward: one `Snapshot` of its whole state
//! followed, in the same batch, by `CarryChunk` copies of the chunks that sit
//! in the segment. Only after that batch is durable and applied is the
//! segment removed (and the directory synced).
//!
//! Crash safety: a crash before the removal leaves the old segment in place,
//! so replay sees the old records, then the snapshot (which supersedes them)
//! and whatever carried chunks survived; chunks not yet carried still point
//! into the old segment, which still exists. Events logged for a message
//! whose origin was compacted away carry an origin below the log's start and
//! replay ignores them; the snapshot already includes their effect.
//!
//! Acknowledged messages keep only metadata (their chunks were dropped at
//! acknowledgement), so carrying them is cheap; purged messages need nothing.
//!
//! Ordering: the owner of a message's state must not log events for it
//! between planning a carry and applying it. The synchronous driver here
//! guarantees that trivially; the actor runtime runs compaction inside the
//! owning partition for the same reason.

use bytes::Bytes;

use crate::ids::MessageId;
use crate::wal::{PendingRecord, Storage, Wal, WalError};

use super::event::{ChunkLoc, Event};
use super::store::MessageStore;

/// When compaction runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Compact while the log is larger than this many times the live bytes...
    pub max_amplification: u64,
    /// ...and larger than this many bytes in total.
    pub min_log_bytes: u64,
    /// Most bytes carried forward in one batch.
    pub max_carry_batch_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            max_amplification: 2,
            min_log_bytes: 256 << 20,
            max_carry_batch_bytes: 8 << 20,
        }
    }
}

/// What a compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Segments removed.
    pub segments_removed: u64,
    /// Bytes of segments removed.
    pub bytes_removed: u64,
    /// Messages carried forward.
    pub messages_carried: u64,
    /// Chunk bytes copied forward.
    pub bytes_carried: u64,
}

/// The records that carry one message forward, and the chunks to copy.
#[derive(Debug, Clone)]
pub struct CarryPlan {
    /// The snapshot event.
    pub snapshot: Event,
    /// Chunks (1-based number, location) that must be copied forward.
    pub chunks: Vec<(u32, ChunkLoc)>,
}

impl MessageStore {
    /// Plans carrying `id` forward so that nothing of it remains in segments
    /// at or below `upto_segment`.
    pub fn carry_plan(&self, id: &MessageId, upto_segment: u64) -> Option<CarryPlan> {
        let state = self.get(id)?;
        let chunks = state
            .chunks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.filter(|c| c.segment <= upto_segment)
                    .map(|c| (i as u32 + 1, c))
            })
            .collect();
        Some(CarryPlan {
            snapshot: Event::Snapshot(Box::new(state.snapshot())),
            chunks,
        })
    }

    /// Whether the policy calls for compaction given the log size.
    pub fn wants_compaction(&self, policy: &CompactionPolicy, log_bytes: u64) -> bool {
        log_bytes > policy.min_log_bytes
            && log_bytes > self.live_bytes().saturating_mul(policy.max_amplification)
    }
}

fn to_record(event: &Event, body: Bytes) -> Result<PendingRecord, WalError> {
    event
        .to_record(body)
        .map_err(|e| WalError::InvalidBatch(format!("cannot encode a compaction record: {e}")))
}

/// Other state that lives in the same log (the reference services): it
/// carries its own records forward so a segment can be removed.
pub trait SegmentHolder {
    /// Records that re-log everything this holder has in segments at or
    /// below `upto` (empty: it holds nothing there).
    fn carry_records(&self, upto: u64) -> Result<Vec<PendingRecord>, WalError>;
    /// A carried record is durable at `location`: update what it holds.
    fn carried(
        &mut self,
        record: &PendingRecord,
        location: crate::wal::RecordLocation,
    ) -> Result<(), WalError>;
}

/// A holder of nothing.
#[derive(Debug, Default)]
pub struct NoHolder;

impl SegmentHolder for NoHolder {
    fn carry_records(&self, _upto: u64) -> Result<Vec<PendingRecord>, WalError> {
        Ok(Vec::new())
    }
    fn carried(
        &mut self,
        _record: &PendingRecord,
        _location: crate::wal::RecordLocation,
    ) -> Result<(), WalError> {
        Ok(())
    }
}

/// Runs compaction synchronously against `wal`: removes every oldest sealed
/// segment that nothing needs, and while the policy asks for it, carries the
/// oldest segment's live messages forward and removes it. `force` ignores the
/// policy's size thresholds (used by tests and `spine wal compact`).
pub fn compact<S: Storage>(
    wal: &mut Wal<S>,
    store: &mut MessageStore,
    policy: &CompactionPolicy,
    force: bool,
) -> Result<CompactionReport, WalError> {
    compact_with(wal, store, &mut NoHolder, policy, force)
}

/// [`compact`] with another holder of state in the same log. Its records
/// are always carried when they are what keeps a segment (they are small,
/// full-state records), so service state never pins old segments.
pub fn compact_with<S: Storage>(
    wal: &mut Wal<S>,
    store: &mut MessageStore,
    holder: &mut dyn SegmentHolder,
    policy: &CompactionPolicy,
    force: bool,
) -> Result<CompactionReport, WalError> {
    let mut report = CompactionReport::default();
    // Only segments that exist now: carried data lands in newer segments,
    // which must not be chased round again in the same pass.
    let stop_at = wal.next_seq();
    while let Some(oldest) = wal
        .oldest_sealed()
        .cloned()
        .filter(|s| s.first_seq < stop_at)
    {
        let held = holder.carry_records(oldest.first_seq)?;
        if !held.is_empty() {
            for group in held.chunks(wal.config().max_batch_records.max(1)) {
                let batch = group.to_vec();
                let appended = wal.append_batch(&batch)?;
                for (rec, app) in batch.iter().zip(appended) {
                    holder.carried(rec, app.location)?;
                }
            }
            if !holder.carry_records(oldest.first_seq)?.is_empty() {
                return Err(WalError::InvalidBatch(format!(
                    "compaction could not free segment {}: service state still references it",
                    oldest.name
                )));
            }
        }
        let needed = store.referencing(oldest.first_seq);
        if needed.is_empty() {
            wal.remove_oldest_sealed()?;
            report.segments_removed += 1;
            report.bytes_removed += oldest.bytes;
            continue;
        }
        if !force && !store.wants_compaction(policy, wal.total_bytes()) {
            break;
        }
        let mut batch: Vec<PendingRecord> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut batch_bytes = 0u64;
        for id in needed {
            let Some(plan) = store.carry_plan(&id, oldest.first_seq) else {
                continue;
            };
            let mut group = vec![to_record(&plan.snapshot, Bytes::new())?];
            let mut group_events = vec![plan.snapshot];
            for (chunk_no, loc) in plan.chunks {
                let bytes = wal.read(&loc.into())?;
                batch_bytes += bytes.len() as u64;
                report.bytes_carried += bytes.len() as u64;
                let ev = Event::CarryChunk {
                    message_id: id,
                    chunk_no,
                };
                group.push(to_record(&ev, bytes)?);
                group_events.push(ev);
            }
            report.messages_carried += 1;
            let full = batch.len() + group.len() > wal.config().max_batch_records
                || batch_bytes > policy.max_carry_batch_bytes;
            if full && !batch.is_empty() {
                flush(wal, store, &mut batch, &mut events)?;
                batch_bytes = 0;
            }
            batch.extend(group);
            events.extend(group_events);
        }
        if !batch.is_empty() {
            flush(wal, store, &mut batch, &mut events)?;
        }
        if store.referencing(oldest.first_seq).is_empty() {
            continue;
        }
        return Err(WalError::InvalidBatch(format!(
            "compaction could not free segment {}: messages still reference it",
            oldest.name
        )));
    }
    Ok(report)
}

fn flush<S: Storage>(
    wal: &mut Wal<S>,
    store: &mut MessageStore,
    batch: &mut Vec<PendingRecord>,
    events: &mut Vec<Event>,
) -> Result<(), WalError> {
    let appended = wal.append_batch(batch)?;
    for ((rec, ev), app) in batch.iter().zip(events.drain(..)).zip(appended) {
        let body_loc = ChunkLoc::body_of(app.location, rec.head.len(), rec.body.len());
        store
            .apply(app.seq, app.location, ev, &rec.body, body_loc)
            .map_err(|e| WalError::InvalidBatch(format!("compaction record did not apply: {e}")))?;
    }
    batch.clear();
    Ok(())
}
