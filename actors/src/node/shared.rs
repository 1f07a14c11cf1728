//! State shared by the node handle and its actors.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use dashmap::DashMap;
use ractor::ActorRef;
use spine_core::directory::Directory;
use spine_core::ids::{MailboxId, MessageId, MessageIdGenerator};
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

/// A partition's ingress: requests queue here (lock-free) and the
/// partition drains many per wake-up, so a burst of requests costs one actor
/// message and one log submission rather than one each. The queue outlives
/// the actor: requests waiting in it are served by its replacement.
pub(crate) struct Ingress {
    pub(crate) tx: crossbeam_channel::Sender<PartitionMsg>,
    pub(crate) rx: crossbeam_channel::Receiver<PartitionMsg>,
    /// Set while a `Drain` is queued or running; cleared by the partition
    /// before it drains, so a request pushed after that schedules another.
    pub(crate) scheduled: std::sync::atomic::AtomicBool,
}

impl Ingress {
    pub(crate) fn new() -> Ingress {
        let (tx, rx) = crossbeam_channel::unbounded();
        Ingress {
            tx,
            rx,
            scheduled: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Everything the handle and the actors share (opaque outside this crate).
pub struct Shared {
    pub(crate) runtime: RuntimeConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) sink: LogSink,
    pub(crate) reader: PayloadReader,
    pub(crate) map: PartitionMap,
    /// Owners of live messages whose id does not name their partition
    /// (ids issued under another partition count). Every other id names
    /// its owner itself ([`PartitionMap::hinted_by`]), so the send path
    /// never touches this map and it is normally empty.
    pub(crate) misplaced: DashMap<MessageId, u32>,
    /// Current partition actors; `None` while one restarts.
    pub(crate) partitions: Vec<RwLock<Option<ActorRef<PartitionMsg>>>>,
    /// Bounds each partition's queue.
    pub(crate) permits: Vec<Arc<Semaphore>>,
    /// Each partition's request queue.
    pub(crate) ingress: Vec<Ingress>,
    pub(crate) ids: Mutex<IdSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) accepting: AtomicBool,
    pub(crate) failed: OnceLock<String>,
    /// Woken when the node fails.
    pub(crate) failure: tokio::sync::Notify,
    /// Requests in progress (for draining at shutdown).
    pub(crate) active: AtomicUsize,
    /// Service routing, once started.
    pub(crate) services: OnceLock<Arc<crate::services::ServiceHub>>,
    /// Restarts made by the supervisor, by child label (the counts of
    /// `spine_actor_restarts_total`).
    pub(crate) restarts: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

impl Shared {
    /// Counts a restart of a child labelled `label`.
    pub(crate) fn count_restart(&self, label: &'static str) {
        let mut restarts = self.restarts.lock().unwrap_or_else(|p| p.into_inner());
        *restarts.entry(label).or_default() += 1;
    }

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

    /// Wakes partition `index` to drain its ingress, unless already woken.
    pub(crate) fn wake(&self, index: u32) {
        let Some(ingress) = self.ingress.get(index as usize) else {
            return;
        };
        if ingress
            .scheduled
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let woken = self
            .partition(index)
            .is_some_and(|p| p.cast(PartitionMsg::Drain).is_ok());
        if !woken {
            // Restarting: the new actor drains on start.
            ingress
                .scheduled
                .store(false, std::sync::atomic::Ordering::Release);
        }
    }

    /// Wakes a partition that has just (re)started: a wake-up pending for
    /// its predecessor may have died with it, so the flag is cleared first.
    pub(crate) fn wake_fresh(&self, index: u32) {
        if let Some(ingress) = self.ingress.get(index as usize) {
            ingress
                .scheduled
                .store(false, std::sync::atomic::Ordering::Release);
        }
        self.wake(index);
    }

    /// A fresh id for a message to `recipient`, tagged with the
    /// recipient's partition.
    pub(crate) fn next_message_id(
        &self,
        recipient: &MailboxId,
    ) -> Result<MessageId, spine_core::ids::IdError> {
        let tag = self.map.id_tag(recipient);
        let now = self.clock.now();
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let IdSource { generator, rng } = &mut *ids;
        generator.next_tagged(now, rng.as_mut(), tag)
    }

    /// The partition that owns message `id` (if it exists).
    pub(crate) fn owner_of(&self, id: &MessageId) -> u32 {
        match self.misplaced.get(id) {
            Some(p) => *p,
            None => self.map.hinted_by(id).0,
        }
    }

    /// Records that partition `index` owns `id`, if the id does not say so.
    pub(crate) fn note_owner(&self, id: &MessageId, index: u32) {
        if self.map.hinted_by(id).0 != index {
            self.misplaced.insert(*id, index);
        }
    }

    /// Forgets a purged message's owner.
    pub(crate) fn forget_owner(&self, id: &MessageId, index: u32) {
        if self.map.hinted_by(id).0 != index {
            self.misplaced.remove(id);
        }
    }
}
