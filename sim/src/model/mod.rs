//! The simulated world, sans-IO and deterministic: who exists
//! ([`Population`]), and what happens when ([`SimEvent`]s in virtual-time
//! order), generated from a [`Scenario`](crate::scenario::Scenario) and a
//! seed. Nothing here touches a node, a clock or the OS; the same scenario
//! and seed always give the same population and the same event stream.

use spine_core::ids::{MailboxId, OdsCode, WorkflowId};
use spine_core::time::Timestamp;

mod population;
pub mod sampling;
mod schedule;

#[cfg(test)]
mod tests;

pub use population::{directory, population, PopulationError};
pub use schedule::{schedule, Schedule};

/// One simulated organisation's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMailbox {
    /// Mailbox id (unique).
    pub id: MailboxId,
    /// Its organisation's ODS code.
    pub ods: OdsCode,
    /// Its password (the simulator authenticates with it in live mode).
    pub password: String,
    /// Hub (a few, huge inboxes) or an ordinary organisation.
    pub hub: bool,
    /// How it collects its mail.
    pub consumer: ConsumerMode,
}

/// How a mailbox collects its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerMode {
    /// Lists its inbox every `interval_secs` (virtual), downloads and
    /// acknowledges what it finds (at most `batch` per poll).
    Poll {
        /// Seconds between polls.
        interval_secs: u64,
        /// Most messages handled per poll.
        batch: usize,
    },
    /// Subscribed: collects each message `delay_ms` after it is accepted.
    Push {
        /// Milliseconds from acceptance to collection.
        delay_ms: u64,
    },
    /// Never collects: its messages expire and their senders get reports.
    Absent,
}

/// A workflow in the simulated directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWorkflow {
    /// Its id.
    pub id: WorkflowId,
    /// Who may send it (empty: unrestricted, not registered).
    pub senders: Vec<MailboxId>,
    /// Who may receive it.
    pub receivers: Vec<MailboxId>,
}

/// Everyone in the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population {
    /// Every mailbox, hubs first.
    pub mailboxes: Vec<SimMailbox>,
    /// Registered workflows.
    pub workflows: Vec<SimWorkflow>,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSpec {
    /// Sender.
    pub from: MailboxId,
    /// Recipient.
    pub to: MailboxId,
    /// Workflow.
    pub workflow: WorkflowId,
    /// Total payload bytes.
    pub bytes: u64,
    /// Chunks it is sent in (1 for a simple message).
    pub chunks: u32,
    /// Seed of its content (the driver derives the bytes from it, so the
    /// checker can recompute them without storing payloads).
    pub content_seed: u64,
}

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Partition actor `partition` panics (it is restarted and rebuilt).
    PartitionPanic {
        /// Which partition (modulo the node's partition count).
        partition: u32,
    },
    /// The node crashes and restarts, recovering from its log.
    NodeCrash,
    /// Every `fdatasync` takes `millis` longer, for `duration_secs`.
    DiskStall {
        /// Added latency per sync, real milliseconds.
        millis: u64,
        /// How long, virtual seconds.
        duration_secs: u64,
    },
    /// `fdatasync` fails: the node must refuse sends (never acknowledge
    /// what is not durable) until it is restarted.
    FsyncFailure,
    /// Every client connection is dropped (live mode and the in-process
    /// transport).
    DropConnections,
    /// `connections` clients connect and authenticate at once.
    ReconnectStorm {
        /// How many.
        connections: u32,
    },
    /// `frames` malformed frames arrive; each must be refused, none may
    /// change state.
    MalformedInput {
        /// How many.
        frames: u32,
    },
}

/// What happens at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message.
    Send(SendSpec),
    /// A polling mailbox polls.
    Poll {
        /// Which mailbox.
        mailbox: MailboxId,
    },
    /// The expiry round (inbox expiry and non-delivery reports).
    ExpiryTick,
    /// Inject a fault.
    Fault(Fault),
    /// Take a sample for the report (queue depths, memory).
    Sample,
}

/// An action at a virtual time. Ordered by `(at, seq)`; `seq` is unique and
/// increasing, so the order is total and reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    /// Virtual time.
    pub at: Timestamp,
    /// Tie-breaker, unique per event.
    pub seq: u64,
    /// What happens.
    pub action: Action,
}
