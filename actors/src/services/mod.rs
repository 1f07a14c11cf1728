//! Spine services on the node: one service actor per service routing
//! requests to providers, the built-in reference services, and external
//! providers that register over the native protocol.
//!
//! - [`config`] — `[services]` settings.
//! - [`router_actor`] — the service actor (one per service).
//! - [`reference_actor`] — the built-in PDS, SCR and EPS provider.
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
//!   service actor itself is gone.
//! - An external provider is identified by a node-unique id; its replies
//!   count only for requests currently placed with it (so one provider
//!   cannot answer another's), and it is unregistered when its connection
//!   (or the stream it registered on) ends, so a dead provider is routed
//!   around.

pub mod config;
pub mod reference_actor;
pub mod router_actor;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorRef};
use spine_core::directory::Directory;
use spine_core::ids::MailboxId;
use spine_core::services::{
    Asid, Correlation, ProviderId, ReferenceServices, Routed, ServiceDirectory, ServiceError,
    ServiceName,
};
use spine_core::time::Clock;
use tokio::sync::{mpsc, oneshot};

pub use config::ServicesConfig;
use reference_actor::{ReferenceActor, ReferenceArgs, ReferenceMsg};
pub use router_actor::ProviderCall;
use router_actor::{ProviderSink, RouterActor, RouterArgs, RouterMsg};

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
    routers: BTreeMap<ServiceName, ActorRef<RouterMsg>>,
    reference: ActorRef<ReferenceMsg>,
    next_provider: AtomicU64,
}

impl std::fmt::Debug for ServiceHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceHub")
            .field("services", &self.routers.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn unavailable(why: impl Into<String>) -> ServiceError {
    ServiceError::Unavailable { why: why.into() }
}

impl ServiceHub {
    /// Starts the reference actor and one service actor per service, and
    /// registers the built-in providers.
    pub async fn start(
        config: ServicesConfig,
        directory: Arc<ServiceDirectory>,
        mailboxes: Arc<Directory>,
        state: ReferenceServices,
        sink: LogSink,
        clock: Arc<dyn Clock>,
    ) -> Result<ServiceHub, String> {
        config.validate()?;
        let (reference, _) = Actor::spawn(
            None,
            ReferenceActor,
            ReferenceArgs {
                services: state,
                sink,
                clock: Arc::clone(&clock),
            },
        )
        .await
        .map_err(|e| format!("cannot start the reference services: {e}"))?;
        let mut hub = ServiceHub {
            config: config.clone(),
            directory: Arc::clone(&directory),
            mailboxes,
            routers: BTreeMap::new(),
            reference,
            next_provider: AtomicU64::new(1),
        };
        for service in directory.services() {
            let (router, _) = Actor::spawn(
                None,
                RouterActor,
                RouterArgs {
                    service: service.name.clone(),
                    config: config.router(),
                    clock: Arc::clone(&clock),
                    tick: Duration::from_millis(config.tick_ms),
                },
            )
            .await
            .map_err(|e| format!("cannot start service {}: {e}", service.name))?;
            if let Some(builtin) = service.builtin {
                let id = hub.next_provider.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = oneshot::channel();
                router
                    .cast(RouterMsg::Register {
                        provider: id,
                        sink: ProviderSink::Builtin(builtin, hub.reference.clone()),
                        reply: tx,
                    })
                    .map_err(|e| e.to_string())?;
                rx.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            }
            hub.routers.insert(service.name.clone(), router);
        }
        Ok(hub)
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
        let router =
            self.routers
                .get(&interaction.service)
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
        router
            .cast(RouterMsg::Submit {
                request: routed,
                reliability,
                answer,
            })
            .map_err(|_| unavailable("the service is stopping"))?;
        // The router answers by its last deadline; this bound only guards
        // against the service actor itself having gone.
        let bound = reliability
            .retry_interval
            .saturating_mul(reliability.attempts().saturating_add(1))
            .saturating_add(Duration::from_millis(self.config.tick_ms.saturating_mul(4)));
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable("the service stopped before answering")),
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
        let router = self
            .routers
            .get(&name)
            .ok_or_else(|| ServiceError::UnknownService {
                service: name.to_string(),
            })?;
        let id = self.next_provider.fetch_add(1, Ordering::Relaxed);
        let (tx, calls) = mpsc::channel(self.config.provider_queue);
        let (reply, rx) = oneshot::channel();
        router
            .cast(RouterMsg::Register {
                provider: id,
                sink: ProviderSink::External(tx),
                reply,
            })
            .map_err(|_| unavailable("the service is stopping"))?;
        rx.await
            .map_err(|_| unavailable("the service is stopping"))??;
        Ok(ProviderRegistration {
            id,
            service: name,
            calls,
        })
    }

    /// A provider leaves (its connection ended).
    pub fn unregister_provider(&self, service: &ServiceName, id: ProviderId) {
        if let Some(router) = self.routers.get(service) {
            let _ = router.cast(RouterMsg::Unregister(id));
        }
    }

    /// Provider `provider`'s answer to `correlation`. An answer over
    /// `max_body_bytes` is refused to the provider and its caller gets
    /// `SVC_BODY_TOO_LARGE`.
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
        let router = self
            .routers
            .get(service)
            .ok_or_else(|| ServiceError::UnknownService {
                service: service.to_string(),
            })?;
        let result = match &too_large {
            Some(e) => Err(e.clone()),
            None => result,
        };
        router
            .cast(RouterMsg::Complete {
                from: Some(provider),
                correlation,
                result,
            })
            .map_err(|_| unavailable("the service is stopping"))?;
        too_large.map_or(Ok(()), Err)
    }

    /// Carries the reference services' records out of segments at or below
    /// `upto` (durable when answered); answers how many were re-logged.
    pub async fn carry(&self, upto: u64) -> Result<u64, String> {
        let (reply, rx) = oneshot::channel();
        self.reference
            .cast(ReferenceMsg::Carry { upto, reply })
            .map_err(|_| "the reference services are not running".to_string())?;
        rx.await
            .map_err(|_| "the reference services stopped".to_string())?
    }

    /// Patients, summaries and prescriptions held.
    pub async fn counts(&self) -> Result<(usize, usize, usize), ServiceError> {
        let (reply, rx) = oneshot::channel();
        self.reference
            .cast(ReferenceMsg::Counts(reply))
            .map_err(|_| unavailable("stopped"))?;
        rx.await.map_err(|_| unavailable("stopped"))
    }

    /// Stops every service actor (requests in progress get `SVC_UNAVAILABLE`).
    pub async fn stop(&self) {
        for router in self.routers.values() {
            router.stop(Some("shutdown".into()));
        }
        let _ = self
            .reference
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
    }
}
