//! What machine a plan ran on: its CPUs and memory, how busy it already
//! was, and the disk's raw `fdatasync` rate as a baseline, so the capacity
//! figure can be read as a ratio to what the hardware allows.
//!
//! Invariants and why:
//! - Every reading is best effort and `Option`al: a figure the OS does not
//!   offer (no `/proc`) is absent from the report, never a made-up zero.
//!   Only the disk baseline can fail the plan, because without a writable
//!   data directory there is no node to measure either.
//! - The baseline writes 4 KiB and `fdatasync`s in a loop, appending to one
//!   file in the plan's data directory (the same file system the node's log
//!   then uses), before the node starts, so nothing else of ours competes.
//!   The file is removed afterwards.
//! - CPU readings are Linux `/proc` tick counts (10 ms resolution): good
//!   for "how many cores were busy over a step of seconds", not finer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The machine a plan ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU's model name (`/proc/cpuinfo`).
    pub cpu_model: Option<String>,
    /// Logical CPUs the OS lists (`/proc/cpuinfo` processors).
    pub logical_cpus: Option<usize>,
    /// CPUs this process may use (`std::thread::available_parallelism`).
    pub available_parallelism: usize,
    /// Physical memory, MiB (`/proc/meminfo`).
    pub memory_mib: Option<u64>,
    /// 1, 5 and 15 minute load averages when the plan started: how busy the
    /// machine already was.
    pub load_average_at_start: Option<[f64; 3]>,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    /// The disk's raw `fdatasync` rate in the data directory.
    pub disk: Option<DiskBaseline>,
}

/// The raw rate of 4 KiB appends each followed by `fdatasync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskBaseline {
    /// Where it was measured (the plan's data directory).
    pub dir: PathBuf,
    /// Bytes written before each sync.
    pub write_bytes: u64,
    /// How long the loop ran.
    pub seconds: f64,
    /// Write + `fdatasync` pairs completed.
    pub syncs: u64,
    /// Pairs per second.
    pub fdatasync_per_s: f64,
    /// Median time of one pair, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
}

/// Describes this machine (without the disk baseline).
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok();
    let cpu_model = cpuinfo.as_deref().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let logical_cpus = cpuinfo
        .as_deref()
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .filter(|n| *n > 0);
    let memory_mib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024)
    });
    let load_average_at_start = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| {
        let mut it = l.split_whitespace().map(|f| f.parse::<f64>().ok());
        Some([it.next()??, it.next()??, it.next()??])
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|k| k.trim().to_string());
    Machine {
        cpu_model,
        logical_cpus,
        available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_mib,
        load_average_at_start,
        kernel,
        disk: None,
    }
}

/// Appends 4 KiB and `fdatasync`s in a loop in `dir` for about `duration`
/// (at least one pair); blocking. Removes its file afterwards.
pub fn fdatasync_baseline(dir: &Path, duration: Duration) -> std::io::Result<DiskBaseline> {
    const WRITE: usize = 4096;
    let path = dir.join("fdatasync-baseline");
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let block = [0xa5u8; WRITE];
        let mut times = Vec::new();
        let started = Instant::now();
        while times.is_empty() || started.elapsed() < duration {
            let t = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            times.push(t.elapsed().as_micros() as u64);
        }
        let seconds = started.elapsed().as_secs_f64();
        times.sort_unstable();
        let at = |q: f64| {
            let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
            times.get(i).copied().unwrap_or(0)
        };
        Ok(DiskBaseline {
            dir: dir.to_path_buf(),
            write_bytes: WRITE as u64,
            seconds,
            syncs: times.len() as u64,
            fdatasync_per_s: times.len() as f64 / seconds.max(1e-9),
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: times.last().copied().unwrap_or(0),
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// CPU seconds this process has used (all threads, user + system); Linux.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // utime and stime are fields 14 and 15; the command name (field 2) is
    // parenthesised and may contain spaces, so count from after it.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Busy CPU seconds of the whole machine, all cores (Linux `/proc/stat`:
/// user, nice, system, irq, softirq and steal).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(busy / 100.0)
}

/// A CPU reading to compare a later one against.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    at: Instant,
    ours: Option<f64>,
    machine: Option<f64>,
}

impl CpuMark {
    /// Reads both counters now.
    pub fn now() -> CpuMark {
        CpuMark {
            at: Instant::now(),
            ours: process_cpu_seconds(),
            machine: machine_busy_seconds(),
        }
    }

    /// Since this mark: (cores this process kept busy, cores everything
    /// else on the machine kept busy).
    pub fn since(&self) -> (Option<f64>, Option<f64>) {
        let elapsed = self.at.elapsed().as_secs_f64().max(1e-3);
        let ours = process_cpu_seconds().zip(self.ours).map(|(b, a)| b - a);
        let machine = machine_busy_seconds().zip(self.machine).map(|(b, a)| b - a);
        let others = machine.zip(ours).map(|(m, o)| ((m - o) / elapsed).max(0.0));
        (ours.map(|o| o / elapsed), others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_described() {
        let m = describe();
        assert!(m.available_parallelism >= 1);
        if cfg!(target_os = "linux") {
            assert!(m.logical_cpus.unwrap() >= 1);
            assert!(m.memory_mib.unwrap() > 0);
            assert!(m.load_average_at_start.is_some());
            assert!(process_cpu_seconds().is_some());
            assert!(machine_busy_seconds().is_some());
        }
        assert!(m.disk.is_none());
    }

    #[test]
    fn the_fdatasync_baseline_measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let b = fdatasync_baseline(dir.path(), Duration::from_millis(50)).unwrap();
        assert!(b.syncs >= 1);
        assert!(b.fdatasync_per_s > 0.0);
        assert!(b.p50_us <= b.p99_us && b.p99_us <= b.max_us, "{b:?}");
        assert_eq!(b.write_bytes, 4096);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A directory that does not exist is an error, not a panic.
        assert!(fdatasync_baseline(&dir.path().join("missing"), Duration::ZERO).is_err());
    }
}
