//! The write-ahead log on real disks: file storage and the group-commit writer.

#[cfg(feature = "fault-injection")]
pub mod failpoints;
pub mod file_storage;
mod janitor;
pub mod writer;

pub use file_storage::{DiskFile, FileStorage, ReadOnlyStorage};
pub use writer::{
    AppendError, AppendResult, Callback, Completion, WalHandle, WalWriter, WriterConfig,
    WriterStats,
};

#[cfg(test)]
mod writer_tests;
