//! The TCP listener (plain, or TLS via rustls when a certificate is set).
//!
//! Invariants and why:
//! - A connection over `max_connections` is answered with one `ERROR`
//!   frame (`BUSY`, request id 0) and closed, so a client learns why.
//! - The TLS handshake has `handshake_timeout` to finish; a client that
//!   stalls it is dropped instead of holding a connection slot.
//! - With client certificates configured, the verified leaf certificate's
//!   mailbox (`tls::mailbox_from_certificate`) is handed to the session.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use ractor::ActorRef;
use spine_protocol::{ServerCodec, WireErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::connection::start_connection;
use super::handler::error_response;
use super::stream::serve_stream;
use super::Context;

/// Accepts connections until `stop` turns true.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    context: Arc<Context>,
    supervisor: ActorRef<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let context = Arc::clone(&context);
                    let tls = tls.clone();
                    let supervisor = supervisor.clone();
                    connections.spawn(connection(socket, peer, tls, context, supervisor));
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accepting a TCP connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    context: Arc<Context>,
    supervisor: ActorRef<()>,
) {
    let _ = socket.set_nodelay(true);
    let Ok(slot) = Arc::clone(&context.connections).try_acquire_owned() else {
        metrics::counter!("spine_connections_refused_total").increment(1);
        // A TLS client cannot read a plaintext frame: it just sees the
        // connection close.
        if tls.is_none() {
            refuse(socket, &context).await;
        }
        return;
    };
    match tls {
        None => run(socket, None, peer, "tcp", context, supervisor).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(context.handshake_timeout, acceptor.accept(socket)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let cert_mailbox = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(crate::tls::mailbox_from_certificate);
            run(stream, cert_mailbox, peer, "tls", context, supervisor).await
        }
    }
    drop(slot);
}

async fn run<S>(
    stream: S,
    cert_mailbox: Option<spine_core::ids::MailboxId>,
    peer: SocketAddr,
    transport: &'static str,
    context: Arc<Context>,
    supervisor: ActorRef<()>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Some((actor, session)) =
        start_connection(&context, &supervisor, peer, cert_mailbox, transport).await
    else {
        return;
    };
    let (reader, writer) = tokio::io::split(stream);
    serve_stream(reader, writer, context, actor.clone(), session, 0).await;
    actor.stop(None);
}

/// Tells a client over the connection limit why it is refused.
async fn refuse(mut socket: TcpStream, context: &Context) {
    let Ok(codec) = ServerCodec::new(context.limits) else {
        return;
    };
    let mut buf = BytesMut::new();
    let busy = error_response(
        WireErrorCode::Busy,
        "the server is at its connection limit; retry shortly or use another node",
    );
    if codec.encode(0, &busy, &mut buf).is_ok() {
        let _ = tokio::time::timeout(context.handshake_timeout, socket.write_all(&buf)).await;
    }
    let _ = socket.shutdown().await;
}
