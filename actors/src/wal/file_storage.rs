//! [`Storage`] on real files.
//!
//! - `sync_data` is `fdatasync(2)` (via `File::sync_data`); `sync_dir` opens
//!   the directory and `fsync`s it, which is what makes a created, renamed
//!   or removed segment durable on Linux.
//! - Appends use `writev(2)` through `write_vectored`, looping over partial
//!   writes, so payload `Bytes` are written where they lie.
//! - The data directory is locked (`DIR/LOCK`, an exclusive advisory lock
//!   held for the life of the storage) so two nodes can never write one log.
//! - `remove` renames a segment to `NAME.removed` and leaves deleting it to
//!   the [janitor](super::janitor) thread (deleting a large cached file took
//!   tens of milliseconds on the log's thread); the log's directory sync
//!   right after makes the rename durable, and opening deletes leftovers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use spine_core::wal::{SegmentFile, Storage, SyncData};

use super::janitor::{delete_leftovers, Janitor, REMOVED_SUFFIX};

/// A data directory of segment files.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    janitor: Janitor,
    _lock: File,
}

impl FileStorage {
    /// Opens (creating if needed) the data directory and takes its lock.
    pub fn open(dir: &Path) -> io::Result<FileStorage> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "data directory {} is locked by another running node",
                        dir.display()
                    ),
                ))
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let leftovers = delete_leftovers(dir)?;
        if leftovers > 0 {
            tracing::info!(dir = %dir.display(), leftovers, "deleted log segments removed before the last stop");
        }
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            janitor: Janitor::start()?,
            _lock: lock,
        })
    }

    /// Opens a directory for read-only inspection, without the lock.
    pub fn open_read_only(dir: &Path) -> io::Result<ReadOnlyStorage> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(ReadOnlyStorage {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn list(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Some(name) = entry?.file_name().to_str() {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FileStorage {
    type File = DiskFile;

    fn list(&mut self) -> io::Result<Vec<String>> {
        list(&self.dir)
    }

    fn create(&mut self, name: &str) -> io::Result<DiskFile> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(self.dir.join(name))?;
        Ok(DiskFile { file })
    }

    fn open(&mut self, name: &str) -> io::Result<DiskFile> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.dir.join(name))?;
        Ok(DiskFile { file })
    }

    /// Renames `name` out of the log (durable with the next
    /// [`Storage::sync_dir`]) and queues it for the janitor to delete.
    fn remove(&mut self, name: &str) -> io::Result<()> {
        let removed = self.dir.join(format!("{name}{REMOVED_SUFFIX}"));
        fs::rename(self.dir.join(name), &removed)?;
        self.janitor.delete(removed);
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        sync_dir(&self.dir)
    }
}

/// Read-only view of a data directory (for `spine wal inspect`): every
/// mutating call fails.
#[derive(Debug)]
pub struct ReadOnlyStorage {
    dir: PathBuf,
}

fn read_only() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "storage opened read-only")
}

impl Storage for ReadOnlyStorage {
    type File = DiskFile;

    fn list(&mut self) -> io::Result<Vec<String>> {
        list(&self.dir)
    }

    fn create(&mut self, _name: &str) -> io::Result<DiskFile> {
        Err(read_only())
    }

    fn open(&mut self, name: &str) -> io::Result<DiskFile> {
        Ok(DiskFile {
            file: File::open(self.dir.join(name))?,
        })
    }

    fn remove(&mut self, _name: &str) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        Err(read_only())
    }
}

/// One segment file on disk.
#[derive(Debug)]
pub struct DiskFile {
    file: File,
}

/// A duplicated descriptor of a segment file, for syncing from another
/// thread (`fdatasync` on a dup'd descriptor syncs the same file).
#[derive(Debug)]
pub struct DiskSyncer {
    file: File,
}

impl SyncData for DiskSyncer {
    fn sync_data(&self) -> io::Result<()> {
        #[cfg(feature = "fault-injection")]
        super::failpoints::check_sync()?;
        self.file.sync_data()
    }
}

impl SegmentFile for DiskFile {
    type Syncer = DiskSyncer;

    fn syncer(&self) -> io::Result<DiskSyncer> {
        Ok(DiskSyncer {
            file: self.file.try_clone()?,
        })
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, offset)
    }

    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        #[cfg(feature = "fault-injection")]
        super::failpoints::check_write()?;
        let mut slices: Vec<IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p))
            .collect();
        let mut remaining = &mut slices[..];
        while !remaining.is_empty() {
            match self.file.write_vectored(remaining) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write returned 0 bytes",
                    ))
                }
                Ok(n) => IoSlice::advance_slices(&mut remaining, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        #[cfg(feature = "fault-injection")]
        super::failpoints::check_sync()?;
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v = list(dir).unwrap();
        v.sort();
        v
    }

    #[test]
    fn a_removed_segment_leaves_the_listing_at_once_and_the_disk_by_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = FileStorage::open(dir.path()).unwrap();
        let name = "00000000000000000001.wal";
        let mut file = storage.create(name).unwrap();
        file.append(&[&[1u8; 4096]]).unwrap();
        file.sync_data().unwrap();
        storage.remove(name).unwrap();
        storage.sync_dir().unwrap();
        assert!(!names(dir.path()).contains(&name.to_string()));
        drop(file);
        drop(storage);
        assert_eq!(names(dir.path()), vec!["LOCK".to_string()]);
    }

    #[test]
    fn opening_deletes_what_a_stop_left_half_removed() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = format!("00000000000000000001.wal{REMOVED_SUFFIX}");
        fs::write(dir.path().join(&leftover), b"old").unwrap();
        fs::write(dir.path().join("00000000000000000002.wal"), b"live").unwrap();
        let storage = FileStorage::open(dir.path()).unwrap();
        assert_eq!(
            names(dir.path()),
            vec!["00000000000000000002.wal".to_string(), "LOCK".to_string()]
        );
        drop(storage);
    }
}
