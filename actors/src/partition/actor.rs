//! The partition actor: owns the messages of the mailboxes hashed to it.
//!
//! Every change follows check → log → apply: a request is validated against
//! the current state, its events are handed to the log, and they are applied
//! (and the caller answered) only when the log reports them durable. The
//! log's completions arrive in this actor's mailbox in sequence order.
//!
//! Invariants:
//! - A request that changes a message whose earlier change is still in
//!   flight waits (it is deferred, then re-queued in arrival order once the
//!   earlier change is applied), so checks always see applied state.
//! - Sends with an idempotency key already in flight wait for that send and
//!   get its message id: one key, one message.
//! - If a durable event cannot be applied, the actor fails on purpose: its
//!   state no longer matches the log, and the supervisor rebuilds it from
//!   the log. Callers then get `NODE_OUTCOME_UNKNOWN`, never silence.
//! - A non-delivery report created here for a mailbox owned elsewhere is
//!   forwarded to its owner, which applies it idempotently.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use smallvec::{smallvec, SmallVec};
use spine_core::envelope::{Envelope, MessageType};
use spine_core::ids::{MailboxId, MessageId};
use spine_core::message::{
    AckCheck, Applied, ChunkLoc, Event, MessageStatus, MessageStore, ResetLimits, SendCheck,
    StoreError,
};
use spine_core::wal::PendingRecord;

use super::msg::{CarryProgress, Foreign, PartitionMsg, Reply, ResetProgress};
use super::subscribers::Subscribers;
use crate::node::error::RequestError;
use crate::node::shared::Shared;
use crate::node::types::{
    ChunkOutcome, InboxPage, MessageView, SendOutcome, MAX_NOTIFICATION_BODY_BYTES,
};
use crate::wal::AppendResult;

/// Most queued requests served per drain before yielding to the mailbox
/// (so `Durable` completions and other partitions get the worker: 128
/// measured no worse than 1,024 in throughput, with shorter stalls).
const DRAIN_LIMIT: usize = 128;

/// Most messages one reset step examines (the purges it logs are bounded
/// by `expiry_batch`), so a reset of a large store never holds the
/// partition for long: other requests are served between steps.
const RESET_SCAN_LIMIT: usize = 4096;

/// The actor (stateless; state lives in [`PartitionState`]).
#[derive(Debug)]
pub struct PartitionActor;

/// What a partition starts from.
#[derive(Debug)]
pub struct PartitionArgs {
    /// Which partition.
    pub index: u32,
    /// Its messages, recovered from the log.
    pub store: MessageStore,
    pub(crate) shared: Arc<Shared>,
}

enum Answer {
    Send {
        reply: Reply<SendOutcome>,
        key: Option<(MailboxId, String)>,
        id: MessageId,
    },
    Chunk {
        reply: Reply<ChunkOutcome>,
        id: MessageId,
    },
    Ack(Reply<()>),
    Reset {
        reply: Reply<ResetProgress>,
        progress: ResetProgress,
    },
    /// An expiry round asked for by a caller: answered with the number of
    /// events once the round's last batch is durable and applied (batches
    /// complete in log order, so every earlier one is too).
    Expired {
        reply: Reply<usize>,
        logged: usize,
    },
    Quiet,
}

/// Events of one expiry operation (a message and its report, or the
/// purges) and the messages it touches.
type ExpiryOp = (Events, Touched);

/// An operation's events with their bodies. Almost every operation (a
/// send, a chunk, an acknowledgement) has exactly one: held inline, so
/// that common case allocates nothing for it.
type Events = SmallVec<[(Event, Bytes); 1]>;

/// The messages an operation marks busy until it is durable (inline for one).
type Touched = SmallVec<[MessageId; 1]>;

/// One operation's events, waiting to be logged or to become durable
/// (each list inline for the one-event operations that dominate).
struct Op {
    events: SmallVec<[Event; 1]>,
    heads: SmallVec<[usize; 1]>,
    bodies: SmallVec<[Bytes; 1]>,
    records: SmallVec<[PendingRecord; 1]>,
    touched: Touched,
    answer: Answer,
}

/// A group of operations logged as one atomic batch.
struct Pending {
    ops: Vec<Op>,
}

/// A partition's state.
pub struct PartitionState {
    index: u32,
    store: MessageStore,
    shared: Arc<Shared>,
    next_token: u64,
    pending: HashMap<u64, Pending>,
    busy: HashSet<MessageId>,
    deferred: HashMap<MessageId, VecDeque<PartitionMsg>>,
    keys: HashMap<(MailboxId, String), Vec<Reply<SendOutcome>>>,
    /// Operations gathered while draining the ingress queue, logged together.
    group: Vec<Op>,
    /// Whether `log` gathers into `group` (while draining) or submits at once.
    grouping: bool,
    subscribers: Subscribers,
}

impl std::fmt::Debug for PartitionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionState")
            .field("index", &self.index)
            .field("messages", &self.store.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<PartitionMsg>,
        args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        for m in args.store.messages() {
            args.shared.note_owner(&m.envelope.message_id, args.index);
        }
        Ok(PartitionState {
            index: args.index,
            store: args.store,
            shared: args.shared,
            next_token: 0,
            pending: HashMap::default(),
            busy: HashSet::default(),
            deferred: HashMap::default(),
            keys: HashMap::default(),
            group: Vec::new(),
            grouping: false,
            subscribers: Subscribers::default(),
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<PartitionMsg>,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        // Requests that queued while this partition was (re)starting.
        state.shared.wake_fresh(state.index);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        state.dispatch(&myself, msg).await
    }
}

fn answer<T>(reply: Reply<T>, result: Result<T, RequestError>) {
    // The caller may have gone away; that is its business.
    let _ = reply.send(result);
}

impl PartitionState {
    async fn dispatch(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        msg: PartitionMsg,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(id) = msg.touches() {
            if self.busy.contains(id) {
                self.deferred.entry(*id).or_default().push_back(msg);
                return Ok(());
            }
        }
        match msg {
            PartitionMsg::Send {
                envelope,
                idempotency_key,
                body,
                reply,
            } => {
                self.on_send(myself, envelope, idempotency_key, body, reply)
                    .await;
            }
            PartitionMsg::SendMany(items) => {
                for item in items {
                    let one = PartitionMsg::Send {
                        envelope: item.envelope,
                        idempotency_key: item.idempotency_key,
                        body: item.body,
                        reply: item.reply,
                    };
                    Box::pin(self.dispatch(myself, one)).await?;
                }
            }
            PartitionMsg::AckMany { mailbox, items } => {
                for (id, reply) in items {
                    let one = PartitionMsg::Ack {
                        mailbox: mailbox.clone(),
                        id,
                        reply,
                    };
                    Box::pin(self.dispatch(myself, one)).await?;
                }
            }
            PartitionMsg::Chunk {
                sender,
                id,
                chunk_no,
                body,
                reply,
            } => match self.store.check_chunk(&sender, &id, chunk_no) {
                Ok(event) => {
                    self.log(
                        myself,
                        smallvec![(event, body)],
                        smallvec![id],
                        Answer::Chunk { reply, id },
                    )
                    .await;
                }
                Err(e) => answer(reply, Err(e.into())),
            },
            PartitionMsg::Ack { mailbox, id, reply } => {
                match self.store.check_ack(&mailbox, &id, self.shared.clock.now()) {
                    Ok(AckCheck::Log(event)) => {
                        self.log(
                            myself,
                            smallvec![(event, Bytes::new())],
                            smallvec![id],
                            Answer::Ack(reply),
                        )
                        .await;
                    }
                    Ok(AckCheck::AlreadyAcknowledged) => answer(reply, Ok(())),
                    Err(e) => answer(reply, Err(e.into())),
                }
            }
            PartitionMsg::List {
                mailbox,
                filter,
                after,
                limit,
                reply,
            } => {
                let limit = limit.clamp(1, self.shared.runtime.max_inbox_page);
                let mut messages: Vec<MessageView> = self
                    .store
                    .inbox(&mailbox, after, limit + 1, |m| {
                        filter
                            .as_ref()
                            .is_none_or(|f| f.matches(m.envelope.workflow_id.as_str()))
                    })
                    .into_iter()
                    .map(MessageView::from)
                    .collect();
                let next = if messages.len() > limit {
                    messages.truncate(limit);
                    messages.last().and_then(|m| m.accepted_seq)
                } else {
                    None
                };
                let total = self.store.inbox_len(&mailbox);
                answer(
                    reply,
                    Ok(InboxPage {
                        messages,
                        next,
                        total,
                    }),
                );
            }
            PartitionMsg::Get { id, reply } => {
                answer(reply, Ok(self.store.get(&id).map(MessageView::from)))
            }
            PartitionMsg::TrackLocal {
                sender,
                local_id,
                reply,
            } => {
                let found = self.store.by_local_id(&sender, &local_id);
                answer(
                    reply,
                    Ok(found.into_iter().map(MessageView::from).collect()),
                );
            }
            PartitionMsg::Reset {
                mailbox,
                after,
                reply,
            } => self.on_reset(myself, mailbox, after, reply).await,
            PartitionMsg::Expire { now, reply } => self.on_expire(myself, now, reply).await,
            PartitionMsg::ApplyForeign(foreign) => {
                let Foreign {
                    seq,
                    location,
                    event,
                    body_loc,
                    inline,
                } = *foreign;
                let id = *event.message_id();
                match self
                    .store
                    .apply_idempotent(seq, location, event, &Bytes::new(), body_loc)
                {
                    Ok(Applied::Accepted) => {
                        self.shared.note_owner(&id, self.index);
                        metrics::counter!("spine_messages_accepted_total").increment(1);
                        self.notify(&[(id, inline)]);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Err(format!("forwarded event {seq} does not apply: {e}").into())
                    }
                }
            }
            PartitionMsg::Subscribe { mailbox, tx } => {
                let last = self.store.inbox_last(&mailbox);
                self.subscribers.add(mailbox, tx, last);
            }
            PartitionMsg::Durable { token, result } => self.on_durable(myself, token, result)?,
            PartitionMsg::Drain => self.drain(myself).await,
            PartitionMsg::Carry {
                upto_segment,
                limit,
                reply,
            } => {
                let progress = self.on_carry(myself, upto_segment, limit).await;
                answer(reply, progress);
            }
            PartitionMsg::LiveBytes { reply } => answer(reply, Ok(self.store.live_bytes())),
            #[cfg(any(test, feature = "fault-injection"))]
            PartitionMsg::Panic => panic!(
                "fault injection: partition {} panics on request",
                self.index
            ),
        }
        Ok(())
    }

    /// Serves up to `DRAIN_LIMIT` queued requests, logging their events as
    /// one batch; reschedules itself if more are waiting.
    async fn drain(&mut self, myself: &ActorRef<PartitionMsg>) {
        let Some(ingress) = self.shared.ingress.get(self.index as usize) else {
            return;
        };
        ingress
            .scheduled
            .store(false, std::sync::atomic::Ordering::Release);
        let rx = ingress.rx.clone();
        self.grouping = true;
        let mut served = 0;
        while served < DRAIN_LIMIT {
            let Ok(msg) = rx.try_recv() else { break };
            served += 1;
            // Requests from the ingress never fail the actor.
            let _ = Box::pin(self.dispatch(myself, msg)).await;
        }
        self.grouping = false;
        self.flush(myself).await;
        self.subscribers.refill(&self.store);
        if served == DRAIN_LIMIT || !rx.is_empty() {
            self.shared.wake(self.index);
        }
    }

    async fn on_send(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        envelope: Arc<Envelope>,
        key: Option<String>,
        body: Bytes,
        reply: Reply<SendOutcome>,
    ) {
        let key = key.map(|k| (envelope.sender.clone(), k));
        if let Some(k) = &key {
            if let Some(waiters) = self.keys.get_mut(k) {
                waiters.push(reply);
                return;
            }
        }
        match self
            .store
            .check_send(envelope, key.as_ref().map(|k| k.1.clone()))
        {
            Err(e) => answer(reply, Err(e.into())),
            Ok(SendCheck::Duplicate(id)) => {
                let status = self
                    .store
                    .get(&id)
                    .map_or(MessageStatus::Accepted, |m| m.status);
                answer(
                    reply,
                    Ok(SendOutcome {
                        message_id: id,
                        duplicate: true,
                        status,
                    }),
                );
            }
            Ok(SendCheck::New(event)) => {
                let id = *event.message_id();
                if let Some(k) = &key {
                    self.keys.insert(k.clone(), Vec::new());
                }
                self.log(
                    myself,
                    smallvec![(event, body)],
                    smallvec![id],
                    Answer::Send { reply, key, id },
                )
                .await;
            }
        }
    }

    /// Hands events to the log; the outcome comes back as `Durable`.
    /// While draining the ingress queue, operations are gathered and
    /// logged as one batch by [`PartitionState::flush`].
    async fn log(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        events: Events,
        touched: Touched,
        answer_to: Answer,
    ) {
        let mut records: SmallVec<[PendingRecord; 1]> = SmallVec::with_capacity(events.len());
        for (event, body) in &events {
            match event.to_record(body.clone()) {
                Ok(r) => records.push(r),
                Err(e) => {
                    let why = format!("cannot encode the message: {e}");
                    self.finish(answer_to, Err(RequestError::Invalid(why)));
                    return;
                }
            }
        }
        let heads = records.iter().map(|r| r.head.len()).collect();
        let (events, bodies) = events.into_iter().unzip();
        for id in &touched {
            self.busy.insert(*id);
        }
        self.group.push(Op {
            events,
            heads,
            bodies,
            records,
            touched,
            answer: answer_to,
        });
        if !self.grouping {
            self.flush(myself).await;
        }
    }

    /// Submits the gathered operations as one batch with one completion.
    async fn flush(&mut self, myself: &ActorRef<PartitionMsg>) {
        if self.group.is_empty() {
            return;
        }
        let mut ops = std::mem::take(&mut self.group);
        let token = self.next_token;
        self.next_token += 1;
        let mut records = Vec::with_capacity(ops.iter().map(|o| o.records.len()).sum());
        // Creates owned by another partition (non-delivery reports) are
        // forwarded from the completion itself, so they reach their owner
        // even if this actor dies before it handles `Durable`.
        let mut foreign: Vec<(usize, u32, Event, usize, u32, Option<Bytes>)> = Vec::new();
        for op in &mut ops {
            for (i, event) in op.events.iter().enumerate() {
                if let Event::Create { envelope, .. } = event {
                    if let Some(owner) = self.foreign_owner(envelope) {
                        let at = records.len() + i;
                        foreign.push((
                            at,
                            owner,
                            event.clone(),
                            op.heads[i],
                            op.bodies[i].len() as u32,
                            notification_body(event, &op.bodies[i]),
                        ));
                    }
                }
            }
            records.extend(op.records.drain(..));
        }
        self.pending.insert(token, Pending { ops });
        let me = myself.clone();
        let fwd_shared = Arc::clone(&self.shared);
        let rt = tokio::runtime::Handle::current();
        let done = Box::new(move |result: AppendResult| {
            if let Ok(appended) = &result {
                for (i, owner, event, head, len, inline) in foreign {
                    if let Some(app) = appended.get(i) {
                        let body_loc = ChunkLoc::body_of(app.location, head, len as usize);
                        let _rt = rt.enter(); // forward may spawn a retry task
                        let applied = Foreign {
                            seq: app.seq,
                            location: app.location,
                            event,
                            body_loc,
                            inline,
                        };
                        forward(&fwd_shared, owner, applied);
                    }
                }
            }
            // If this actor has died meanwhile, its replacement rebuilds
            // from the log; the callers see OUTCOME_UNKNOWN.
            let _ = me.cast(PartitionMsg::Durable { token, result });
        });
        if let Err(e) = self.shared.sink.submit(records, done).await {
            if let Some(p) = self.pending.remove(&token) {
                let err: RequestError = e.into();
                for op in p.ops {
                    self.release(myself, &op.touched);
                    self.finish(op.answer, Err(err.clone()));
                }
            }
        }
    }

    fn on_durable(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        token: u64,
        result: AppendResult,
    ) -> Result<(), ActorProcessingErr> {
        let Some(p) = self.pending.remove(&token) else {
            return Ok(());
        };
        let appended = match result {
            Ok(appended) => appended,
            Err(e) => {
                let err: RequestError = e.into();
                for op in p.ops {
                    self.release(myself, &op.touched);
                    self.finish(op.answer, Err(err.clone()));
                }
                return Ok(());
            }
        };
        let expected: usize = p.ops.iter().map(|o| o.events.len()).sum();
        if appended.len() != expected {
            return Err(format!(
                "the log answered {} records for {expected} sent",
                appended.len()
            )
            .into());
        }
        let mut accepted = Vec::new();
        let mut durable = appended.iter();
        for op in p.ops {
            for ((event, body), head) in op.events.into_iter().zip(&op.bodies).zip(&op.heads) {
                let Some(app) = durable.next() else {
                    return Err("the log answered fewer records than were sent".into());
                };
                if let Event::Create { envelope, .. } = &event {
                    if self.foreign_owner(envelope).is_some() {
                        continue; // forwarded by the completion callback
                    }
                }
                let body_loc = ChunkLoc::body_of(app.location, *head, body.len());
                let summary = Applying::of(&event, body);
                let applied = self.store.apply(app.seq, app.location, event, body, body_loc).map_err(|e| {
                    format!("durable event {} does not apply ({e}); rebuilding partition {} from the log", app.seq, self.index)
                })?;
                self.after_apply(summary, applied, &mut accepted);
            }
            self.release(myself, &op.touched);
            let result = match &op.answer {
                Answer::Send { id, .. } | Answer::Chunk { id, .. } => match self.store.get(id) {
                    Some(_) => Ok(()),
                    None => Err(RequestError::Store(StoreError::NotFound(*id))),
                },
                _ => Ok(()),
            };
            self.finish(op.answer, result);
        }
        self.notify(&accepted);
        Ok(())
    }

    fn after_apply(
        &mut self,
        event: Applying,
        applied: Applied,
        accepted: &mut Vec<(MessageId, Option<Bytes>)>,
    ) {
        match event.kind {
            ApplyingKind::Create => {
                self.shared.note_owner(&event.id, self.index);
            }
            ApplyingKind::Acknowledge => {
                metrics::counter!("spine_messages_acknowledged_total").increment(1);
            }
            ApplyingKind::Expire => metrics::counter!("spine_messages_expired_total").increment(1),
            ApplyingKind::Purge => {
                self.shared.forget_owner(&event.id, self.index);
                metrics::counter!("spine_messages_purged_total").increment(1);
            }
            ApplyingKind::Other => {}
        }
        if applied == Applied::Accepted {
            metrics::counter!("spine_messages_accepted_total").increment(1);
            accepted.push((event.id, event.body));
        }
    }

    /// Answers the caller of a finished operation.
    fn finish(&mut self, to: Answer, result: Result<(), RequestError>) {
        match to {
            Answer::Send { reply, key, id } => {
                let status = self
                    .store
                    .get(&id)
                    .map_or(MessageStatus::Accepted, |m| m.status);
                let outcome = result.map(|()| SendOutcome {
                    message_id: id,
                    duplicate: false,
                    status,
                });
                if let Some(waiters) = key.and_then(|k| self.keys.remove(&k)) {
                    for w in waiters {
                        answer(
                            w,
                            outcome.clone().map(|o| SendOutcome {
                                duplicate: true,
                                ..o
                            }),
                        );
                    }
                }
                answer(reply, outcome);
            }
            Answer::Chunk { reply, id } => {
                let complete = self
                    .store
                    .get(&id)
                    .is_some_and(|m| m.status == MessageStatus::Accepted);
                answer(reply, result.map(|()| ChunkOutcome { complete }));
            }
            Answer::Ack(reply) => answer(reply, result),
            Answer::Reset { reply, progress } => answer(reply, result.map(|()| progress)),
            Answer::Expired { reply, logged } => answer(reply, result.map(|()| logged)),
            Answer::Quiet => {
                if let Err(e) = result {
                    tracing::warn!(partition = self.index, error = %e, "background log write failed");
                }
            }
        }
    }

    /// Ends the in-flight marks and re-queues requests that waited on them.
    fn release(&mut self, myself: &ActorRef<PartitionMsg>, touched: &[MessageId]) {
        for id in touched {
            self.busy.remove(id);
            if let Some(waiting) = self.deferred.remove(id) {
                for msg in waiting {
                    if let Err(e) = myself.cast(msg) {
                        tracing::warn!(partition = self.index, error = %e, "could not re-queue a deferred request");
                    }
                }
            }
        }
    }

    async fn on_expire(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        now: spine_core::time::Timestamp,
        reply: Option<Reply<usize>>,
    ) {
        let batch = self.shared.runtime.expiry_batch;
        let shared = Arc::clone(&self.shared);
        let groups = match self.store.expiry_events(now, batch, |recipient| {
            shared
                .next_message_id(recipient)
                .map_err(|e| StoreError::Replay(format!("no report id: {e}")))
        }) {
            Ok(groups) => groups,
            Err(e) => {
                tracing::error!(partition = self.index, error = %e, "cannot build expiry events");
                Vec::new()
            }
        };
        // Each expired message (with its report) and the purges are one
        // operation each; the caller, if any, is answered by the last.
        let mut ops: Vec<ExpiryOp> = Vec::new();
        for group in groups {
            let id = group.first().map(|e| *e.message_id());
            let Some(id) = id.filter(|id| !self.busy.contains(id)) else {
                continue;
            };
            ops.push((
                group.into_iter().map(|e| (e, Bytes::new())).collect(),
                smallvec![id],
            ));
        }
        let purges: Vec<Event> = self
            .store
            .purge_events(now, batch)
            .into_iter()
            .filter(|e| !self.busy.contains(e.message_id()))
            .collect();
        if !purges.is_empty() {
            let touched = purges.iter().map(|e| *e.message_id()).collect();
            ops.push((
                purges.into_iter().map(|e| (e, Bytes::new())).collect(),
                touched,
            ));
        }
        let logged: usize = ops.iter().map(|(events, _)| events.len()).sum();
        let last = ops.len();
        let mut reply = reply;
        for (i, (events, touched)) in ops.into_iter().enumerate() {
            let answer_to = match reply.take() {
                Some(r) if i + 1 == last => Answer::Expired { reply: r, logged },
                other => {
                    reply = other;
                    Answer::Quiet
                }
            };
            self.log(myself, events, touched, answer_to).await;
        }
        if let Some(reply) = reply {
            answer(reply, Ok(logged));
        }
    }

    /// One bounded step of a reset: logs `Purge` for the matching messages
    /// (an existing event: replay, rebuild and compaction already handle
    /// it) and answers once they are durable and applied. A matching
    /// message with a change in flight stops the step before it; if
    /// nothing precedes it, the step waits for that change (deferred like
    /// any request touching a busy message) and then runs again.
    async fn on_reset(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        mailbox: Option<MailboxId>,
        after: Option<MessageId>,
        reply: Reply<ResetProgress>,
    ) {
        let limits = ResetLimits {
            scan: RESET_SCAN_LIMIT,
            purge: self.shared.runtime.expiry_batch,
        };
        let now = self.shared.clock.now();
        let busy = &self.busy;
        let step = self
            .store
            .reset_events(mailbox.as_ref(), after.as_ref(), now, limits, |id| {
                busy.contains(id)
            });
        if step.events.is_empty() {
            match step.blocked_on {
                Some(id) => self
                    .deferred
                    .entry(id)
                    .or_default()
                    .push_back(PartitionMsg::Reset {
                        mailbox,
                        after,
                        reply,
                    }),
                None => answer(
                    reply,
                    Ok(ResetProgress {
                        removed: 0,
                        after: step.after,
                        done: step.done,
                    }),
                ),
            }
            return;
        }
        let progress = ResetProgress {
            removed: step.events.len(),
            after: step.after,
            done: step.done,
        };
        let touched = step.events.iter().map(|e| *e.message_id()).collect();
        let events = step.events.into_iter().map(|e| (e, Bytes::new())).collect();
        self.log(myself, events, touched, Answer::Reset { reply, progress })
            .await;
    }

    /// Logs a `Snapshot` (plus `CarryChunk` copies of chunks in old
    /// segments) for every idle message that needs a segment at or below
    /// `upto`. Busy messages are left for the next round.
    /// Carries up to `limit` messages out of the segments up to `upto`,
    /// as one group of log writes (one batch, not one write each).
    async fn on_carry(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        upto: u64,
        limit: usize,
    ) -> Result<CarryProgress, RequestError> {
        self.grouping = true;
        let carried = self.carry_some(myself, upto, limit).await;
        self.grouping = false;
        self.flush(myself).await;
        carried
    }

    async fn carry_some(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        upto: u64,
        limit: usize,
    ) -> Result<CarryProgress, RequestError> {
        let mut progress = CarryProgress::default();
        // Only as far as this slice needs: a segment holds tens of
        // thousands of messages, and collecting them all for every slice
        // of `limit` made each slice cost the whole segment (10 ms a slice,
        // stalling this partition's sends, quadratic over the segment).
        let mut seen: HashSet<MessageId> = HashSet::default();
        let mut slice = Vec::new();
        for id in self.store.referencing_each(upto) {
            if !seen.insert(id) {
                continue; // it references more than one of the segments
            }
            if self.busy.contains(&id) {
                progress.busy += 1; // not yet: the caller must come back
                continue;
            }
            if slice.len() >= limit {
                progress.more = true;
                break;
            }
            slice.push(id);
        }
        for id in slice {
            let Some(plan) = self.store.carry_plan(&id, upto) else {
                continue;
            };
            let mut events: Events = smallvec![(plan.snapshot, Bytes::new())];
            for (chunk_no, loc) in plan.chunks {
                let bytes = self
                    .shared
                    .reader
                    .read(loc)
                    .await
                    .map_err(|e| RequestError::Read(e.to_string()))?;
                events.push((
                    Event::CarryChunk {
                        message_id: id,
                        chunk_no,
                    },
                    bytes,
                ));
            }
            self.log(myself, events, smallvec![id], Answer::Quiet).await;
            progress.submitted += 1;
        }
        Ok(progress)
    }

    /// The partition that owns a message this partition creates, when it
    /// is another one. Only a report can be: the node submits every send
    /// to its recipient's partition, while a non-delivery report made here
    /// goes to the original sender, who may live elsewhere. (Checking the
    /// type first spares hashing the recipient for every send.)
    fn foreign_owner(&self, envelope: &Envelope) -> Option<u32> {
        if envelope.message_type != MessageType::Report {
            debug_assert_eq!(
                self.shared.map.partition_of(&envelope.recipient).0,
                self.index,
                "a send logged by a partition that does not own its recipient"
            );
            return None;
        }
        let owner = self.shared.map.partition_of(&envelope.recipient).0;
        (owner != self.index).then_some(owner)
    }

    fn notify(&mut self, accepted: &[(MessageId, Option<Bytes>)]) {
        self.subscribers.notify(&self.store, accepted);
        self.subscribers.refill(&self.store);
    }
}

/// Sends an event to its owning partition, waiting (bounded) if that
/// partition is restarting: its rebuild may not have seen the event yet.
fn forward(shared: &Arc<Shared>, owner: u32, applied: Foreign) {
    let seq = applied.seq;
    let msg = move || PartitionMsg::ApplyForeign(Box::new(applied.clone()));
    if let Some(actor) = shared.partition(owner) {
        if actor.cast(msg()).is_ok() {
            return;
        }
    }
    let shared = Arc::clone(shared);
    let wait = Duration::from_millis(shared.runtime.request_wait_ms);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Some(actor) = shared.partition(owner) {
                if actor.cast(msg()).is_ok() {
                    return;
                }
            }
        }
        tracing::error!(partition = owner, seq, "could not deliver a report to its partition; it is in the log and appears after a restart");
    });
}

/// What [`PartitionState::after_apply`] needs of an event that
/// [`MessageStore::apply`] has consumed.
#[derive(Debug, Clone)]
struct Applying {
    id: MessageId,
    kind: ApplyingKind,
    /// The body a notification may carry ([`notification_body`]).
    body: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApplyingKind {
    Create,
    Acknowledge,
    Expire,
    Purge,
    Other,
}

impl Applying {
    fn of(event: &Event, body: &Bytes) -> Applying {
        let kind = match event {
            Event::Create { .. } => ApplyingKind::Create,
            Event::Acknowledge { .. } => ApplyingKind::Acknowledge,
            Event::Expire { .. } => ApplyingKind::Expire,
            Event::Purge { .. } => ApplyingKind::Purge,
            _ => ApplyingKind::Other,
        };
        Applying {
            id: *event.message_id(),
            kind,
            body: notification_body(event, body),
        }
    }
}

/// The body a notification of `event`'s message carries: the whole body
/// of a single-chunk message created by it, if small enough.
fn notification_body(event: &Event, body: &Bytes) -> Option<Bytes> {
    match event {
        Event::Create { envelope, .. }
            if envelope.total_chunks <= 1 && body.len() <= MAX_NOTIFICATION_BODY_BYTES =>
        {
            Some(body.clone())
        }
        _ => None,
    }
}
