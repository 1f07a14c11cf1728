//! The message store: state rebuilt from, and advanced only by, log events.
//!
//! Invariants:
//! - State changes only in [`MessageStore::apply`], which the live path
//!   calls after an event is durable and recovery calls for every record in
//!   log order, so live state and replayed state are the same function of
//!   the log.
//! - An inbox lists accepted messages in acceptance order (`accepted_seq`),
//!   which compaction preserves.
//! - Every index (inboxes, expiry, purge, idempotency, local ids, segment
//!   references) is derived: it is updated together with the message it indexes, and
//!   [`MessageStore::check_invariants`] can verify it from scratch.
//! - Ordered maps only: iteration order is deterministic, so the simulator
//!   sees the same decisions for the same log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::envelope::{Envelope, MessageType};
use crate::ids::{LocalId, MailboxId, MessageId};
use crate::time::Timestamp;
use crate::wal::{RecordLocation, RecoveredRecord};

use super::error::StoreError;
use super::event::{ChunkLoc, Event, MessageSnapshot};
use super::state::MessageState;
use super::status::MessageStatus;

/// Store limits and lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long an accepted message waits in an inbox before it expires.
    pub inbox_expiry: Duration,
    /// How long after creation a message is forgotten entirely.
    pub purge_after: Duration,
    /// Most messages known at once (any status).
    pub max_messages: u64,
    /// Most messages waiting in one inbox.
    pub max_inbox_depth: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            inbox_expiry: Duration::from_secs(5 * 24 * 3600),
            purge_after: Duration::from_secs(30 * 24 * 3600),
            max_messages: 50_000_000,
            max_inbox_depth: 5_000_000,
        }
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// State changed.
    Changed,
    /// The message became accepted (is now in its recipient's inbox).
    Accepted,
    /// The event was for a message compacted away before the log's start.
    Ignored,
}

/// Where a message sits in the indexes a state change can move it between
/// (see [`MessageStore::insert`], which puts it there in the first place).
struct Indexed {
    /// Its inbox order key, while it waits in its recipient's inbox.
    inbox: Option<u64>,
    /// Whether it is in the expiry index.
    expiry: bool,
    segments: Vec<u64>,
    bytes: u64,
}

impl Indexed {
    fn of(state: &MessageState) -> Indexed {
        let accepted = state.status == MessageStatus::Accepted;
        Indexed {
            inbox: state.accepted_seq.filter(|_| accepted),
            expiry: accepted,
            segments: state.segments(),
            bytes: state.payload_bytes(),
        }
    }
}

/// All messages of one node (or one partition).
#[derive(Debug, Clone, Default)]
pub struct MessageStore {
    pub(crate) config: StoreConfig,
    pub(crate) messages: BTreeMap<MessageId, MessageState>,
    pub(crate) inboxes: BTreeMap<MailboxId, BTreeMap<u64, MessageId>>,
    pub(crate) expiry: BTreeSet<(Timestamp, MessageId)>,
    pub(crate) purge: BTreeSet<(Timestamp, MessageId)>,
    pub(crate) idempotency: BTreeMap<(MailboxId, String), MessageId>,
    /// DATA messages that carry a local id, by [`local_id_key`] of
    /// (sender, local id). Keyed by a hash rather than the strings so an
    /// entry costs no allocation and no copy of a local id of up to 300
    /// characters; look-ups re-check each candidate's envelope, so a
    /// collision costs a filtered candidate, never a wrong answer.
    pub(crate) local_ids: BTreeSet<(u64, MessageId)>,
    pub(crate) refs: BTreeMap<u64, BTreeSet<MessageId>>,
    pub(crate) live_bytes: u64,
    log_start: Option<u64>,
    last_seq: u64,
}

impl PartialEq for MessageStore {
    /// Equal when they hold the same messages and indexes (the log start
    /// and last sequence seen are bookkeeping, not state).
    fn eq(&self, other: &Self) -> bool {
        self.messages == other.messages
            && self.inboxes == other.inboxes
            && self.expiry == other.expiry
            && self.purge == other.purge
            && self.idempotency == other.idempotency
            && self.local_ids == other.local_ids
            && self.refs == other.refs
            && self.live_bytes == other.live_bytes
    }
}

fn replay_err(msg: impl Into<String>) -> StoreError {
    StoreError::Replay(msg.into())
}

/// Seed of [`local_id_key`] (fixed: the index must be the same function of
/// the log in every process, and after every restart).
const LOCAL_ID_SEED: u64 = 0x5350_494E_455F_4C49; // "SPINE_LI"

/// The local-id index key of (sender, local id): xxh3 over the sender's
/// length, the sender and the local id, so no two pairs share an input.
fn local_id_key(sender: &MailboxId, local_id: &LocalId) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(LOCAL_ID_SEED);
    h.update(&(sender.as_str().len() as u64).to_le_bytes());
    h.update(sender.as_str().as_bytes());
    h.update(local_id.as_str().as_bytes());
    h.digest()
}

/// The local-id index key of a message, if the index holds it: DATA
/// messages with a local id (reports are not sent by the mailbox named as
/// their sender, so tracking by local id does not list them).
fn local_id_key_of(env: &Envelope) -> Option<u64> {
    match (env.message_type, &env.local_id) {
        (MessageType::Data, Some(local_id)) => Some(local_id_key(&env.sender, local_id)),
        _ => None,
    }
}

impl MessageStore {
    /// An empty store.
    pub fn new(config: StoreConfig) -> MessageStore {
        MessageStore {
            config,
            ..MessageStore::default()
        }
    }

    /// Fixes the log's first sequence number (events for messages created
    /// before it were compacted away). Without this the first applied
    /// sequence number is taken.
    pub fn set_log_start(&mut self, seq: u64) {
        self.log_start.get_or_insert(seq);
    }

    /// Splits the store into `n` stores by the recipient's partition; each
    /// keeps this store's configuration and log start.
    pub fn split_by(
        self,
        n: usize,
        mut partition_of: impl FnMut(&MailboxId) -> usize,
    ) -> Vec<MessageStore> {
        let mut parts: Vec<MessageStore> = (0..n.max(1))
            .map(|_| MessageStore {
                config: self.config.clone(),
                log_start: self.log_start,
                last_seq: self.last_seq,
                ..MessageStore::default()
            })
            .collect();
        let count = parts.len();
        for (_, state) in self.messages {
            let i = partition_of(&state.envelope.recipient).min(count - 1);
            parts[i].insert(state);
        }
        parts
    }

    /// Every message, in id order.
    pub fn messages(&self) -> impl Iterator<Item = &MessageState> {
        self.messages.values()
    }

    /// Applies an event unless it is a `Create` whose message already
    /// exists with this very origin (a forwarded event that the owner has
    /// already rebuilt from the log).
    pub fn apply_idempotent(
        &mut self,
        seq: u64,
        location: RecordLocation,
        event: Event,
        body: &Bytes,
        body_loc: ChunkLoc,
    ) -> Result<Applied, StoreError> {
        if let Event::Create { envelope, .. } = &event {
            if self
                .messages
                .get(&envelope.message_id)
                .is_some_and(|m| m.origin == seq)
            {
                return Ok(Applied::Ignored);
            }
        }
        self.apply(seq, location, event, body, body_loc)
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Decodes and applies a recovered record (the recovery visitor).
    pub fn replay(&mut self, record: &RecoveredRecord) -> Result<Applied, String> {
        // Service state shares the log; its records are replayed by
        // `services::ReferenceServices`, not here.
        if crate::services::is_service_kind(record.kind) {
            return Ok(Applied::Ignored);
        }
        if record.seq <= self.last_seq {
            return Err(format!(
                "record {} replayed after {}",
                record.seq, self.last_seq
            ));
        }
        let (event, body, body_loc) =
            Event::from_record(record.kind, &record.payload, record.location)?;
        self.apply(record.seq, record.location, event, &body, body_loc)
            .map_err(|e| e.to_string())
    }

    /// Applies a durable event at `seq`. `location` is the record's payload
    /// location and `body_loc` where its body (message bytes) is. The event
    /// is consumed: a created message's envelope moves into the store
    /// without a copy.
    pub fn apply(
        &mut self,
        seq: u64,
        location: RecordLocation,
        event: Event,
        body: &Bytes,
        body_loc: ChunkLoc,
    ) -> Result<Applied, StoreError> {
        let log_start = *self.log_start.get_or_insert(seq);
        self.last_seq = self.last_seq.max(seq);
        match event {
            Event::Create {
                envelope,
                idempotency_key,
            } => {
                if self.messages.contains_key(&envelope.message_id) {
                    return Err(replay_err(format!(
                        "message {} created twice",
                        envelope.message_id
                    )));
                }
                let total = envelope.total_chunks as usize;
                let mut chunks = vec![None; total];
                if let Some(first) = chunks.first_mut() {
                    *first = Some(body_loc);
                } else if !body.is_empty() {
                    return Err(replay_err("a message without chunks carries a body"));
                }
                let accepted = total <= 1;
                let state = MessageState {
                    envelope,
                    idempotency_key,
                    status: if accepted {
                        MessageStatus::Accepted
                    } else {
                        MessageStatus::Uploading
                    },
                    origin: seq,
                    origin_segment: location.segment,
                    accepted_seq: accepted.then_some(seq),
                    acknowledged_at: None,
                    expired_at: None,
                    chunks,
                };
                self.insert(state);
                Ok(if accepted {
                    Applied::Accepted
                } else {
                    Applied::Changed
                })
            }
            Event::Chunk {
                message_id,
                origin,
                chunk_no,
            } => self.update(&message_id, origin, log_start, |state| {
                if state.status != MessageStatus::Uploading {
                    return Err(replay_err(format!(
                        "chunk for {message_id} which is {}",
                        state.status
                    )));
                }
                *chunk_slot(state, chunk_no)? = Some(body_loc);
                if state.chunks.iter().all(Option::is_some) {
                    state.status = MessageStatus::Accepted;
                    state.accepted_seq = Some(seq);
                    return Ok(Applied::Accepted);
                }
                Ok(Applied::Changed)
            }),
            Event::Acknowledge {
                message_id,
                origin,
                at,
            } => {
                self.update(&message_id, origin, log_start, |state| {
                    expect_accepted(state, "acknowledge")?;
                    state.status = MessageStatus::Acknowledged;
                    state.acknowledged_at = Some(at);
                    // Collected: the content is no longer needed.
                    state.chunks.iter_mut().for_each(|c| *c = None);
                    Ok(Applied::Changed)
                })
            }
            Event::Expire {
                message_id,
                origin,
                at,
                ..
            } => self.update(&message_id, origin, log_start, |state| {
                expect_accepted(state, "expiry")?;
                state.status = MessageStatus::Expired;
                state.expired_at = Some(at);
                Ok(Applied::Changed)
            }),
            Event::Purge {
                message_id, origin, ..
            } => Ok(match self.take(&message_id, origin, log_start)? {
                Some(_) => Applied::Changed,
                None => Applied::Ignored,
            }),
            Event::Snapshot(snapshot) => {
                let id = snapshot.envelope.message_id;
                let _ = self.remove(&id);
                self.insert(from_snapshot(&snapshot, seq, location.segment));
                Ok(Applied::Changed)
            }
            Event::CarryChunk {
                message_id,
                chunk_no,
            } => {
                let mut state = self.remove(&message_id).ok_or_else(|| {
                    replay_err(format!("carried chunk for unknown message {message_id}"))
                })?;
                let result = chunk_slot(&mut state, chunk_no).map(|slot| *slot = Some(body_loc));
                self.insert(state);
                result.map(|()| Applied::Changed)
            }
        }
    }

    /// Takes a message out, lets `change` mutate it, and puts it back with
    /// its indexes rebuilt. `change` must check before it mutates: when it
    /// refuses, the message goes back as it was.
    /// Changes a message in place and moves it between the indexes its
    /// change affects (inbox, expiry, segment references, live bytes).
    /// `change` may alter only status, accepted order, timestamps and
    /// chunks: never the envelope, origin or idempotency key, which key the
    /// other indexes (true of every event that updates). Resolves `origin`
    /// as replay requires: a message compacted away before the log start is
    /// `Ignored`.
    fn update(
        &mut self,
        id: &MessageId,
        origin: u64,
        log_start: u64,
        change: impl FnOnce(&mut MessageState) -> Result<Applied, StoreError>,
    ) -> Result<Applied, StoreError> {
        let state = match self.messages.get_mut(id) {
            Some(state) if state.origin != origin => {
                return Err(replay_err(format!(
                    "event for {id} names origin {origin} but the message's origin is {}",
                    state.origin
                )))
            }
            Some(state) => state,
            None if origin < log_start => return Ok(Applied::Ignored),
            None => {
                return Err(replay_err(format!(
                    "event for unknown message {id} (origin {origin})"
                )))
            }
        };
        let before = Indexed::of(state);
        let result = change(state);
        let after = Indexed::of(state);
        let envelope = Arc::clone(&state.envelope);
        if before.inbox != after.inbox {
            if let Some(order) = before.inbox {
                if let Some(inbox) = self.inboxes.get_mut(&envelope.recipient) {
                    inbox.remove(&order);
                    if inbox.is_empty() {
                        self.inboxes.remove(&envelope.recipient);
                    }
                }
            }
            if let Some(order) = after.inbox {
                match self.inboxes.get_mut(&envelope.recipient) {
                    Some(inbox) => {
                        inbox.insert(order, *id);
                    }
                    None => {
                        self.inboxes
                            .insert(envelope.recipient.clone(), BTreeMap::from([(order, *id)]));
                    }
                }
            }
        }
        match (before.expiry, after.expiry) {
            (true, false) => {
                self.expiry.remove(&(envelope.expires_at, *id));
            }
            (false, true) => {
                self.expiry.insert((envelope.expires_at, *id));
            }
            _ => {}
        }
        for seg in before
            .segments
            .iter()
            .filter(|s| !after.segments.contains(s))
        {
            if let Some(set) = self.refs.get_mut(seg) {
                set.remove(id);
                if set.is_empty() {
                    self.refs.remove(seg);
                }
            }
        }
        for seg in after
            .segments
            .iter()
            .filter(|s| !before.segments.contains(s))
        {
            self.refs.entry(*seg).or_default().insert(*id);
        }
        self.live_bytes = self.live_bytes - before.bytes + after.bytes;
        result
    }

    /// Removes a message for update, resolving `origin` as replay requires:
    /// `Ok(None)` when the message was compacted away before the log start.
    fn take(
        &mut self,
        id: &MessageId,
        origin: u64,
        log_start: u64,
    ) -> Result<Option<MessageState>, StoreError> {
        match self.messages.get(id) {
            Some(state) if state.origin != origin => Err(replay_err(format!(
                "event for {id} names origin {origin} but the message's origin is {}",
                state.origin
            ))),
            Some(_) => Ok(self.remove(id)),
            None if origin < log_start => Ok(None),
            None => Err(replay_err(format!(
                "event for unknown message {id} (origin {origin})"
            ))),
        }
    }

    fn insert(&mut self, state: MessageState) {
        let id = state.envelope.message_id;
        let env = &state.envelope;
        if state.status == MessageStatus::Accepted {
            if let Some(order) = state.accepted_seq {
                // Look up before `entry` so the common case (the inbox
                // exists) does not clone the mailbox id.
                match self.inboxes.get_mut(&env.recipient) {
                    Some(inbox) => {
                        inbox.insert(order, id);
                    }
                    None => {
                        self.inboxes
                            .insert(env.recipient.clone(), BTreeMap::from([(order, id)]));
                    }
                }
            }
            self.expiry.insert((env.expires_at, id));
        }
        self.purge.insert((self.purge_time(env.created_at), id));
        if let Some(key) = &state.idempotency_key {
            self.idempotency
                .insert((env.sender.clone(), key.clone()), id);
        }
        if let Some(key) = local_id_key_of(env) {
            self.local_ids.insert((key, id));
        }
        for seg in state.segments() {
            self.refs.entry(seg).or_default().insert(id);
        }
        self.live_bytes += state.payload_bytes();
        self.messages.insert(id, state);
    }

    fn remove(&mut self, id: &MessageId) -> Option<MessageState> {
        let state = self.messages.remove(id)?;
        let env = &state.envelope;
        if let Some(order) = state.accepted_seq {
            if let Some(inbox) = self.inboxes.get_mut(&env.recipient) {
                inbox.remove(&order);
                if inbox.is_empty() {
                    self.inboxes.remove(&env.recipient);
                }
            }
        }
        self.expiry.remove(&(env.expires_at, *id));
        self.purge.remove(&(self.purge_time(env.created_at), *id));
        if let Some(key) = &state.idempotency_key {
            self.idempotency.remove(&(env.sender.clone(), key.clone()));
        }
        if let Some(key) = local_id_key_of(env) {
            self.local_ids.remove(&(key, *id));
        }
        for seg in state.segments() {
            if let Some(set) = self.refs.get_mut(&seg) {
                set.remove(id);
                if set.is_empty() {
                    self.refs.remove(&seg);
                }
            }
        }
        self.live_bytes -= state.payload_bytes();
        Some(state)
    }

    pub(crate) fn purge_time(&self, created: Timestamp) -> Timestamp {
        created.saturating_add(self.config.purge_after)
    }

    /// A message by id.
    pub fn get(&self, id: &MessageId) -> Option<&MessageState> {
        self.messages.get(id)
    }

    /// Number of messages known (any status).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Messages waiting in `mailbox`'s inbox, in acceptance order, after the
    /// order key `after` (exclusive), at most `limit`, filtered.
    pub fn inbox(
        &self,
        mailbox: &MailboxId,
        after: Option<u64>,
        limit: usize,
        mut filter: impl FnMut(&MessageState) -> bool,
    ) -> Vec<&MessageState> {
        let Some(inbox) = self.inboxes.get(mailbox) else {
            return Vec::new();
        };
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        inbox
            .range((start, std::ops::Bound::Unbounded))
            .filter_map(|(_, id)| self.messages.get(id))
            .filter(|m| filter(m))
            .take(limit)
            .collect()
    }

    /// The order key of the newest message waiting in `mailbox`'s inbox.
    pub fn inbox_last(&self, mailbox: &MailboxId) -> Option<u64> {
        self.inboxes
            .get(mailbox)
            .and_then(|inbox| inbox.keys().next_back().copied())
    }

    /// Number of messages waiting in `mailbox`'s inbox.
    pub fn inbox_len(&self, mailbox: &MailboxId) -> usize {
        self.inboxes.get(mailbox).map_or(0, BTreeMap::len)
    }

    /// Number of mailboxes with messages waiting.
    pub fn mailboxes_with_mail(&self) -> usize {
        self.inboxes.len()
    }

    /// Counts of messages by status.
    pub fn count_by_status(&self, status: MessageStatus) -> usize {
        self.messages
            .values()
            .filter(|m| m.status == status)
            .count()
    }

    /// Bytes of message content still referenced.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The message a sender's idempotency key maps to.
    pub fn by_idempotency_key(&self, sender: &MailboxId, key: &str) -> Option<&MessageId> {
        self.idempotency.get(&(sender.clone(), key.to_string()))
    }

    /// Every message `sender` sent with local id `local_id` that still
    /// exists (any status), in creation order. Only DATA messages are
    /// indexed: a report is not sent by the mailbox it names as sender.
    /// Cost: the matching messages (an index range), not a scan.
    pub fn by_local_id(&self, sender: &MailboxId, local_id: &LocalId) -> Vec<&MessageState> {
        let key = local_id_key(sender, local_id);
        let mut found: Vec<&MessageState> = self
            .local_ids
            .range((key, MessageId::MIN)..)
            .take_while(|(k, _)| *k == key)
            .filter_map(|(_, id)| self.messages.get(id))
            .filter(|m| {
                &m.envelope.sender == sender && m.envelope.local_id.as_ref() == Some(local_id)
            })
            .collect();
        found.sort_by_key(|m| (m.envelope.created_at, m.envelope.message_id));
        found
    }

    /// Messages that reference any segment at or below `segment`, as they
    /// come: segment by segment, in id order within each, so a message
    /// that references several of those segments comes once for each.
    /// Lazy, so taking a slice of a segment's messages costs the slice,
    /// not the whole segment (see [`MessageStore::referencing`]).
    pub fn referencing_each(&self, segment: u64) -> impl Iterator<Item = MessageId> + '_ {
        self.refs
            .range(..=segment)
            .flat_map(|(_, ids)| ids.iter().copied())
    }

    /// Messages that reference any segment at or below `segment`, each
    /// once, in id order.
    pub fn referencing(&self, segment: u64) -> Vec<MessageId> {
        let out: BTreeSet<MessageId> = self.referencing_each(segment).collect();
        out.into_iter().collect()
    }

    /// Messages whose inbox expiry is at or before `now`, oldest first.
    pub fn due_expiry(&self, now: Timestamp, limit: usize) -> Vec<&MessageState> {
        self.expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter_map(|(_, id)| self.messages.get(id))
            .take(limit)
            .collect()
    }

    /// Messages due to be purged at or before `now`, oldest first.
    pub fn due_purge(&self, now: Timestamp, limit: usize) -> Vec<&MessageState> {
        self.purge
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter_map(|(_, id)| self.messages.get(id))
            .take(limit)
            .collect()
    }

    /// Rebuilds every index from the messages and compares: for tests and
    /// the simulator's invariant checks.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut fresh = MessageStore::new(self.config.clone());
        for state in self.messages.values() {
            fresh.insert(state.clone());
        }
        if fresh != *self {
            return Err("derived indexes disagree with the messages".into());
        }
        for (key, id) in &self.local_ids {
            let m = self
                .messages
                .get(id)
                .ok_or_else(|| format!("local-id index lists unknown {id}"))?;
            if local_id_key_of(&m.envelope) != Some(*key) {
                return Err(format!("local-id index lists {id} under a key not its own"));
            }
        }
        for (mailbox, inbox) in &self.inboxes {
            for id in inbox.values() {
                let m = self
                    .messages
                    .get(id)
                    .ok_or_else(|| format!("inbox {mailbox} lists unknown {id}"))?;
                if m.status != MessageStatus::Accepted || &m.envelope.recipient != mailbox {
                    return Err(format!(
                        "inbox {mailbox} lists {id} which is {} for {}",
                        m.status, m.envelope.recipient
                    ));
                }
            }
        }
        Ok(())
    }
}

fn chunk_slot(
    state: &mut MessageState,
    chunk_no: u32,
) -> Result<&mut Option<ChunkLoc>, StoreError> {
    let total = state.chunks.len() as u32;
    let id = state.envelope.message_id;
    let index =
        chunk_no
            .checked_sub(1)
            .filter(|i| *i < total)
            .ok_or(StoreError::ChunkOutOfRange {
                id,
                chunk: chunk_no,
                total,
            })?;
    state
        .chunks
        .get_mut(index as usize)
        .ok_or_else(|| replay_err("chunk index out of range"))
}

fn expect_accepted(state: &MessageState, what: &str) -> Result<(), StoreError> {
    match state.status {
        MessageStatus::Accepted => Ok(()),
        other => Err(replay_err(format!(
            "{what} of {} which is {other}",
            state.envelope.message_id
        ))),
    }
}

fn from_snapshot(s: &MessageSnapshot, seq: u64, segment: u64) -> MessageState {
    MessageState {
        envelope: Arc::new(s.envelope.clone()),
        idempotency_key: s.idempotency_key.clone(),
        status: s.status,
        origin: seq,
        origin_segment: segment,
        accepted_seq: s.accepted_seq,
        acknowledged_at: s.acknowledged_at,
        expired_at: s.expired_at,
        chunks: s.chunks.clone(),
    }
}
