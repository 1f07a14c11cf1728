//! What outlives the service actors, so the node supervisor can replace one
//! that failed: the slots the hub and the routers find them through, each
//! service's provider registry, and rebuilding the reference services from
//! the log.
//!
//! Invariants and why:
//! - A service's providers (the built-in one and external ones, with their
//!   ids and call queues) belong to the hub's registry, not to its router
//!   actor, so they survive the actor. A new router adopts the registry as
//!   its first message, and it is put in its slot under the registry's
//!   lock; a registration changes the registry and tells the router in the
//!   slot under the same lock. So the router in the slot knows exactly the
//!   registered providers, and an external provider is never orphaned by a
//!   restart. The registry holds at most `max_providers`, the router's own
//!   limit, so the router never refuses what the registry accepted.
//! - Each incarnation of a router starts its correlation ids
//!   [`INCARNATION_SPAN`] past the previous one's, so a provider's late
//!   answer to a request of a failed router never matches a new request.
//! - The reference actor is found through its slot, empty while it is
//!   rebuilt. It is rebuilt exactly as at start-up: a fresh seeded
//!   [`ReferenceServices`] and every service record of the log replayed in
//!   order, after a barrier (see [`crate::node::log_scan`]). Before the new
//!   actor is put in the slot, every router has failed the requests the old
//!   one held ([`ServiceHub::fail_reference_calls`]), so no request placed
//!   with the new actor is failed by mistake.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef};
use spine_core::services::{
    Correlation, ProviderId, ReferenceConfig, ReferenceServices, ServiceError, ServiceName,
};
use tokio::sync::oneshot;

use super::reference_actor::{ReferenceActor, ReferenceArgs};
use super::router_actor::{ProviderSink, RouterActor, RouterArgs, RouterMsg};
use super::ServiceHub;
use crate::node::log_scan::{scan_below, Scanned};
use crate::node::storage::StorageConfig;

/// Correlation ids one router incarnation may use (2^40: a trillion
/// requests) before the next incarnation's range.
pub const INCARNATION_SPAN: Correlation = 1 << 40;

/// Where a supervised actor is now: `None` while it is being replaced.
pub struct ActorSlot<M: ractor::Message> {
    actor: RwLock<Option<ActorRef<M>>>,
}

impl<M: ractor::Message> std::fmt::Debug for ActorSlot<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSlot")
            .field("running", &self.get().is_some())
            .finish()
    }
}

impl<M: ractor::Message> ActorSlot<M> {
    pub(crate) fn empty() -> ActorSlot<M> {
        ActorSlot {
            actor: RwLock::new(None),
        }
    }

    /// The actor now, if any (it may have just failed: a cast then fails).
    pub(crate) fn get(&self) -> Option<ActorRef<M>> {
        self.actor.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, actor: Option<ActorRef<M>>) {
        *self.actor.write().unwrap_or_else(|p| p.into_inner()) = actor;
    }
}

/// One service: its router actor's slot and its provider registry.
pub(crate) struct RouterSlot {
    pub(crate) service: ServiceName,
    pub(crate) actor: ActorSlot<RouterMsg>,
    providers: Mutex<BTreeMap<ProviderId, ProviderSink>>,
    incarnations: AtomicU64,
}

impl RouterSlot {
    pub(crate) fn new(service: ServiceName) -> RouterSlot {
        RouterSlot {
            service,
            actor: ActorSlot::empty(),
            providers: Mutex::new(BTreeMap::new()),
            incarnations: AtomicU64::new(0),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, BTreeMap<ProviderId, ProviderSink>> {
        self.providers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a provider (at most `limit` per service), with the router
    /// in the slot too if there is one (a replacement adopts it).
    pub(crate) fn register(
        &self,
        provider: ProviderId,
        sink: ProviderSink,
        limit: usize,
    ) -> Result<(), ServiceError> {
        let mut registry = self.registry();
        if !registry.contains_key(&provider) && registry.len() >= limit {
            return Err(ServiceError::TooManyProviders {
                service: self.service.to_string(),
                limit,
            });
        }
        registry.insert(provider, sink.clone());
        if let Some(router) = self.actor.get() {
            // A failed router's replacement adopts the registry instead.
            let _ = router.cast(RouterMsg::Register { provider, sink });
        }
        Ok(())
    }

    /// Unregisters a provider, from the router in the slot too.
    pub(crate) fn unregister(&self, provider: ProviderId) {
        let mut registry = self.registry();
        registry.remove(&provider);
        if let Some(router) = self.actor.get() {
            let _ = router.cast(RouterMsg::Unregister(provider));
        }
    }

    /// Makes `router` (just started) the service's actor: it adopts the
    /// registry (providers whose connection has closed are left out; their
    /// connection unregisters them) before anything else reaches it.
    fn install(&self, router: ActorRef<RouterMsg>) {
        let registry = self.registry();
        let providers = registry
            .iter()
            .filter(|(_, sink)| match sink {
                ProviderSink::External(tx) => !tx.is_closed(),
                ProviderSink::Builtin(_) => true,
            })
            .map(|(id, sink)| (*id, sink.clone()))
            .collect();
        // If it has already failed, the supervisor replaces it again.
        let _ = router.cast(RouterMsg::Adopt(providers));
        self.actor.set(Some(router));
        drop(registry);
    }

    /// Forgets every provider (the node is stopping): their call queues
    /// close once no router holds them either.
    pub(crate) fn clear(&self) {
        self.registry().clear();
    }

    fn first_correlation(&self) -> Correlation {
        let n = self.incarnations.fetch_add(1, Ordering::Relaxed);
        n.saturating_mul(INCARNATION_SPAN).saturating_add(1)
    }
}

impl ServiceHub {
    /// Number of service actors: children `ServiceRouter(0..n)`.
    pub(crate) fn router_count(&self) -> u32 {
        u32::try_from(self.routers.len()).unwrap_or(u32::MAX)
    }

    /// The name of service actor `index`, for logs.
    pub(crate) fn router_name(&self, index: u32) -> Option<&ServiceName> {
        self.routers.get(index as usize).map(|s| &s.service)
    }

    /// Starts service actor `index` linked to `supervisor` and installs it.
    pub(crate) async fn start_router(
        &self,
        index: u32,
        supervisor: ActorCell,
    ) -> Result<ActorCell, String> {
        let slot = self
            .routers
            .get(index as usize)
            .ok_or_else(|| format!("no service actor {index}"))?;
        let args = RouterArgs {
            service: slot.service.clone(),
            config: self.config.router(),
            clock: std::sync::Arc::clone(&self.clock),
            tick: Duration::from_millis(self.config.tick_ms),
            first_correlation: slot.first_correlation(),
            reference: std::sync::Arc::clone(&self.reference),
        };
        let (router, _) = Actor::spawn_linked(None, RouterActor, args, supervisor)
            .await
            .map_err(|e| format!("cannot start service {}: {e}", slot.service))?;
        let cell = router.get_cell();
        slot.install(router);
        Ok(cell)
    }

    /// Starts the reference actor on `services` linked to `supervisor` and
    /// puts it in its slot.
    pub(crate) async fn start_reference(
        &self,
        services: ReferenceServices,
        supervisor: ActorCell,
    ) -> Result<ActorCell, String> {
        let args = ReferenceArgs {
            services,
            sink: self.sink.clone(),
            clock: std::sync::Arc::clone(&self.clock),
        };
        let (actor, _) = Actor::spawn_linked(None, ReferenceActor, args, supervisor)
            .await
            .map_err(|e| format!("cannot start the reference services: {e}"))?;
        let cell = actor.get_cell();
        self.reference.set(Some(actor));
        Ok(cell)
    }

    /// The reference actor failed: nothing reaches it any more.
    pub(crate) fn reference_failed(&self) {
        self.reference.set(None);
    }

    /// Has every router fail the requests the failed reference actor held;
    /// answers once they all have (each at most `wait`; a router that is
    /// itself gone held nothing).
    pub(crate) async fn fail_reference_calls(&self, wait: Duration) {
        for slot in &self.routers {
            let Some(router) = slot.actor.get() else {
                continue;
            };
            let (done, rx) = oneshot::channel();
            if router.cast(RouterMsg::ReferenceLost(done)).is_ok() {
                let _ = tokio::time::timeout(wait, rx).await;
            }
        }
    }

    /// Fault injection: the service actor of `service`, or the reference
    /// actor (`None`), panics.
    /// Unknown services are `NODE_REQUEST_INVALID`; an actor being replaced
    /// is `NODE_SHUTTING_DOWN` (retry).
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) fn inject_panic(
        &self,
        service: Option<&str>,
    ) -> Result<(), crate::node::RequestError> {
        use crate::node::RequestError;
        let sent = match service {
            Some(name) => {
                let slot = self
                    .routers
                    .iter()
                    .find(|s| s.service.as_str() == name)
                    .ok_or_else(|| RequestError::Invalid(format!("no service named {name}")))?;
                slot.actor.get().map(|r| r.cast(RouterMsg::Panic).is_ok())
            }
            None => self
                .reference
                .get()
                .map(|r| r.cast(super::reference_actor::ReferenceMsg::Panic).is_ok()),
        };
        match sent {
            Some(true) => Ok(()),
            _ => Err(RequestError::ShuttingDown),
        }
    }
}

/// The reference services' state as the log below `end` makes it: the same
/// replay as start-up recovery.
pub(crate) fn rebuild_reference(
    storage: &StorageConfig,
    config: ReferenceConfig,
    end: u64,
) -> Result<ReferenceServices, String> {
    let mut services =
        ReferenceServices::new(config).map_err(|e| format!("reference services: {e}"))?;
    scan_below(storage, end, |scanned| match scanned {
        Scanned::Segment(_) => Ok(()),
        Scanned::Record(r) => services.replay(r),
    })?;
    Ok(services)
}
