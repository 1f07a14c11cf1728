//! Partitions: each actor owns the messages of the mailboxes hashed to it.

pub mod actor;
pub mod msg;
pub mod rebuild;
mod subscribers;

pub use actor::{PartitionActor, PartitionArgs, PartitionState};
pub use msg::PartitionMsg;
