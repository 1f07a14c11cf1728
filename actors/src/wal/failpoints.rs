//! Storage failpoints for fault-injection tests (feature `fault-injection`
//! only; never compiled into a normal build).
//!
//! Process-global switches: while one is on, every [`DiskFile`] /
//! [`DiskSyncer`] in the process fails that operation with `EIO`, as a dying
//! disk would. Tests that use them must not run concurrently with other
//! tests in the same process.
//!
//! [`DiskFile`]: super::DiskFile
//! [`DiskSyncer`]: super::file_storage::DiskSyncer

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static FAIL_SYNC: AtomicBool = AtomicBool::new(false);
static FAIL_WRITE: AtomicBool = AtomicBool::new(false);
static STALL_SYNC_MS: AtomicU64 = AtomicU64::new(0);

/// While non-zero, every `fdatasync` first sleeps this long (a stalling
/// disk: slow, not failing).
pub fn stall_sync(millis: u64) {
    STALL_SYNC_MS.store(millis, Ordering::SeqCst);
}

/// While on, `fdatasync` of any segment file fails with `EIO`.
pub fn fail_sync(on: bool) {
    FAIL_SYNC.store(on, Ordering::SeqCst);
}

/// While on, appending to any segment file fails with `EIO` (nothing written).
pub fn fail_write(on: bool) {
    FAIL_WRITE.store(on, Ordering::SeqCst);
}

/// An `EIO` if `on` is set.
fn injected(on: &AtomicBool) -> io::Result<()> {
    if on.load(Ordering::SeqCst) {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}

pub(crate) fn check_sync() -> io::Result<()> {
    let stall = STALL_SYNC_MS.load(Ordering::SeqCst);
    if stall > 0 {
        std::thread::sleep(std::time::Duration::from_millis(stall));
    }
    injected(&FAIL_SYNC)
}

pub(crate) fn check_write() -> io::Result<()> {
    injected(&FAIL_WRITE)
}
