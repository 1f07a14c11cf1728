//! `spine serve`: configure, load the directory, recover storage, run the
//! node's actor tree until a signal (or until the node fails), shut down
//! cleanly.
//!
//! Order matters and is deliberate:
//! 1. resolve and validate the configuration (nothing touched yet; exit 1);
//! 2. start logging, seed OS randomness (exit 3), load the directory
//!    (exit 1);
//! 3. install the SIGINT/SIGTERM handlers *before* opening storage, so a
//!    signal that arrives during recovery is not lost and never kills the
//!    process half-way: it is handled as soon as the node is up;
//! 4. open and recover the data directory and start the actor tree
//!    (`Node::start`; refusal: exit 2). Storage comes before the metrics
//!    endpoint so that a second node on the same data directory is told
//!    "locked", not "port in use";
//! 5. serve metrics (a port in use: the node is shut down again, exit 1);
//!    the recorder is installed before any connection can count anything;
//! 6. start the native protocol transports (`[network]`: TCP, QUIC). A port
//!    in use or unusable TLS material shuts the node down again and exits
//!    1 (a failure to start the transport supervisor exits 3). Only then is
//!    `spine_up` set and "ready" logged, so a client that waits for ready
//!    finds the listeners bound;
//! 7. wait for SIGINT/SIGTERM, then stop the transports (stop accepting,
//!    close connections), then stop accepting in the node, drain, stop the
//!    actors and sync the log (failure: exit 3), exit 0. If instead the
//!    supervisor gives up (an actor failed too often), log why, stop the
//!    transports, shut down what is left and exit 3. A second signal
//!    during shutdown stops waiting and exits 3: everything acknowledged is
//!    already on disk.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spine_actors::mesh::{MeshServer, MeshServerError};
use spine_actors::metrics;
use spine_actors::node::{Node, NodeHandle, NodeParts, RecoverySummary};
use spine_actors::system::{OsRandom, SystemClock};
use spine_actors::transport::{TransportError, Transports};
use spine_core::directory::Directory;
use spine_core::time::Clock;
use spine_core::ErrorCode;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use crate::cli::ServeArgs;
use crate::config::{self, EnvLookup, LogFormat, NodeConfig, Setting};
use crate::directory::{self, Source};
use crate::exit::{write_stdout, Exit, Failure};
use crate::logging;

/// How long the runtime waits for leftover tasks when `serve` returns.
const RUNTIME_STOP: Duration = Duration::from_secs(5);
/// Extra time, beyond the configured drain, that shutting down a node
/// that already failed may take before `serve` gives up on it.
const FAILED_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs `spine serve`.
pub fn run(args: &ServeArgs, env: EnvLookup<'_>) -> Result<Exit, Failure> {
    let usage = |e: &config::ConfigError| Failure::new(Exit::Usage, e);
    let loaded = config::resolve(args.config.as_deref(), &args.settings.given(), env)
        .map_err(|e| usage(&e))?;
    loaded.validate().map_err(|e| usage(&e))?;
    if args.print_config {
        write_stdout(&loaded.to_toml().map_err(|e| usage(&e))?)?;
        return Ok(Exit::Ok);
    }
    let config = &loaded.config;
    logging::init(&config.log).map_err(|e| Failure::new(Exit::Runtime, &e))?;
    let fatal = Fatal {
        json: config.log.format == LogFormat::Json,
    };

    let clock = SystemClock::new();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config_file = %loaded.file.as_deref().map_or("none".into(), |p| p.display().to_string()),
        data_dir = %config.storage.data_dir.display(),
        started_at = %clock.now().to_rfc3339(),
        "spine starting"
    );
    let mut rng = OsRandom::new().map_err(|e| fatal.report(Failure::new(Exit::Runtime, &e)))?;
    let (directory, source) = directory::load(&config.directory, &mut rng)
        .map_err(|e| fatal.report(Failure::new(Exit::Usage, &e)))?;
    log_directory(&directory, &source);
    // Validation already applied stricter rules; checking again with the
    // runtime's own makes any later NODE_CONFIG a start-up failure, not a
    // setting the operator could fix.
    config
        .storage
        .validate()
        .map_err(|e| fatal.report(Failure::new(Exit::Usage, &e)))?;
    config.runtime.validate().map_err(|why| {
        fatal.report(Failure::plain(
            Exit::Usage,
            "CONFIG_INVALID",
            format!("invalid runtime configuration: {why}"),
        ))
    })?;
    // TLS files are checked now, not after a possibly long recovery.
    Transports::check(&config.network).map_err(|e| fatal.report(transport_failure(&e)))?;
    if config.mesh.enabled {
        MeshServer::check(
            &config.mesh,
            &config.network,
            u64::from(config.storage.max_record_bytes),
        )
        .map_err(|e| fatal.report(Failure::new(Exit::Usage, &e)))?;
    }
    if source == Source::Demo {
        refuse_demo_beyond_loopback(config).map_err(|f| fatal.report(f))?;
    }
    // Before any thread starts, so every allocation after this obeys it.
    if let Err(e) = spine_actors::memory::set_transparent_huge_pages(config.runtime.huge_pages) {
        // Not fatal: the node is correct either way, only its tail latency
        // differs. Say so, once.
        tracing::warn!(error = %e, wanted = config.runtime.huge_pages, "cannot set the process's transparent-huge-pages flag; latency may spike when the heap grows");
    }
    let mut runtime = config.runtime.clone();
    runtime.services = config.services.clone();
    runtime.service_directory = load_service_directory(&config.services)
        .map_err(|f| fatal.report(f))?
        .map(Arc::new);
    runtime.validate().map_err(|why| {
        fatal.report(Failure::plain(
            Exit::Usage,
            "CONFIG_INVALID",
            format!("invalid [services] configuration: {why}"),
        ))
    })?;
    let parts = NodeParts {
        runtime,
        directory: Arc::new(directory),
        clock: Arc::new(clock),
        rng: Box::new(OsRandom::new().map_err(|e| fatal.report(Failure::new(Exit::Runtime, &e)))?),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("spine-rt")
        .build()
        .map_err(|e| {
            fatal.report(io_failure(
                "RUNTIME_START_FAILED",
                "cannot start the async runtime",
                e,
            ))
        })?;
    let signals = {
        let _context = runtime.enter();
        Signals::install().map_err(|e| {
            fatal.report(io_failure(
                "SIGNAL_SETUP_FAILED",
                "cannot install SIGINT/SIGTERM handlers",
                e,
            ))
        })?
    };
    let result = runtime.block_on(serve(config, parts, signals, fatal));
    runtime.shutdown_timeout(RUNTIME_STOP);
    result
}

/// Reports a fatal error also as a log event in JSON mode, where the
/// stderr line would otherwise be the only non-JSON output.
#[derive(Debug, Clone, Copy)]
struct Fatal {
    json: bool,
}

impl Fatal {
    fn report(self, failure: Failure) -> Failure {
        if self.json {
            error!(code = failure.code, error = %failure.message, "spine cannot continue");
        }
        failure
    }
}

/// Steps 4 to 7: start the node, serve metrics, start the transports,
/// wait, stop.
async fn serve(
    config: &NodeConfig,
    parts: NodeParts,
    mut signals: Signals,
    fatal: Fatal,
) -> Result<Exit, Failure> {
    info!(data_dir = %config.storage.data_dir.display(), "opening data directory and recovering the log");
    let started = Instant::now();
    let (node, summary) = Node::start(config.storage.clone(), parts)
        .await
        .map_err(|e| {
            let exit = match e.code() {
                "WAL_CONFIG" => Exit::Usage,
                // The configuration was checked above: these are failures to
                // start threads, tasks or actors.
                "NODE_CONFIG" | "NODE_START" => Exit::Runtime,
                _ => Exit::StorageRefused,
            };
            fatal.report(Failure::new(exit, &e))
        })?;
    log_recovery(&summary, started.elapsed());
    info!(
        partitions = config.runtime.partitions,
        "actor tree started under its supervisor"
    );

    let metrics_addr = match start_metrics(config) {
        Ok(addr) => addr,
        Err(failure) => {
            warn!("stopping the node again: the metrics endpoint could not start");
            if let Err(e) = node.shutdown().await {
                warn!(code = e.code(), error = %e, "shutdown after the failed start also failed");
            }
            return Err(fatal.report(failure));
        }
    };
    let transports = match Transports::start(node.clone(), &config.network).await {
        Ok(transports) => transports,
        Err(e) => {
            warn!("stopping the node again: the native protocol transports could not start");
            if let Err(e) = node.shutdown().await {
                warn!(code = e.code(), error = %e, "shutdown after the failed start also failed");
            }
            return Err(fatal.report(transport_failure(&e)));
        }
    };
    let mesh = if config.mesh.enabled {
        match MeshServer::start(
            node.clone(),
            config.mesh.clone(),
            &config.network,
            u64::from(config.storage.max_record_bytes),
        )
        .await
        {
            Ok(mesh) => Some(mesh),
            Err(e) => {
                warn!("stopping the node again: the MESH API could not start");
                transports.stop().await;
                if let Err(e) = node.shutdown().await {
                    warn!(code = e.code(), error = %e, "shutdown after the failed start also failed");
                }
                let mut failure = Failure::new(Exit::Usage, &e);
                if let MeshServerError::Bind { .. } = e {
                    failure.message = format!(
                        "{} (the address is {}: flag {}, env {})",
                        failure.message,
                        Setting::MeshListen.key(),
                        Setting::MeshListen.flag(),
                        Setting::MeshListen.env()
                    );
                }
                return Err(fatal.report(failure));
            }
        }
    } else {
        None
    };
    if metrics_addr.is_some() {
        // Sets `spine_up`; the task ends with the runtime.
        let _gauges = metrics::spawn_gauges(node.clone(), metrics::GAUGE_PERIOD);
    }
    let metrics_shown =
        metrics_addr.map_or_else(|| "disabled".to_string(), |a| format!("http://{a}/metrics"));
    let native_shown = transports.native_addr().map_or_else(
        || "disabled".to_string(),
        |a| {
            let scheme = if config.network.has_tls() {
                "tls"
            } else {
                "tcp"
            };
            format!("{scheme}://{a}")
        },
    );
    let quic_shown = match transports.quic_addr() {
        Some(a) => format!("quic://{a}"),
        None if config.network.quic_enabled => "off (no TLS certificate)".to_string(),
        None => "disabled".to_string(),
    };
    let mesh_shown = mesh.as_ref().map_or_else(
        || "disabled".to_string(),
        |m| {
            let scheme = if m.is_tls() { "https" } else { "http" };
            format!("{scheme}://{}", m.addr())
        },
    );
    info!(
        metrics = %metrics_shown,
        native = %native_shown,
        quic = %quic_shown,
        mesh = %mesh_shown,
        "listen addresses: metrics {metrics_shown}; native protocol {native_shown}; QUIC {quic_shown}; MESH API {mesh_shown}"
    );
    info!("ready; send SIGINT or SIGTERM to stop");

    match wait_for_stop(&node, signals.next()).await {
        Stop::Signal(which) => {
            info!(
                signal = which,
                "shutdown requested; closing connections, draining, stopping the actors and syncing the log"
            );
            metrics::mark_down();
            let stop_all = async {
                if let Some(mesh) = mesh {
                    mesh.stop().await;
                }
                transports.stop().await;
                info!(
                    "native protocol transports and MESH API stopped: no longer accepting, connections closed"
                );
                node.shutdown().await
            };
            tokio::select! {
                result = stop_all => {
                    result.map_err(|e| fatal.report(Failure::new(Exit::Runtime, &e)))?;
                }
                again = signals.next() => {
                    return Err(fatal.report(Failure::plain(
                        Exit::Runtime,
                        "SHUTDOWN_FORCED",
                        format!("{again} during shutdown: stopped without waiting for it to finish; everything acknowledged was already on disk, and the next start recovers the log"),
                    )));
                }
            }
            info!("stopped cleanly");
            Ok(Exit::Ok)
        }
        Stop::Failed(reason) => {
            error!(
                reason = %reason,
                "the node failed: its supervisor gave up after repeated actor failures; shutting down"
            );
            metrics::mark_down();
            let limit = Duration::from_millis(config.runtime.shutdown_drain_ms)
                .saturating_add(FAILED_SHUTDOWN_GRACE);
            let stop_all = async {
                if let Some(mesh) = mesh {
                    mesh.stop().await;
                }
                transports.stop().await;
                node.shutdown().await
            };
            match tokio::time::timeout(limit, stop_all).await {
                Ok(Ok(())) => info!("log synced and data directory released after the failure"),
                Ok(Err(e)) => {
                    warn!(code = e.code(), error = %e, "shutdown after the failure also failed")
                }
                Err(_) => warn!(?limit, "shutdown after the failure did not finish in time"),
            }
            Err(fatal.report(Failure::plain(
                Exit::Runtime,
                "NODE_FAILED",
                format!("the node failed and stopped serving: {reason}; restart it (it recovers from its log) and look for the failing actor in the log above"),
            )))
        }
    }
}

/// The embedded demo directory (well-known passwords) is for development
/// only: with it, every enabled listener must be on loopback.
fn refuse_demo_beyond_loopback(config: &NodeConfig) -> Result<(), Failure> {
    let loopback = |enabled: bool, text: &str| {
        !enabled
            || text
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
    };
    let listeners = [
        (
            Setting::NativeListen,
            config.network.native_enabled,
            &config.network.native_listen,
        ),
        (
            Setting::QuicListen,
            config.network.quic_enabled,
            &config.network.quic_listen,
        ),
        (
            Setting::MeshListen,
            config.mesh.enabled,
            &config.mesh.listen,
        ),
        (
            Setting::MetricsListen,
            config.metrics.enabled,
            &config.metrics.listen,
        ),
    ];
    for (setting, enabled, text) in listeners {
        if !loopback(enabled, text) {
            return Err(Failure::plain(
                Exit::Usage,
                "DIR_DEMO_NOT_LOOPBACK",
                format!(
                    "{} = {text:?} is not a loopback address, but no directory is configured: the embedded demo directory (well-known passwords) only serves loopback; give --mailboxes and --workflows (or --directory) for a node reachable from the network",
                    setting.key()
                ),
            ));
        }
    }
    Ok(())
}

/// Installs the metrics endpoint, if enabled; answers the address served.
/// The gauge task (which sets `spine_up`) is started once everything
/// listens.
fn start_metrics(config: &NodeConfig) -> Result<Option<SocketAddr>, Failure> {
    if !config.metrics.enabled {
        return Ok(None);
    }
    let addr = config.metrics.listen_addr().ok_or_else(|| {
        // Validation parsed it already; still never panic.
        Failure::plain(
            Exit::Usage,
            "CONFIG_INVALID",
            format!(
                "metrics.listen = {:?} is not a socket address",
                config.metrics.listen
            ),
        )
    })?;
    metrics::install(addr).map_err(|e| {
        let exit = match e {
            metrics::MetricsError::Bind { .. } => Exit::Usage,
            _ => Exit::Runtime,
        };
        Failure::new(exit, &e)
    })?;
    Ok(Some(addr))
}

/// How a transport start-up failure leaves the process: what the operator
/// can fix in the configuration (an address in use, TLS material) exits 1,
/// like a metrics port in use; anything else is a runtime failure.
fn transport_failure(e: &TransportError) -> Failure {
    let exit = match e {
        TransportError::Config(_) | TransportError::Bind { .. } | TransportError::Tls(_) => {
            Exit::Usage
        }
        TransportError::Supervisor(_) => Exit::Runtime,
    };
    let mut failure = Failure::new(exit, e);
    if let TransportError::Bind { transport, .. } = e {
        let setting = if *transport == "quic" {
            Setting::QuicListen
        } else {
            Setting::NativeListen
        };
        failure.message = format!(
            "{} (the address is {}: flag {}, env {})",
            failure.message,
            setting.key(),
            setting.flag(),
            setting.env()
        );
    }
    failure
}

/// Why the node stops.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// An operator's signal.
    Signal(&'static str),
    /// The supervisor gave up; why.
    Failed(String),
}

/// Waits for `signal` or for the node to fail, whichever comes first.
async fn wait_for_stop(node: &NodeHandle, signal: impl Future<Output = &'static str>) -> Stop {
    tokio::select! {
        which = signal => Stop::Signal(which),
        reason = node.failed() => Stop::Failed(reason),
    }
}

fn io_failure(code: &'static str, what: &str, e: std::io::Error) -> Failure {
    Failure::plain(Exit::Runtime, code, format!("{what}: {e}"))
}

/// SIGINT and SIGTERM streams.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Installs the handlers; needs a runtime context.
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

fn log_directory(directory: &Directory, source: &Source) {
    let mailboxes = directory.len();
    let workflows = directory.workflows().count();
    match source {
        Source::Demo => warn!(
            mailboxes,
            workflows,
            "no directory configured: running on the embedded DEMO directory \
             (mailboxes X26ABC1, X26ABC2, X26ABC3, all with password \"password\"); \
             for development on loopback only, never for real traffic; \
             give --mailboxes and --workflows, or --directory, for real use"
        ),
        Source::Jsonl {
            mailboxes: m,
            workflows: w,
        } => info!(
            mailboxes,
            workflows,
            mailboxes_file = %m.display(),
            workflows_file = %w.display(),
            "loaded the mesh-sandbox JSONL directory"
        ),
        Source::Toml(path) => info!(
            mailboxes,
            workflows,
            file = %path.display(),
            "loaded the TOML directory"
        ),
    }
}

fn log_recovery(summary: &RecoverySummary, elapsed: Duration) {
    let wal = &summary.wal;
    let torn_tail = wal.truncated.as_ref().map_or_else(
        || "none".to_string(),
        |(file, offset, bytes)| format!("{file} at offset {offset} ({bytes} bytes removed)"),
    );
    let removed = wal.removed_torn_segment.as_deref().unwrap_or("none");
    info!(
        segments = wal.segments,
        records = wal.records,
        bytes = wal.bytes,
        first_seq = wal.first_seq,
        next_seq = wal.next_seq,
        truncated_torn_tail = %torn_tail,
        removed_torn_segment = %removed,
        messages = summary.messages,
        in_inboxes = summary.in_inboxes,
        mailboxes = summary.mailboxes,
        uploading = summary.uploading,
        compaction = ?summary.compaction,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "recovered the write-ahead log"
    );
    if let Some((file, offset, bytes)) = &wal.truncated {
        warn!(
            file = %file,
            offset,
            bytes,
            "truncated a torn tail: an interrupted write that was never acknowledged"
        );
    }
    if let Some(file) = &wal.removed_torn_segment {
        warn!(
            file = %Path::new(file).display(),
            "removed a segment whose creation was interrupted before it held any record"
        );
    }
}

/// Loads `[services] directory` (the service directory's TOML file);
/// `None`: the embedded demo set.
fn load_service_directory(
    config: &spine_actors::services::ServicesConfig,
) -> Result<Option<spine_core::services::ServiceDirectory>, Failure> {
    let Some(path) = &config.directory else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::plain(
            Exit::Usage,
            "CONFIG_FILE_UNREADABLE",
            format!("cannot read the service directory {}: {e}", path.display()),
        )
    })?;
    spine_core::services::load_services_toml(&text)
        .map(Some)
        .map_err(|e| {
            Failure::plain(
                Exit::Usage,
                "SVC_DIRECTORY_INVALID",
                format!("{}: {e}", path.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_actors::node::{RuntimeConfig, StorageConfig};
    use spine_core::random::SeededRandom;

    fn parts(runtime: RuntimeConfig) -> NodeParts {
        NodeParts {
            runtime,
            directory: Arc::new(Directory::demo(&mut SeededRandom::new(1)).unwrap()),
            clock: Arc::new(SystemClock::new()),
            rng: Box::new(SeededRandom::new(2)),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_ends_the_wait() {
        let node = Node::start_in_memory(StorageConfig::default(), parts(RuntimeConfig::default()))
            .await
            .unwrap();
        let stop = tokio::time::timeout(
            Duration::from_secs(30),
            wait_for_stop(&node, async { "SIGTERM" }),
        )
        .await
        .unwrap();
        assert_eq!(stop, Stop::Signal("SIGTERM"));
        node.shutdown().await.unwrap();
    }

    /// The supervisor giving up ends the wait with its reason, even though
    /// no signal ever comes.
    #[cfg(feature = "fault-injection")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_failure_ends_the_wait_with_its_reason() {
        use spine_actors::node::FaultTarget;

        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            ..StorageConfig::default()
        };
        let runtime = RuntimeConfig {
            partitions: 1,
            max_restarts: 1,
            restart_window_secs: 3600,
            ..RuntimeConfig::default()
        };
        let (node, _) = Node::start(storage, parts(runtime)).await.unwrap();
        let waiter = {
            let node = node.clone();
            tokio::spawn(async move { wait_for_stop(&node, std::future::pending()).await })
        };
        // One restart is allowed; keep failing the partition until the
        // supervisor gives up (bounded).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !waiter.is_finished() && tokio::time::Instant::now() < deadline {
            let _ = node.inject_panic(FaultTarget::Partition(0)).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stop = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the wait ended when the node failed")
            .unwrap();
        let Stop::Failed(reason) = stop else {
            panic!("expected a failure, got {stop:?}")
        };
        assert!(reason.contains("partition"), "{reason}");
        tokio::time::timeout(Duration::from_secs(60), node.shutdown())
            .await
            .expect("shutdown after a failure is bounded")
            .unwrap();
    }
}
