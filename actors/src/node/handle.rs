//! The node handle: every operation the transports expose, in process.
//!
//! Requests for a mailbox go to its partition; requests for a message go to
//! the partition that owns it (looked up in the message index). Each
//! partition's queue is bounded by a semaphore: when it is full, callers
//! wait (a network connection stops reading); nothing is dropped. A caller
//! never waits forever: a partition that is restarting is waited for at
//! most `request_wait_ms`, and a partition that dies mid-request drops the
//! reply channel, which the caller sees as `NODE_OUTCOME_UNKNOWN`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use ractor::{Actor, ActorRef};
use spine_core::directory::{Directory, DirectoryError};
use spine_core::envelope::{Envelope, MessageType, ReportStatus};
use spine_core::ids::{LocalId, MailboxId, MessageId, MessageIdGenerator, OdsCode, WorkflowId};
use spine_core::message::{
    report_envelope, ChunkLoc, MessageStatus, ReportSpec, StoreError, WorkflowFilter,
};
use spine_core::partition::PartitionMap;
use spine_core::random::RandomSource;
use spine_core::time::{Clock, Timestamp};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::config::RuntimeConfig;
use super::error::RequestError;
use super::reader::PayloadReader;
use super::shared::{IdSource, Shared};
use super::sink::{LogSink, MemoryLog};
use super::storage::{open_storage_full, NodeError, OpenNode, RecoverySummary, StorageConfig};
use super::types::{
    ChunkOutcome, Download, InboxPage, InjectReport, MessageView, Notification, SendOutcome,
    SendRequest,
};
use crate::budget::{ByteBudget, Reserved};
use crate::partition::msg::Reply;
use crate::partition::PartitionMsg;
use crate::service::{MailboxSummary, ServiceMsg};
use crate::supervisor::{NodeSupervisor, SupervisorArgs, SupervisorMsg};

/// Starts nodes.
#[derive(Debug)]
pub struct Node;

/// What a node is built from (besides its storage).
pub struct NodeParts {
    /// Runtime settings.
    pub runtime: RuntimeConfig,
    /// The directory of mailboxes and workflows.
    pub directory: Arc<Directory>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Randomness for message ids.
    pub rng: Box<dyn RandomSource>,
}

impl std::fmt::Debug for NodeParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeParts")
            .field("runtime", &self.runtime)
            .finish()
    }
}

impl Node {
    /// Opens the data directory (recovering the log), then starts the actor
    /// tree. Must run inside a tokio runtime.
    pub async fn start(
        storage: StorageConfig,
        parts: NodeParts,
    ) -> Result<(NodeHandle, RecoverySummary), NodeError> {
        parts.runtime.validate().map_err(NodeError::Config)?;
        let config = storage.clone();
        let reference = parts.runtime.services.reference();
        let (open, summary) = tokio::task::spawn_blocking(move || {
            open_storage_full(
                &config,
                &spine_core::message::CompactionPolicy::default(),
                &reference,
            )
        })
        .await
        .map_err(|e| NodeError::Runtime(format!("recovery task failed: {e}")))??;
        let sink = LogSink::Durable(open.wal());
        let reader = PayloadReader::files(storage.data_dir.clone());
        let mut open = open;
        let store = std::mem::take(&mut open.store);
        let services = open.services.take();
        let handle = start_tree(storage, parts, sink, reader, store, services, Some(open)).await?;
        Ok((handle, summary))
    }

    /// Starts a node whose log is memory only: NOT durable. For benchmarks
    /// that measure the runtime without the disk.
    pub async fn start_in_memory(
        storage: StorageConfig,
        parts: NodeParts,
    ) -> Result<NodeHandle, NodeError> {
        parts.runtime.validate().map_err(NodeError::Config)?;
        let mem = Arc::new(MemoryLog::new());
        let store = spine_core::message::MessageStore::new(storage.store());
        start_tree(
            storage,
            parts,
            LogSink::Memory(Arc::clone(&mem)),
            PayloadReader::Memory(mem),
            store,
            None,
            None,
        )
        .await
    }
}

async fn start_tree(
    storage: StorageConfig,
    parts: NodeParts,
    sink: LogSink,
    reader: PayloadReader,
    store: spine_core::message::MessageStore,
    services: Option<spine_core::services::ReferenceServices>,
    open: Option<OpenNode>,
) -> Result<NodeHandle, NodeError> {
    let n = parts.runtime.partitions;
    let map = PartitionMap::new(n).map_err(|e| NodeError::Config(e.to_string()))?;
    let stores = store.split_by(n as usize, |m| map.partition_of(m).0 as usize);
    let mut generator = MessageIdGenerator::new();
    for s in &stores {
        if let Some(newest) = s.messages().map(|m| &m.envelope.message_id).max() {
            generator.observe(newest);
        }
    }
    let shared = Arc::new(Shared {
        sink,
        reader,
        map,
        misplaced: DashMap::new(),
        partitions: (0..n).map(|_| RwLock::new(None)).collect(),
        ingress: (0..n).map(|_| super::shared::Ingress::new()).collect(),
        permits: (0..n)
            .map(|_| Arc::new(Semaphore::new(parts.runtime.partition_queue)))
            .collect(),
        ids: Mutex::new(IdSource {
            generator,
            rng: parts.rng,
        }),
        clock: parts.clock,
        directory: parts.directory,
        accepting: AtomicBool::new(true),
        failed: OnceLock::new(),
        failure: tokio::sync::Notify::new(),
        active: AtomicUsize::new(0),
        services: OnceLock::new(),
        restarts: Mutex::new(std::collections::BTreeMap::new()),
        runtime: parts.runtime,
        storage,
    });
    let services = set_up_services(&shared, services)?;
    let args = SupervisorArgs {
        shared: Arc::clone(&shared),
        stores,
        services,
    };
    let (supervisor, _) = Actor::spawn(None, NodeSupervisor, args)
        .await
        .map_err(|e| NodeError::Runtime(format!("cannot start the actor tree: {e}")))?;
    Ok(NodeHandle {
        shared,
        supervisor,
        open: Arc::new(Mutex::new(open)),
    })
}

/// Sets up service routing: the hub of the service directory (the
/// configured one, or the embedded demo set) with its built-in providers.
/// Answers the reference services' state to start from (recovered, or
/// fresh); the supervisor starts their actor and the service actors.
fn set_up_services(
    shared: &Arc<Shared>,
    recovered: Option<spine_core::services::ReferenceServices>,
) -> Result<spine_core::services::ReferenceServices, NodeError> {
    let config = shared.runtime.services.clone();
    let directory = match &shared.runtime.service_directory {
        Some(d) => Arc::clone(d),
        None => Arc::new(
            spine_core::services::ServiceDirectory::demo()
                .map_err(|e| NodeError::Config(e.to_string()))?,
        ),
    };
    let state = match recovered {
        Some(s) => s,
        None => spine_core::services::ReferenceServices::new(config.reference())
            .map_err(|e| NodeError::Config(format!("reference services: {e}")))?,
    };
    let hub = crate::services::ServiceHub::new(
        config,
        directory,
        Arc::clone(&shared.directory),
        shared.sink.clone(),
        Arc::clone(&shared.clock),
        Duration::from_millis(shared.runtime.request_wait_ms),
    )
    .map_err(NodeError::Runtime)?;
    let _ = shared.services.set(Arc::new(hub));
    Ok(state)
}

/// The in-process API of a running node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub(super) shared: Arc<Shared>,
    supervisor: ActorRef<SupervisorMsg>,
    open: Arc<Mutex<Option<OpenNode>>>,
}

/// Counts a request in progress (for draining at shutdown).
pub(crate) struct Active<'a>(&'a AtomicUsize);

impl<'a> Active<'a> {
    pub(crate) fn enter(counter: &'a AtomicUsize) -> Active<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        Active(counter)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Queue depths (see [`NodeHandle::queue_depths`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepths {
    /// Requests queued or running, per partition.
    pub partitions: Vec<usize>,
    /// The configured bound per partition.
    pub partition_limit: usize,
    /// Records queued or in flight in the log.
    pub wal_in_flight: usize,
    /// The configured bound of the log.
    pub wal_limit: usize,
}

/// Which actor to fail on purpose (fault-injection builds and this crate's
/// tests only).
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// Partition `n`.
    Partition(u32),
    /// The expiry actor.
    Expiry,
    /// The mailbox service actor.
    Service,
    /// The WAL maintenance actor.
    Wal,
    /// The router actor of the named national service (`"pds"`).
    ServiceRouter(&'static str),
    /// The reference services' actor (PDS, SCR, EPS).
    ReferenceServices,
}

impl NodeHandle {
    pub(super) fn check_open(&self, mutating: bool) -> Result<(), RequestError> {
        if let Some(reason) = self.shared.failed.get() {
            return Err(RequestError::NodeFailed(reason.clone()));
        }
        if !self.shared.accepting.load(Ordering::Acquire) {
            return Err(RequestError::ShuttingDown);
        }
        if mutating {
            if let Some(e) = self.shared.sink.failure() {
                return Err(RequestError::LogFailed(e));
            }
        }
        Ok(())
    }

    /// Admits one request to `partition` (the caller has counted itself
    /// active): refuses if the node is closing, else waits (bounded by
    /// `request_wait_ms`) for room in the partition's queue. Answers the
    /// permit, held until the request is answered, and the request's
    /// deadline.
    pub(crate) async fn admit(
        &self,
        partition: u32,
    ) -> Result<(tokio::sync::OwnedSemaphorePermit, tokio::time::Instant), RequestError> {
        let shared = &self.shared;
        if !shared.accepting.load(Ordering::SeqCst) {
            return Err(match shared.failed.get() {
                Some(reason) => RequestError::NodeFailed(reason.clone()),
                None => RequestError::ShuttingDown,
            });
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(shared.runtime.request_wait_ms);
        let permits = shared
            .permits
            .get(partition as usize)
            .ok_or(RequestError::Unavailable(partition))?;
        // The wait for queue room counts against the same limit.
        match tokio::time::timeout_at(deadline, Arc::clone(permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok((permit, deadline)),
            Ok(Err(_)) => Err(RequestError::ShuttingDown),
            Err(_) => Err(RequestError::Unavailable(partition)),
        }
    }

    /// Sends `make`'s request to a partition and waits for the answer.
    /// `retry_if_lost`: safe to resend when the partition died (reads).
    async fn call<T>(
        &self,
        partition: u32,
        retry_if_lost: bool,
        make: impl Fn(Reply<T>) -> PartitionMsg,
    ) -> Result<T, RequestError> {
        let shared = &self.shared;
        // Count first, then check: shutdown clears `accepting` before it
        // waits for the count to reach zero, so a request either is counted
        // (and waited for) or sees that the node is closing.
        let _active = Active::enter(&shared.active);
        let (_permit, deadline) = self.admit(partition).await?;
        let ingress = shared
            .ingress
            .get(partition as usize)
            .ok_or(RequestError::Unavailable(partition))?;
        loop {
            if let Some(reason) = shared.failed.get() {
                return Err(RequestError::NodeFailed(reason.clone()));
            }
            let (tx, rx) = oneshot::channel();
            if ingress.tx.send(make(tx)).is_err() {
                return Err(RequestError::ShuttingDown);
            }
            shared.wake(partition);
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => return result,
                // The partition died with the request: reads are resent,
                // writes have an unknown outcome.
                Ok(Err(_)) => {
                    if let Some(reason) = shared.failed.get() {
                        return Err(RequestError::NodeFailed(reason.clone()));
                    }
                    // A write may have reached the log before its reply
                    // was lost: only "unknown" is honest.
                    if !retry_if_lost {
                        return Err(RequestError::OutcomeUnknown);
                    }
                    if !shared.accepting.load(Ordering::SeqCst) {
                        return Err(RequestError::ShuttingDown);
                    }
                }
                Err(_) => return Err(RequestError::Unavailable(partition)),
            }
        }
    }

    /// Sends a message (or the first chunk of a chunked one). Answers once
    /// it is durable.
    pub async fn send(&self, req: SendRequest) -> Result<SendOutcome, RequestError> {
        let (partition, envelope, idempotency_key, body) = self.prepare_send(req)?;
        self.submit_to(partition, envelope, idempotency_key, body)
            .await
    }

    /// Checks a send against the node's state and the directory and makes
    /// its envelope: answers the recipient's partition, the envelope, the
    /// idempotency key and the body.
    pub(crate) fn prepare_send(
        &self,
        req: SendRequest,
    ) -> Result<(u32, Arc<Envelope>, Option<String>, Bytes), RequestError> {
        self.check_open(true)?;
        self.shared.directory.check_send(
            &req.sender,
            &req.header.recipient,
            &req.header.workflow_id,
        )?;
        let now = self.shared.clock.now();
        let message_id = self
            .shared
            .next_message_id(&req.header.recipient)
            .map_err(|e| RequestError::Invalid(e.to_string()))?;
        let h = req.header;
        let idempotency_key = h.idempotency_key;
        let envelope = Envelope {
            message_id,
            message_type: MessageType::Data,
            sender: req.sender,
            recipient: h.recipient,
            workflow_id: h.workflow_id,
            subject: h.subject,
            local_id: h.local_id,
            file_name: h.file_name,
            content_type: h.content_type,
            compressed: h.compressed,
            encrypted: h.encrypted,
            checksum: h.checksum,
            partner_id: h.partner_id,
            total_chunks: h.total_chunks,
            created_at: now,
            expires_at: now.saturating_add(self.shared.storage.inbox_expiry),
            linked_message_id: None,
            report: None,
        };
        let partition = self.shared.map.partition_of(&envelope.recipient).0;
        Ok((partition, Arc::new(envelope), idempotency_key, req.body))
    }

    /// Hands a new message to its recipient's partition, which validates
    /// the envelope (`check_send`) before logging; answers once durable.
    async fn submit(
        &self,
        envelope: Envelope,
        idempotency_key: Option<String>,
        body: Bytes,
    ) -> Result<SendOutcome, RequestError> {
        let partition = self.shared.map.partition_of(&envelope.recipient).0;
        self.submit_to(partition, Arc::new(envelope), idempotency_key, body)
            .await
    }

    /// [`NodeHandle::submit`] to a partition already worked out.
    async fn submit_to(
        &self,
        partition: u32,
        envelope: Arc<Envelope>,
        idempotency_key: Option<String>,
        body: Bytes,
    ) -> Result<SendOutcome, RequestError> {
        // A send is submitted once (never resent), so the request moves
        // into the message instead of being cloned.
        let request = std::sync::Mutex::new(Some((envelope, idempotency_key, body)));
        self.call(partition, false, |reply| {
            let taken = request.lock().unwrap_or_else(|p| p.into_inner()).take();
            match taken {
                Some((envelope, idempotency_key, body)) => PartitionMsg::Send {
                    envelope,
                    idempotency_key,
                    body,
                    reply,
                },
                // Unreachable (sends are not resent); answer rather than panic.
                None => {
                    let _ = reply.send(Err(RequestError::OutcomeUnknown));
                    PartitionMsg::Drain
                }
            }
        })
        .await
    }

    /// Uploads chunk `chunk_no` (2..=total) of a message `sender` created.
    pub async fn send_chunk(
        &self,
        sender: &MailboxId,
        id: &MessageId,
        chunk_no: u32,
        body: Bytes,
    ) -> Result<ChunkOutcome, RequestError> {
        self.check_open(true)?;
        let partition = self.shared.owner_of(id);
        self.call(partition, false, |reply| PartitionMsg::Chunk {
            sender: sender.clone(),
            id: *id,
            chunk_no,
            body: body.clone(),
            reply,
        })
        .await
    }

    /// One page of `mailbox`'s inbox, in acceptance order, optionally
    /// filtered by a MESH workflow filter, continuing after `after`.
    pub async fn list_inbox(
        &self,
        mailbox: &MailboxId,
        filter: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<InboxPage, RequestError> {
        self.check_open(false)?;
        let filter = filter.map(WorkflowFilter::parse).transpose()?;
        let partition = self.shared.map.partition_of(mailbox).0;
        self.call(partition, true, |reply| PartitionMsg::List {
            mailbox: mailbox.clone(),
            filter: filter.clone(),
            after,
            limit,
            reply,
        })
        .await
    }

    /// What the node knows of a message (no access check: internal use).
    pub async fn get(&self, id: &MessageId) -> Result<MessageView, RequestError> {
        self.check_open(false)?;
        let partition = self.shared.owner_of(id);
        self.call(partition, true, |reply| PartitionMsg::Get {
            id: *id,
            reply,
        })
        .await?
        .ok_or(RequestError::Store(StoreError::NotFound(*id)))
    }

    /// Message metadata for its recipient (or its sender): MESH `HEAD`.
    pub async fn head(
        &self,
        mailbox: &MailboxId,
        id: &MessageId,
    ) -> Result<MessageView, RequestError> {
        let view = self.get(id).await?;
        if &view.envelope.recipient != mailbox && &view.envelope.sender != mailbox {
            return Err(StoreError::NotRecipient {
                id: *id,
                mailbox: mailbox.clone(),
            }
            .into());
        }
        Ok(view)
    }

    /// Downloads chunk `chunk_no` of a message addressed to `mailbox`.
    pub async fn download(
        &self,
        mailbox: &MailboxId,
        id: &MessageId,
        chunk_no: u32,
    ) -> Result<Download, RequestError> {
        self.download_reserving(mailbox, id, chunk_no, None)
            .await
            .map(|(d, _)| d)
    }

    /// [`NodeHandle::download`], reserving the chunk's length from `budget`
    /// before reading it (waiting for room): what the reservation returned
    /// holds is the memory the chunk occupies.
    pub(crate) async fn download_within(
        &self,
        mailbox: &MailboxId,
        id: &MessageId,
        chunk_no: u32,
        budget: &ByteBudget,
    ) -> Result<(Download, Option<Reserved>), RequestError> {
        self.download_reserving(mailbox, id, chunk_no, Some(budget))
            .await
    }

    async fn download_reserving(
        &self,
        mailbox: &MailboxId,
        id: &MessageId,
        chunk_no: u32,
        budget: Option<&ByteBudget>,
    ) -> Result<(Download, Option<Reserved>), RequestError> {
        let view = self.get(id).await?;
        if &view.envelope.recipient != mailbox {
            return Err(StoreError::NotRecipient {
                id: *id,
                mailbox: mailbox.clone(),
            }
            .into());
        }
        if view.status != MessageStatus::Accepted {
            return Err(StoreError::WrongStatus {
                id: *id,
                status: view.status,
                what: "only an accepted message can be downloaded",
            }
            .into());
        }
        let total = view.chunks.len() as u32;
        if total == 0 && chunk_no == 1 {
            let empty = Download {
                view,
                chunk_no,
                body: Bytes::new(),
            };
            return Ok((empty, None));
        }
        let loc = chunk_no
            .checked_sub(1)
            .and_then(|i| view.chunks.get(i as usize).copied().flatten())
            .ok_or(StoreError::ChunkOutOfRange {
                id: *id,
                chunk: chunk_no,
                total,
            })?;
        let held = match budget {
            Some(b) => Some(
                b.reserve(u64::from(loc.len))
                    .await
                    .map_err(|_| RequestError::ShuttingDown)?,
            ),
            None => None,
        };
        let body = match self.shared.reader.read(loc).await {
            Ok(body) => body,
            // Compaction may have moved the chunk and removed its old
            // segment since the look-up: look again once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let again = self.get(id).await?;
                let loc = chunk_no
                    .checked_sub(1)
                    .and_then(|i| again.chunks.get(i as usize).copied().flatten())
                    .ok_or(StoreError::ChunkOutOfRange {
                        id: *id,
                        chunk: chunk_no,
                        total,
                    })?;
                self.shared
                    .reader
                    .read(loc)
                    .await
                    .map_err(|e| RequestError::Read(e.to_string()))?
            }
            Err(e) => return Err(RequestError::Read(e.to_string())),
        };
        metrics::counter!("spine_messages_delivered_total").increment(1);
        let download = Download {
            view,
            chunk_no,
            body,
        };
        Ok((download, held))
    }

    /// The body of a pushed message that was not at hand
    /// ([`Notification::body_at`]), or `None` if it cannot be read (the
    /// subscriber then downloads it as usual).
    pub(crate) async fn read_pushed_body(&self, loc: ChunkLoc) -> Option<Bytes> {
        let body = self.shared.reader.read(loc).await.ok()?;
        metrics::counter!("spine_messages_delivered_total").increment(1);
        Some(body)
    }

    /// Acknowledges a message addressed to `mailbox` (idempotent).
    pub async fn acknowledge(
        &self,
        mailbox: &MailboxId,
        id: &MessageId,
    ) -> Result<(), RequestError> {
        self.check_open(true)?;
        let partition = self.shared.owner_of(id);
        self.call(partition, false, |reply| PartitionMsg::Ack {
            mailbox: mailbox.clone(),
            id: *id,
            reply,
        })
        .await
    }

    /// Tracking of a message by its sender. Unknown and not-yours look the
    /// same (as in MESH), so tracking cannot probe other mailboxes.
    pub async fn track(
        &self,
        sender: &MailboxId,
        id: &MessageId,
    ) -> Result<MessageView, RequestError> {
        let view = self.get(id).await?;
        if &view.envelope.sender != sender {
            return Err(StoreError::NotFound(*id).into());
        }
        Ok(view)
    }

    /// Every message `sender` sent with local id `local_id` (MESH's
    /// deprecated `GET /outbox/tracking/{local_id}`), whatever its status,
    /// as long as it has not been purged; in creation order. Reports are
    /// not listed. Asks every partition (messages live with their
    /// recipient); each answers from its local-id index, not a scan.
    pub async fn track_by_local_id(
        &self,
        sender: &MailboxId,
        local_id: &LocalId,
    ) -> Result<Vec<MessageView>, RequestError> {
        self.check_open(false)?;
        let asks = (0..self.shared.partitions.len() as u32).map(|p| {
            self.call(p, true, move |reply| PartitionMsg::TrackLocal {
                sender: sender.clone(),
                local_id: local_id.clone(),
                reply,
            })
        });
        let mut found = Vec::new();
        for answer in futures_util::future::join_all(asks).await {
            found.extend(answer?);
        }
        found.sort_by_key(|m: &MessageView| (m.envelope.created_at, m.envelope.message_id));
        Ok(found)
    }

    /// Removes, durably, every message (any status, uploading included)
    /// whose sender or recipient is `mailbox`, or every message when
    /// `None` (mesh-sandbox's `DELETE /admin/reset[/{mailbox}]`); answers
    /// how many were removed. Each removal is a logged `Purge`, so a
    /// restart gives the same state. Partitions work concurrently, each in
    /// bounded steps served between other requests. Messages created while
    /// a reset runs may or may not be removed. If a partition fails
    /// mid-reset the answer is an error and some messages may be gone:
    /// resetting again is safe.
    pub async fn reset(&self, mailbox: Option<&MailboxId>) -> Result<usize, RequestError> {
        self.check_open(true)?;
        let partitions = (0..self.shared.partitions.len() as u32).map(|p| async move {
            let mut removed = 0;
            let mut after = None;
            loop {
                let step = self
                    .call(p, false, |reply| PartitionMsg::Reset {
                        mailbox: mailbox.cloned(),
                        after,
                        reply,
                    })
                    .await?;
                removed += step.removed;
                if step.done {
                    return Ok::<usize, RequestError>(removed);
                }
                after = step.after;
            }
        });
        let mut removed = 0;
        let mut failure = None;
        for answer in futures_util::future::join_all(partitions).await {
            match answer {
                Ok(n) => removed += n,
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    /// Places a REPORT in `report.recipient`'s inbox (mesh-sandbox's
    /// `POST /messageexchange/admin/report`): from the recipient itself,
    /// no content, durable before the answer. The recipient must be in the
    /// directory (`DIR_RECIPIENT_UNREGISTERED`); report fields are checked
    /// like any envelope's (`ENV_*`).
    pub async fn inject_report(&self, report: InjectReport) -> Result<MessageId, RequestError> {
        self.check_open(true)?;
        if self.shared.directory.mailbox(&report.recipient).is_none() {
            return Err(DirectoryError::RecipientUnregistered {
                id: report.recipient,
            }
            .into());
        }
        let message_id = self
            .shared
            .next_message_id(&report.recipient)
            .map_err(|e| RequestError::Invalid(e.to_string()))?;
        let envelope = report_envelope(
            ReportSpec {
                message_id,
                sender: report.recipient.clone(),
                recipient: report.recipient,
                workflow_id: report.workflow_id,
                subject: report.subject,
                local_id: report.local_id,
                file_name: report.file_name,
                linked_message_id: report.linked_message_id,
                status: ReportStatus {
                    code: report.code,
                    event: report.event,
                    description: report.description,
                },
            },
            self.shared.clock.now(),
            self.shared.storage.inbox_expiry,
        );
        Ok(self.submit(envelope, None, Bytes::new()).await?.message_id)
    }

    async fn service(&self) -> Result<ActorRef<ServiceMsg>, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.supervisor
            .cast(SupervisorMsg::GetService(tx))
            .map_err(|_| RequestError::ShuttingDown)?;
        rx.await.ok().flatten().ok_or(RequestError::ShuttingDown)
    }

    async fn ask_service<T>(
        &self,
        make: impl Fn(oneshot::Sender<T>) -> ServiceMsg,
    ) -> Result<T, RequestError> {
        self.check_open(false)?;
        let _active = Active::enter(&self.shared.active);
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.shared.runtime.request_wait_ms);
        loop {
            if let Ok(service) = self.service().await {
                let (tx, rx) = oneshot::channel();
                if service.cast(make(tx)).is_ok() {
                    if let Ok(answer) = rx.await {
                        return Ok(answer);
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RequestError::Unavailable(u32::MAX));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The directory the node routes by (read-only; transports use it to
    /// check credentials such as MESH's NHSMESH token).
    pub fn directory(&self) -> &Arc<Directory> {
        &self.shared.directory
    }

    /// Log bytes written and `fdatasync` groups completed since start.
    pub fn log_totals(&self) -> (u64, u64) {
        self.shared.sink.totals()
    }

    /// The node's clock (the simulator's virtual clock in simulations).
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Whether `mailbox` is in the directory and active (for connections
    /// authenticated by a client certificate instead of a password).
    pub fn mailbox_active(&self, mailbox: &MailboxId) -> bool {
        self.shared
            .directory
            .mailbox(mailbox)
            .is_some_and(|m| m.active)
    }

    /// Checks a mailbox's password.
    pub async fn authenticate(
        &self,
        mailbox: &MailboxId,
        password: &str,
    ) -> Result<(), RequestError> {
        let result = self
            .ask_service(|reply| ServiceMsg::Authenticate {
                mailbox: mailbox.clone(),
                password: password.to_string(),
                reply,
            })
            .await?;
        Ok(result?)
    }

    /// Mailboxes receiving `workflow` at organisation `ods`.
    pub async fn lookup(
        &self,
        ods: &OdsCode,
        workflow: &WorkflowId,
    ) -> Result<Vec<MailboxSummary>, RequestError> {
        self.ask_service(|reply| ServiceMsg::Lookup {
            ods: ods.clone(),
            workflow: workflow.clone(),
            reply,
        })
        .await
    }

    /// The service routing of this node.
    pub(crate) fn hub(
        &self,
    ) -> Result<&Arc<crate::services::ServiceHub>, spine_core::services::ServiceError> {
        if let Some(reason) = self.shared.failed.get() {
            return Err(spine_core::services::ServiceError::Unavailable {
                why: format!("the node failed: {reason}"),
            });
        }
        if !self.shared.accepting.load(Ordering::Acquire) {
            return Err(spine_core::services::ServiceError::Unavailable {
                why: "the node is shutting down".into(),
            });
        }
        self.shared
            .services
            .get()
            .ok_or_else(|| spine_core::services::ServiceError::Unavailable {
                why: "service routing is not running".into(),
            })
    }

    /// Sends a service request as `caller` (an authenticated mailbox) and
    /// waits for the response body, within the interaction's deadline.
    pub async fn request(
        &self,
        caller: &MailboxId,
        request: crate::services::ServiceRequest,
    ) -> Result<Bytes, spine_core::services::ServiceError> {
        let hub = Arc::clone(self.hub()?);
        let _active = Active::enter(&self.shared.active);
        hub.request(caller, request).await
    }

    /// Registers `mailbox` as a provider of `service`: requests arrive on
    /// the registration's channel until it is unregistered or dropped.
    pub async fn register_provider(
        &self,
        mailbox: &MailboxId,
        service: &str,
    ) -> Result<crate::services::ProviderRegistration, spine_core::services::ServiceError> {
        self.hub()?.register_provider(mailbox, service).await
    }

    /// A provider leaves.
    pub fn unregister_provider(
        &self,
        service: &spine_core::services::ServiceName,
        id: spine_core::services::ProviderId,
    ) {
        if let Some(hub) = self.shared.services.get() {
            hub.unregister_provider(service, id);
        }
    }

    /// A provider's answer to a request it was given.
    pub fn provider_reply(
        &self,
        service: &spine_core::services::ServiceName,
        provider: spine_core::services::ProviderId,
        correlation: spine_core::services::Correlation,
        result: Result<Bytes, spine_core::services::ServiceError>,
    ) -> Result<(), spine_core::services::ServiceError> {
        let hub = self.shared.services.get().ok_or_else(|| {
            spine_core::services::ServiceError::Unavailable {
                why: "service routing is not running".into(),
            }
        })?;
        hub.provider_reply(service, provider, correlation, result)
    }

    /// Patients, summaries and prescriptions the reference services hold.
    pub async fn service_counts(
        &self,
    ) -> Result<(usize, usize, usize), spine_core::services::ServiceError> {
        self.hub()?.counts().await
    }

    /// Mailboxes receiving `workflow` anywhere.
    pub async fn workflow_search(
        &self,
        workflow: &WorkflowId,
    ) -> Result<Vec<MailboxSummary>, RequestError> {
        self.ask_service(|reply| ServiceMsg::WorkflowSearch {
            workflow: workflow.clone(),
            reply,
        })
        .await
    }

    /// Pushes messages newly accepted into `mailbox`, in inbox order
    /// (bounded: a subscriber whose buffer is full falls behind and is
    /// refilled from the inbox as it frees room, each message once; those
    /// acknowledged meanwhile are skipped). The stream ends (`None`) if the
    /// mailbox's partition restarts: subscribe again and re-list to catch
    /// up.
    pub async fn subscribe(
        &self,
        mailbox: &MailboxId,
    ) -> Result<mpsc::Receiver<Notification>, RequestError> {
        self.check_open(false)?;
        let (tx, rx) = mpsc::channel(self.shared.runtime.subscriber_buffer);
        let partition = self.shared.map.partition_of(mailbox).0;
        let actor = self
            .shared
            .partition(partition)
            .ok_or(RequestError::Unavailable(partition))?;
        actor
            .cast(PartitionMsg::Subscribe {
                mailbox: mailbox.clone(),
                tx,
            })
            .map_err(|_| RequestError::Unavailable(partition))?;
        Ok(rx)
    }

    /// Runs an expiry round on every partition now; answers the number of
    /// events logged, once they are durable and applied (a report for a
    /// mailbox owned by another partition has been handed to that partition
    /// ahead of any later request to it).
    pub async fn expire_now(&self) -> Result<usize, RequestError> {
        self.check_open(true)?;
        let now = self.shared.clock.now();
        let mut total = 0;
        for p in 0..self.shared.partitions.len() as u32 {
            total += self
                .call(p, false, |reply| PartitionMsg::Expire {
                    now,
                    reply: Some(reply),
                })
                .await?;
        }
        Ok(total)
    }

    async fn wal_actor(&self) -> Result<ActorRef<crate::wal_actor::WalMsg>, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.supervisor
            .cast(SupervisorMsg::GetWal(tx))
            .map_err(|_| RequestError::ShuttingDown)?;
        rx.await.ok().flatten().ok_or(RequestError::ShuttingDown)
    }

    /// Frees the oldest log segment now (carrying live messages forward),
    /// whatever the compaction policy says; answers segments removed.
    pub async fn compact_now(&self) -> Result<u64, RequestError> {
        self.check_open(true)?;
        let wal = self.wal_actor().await?;
        let (tx, rx) = oneshot::channel();
        wal.cast(crate::wal_actor::WalMsg::CompactNow(Some(tx)))
            .map_err(|_| RequestError::ShuttingDown)?;
        rx.await
            .map_err(|_| RequestError::OutcomeUnknown)?
            .map_err(RequestError::Invalid)
    }

    /// Whether acknowledgements mean "on disk".
    pub fn is_durable(&self) -> bool {
        self.shared.sink.is_durable()
    }

    /// Queue depths right now: requests queued or running per partition,
    /// and records queued or in flight in the log.
    pub fn queue_depths(&self) -> QueueDepths {
        let limit = self.shared.runtime.partition_queue;
        QueueDepths {
            partitions: self
                .shared
                .permits
                .iter()
                .map(|p| limit.saturating_sub(p.available_permits()))
                .collect(),
            partition_limit: limit,
            wal_in_flight: match &self.shared.sink {
                LogSink::Durable(wal) => wal.in_flight(),
                LogSink::Memory(_) => 0,
            },
            wal_limit: self.shared.storage.max_in_flight,
        }
    }

    /// Requests in progress.
    pub fn active_requests(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Resolves when the node has failed (the supervisor gave up), with why.
    pub async fn failed(&self) -> String {
        loop {
            let notified = self.shared.failure.notified();
            if let Some(reason) = self.shared.failed.get() {
                return reason.clone();
            }
            notified.await;
        }
    }

    /// Stops accepting, lets requests in progress finish (bounded), stops
    /// the actors, then drains and syncs the log. The next start recovers
    /// exactly this state.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.shared.accepting.store(false, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.shared.runtime.shutdown_drain_ms);
        while self.shared.active.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let left = self.shared.active.load(Ordering::Acquire);
        if left > 0 {
            tracing::warn!(
                requests = left,
                "shutdown drain timed out; unanswered requests were never acknowledged"
            );
        }
        if let Some(hub) = self.shared.services.get() {
            hub.stop().await;
        }
        self.supervisor
            .stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
        let _ = self
            .supervisor
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
        for p in 0..self.shared.partitions.len() as u32 {
            self.shared.set_partition(p, None);
        }
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner()).take();
        match open {
            Some(open) => tokio::task::spawn_blocking(move || open.shutdown())
                .await
                .map_err(|e| NodeError::Runtime(format!("shutdown task failed: {e}")))?,
            None => Ok(()),
        }
    }

    /// Restarts the supervisor has made since start, by child label (the
    /// counts of `spine_actor_restarts_total`; labels never restarted are
    /// absent).
    pub fn restarts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.shared
            .restarts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes an actor panic, to test supervision. An actor being replaced
    /// cannot be reached (`NODE_SHUTTING_DOWN`): retry.
    #[cfg(any(test, feature = "fault-injection"))]
    pub async fn inject_panic(&self, target: FaultTarget) -> Result<(), RequestError> {
        match target {
            FaultTarget::ServiceRouter(_) | FaultTarget::ReferenceServices => {
                let hub = self
                    .shared
                    .services
                    .get()
                    .ok_or(RequestError::ShuttingDown)?;
                let service = match target {
                    FaultTarget::ServiceRouter(name) => Some(name),
                    _ => None,
                };
                hub.inject_panic(service)
            }
            FaultTarget::Partition(p) => {
                let actor = self
                    .shared
                    .partition(p)
                    .ok_or(RequestError::Unavailable(p))?;
                actor
                    .cast(PartitionMsg::Panic)
                    .map_err(|_| RequestError::Unavailable(p))
            }
            FaultTarget::Service => {
                let s = self.service().await?;
                s.cast(ServiceMsg::Panic)
                    .map_err(|_| RequestError::ShuttingDown)
            }
            FaultTarget::Wal => {
                let w = self.wal_actor().await?;
                w.cast(crate::wal_actor::WalMsg::Panic)
                    .map_err(|_| RequestError::ShuttingDown)
            }
            FaultTarget::Expiry => {
                let (tx, rx) = oneshot::channel();
                self.supervisor
                    .cast(SupervisorMsg::GetExpiry(tx))
                    .map_err(|_| RequestError::ShuttingDown)?;
                let e = rx.await.ok().flatten().ok_or(RequestError::ShuttingDown)?;
                e.cast(crate::expiry::ExpiryMsg::Panic)
                    .map_err(|_| RequestError::ShuttingDown)
            }
        }
    }
}
