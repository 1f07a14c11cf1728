//! `spine serve`: configure, load the directory, recover storage, wait for a
//! signal, shut down cleanly.
//!
//! Order matters and is deliberate:
//! 1. resolve and validate the configuration (nothing touched yet; exit 1);
//! 2. start logging, seed OS randomness (exit 3), load the directory
//!    (exit 1);
//! 3. install the SIGINT/SIGTERM handlers *before* opening storage, so a
//!    signal that arrives during recovery is not lost and never kills the
//!    process half-way: it is handled as soon as the node is open;
//! 4. open and recover the data directory (refusal: exit 2);
//! 5. wait for a signal, then drain and sync (failure: exit 3), exit 0.

use std::path::Path;
use std::time::{Duration, Instant};

use spine_actors::node::RecoverySummary;
use spine_actors::system::{OsRandom, SystemClock};
use spine_core::directory::Directory;
use spine_core::time::Clock;
use spine_core::ErrorCode;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use crate::cli::ServeArgs;
use crate::config::{self, EnvLookup, LogFormat};
use crate::directory::{self, Source};
use crate::exit::{write_stdout, Exit, Failure};
use crate::logging;
use spine_actors::node::open_storage;

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
    // In JSON mode the fatal stderr line would be the only non-JSON output;
    // also emit it as an event so log pipelines see why the node stopped.
    let json = config.log.format == LogFormat::Json;
    let fatal = |failure: Failure| {
        if json {
            error!(code = failure.code, error = %failure.message, "spine cannot continue");
        }
        failure
    };

    let clock = SystemClock::new();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config_file = %loaded.file.as_deref().map_or("none".into(), |p| p.display().to_string()),
        data_dir = %config.storage.data_dir.display(),
        started_at = %clock.now().to_rfc3339(),
        "spine starting"
    );
    let mut rng = OsRandom::new().map_err(|e| fatal(Failure::new(Exit::Runtime, &e)))?;
    let (directory, source) = directory::load(&config.directory, &mut rng)
        .map_err(|e| fatal(Failure::new(Exit::Usage, &e)))?;
    log_directory(&directory, &source);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("spine-rt")
        .build()
        .map_err(|e| {
            fatal(io_failure(
                "RUNTIME_START_FAILED",
                "cannot start the async runtime",
                e,
            ))
        })?;
    let mut signals = {
        let _context = runtime.enter();
        Signals::install().map_err(|e| {
            fatal(io_failure(
                "SIGNAL_SETUP_FAILED",
                "cannot install SIGINT/SIGTERM handlers",
                e,
            ))
        })?
    };

    info!(data_dir = %config.storage.data_dir.display(), "opening data directory and recovering the log");
    let started = Instant::now();
    let (node, summary) = open_storage(&config.storage).map_err(|e| {
        // Validation is stricter than storage's own checks, so a config
        // refusal here is unexpected; it is still the operator's to fix.
        let exit = match e.code() {
            "NODE_CONFIG" | "WAL_CONFIG" => Exit::Usage,
            _ => Exit::StorageRefused,
        };
        fatal(Failure::new(exit, &e))
    })?;
    log_recovery(&summary, started.elapsed());
    info!(
        listen = "none",
        "listen addresses: none (no transports yet)"
    );
    info!("ready; send SIGINT or SIGTERM to stop");

    let which = runtime.block_on(signals.next());
    info!(
        signal = which,
        "shutdown requested; draining and syncing the log"
    );
    node.shutdown()
        .map_err(|e| fatal(Failure::new(Exit::Runtime, &e)))?;
    drop(directory);
    info!("stopped cleanly");
    Ok(Exit::Ok)
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
