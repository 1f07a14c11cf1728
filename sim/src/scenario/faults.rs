//! The fault schedule (`[[fault]]`).
//!
//! Each entry is `at` (seconds from the start), `kind`, and only the
//! parameters that kind takes (validation refuses the others, so a typo or
//! a misplaced parameter is never silently ignored):
//!
//! | kind               | parameters (default)                          |
//! |--------------------|-----------------------------------------------|
//! | `partition_panic`  | `partition` (0), below `node.partitions`      |
//! | `node_crash`       | none                                          |
//! | `disk_stall`       | `millis` (100), `duration` seconds (30)       |
//! | `fsync_failure`    | none                                          |
//! | `drop_connections` | none                                          |
//! | `reconnect_storm`  | `connections` (1000)                          |
//! | `malformed_input`  | `frames` (100)                                |

use serde::Deserialize;

use crate::model::Fault;

/// Default added latency of a disk stall, milliseconds.
pub const DEFAULT_STALL_MILLIS: u64 = 100;
/// Default length of a disk stall, seconds.
pub const DEFAULT_STALL_SECS: u64 = 30;
/// Default size of a reconnect storm.
pub const DEFAULT_STORM_CONNECTIONS: u32 = 1000;
/// Default number of malformed frames.
pub const DEFAULT_MALFORMED_FRAMES: u32 = 100;

/// The kind of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A partition actor panics.
    PartitionPanic,
    /// The node crashes and recovers from its log.
    NodeCrash,
    /// Syncs are slow for a while.
    DiskStall,
    /// A sync fails.
    FsyncFailure,
    /// Every connection is dropped.
    DropConnections,
    /// Many clients connect at once.
    ReconnectStorm,
    /// Malformed frames arrive.
    MalformedInput,
}

impl FaultKind {
    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::PartitionPanic => "partition_panic",
            FaultKind::NodeCrash => "node_crash",
            FaultKind::DiskStall => "disk_stall",
            FaultKind::FsyncFailure => "fsync_failure",
            FaultKind::DropConnections => "drop_connections",
            FaultKind::ReconnectStorm => "reconnect_storm",
            FaultKind::MalformedInput => "malformed_input",
        }
    }

    /// The parameters this kind takes.
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            FaultKind::PartitionPanic => &["partition"],
            FaultKind::DiskStall => &["millis", "duration"],
            FaultKind::ReconnectStorm => &["connections"],
            FaultKind::MalformedInput => &["frames"],
            FaultKind::NodeCrash | FaultKind::FsyncFailure | FaultKind::DropConnections => &[],
        }
    }
}

/// One scheduled fault (`[[fault]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When, seconds from the scenario start (below `duration`).
    pub at: u64,
    /// What.
    pub kind: FaultKind,
    /// `partition_panic`: which partition.
    #[serde(default)]
    pub partition: Option<u32>,
    /// `disk_stall`: added latency per sync, real milliseconds (1..=60000).
    #[serde(default)]
    pub millis: Option<u64>,
    /// `disk_stall`: how long, virtual seconds (1..=86400).
    #[serde(default)]
    pub duration: Option<u64>,
    /// `reconnect_storm`: how many clients (1..=100000).
    #[serde(default)]
    pub connections: Option<u32>,
    /// `malformed_input`: how many frames (1..=1000000).
    #[serde(default)]
    pub frames: Option<u32>,
}

impl FaultSpec {
    /// The parameters given, by name.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("partition", self.partition.is_some()),
            ("millis", self.millis.is_some()),
            ("duration", self.duration.is_some()),
            ("connections", self.connections.is_some()),
            ("frames", self.frames.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The fault to inject, defaults applied.
    pub fn fault(&self) -> Fault {
        match self.kind {
            FaultKind::PartitionPanic => Fault::PartitionPanic {
                partition: self.partition.unwrap_or(0),
            },
            FaultKind::NodeCrash => Fault::NodeCrash,
            FaultKind::DiskStall => Fault::DiskStall {
                millis: self.millis.unwrap_or(DEFAULT_STALL_MILLIS),
                duration_secs: self.duration.unwrap_or(DEFAULT_STALL_SECS),
            },
            FaultKind::FsyncFailure => Fault::FsyncFailure,
            FaultKind::DropConnections => Fault::DropConnections,
            FaultKind::ReconnectStorm => Fault::ReconnectStorm {
                connections: self.connections.unwrap_or(DEFAULT_STORM_CONNECTIONS),
            },
            FaultKind::MalformedInput => Fault::MalformedInput {
                frames: self.frames.unwrap_or(DEFAULT_MALFORMED_FRAMES),
            },
        }
    }
}
