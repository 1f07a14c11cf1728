//! Provider registration over QUIC: `REGISTER_PROVIDER` on a stream of its
//! own that stays open and carries the node's `SERVICE_CALL`s (the stream
//! convention is in [`crate::quic`]).
//!
//! Invariants and why:
//! - The registration lasts exactly as long as its stream: the forwarding
//!   task holds the stream's send half, so dropping the calls' receiver
//!   ends the task, finishes the stream and so unregisters the provider at
//!   the node; a stream the node ends closes the calls' queue.
//! - The calls' queue is bounded; a call beyond it is dropped (the node
//!   retries or times it out), as over TCP, so a slow provider cannot make
//!   the client buffer without bound.

use std::sync::Arc;

use spine_protocol::{Request, Response, ServiceCall};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::error::ClientError;
use crate::quic::{ended, FrameReader, QuicConn};

impl QuicConn {
    /// Registers this connection as a provider of `service`; answers the
    /// calls' queue (of `queue` calls) and the node's answer
    /// (`PROVIDER_REGISTERED`, or an `ERROR`).
    pub(crate) async fn register_provider(
        self: &Arc<Self>,
        service: String,
        queue: usize,
    ) -> Result<(mpsc::Receiver<ServiceCall>, Response), ClientError> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (id, send, mut reader) = self
            .open(&Request::RegisterProvider { service }, false)
            .await?;
        let answer = loop {
            match reader.next().await? {
                // A call may be written before the answer reaches us.
                Some((0, Response::ServiceCall(call))) => offer(&tx, call),
                Some((rid, answer)) if rid == id => break answer,
                Some((0, Response::Error(e))) => break Response::Error(e),
                Some((_, other)) => {
                    return Err(ClientError::unexpected("PROVIDER_REGISTERED", other))
                }
                None => return Err(ended(self.connection())),
            }
        };
        if matches!(answer, Response::ProviderRegistered { .. }) {
            tokio::spawn(forward(send, reader, tx));
        }
        Ok((rx, answer))
    }
}

/// Queues `call` if there is room.
fn offer(tx: &mpsc::Sender<ServiceCall>, call: ServiceCall) {
    if tx.try_send(call).is_err() {
        warn!(
            "service call beyond the provider's queue dropped (the node retries or times it out)"
        );
    }
}

/// Forwards calls from the registration stream until it ends or the
/// receiver is dropped; then finishes the stream (unregistering).
async fn forward(
    mut send: quinn::SendStream,
    mut reader: FrameReader,
    tx: mpsc::Sender<ServiceCall>,
) {
    loop {
        tokio::select! {
            () = tx.closed() => break,
            frame = reader.next() => match frame {
                Ok(Some((0, Response::ServiceCall(call)))) => offer(&tx, call),
                Ok(Some((_, Response::Error(e)))) => {
                    warn!(error = %e, "the server ended the provider registration");
                    break;
                }
                Ok(Some((_, other))) => {
                    warn!(kind = %other.kind(), "unexpected frame on the provider stream");
                }
                Ok(None) => {
                    debug!("the server ended the provider registration");
                    break;
                }
                Err(e) => {
                    debug!(error = %e, "provider stream failed");
                    break;
                }
            },
        }
    }
    drop(send.finish());
}
