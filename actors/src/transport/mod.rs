//! The native protocol's network transports: TCP (TLS when a certificate
//! is configured) and QUIC, both in front of a [`NodeHandle`].
//!
//! Shape: a listener task per transport accepts connections; each
//! connection gets a [`connection::ConnectionActor`] (its session: who it
//! authenticated as, its push subscription), spawned linked to the
//! transport supervisor actor, which logs and counts connection failures
//! (a failed connection is closed, never restarted: its client reconnects).
//! Byte streams (the TCP connection, or each QUIC bidirectional stream)
//! are driven by [`stream::serve_stream`]: it decodes frames with the
//! sans-IO `spine-protocol` codec and serves each authenticated request
//! itself (session requests go to the actor); answers go back through a
//! bounded outbox to one writer task per stream.
//!
//! Invariants and why:
//! - Bounded everywhere: connections (`max_connections`, more are answered
//!   `BUSY` and closed), requests in flight per connection (`max_in_flight`:
//!   a full connection stops reading, which is TCP/QUIC backpressure on
//!   the client), frame sizes (codec limits), each stream's outbox, and the
//!   bytes a connection makes the server hold
//!   (`max_connection_buffered_bytes`: large frames being received and
//!   downloaded chunks not yet written).
//! - Before `HELLO` succeeds a connection is served only `HELLO` and
//!   `PING`, may send no frame longer than a `HELLO` can be, and is closed
//!   if it has not authenticated within `handshake_timeout`: an
//!   unauthenticated peer holds one connection slot, briefly, and almost
//!   no memory.
//! - A connection acts only for the mailbox it authenticated as
//!   ([`handler`]); before `HELLO` succeeds only `PING` is served.
//! - A stream that cannot be split into frames any more (a fatal decode
//!   error) is answered with `ERROR` (request id 0) and closed; any other
//!   bad frame is answered with `ERROR` for its request id and the stream
//!   goes on.

pub mod config;
mod connection;
mod handler;
mod quic;
mod stream;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use spine_core::ErrorCode;
use spine_protocol::Limits;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

pub use config::NetworkConfig;

use crate::node::NodeHandle;

/// Why the transports could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration is unusable.
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// A listener could not bind.
    #[error("cannot listen for {transport} on {addr}: {source}; pick a free port or stop whatever holds it")]
    Bind {
        /// `native` or `quic`.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The supervisor actor could not start.
    #[error("cannot start the transport supervisor: {0}")]
    Supervisor(String),
}

impl ErrorCode for TransportError {
    fn code(&self) -> &'static str {
        match self {
            TransportError::Config(_) => "NET_CONFIG_INVALID",
            TransportError::Bind { .. } => "NET_BIND_FAILED",
            TransportError::Tls(e) => e.code(),
            TransportError::Supervisor(_) => "NET_SUPERVISOR_FAILED",
        }
    }
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) node: NodeHandle,
    pub(crate) limits: Limits,
    pub(crate) server_name: String,
    pub(crate) piece_bytes: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) require_client_cert: bool,
    pub(crate) handshake_timeout: Duration,
    /// Bytes one connection may make the server hold.
    pub(crate) connection_buffered_bytes: u64,
    /// Largest body pushed inline to a subscriber that asked for bodies.
    pub(crate) push_inline_bytes: usize,
    /// Bounds connections across both transports.
    pub(crate) connections: Arc<Semaphore>,
}

/// The running transports.
#[derive(Debug)]
pub struct Transports {
    native: Option<SocketAddr>,
    quic: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    supervisor: ActorRef<()>,
}

impl Transports {
    /// Binds and starts the configured listeners. QUIC needs TLS material:
    /// without `tls_cert` it stays off (logged), and TCP speaks plain text.
    pub async fn start(
        node: NodeHandle,
        config: &NetworkConfig,
    ) -> Result<Transports, TransportError> {
        config.validate().map_err(TransportError::Config)?;
        let limits = Limits {
            max_payload_bytes: config.max_payload_bytes,
            ..Limits::default()
        };
        limits
            .validate()
            .map_err(|e| TransportError::Config(e.to_string()))?;
        let context = Arc::new(Context {
            node,
            limits,
            server_name: config.server_name.clone(),
            piece_bytes: config.download_piece_bytes as usize,
            max_in_flight: config.max_in_flight,
            require_client_cert: config.require_client_cert,
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            connection_buffered_bytes: config.max_connection_buffered_bytes,
            push_inline_bytes: config.push_inline_bytes.min(config.max_payload_bytes) as usize,
            connections: Arc::new(Semaphore::new(config.max_connections)),
        });
        let (supervisor, _) = Actor::spawn(None, TransportSupervisor, ())
            .await
            .map_err(|e| TransportError::Supervisor(e.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        let mut running = Transports {
            native: None,
            quic: None,
            stop,
            tasks: Vec::new(),
            supervisor: supervisor.clone(),
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => None,
        };
        if config.native_enabled {
            let addr = parse(&config.native_listen)?;
            let acceptor = match &tls {
                Some((cert, key)) => {
                    Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
                        cert,
                        key,
                        config.client_ca.as_deref(),
                        config.require_client_cert,
                        &[crate::tls::NATIVE_ALPN],
                    )?))
                }
                None => None,
            };
            let listener = crate::listen::bind(addr).map_err(|source| TransportError::Bind {
                transport: "native",
                addr,
                source,
            })?;
            let local = listener
                .local_addr()
                .map_err(|source| TransportError::Bind {
                    transport: "native",
                    addr,
                    source,
                })?;
            tracing::info!(addr = %local, tls = acceptor.is_some(), mtls = config.require_client_cert, "native protocol listening (TCP)");
            running.native = Some(local);
            running.tasks.push(tokio::spawn(tcp::accept_loop(
                listener,
                acceptor,
                Arc::clone(&context),
                supervisor.clone(),
                stopped.clone(),
            )));
        }
        if config.quic_enabled {
            match &tls {
                Some((cert, key)) => {
                    let addr = parse(&config.quic_listen)?;
                    let mut server = crate::tls::quic_server_config(
                        cert,
                        key,
                        config.client_ca.as_deref(),
                        config.require_client_cert,
                    )?;
                    let mut transport = quinn::TransportConfig::default();
                    transport
                        .max_idle_timeout(quinn::IdleTimeout::try_from(quic::IDLE_TIMEOUT).ok());
                    // One stream per request: allow as many concurrent
                    // streams as requests may be in flight, or clients wait
                    // for stream credit instead of the node.
                    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(
                        u32::try_from(config.max_in_flight).unwrap_or(u32::MAX),
                    ));
                    server.transport_config(Arc::new(transport));
                    let endpoint = quinn::Endpoint::server(server, addr).map_err(|source| {
                        TransportError::Bind {
                            transport: "quic",
                            addr,
                            source,
                        }
                    })?;
                    let local = endpoint
                        .local_addr()
                        .map_err(|source| TransportError::Bind {
                            transport: "quic",
                            addr,
                            source,
                        })?;
                    tracing::info!(addr = %local, mtls = config.require_client_cert, "native protocol listening (QUIC, TLS 1.3)");
                    running.quic = Some(local);
                    running.tasks.push(tokio::spawn(quic::accept_loop(
                        endpoint,
                        Arc::clone(&context),
                        supervisor.clone(),
                        stopped,
                    )));
                }
                None => tracing::info!(
                    "QUIC is off: it always uses TLS 1.3 and no tls_cert/tls_key is configured \
                     (`spine certs dev DIR` writes development certificates)"
                ),
            }
        }
        Ok(running)
    }

    /// Checks the configuration and loads the TLS material without binding
    /// anything, so `spine serve` can refuse a bad certificate path before
    /// it spends time recovering the log.
    pub fn check(config: &NetworkConfig) -> Result<(), TransportError> {
        config.validate().map_err(TransportError::Config)?;
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            let ca = config.client_ca.as_deref();
            crate::tls::server_config(
                cert,
                key,
                ca,
                config.require_client_cert,
                &[crate::tls::NATIVE_ALPN],
            )?;
            if config.quic_enabled {
                crate::tls::quic_server_config(cert, key, ca, config.require_client_cert)?;
            }
        }
        Ok(())
    }

    /// The bound TCP address, if the native TCP transport runs.
    pub fn native_addr(&self) -> Option<SocketAddr> {
        self.native
    }

    /// The bound UDP address, if QUIC runs.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic
    }

    /// Stops accepting connections and closes the open ones.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.supervisor.stop(None);
    }
}

fn parse(text: &str) -> Result<SocketAddr, TransportError> {
    text.parse()
        .map_err(|_| TransportError::Config(format!("{text:?} is not an IP:PORT address")))
}

/// Supervises connection actors: a failed connection is logged and
/// counted; it is not restarted (its socket is gone; the client
/// reconnects).
struct TransportSupervisor;

impl Actor for TransportSupervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, why) = event {
            metrics::counter!("spine_connection_failures_total").increment(1);
            tracing::warn!(actor = %cell.get_id(), error = %why, "connection actor failed; its connection is closed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
