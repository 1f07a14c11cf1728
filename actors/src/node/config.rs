//! Runtime settings of a node (beyond storage).

use serde::{Deserialize, Serialize};

/// Actor runtime settings. Every queue and wait has a limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Partition actors; mailboxes are hashed onto them.
    pub partitions: u32,
    /// Most requests queued for one partition before callers wait.
    pub partition_queue: usize,
    /// Restarts of one actor allowed within `restart_window_secs` before the
    /// supervisor gives up and fails the node.
    pub max_restarts: u32,
    /// The window for `max_restarts`, in seconds.
    pub restart_window_secs: u64,
    /// How often the expiry actor looks for expired and purgeable messages.
    pub expiry_interval_ms: u64,
    /// Most messages expired or purged per partition per round.
    pub expiry_batch: usize,
    /// Notifications buffered per subscriber before it is marked lagging.
    pub subscriber_buffer: usize,
    /// Largest inbox page.
    pub max_inbox_page: usize,
    /// How long a request waits for a restarting partition.
    pub request_wait_ms: u64,
    /// How long shutdown waits for requests in progress to finish.
    pub shutdown_drain_ms: u64,
    /// How often the WAL actor checks whether to compact, in milliseconds.
    pub compaction_check_ms: u64,
    /// Compact only while the log is larger than this many bytes...
    pub compaction_min_log_bytes: u64,
    /// ...and larger than this many times the live message bytes.
    pub compaction_max_amplification: u64,
    /// Let the heap use transparent huge pages. Off by default: the first
    /// touch of a 2 MiB page zeroes it in one page fault, stalling whichever
    /// request thread touched it for up to milliseconds (the node's p99 send
    /// latency fell from ~12 ms to ~7.5 ms with them off; BENCHMARKS.md).
    /// Process-wide; applied by `spine serve` at start.
    pub huge_pages: bool,
    /// Service routing and the reference services (`[services]` in the
    /// node's file; set by `spine serve`).
    #[serde(skip)]
    pub services: crate::services::ServicesConfig,
    /// The service directory; `None`: the embedded demo set.
    #[serde(skip)]
    pub service_directory: Option<std::sync::Arc<spine_core::services::ServiceDirectory>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            partitions: 8,
            partition_queue: 4096,
            max_restarts: 5,
            restart_window_secs: 60,
            expiry_interval_ms: 1000,
            expiry_batch: 1000,
            subscriber_buffer: 1024,
            max_inbox_page: 5000,
            request_wait_ms: 30_000,
            shutdown_drain_ms: 30_000,
            compaction_check_ms: 10_000,
            compaction_min_log_bytes: 256 << 20,
            compaction_max_amplification: 2,
            huge_pages: false,
            services: crate::services::ServicesConfig::default(),
            service_directory: None,
        }
    }
}

impl RuntimeConfig {
    /// Checks every value is usable; says which is not and why.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 12] = [
            (
                (1..=4096).contains(&self.partitions),
                "partitions must be 1 to 4096",
            ),
            (
                (1..=1 << 20).contains(&self.partition_queue),
                "partition_queue must be 1 to 1048576",
            ),
            (
                (1..=1000).contains(&self.max_restarts),
                "max_restarts must be 1 to 1000",
            ),
            (
                (1..=86_400).contains(&self.restart_window_secs),
                "restart_window_secs must be 1 to 86400",
            ),
            (
                (10..=3_600_000).contains(&self.expiry_interval_ms),
                "expiry_interval_ms must be 10 to 3600000",
            ),
            (
                (1..=1_000_000).contains(&self.expiry_batch),
                "expiry_batch must be 1 to 1000000",
            ),
            (
                (1..=1 << 20).contains(&self.subscriber_buffer),
                "subscriber_buffer must be 1 to 1048576",
            ),
            (
                (10..=5000).contains(&self.max_inbox_page),
                "max_inbox_page must be 10 to 5000",
            ),
            (
                (1..=600_000).contains(&self.request_wait_ms)
                    && (1..=600_000).contains(&self.shutdown_drain_ms),
                "request_wait_ms and shutdown_drain_ms must be 1 to 600000",
            ),
            (
                (100..=3_600_000).contains(&self.compaction_check_ms),
                "compaction_check_ms must be 100 to 3600000",
            ),
            (
                self.compaction_min_log_bytes <= 1 << 40,
                "compaction_min_log_bytes must be at most 1099511627776",
            ),
            (
                (1..=100).contains(&self.compaction_max_amplification),
                "compaction_max_amplification must be 1 to 100",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err((*why).to_string()),
            None => self.services.validate(),
        }
    }
}
