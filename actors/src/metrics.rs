//! Prometheus metrics: the exporter, the catalogue of series the node
//! emits, and the queue-depth gauges.
//!
//! The node's code records through the `metrics` facade macros wherever an
//! event happens; this module installs the global recorder that turns them
//! into a Prometheus text endpoint (`GET /metrics`, any path answers).
//!
//! Invariants:
//! - Every series in [`COUNTERS`], [`HISTOGRAMS`] and [`GAUGES`] is
//!   described and registered when the recorder is installed, so a scrape
//!   sees each one (counters at 0, empty histograms) before its first event
//!   and dashboards never have to special-case "absent".
//! - Histograms are real Prometheus histograms (fixed buckets), never
//!   summaries: [`FSYNC_SECONDS_BUCKETS`] spans 50 µs to 10 s for
//!   `fdatasync` latency, [`BATCH_RECORDS_BUCKETS`] powers of two up to the
//!   largest group commit the configuration allows.
//! - The endpoint is bound synchronously in [`install`]: a port in use or
//!   an address that is not local is an error there, with a stable code,
//!   never a log line from a background task after start-up succeeded.
//! - Deciding *where* it may listen (loopback unless allowed) is the
//!   caller's job (the `spine` binary's configuration validation).
//! - Nothing here panics; the gauge task only reads atomics through
//!   [`NodeHandle::queue_depths`] and ends when its handle is dropped or
//!   the task is aborted.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use spine_core::ErrorCode;

use crate::node::{NodeHandle, QueueDepths};

/// A label: its name and every value it takes.
pub type Label = (&'static str, &'static [&'static str]);

/// Counters the node emits: name, label (if any), help.
pub const COUNTERS: [(&str, Option<Label>, &str); 16] = [
    (
        "spine_messages_accepted_total",
        None,
        "Messages accepted into an inbox (durable), including non-delivery reports.",
    ),
    (
        "spine_messages_acknowledged_total",
        None,
        "Messages acknowledged by their recipient.",
    ),
    (
        "spine_messages_expired_total",
        None,
        "Messages that expired uncollected (each yields a non-delivery report).",
    ),
    (
        "spine_messages_purged_total",
        None,
        "Messages purged after their retention period.",
    ),
    (
        "spine_messages_delivered_total",
        None,
        "Message chunks downloaded by their recipient.",
    ),
    (
        "spine_subscriber_lagged_total",
        None,
        "New messages deferred because a subscriber fell behind (pushed later from its inbox, in order).",
    ),
    (
        "spine_actor_restarts_total",
        Some(("kind", crate::supervisor::CHILD_LABELS)),
        "Actors restarted by the supervisor, by kind of actor.",
    ),
    (
        "spine_node_failures_total",
        None,
        "Times the supervisor gave up and failed the node.",
    ),
    (
        "spine_wal_records_total",
        None,
        "Records made durable in the write-ahead log.",
    ),
    (
        "spine_wal_fsyncs_total",
        None,
        "fdatasync calls on the write-ahead log.",
    ),
    (
        "spine_wal_segments_compacted_total",
        None,
        "Log segments freed by compaction while running.",
    ),
    (
        "spine_connection_failures_total",
        None,
        "Connection actors that failed (their connection was closed).",
    ),
    (
        "spine_connections_refused_total",
        None,
        "Connections refused at network.max_connections.",
    ),
    (
        "spine_auth_failures_total",
        None,
        "HELLOs refused (wrong password, certificate or mailbox).",
    ),
    (
        "spine_protocol_errors_total",
        None,
        "Frames the native protocol could not decode (answered with ERROR).",
    ),
    (
        "spine_service_requests_total",
        Some(("outcome", &["ok", "refused", "failed"])),
        "Service requests answered: ok, refused by the service or its checks (a caller's mistake), or failed (timeout, no provider, unavailable).",
    ),
];

/// Histograms: name, buckets, help.
pub const HISTOGRAMS: [(&str, &[f64], &str); 3] = [
    (
        "spine_wal_fsync_seconds",
        &FSYNC_SECONDS_BUCKETS,
        "Duration of each fdatasync of the write-ahead log, in seconds.",
    ),
    (
        "spine_wal_batch_records",
        &BATCH_RECORDS_BUCKETS,
        "Records made durable by each fdatasync (group-commit size).",
    ),
    (
        "spine_service_request_seconds",
        &FSYNC_SECONDS_BUCKETS,
        "Time from a service request's check to its answer, in seconds.",
    ),
];

/// Gauges: name, help. `spine_partition_queue_depth` has a `partition`
/// label, one series per partition.
pub const GAUGES: [(&str, &str); 4] = [
    (
        "spine_up",
        "1 while the node is running and serving; 0 before it is ready.",
    ),
    (
        "spine_partition_queue_depth",
        "Requests queued or running per partition (bounded by runtime.partition_queue).",
    ),
    (
        "spine_connections",
        "Open native-protocol connections (TCP, TLS and QUIC).",
    ),
    (
        "spine_wal_in_flight",
        "Records queued or in flight in the write-ahead log (bounded by storage.max_in_flight).",
    ),
];

/// Bucket bounds for `fdatasync` latency, in seconds: 50 µs to 10 s.
pub const FSYNC_SECONDS_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds for records per group commit: powers of two up to 2^20
/// (the largest `storage.max_batch_records`).
pub const BATCH_RECORDS_BUCKETS: [f64; 21] = [
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
    256.0,
    512.0,
    1024.0,
    2048.0,
    4096.0,
    8192.0,
    16384.0,
    32768.0,
    65536.0,
    131_072.0,
    262_144.0,
    524_288.0,
    1_048_576.0,
];

/// How often [`spawn_gauges`] samples queue depths in production.
pub const GAUGE_PERIOD: Duration = Duration::from_secs(1);

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen socket could not be bound (in use, not a local address,
    /// no permission).
    #[error("cannot serve metrics on {addr}: {detail}; is another process (or another node) using that port? Choose another with --metrics-listen, or turn metrics off with --metrics-enabled false")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        detail: String,
    },
    /// No tokio runtime to run the endpoint on.
    #[error("cannot serve metrics: install must run inside a tokio runtime")]
    NoRuntime,
    /// The recorder could not be built or installed (e.g. one is already
    /// installed in this process).
    #[error("cannot install the metrics recorder: {0}")]
    Install(String),
}

impl ErrorCode for MetricsError {
    fn code(&self) -> &'static str {
        match self {
            MetricsError::Bind { .. } => "METRICS_BIND_FAILED",
            MetricsError::NoRuntime => "METRICS_NO_RUNTIME",
            MetricsError::Install(_) => "METRICS_INSTALL_FAILED",
        }
    }
}

/// A builder with Spine's histogram buckets (no exporter chosen yet).
pub fn builder() -> Result<PrometheusBuilder, MetricsError> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets, _) in HISTOGRAMS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
            .map_err(|e| MetricsError::Install(e.to_string()))?;
    }
    Ok(builder)
}

/// Installs the global recorder with its HTTP endpoint on `listen`, then
/// describes and registers every series ([`register_all`]) with `spine_up`
/// at 0. Must be called inside a tokio runtime (the endpoint runs on it);
/// the socket is bound before this returns.
pub fn install(listen: SocketAddr) -> Result<(), MetricsError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| MetricsError::NoRuntime)?;
    let (recorder, exporter) = {
        let _context = runtime.enter();
        builder()?
            .with_http_listener(listen)
            .build()
            .map_err(|e| match e {
                BuildError::FailedToCreateHTTPListener(detail) => MetricsError::Bind {
                    addr: listen,
                    detail,
                },
                other => MetricsError::Install(other.to_string()),
            })?
    };
    metrics::set_global_recorder(recorder).map_err(|e| MetricsError::Install(e.to_string()))?;
    runtime.spawn(async move {
        // It only returns on a fatal error of the listener itself.
        if let Err(e) = exporter.await {
            tracing::error!(error = ?e, "the metrics endpoint stopped");
        }
    });
    register_all();
    Ok(())
}

/// Describes every series and registers the counters and histograms (and
/// `spine_up` = 0) with the current recorder, so they are exported before
/// their first event.
pub fn register_all() {
    for (name, labels, help) in COUNTERS {
        metrics::describe_counter!(name, help);
        match labels {
            None => metrics::counter!(name).increment(0),
            Some((label, values)) => {
                for value in values {
                    metrics::counter!(name, label => *value).increment(0);
                }
            }
        }
    }
    for (name, _, help) in HISTOGRAMS {
        metrics::describe_histogram!(name, help);
        // Registering is enough: it is exported with zero counts.
        let _ = metrics::histogram!(name);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(name, help);
    }
    metrics::gauge!("spine_up").set(0.0);
    metrics::gauge!("spine_connections").set(0.0);
}

/// Gauges of one node's queues, one series per partition.
#[derive(Debug)]
pub struct DepthGauges {
    partitions: Vec<metrics::Gauge>,
    wal_in_flight: metrics::Gauge,
}

impl DepthGauges {
    /// Registers the gauges for `partitions` partitions.
    pub fn new(partitions: usize) -> DepthGauges {
        DepthGauges {
            partitions: (0..partitions)
                .map(|p| metrics::gauge!("spine_partition_queue_depth", "partition" => p.to_string()))
                .collect(),
            wal_in_flight: metrics::gauge!("spine_wal_in_flight"),
        }
    }

    /// Sets every gauge from `depths`.
    pub fn record(&self, depths: &QueueDepths) {
        for (gauge, depth) in self.partitions.iter().zip(&depths.partitions) {
            gauge.set(*depth as f64);
        }
        self.wal_in_flight.set(depths.wal_in_flight as f64);
    }
}

/// Samples `node`'s queue depths now and then every `period` on the
/// current tokio runtime, and sets `spine_up` to 1. The first sample is
/// taken before this returns, so a scrape right after start-up sees every
/// series. Abort the returned task to stop sampling.
pub fn spawn_gauges(node: NodeHandle, period: Duration) -> tokio::task::JoinHandle<()> {
    let depths = node.queue_depths();
    let gauges = DepthGauges::new(depths.partitions.len());
    gauges.record(&depths);
    let up = metrics::gauge!("spine_up");
    up.set(1.0);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate: already sampled
        loop {
            ticks.tick().await;
            gauges.record(&node.queue_depths());
            up.set(1.0);
        }
    })
}

/// Marks the node as not serving (`spine_up` 0), e.g. when it failed or
/// is shutting down.
pub fn mark_down() {
    metrics::gauge!("spine_up").set(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(f: impl FnOnce()) -> String {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn every_series_is_exported_before_its_first_event() {
        let text = rendered(register_all);
        for (name, labels, _) in COUNTERS {
            match labels {
                None => assert!(text.contains(&format!("\n{name} 0\n")), "{name}:\n{text}"),
                Some((label, values)) => {
                    for value in values {
                        let line = format!("{name}{{{label}=\"{value}\"}} 0\n");
                        assert!(text.contains(&line), "{line}:\n{text}");
                    }
                }
            }
            assert!(text.contains(&format!("# TYPE {name} counter")), "{text}");
            assert!(text.contains(&format!("# HELP {name} ")), "{text}");
        }
        for (name, _, _) in HISTOGRAMS {
            assert!(
                text.contains(&format!("# TYPE {name} histogram")),
                "a histogram, not a summary: {name}:\n{text}"
            );
            assert!(text.contains(&format!("{name}_count 0")), "{text}");
        }
        assert!(text.contains("spine_up 0"), "{text}");
    }

    #[test]
    fn histograms_use_seconds_and_count_buckets() {
        let text = rendered(|| {
            register_all();
            metrics::histogram!("spine_wal_fsync_seconds").record(0.003);
            metrics::histogram!("spine_wal_batch_records").record(300.0);
        });
        assert!(
            text.contains("spine_wal_fsync_seconds_bucket{le=\"0.0025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("spine_wal_fsync_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("spine_wal_batch_records_bucket{le=\"256\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("spine_wal_batch_records_bucket{le=\"512\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("spine_wal_batch_records_bucket{le=\"1048576\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn buckets_are_strictly_increasing() {
        for (name, buckets, _) in HISTOGRAMS {
            assert!(
                buckets.windows(2).all(|w| w[0] < w[1]),
                "{name}: {buckets:?}"
            );
        }
    }

    #[test]
    fn depth_gauges_have_one_series_per_partition() {
        let text = rendered(|| {
            let gauges = DepthGauges::new(3);
            gauges.record(&QueueDepths {
                partitions: vec![0, 7, 2],
                partition_limit: 10,
                wal_in_flight: 5,
                wal_limit: 100,
            });
        });
        assert!(
            text.contains("spine_partition_queue_depth{partition=\"1\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("spine_partition_queue_depth{partition=\"2\"} 2"),
            "{text}"
        );
        assert!(text.contains("spine_wal_in_flight 5"), "{text}");
    }

    #[test]
    fn a_port_in_use_is_a_bind_error_with_its_code() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Fails before a global recorder is set, so other tests are unaffected.
        let e = runtime.block_on(async { install(addr) }).unwrap_err();
        assert_eq!(e.code(), "METRICS_BIND_FAILED");
        let text = e.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("--metrics-listen"), "{text}");
        assert_eq!(install(addr).unwrap_err().code(), "METRICS_NO_RUNTIME");
    }
}
