//! The write-ahead log: record format, segments, recovery and the log itself.
//!
//! Layout on disk: a directory of segment files named `{first_seq:020}.wal`,
//! each starting with a [`segment::SegmentHeader`] and followed by records
//! (see [`record`]). Sequence numbers are global, start at 1 and are
//! contiguous across segments; a segment file's name is the sequence number
//! of its first record.
//!
//! Invariants (and why):
//! - A batch is written with one vectored write; its records are reported
//!   durable only after an `fdatasync` that started after the write returned.
//!   Writes may run ahead of syncs (pipelining), so every record carries a
//!   synced-upto watermark: the sequence number below which everything was
//!   durable when it was written.
//! - Batches never span segments. A segment is synced in full before its
//!   successor is created (file synced, then directory synced), and is never
//!   written again: only the *last* segment can have a torn tail.
//! - Recovery truncates only a torn tail: bad bytes in the last segment that
//!   no intact later record's watermark proves were synced. Bad bytes in a
//!   sealed segment, a sequence gap, or damage that a later watermark proves
//!   was acknowledged are refused as corruption, naming the file and offset.
//! - Any write, sync, truncate or directory-sync error fails the log for
//!   good: every pending and later append gets an error. Retrying an fsync
//!   after a failure is unsafe on Linux (the kernel may drop the dirty pages
//!   and report success next time), so we never do.
//! - The log never interprets record payloads; the `kind` byte and payload
//!   belong to the layer above (see [`crate::message`]).

pub mod error;
pub mod inspect;
pub mod log;
pub mod mem_storage;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod storage;

pub use error::WalError;
pub use inspect::{inspect, SegmentReport};
pub use log::{
    AppendedRecord, PendingRecord, RecordLocation, SegmentInfo, Wal, WalConfig, WalStats,
    WrittenBatch,
};
pub use mem_storage::MemStorage;
pub use record::{RecordHeader, RECORD_HEADER_LEN};
pub use recovery::{RecoveredRecord, RecoveryReport};
pub use segment::{SegmentHeader, SEGMENT_HEADER_LEN};
pub use storage::{SegmentFile, Storage, SyncData};

#[cfg(test)]
mod tests;
