//! Spine services on the node: one service actor per service routing
//! requests to providers, the built-in reference services, and external
//! providers that register over the native protocol.
//!
//! - [`config`] — `[services]` settings.
//! - [`router_actor`] — the service actor (one per service).
//! - [`reference_actor`] — the built-in PDS, SCR and EPS provider.
//! - [`supervised`] — what outlives those actors so the node supervisor
//!   can replace one that failed: their slots, the provider registries,
//!   the reference services' rebuild from the log.
//! - [`ServiceHub`] — what the node handle calls: request, register a
//!   provider, answer as a provider.
//!
//! Invariants and why:
//! - A request is checked before it is routed: body size, the interaction
//!   is in the service directory and belongs to the named service, and the
//!   caller (the authenticated mailbox's organisation, optionally a named
//!   ASID) is accredited for it. Nothing unchecked reaches a provider.
//! - No caller waits forever: the router answers every request by its
//!   deadline, and the hub adds a bound of its own above that in case the
//!   service actor itself is gone. A request in flight on a service actor
//!   that fails gets `SVC_UNAVAILABLE` as soon as the actor is gone (its
//!   answer channel closes); a new request waits for the supervisor's
//!   replacement at most `request_wait_ms`.
//! - An external provider is identified by a node-unique id; its replies
//!   count only for requests currently placed with it (so one provider
//!   cannot answer another's), and it is unregistered when its connection
//!   (or the stream it registered on) ends, so a dead provider is routed
//!   around.

pub mod config;
pub mod reference_actor;
pub mod router_actor;
pub mod supervised;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::MessagingErr;
use spine_core::directory::Directory;
use spine_core::ids::MailboxId;
use spine_core::services::{
    Asid, Correlation, ProviderId, Routed, ServiceDirectory, ServiceError, ServiceName,
};
use spine_core::time::Clock;
use tokio::sync::{mpsc, oneshot};

pub use config::ServicesConfig;
use reference_actor::ReferenceMsg;
pub use router_actor::ProviderCall;
use router_actor::{ProviderSink, RouterMsg};
use supervised::{ActorSlot, RouterSlot};

use crate::node::sink::LogSink;

/// A service request as a caller makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    /// The service's name (`pds`).
    pub service: String,
    /// The interaction: full id, short id or operation name.
    pub interaction: String,
    /// The accredited system to act as, if the caller names one.
    pub asid: Option<String>,
    /// A message id for duplicate elimination (reliable interactions).
    pub message_id: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// A provider's registration: calls arrive on `calls`.
#[derive(Debug)]
pub struct ProviderRegistration {
    /// Its id.
    pub id: ProviderId,
    /// The service.
    pub service: ServiceName,
    /// Requests to serve.
    pub calls: mpsc::Receiver<ProviderCall>,
}

/// The node's services.
pub struct ServiceHub {
    config: ServicesConfig,
    directory: Arc<ServiceDirectory>,
    mailboxes: Arc<Directory>,
    /// One per service, in directory order (child `ServiceRouter(i)`).
    routers: Vec<RouterSlot>,
    reference: Arc<ActorSlot<ReferenceMsg>>,
    sink: LogSink,
    clock: Arc<dyn Clock>,
    /// How long a request waits for a service actor being replaced.
    restart_wait: Duration,
    next_provider: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for ServiceHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceHub")
            .field(
                "services",
                &self.routers.iter().map(|s| &s.service).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn unavailable(why: impl Into<String>) -> ServiceError {
    ServiceError::Unavailable { why: why.into() }
}

impl ServiceHub {
    /// The hub of `directory`'s services with their built-in providers
    /// registered. Its actors (the reference services, one router per
    /// service) are started, and restarted, by the node supervisor.
    pub fn new(
        config: ServicesConfig,
        directory: Arc<ServiceDirectory>,
        mailboxes: Arc<Directory>,
        sink: LogSink,
        clock: Arc<dyn Clock>,
        restart_wait: Duration,
    ) -> Result<ServiceHub, String> {
        config.validate()?;
        let hub = ServiceHub {
            routers: directory
                .services()
                .map(|s| RouterSlot::new(s.name.clone()))
                .collect(),
            config,
            directory: Arc::clone(&directory),
            mailboxes,
            reference: Arc::new(ActorSlot::empty()),
            sink,
            clock,
            restart_wait,
            next_provider: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        };
        for (slot, service) in hub.routers.iter().zip(directory.services()) {
            if let Some(builtin) = service.builtin {
                let id = hub.next_provider.fetch_add(1, Ordering::Relaxed);
                slot.register(id, ProviderSink::Builtin(builtin), hub.config.max_providers)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(hub)
    }

    fn slot(&self, service: &ServiceName) -> Option<&RouterSlot> {
        self.routers.iter().find(|s| s.service == *service)
    }

    /// Casts `msg` to `slot`'s service actor, waiting (at most
    /// `restart_wait`) while the supervisor replaces a failed one. A
    /// message that could not be cast was not delivered, so casting it
    /// again is safe.
    async fn cast_router(&self, slot: &RouterSlot, msg: RouterMsg) -> Result<(), ServiceError> {
        let deadline = tokio::time::Instant::now() + self.restart_wait;
        let mut msg = msg;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(unavailable("the service is stopping"));
            }
            if let Some(router) = slot.actor.get() {
                match router.cast(msg) {
                    Ok(()) => return Ok(()),
                    Err(MessagingErr::SendErr(back)) => msg = back,
                    Err(_) => return Err(unavailable("the service is stopping")),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unavailable(format!(
                    "the service actor of {} is restarting and did not come back within {} ms; retry shortly",
                    slot.service,
                    self.restart_wait.as_millis()
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The service directory.
    pub fn directory(&self) -> &ServiceDirectory {
        &self.directory
    }

    /// Checks and routes a request from `caller`; answers the response body.
    pub async fn request(
        &self,
        caller: &MailboxId,
        request: ServiceRequest,
    ) -> Result<Bytes, ServiceError> {
        let started = std::time::Instant::now();
        let result = self.route(caller, request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(
                ServiceError::Timeout { .. }
                | ServiceError::NoProvider { .. }
                | ServiceError::ProviderLost { .. }
                | ServiceError::Busy { .. }
                | ServiceError::Unavailable { .. },
            ) => "failed",
            Err(_) => "refused",
        };
        metrics::counter!("spine_service_requests_total", "outcome" => outcome).increment(1);
        metrics::histogram!("spine_service_request_seconds")
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn route(
        &self,
        caller: &MailboxId,
        request: ServiceRequest,
    ) -> Result<Bytes, ServiceError> {
        if request.body.len() > self.config.max_body_bytes {
            return Err(ServiceError::BodyTooLarge {
                len: request.body.len(),
                max: self.config.max_body_bytes,
            });
        }
        let mailbox =
            self.mailboxes
                .mailbox(caller)
                .ok_or_else(|| ServiceError::NotAccredited {
                    why: format!("mailbox {caller} is not in the directory"),
                })?;
        let interaction = self
            .directory
            .resolve(&request.service, &request.interaction)?;
        let asid = match &request.asid {
            Some(a) => Some(Asid::parse(a).map_err(|why| ServiceError::NotAccredited { why })?),
            None => None,
        };
        let system = self
            .directory
            .authorize(&mailbox.ods_code, asid.as_ref(), &interaction.id)?;
        if let Some(m) = &request.message_id {
            if m.is_empty() || m.len() > 64 || !m.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ServiceError::BadRequest {
                    why: "message_id must be 1 to 64 printable characters".into(),
                });
            }
        }
        let slot = self
            .slot(&interaction.service)
            .ok_or_else(|| ServiceError::NoProvider {
                service: interaction.service.to_string(),
            })?;
        let reliability = interaction.reliability;
        let routed = Routed {
            interaction: interaction.id.to_string(),
            operation: interaction.operation.clone(),
            asid: system.asid.to_string(),
            ods: system.ods_code.to_string(),
            message_id: request.message_id,
            body: request.body,
        };
        let (answer, rx) = oneshot::channel();
        let submit = RouterMsg::Submit {
            request: routed,
            reliability,
            answer,
        };
        self.cast_router(slot, submit).await?;
        // The router answers by its last deadline; this bound only guards
        // against the service actor itself having gone.
        let bound = reliability
            .retry_interval
            .saturating_mul(reliability.attempts().saturating_add(1))
            .saturating_add(Duration::from_millis(self.config.tick_ms.saturating_mul(4)));
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable(
                "the service actor failed or stopped before answering; the request may or may not have been carried out: check before retrying a change",
            )),
            Err(_) => Err(ServiceError::Timeout {
                service: interaction.service.to_string(),
                timeout_ms: bound.as_millis() as u64,
                attempts: reliability.attempts(),
            }),
        }
    }

    /// Registers `mailbox`'s connection as a provider of `service`.
    pub async fn register_provider(
        &self,
        mailbox: &MailboxId,
        service: &str,
    ) -> Result<ProviderRegistration, ServiceError> {
        let name = ServiceName::parse(service).map_err(|_| ServiceError::UnknownService {
            service: service.chars().take(64).collect(),
        })?;
        self.directory.may_provide(mailbox, &name)?;
        let slot = self
            .slot(&name)
            .ok_or_else(|| ServiceError::UnknownService {
                service: name.to_string(),
            })?;
        if self.closed.load(Ordering::Acquire) {
            return Err(unavailable("the service is stopping"));
        }
        let id = self.next_provider.fetch_add(1, Ordering::Relaxed);
        let (tx, calls) = mpsc::channel(self.config.provider_queue);
        // Held by the registry, so it outlives the service actor's restarts.
        slot.register(id, ProviderSink::External(tx), self.config.max_providers)?;
        Ok(ProviderRegistration {
            id,
            service: name,
            calls,
        })
    }

    /// A provider leaves (its connection ended).
    pub fn unregister_provider(&self, service: &ServiceName, id: ProviderId) {
        if let Some(slot) = self.slot(service) {
            slot.unregister(id);
        }
    }

    /// Provider `provider`'s answer to `correlation`. An answer over
    /// `max_body_bytes` is refused to the provider and its caller gets
    /// `SVC_BODY_TOO_LARGE`. An answer to a request no longer pending (late,
    /// or held by a service actor that has since failed) is dropped.
    pub fn provider_reply(
        &self,
        service: &ServiceName,
        provider: ProviderId,
        correlation: Correlation,
        result: Result<Bytes, ServiceError>,
    ) -> Result<(), ServiceError> {
        let too_large = match &result {
            Ok(body) if body.len() > self.config.max_body_bytes => {
                Some(ServiceError::BodyTooLarge {
                    len: body.len(),
                    max: self.config.max_body_bytes,
                })
            }
            _ => None,
        };
        let slot = self
            .slot(service)
            .ok_or_else(|| ServiceError::UnknownService {
                service: service.to_string(),
            })?;
        let result = match &too_large {
            Some(e) => Err(e.clone()),
            None => result,
        };
        // Only the router the request was placed with can take this answer:
        // if it has failed, the answer is late, and dropped like any late
        // answer (its replacement would drop it too).
        if let Some(router) = slot.actor.get() {
            let _ = router.cast(RouterMsg::Complete {
                from: Some(provider),
                correlation,
                result,
            });
        }
        too_large.map_or(Ok(()), Err)
    }

    /// Carries the reference services' records out of segments at or below
    /// `upto` (durable when answered); answers how many were re-logged.
    pub async fn carry(&self, upto: u64) -> Result<u64, String> {
        let (reply, rx) = oneshot::channel();
        self.reference
            .get()
            .ok_or_else(|| "the reference services are restarting".to_string())?
            .cast(ReferenceMsg::Carry { upto, reply })
            .map_err(|_| "the reference services are not running".to_string())?;
        rx.await
            .map_err(|_| "the reference services stopped".to_string())?
    }

    /// Patients, summaries and prescriptions held.
    pub async fn counts(&self) -> Result<(usize, usize, usize), ServiceError> {
        let (reply, rx) = oneshot::channel();
        self.reference
            .get()
            .ok_or_else(|| unavailable("the reference services are restarting"))?
            .cast(ReferenceMsg::Counts(reply))
            .map_err(|_| unavailable("stopped"))?;
        rx.await.map_err(|_| unavailable("stopped"))
    }

    /// Takes no more requests or registrations and forgets the providers
    /// (the node is stopping or has failed).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for slot in &self.routers {
            slot.clear();
        }
    }

    /// Stops every service actor (requests in progress get `SVC_UNAVAILABLE`).
    pub async fn stop(&self) {
        self.close();
        for slot in &self.routers {
            if let Some(router) = slot.actor.get() {
                router.stop(Some("shutdown".into()));
            }
        }
        if let Some(reference) = self.reference.get() {
            let _ = reference
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
                .await;
        }
    }
}

#[cfg(test)]
mod tests;
