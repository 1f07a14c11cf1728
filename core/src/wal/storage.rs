//! The small storage trait the log is written against.
//!
//! The log needs only: list, create, open, remove segment files; append
//! bytes (vectored), `fdatasync`, truncate, positional reads; and sync the
//! directory. Keeping the trait this small lets the simulator and the tests
//! substitute [`super::MemStorage`], which can tear writes and fail syncs on
//! demand, while production uses real files (`spine-actors`).
//!
//! Contract for implementations:
//! - `append` writes all bytes or returns an error; bytes are not durable
//!   until `sync_data` returns `Ok`.
//! - `create` fails if the file exists; a created or removed file is not
//!   durable in the directory until `sync_dir` returns `Ok`.
//! - Errors are reported, never swallowed; the log decides what is fatal.

use std::io;

/// A directory of segment files.
pub trait Storage: Send {
    /// The handle to one segment file.
    type File: SegmentFile;

    /// Names of all entries in the directory (non-segment names are ignored
    /// by the caller).
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// Creates a new, empty file; fails if it already exists.
    fn create(&mut self, name: &str) -> io::Result<Self::File>;
    /// Opens an existing file for reading and appending.
    fn open(&mut self, name: &str) -> io::Result<Self::File>;
    /// Removes a file.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Makes creations and removals in the directory durable.
    fn sync_dir(&mut self) -> io::Result<()>;
}

/// A handle that can `fdatasync` a segment file from another thread, so
/// that syncing one batch overlaps writing the next.
pub trait SyncData: Send + Sync {
    /// Makes everything written to the file so far durable.
    fn sync_data(&self) -> io::Result<()>;
}

/// One open segment file.
pub trait SegmentFile: Send {
    /// The cross-thread sync handle for this file.
    type Syncer: SyncData + 'static;

    /// A sync handle for this file.
    fn syncer(&self) -> io::Result<Self::Syncer>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Appends all of `parts`, in order, at the end of the file.
    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()>;
    /// Makes appended data durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}
