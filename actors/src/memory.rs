//! Process-wide memory settings.
//!
//! Transparent huge pages (THP): with THP the kernel backs the heap with
//! 2 MiB pages and zeroes each one in a single page fault on first touch.
//! The node's heap grows with every accepted message, so request threads
//! keep taking those faults: each stalls its thread (and every request the
//! thread carries) for up to milliseconds. Measured on the development VM
//! (BENCHMARKS.md), turning THP off for the process took the durable
//! node from ~150k to ~190k msgs/s and its p99 send-to-ack latency from
//! ~12 ms to ~7.5 ms. Databases that care about tail latency (Redis,
//! MongoDB) give the same advice.
//!
//! Invariant: the setting is applied once, before the runtime starts, and
//! covers every thread of the process (it is per address space).

/// Allows (`true`) or forbids (`false`) transparent huge pages for this
/// process, via `prctl(PR_SET_THP_DISABLE)`.
pub fn set_transparent_huge_pages(allowed: bool) -> std::io::Result<()> {
    nix::sys::prctl::set_thp_disable(!allowed).map_err(std::io::Error::from)
}

/// Whether transparent huge pages are allowed for this process.
pub fn transparent_huge_pages_allowed() -> std::io::Result<bool> {
    nix::sys::prctl::get_thp_disable()
        .map(|disabled| !disabled)
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_round_trips() {
        let before = transparent_huge_pages_allowed().unwrap();
        set_transparent_huge_pages(false).unwrap();
        assert!(!transparent_huge_pages_allowed().unwrap());
        set_transparent_huge_pages(true).unwrap();
        assert!(transparent_huge_pages_allowed().unwrap());
        set_transparent_huge_pages(before).unwrap();
    }
}
