//! Where partitions log their events: the durable WAL, or (for comparison
//! benchmarks only) memory.
//!
//! Completions are callbacks run in sequence order, so a partition that
//! forwards them to its own mailbox applies its events in log order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use spine_core::wal::{AppendedRecord, PendingRecord, RecordLocation};

use crate::wal::{AppendError, AppendResult, Callback, Completion, WalHandle};

/// The log behind the partitions.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// The write-ahead log: acknowledged means on disk.
    Durable(WalHandle),
    /// Memory only: NOT durable. For benchmarks that isolate the runtime's
    /// own cost; never used by `spine serve`.
    Memory(Arc<MemoryLog>),
}

/// An in-memory stand-in for the log (bodies kept by body offset).
#[derive(Debug, Default)]
pub struct MemoryLog {
    next_seq: AtomicU64,
    bodies: DashMap<u64, Bytes>,
}

impl MemoryLog {
    /// An empty memory log.
    pub fn new() -> MemoryLog {
        MemoryLog {
            next_seq: AtomicU64::new(1),
            bodies: DashMap::new(),
        }
    }

    /// A stored body by its location.
    pub fn read(&self, offset: u64) -> Option<Bytes> {
        self.bodies.get(&offset).map(|b| b.clone())
    }

    /// Forgets a body (its message no longer needs it).
    pub fn release(&self, offset: u64) {
        self.bodies.remove(&offset);
    }
}

impl LogSink {
    /// Queues `records` as one atomic batch; `done` is called with the
    /// outcome, in sequence order. Waits while the log is full.
    pub async fn submit(
        &self,
        records: Vec<PendingRecord>,
        done: Box<dyn FnOnce(AppendResult) + Send>,
    ) -> Result<(), AppendError> {
        match self {
            LogSink::Durable(wal) => {
                wal.append_with(records, Completion::Callback(Callback::new(done)))
                    .await
            }
            LogSink::Memory(mem) => {
                let first = mem
                    .next_seq
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                let mut out = Vec::with_capacity(records.len());
                for (i, r) in records.into_iter().enumerate() {
                    let seq = first + i as u64;
                    // Offsets are unique per record: seq in the high bits.
                    let offset = seq << 24;
                    let body_offset = offset + r.head.len() as u64;
                    if !r.body.is_empty() {
                        mem.bodies.insert(body_offset, r.body.clone());
                    }
                    let len = r.payload_len() as u32;
                    out.push(AppendedRecord {
                        seq,
                        location: RecordLocation {
                            segment: 0,
                            offset,
                            len,
                        },
                    });
                }
                done(Ok(out));
                Ok(())
            }
        }
    }

    /// Whether acknowledgements mean "on disk".
    pub fn is_durable(&self) -> bool {
        matches!(self, LogSink::Durable(_))
    }

    /// Bytes written and sync groups completed so far (zero for memory).
    pub fn totals(&self) -> (u64, u64) {
        match self {
            LogSink::Durable(wal) => {
                let s = wal.stats();
                (
                    s.bytes.load(std::sync::atomic::Ordering::Relaxed),
                    s.batches.load(std::sync::atomic::Ordering::Relaxed),
                )
            }
            LogSink::Memory(_) => (0, 0),
        }
    }

    /// The fatal failure of the log, if any.
    pub fn failure(&self) -> Option<AppendError> {
        match self {
            LogSink::Durable(wal) => wal.failure(),
            LogSink::Memory(_) => None,
        }
    }
}
