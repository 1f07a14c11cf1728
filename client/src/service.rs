//! Service requests and providers: [`Client::request`] asks a national
//! service (PDS, SCR, EPS, or one an external system provides) and waits
//! for its answer; [`Client::register_provider`] makes the connection a
//! provider, whose [`ProviderCalls`] hands out requests to answer.
//!
//! Invariants and why:
//! - A service's refusal arrives as [`ClientError::Service`] with the
//!   precise stable code; transport failures keep their own errors, so a
//!   caller can tell "PDS said no" from "the network failed".
//! - Service requests are never retried by the client: duplicate
//!   elimination is the node's (by message id, for reliable interactions).
//! - A provider's calls queue is bounded; calls beyond it are dropped and
//!   the node retries or times them out, so a slow provider cannot make
//!   the client buffer without bound.

use bytes::Bytes;
use spine_protocol::{Request, Response, ServiceCall, ServiceFault};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::ClientError;

/// Optional parts of a service request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Act as this accredited system (else the organisation's default).
    pub asid: Option<String>,
    /// Message id for duplicate elimination (reliable interactions).
    pub message_id: Option<String>,
}

/// Calls for a provider to answer; see [`Client::register_provider`].
#[derive(Debug)]
pub struct ProviderCalls {
    client: Client,
    calls: mpsc::Receiver<ServiceCall>,
    /// The node's id for this provider.
    pub provider_id: u64,
    /// The service provided.
    pub service: String,
}

impl ProviderCalls {
    /// The next call; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<ServiceCall> {
        self.calls.recv().await
    }

    /// Answers call `correlation` with a body or a fault.
    pub async fn reply(
        &self,
        correlation: u64,
        result: Result<Bytes, ServiceFault>,
    ) -> Result<(), ClientError> {
        let request = Request::ProviderReply {
            correlation,
            result,
        };
        match self.client.call_raw(request).await? {
            Response::ProviderReplyOk => Ok(()),
            other => Err(ClientError::unexpected("PROVIDER_REPLY_OK", other)),
        }
    }
}

impl Client {
    /// Sends `body` to `service`'s `interaction` (full id, short id such
    /// as `QUPA_IN040000UK32`, or operation name such as `get`) and waits
    /// for the response body.
    pub async fn request(
        &self,
        service: &str,
        interaction: &str,
        body: Bytes,
        options: RequestOptions,
    ) -> Result<Bytes, ClientError> {
        let request = Request::ServiceRequest {
            service: service.to_owned(),
            interaction: interaction.to_owned(),
            asid: options.asid,
            message_id: options.message_id,
            body,
        };
        match self.call_raw(request).await? {
            Response::ServiceResponse(Ok(body)) => Ok(body),
            Response::ServiceResponse(Err(fault)) => Err(ClientError::Service(fault)),
            other => Err(ClientError::unexpected("SERVICE_RESPONSE", other)),
        }
    }

    /// Registers this client's connection as a provider of `service`
    /// (TCP/TLS endpoints; one service per connection). Calls queue up to
    /// `queue` deep. If the connection is lost the calls end (`next`
    /// returns `None`): register again on a new client.
    pub async fn register_provider(
        &self,
        service: &str,
        queue: usize,
    ) -> Result<ProviderCalls, ClientError> {
        let conn = self.connection().await?;
        let (calls, answer) = self
            .timed_call(
                "REGISTER_PROVIDER",
                conn.register_provider(service.to_owned(), queue),
            )
            .await?;
        match answer {
            Response::ProviderRegistered {
                provider_id,
                service,
            } => Ok(ProviderCalls {
                client: self.clone(),
                calls,
                provider_id,
                service,
            }),
            Response::Error(e) => Err(ClientError::Server(e)),
            other => Err(ClientError::unexpected("PROVIDER_REGISTERED", other)),
        }
    }
}
