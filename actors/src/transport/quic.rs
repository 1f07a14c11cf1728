//! The QUIC endpoint (quinn, always TLS 1.3, ALPN `spine/1`).
//!
//! Stream convention (the client in `spine-client` follows it): the client
//! authenticates with `HELLO` on its first bidirectional stream; every
//! other request goes on a stream of its own (the client writes the
//! request and finishes its side; the server answers on the same stream
//! and then finishes), so requests never wait behind each other's bytes.
//! A subscription keeps its stream open: pushes arrive on it and `CREDIT`
//! frames go out on it; ending the stream ends the subscription.
//!
//! Invariants and why:
//! - Authentication is per connection: the connection actor is shared by
//!   all its streams, so a stream opened after `HELLO` acts for that
//!   mailbox and one opened by an unauthenticated connection gets
//!   `NOT_AUTHENTICATED`.
//! - The in-flight bound is per connection (shared by its streams), and
//!   quinn bounds the number of concurrent streams a client may open.
//! - Connections over `max_connections` are refused at the handshake.

use std::sync::Arc;

use quinn::{Endpoint, Incoming};
use ractor::ActorRef;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;

use super::connection::start_connection;
use super::stream::serve_stream;
use super::Context;

/// Accepts connections until `stop` turns true, then closes the endpoint.
pub(crate) async fn accept_loop(
    endpoint: Endpoint,
    context: Arc<Context>,
    supervisor: ActorRef<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    connections.spawn(connection(
                        incoming,
                        Arc::clone(&context),
                        supervisor.clone(),
                    ));
                }
                None => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    endpoint.close(0u32.into(), b"server shutting down");
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// How long a closing connection waits for its streams to flush and for
/// the client to close first.
const FLUSH_BEFORE_CLOSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Idle time after which a silent QUIC connection is dropped (clients keep
/// alive every 5 s), so a client whose close packet was lost does not hold
/// a connection slot for long.
pub(crate) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn connection(incoming: Incoming, context: Arc<Context>, supervisor: ActorRef<()>) {
    let Ok(slot) = Arc::clone(&context.connections).try_acquire_owned() else {
        metrics::counter!("spine_connections_refused_total").increment(1);
        incoming.refuse();
        return;
    };
    let peer = incoming.remote_address();
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "QUIC connection refused");
            return;
        }
    };
    let conn = match tokio::time::timeout(context.handshake_timeout, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "QUIC handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "QUIC handshake timed out");
            return;
        }
    };
    let cert_mailbox = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().and_then(crate::tls::mailbox_from_certificate));
    let Some((actor, session)) =
        start_connection(&context, &supervisor, peer, cert_mailbox, "quic").await
    else {
        return;
    };
    let mut streams = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let stream_id = send.id().index();
                    streams.spawn(serve_stream(
                        recv,
                        send,
                        Arc::clone(&context),
                        actor.clone(),
                        Arc::clone(&session),
                        stream_id,
                    ));
                }
                Err(_) => break, // closed by the client, timed out, or refused
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            _ = actor_stopped(&actor) => break,
        }
    }
    // Let streams write what they have (e.g. the answer to a last failed
    // HELLO) and give the client a moment to read it and close: a QUIC
    // close discards stream data the peer has not acknowledged yet.
    let _ = tokio::time::timeout(FLUSH_BEFORE_CLOSE, async {
        while streams.join_next().await.is_some() {}
    })
    .await;
    streams.abort_all();
    while streams.join_next().await.is_some() {}
    actor.stop(None);
    let _ = tokio::time::timeout(FLUSH_BEFORE_CLOSE, conn.closed()).await;
    conn.close(0u32.into(), b"bye");
    drop(slot);
}

/// Resolves once the connection actor has stopped (e.g. after repeated
/// failed `HELLO`s), so the connection is closed with it.
async fn actor_stopped(actor: &ActorRef<super::connection::ConnMsg>) {
    loop {
        if matches!(
            actor.get_status(),
            ractor::ActorStatus::Stopped | ractor::ActorStatus::Stopping
        ) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
