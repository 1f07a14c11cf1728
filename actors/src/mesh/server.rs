//! [`MeshServer`]: the MESH API's listener: TCP, TLS when a certificate is
//! configured, HTTP/1.1 with keep-alive (hyper), one task per connection.
//!
//! Invariants and why:
//! - At most `max_connections` connections; one more is closed at accept
//!   (counted), so a flood of clients cannot exhaust file descriptors.
//! - A client has `header_timeout` to send each request's headers (hyper's
//!   header read timeout: slow-loris clients are dropped) and the TLS
//!   handshake has the same bound.
//! - Stopping stops accepting and ends idle connections; requests in
//!   progress finish (hyper's graceful shutdown) within a bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use spine_core::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::config::MeshConfig;
use super::service::{CertIdentity, Mesh};
use crate::node::NodeHandle;
use crate::transport::NetworkConfig;

/// How long stopping waits for requests in progress.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the MESH API could not start.
#[derive(Debug, thiserror::Error)]
pub enum MeshServerError {
    /// The configuration is unusable.
    #[error("invalid MESH configuration: {0}")]
    Config(String),
    /// The listener could not bind.
    #[error(
        "cannot listen for MESH on {addr}: {source}; pick a free port or stop whatever holds it"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl ErrorCode for MeshServerError {
    fn code(&self) -> &'static str {
        match self {
            MeshServerError::Config(_) => "MESH_CONFIG_INVALID",
            MeshServerError::Bind { .. } => "MESH_BIND_FAILED",
            MeshServerError::Tls(e) => e.code(),
        }
    }
}

/// The running MESH listener.
#[derive(Debug)]
pub struct MeshServer {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn acceptor(network: &NetworkConfig) -> Result<Option<TlsAcceptor>, MeshServerError> {
    match (&network.tls_cert, &network.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsAcceptor::from(crate::tls::server_config(
            cert,
            key,
            network.client_ca.as_deref(),
            network.require_client_cert,
            &[b"http/1.1"],
        )?))),
        _ => Ok(None),
    }
}

impl MeshServer {
    /// Checks the configuration and TLS material without binding.
    pub fn check(
        config: &MeshConfig,
        network: &NetworkConfig,
        max_record_bytes: u64,
    ) -> Result<(), MeshServerError> {
        config
            .validate(network.has_tls(), max_record_bytes)
            .map_err(MeshServerError::Config)?;
        acceptor(network)?;
        Ok(())
    }

    /// Binds and starts serving.
    pub async fn start(
        node: NodeHandle,
        config: MeshConfig,
        network: &NetworkConfig,
        max_record_bytes: u64,
    ) -> Result<MeshServer, MeshServerError> {
        MeshServer::check(&config, network, max_record_bytes)?;
        let tls = acceptor(network)?;
        let addr: SocketAddr = config
            .listen
            .parse()
            .map_err(|_| MeshServerError::Config(format!("{:?} is not IP:PORT", config.listen)))?;
        let listener =
            crate::listen::bind(addr).map_err(|source| MeshServerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| MeshServerError::Bind { addr, source })?;
        tracing::info!(
            addr = %local,
            tls = tls.is_some(),
            sandbox = config.sandbox,
            "MESH API listening ({})",
            if tls.is_some() { "HTTPS" } else { "plain HTTP" }
        );
        let (stop, stopped) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let mesh = Arc::new(Mesh::new(node, config, network.require_client_cert));
        let is_tls = tls.is_some();
        let task = tokio::spawn(accept_loop(listener, tls, mesh, connections, stopped));
        Ok(MeshServer {
            addr: local,
            tls: is_tls,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Stops accepting and closes connections (requests in progress get
    /// a bounded grace period).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mesh: Arc<Mesh>,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        metrics::counter!("spine_mesh_connections_refused_total").increment(1);
                        drop(socket);
                        continue;
                    };
                    let mesh = Arc::clone(&mesh);
                    let tls = tls.clone();
                    let stop = stop.clone();
                    connections.spawn(async move {
                        let _slot = slot;
                        connection(socket, tls, mesh, stop).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a MESH connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(
    socket: TcpStream,
    tls: Option<TlsAcceptor>,
    mesh: Arc<Mesh>,
    stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    metrics::gauge!("spine_mesh_connections").increment(1.0);
    let header_timeout = Duration::from_millis(mesh.config.header_timeout_ms);
    match tls {
        None => serve(socket, mesh, stop, CertIdentity::None).await,
        Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(socket)).await
        {
            Ok(Ok(stream)) => {
                let cert = match stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                {
                    None => CertIdentity::None,
                    Some(c) => crate::tls::mailbox_from_certificate(c)
                        .map_or(CertIdentity::Unmapped, CertIdentity::Mailbox),
                };
                serve(stream, mesh, stop, cert).await
            }
            Ok(Err(e)) => {
                metrics::counter!("spine_mesh_tls_failures_total").increment(1);
                tracing::debug!(error = %e, "MESH TLS handshake failed");
            }
            Err(_) => {
                metrics::counter!("spine_mesh_tls_failures_total").increment(1);
            }
        },
    }
    metrics::gauge!("spine_mesh_connections").decrement(1.0);
}

async fn serve<S>(stream: S, mesh: Arc<Mesh>, mut stop: watch::Receiver<bool>, cert: CertIdentity)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = Duration::from_millis(mesh.config.header_timeout_ms);
    let idle = Duration::from_millis(mesh.config.idle_timeout_ms);
    let service = service_fn(move |request| Arc::clone(&mesh).serve(request, cert.clone()));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Some(header_timeout.min(idle)))
        .max_buf_size(64 << 10);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "MESH connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(STOP_GRACE, conn).await;
        }
    }
}
