//! The janitor: deletes removed segment files off the log's thread.
//!
//! Deleting a 128 MiB segment took 30 to 40 ms (freeing its cached pages
//! and, on a disk mounted with `discard`, trimming its blocks), and the
//! log's writer thread did it between two groups, so every send and
//! acknowledgement of those milliseconds waited: at a steady 50,000
//! msgs/s with consumers acknowledging, segments are compacted away every
//! few seconds, and each removal was a burst of slow answers. Now
//! [`FileStorage::remove`](super::file_storage::FileStorage) only renames the
//! segment to `NAME.removed` (metadata: fast, and made durable by the
//! directory sync the log does next), and this thread shrinks the file a
//! slice at a time, pausing between slices, then deletes it.
//!
//! Invariants and why:
//! - A `.removed` file is garbage: it is never listed as a segment (its
//!   name is not a segment name), so nothing reads or replays it. A crash
//!   before the janitor deletes it leaves it behind, and opening the
//!   storage deletes any left over.
//! - Its blocks and cached pages are freed here, a slice at a time, even if
//!   a reader still has the file open (the last close would otherwise pay
//!   for them all at once, on whichever thread that is). Nothing needs a
//!   removed segment: compaction removes one only when no message
//!   references it.
//! - The queue is bounded ([`QUEUE`]); a full queue makes `remove` wait,
//!   never drops a deletion. Dropping the janitor finishes every queued
//!   deletion first.
//! - A failure to delete is logged, not fatal: the file holds nothing the
//!   log needs, and the next start deletes it.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Suffix a segment gets when it is removed, until the janitor deletes it.
pub(crate) const REMOVED_SUFFIX: &str = ".removed";

/// Bytes freed at a time, with [`SHRINK_PAUSE`] between: deleting a whole
/// 128 MiB segment at once freed (and, on a disk mounted with `discard`,
/// trimmed) all its blocks in one call of about 30 ms, during which the
/// log's own writes and syncs waited.
const SHRINK_SLICE: u64 = 4 << 20;
/// Pause between two slices, for the log's writes to go through.
const SHRINK_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// Most deletions queued at once.
const QUEUE: usize = 64;

/// The deleting thread and its queue.
#[derive(Debug)]
pub(crate) struct Janitor {
    tx: Option<SyncSender<PathBuf>>,
    thread: Option<JoinHandle<()>>,
}

impl Janitor {
    /// Starts the thread.
    pub(crate) fn start() -> io::Result<Janitor> {
        let (tx, rx) = sync_channel::<PathBuf>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("spine-wal-janitor".into())
            .spawn(move || {
                while let Ok(path) = rx.recv() {
                    delete(&path);
                }
            })?;
        Ok(Janitor {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `path` for deletion (waiting while the queue is full); if the
    /// thread is gone, deletes it here.
    pub(crate) fn delete(&self, path: PathBuf) {
        let unsent = match &self.tx {
            Some(tx) => tx.send(path).err().map(|e| e.0),
            None => Some(path),
        };
        if let Some(path) = unsent {
            delete(&path);
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Shrinks `path` to nothing a slice at a time, then deletes it.
fn delete(path: &Path) {
    if let Ok(file) = OpenOptions::new().write(true).open(path) {
        let mut len = file.metadata().map(|m| m.len()).unwrap_or(0);
        while len > 0 {
            len = len.saturating_sub(SHRINK_SLICE);
            if let Err(e) = file.set_len(len) {
                tracing::debug!(file = %path.display(), error = %e, "could not shrink a removed segment; deleting it whole");
                break;
            }
            std::thread::sleep(SHRINK_PAUSE);
        }
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not delete a removed log segment; the next start deletes it");
        }
    }
}

/// Deletes every `.removed` file in `dir` (left by a stop before the
/// janitor got to it); answers how many.
pub(crate) fn delete_leftovers(dir: &Path) -> io::Result<usize> {
    let mut deleted = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_leftover = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(REMOVED_SUFFIX));
        if is_leftover {
            delete(&entry.path());
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_deletions_are_done_by_the_time_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("{i}{REMOVED_SUFFIX}")))
            .collect();
        for p in &paths {
            fs::write(p, vec![7u8; 4096]).unwrap();
        }
        let janitor = Janitor::start().unwrap();
        for p in &paths {
            janitor.delete(p.clone());
        }
        // Deleting what is already gone is not an error.
        janitor.delete(dir.path().join("missing.removed"));
        drop(janitor);
        for p in &paths {
            assert!(!p.exists(), "{} still there", p.display());
        }
    }

    #[test]
    fn leftovers_are_deleted_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir
            .path()
            .join(format!("00000000000000000001.wal{REMOVED_SUFFIX}"));
        let segment = dir.path().join("00000000000000000002.wal");
        fs::write(&leftover, b"old").unwrap();
        fs::write(&segment, b"live").unwrap();
        assert_eq!(delete_leftovers(dir.path()).unwrap(), 1);
        assert!(!leftover.exists());
        assert!(segment.exists());
        assert_eq!(delete_leftovers(dir.path()).unwrap(), 0);
    }
}
