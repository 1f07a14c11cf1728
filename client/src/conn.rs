//! [`Conn`]: one authenticated connection, over TCP/TLS ([`crate::stream`])
//! or QUIC ([`crate::quic`]), and the `HELLO` exchange both share.

use std::sync::Arc;

use spine_core::ids::MessageId;
use spine_protocol::{BatchItem, ClientCodec, DownloadedChunk, Password, Request, Response};

use crate::client::{Push, Session};
use crate::config::ClientConfig;
use crate::endpoint::Endpoint;
use crate::error::ClientError;
use crate::quic::{QuicConn, QuicSub};
use crate::stream::{StreamConn, StreamSub};

/// The request id of `HELLO`, the first request of every connection.
pub(crate) const HELLO_ID: u64 = 1;

/// A live (or dead, see [`Conn::is_closed`]) connection.
#[derive(Clone, Debug)]
pub(crate) enum Conn {
    Stream(Arc<StreamConn>),
    Quic(Arc<QuicConn>),
}

/// A subscription's transport-specific half.
#[derive(Debug)]
pub(crate) enum SubInner {
    Stream(StreamSub),
    Quic(QuicSub),
}

impl Conn {
    /// Connects and authenticates (not bounded in time: the caller is).
    pub(crate) async fn connect(
        config: &ClientConfig,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<(Conn, Session), ClientError> {
        match &config.endpoint {
            Endpoint::Native { .. } => {
                let (conn, session) = crate::stream::connect(config, tls).await?;
                Ok((Conn::Stream(conn), session))
            }
            Endpoint::Quic { .. } => {
                let Some(tls) = tls else {
                    return Err(ClientError::tls("QUIC needs a TLS configuration"));
                };
                let (conn, session) = crate::quic::connect(config, tls).await?;
                Ok((Conn::Quic(conn), session))
            }
        }
    }

    /// Sends a request with one answer and waits for it (an `ERROR` frame
    /// is returned as `Response::Error`).
    pub(crate) async fn call(&self, request: Request) -> Result<Response, ClientError> {
        match self {
            Conn::Stream(c) => c.call(request).await,
            Conn::Quic(c) => c.call(request).await,
        }
    }

    /// Sends one message; over TCP/TLS it may be coalesced with other
    /// queued sends into one `SEND_BATCH` (see [`crate::coalesce`]).
    pub(crate) async fn send(&self, item: BatchItem) -> Result<Response, ClientError> {
        match self {
            Conn::Stream(c) => c.send(item).await,
            // Boxed (as QUIC allocates per request anyway): the QUIC call
            // is a large future, and would size every TCP send's too.
            Conn::Quic(c) => {
                Box::pin(c.call(Request::Send {
                    header: item.header,
                    body: item.body,
                }))
                .await
            }
        }
    }

    /// Registers this connection as a provider.
    pub(crate) async fn register_provider(
        &self,
        service: String,
        queue: usize,
    ) -> Result<
        (
            tokio::sync::mpsc::Receiver<spine_protocol::ServiceCall>,
            Response,
        ),
        ClientError,
    > {
        match self {
            Conn::Stream(c) => c.register_provider(service, queue).await,
            Conn::Quic(c) => c.register_provider(service, queue).await,
        }
    }

    /// Downloads and reassembles one chunk of at most `max_bytes`.
    pub(crate) async fn download(
        &self,
        message_id: MessageId,
        chunk_no: u32,
        max_bytes: u64,
    ) -> Result<DownloadedChunk, ClientError> {
        match self {
            Conn::Stream(c) => c.download(message_id, chunk_no, max_bytes).await,
            Conn::Quic(c) => c.download(message_id, chunk_no, max_bytes).await,
        }
    }

    /// Starts push delivery; returns the transport half and the credit the
    /// server confirmed.
    pub(crate) async fn subscribe(
        &self,
        credit: u32,
        inline: bool,
    ) -> Result<(SubInner, u32), ClientError> {
        match self {
            Conn::Stream(c) => {
                let (sub, credit) = c.subscribe(credit, inline).await?;
                Ok((SubInner::Stream(sub), credit))
            }
            Conn::Quic(c) => {
                let (sub, credit) = c.subscribe(credit, inline).await?;
                Ok((SubInner::Quic(sub), credit))
            }
        }
    }

    /// The largest credit a subscription on this connection may hold.
    pub(crate) fn max_credit(&self) -> u32 {
        match self {
            Conn::Stream(c) => c.max_credit(),
            Conn::Quic(c) => c.max_credit(),
        }
    }

    /// Whether the connection has ended (the next call must reconnect).
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Conn::Stream(c) => c.is_closed(),
            Conn::Quic(c) => c.is_closed(),
        }
    }

    /// Closes the connection gracefully (bounded in time).
    pub(crate) async fn close(&self) {
        match self {
            Conn::Stream(c) => c.close().await,
            Conn::Quic(c) => c.close().await,
        }
    }
}

impl SubInner {
    pub(crate) async fn recv(&mut self) -> Option<Push> {
        match self {
            SubInner::Stream(s) => s.recv().await,
            SubInner::Quic(s) => s.recv().await,
        }
    }

    /// Grants `owed` credit back, zeroing it once committed (cancel-safe).
    pub(crate) async fn grant(&mut self, owed: &mut u32) -> Result<(), ClientError> {
        match self {
            SubInner::Stream(s) => s.grant(owed).await,
            SubInner::Quic(s) => s.grant(owed).await,
        }
    }

    pub(crate) async fn unsubscribe(self) -> Result<(), ClientError> {
        match self {
            SubInner::Stream(s) => s.unsubscribe().await,
            SubInner::Quic(s) => s.unsubscribe().await,
        }
    }
}

/// The `HELLO` request for `config`.
pub(crate) fn hello_request(config: &ClientConfig) -> Request {
    Request::Hello {
        client_name: config.client_name.clone(),
        mailbox: config.mailbox.clone(),
        password: Password::new(config.password.clone()),
    }
}

/// The session `HELLO`'s answer establishes, with the encoder narrowed to
/// the server's limits.
pub(crate) fn accept_hello(
    answer: Response,
    config: &ClientConfig,
    encoder: &mut ClientCodec,
) -> Result<Session, ClientError> {
    match answer {
        Response::HelloOk {
            mailbox,
            server_name,
            limits,
        } => {
            encoder
                .set_limits(config.limits.with_server(&limits))
                .map_err(|e| {
                    ClientError::protocol(format!("the server advertised unusable limits: {e}"))
                })?;
            Ok(Session {
                mailbox,
                server_name,
                limits,
            })
        }
        other => Err(ClientError::unexpected("HELLO_OK", other)),
    }
}

/// A codec for `config`'s limits.
pub(crate) fn codec(config: &ClientConfig) -> Result<ClientCodec, ClientError> {
    ClientCodec::new(config.limits).map_err(|e| ClientError::ConfigInvalid { why: e.to_string() })
}
