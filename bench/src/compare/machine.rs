//! The machine a comparison ran on, and its disk's raw durable-write rate.
//!
//! The baseline is the floor every durable peer stands on: one thread
//! appending 1 KiB and calling `fdatasync` after each, for about two
//! seconds, in the directory where the peers keep their data (so the same
//! filesystem). Everything read from `/proc` is best effort: a missing
//! file leaves a field empty, it never fails the run.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::report::{latency_histogram, Latency};

/// What the report says about the machine.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    /// Filesystem type and device of the data directory, e.g. `ext4 /dev/vda1`.
    pub(crate) data_filesystem: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute figures when the run started
    /// and when it ended: other work on a shared machine shows here.
    pub(crate) load_average_start: String,
    pub(crate) load_average_end: String,
}

/// The raw `write(1 KiB)` + `fdatasync` loop.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct FsyncBaseline {
    pub(crate) syncs_per_s: f64,
    pub(crate) latency_us: Latency,
    pub(crate) seconds: f64,
}

impl Machine {
    /// Reads the machine's description; `data_dir` names the filesystem.
    pub(crate) fn describe(data_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpu_model(&cpuinfo),
            memory_gib: mem_total_kib(&meminfo) as f64 / (1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            data_filesystem: filesystem_of(&mounts, &dir.display().to_string()),
            load_average_start: load_average(),
            load_average_end: String::new(),
        }
    }
}

/// The 1, 5 and 15 minute load averages, e.g. `4.26 4.30 4.10`.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `TYPE DEVICE` of the longest mount point that contains `path`.
pub(crate) fn filesystem_of(mounts: &str, path: &str) -> String {
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(mnt), Some(ty)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let inside = path == mnt
            || mnt == "/"
            || path
                .strip_prefix(mnt)
                .is_some_and(|rest| rest.starts_with('/'));
        if inside && best.as_ref().is_none_or(|(len, _)| mnt.len() >= *len) {
            best = Some((mnt.len(), format!("{ty} {dev}")));
        }
    }
    best.map(|(_, s)| s).unwrap_or_default()
}

/// Appends 1 KiB and `fdatasync`s, one after the other, for `duration`,
/// in a scratch file inside `dir` (removed afterwards).
pub(crate) fn fdatasync_baseline(dir: &Path, duration: Duration) -> anyhow::Result<FsyncBaseline> {
    let path = dir.join("fdatasync-baseline.bin");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 1024];
    let mut hist = latency_histogram()?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        let _ = hist.record((t.elapsed().as_micros() as u64).max(1));
        n += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(FsyncBaseline {
        syncs_per_s: n as f64 / seconds,
        latency_us: Latency::from_hist(&hist),
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_containing_mount_wins() {
        let mounts = "/dev/vda1 / ext4 rw 0 0\n\
                      tmpfs /tmp tmpfs rw 0 0\n\
                      /dev/vdb /work xfs rw 0 0\n";
        assert_eq!(filesystem_of(mounts, "/work/x/target"), "xfs /dev/vdb");
        assert_eq!(filesystem_of(mounts, "/tmp"), "tmpfs tmpfs");
        assert_eq!(filesystem_of(mounts, "/workshop"), "ext4 /dev/vda1");
        assert_eq!(filesystem_of("", "/x"), "");
    }

    #[test]
    fn proc_fields_parse_and_missing_ones_are_empty() {
        assert_eq!(cpu_model("processor: 0\nmodel name\t: Xeon X\n"), "Xeon X");
        assert_eq!(cpu_model(""), "");
        assert_eq!(mem_total_kib("MemTotal:       2048 kB\n"), 2048);
        assert_eq!(mem_total_kib("nothing"), 0);
    }

    #[test]
    fn the_baseline_measures_something_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = fdatasync_baseline(dir.path(), Duration::from_millis(50)).expect("baseline");
        assert!(b.syncs_per_s > 0.0);
        assert!(b.latency_us.p50 > 0);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
