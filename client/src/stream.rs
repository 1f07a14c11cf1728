//! The native protocol over one TCP (or TLS-over-TCP) connection.
//!
//! Callers encode their request in their own task, register a pending
//! answer under a fresh request id and queue the frame; a writer task
//! drains everything queued into one (vectored) write; a reader task
//! decodes answers and completes the pending entry with the same id, so
//! answers may come in any order.
//!
//! Invariants and why:
//! - At most `max_in_flight` requests are pending (a semaphore): callers
//!   past that wait, and the outgoing queue is bounded by the same number
//!   plus a little room for `CREDIT` frames. Nothing grows without bound.
//! - A frame is queued whole and written whole, so a caller that gives up
//!   (timeout, dropped future) never tears the stream; its pending entry is
//!   removed by a guard and a late answer is ignored.
//! - When the connection ends for any reason, every pending request fails
//!   with `CLIENT_CONNECTION_LOST` at once, the semaphore is closed (so
//!   waiting callers fail too) and the subscription channel is dropped (so
//!   the subscriber sees the end). Registration checks the closed flag
//!   under the same lock, so no request can be left waiting on a dead
//!   connection.
//! - The reader never blocks on a consumer: pushes go into a channel sized
//!   for the granted credit (a push beyond it is dropped and logged), and
//!   downloads are reassembled in place by a bounded `DownloadAssembler`.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use spine_core::ids::MessageId;
use spine_protocol::{
    BatchItem, ClientCodec, DownloadAssembler, DownloadedChunk, EncodedFrame, Request, Response,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, warn};

use crate::client::{Push, Session};
use crate::coalesce::{split_answer, unbatch, Grouped, SendGroup};
use crate::config::ClientConfig;
use crate::conn::{accept_hello, codec, hello_request, HELLO_ID};
use crate::endpoint::Endpoint;
use crate::error::ClientError;
use crate::tls::server_name;

/// Payload pieces shorter than this are copied into the coalescing buffer;
/// longer ones are written from their own buffer (vectored writes only).
const COPY_BELOW: usize = 16 * 1024;
/// A writer wake-up writes at most this many frames ...
const MAX_BATCH_FRAMES: usize = 1_024;
/// ... or about this many bytes.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most buffers in one vectored write.
const MAX_IOV: usize = 64;
/// The reader reads at least this much at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Extra room in the outgoing queue beyond the pipelining window (for
/// `CREDIT`, `UNSUBSCRIBE` and the close marker).
const QUEUE_SLACK: usize = 16;
/// How long `close` waits for queued frames to be flushed.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Something for the writer task. (`Send` is unboxed on purpose: the queue
/// is bounded, and a box would cost an allocation per message.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Outgoing {
    /// Write this frame.
    Frame(EncodedFrame),
    /// Send this message, coalesced with the sends queued beside it
    /// ([`crate::coalesce`]); `id` is the caller's pending request.
    Send { id: u64, item: BatchItem },
    /// Flush what is queued before this, then close the connection.
    Close,
}

/// A request waiting for its answer.
#[derive(Debug)]
enum Pending {
    /// A request with a single answer frame.
    Answer(oneshot::Sender<Result<Response, ClientError>>),
    /// A download, reassembled as its pieces arrive.
    Download {
        assembler: DownloadAssembler,
        done: oneshot::Sender<Result<DownloadedChunk, ClientError>>,
    },
    /// A coalesced `SEND_BATCH`: its callers' own pending ids, in item
    /// order (each caller waits on its own entry).
    Batch(Vec<u64>),
}

impl Pending {
    fn fail(self, error: ClientError) {
        // A receiver that is gone (its caller gave up) needs no answer.
        match self {
            Pending::Answer(tx) => drop(tx.send(Err(error))),
            Pending::Download { done, .. } => drop(done.send(Err(error))),
            // Its callers have entries of their own, failed with them.
            Pending::Batch(_) => {}
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Why the connection ended, once it has.
    closed: Option<String>,
    pending: HashMap<u64, Pending>,
    /// Where pushes go while a subscription is active.
    pushes: Option<mpsc::Sender<Push>>,
    /// Where service calls go once this connection is a provider.
    calls: Option<mpsc::Sender<spine_protocol::ServiceCall>>,
}

/// What the caller side and the two tasks share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    permits: Semaphore,
    shutdown: watch::Sender<bool>,
    /// The next request id (callers' and coalesced batches').
    next_id: AtomicU64,
    /// Pending entries beyond which orphaned batch entries are swept.
    sweep_above: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error for a request on a closed connection.
    fn lost(&self) -> ClientError {
        let reason = self
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| "the connection closed".into());
        ClientError::lost(reason)
    }

    /// Ends the connection: fails everything pending, wakes waiting callers
    /// and stops both tasks. Only the first reason counts.
    fn close(&self, reason: String) {
        let (pending, pushes) = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            debug!(%reason, "native connection closed");
            state.closed = Some(reason.clone());
            state.calls = None;
            (std::mem::take(&mut state.pending), state.pushes.take())
        };
        self.permits.close();
        self.shutdown.send_replace(true);
        for (_, entry) in pending {
            entry.fail(ClientError::lost(reason.clone()));
        }
        drop(pushes);
    }

    /// Registers a pending answer, unless the connection has ended.
    fn register(&self, id: u64, entry: Pending) -> Result<PendingGuard<'_>, ClientError> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(ClientError::lost(reason.clone()));
        }
        state.pending.insert(id, entry);
        Ok(PendingGuard { shared: self, id })
    }

    /// A fresh request id (never 0, which is for pushes).
    fn next_id(&self) -> u64 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    /// Registers a coalesced batch under `id` for its callers' `ids`.
    /// Callers that gave up remove only their own entries, so a batch whose
    /// answer never comes could stay: once the map is larger than normal
    /// use allows, batches none of whose callers still wait are dropped.
    fn register_batch(&self, id: u64, ids: Vec<u64>) -> Result<(), ClientError> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(ClientError::lost(reason.clone()));
        }
        if state.pending.len() > self.sweep_above {
            let waiting: std::collections::HashSet<u64> = state
                .pending
                .iter()
                .filter(|(_, p)| !matches!(p, Pending::Batch(_)))
                .map(|(id, _)| *id)
                .collect();
            state.pending.retain(|_, p| match p {
                Pending::Batch(ids) => ids.iter().any(|id| waiting.contains(id)),
                _ => true,
            });
        }
        state.pending.insert(id, Pending::Batch(ids));
        Ok(())
    }

    /// Fails the pending request `id`, if any.
    fn fail(&self, id: u64, error: ClientError) {
        let entry = self.lock().pending.remove(&id);
        match entry {
            Some(entry) => entry.fail(error),
            None => debug!(id, %error, "undecodable answer to no pending request"),
        }
    }

    /// Routes one decoded frame; `Err` ends the connection with that
    /// reason.
    fn dispatch(&self, id: u64, response: Response) -> Result<(), String> {
        if id == 0 {
            return match response {
                Response::Push {
                    envelope,
                    order,
                    body,
                } => {
                    let state = self.lock();
                    match &state.pushes {
                        Some(tx) => {
                            let push = Push {
                                envelope,
                                order,
                                body,
                            };
                            if tx.try_send(push).is_err() {
                                warn!(order, "push beyond the granted credit dropped");
                            }
                        }
                        None => debug!(order, "push without a subscription ignored"),
                    }
                    Ok(())
                }
                Response::ServiceCall(call) => {
                    let state = self.lock();
                    match &state.calls {
                        Some(tx) => {
                            if tx.try_send(call).is_err() {
                                warn!("service call beyond the provider's queue dropped (the node retries or times it out)");
                            }
                        }
                        None => debug!("service call without a provider registration ignored"),
                    }
                    Ok(())
                }
                Response::Error(e) => Err(format!("the server ended the connection: {e}")),
                other => {
                    warn!(kind = %other.kind(), "answer with request id 0 ignored");
                    Ok(())
                }
            };
        }
        let mut state = self.lock();
        let Some(entry) = state.pending.remove(&id) else {
            // The caller gave up (timeout), or the server answered a CREDIT.
            debug!(id, kind = %response.kind(), "answer to no pending request ignored");
            return Ok(());
        };
        match entry {
            Pending::Answer(tx) => {
                drop(state);
                let answer = match response {
                    Response::DownloadData(_) => Err(ClientError::protocol(
                        "the server answered a request that is not a download with DOWNLOAD_DATA",
                    )),
                    other => Ok(other),
                };
                drop(tx.send(answer));
            }
            Pending::Download {
                mut assembler,
                done,
            } => match response {
                Response::DownloadData(piece) => match assembler.push(piece) {
                    Ok(Some(chunk)) => drop(done.send(Ok(chunk))),
                    Ok(None) => {
                        state
                            .pending
                            .insert(id, Pending::Download { assembler, done });
                    }
                    Err(e) => drop(done.send(Err(ClientError::protocol(e.to_string())))),
                },
                other => drop(done.send(Err(ClientError::unexpected("DOWNLOAD_DATA", other)))),
            },
            Pending::Batch(ids) => {
                for (id, answer) in split_answer(ids, response) {
                    match state.pending.remove(&id) {
                        Some(Pending::Answer(tx)) => drop(tx.send(answer)),
                        Some(other) => {
                            // Not a send's entry: leave it be.
                            state.pending.insert(id, other);
                        }
                        None => debug!(id, "answer to a coalesced send whose caller gave up"),
                    }
                }
            }
        }
        Ok(())
    }
}

/// Removes a pending entry when its caller stops waiting.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().pending.remove(&self.id);
    }
}

/// The caller side of a TCP/TLS connection.
#[derive(Debug)]
pub(crate) struct StreamConn {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Outgoing>,
    /// Encodes requests within the server's limits.
    encoder: ClientCodec,
    /// Most sends per coalesced `SEND_BATCH` (1: none).
    coalesce_sends: usize,
}

/// Connects to a `native://` or `natives://` endpoint and says `HELLO`.
pub(crate) async fn connect(
    config: &ClientConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(Arc<StreamConn>, Session), ClientError> {
    let Endpoint::Native {
        host,
        port,
        tls: use_tls,
    } = &config.endpoint
    else {
        return Err(ClientError::ConfigInvalid {
            why: "a QUIC endpoint reached the TCP transport".into(),
        });
    };
    let failed = |reason: String| ClientError::ConnectFailed {
        endpoint: config.endpoint.to_string(),
        reason,
    };
    let tcp = TcpStream::connect((host.as_str(), *port))
        .await
        .map_err(|e| failed(e.to_string()))?;
    tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
    if !*use_tls {
        let (read, write) = tcp.into_split();
        return start(read, write, config).await;
    }
    let Some(tls) = tls else {
        return Err(ClientError::tls("TLS was asked for but not configured"));
    };
    let name = server_name(&config.tls, host)?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .map_err(|e| io_error(config, "the TLS handshake", e))?;
    let (read, write) = tokio::io::split(stream);
    start(read, write, config).await
}

/// Says `HELLO` over the fresh stream, then starts the reader and writer.
async fn start<R, W>(
    mut read: R,
    mut write: W,
    config: &ClientConfig,
) -> Result<(Arc<StreamConn>, Session), ClientError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut encoder = codec(config)?;
    let mut decoder = codec(config)?;
    let hello = encoder
        .encode_parts(HELLO_ID, &hello_request(config))
        .map_err(ClientError::request_invalid)?;
    for piece in hello.pieces() {
        write
            .write_all(piece)
            .await
            .map_err(|e| io_error(config, "sending HELLO", e))?;
    }
    write
        .flush()
        .await
        .map_err(|e| io_error(config, "sending HELLO", e))?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let answer = loop {
        match decoder.decode(&mut buf) {
            Ok(Some((_, answer))) => break answer,
            Ok(None) => {}
            Err(e) => {
                return Err(ClientError::protocol(format!(
                    "the answer to HELLO could not be decoded: {e}"
                )))
            }
        }
        buf.reserve(READ_CHUNK);
        match read.read_buf(&mut buf).await {
            Ok(0) => {
                return Err(ClientError::ConnectFailed {
                    endpoint: config.endpoint.to_string(),
                    reason: "the server closed the connection before answering HELLO".into(),
                })
            }
            Ok(_) => {}
            Err(e) => return Err(io_error(config, "waiting for the answer to HELLO", e)),
        }
    };
    let session = accept_hello(answer, config, &mut encoder)?;

    let (shutdown, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        permits: Semaphore::new(config.max_in_flight),
        shutdown,
        next_id: AtomicU64::new(HELLO_ID + 1),
        sweep_above: config
            .max_in_flight
            .saturating_mul(2)
            .saturating_add(QUEUE_SLACK),
    });
    let (outgoing, queue) = mpsc::channel(config.max_in_flight.saturating_add(QUEUE_SLACK));
    tokio::spawn(reader_task(read, decoder, buf, Arc::clone(&shared)));
    let group = SendGroup::new(config.coalesce_sends, encoder.limits());
    let writer = Writer {
        shared: Arc::clone(&shared),
        encoder: encoder.clone(),
        group,
    };
    tokio::spawn(writer.run(write, queue));
    let conn = StreamConn {
        shared,
        outgoing,
        encoder,
        coalesce_sends: config.coalesce_sends,
    };
    Ok((Arc::new(conn), session))
}

/// Maps an I/O error while connecting: a TLS failure (wrapped
/// `rustls::Error`) is `CLIENT_TLS` with advice, anything else
/// `CLIENT_CONNECT_FAILED`.
fn io_error(config: &ClientConfig, during: &str, e: io::Error) -> ClientError {
    let tls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(tls) => ClientError::tls(tls_advice(&config.endpoint, during, tls)),
        None => ClientError::ConnectFailed {
            endpoint: config.endpoint.to_string(),
            reason: format!("{during} failed: {e}"),
        },
    }
}

/// What a rustls error during the handshake means for the user.
pub(crate) fn tls_advice(endpoint: &Endpoint, during: &str, e: &rustls::Error) -> String {
    let advice = match e {
        rustls::Error::InvalidCertificate(_) => {
            "the server's certificate was not accepted: check that tls.ca_file holds the CA \
             that signed it and that tls.server_name (default: the endpoint's host) is a name \
             in it"
        }
        rustls::Error::AlertReceived(_) => {
            "the server refused the handshake: if it requires client certificates, set \
             tls.client_cert and tls.client_key to a certificate its CA signed"
        }
        rustls::Error::NoApplicationProtocol => {
            "the server does not speak the spine/1 protocol on this port"
        }
        _ => "check the TLS settings of client and server",
    };
    format!("{during} with {endpoint} failed: {e}; {advice}")
}

impl StreamConn {
    fn next_id(&self) -> u64 {
        self.shared.next_id()
    }

    /// A pipelining slot, held until the answer has come.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ClientError> {
        self.shared
            .permits
            .acquire()
            .await
            .map_err(|_| self.shared.lost())
    }

    /// Sends one message; small ones may be coalesced with other queued
    /// sends into one `SEND_BATCH` ([`crate::coalesce`]). The answer is
    /// `SEND_OK` or `ERROR`, as for a lone `SEND`.
    pub(crate) async fn send(&self, item: BatchItem) -> Result<Response, ClientError> {
        if !SendGroup::eligible(self.coalesce_sends, item.body.len()) {
            // Boxed: a large future that would otherwise size every
            // coalesced send's too.
            return Box::pin(self.call(Request::Send {
                header: item.header,
                body: item.body,
            }))
            .await;
        }
        let _permit = self.slot().await?;
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let _guard = self.shared.register(id, Pending::Answer(tx))?;
        self.outgoing
            .send(Outgoing::Send { id, item })
            .await
            .map_err(|_| self.shared.lost())?;
        rx.await.map_err(|_| self.shared.lost())?
    }

    /// Sends `request` and waits for its single answer.
    pub(crate) async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let _permit = self.slot().await?;
        let id = self.next_id();
        let frame = self
            .encoder
            .encode_parts(id, &request)
            .map_err(ClientError::request_invalid)?;
        let (tx, rx) = oneshot::channel();
        let _guard = self.shared.register(id, Pending::Answer(tx))?;
        self.queue(frame).await?;
        rx.await.map_err(|_| self.shared.lost())?
    }

    /// Registers as a provider of `service`: calls arrive on the returned
    /// receiver (bounded by `queue`) from the moment the request is sent.
    pub(crate) async fn register_provider(
        &self,
        service: String,
        queue: usize,
    ) -> Result<(mpsc::Receiver<spine_protocol::ServiceCall>, Response), ClientError> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        self.shared.lock().calls = Some(tx);
        let answer = self.call(Request::RegisterProvider { service }).await;
        if !matches!(answer, Ok(Response::ProviderRegistered { .. })) {
            self.shared.lock().calls = None;
        }
        Ok((rx, answer?))
    }

    /// Downloads one chunk of at most `max_bytes`, reassembled by the
    /// reader as pieces arrive.
    pub(crate) async fn download(
        &self,
        message_id: MessageId,
        chunk_no: u32,
        max_bytes: u64,
    ) -> Result<DownloadedChunk, ClientError> {
        let _permit = self.slot().await?;
        let id = self.next_id();
        let frame = self
            .encoder
            .encode_parts(
                id,
                &Request::Download {
                    message_id,
                    chunk_no,
                },
            )
            .map_err(ClientError::request_invalid)?;
        let (done, rx) = oneshot::channel();
        let entry = Pending::Download {
            assembler: DownloadAssembler::new(max_bytes),
            done,
        };
        let _guard = self.shared.register(id, entry)?;
        self.queue(frame).await?;
        rx.await.map_err(|_| self.shared.lost())?
    }

    /// Starts push delivery on this connection.
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        credit: u32,
        inline: bool,
    ) -> Result<(StreamSub, u32), ClientError> {
        let capacity = usize::try_from(self.max_credit().max(1)).unwrap_or(usize::MAX);
        let (tx, rx) = mpsc::channel(capacity);
        {
            let mut state = self.shared.lock();
            if let Some(reason) = &state.closed {
                return Err(ClientError::lost(reason.clone()));
            }
            if state.pushes.is_some() {
                return Err(ClientError::AlreadySubscribed);
            }
            state.pushes = Some(tx);
        }
        // From here on, dropping `sub` (an error, a timeout) gives the slot
        // back; `active` says whether the server may think it subscribed.
        let mut sub = StreamSub {
            conn: Arc::clone(self),
            rx,
            active: true,
        };
        match self.call(Request::Subscribe { credit, inline }).await {
            Ok(Response::Subscribed { credit }) => Ok((sub, credit)),
            Ok(other) => {
                sub.active = false;
                Err(ClientError::unexpected("SUBSCRIBED", other))
            }
            Err(e) => {
                // Refused or never sent (a timeout drops this future
                // instead, leaving `active` set).
                sub.active = false;
                Err(e)
            }
        }
    }

    async fn queue(&self, frame: EncodedFrame) -> Result<(), ClientError> {
        self.outgoing
            .send(Outgoing::Frame(frame))
            .await
            .map_err(|_| self.shared.lost())
    }

    pub(crate) fn max_credit(&self) -> u32 {
        self.encoder.limits().max_credit
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Flushes what is queued, closes the connection, and waits (bounded)
    /// until the writer has finished.
    pub(crate) async fn close(&self) {
        let mut closed = self.shared.shutdown.subscribe();
        let flushed = tokio::time::timeout(CLOSE_WAIT, async {
            // If the writer is gone, the connection is already closed.
            drop(self.outgoing.send(Outgoing::Close).await);
            drop(closed.wait_for(|c| *c).await);
        })
        .await;
        if flushed.is_err() {
            self.shared
                .close("the client closed the connection (unflushed)".into());
        }
    }
}

/// The TCP/TLS half of a subscription: pushes arrive through the channel
/// the reader fills.
#[derive(Debug)]
pub(crate) struct StreamSub {
    conn: Arc<StreamConn>,
    rx: mpsc::Receiver<Push>,
    /// Whether the server may consider this subscription active (so
    /// dropping it should tell the server).
    active: bool,
}

impl StreamSub {
    pub(crate) async fn recv(&mut self) -> Option<Push> {
        self.rx.recv().await
    }

    /// Grants `owed` credit back; `owed` is zeroed once the `CREDIT` frame
    /// is queued (cancel-safe: either it is queued and zeroed, or neither).
    pub(crate) async fn grant(&mut self, owed: &mut u32) -> Result<(), ClientError> {
        let add = (*owed).min(self.conn.max_credit());
        if add == 0 {
            return Ok(());
        }
        let frame = self
            .conn
            .encoder
            .encode_parts(self.conn.next_id(), &Request::Credit { add })
            .map_err(ClientError::request_invalid)?;
        let slot = self
            .conn
            .outgoing
            .reserve()
            .await
            .map_err(|_| self.conn.shared.lost())?;
        slot.send(Outgoing::Frame(frame));
        *owed -= add;
        Ok(())
    }

    pub(crate) async fn unsubscribe(mut self) -> Result<(), ClientError> {
        // If this is cut short, the slot is still given back by Drop; the
        // server's answer no longer matters.
        self.active = false;
        match self.conn.call(Request::Unsubscribe).await? {
            Response::Unsubscribed => Ok(()),
            other => Err(ClientError::unexpected("UNSUBSCRIBED", other)),
        }
    }
}

impl Drop for StreamSub {
    fn drop(&mut self) {
        self.conn.shared.lock().pushes = None;
        if !self.active || self.conn.is_closed() {
            return;
        }
        let frame = match self
            .conn
            .encoder
            .encode_parts(self.conn.next_id(), &Request::Unsubscribe)
        {
            Ok(frame) => frame,
            Err(e) => {
                warn!(error = %e, "could not encode UNSUBSCRIBE");
                return;
            }
        };
        match self.conn.outgoing.try_send(Outgoing::Frame(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                // The queue is full: hand the frame over from a task.
                let outgoing = self.conn.outgoing.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        drop(outgoing.send(message).await);
                    });
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Decodes answers until the connection ends, then closes it.
async fn reader_task<R>(
    mut read: R,
    mut decoder: ClientCodec,
    mut buf: BytesMut,
    shared: Arc<Shared>,
) where
    R: AsyncRead + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let reason = loop {
        if let Err(reason) = drain(&mut decoder, &mut buf, &shared) {
            break reason;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            biased;
            _ = shutdown.wait_for(|closed| *closed) => return,
            read = read.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) => break "the server closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("reading from the server failed: {e}"),
        }
    };
    shared.close(reason);
}

/// Dispatches every whole frame in `buf`.
fn drain(decoder: &mut ClientCodec, buf: &mut BytesMut, shared: &Shared) -> Result<(), String> {
    loop {
        match decoder.decode(buf) {
            Ok(Some((id, response))) => shared.dispatch(id, response)?,
            Ok(None) => return Ok(()),
            Err(e) if e.is_fatal() => {
                return Err(format!("the server sent an unreadable frame: {e}"));
            }
            Err(e) => shared.fail(
                e.reply_id(),
                ClientError::protocol(format!("the answer could not be decoded: {e}")),
            ),
        }
    }
}

/// The writer task: writes queued frames, coalescing whatever is queued
/// into one write (and queued sends into `SEND_BATCH`es), until the
/// connection ends; then closes it.
struct Writer {
    shared: Arc<Shared>,
    encoder: ClientCodec,
    group: SendGroup,
}

impl Writer {
    async fn run<W>(mut self, mut write: W, mut queue: mpsc::Receiver<Outgoing>)
    where
        W: AsyncWrite + Unpin,
    {
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut batch = Batch::new(write.is_write_vectored());
        let reason = loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.wait_for(|closed| *closed) => return,
                first = queue.recv() => first,
            };
            let mut close = match first {
                Some(outgoing) => self.take(outgoing, &mut batch),
                None => true,
            };
            while !close && batch.frames < MAX_BATCH_FRAMES && batch.bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(outgoing) => close = self.take(outgoing, &mut batch),
                    Err(_) => break,
                }
            }
            self.flush_group(&mut batch);
            let written = tokio::select! {
                biased;
                _ = shutdown.wait_for(|closed| *closed) => return,
                written = batch.write(&mut write) => written,
            };
            if let Err(e) = written {
                break format!("writing to the server failed: {e}");
            }
            if close {
                // A clean end: TCP FIN, or TLS close_notify then FIN.
                let _ = tokio::time::timeout(CLOSE_WAIT, write.shutdown()).await;
                break "the client closed the connection".to_owned();
            }
        };
        self.shared.close(reason);
    }

    /// Takes one queued item into this wake-up's write, keeping queue
    /// order (a frame after grouped sends is written after them); returns
    /// whether it asks to close.
    fn take(&mut self, outgoing: Outgoing, batch: &mut Batch) -> bool {
        match outgoing {
            Outgoing::Send { id, item } => {
                if !self.group.fits(item.body.len()) {
                    self.flush_group(batch);
                }
                self.group.push(id, item);
                false
            }
            Outgoing::Frame(frame) => {
                self.flush_group(batch);
                batch.add(&frame);
                false
            }
            Outgoing::Close => {
                self.flush_group(batch);
                true
            }
        }
    }

    /// Encodes the grouped sends: one `SEND`, or one `SEND_BATCH` under a
    /// fresh id registered for its callers. A batch that cannot be encoded
    /// is split back into `SEND`s so each caller gets its own error.
    fn flush_group(&mut self, batch: &mut Batch) {
        match self.group.take() {
            None => {}
            Some(Grouped::One(id, request)) => self.encode_alone(id, &request, batch),
            Some(Grouped::Many(ids, request)) => {
                let batch_id = self.shared.next_id();
                match self.encoder.encode_parts(batch_id, &request) {
                    // If the connection has closed, every caller has been
                    // failed already and there is nothing to write.
                    Ok(frame) => {
                        if self.shared.register_batch(batch_id, ids).is_ok() {
                            batch.add(&frame);
                        }
                    }
                    Err(_) => {
                        for (id, request) in unbatch(ids, request) {
                            self.encode_alone(id, &request, batch);
                        }
                    }
                }
            }
        }
    }

    fn encode_alone(&self, id: u64, request: &Request, batch: &mut Batch) {
        match self.encoder.encode_parts(id, request) {
            Ok(frame) => batch.add(&frame),
            Err(e) => self.shared.fail(id, ClientError::request_invalid(e)),
        }
    }
}

/// The frames of one writer wake-up: small pieces copied into one buffer,
/// large payloads kept as their own pieces (when the writer supports
/// vectored writes; otherwise everything is copied, so a TLS stream gets
/// one large write instead of many small records).
#[derive(Debug)]
struct Batch {
    vectored: bool,
    small: BytesMut,
    pieces: Vec<Bytes>,
    frames: usize,
    bytes: usize,
}

impl Batch {
    fn new(vectored: bool) -> Batch {
        Batch {
            vectored,
            small: BytesMut::with_capacity(READ_CHUNK),
            pieces: Vec::new(),
            frames: 0,
            bytes: 0,
        }
    }

    fn add(&mut self, frame: &EncodedFrame) {
        self.frames += 1;
        self.bytes = self.bytes.saturating_add(frame.len());
        for piece in frame.pieces() {
            if !self.vectored || piece.len() < COPY_BELOW {
                self.small.extend_from_slice(piece);
            } else {
                self.seal_small();
                self.pieces.push(piece.clone());
            }
        }
    }

    fn seal_small(&mut self) {
        if !self.small.is_empty() {
            self.pieces.push(self.small.split().freeze());
        }
    }

    /// Writes everything and flushes; the batch is empty afterwards.
    async fn write<W: AsyncWrite + Unpin>(&mut self, write: &mut W) -> io::Result<()> {
        self.seal_small();
        let mut first = 0;
        while first < self.pieces.len() {
            let n = {
                let slices: Vec<IoSlice<'_>> = self
                    .pieces
                    .iter()
                    .skip(first)
                    .take(MAX_IOV)
                    .map(|p| IoSlice::new(p))
                    .collect();
                write.write_vectored(&slices).await?
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let mut left = n;
            while left > 0 {
                let Some(piece) = self.pieces.get_mut(first) else {
                    break;
                };
                if left >= piece.len() {
                    left -= piece.len();
                    first += 1;
                } else {
                    piece.advance(left);
                    left = 0;
                }
            }
        }
        self.pieces.clear();
        self.frames = 0;
        self.bytes = 0;
        write.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `max` bytes per call, to exercise
    /// partial vectored writes.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.max {
                    break;
                }
            }
            std::task::Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn batches_write_every_byte_in_order_through_partial_writes() {
        let codec = ClientCodec::default();
        let big = Bytes::from(vec![7u8; COPY_BELOW * 3 + 5]);
        let small = Bytes::from_static(b"tiny");
        let header = spine_protocol::SendHeader::simple(
            spine_core::ids::MailboxId::parse("X26ABC2").unwrap(),
            spine_core::ids::WorkflowId::parse("PATH_TEST").unwrap(),
        );
        let frames: Vec<EncodedFrame> = (1..=5u64)
            .map(|id| {
                let body = if id % 2 == 0 {
                    big.clone()
                } else {
                    small.clone()
                };
                codec
                    .encode_parts(
                        id,
                        &Request::Send {
                            header: header.clone(),
                            body,
                        },
                    )
                    .unwrap()
            })
            .collect();
        let mut expected = BytesMut::new();
        for f in &frames {
            f.write_to(&mut expected);
        }
        for vectored in [true, false] {
            for max in [1, 7, 4096, usize::MAX / 2] {
                let mut batch = Batch::new(vectored);
                for f in &frames {
                    batch.add(f);
                }
                let mut out = Trickle {
                    out: Vec::new(),
                    max,
                };
                batch.write(&mut out).await.unwrap();
                assert_eq!(out.out, expected.as_ref(), "vectored {vectored}, max {max}");
                assert!(batch.pieces.is_empty() && batch.small.is_empty());
            }
        }
    }
}
