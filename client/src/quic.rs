//! The native protocol over QUIC (quinn, TLS 1.3, ALPN `spine/1`).
//!
//! The stream convention (the server follows the same one):
//! - `HELLO` travels on the connection's first bidirectional stream: the
//!   client writes the `HELLO` frame (request id 1) and finishes its send
//!   side; the server answers `HELLO_OK` (or `ERROR`) and finishes. Until
//!   that has succeeded the connection is not used for anything else. A
//!   server that refuses `HELLO` leaves the connection open until the
//!   client closes it (the client does so at once), so that the `ERROR`
//!   is delivered rather than discarded by the connection's close.
//! - Every other request opens its own bidirectional stream: the client
//!   writes exactly one request frame (a fresh non-zero request id) and
//!   finishes its send side; the server writes the answer frames (one, or
//!   `DOWNLOAD_DATA` pieces up to the END flag, or an `ERROR`) with the same
//!   id and finishes. Streams are independent, so answers never wait for
//!   one another.
//! - A subscription holds one bidirectional stream open: the client writes
//!   `SUBSCRIBE` and keeps its send side open; the server answers
//!   `SUBSCRIBED` on it, then sends `PUSH` frames (id 0) on it; the client
//!   writes `CREDIT` frames (fresh ids, no answer) on it. To end it the
//!   client writes `UNSUBSCRIBE` and finishes; the server answers
//!   `UNSUBSCRIBED` and finishes. A client that drops a subscription just
//!   finishes its send side and stops reading (STOP_SENDING): the server
//!   treats the end of the stream as `UNSUBSCRIBE`.
//! - A provider registration holds one bidirectional stream open in the
//!   same way (`quic_provider`): the client writes `REGISTER_PROVIDER` and
//!   keeps its send side open; the server answers `PROVIDER_REGISTERED`
//!   on it, then sends `SERVICE_CALL` frames (id 0) on it. The client's
//!   `PROVIDER_REPLY`s are ordinary requests on streams of their own. The
//!   end of the registration stream, from either side, ends the
//!   registration.
//!
//! Invariants and why:
//! - At most `max_in_flight` request streams are open at once (a
//!   semaphore), on top of the server's own stream limit.
//! - Every stream's answer is decoded with its own buffer and codec, so a
//!   broken answer fails only its request.
//! - A lost connection fails every open stream's read with
//!   `CLIENT_CONNECTION_LOST`; the next call reconnects.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::QuicClientConfig;
use spine_core::ids::MessageId;
use spine_protocol::{ClientCodec, DownloadAssembler, DownloadedChunk, Request, Response};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::client::{Push, Session};
use crate::config::ClientConfig;
use crate::conn::{accept_hello, codec, hello_request, HELLO_ID};
use crate::endpoint::Endpoint;
use crate::error::ClientError;
use crate::tls::server_name;

/// Most bytes taken from a stream per read.
const READ_CHUNK: usize = 64 * 1024;
/// Keep-alive, so an idle subscription outlives the idle timeout.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long `close` waits for the close to reach the server.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// One QUIC connection.
#[derive(Debug)]
pub(crate) struct QuicConn {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    /// Encodes requests within the server's limits.
    encoder: ClientCodec,
    /// Cloned for every stream's answers (the client's own limits).
    decoder: ClientCodec,
    next_id: AtomicU64,
    permits: Semaphore,
    subscribed: AtomicBool,
}

/// Connects to a `quic://` endpoint and says `HELLO` on the first stream.
pub(crate) async fn connect(
    config: &ClientConfig,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(Arc<QuicConn>, Session), ClientError> {
    let Endpoint::Quic { host, port } = &config.endpoint else {
        return Err(ClientError::ConfigInvalid {
            why: "a TCP endpoint reached the QUIC transport".into(),
        });
    };
    let failed = |reason: String| ClientError::ConnectFailed {
        endpoint: config.endpoint.to_string(),
        reason,
    };
    let addr = tokio::net::lookup_host((host.as_str(), *port))
        .await
        .map_err(|e| failed(format!("resolving {host} failed: {e}")))?
        .next()
        .ok_or_else(|| failed(format!("{host} resolved to no address")))?;
    server_name(&config.tls, host)?;
    let name = config.tls.server_name.as_deref().unwrap_or(host);
    let crypto = QuicClientConfig::try_from(Arc::clone(tls)).map_err(|e| {
        ClientError::tls(format!(
            "the TLS configuration cannot be used for QUIC: {e}"
        ))
    })?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    client_config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if addr.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = quinn::Endpoint::client(bind)
        .map_err(|e| failed(format!("opening a UDP socket failed: {e}")))?;
    let connection = endpoint
        .connect_with(client_config, addr, name)
        .map_err(|e| failed(e.to_string()))?
        .await
        .map_err(|e| handshake_error(config, e))?;

    let mut encoder = codec(config)?;
    let decoder = codec(config)?;
    let hello = async {
        let (_, mut reader) = open_request(
            &connection,
            &encoder,
            &decoder,
            HELLO_ID,
            &hello_request(config),
            true,
        )
        .await?;
        single_answer(&connection, &mut reader, HELLO_ID).await
    };
    let answer = match hello.await {
        Ok(answer) => answer,
        // With TLS 1.3 a server refuses a client certificate only after
        // the client's side of the handshake is done: that (or any other
        // close while saying HELLO) is a failure to connect.
        Err(e) => match connection.close_reason() {
            Some(reason) => return Err(handshake_error(config, reason)),
            None => return Err(e),
        },
    };
    let session = accept_hello(answer, config, &mut encoder)?;
    let conn = QuicConn {
        endpoint,
        connection,
        encoder,
        decoder,
        next_id: AtomicU64::new(HELLO_ID + 1),
        permits: Semaphore::new(config.max_in_flight),
        subscribed: AtomicBool::new(false),
    };
    Ok((Arc::new(conn), session))
}

/// Maps a failed QUIC handshake: TLS alerts (either side's) are
/// `CLIENT_TLS`, the rest `CLIENT_CONNECT_FAILED`.
fn handshake_error(config: &ClientConfig, e: quinn::ConnectionError) -> ClientError {
    let endpoint = &config.endpoint;
    let is_tls = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
    match &e {
        quinn::ConnectionError::TransportError(t) if is_tls(t.code) => ClientError::tls(format!(
            "the TLS handshake with {endpoint} failed: {e}; check that tls.ca_file holds the \
             CA that signed the server's certificate and that tls.server_name (default: the \
             endpoint's host) is a name in it"
        )),
        quinn::ConnectionError::ConnectionClosed(c) if is_tls(c.error_code) => {
            ClientError::tls(format!(
                "the server refused the TLS handshake with {endpoint}: {e}; if it requires \
                 client certificates, set tls.client_cert and tls.client_key"
            ))
        }
        quinn::ConnectionError::TimedOut => ClientError::ConnectFailed {
            endpoint: endpoint.to_string(),
            reason: "no QUIC answer from the server (is UDP reaching it?)".into(),
        },
        _ => ClientError::ConnectFailed {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        },
    }
}

/// The answer frames of one stream.
#[derive(Debug)]
pub(crate) struct FrameReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: ClientCodec,
}

impl FrameReader {
    /// The next frame, or `None` once the server has finished the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<(u64, Response)>, ClientError> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::protocol(format!(
                        "the answer could not be decoded: {e}"
                    )))
                }
            }
            match self.recv.read_chunk(READ_CHUNK, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Ok(None) if self.buf.is_empty() => return Ok(None),
                Ok(None) => {
                    return Err(ClientError::protocol(
                        "the server finished the stream in the middle of a frame",
                    ))
                }
                Err(quinn::ReadError::ConnectionLost(e)) => {
                    return Err(ClientError::lost(e.to_string()))
                }
                Err(e) => {
                    return Err(ClientError::protocol(format!(
                        "reading the answer failed: {e}"
                    )))
                }
            }
        }
    }
}

/// Opens a stream and writes `request` on it (finishing the send side if
/// `finish`).
async fn open_request(
    connection: &quinn::Connection,
    encoder: &ClientCodec,
    decoder: &ClientCodec,
    id: u64,
    request: &Request,
    finish: bool,
) -> Result<(quinn::SendStream, FrameReader), ClientError> {
    let frame = encoder
        .encode_parts(id, request)
        .map_err(ClientError::request_invalid)?;
    let (mut send, recv) = connection
        .open_bi()
        .await
        .map_err(|e| ClientError::lost(e.to_string()))?;
    let mut pieces: Vec<Bytes> = frame.pieces().cloned().collect();
    match send.write_all_chunks(&mut pieces).await {
        Ok(()) => {
            if finish {
                // Only fails if the stream is already closed; the read
                // below reports whatever happened.
                drop(send.finish());
            }
        }
        // The server stopped reading (it may have answered with an ERROR
        // already): read what it said.
        Err(quinn::WriteError::Stopped(code)) => {
            debug!(id, %code, "server stopped reading the request");
        }
        Err(quinn::WriteError::ConnectionLost(e)) => return Err(ClientError::lost(e.to_string())),
        Err(e) => {
            return Err(ClientError::protocol(format!(
                "writing the request failed: {e}"
            )))
        }
    }
    let reader = FrameReader {
        recv,
        buf: BytesMut::new(),
        decoder: decoder.clone(),
    };
    Ok((send, reader))
}

/// The single answer to request `id`.
async fn single_answer(
    connection: &quinn::Connection,
    reader: &mut FrameReader,
    id: u64,
) -> Result<Response, ClientError> {
    match reader.next().await? {
        Some((rid, answer)) if rid == id => Ok(answer),
        Some((0, Response::Error(e))) => Ok(Response::Error(e)),
        Some((rid, answer)) => Err(ClientError::protocol(format!(
            "expected the answer to request {id} but got {} for request {rid}",
            answer.kind()
        ))),
        None => Err(ended(connection)),
    }
}

/// The error for a stream that ended without (all of) its answer.
pub(crate) fn ended(connection: &quinn::Connection) -> ClientError {
    match connection.close_reason() {
        Some(reason) => ClientError::lost(reason.to_string()),
        None => ClientError::protocol("the server finished the stream without answering"),
    }
}

impl QuicConn {
    fn next_id(&self) -> u64 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    pub(crate) async fn open(
        &self,
        request: &Request,
        finish: bool,
    ) -> Result<(u64, quinn::SendStream, FrameReader), ClientError> {
        let id = self.next_id();
        let (send, reader) = open_request(
            &self.connection,
            &self.encoder,
            &self.decoder,
            id,
            request,
            finish,
        )
        .await?;
        Ok((id, send, reader))
    }

    /// Sends `request` on its own stream and reads its single answer.
    pub(crate) async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ClientError::lost("the connection closed"))?;
        let (id, _send, mut reader) = self.open(&request, true).await?;
        single_answer(&self.connection, &mut reader, id).await
    }

    /// Downloads one chunk of at most `max_bytes` on its own stream.
    pub(crate) async fn download(
        &self,
        message_id: MessageId,
        chunk_no: u32,
        max_bytes: u64,
    ) -> Result<DownloadedChunk, ClientError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ClientError::lost("the connection closed"))?;
        let request = Request::Download {
            message_id,
            chunk_no,
        };
        let (id, _send, mut reader) = self.open(&request, true).await?;
        let mut assembler = DownloadAssembler::new(max_bytes);
        loop {
            match reader.next().await? {
                Some((rid, Response::DownloadData(piece))) if rid == id => {
                    if let Some(chunk) = assembler
                        .push(piece)
                        .map_err(|e| ClientError::protocol(e.to_string()))?
                    {
                        return Ok(chunk);
                    }
                }
                Some((_, other)) => return Err(ClientError::unexpected("DOWNLOAD_DATA", other)),
                None => return Err(ended(&self.connection)),
            }
        }
    }

    /// Opens the subscription stream.
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        credit: u32,
        inline: bool,
    ) -> Result<(QuicSub, u32), ClientError> {
        if self.subscribed.swap(true, Ordering::AcqRel) {
            return Err(ClientError::AlreadySubscribed);
        }
        let flag = SubscribedFlag(Arc::clone(self));
        let (id, send, mut reader) = self
            .open(&Request::Subscribe { credit, inline }, false)
            .await?;
        let mut early = VecDeque::new();
        let credit = loop {
            match reader.next().await? {
                Some((
                    0,
                    Response::Push {
                        envelope,
                        order,
                        body,
                    },
                )) => {
                    if early.len() >= self.max_credit() as usize {
                        return Err(ClientError::protocol(
                            "the server pushed more than the granted credit",
                        ));
                    }
                    early.push_back(Push {
                        envelope,
                        order,
                        body,
                    });
                }
                Some((rid, Response::Subscribed { credit })) if rid == id => break credit,
                Some((_, other)) => return Err(ClientError::unexpected("SUBSCRIBED", other)),
                None => return Err(ended(&self.connection)),
            }
        };
        let sub = QuicSub {
            flag,
            send,
            reader,
            early,
            outbox: Vec::new(),
            done: false,
        };
        Ok((sub, credit))
    }

    pub(crate) fn max_credit(&self) -> u32 {
        self.encoder.limits().max_credit
    }

    /// The QUIC connection.
    pub(crate) fn connection(&self) -> &quinn::Connection {
        &self.connection
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.connection.close_reason().is_some()
    }

    /// Closes the connection and waits (bounded) for the close to be sent.
    pub(crate) async fn close(&self) {
        self.permits.close();
        self.connection
            .close(quinn::VarInt::from_u32(0), b"client closed");
        drop(tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await);
    }
}

/// Gives the connection's subscription slot back when dropped.
#[derive(Debug)]
struct SubscribedFlag(Arc<QuicConn>);

impl Drop for SubscribedFlag {
    fn drop(&mut self) {
        self.0.subscribed.store(false, Ordering::Release);
    }
}

/// The QUIC half of a subscription: its own stream.
#[derive(Debug)]
pub(crate) struct QuicSub {
    flag: SubscribedFlag,
    send: quinn::SendStream,
    reader: FrameReader,
    /// Pushes that arrived before `SUBSCRIBED`.
    early: VecDeque<Push>,
    /// Frames (or what is left of them) still to be written.
    outbox: Vec<Bytes>,
    done: bool,
}

impl QuicSub {
    pub(crate) async fn recv(&mut self) -> Option<Push> {
        if let Some(push) = self.early.pop_front() {
            return Some(push);
        }
        if self.done {
            return None;
        }
        let frame = self.reader.next().await;
        match frame {
            Ok(Some((
                _,
                Response::Push {
                    envelope,
                    order,
                    body,
                },
            ))) => {
                return Some(Push {
                    envelope,
                    order,
                    body,
                })
            }
            Ok(Some((_, Response::Error(e)))) => {
                warn!(error = %e, "the server ended the subscription")
            }
            Ok(Some((_, Response::Unsubscribed))) | Ok(None) => {
                debug!("the server ended the subscription")
            }
            Ok(Some((_, other))) => {
                warn!(kind = %other.kind(), "unexpected frame on the subscription stream")
            }
            Err(e) => debug!(error = %e, "subscription stream failed"),
        }
        self.done = true;
        None
    }

    /// Encodes `request` into the outbox (written by [`QuicSub::flush`]).
    fn commit(&mut self, request: &Request) -> Result<(), ClientError> {
        let conn = &self.flag.0;
        let frame = conn
            .encoder
            .encode_parts(conn.next_id(), request)
            .map_err(ClientError::request_invalid)?;
        self.outbox.extend(frame.pieces().cloned());
        Ok(())
    }

    /// Writes the outbox. Cancel-safe: quinn empties each chunk as it is
    /// written, so what a cancelled write left is written next time and
    /// frames are never torn.
    async fn flush(&mut self) -> Result<(), ClientError> {
        self.outbox.retain(|piece| !piece.is_empty());
        if self.outbox.is_empty() {
            return Ok(());
        }
        self.send
            .write_all_chunks(&mut self.outbox)
            .await
            .map_err(|e| match e {
                quinn::WriteError::ConnectionLost(e) => ClientError::lost(e.to_string()),
                other => ClientError::protocol(format!(
                    "writing on the subscription stream failed: {other}"
                )),
            })?;
        self.outbox.clear();
        Ok(())
    }

    /// Grants `owed` credit back; `owed` is zeroed once the `CREDIT` frame
    /// is committed to the outbox, which is then flushed (cancel-safe).
    pub(crate) async fn grant(&mut self, owed: &mut u32) -> Result<(), ClientError> {
        let add = (*owed).min(self.flag.0.max_credit());
        if add > 0 {
            self.commit(&Request::Credit { add })?;
            *owed -= add;
        }
        self.flush().await
    }

    pub(crate) async fn unsubscribe(mut self) -> Result<(), ClientError> {
        self.commit(&Request::Unsubscribe)?;
        self.flush().await?;
        drop(self.send.finish());
        loop {
            match self.reader.next().await? {
                Some((_, Response::Push { .. })) => {}
                Some((_, Response::Unsubscribed)) | None => return Ok(()),
                Some((_, other)) => return Err(ClientError::unexpected("UNSUBSCRIBED", other)),
            }
        }
    }
}
