//! Storage failpoints for fault-injection tests (feature `fault-injection`
//! only; never compiled into a normal build).
//!
//! Process-global switches: while one is on, every [`DiskFile`] /
//! [`DiskSyncer`] in the process fails that operation, with `EIO` as a
//! dying disk would, or with an errno the test chooses (`ENOSPC`: a full
//! disk). Tests that use them must not run concurrently with other tests in
//! the same process.
//!
//! [`DiskFile`]: super::DiskFile
//! [`DiskSyncer`]: super::file_storage::DiskSyncer

use std::io;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// The errno `fdatasync` fails with; 0 while off.
static FAIL_SYNC: AtomicI32 = AtomicI32::new(0);
/// The errno appends fail with; 0 while off.
static FAIL_WRITE: AtomicI32 = AtomicI32::new(0);
static STALL_SYNC_MS: AtomicU64 = AtomicU64::new(0);

/// While non-zero, every `fdatasync` first sleeps this long (a stalling
/// disk: slow, not failing).
pub fn stall_sync(millis: u64) {
    STALL_SYNC_MS.store(millis, Ordering::SeqCst);
}

/// While on, `fdatasync` of any segment file fails with `EIO`.
pub fn fail_sync(on: bool) {
    fail_sync_with(on.then_some(libc::EIO));
}

/// While on, appending to any segment file fails with `EIO` (nothing written).
pub fn fail_write(on: bool) {
    fail_write_with(on.then_some(libc::EIO));
}

/// While `Some(errno)`, `fdatasync` of any segment file fails with that
/// errno (e.g. `libc::ENOSPC`, as thin-provisioned or network storage
/// reports a full disk only at sync); `None` turns it off.
pub fn fail_sync_with(errno: Option<i32>) {
    FAIL_SYNC.store(errno.unwrap_or(0), Ordering::SeqCst);
}

/// While `Some(errno)`, appending to any segment file fails with that errno
/// and writes nothing (`libc::ENOSPC`: a full disk); `None` turns it off.
pub fn fail_write_with(errno: Option<i32>) {
    FAIL_WRITE.store(errno.unwrap_or(0), Ordering::SeqCst);
}

/// The error for a switch holding `errno` (0: off).
fn injected(errno: i32) -> io::Result<()> {
    if errno != 0 {
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(())
}

pub(crate) fn check_sync() -> io::Result<()> {
    let stall = STALL_SYNC_MS.load(Ordering::SeqCst);
    if stall > 0 {
        std::thread::sleep(std::time::Duration::from_millis(stall));
    }
    injected(FAIL_SYNC.load(Ordering::SeqCst))
}

pub(crate) fn check_write() -> io::Result<()> {
    injected(FAIL_WRITE.load(Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The switches are process-global and other unit tests write real
    // segment files concurrently, so only the pure mapping is tested here;
    // tests/tests/faults.rs drives the switches against a whole node.

    #[test]
    fn an_injected_errno_is_the_os_error_a_real_disk_would_give() {
        assert!(injected(0).is_ok());
        let full = injected(libc::ENOSPC).unwrap_err();
        assert_eq!(full.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(full.kind(), io::ErrorKind::StorageFull);
        let dying = injected(libc::EIO).unwrap_err();
        assert_eq!(dying.raw_os_error(), Some(libc::EIO));
    }
}
