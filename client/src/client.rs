//! [`Client`], the handle callers use, and [`Subscription`].
//!
//! Invariants and why:
//! - All clones of a `Client` share one connection; a connection that has
//!   ended is replaced by the next call (one reconnect at a time, under a
//!   lock, each bounded by `connect_timeout`), never behind the caller's
//!   back in the middle of a request: a request caught by the loss fails
//!   with `CLIENT_CONNECTION_LOST` and is not retried, because only the
//!   caller knows whether it is safe to repeat.
//! - Every request is bounded by `request_timeout`, so no call hangs.
//! - A subscription belongs to the connection it was made on and ends with
//!   it; its credit is granted back as the caller consumes pushes.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use spine_core::envelope::Envelope;
use spine_core::ids::{MailboxId, MessageId, OdsCode, WorkflowId};
use spine_protocol::{
    BatchItem, DownloadedChunk, InboxEntry, LookupEntry, Request, Response, SendHeader, SendOk,
    ServerLimits, TrackInfo, WireError,
};
use tracing::{debug, info};

use crate::config::{ClientConfig, DEFAULT_MAX_DOWNLOAD_BYTES};
use crate::conn::{Conn, SubInner};
use crate::error::ClientError;
use crate::tls;

/// What `HELLO_OK` said when the client first connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The mailbox the connection acts as (as the server normalised it).
    pub mailbox: MailboxId,
    /// The server's name and version.
    pub server_name: String,
    /// The limits the server asks the client to stay within.
    pub limits: ServerLimits,
}

/// One page of an inbox listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxPage {
    /// Messages in acceptance order.
    pub messages: Vec<InboxEntry>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<u64>,
    /// Messages waiting in the whole inbox (before filtering).
    pub total: u64,
}

/// A message newly accepted into the subscribed inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// Its envelope.
    pub envelope: Arc<Envelope>,
    /// Its inbox order key (compare with `InboxEntry::order`).
    pub order: u64,
    /// Its whole body, if the subscription asked for bodies
    /// ([`Client::subscribe_with_bodies`]) and the server pushed it; when
    /// `None`, download it.
    pub body: Option<Bytes>,
}

/// An async client of one Spine server. Cheap to clone: all clones share
/// one connection (and its pipelining window).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    session: Session,
    current: Mutex<Option<Conn>>,
    reconnect: tokio::sync::Mutex<()>,
    closed: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.config.endpoint)
            .field("mailbox", &self.inner.session.mailbox)
            .field("server_name", &self.inner.session.server_name)
            .finish_non_exhaustive()
    }
}

/// Connects within `connect_timeout`.
async fn open(
    config: &ClientConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(Conn, Session), ClientError> {
    match tokio::time::timeout(config.connect_timeout, Conn::connect(config, tls)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout {
            what: format!("connecting to {}", config.endpoint),
            after: config.connect_timeout,
        }),
    }
}

impl Client {
    /// Connects and authenticates (`HELLO`) within `connect_timeout`.
    /// `AUTH_FAILED` and other refusals come back as
    /// [`ClientError::Server`].
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let tls = if config.endpoint.uses_tls() {
            let quic = matches!(config.endpoint, crate::Endpoint::Quic { .. });
            Some(tls::client_config(&config.tls, quic)?)
        } else {
            None
        };
        let (conn, session) = open(&config, tls.as_ref()).await?;
        debug!(endpoint = %config.endpoint, mailbox = %session.mailbox, server = %session.server_name, "connected");
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                tls,
                session,
                current: Mutex::new(Some(conn)),
                reconnect: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// What the server said when the client first connected (a reconnect
    /// re-authenticates as the same mailbox; each connection narrows its
    /// encoder to that server's own advertised limits).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    fn current(&self) -> Option<Conn> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The live connection, reconnecting if the last one ended.
    async fn conn(&self) -> Result<Conn, ClientError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        if let Some(conn) = self.current().filter(|c| !c.is_closed()) {
            return Ok(conn);
        }
        // Boxed: reconnecting (connect, TLS, HELLO) is a large future, and
        // every request's future would otherwise be sized, and moved, by it.
        Box::pin(self.reconnect()).await
    }

    /// [`Client::conn`]'s slow path: one caller at a time reconnects.
    async fn reconnect(&self) -> Result<Conn, ClientError> {
        let _one_at_a_time = self.inner.reconnect.lock().await;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        if let Some(conn) = self.current().filter(|c| !c.is_closed()) {
            return Ok(conn);
        }
        let (conn, session) = open(&self.inner.config, self.inner.tls.as_ref()).await?;
        info!(endpoint = %self.inner.config.endpoint, mailbox = %session.mailbox, "reconnected");
        *self
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    /// Bounds `work` by `request_timeout`.
    async fn timed<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let after = self.inner.config.request_timeout;
        match tokio::time::timeout(after, work).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                what: format!("{what} request"),
                after,
            }),
        }
    }

    /// Sends `request` and returns its answer; `ERROR` becomes
    /// [`ClientError::Server`].
    async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let conn = self.conn().await?;
        let kind = request.kind();
        match self.timed(&kind.to_string(), conn.call(request)).await? {
            Response::Error(e) => Err(ClientError::Server(e)),
            answer => Ok(answer),
        }
    }

    /// [`Client::call`] for sibling modules.
    pub(crate) async fn call_raw(&self, request: Request) -> Result<Response, ClientError> {
        self.call(request).await
    }

    /// The live connection (reconnecting if needed), for sibling modules.
    pub(crate) async fn connection(&self) -> Result<Conn, ClientError> {
        self.conn().await
    }

    /// Bounds `work` by the request timeout, for sibling modules.
    pub(crate) async fn timed_call<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        self.timed(what, work).await
    }

    /// Sends one message (or chunk 1 of a chunked one); returns once the
    /// server has made it durable.
    ///
    /// Over TCP/TLS, small sends queued on the connection at the same moment
    /// (by concurrent callers or clones) may go out together as one
    /// `SEND_BATCH` (`ClientConfig::coalesce_sends`); each still gets its
    /// own answer, exactly as if sent alone.
    pub async fn send(&self, header: SendHeader, body: Bytes) -> Result<SendOk, ClientError> {
        let conn = self.conn().await?;
        let item = BatchItem { header, body };
        match self.timed("SEND", conn.send(item)).await? {
            Response::SendOk(ok) => Ok(ok),
            other => Err(ClientError::unexpected("SEND_OK", other)),
        }
    }

    /// Sends several messages in one frame; one result per item, in item
    /// order (an item's refusal does not fail the others).
    pub async fn send_batch(
        &self,
        items: Vec<BatchItem>,
    ) -> Result<Vec<Result<SendOk, WireError>>, ClientError> {
        let count = items.len();
        match self.call(Request::SendBatch(items)).await? {
            Response::SendBatchOk(results) if results.len() == count => Ok(results),
            Response::SendBatchOk(results) => Err(ClientError::protocol(format!(
                "a batch of {count} messages was answered with {} results",
                results.len()
            ))),
            other => Err(ClientError::unexpected("SEND_BATCH_OK", other)),
        }
    }

    /// Uploads chunk `chunk_no` (2..) of a chunked message; returns whether
    /// the message is now complete.
    pub async fn send_chunk(
        &self,
        message_id: MessageId,
        chunk_no: u32,
        body: Bytes,
    ) -> Result<bool, ClientError> {
        let request = Request::SendChunk {
            message_id,
            chunk_no,
            body,
        };
        match self.call(request).await? {
            Response::ChunkOk { complete } => Ok(complete),
            other => Err(ClientError::unexpected("CHUNK_OK", other)),
        }
    }

    /// One page of this mailbox's inbox, in acceptance order.
    pub async fn list_inbox(
        &self,
        workflow_filter: Option<String>,
        max_results: u32,
        after: Option<u64>,
    ) -> Result<InboxPage, ClientError> {
        let request = Request::ListInbox {
            workflow_filter,
            max_results,
            after,
        };
        match self.call(request).await? {
            Response::InboxPage {
                messages,
                next,
                total,
            } => Ok(InboxPage {
                messages,
                next,
                total,
            }),
            other => Err(ClientError::unexpected("INBOX_PAGE", other)),
        }
    }

    /// Downloads chunk `chunk_no` (1-based) of a message in the inbox,
    /// reassembling the streamed pieces; a chunk longer than
    /// [`DEFAULT_MAX_DOWNLOAD_BYTES`] (100 MiB) is refused before it is
    /// buffered.
    pub async fn download(
        &self,
        message_id: MessageId,
        chunk_no: u32,
    ) -> Result<DownloadedChunk, ClientError> {
        self.download_bounded(message_id, chunk_no, DEFAULT_MAX_DOWNLOAD_BYTES)
            .await
    }

    /// [`Client::download`] with another bound: a server announcing a
    /// chunk longer than `max_bytes` is refused (`CLIENT_PROTOCOL`) before
    /// anything of that size is allocated, and the rest of its answer is
    /// ignored.
    pub async fn download_bounded(
        &self,
        message_id: MessageId,
        chunk_no: u32,
        max_bytes: u64,
    ) -> Result<DownloadedChunk, ClientError> {
        let conn = self.conn().await?;
        self.timed("DOWNLOAD", conn.download(message_id, chunk_no, max_bytes))
            .await
    }

    /// Acknowledges a message in the inbox (idempotent).
    pub async fn acknowledge(&self, message_id: MessageId) -> Result<(), ClientError> {
        match self.call(Request::Acknowledge { message_id }).await? {
            Response::AckOk => Ok(()),
            other => Err(ClientError::unexpected("ACK_OK", other)),
        }
    }

    /// Acknowledges several messages in one request (at most the server's
    /// `max_batch`); one result per message, in order. Each is idempotent
    /// like [`Client::acknowledge`].
    pub async fn acknowledge_batch(
        &self,
        message_ids: Vec<MessageId>,
    ) -> Result<Vec<Result<(), WireError>>, ClientError> {
        let count = message_ids.len();
        match self.call(Request::AcknowledgeBatch { message_ids }).await? {
            Response::AckBatchOk(results) if results.len() == count => Ok(results),
            Response::AckBatchOk(results) => Err(ClientError::protocol(format!(
                "a batch of {count} acknowledgements was answered with {} results",
                results.len()
            ))),
            other => Err(ClientError::unexpected("ACK_BATCH_OK", other)),
        }
    }

    /// What the server knows of a message this mailbox sent.
    pub async fn track(&self, message_id: MessageId) -> Result<TrackInfo, ClientError> {
        match self.call(Request::Track { message_id }).await? {
            Response::TrackInfo(info) => Ok(info),
            other => Err(ClientError::unexpected("TRACK_INFO", other)),
        }
    }

    /// Mailboxes receiving `workflow_id`, at organisation `ods_code` or,
    /// without one, anywhere.
    pub async fn lookup(
        &self,
        ods_code: Option<OdsCode>,
        workflow_id: WorkflowId,
    ) -> Result<Vec<LookupEntry>, ClientError> {
        let request = Request::Lookup {
            ods_code,
            workflow_id,
        };
        match self.call(request).await? {
            Response::LookupResult(entries) => Ok(entries),
            other => Err(ClientError::unexpected("LOOKUP_RESULT", other)),
        }
    }

    /// Round trip time of a `PING` (reconnecting first if needed, which is
    /// not counted).
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let conn = self.conn().await?;
        let started = Instant::now();
        match self.timed("PING", conn.call(Request::Ping)).await? {
            Response::Pong => Ok(started.elapsed()),
            other => Err(ClientError::unexpected("PONG", other)),
        }
    }

    /// Starts push delivery of messages newly accepted into this mailbox's
    /// inbox, with a window of `credit` pushes (0..=the server's
    /// `max_credit`). The window is kept open as [`Subscription::next`]
    /// hands pushes out. One subscription per client at a time
    /// ([`ClientError::AlreadySubscribed`]).
    ///
    /// A subscription ends (`next` returns `None`) when the connection is
    /// lost or the server ends it; pushes may also be missed when the
    /// server sheds load. Either way, re-subscribe and re-list the inbox
    /// ([`Client::list_inbox`]) to catch up.
    pub async fn subscribe(&self, credit: u32) -> Result<Subscription, ClientError> {
        self.subscribe_inner(credit, false).await
    }

    /// Like [`Client::subscribe`], asking the server to push each small
    /// single-chunk body with its notification ([`Push::body`]), which
    /// saves a `DOWNLOAD` per message; larger bodies still arrive as
    /// notifications to download.
    pub async fn subscribe_with_bodies(&self, credit: u32) -> Result<Subscription, ClientError> {
        self.subscribe_inner(credit, true).await
    }

    async fn subscribe_inner(
        &self,
        credit: u32,
        inline: bool,
    ) -> Result<Subscription, ClientError> {
        let conn = self.conn().await?;
        let max_credit = conn.max_credit();
        let (inner, granted) = self
            .timed("SUBSCRIBE", conn.subscribe(credit, inline))
            .await?;
        Ok(Subscription {
            inner,
            window: granted,
            owed: 0,
            max_credit,
            request_timeout: self.inner.config.request_timeout,
        })
    }

    /// Closes the shared connection gracefully (queued requests are sent
    /// first; requests still waiting for answers fail with
    /// `CLIENT_CONNECTION_LOST`). Every clone's later calls fail with
    /// [`ClientError::Closed`].
    pub async fn close(self) {
        self.inner.closed.store(true, Ordering::Release);
        let _no_reconnect = self.inner.reconnect.lock().await;
        let conn = self
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(conn) = conn {
            conn.close().await;
        }
    }
}

/// Push delivery for one client; see [`Client::subscribe`].
///
/// Dropping it ends the subscription (the server is told); so does
/// [`Subscription::unsubscribe`], which also waits for the server's
/// confirmation.
#[derive(Debug)]
pub struct Subscription {
    inner: SubInner,
    /// Credit the caller wants outstanding.
    window: u32,
    /// Credit not yet granted back: pushes handed out since the last
    /// grant (plus any widening not yet sent).
    owed: u32,
    max_credit: u32,
    request_timeout: Duration,
}

impl Subscription {
    /// The next push, or `None` once the subscription has ended (connection
    /// lost, or ended by the server): then re-subscribe and re-list the
    /// inbox. Before waiting, grants back (a `CREDIT` frame) the credit of
    /// the pushes already handed out, once they make up half the window,
    /// so the server can keep pushing. Cancel-safe.
    pub async fn next(&mut self) -> Option<Push> {
        if self.window > 0 && self.owed >= self.window.div_ceil(2) {
            if let Err(e) = self.inner.grant(&mut self.owed).await {
                // The connection is going; `recv` below sees it.
                debug!(error = %e, "granting push credit failed");
            }
        }
        let push = self.inner.recv().await?;
        self.owed = self.owed.saturating_add(1);
        Some(push)
    }

    /// Widens the window by `add` pushes (capped at the server's
    /// `max_credit`) and grants them now, with any credit owed for pushes
    /// already handed out. With an initial credit of 0 this is how pushes
    /// are started.
    pub async fn grant(&mut self, add: u32) -> Result<(), ClientError> {
        let add = add.min(self.max_credit.saturating_sub(self.window));
        self.window += add;
        self.owed = self.owed.saturating_add(add);
        let after = self.request_timeout;
        match tokio::time::timeout(after, self.inner.grant(&mut self.owed)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                what: "CREDIT".into(),
                after,
            }),
        }
    }

    /// The credit the subscription keeps outstanding.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Ends the subscription and waits for the server to confirm.
    pub async fn unsubscribe(self) -> Result<(), ClientError> {
        let after = self.request_timeout;
        match tokio::time::timeout(after, self.inner.unsubscribe()).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                what: "UNSUBSCRIBE request".into(),
                after,
            }),
        }
    }
}
