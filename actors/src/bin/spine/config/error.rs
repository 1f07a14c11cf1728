//! Configuration errors. Each says which file, variable or flag to fix.

use std::fmt;
use std::path::PathBuf;

use spine_core::ErrorCode;

use super::settings::{Origin, Setting};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}; check the path given by --config or SPINE_CONFIG", path.display())]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this model (including unknown keys).
    #[error("config file {}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    FileInvalid {
        /// The file.
        path: PathBuf,
        /// 1-based line, when the parser located the problem.
        line: Option<usize>,
        /// The parser's message, e.g. "unknown field `x`, expected one of ...".
        message: String,
    },
    /// An environment variable or flag value has the wrong type.
    #[error("{origin} = {value:?}: expected {expected}")]
    Unparsable {
        /// Where the value came from.
        origin: Origin,
        /// The value (lossily decoded).
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// The merged configuration breaks one or more rules.
    #[error("invalid configuration:{}", problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
    Invalid {
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// The configuration could not be written out as TOML.
    #[error("cannot print the configuration as TOML: {0}")]
    Print(String),
}

impl ErrorCode for ConfigError {
    fn code(&self) -> &'static str {
        match self {
            ConfigError::FileUnreadable { .. } => "CONFIG_FILE_UNREADABLE",
            ConfigError::FileInvalid { .. } => "CONFIG_FILE_INVALID",
            ConfigError::Unparsable { .. } => "CONFIG_VALUE_UNPARSABLE",
            ConfigError::Invalid { .. } => "CONFIG_INVALID",
            ConfigError::Print(_) => "CONFIG_PRINT_FAILED",
        }
    }
}

/// One broken rule: which setting, where its value came from, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting at fault.
    pub setting: Setting,
    /// Where its value came from.
    pub origin: Origin,
    /// The value, as shown to the operator.
    pub value: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} (from {}): {}",
            self.setting.key(),
            self.value,
            self.origin,
            self.message
        )
    }
}
