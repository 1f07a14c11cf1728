//! Criterion settings shared by the suites, so every suite of a kind is
//! measured alike and tuned in one place. (One function rather than one
//! per kind: each suite compiles this module on its own and uses one kind.)

use std::time::Duration;

use criterion::Criterion;

/// `waits_for_disk: false` for CPU-only micro-benchmarks (codec, envelope,
/// routing): many short samples. `true` for suites that write to disk or
/// run a node (WAL, node): fewer, longer samples, since iterations wait
/// for `fdatasync`.
pub fn config(waits_for_disk: bool) -> Criterion {
    if waits_for_disk {
        Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
    } else {
        Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
    }
}
