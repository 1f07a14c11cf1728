//! Errors the node returns to callers of its operations.

use spine_core::directory::DirectoryError;
use spine_core::message::{FilterError, StoreError};
use spine_core::ErrorCode;

use crate::wal::AppendError;

/// Why an operation on the node did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The message store refused (not found, not yours, wrong status, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The directory refused (unknown recipient, workflow not permitted).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// A bad workflow filter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The log cannot make anything durable: sends are refused; reads work.
    #[error("the node's write-ahead log failed ({0}): this request was not acknowledged (if it was in flight it may still have reached the disk; a retry with the same idempotency key after restart is safe); sends are refused, reads still work; an operator must check the disk and restart the node")]
    LogFailed(AppendError),
    /// The node is shutting down.
    #[error("the node is shutting down and accepts no new requests; retry against another node or after restart")]
    ShuttingDown,
    /// The actor handling the request failed before answering.
    #[error("the request's outcome is unknown: the partition handling it restarted; retry (a send with the same idempotency key is answered with the original message id)")]
    OutcomeUnknown,
    /// A partition stayed unavailable past the wait limit.
    #[error(
        "partition {0} is restarting and did not come back within the wait limit; retry shortly"
    )]
    Unavailable(u32),
    /// The node's supervisor gave up after too many failures.
    #[error("the node has failed ({0}) and serves no requests; an operator must restart it")]
    NodeFailed(String),
    /// Reading stored message bytes failed.
    #[error("cannot read stored message content: {0}")]
    Read(String),
    /// A request field is unusable.
    #[error("{0}")]
    Invalid(String),
}

impl ErrorCode for RequestError {
    fn code(&self) -> &'static str {
        match self {
            RequestError::Store(e) => e.code(),
            RequestError::Directory(e) => e.code(),
            RequestError::Filter(e) => e.code(),
            RequestError::LogFailed(_) => "NODE_LOG_FAILED",
            RequestError::ShuttingDown => "NODE_SHUTTING_DOWN",
            RequestError::OutcomeUnknown => "NODE_OUTCOME_UNKNOWN",
            RequestError::Unavailable(_) => "NODE_PARTITION_UNAVAILABLE",
            RequestError::NodeFailed(_) => "NODE_FAILED",
            RequestError::Read(_) => "NODE_READ_FAILED",
            RequestError::Invalid(_) => "NODE_REQUEST_INVALID",
        }
    }
}

impl From<AppendError> for RequestError {
    fn from(e: AppendError) -> RequestError {
        match e {
            AppendError::Rejected { .. } => RequestError::Invalid(e.to_string()),
            AppendError::Closed => RequestError::ShuttingDown,
            AppendError::Failed { .. } => RequestError::LogFailed(e),
        }
    }
}
