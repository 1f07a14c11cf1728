//! Messages: the per-message state machine, the events that drive it, the
//! store they build, and compaction of the log behind it.
//!
//! The flow on the live path is check → log → apply: a command is validated
//! against current state ([`commands`]), its events are appended to the WAL,
//! and only once durable are they applied ([`store::MessageStore::apply`]).
//! Recovery applies the same events in log order, so state after a restart
//! is exactly the state before it.

mod arc_as_box;
pub mod commands;
pub mod compaction;
pub mod error;
pub mod event;
pub mod filter;
pub mod send_header;
pub mod state;
pub mod status;
pub mod store;

pub use commands::{
    non_delivery_report, report_envelope, AckCheck, ReportSpec, ResetLimits, ResetStep, SendCheck,
};
pub use compaction::{
    compact, compact_with, CompactionPolicy, CompactionReport, NoHolder, SegmentHolder,
};
pub use error::StoreError;
pub use event::{ChunkLoc, Event, MessageSnapshot};
pub use filter::{FilterError, WorkflowFilter};
pub use send_header::SendHeader;
pub use state::MessageState;
pub use status::MessageStatus;
pub use store::{Applied, MessageStore, StoreConfig};

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod tests;
