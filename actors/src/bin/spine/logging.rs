//! Diagnostics: `tracing` to stderr, as text or JSON lines.
//!
//! Invariant: logs go to stderr only; stdout is reserved for command output
//! (`--print-config`, `wal inspect`) so it can be piped. The filter string
//! was validated with the rest of the configuration, so failing here means
//! a subscriber was already installed (a bug), not bad input. A log line
//! that cannot be written (stderr closed) is dropped, never a panic.

use std::io::IsTerminal;

use spine_core::ErrorCode;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter did not parse (normally caught by validation first).
    #[error("log filter {level:?} is invalid: {detail}")]
    Filter {
        /// The filter.
        level: String,
        /// The parser's message.
        detail: String,
    },
    /// A global subscriber was already set.
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

impl ErrorCode for LoggingError {
    fn code(&self) -> &'static str {
        match self {
            LoggingError::Filter { .. } => "LOG_FILTER_INVALID",
            LoggingError::Install(_) => "LOG_INIT_FAILED",
        }
    }
}

/// Installs the global subscriber.
pub fn init(config: &LogConfig) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|e| LoggingError::Filter {
        level: config.level.clone(),
        detail: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its internal error report uses `eprintln!`, which panics when
        // stderr is a closed pipe; a lost log line must not kill the node.
        .log_internal_errors(false)
        .with_ansi(config.format == LogFormat::Text && std::io::stderr().is_terminal());
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| LoggingError::Install(e.to_string()))
}
