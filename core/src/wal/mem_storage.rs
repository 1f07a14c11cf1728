//! An in-memory [`Storage`] with fault injection, for tests and the simulator.
//!
//! It models what matters for durability: bytes appended but not yet synced
//! are lost (or partly kept, torn) by [`MemStorage::crash`]; files created
//! but not made durable by a directory sync vanish in a crash; syncs, writes
//! and space can be made to fail on demand, or held at a gate
//! ([`MemStorage::pause_syncs`]) so a test can observe work queued behind a
//! slow disk. Clones share one disk, so a test keeps a handle to inspect or
//! damage the disk after the log is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::storage::{SegmentFile, Storage, SyncData};

#[derive(Debug, Default)]
struct MemFileData {
    data: Vec<u8>,
    synced_len: usize,
}

#[derive(Debug, Default)]
struct Disk {
    files: BTreeMap<String, MemFileData>,
    /// Names whose creation is not yet durable (no directory sync since).
    undurable: BTreeSet<String>,
    fail_sync: bool,
    fail_write: bool,
    capacity: Option<usize>,
    syncs: u64,
    writes: u64,
}

impl Disk {
    fn used(&self) -> usize {
        self.files.values().map(|f| f.data.len()).sum()
    }
}

/// Holds file data syncs while paused (see [`MemStorage::pause_syncs`]).
/// Separate from [`Disk`] so a held sync does not block other disk calls.
#[derive(Debug, Default)]
struct SyncGate {
    paused: Mutex<bool>,
    resumed: Condvar,
}

impl SyncGate {
    fn set(&self, paused: bool) {
        *self.paused.lock().unwrap_or_else(|p| p.into_inner()) = paused;
        if !paused {
            self.resumed.notify_all();
        }
    }

    fn pass(&self) {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        while *paused {
            paused = self.resumed.wait(paused).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Shared in-memory disk. Cloning yields another handle to the same disk.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    disk: Arc<Mutex<Disk>>,
    gate: Arc<SyncGate>,
}

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    // A panic while holding the lock cannot leave Disk half-updated in a way
    // that matters to a test, so recover the guard rather than propagate.
    disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl MemStorage {
    /// An empty disk.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Every later `sync_data`/`sync_dir` fails with EIO (until cleared).
    pub fn set_fail_sync(&self, fail: bool) {
        lock(&self.disk).fail_sync = fail;
    }

    /// Holds every later file `sync_data` (from a file or its syncer, on any
    /// thread) until [`MemStorage::resume_syncs`]: a disk whose syncs take
    /// as long as the test wants. Directory syncs are not held. The held
    /// call checks `set_fail_sync` only once released, so a test can pause,
    /// queue work, inject a failure and resume. Resume before dropping a
    /// writer that syncs on its own threads, or joining it will block.
    pub fn pause_syncs(&self) {
        self.gate.set(true);
    }

    /// Releases syncs held by [`MemStorage::pause_syncs`]; later syncs pass.
    pub fn resume_syncs(&self) {
        self.gate.set(false);
    }

    /// Every later append fails with EIO (until cleared).
    pub fn set_fail_write(&self, fail: bool) {
        lock(&self.disk).fail_write = fail;
    }

    /// Limits total bytes on the disk; appends beyond it fail with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<usize>) {
        lock(&self.disk).capacity = bytes;
    }

    /// Number of successful data syncs so far.
    pub fn sync_count(&self) -> u64 {
        lock(&self.disk).syncs
    }

    /// Number of append calls so far.
    pub fn write_count(&self) -> u64 {
        lock(&self.disk).writes
    }

    /// Names of the files on the disk, sorted.
    pub fn file_names(&self) -> Vec<String> {
        lock(&self.disk).files.keys().cloned().collect()
    }

    /// A copy of a file's bytes (synced or not).
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.disk).files.get(name).map(|f| f.data.clone())
    }

    /// Replaces a file's bytes (as if on disk and synced): for corruption tests.
    pub fn put_file(&self, name: &str, bytes: Vec<u8>) {
        let mut disk = lock(&self.disk);
        let synced_len = bytes.len();
        disk.files.insert(
            name.to_string(),
            MemFileData {
                data: bytes,
                synced_len,
            },
        );
        disk.undurable.remove(name);
    }

    /// Simulates power loss: unsynced bytes beyond what `keep` allows are
    /// lost, and files whose creation was never made durable disappear.
    /// `keep(name, unsynced_len)` returns how many unsynced bytes survive.
    pub fn crash(&self, mut keep: impl FnMut(&str, usize) -> usize) {
        let mut disk = lock(&self.disk);
        let undurable = std::mem::take(&mut disk.undurable);
        for name in undurable {
            disk.files.remove(&name);
        }
        for (name, file) in disk.files.iter_mut() {
            let unsynced = file.data.len() - file.synced_len;
            let kept = keep(name, unsynced).min(unsynced);
            file.data.truncate(file.synced_len + kept);
            file.synced_len = file.data.len();
        }
        disk.fail_sync = false;
        disk.fail_write = false;
    }
}

impl Storage for MemStorage {
    type File = MemFile;

    fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }

    fn create(&mut self, name: &str) -> io::Result<MemFile> {
        let mut disk = lock(&self.disk);
        if disk.files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} exists"),
            ));
        }
        disk.files.insert(name.to_string(), MemFileData::default());
        disk.undurable.insert(name.to_string());
        Ok(MemFile {
            disk: Arc::clone(&self.disk),
            gate: Arc::clone(&self.gate),
            name: name.to_string(),
        })
    }

    fn open(&mut self, name: &str) -> io::Result<MemFile> {
        if !lock(&self.disk).files.contains_key(name) {
            return Err(not_found(name));
        }
        Ok(MemFile {
            disk: Arc::clone(&self.disk),
            gate: Arc::clone(&self.gate),
            name: name.to_string(),
        })
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.undurable.remove(name);
        disk.files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        if disk.fail_sync {
            return Err(io::Error::other("injected directory fsync failure"));
        }
        disk.undurable.clear();
        Ok(())
    }
}

/// A handle to one in-memory file.
#[derive(Debug)]
pub struct MemFile {
    disk: Arc<Mutex<Disk>>,
    gate: Arc<SyncGate>,
    name: String,
}

fn sync_file(disk: &Mutex<Disk>, gate: &SyncGate, name: &str) -> io::Result<()> {
    gate.pass();
    let mut disk = lock(disk);
    if disk.fail_sync {
        return Err(io::Error::other("injected fdatasync failure"));
    }
    disk.syncs += 1;
    let file = disk.files.get_mut(name).ok_or_else(|| not_found(name))?;
    file.synced_len = file.data.len();
    Ok(())
}

impl SyncData for MemFile {
    fn sync_data(&self) -> io::Result<()> {
        sync_file(&self.disk, &self.gate, &self.name)
    }
}

impl SegmentFile for MemFile {
    type Syncer = MemFile;

    fn syncer(&self) -> io::Result<MemFile> {
        Ok(MemFile {
            disk: Arc::clone(&self.disk),
            gate: Arc::clone(&self.gate),
            name: self.name.clone(),
        })
    }

    fn len(&self) -> io::Result<u64> {
        let disk = lock(&self.disk);
        let file = disk
            .files
            .get(&self.name)
            .ok_or_else(|| not_found(&self.name))?;
        Ok(file.data.len() as u64)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let disk = lock(&self.disk);
        let file = disk
            .files
            .get(&self.name)
            .ok_or_else(|| not_found(&self.name))?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = file
            .data
            .get(start..start.saturating_add(buf.len()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.writes += 1;
        if disk.fail_write {
            return Err(io::Error::other("injected write failure"));
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if let Some(cap) = disk.capacity {
            if disk.used() + total > cap {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
        }
        let file = disk
            .files
            .get_mut(&self.name)
            .ok_or_else(|| not_found(&self.name))?;
        for part in parts {
            file.data.extend_from_slice(part);
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        sync_file(&self.disk, &self.gate, &self.name)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        let file = disk
            .files
            .get_mut(&self.name)
            .ok_or_else(|| not_found(&self.name))?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        file.data.truncate(len);
        file.synced_len = file.synced_len.min(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn paused_syncs_are_held_until_resumed_and_then_see_injected_failures() {
        let mut disk = MemStorage::new();
        let mut file = disk.create("a").unwrap();
        file.append(&[b"abc"]).unwrap();
        let syncer = file.syncer().unwrap();
        disk.pause_syncs();
        let (tx, rx) = mpsc::channel();
        let held = std::thread::spawn(move || tx.send(syncer.sync_data()).unwrap());
        // Held: no result, nothing synced, while other disk calls still work.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        assert_eq!(disk.sync_count(), 0);
        assert_eq!(disk.file_bytes("a").unwrap(), b"abc");
        disk.set_fail_sync(true);
        disk.resume_syncs();
        let result = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(result.is_err(), "failure injected while held applies");
        held.join().unwrap();
        disk.set_fail_sync(false);
        file.sync_data().unwrap();
        assert_eq!(disk.sync_count(), 1);
    }
}
