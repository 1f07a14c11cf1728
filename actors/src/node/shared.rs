//! State shared by the node handle and its actors.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use dashmap::DashMap;
use ractor::ActorRef;
use spine_core::directory::Directory;
use spine_core::ids::{MessageId, MessageIdGenerator};
use spine_core::partition::PartitionMap;
use spine_core::random::RandomSource;
use spine_core::time::Clock;
use tokio::sync::Semaphore;

use super::config::RuntimeConfig;
use super::reader::PayloadReader;
use super::sink::LogSink;
use super::storage::StorageConfig;
use crate::partition::PartitionMsg;

/// Message ids: a generator and its randomness.
pub(crate) struct IdSource {
    pub(crate) generator: MessageIdGenerator,
    pub(crate) rng: Box<dyn RandomSource>,
}

/// Everything the handle and the actors share (opaque outside this crate).
pub struct Shared {
    pub(crate) runtime: RuntimeConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) sink: LogSink,
    pub(crate) reader: PayloadReader,
    pub(crate) map: PartitionMap,
    /// Which partition owns each live message.
    pub(crate) index: DashMap<MessageId, u32>,
    /// Current partition actors; `None` while one restarts.
    pub(crate) partitions: Vec<RwLock<Option<ActorRef<PartitionMsg>>>>,
    /// Bounds each partition's queue.
    pub(crate) permits: Vec<Arc<Semaphore>>,
    pub(crate) ids: Mutex<IdSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) accepting: AtomicBool,
    pub(crate) failed: OnceLock<String>,
    /// Woken when the node fails.
    pub(crate) failure: tokio::sync::Notify,
    /// Requests in progress (for draining at shutdown).
    pub(crate) active: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

impl Shared {
    /// The partition actor for `index`, if running.
    pub(crate) fn partition(&self, index: u32) -> Option<ActorRef<PartitionMsg>> {
        self.partitions
            .get(index as usize)
            .and_then(|slot| slot.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Replaces the partition actor for `index`.
    pub(crate) fn set_partition(&self, index: u32, actor: Option<ActorRef<PartitionMsg>>) {
        if let Some(slot) = self.partitions.get(index as usize) {
            *slot.write().unwrap_or_else(|p| p.into_inner()) = actor;
        }
    }

    /// A fresh message id.
    pub(crate) fn next_message_id(&self) -> Result<MessageId, spine_core::ids::IdError> {
        let now = self.clock.now();
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let IdSource { generator, rng } = &mut *ids;
        generator.next(now, rng.as_mut())
    }
}
