//! Opening a node's data directory: recover the log into message state.
//!
//! Order matters and is the whole point of this module: take the directory
//! lock, replay every record into a fresh [`MessageStore`] (a torn tail is
//! truncated, corruption refuses to start), compact if the policy asks, and
//! only then start the group-commit writer. Nothing is accepted before
//! recovery has finished, so no new record can interleave with replay.

use std::path::PathBuf;
use std::time::Duration;

use spine_core::message::{
    compact_with, CompactionPolicy, CompactionReport, MessageStatus, MessageStore, StoreConfig,
};
use spine_core::services::{ReferenceConfig, ReferenceServices};
use spine_core::wal::{RecoveryReport, Wal, WalConfig, WalError};
use spine_core::ErrorCode;

use crate::wal::{FileStorage, WalHandle, WalWriter, WriterConfig};

/// Settings needed to open a node's storage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory holding the log segments.
    pub data_dir: PathBuf,
    /// Segment size in bytes before rotation.
    pub segment_bytes: u64,
    /// Largest record (one message chunk plus metadata) in bytes.
    pub max_record_bytes: u32,
    /// Most records per group commit.
    pub max_batch_records: usize,
    /// Most bytes per group commit.
    pub max_batch_bytes: usize,
    /// Most appends queued or in flight before appenders wait.
    pub max_in_flight: usize,
    /// How long an accepted message may wait in an inbox before it expires.
    #[serde(with = "humantime_secs")]
    pub inbox_expiry: Duration,
    /// How long after creation a message is purged entirely.
    #[serde(with = "humantime_secs")]
    pub purge_after: Duration,
    /// Most messages one partition keeps at once, in any status (an
    /// acknowledged message counts until it is purged); 1 to
    /// [`MAX_STORED_MESSAGES`]. A send beyond it is refused (`MSG_LIMIT`).
    pub max_messages: u64,
    /// Most messages waiting in one inbox; 1 to `max_messages`. A send
    /// beyond it is refused (`MSG_LIMIT`).
    pub max_inbox_depth: u64,
}

/// The largest `max_messages` accepted: about a terabyte of message state
/// (~1 KB of memory per stored message), far beyond any one node, so a
/// larger value is a mistake rather than a plan.
pub const MAX_STORED_MESSAGES: u64 = 1 << 30;

impl Default for StorageConfig {
    fn default() -> Self {
        let wal = WalConfig::default();
        let store = StoreConfig::default();
        StorageConfig {
            data_dir: PathBuf::from("spine-data"),
            segment_bytes: wal.segment_bytes,
            max_record_bytes: wal.max_record_bytes,
            max_batch_records: wal.max_batch_records,
            max_batch_bytes: 8 << 20,
            max_in_flight: 65_536,
            inbox_expiry: Duration::from_secs(5 * 24 * 3600),
            purge_after: Duration::from_secs(30 * 24 * 3600),
            max_messages: store.max_messages,
            max_inbox_depth: store.max_inbox_depth,
        }
    }
}

/// Durations in configuration files are whole seconds.
mod humantime_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = <u64 as serde::Deserialize>::deserialize(d)?;
        Ok(Duration::from_secs(secs))
    }
}

impl StorageConfig {
    /// The log's configuration.
    pub fn wal(&self) -> WalConfig {
        WalConfig {
            segment_bytes: self.segment_bytes,
            max_record_bytes: self.max_record_bytes,
            max_batch_records: self.max_batch_records,
        }
    }

    /// The message store's configuration.
    pub fn store(&self) -> StoreConfig {
        StoreConfig {
            inbox_expiry: self.inbox_expiry,
            purge_after: self.purge_after,
            max_messages: self.max_messages,
            max_inbox_depth: self.max_inbox_depth,
        }
    }

    /// Checks every value is usable.
    pub fn validate(&self) -> Result<(), NodeError> {
        self.wal().validate().map_err(NodeError::Wal)?;
        if self.max_batch_bytes == 0 || self.max_in_flight == 0 {
            return Err(NodeError::Config(
                "max_batch_bytes and max_in_flight must be at least 1".into(),
            ));
        }
        if self.inbox_expiry.is_zero() || self.purge_after < self.inbox_expiry {
            return Err(NodeError::Config(format!(
                "inbox_expiry ({}s) must be positive and no longer than purge_after ({}s)",
                self.inbox_expiry.as_secs(),
                self.purge_after.as_secs()
            )));
        }
        if !(1..=MAX_STORED_MESSAGES).contains(&self.max_messages)
            || !(1..=self.max_messages).contains(&self.max_inbox_depth)
        {
            return Err(NodeError::Config(format!(
                "max_messages ({}) must be 1 to {MAX_STORED_MESSAGES}, and max_inbox_depth ({}) 1 to max_messages",
                self.max_messages, self.max_inbox_depth
            )));
        }
        Ok(())
    }
}

/// Why the node could not open or close its storage.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Another process holds the data directory's lock.
    #[error("data directory {dir} is locked by another running node; stop that node first, or give this one a different --data-dir")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The data directory could not be created or opened.
    #[error("cannot open data directory {dir}: {source}; check the path and its permissions")]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Recovery or the log refused.
    #[error(transparent)]
    Wal(WalError),
    /// A configuration value is unusable.
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// A thread could not be started.
    #[error("cannot start the WAL writer: {0}")]
    Start(std::io::Error),
    /// The runtime itself failed (a task or the actor tree).
    #[error("the node runtime failed: {0}")]
    Runtime(String),
    /// The log had failed before shutdown: some writes were refused.
    #[error("the write-ahead log failed while running: {0}")]
    FailedWhileRunning(String),
}

impl ErrorCode for NodeError {
    fn code(&self) -> &'static str {
        match self {
            NodeError::Locked { .. } => "NODE_DATA_DIR_LOCKED",
            NodeError::DataDir { .. } => "NODE_DATA_DIR_IO",
            NodeError::Wal(e) => e.code(),
            NodeError::Config(_) => "NODE_CONFIG",
            NodeError::Start(_) => "NODE_START",
            NodeError::FailedWhileRunning(_) => "NODE_WAL_FAILED",
            NodeError::Runtime(_) => "NODE_RUNTIME",
        }
    }
}

/// A node's opened storage: recovered state and the running log writer.
#[derive(Debug)]
pub struct OpenNode {
    /// Message state as recovered.
    pub store: MessageStore,
    /// Reference-service state as recovered (taken when the node starts).
    pub services: Option<ReferenceServices>,
    writer: WalWriter,
}

impl OpenNode {
    /// A handle for appending to the log.
    pub fn wal(&self) -> WalHandle {
        self.writer.handle()
    }

    /// Drains the writer (everything accepted is synced) and releases the
    /// directory lock. Reports a log failure that happened while running.
    pub fn shutdown(self) -> Result<(), NodeError> {
        let failure = self.writer.handle().failure();
        self.writer.shutdown();
        match failure {
            Some(e) => Err(NodeError::FailedWhileRunning(e.to_string())),
            None => Ok(()),
        }
    }
}

/// Opens the data directory, recovers, compacts per `policy`, and starts
/// the writer.
pub fn open_storage(config: &StorageConfig) -> Result<(OpenNode, RecoverySummary), NodeError> {
    open_storage_with(config, &CompactionPolicy::default())
}

/// [`open_storage`] with an explicit compaction policy.
pub fn open_storage_with(
    config: &StorageConfig,
    policy: &CompactionPolicy,
) -> Result<(OpenNode, RecoverySummary), NodeError> {
    open_storage_full(config, policy, &ReferenceConfig::default())
}

/// [`open_storage_with`], recovering the reference services seeded per
/// `reference` (their records overlay the seed in log order).
pub fn open_storage_full(
    config: &StorageConfig,
    policy: &CompactionPolicy,
    reference: &ReferenceConfig,
) -> Result<(OpenNode, RecoverySummary), NodeError> {
    config.validate()?;
    let mut services = ReferenceServices::new(reference.clone())
        .map_err(|e| NodeError::Config(format!("reference services: {e}")))?;
    let storage = FileStorage::open(&config.data_dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::WouldBlock {
            NodeError::Locked {
                dir: config.data_dir.clone(),
            }
        } else {
            NodeError::DataDir {
                dir: config.data_dir.clone(),
                source,
            }
        }
    })?;
    let mut store = MessageStore::new(config.store());
    let (mut wal, report) = Wal::open(storage, config.wal(), |r| {
        store.replay(&r)?;
        services.replay(&r)
    })
    .map_err(NodeError::Wal)?;
    let compaction =
        compact_with(&mut wal, &mut store, &mut services, policy, false).map_err(NodeError::Wal)?;
    let summary = RecoverySummary {
        wal: report,
        compaction,
        messages: store.len() as u64,
        in_inboxes: store.count_by_status(MessageStatus::Accepted) as u64,
        mailboxes: store.mailboxes_with_mail() as u64,
        uploading: store.count_by_status(MessageStatus::Uploading) as u64,
    };
    let writer_config = WriterConfig {
        max_in_flight: config.max_in_flight,
        max_batch_bytes: config.max_batch_bytes,
    };
    let writer = WalWriter::start(wal, writer_config).map_err(NodeError::Start)?;
    Ok((
        OpenNode {
            store,
            services: Some(services),
            writer,
        },
        summary,
    ))
}

/// What opening the data directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoverySummary {
    /// What the log layer found and did.
    pub wal: RecoveryReport,
    /// What startup compaction reclaimed.
    pub compaction: CompactionReport,
    /// Messages known (any status).
    pub messages: u64,
    /// Messages waiting in inboxes (accepted, not acknowledged).
    pub in_inboxes: u64,
    /// Mailboxes with at least one message waiting.
    pub mailboxes: u64,
    /// Messages still uploading (chunked, incomplete).
    pub uploading: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_limits_default_to_the_store_and_pass_through() {
        let config = StorageConfig::default();
        let store = StoreConfig::default();
        assert_eq!(config.max_messages, store.max_messages);
        assert_eq!(config.max_inbox_depth, store.max_inbox_depth);
        assert_eq!(config.store(), store);
        config.validate().unwrap();

        let config = StorageConfig {
            max_messages: 10,
            max_inbox_depth: 3,
            ..StorageConfig::default()
        };
        let store = config.store();
        assert_eq!((store.max_messages, store.max_inbox_depth), (10, 3));
        assert_eq!(store.inbox_expiry, config.inbox_expiry);
        assert_eq!(store.purge_after, config.purge_after);
        config.validate().unwrap();
    }

    #[test]
    fn store_limits_are_validated() {
        let with = |max_messages: u64, max_inbox_depth: u64| StorageConfig {
            max_messages,
            max_inbox_depth,
            ..StorageConfig::default()
        };
        for (messages, depth) in [(1, 1), (7, 7), (MAX_STORED_MESSAGES, 1)] {
            with(messages, depth)
                .validate()
                .unwrap_or_else(|e| panic!("{messages}/{depth}: {e}"));
        }
        for (messages, depth) in [(0, 0), (0, 1), (7, 0), (7, 8), (MAX_STORED_MESSAGES + 1, 1)] {
            let e = with(messages, depth).validate().unwrap_err();
            assert_eq!(e.code(), "NODE_CONFIG", "{messages}/{depth}");
            let text = e.to_string();
            assert!(
                text.contains("max_messages") && text.contains("max_inbox_depth"),
                "{text}"
            );
        }
    }

    #[test]
    fn store_limits_read_from_and_default_in_the_file_form() {
        let config: StorageConfig =
            toml::from_str("max_messages = 100\nmax_inbox_depth = 10\n").unwrap();
        assert_eq!((config.max_messages, config.max_inbox_depth), (100, 10));
        let config: StorageConfig = toml::from_str("").unwrap();
        assert_eq!(config, StorageConfig::default());
    }
}
