//! Drives one byte stream of the native protocol: a TCP (or TLS)
//! connection, or one QUIC bidirectional stream.
//!
//! The reader decodes frames and takes a permit from the connection's
//! in-flight semaphore for each request; once the connection is
//! authenticated it serves ordinary requests itself (their futures are
//! polled by this task while it waits to read: no task per request), and
//! hands `HELLO`, subscriptions and anything before authentication to the
//! connection actor. One writer task per stream drains the outbox, encoding
//! as many queued answers as are ready into one buffer per write (small
//! answers are coalesced; large payload pieces are written from their own
//! `Bytes`, uncopied).
//!
//! Invariants and why:
//! - The reader takes an in-flight permit *before* it hands a request on,
//!   so a client that pipelines more than `max_in_flight` requests simply
//!   stops being read: backpressure reaches it through TCP/QUIC flow
//!   control, and no queue in the node grows.
//! - The outbox is bounded; whoever answers waits for room, so a client
//!   that does not read its answers stalls only itself.
//! - A frame longer than the first read buffer is read only once its
//!   whole length is reserved from the connection's byte budget, and holds
//!   that reservation until its request is answered; a download's chunk
//!   holds its reservation until the writer has written it. So one
//!   connection never makes the server hold more than
//!   `max_connection_buffered_bytes` in frames and downloads.
//! - Before `HELLO` succeeds the codec refuses frames longer than a
//!   `HELLO`, nothing past a `HELLO` is decoded until it is answered, and
//!   the stream is closed (with `NOT_AUTHENTICATED`) at the session's
//!   `hello_deadline`.
//! - After the client ends its side, every request already read is still
//!   answered before the stream is closed (the writer ends when the last
//!   outbox sender — held by in-flight requests — is gone).

use std::sync::Arc;

use bytes::BytesMut;
use ractor::ActorRef;
use spine_protocol::{Request, Response, ServerCodec, WireErrorCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::connection::{is_ordinary, serve_ordinary, ConnMsg, Session, Slot};
use super::handler::error_response;
use super::Context;
use crate::budget::Reserved;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;

/// Answers waiting to be written on one stream.
pub(crate) type Outbox = mpsc::Sender<Outgoing>;

/// One item for a stream's writer.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A response frame for a request id (0: a push or a connection error).
    Frame(u64, Response),
    /// Bytes held by the answers queued before this (a download's chunk):
    /// given back once the writer has written them.
    Release(Option<Reserved>),
    /// Write what is queued, then close the stream.
    Close,
}

/// Outbox capacity per stream, in frames.
const OUTBOX_FRAMES: usize = 256;
/// Coalesce queued answers up to this many bytes per write.
const WRITE_BUFFER_BYTES: usize = 256 << 10;
/// Payload pieces at least this large are written uncopied.
const DIRECT_PAYLOAD_BYTES: usize = 64 << 10;
/// Read buffer growth step once a stream carries more than one small
/// request (a QUIC stream usually carries one: it starts small).
const READ_CHUNK_BYTES: usize = 64 << 10;
/// First read buffer of a stream.
const FIRST_READ_BYTES: usize = 4 << 10;

/// Serves one stream until the client ends it, the connection actor
/// stops, or a fatal protocol error. `stream_id` names the stream to the
/// actor (0 for TCP).
pub(crate) async fn serve_stream<R, W>(
    mut reader: R,
    writer: W,
    context: Arc<Context>,
    actor: ActorRef<ConnMsg>,
    session: Arc<Session>,
    stream_id: u64,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let codec = match ServerCodec::new(context.limits) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "transport limits are invalid; closing stream");
            return;
        }
    };
    let (outbox, queued) = mpsc::channel(OUTBOX_FRAMES);
    let writer_task = tokio::spawn(write_loop(writer, queued, codec.clone()));
    let mut decoder = codec;
    let mut buf = BytesMut::with_capacity(FIRST_READ_BYTES);
    let mut step = FIRST_READ_BYTES;
    // This stream's ordinary requests, polled by this task (no task per
    // request); they run while it waits to read or for a permit.
    let mut pending: FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>> =
        FuturesUnordered::new();
    // The connection's bytes reserved for the large frame being received.
    let mut receiving: Option<Reserved> = None;
    'read: loop {
        loop {
            let authenticated = session.mailbox.get().is_some();
            decoder.set_before_hello(!authenticated);
            match decoder.decode(&mut buf) {
                Ok(Some((id, request))) => {
                    let permit = loop {
                        if let Ok(p) = Arc::clone(&session.in_flight).try_acquire_owned() {
                            break p;
                        }
                        // The window is full: finish our own requests (or
                        // wait for another stream's) before reading on.
                        tokio::select! {
                            p = Arc::clone(&session.in_flight).acquire_owned() => match p {
                                Ok(p) => break p,
                                Err(_) => break 'read,
                            },
                            Some(()) = pending.next(), if !pending.is_empty() => {}
                        }
                    };
                    let slot = Slot {
                        _in_flight: permit,
                        _received: receiving.take(),
                    };
                    // Authenticated: ordinary requests skip the actor.
                    if let Some(mailbox) = session.mailbox.get() {
                        if is_ordinary(&request) {
                            pending.push(Box::pin(serve_ordinary(
                                Arc::clone(&context),
                                mailbox.clone(),
                                id,
                                request,
                                outbox.clone(),
                                slot,
                                session.buffered.clone(),
                            )));
                            continue;
                        }
                    }
                    let hello = matches!(request, Request::Hello { .. }) && !authenticated;
                    let (answered, outcome) = tokio::sync::oneshot::channel();
                    let msg = ConnMsg::Request {
                        id,
                        request,
                        out: outbox.clone(),
                        slot,
                        stream_id,
                        answered: hello.then_some(answered),
                    };
                    if actor.cast(msg).is_err() {
                        break 'read; // the connection is closing
                    }
                    if hello {
                        // Decode what follows only once the HELLO is
                        // answered: its outcome decides the limits.
                        tokio::select! {
                            _ = outcome => {}
                            () = tokio::time::sleep_until(session.hello_deadline) => {
                                hello_timed_out(&outbox, &context).await;
                                break 'read;
                            }
                        }
                    }
                }
                Ok(None) => {
                    // A large frame is arriving: reserve the bytes it will
                    // occupy before reading them (waiting, if the
                    // connection holds too much, while its own requests
                    // finish).
                    let pending_bytes = ServerCodec::pending_frame_bytes(&buf).unwrap_or(0);
                    if receiving.is_none() && pending_bytes > READ_CHUNK_BYTES as u64 {
                        let reserve = session.buffered.reserve(pending_bytes);
                        tokio::pin!(reserve);
                        loop {
                            tokio::select! {
                                r = &mut reserve => match r {
                                    Ok(r) => {
                                        receiving = Some(r);
                                        break;
                                    }
                                    Err(_) => break 'read,
                                },
                                Some(()) = pending.next(), if !pending.is_empty() => {}
                            }
                        }
                    }
                    break;
                }
                Err(e) => {
                    receiving = None;
                    metrics::counter!("spine_protocol_errors_total").increment(1);
                    let frame = Outgoing::Frame(e.reply_id(), Response::Error(e.to_wire()));
                    if outbox.send(frame).await.is_err() {
                        break 'read;
                    }
                    if e.is_fatal() {
                        tracing::debug!(error = %e, "unframeable input; closing stream");
                        let _ = outbox.send(Outgoing::Close).await;
                        break 'read;
                    }
                }
            }
        }
        if buf.capacity() - buf.len() < step / 4 {
            buf.reserve(step);
            step = READ_CHUNK_BYTES;
        }
        // `read_buf` is cancel-safe: bytes are only taken when it returns.
        // (An async block costs nothing until polled: no timer is set up
        // on an authenticated connection's reads.)
        let authenticated = session.mailbox.get().is_some();
        let deadline = async {
            if authenticated {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(session.hello_deadline).await;
        };
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            Some(()) = pending.next(), if !pending.is_empty() => {}
            () = deadline => {
                if session.mailbox.get().is_none() {
                    hello_timed_out(&outbox, &context).await;
                    break 'read;
                }
            }
        }
    }
    // Every request already read is answered.
    while pending.next().await.is_some() {}
    let _ = actor.cast(ConnMsg::StreamEnded { stream_id });
    drop(outbox);
    let _ = writer_task.await;
}

/// Tells a client that did not authenticate in time why it is closed.
async fn hello_timed_out(outbox: &Outbox, context: &Context) {
    metrics::counter!("spine_hello_timeouts_total").increment(1);
    let why = format!(
        "no successful HELLO within {} ms of connecting; send HELLO (mailbox and password) \
         first",
        context.handshake_timeout.as_millis()
    );
    let error = error_response(WireErrorCode::NotAuthenticated, &why);
    let _ = outbox.send(Outgoing::Frame(0, error)).await;
    let _ = outbox.send(Outgoing::Close).await;
}

/// Writes answers until every outbox sender is gone or `Close` arrives,
/// then shuts the write side down.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queued: mpsc::Receiver<Outgoing>,
    codec: ServerCodec,
) {
    // Grows with what is queued; a one-answer stream stays small.
    let mut buf = BytesMut::new();
    'outer: while let Some(first) = queued.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            let (id, response) = match item {
                Outgoing::Frame(id, response) => (id, response),
                Outgoing::Close => {
                    let _ = writer.write_all(&buf).await;
                    break 'outer;
                }
                Outgoing::Release(held) => {
                    // What it held has been copied into `buf` or written.
                    drop(held);
                    if buf.len() < WRITE_BUFFER_BYTES {
                        next = queued.try_recv().ok();
                    }
                    continue;
                }
            };
            let encoded = match codec.encode_parts(id, &response) {
                Ok(e) => e,
                Err(e) => {
                    // The answer cannot be encoded (e.g. over a limit):
                    // the client gets an error for that request instead.
                    tracing::warn!(request = id, error = %e, "answer could not be encoded");
                    match codec.encode_parts(id, &Response::Error(e.to_wire())) {
                        Ok(err) => err,
                        Err(_) => continue,
                    }
                }
            };
            if encoded
                .payload
                .iter()
                .any(|p| p.len() >= DIRECT_PAYLOAD_BYTES)
            {
                buf.extend_from_slice(&encoded.head);
                if writer.write_all(&buf).await.is_err() {
                    break 'outer;
                }
                buf.clear();
                for piece in &encoded.payload {
                    if writer.write_all(piece).await.is_err() {
                        break 'outer;
                    }
                }
            } else {
                encoded.write_to(&mut buf);
            }
            if buf.len() < WRITE_BUFFER_BYTES {
                next = queued.try_recv().ok();
            }
        }
        if !buf.is_empty() {
            if writer.write_all(&buf).await.is_err() {
                break;
            }
            buf.clear();
        }
        if writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}
