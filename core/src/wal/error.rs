//! WAL errors.

use crate::ErrorCode;

/// Errors from the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O operation failed; the log is now failed permanently.
    #[error("write-ahead log I/O failed during {op} on {file}: {source}; the node stops accepting writes; check the disk and restart to recover from the log")]
    Io {
        /// What the log was doing.
        op: &'static str,
        /// The file or directory involved.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier fatal error failed the log; nothing more is written.
    #[error("write-ahead log has failed earlier ({reason}); no writes are accepted until the node is restarted and recovers")]
    Failed {
        /// The first fatal error, as text.
        reason: String,
    },
    /// Corruption that is not a torn tail: acknowledged data is damaged.
    #[error("write-ahead log corruption in {file} at offset {offset}: {detail}; refusing to start rather than lose acknowledged messages; restore the file from a replica or backup, or run `spine wal inspect` for details")]
    Corrupt {
        /// The segment file.
        file: String,
        /// Byte offset of the first bad byte.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A record is larger than the configured maximum.
    #[error("record of {len} bytes exceeds the maximum record size of {max} bytes; raise wal.max_record_bytes or send smaller chunks")]
    RecordTooLarge {
        /// The record's payload length.
        len: u64,
        /// The configured maximum.
        max: u32,
    },
    /// A batch was empty or larger than allowed.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// A configuration value is out of range.
    #[error("invalid WAL configuration: {0}")]
    Config(String),
    /// The layer above refused a recovered record.
    #[error("record {seq} in {file} at offset {offset} cannot be replayed: {detail}")]
    Replay {
        /// The record's sequence number.
        seq: u64,
        /// The segment file.
        file: String,
        /// Offset of the record.
        offset: u64,
        /// Why replay refused it.
        detail: String,
    },
}

impl ErrorCode for WalError {
    fn code(&self) -> &'static str {
        match self {
            WalError::Io { .. } => "WAL_IO",
            WalError::Failed { .. } => "WAL_FAILED",
            WalError::Corrupt { .. } => "WAL_CORRUPT",
            WalError::RecordTooLarge { .. } => "WAL_RECORD_TOO_LARGE",
            WalError::InvalidBatch(_) => "WAL_INVALID_BATCH",
            WalError::Config(_) => "WAL_CONFIG",
            WalError::Replay { .. } => "WAL_REPLAY",
        }
    }
}

impl WalError {
    /// Builds an I/O error for `op` on `file`.
    pub fn io(op: &'static str, file: impl Into<String>, source: std::io::Error) -> WalError {
        WalError::Io {
            op,
            file: file.into(),
            source,
        }
    }

    /// Whether this error means the log can no longer be written.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WalError::Io { .. } | WalError::Failed { .. })
    }
}
