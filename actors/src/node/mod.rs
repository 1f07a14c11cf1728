//! The node: opening storage, the actor tree, and the handle every
//! transport, the simulator and the benchmarks go through.

mod batch;
pub mod config;
pub mod error;
pub mod handle;
pub(crate) mod log_scan;
pub mod reader;
pub mod shared;
pub mod sink;
pub mod storage;
pub mod types;

pub use config::RuntimeConfig;
pub use error::RequestError;
#[cfg(any(test, feature = "fault-injection"))]
pub use handle::FaultTarget;
pub use handle::{Node, NodeHandle, NodeParts, QueueDepths};
pub use storage::{
    open_storage, open_storage_full, open_storage_with, NodeError, OpenNode, RecoverySummary,
    StorageConfig, MAX_STORED_MESSAGES,
};
pub use types::{
    ChunkOutcome, Download, InboxPage, InjectReport, MessageView, Notification, SendOutcome,
    SendRequest, MAX_NOTIFICATION_BODY_BYTES,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_admin;
