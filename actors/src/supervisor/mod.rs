//! The node supervisor: starts the partition, expiry, mailbox service and
//! WAL actors and the national services' actors (the reference services and
//! one router per service), restarts a failed one (one-for-one, with an
//! intensity limit per child), and fails the node when a child fails too
//! often.
//!
//! Restarting a partition: its slot is emptied (callers wait, bounded), a
//! barrier on the log makes everything it submitted durable, its state is
//! rebuilt from the log, and a new actor takes the slot. Nothing acknowledged
//! is lost because acknowledgements come only after durability, and nothing
//! hangs because every caller's reply channel is dropped with the old actor.
//!
//! Restarting the reference services is the same: their slot is emptied
//! (requests for them fail at once with `SVC_UNAVAILABLE`), every router
//! fails the requests the old actor held, and after a barrier their state
//! is rebuilt by replaying the log's service records, as at start-up.
//! Restarting a service router starts a new one that adopts the service's
//! provider registry (see [`crate::services::supervised`]).
//!
//! Every child is spawned from this actor's own handlers, so it is a known
//! child before any failure of it can be handled.

pub mod policy;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use spine_core::message::MessageStore;
use spine_core::services::ReferenceServices;

use crate::expiry::{ExpiryActor, ExpiryMsg};
use crate::node::log_scan::after_barrier;
use crate::node::shared::Shared;
use crate::partition::rebuild::rebuild_partition;
use crate::partition::{PartitionActor, PartitionArgs};
use crate::service::{ServiceActor, ServiceMsg};
use crate::services::supervised::rebuild_reference;
use crate::wal_actor::{WalActor, WalMsg};
use policy::{RestartPolicy, RestartTracker};

/// Which child an actor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// Partition `n`.
    Partition(u32),
    /// The expiry actor.
    Expiry,
    /// The mailbox service actor.
    Service,
    /// The WAL maintenance actor.
    Wal,
    /// The router actor of national service `n` (in directory order).
    ServiceRouter(u32),
    /// The reference services' actor (PDS, SCR, EPS).
    ReferenceServices,
}

/// Every child kind's metric label.
pub const CHILD_LABELS: &[&str] = &[
    "partition",
    "expiry",
    "service",
    "wal",
    "service_router",
    "reference_services",
];

impl ChildKind {
    /// The metric label of this kind of child.
    pub fn label(self) -> &'static str {
        match self {
            ChildKind::Partition(_) => "partition",
            ChildKind::Expiry => "expiry",
            ChildKind::Service => "service",
            ChildKind::Wal => "wal",
            ChildKind::ServiceRouter(_) => "service_router",
            ChildKind::ReferenceServices => "reference_services",
        }
    }
}

/// Messages to the supervisor.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// A partition's state was rebuilt: start its actor (here, so it is a
    /// registered child before any failure of it can be handled).
    Rebuilt(u32, Box<MessageStore>),
    /// The reference services' state was rebuilt: start their actor.
    ReferenceRebuilt(Box<ReferenceServices>),
    /// A restart could not be completed: fail the node.
    Escalate(String),
    /// Who the service actor is now (for the handle).
    GetService(tokio::sync::oneshot::Sender<Option<ActorRef<ServiceMsg>>>),
    /// Who the expiry actor is now.
    GetExpiry(tokio::sync::oneshot::Sender<Option<ActorRef<ExpiryMsg>>>),
    /// Who the WAL actor is now.
    GetWal(tokio::sync::oneshot::Sender<Option<ActorRef<WalMsg>>>),
}

/// The supervisor actor.
#[derive(Debug)]
pub struct NodeSupervisor;

/// What the supervisor starts from.
#[derive(Debug)]
pub struct SupervisorArgs {
    pub(crate) shared: Arc<Shared>,
    /// Recovered state, one store per partition.
    pub stores: Vec<MessageStore>,
    /// The reference services' recovered state.
    pub services: ReferenceServices,
}

/// Supervisor state.
#[derive(Debug)]
pub struct SupervisorState {
    shared: Arc<Shared>,
    children: HashMap<ActorId, ChildKind>,
    trackers: HashMap<ChildKind, RestartTracker>,
    policy: RestartPolicy,
    service: Option<ActorRef<ServiceMsg>>,
    expiry: Option<ActorRef<ExpiryMsg>>,
    wal: Option<ActorRef<WalMsg>>,
}

impl Actor for NodeSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let shared = args.shared;
        let policy = RestartPolicy {
            max_restarts: shared.runtime.max_restarts,
            window: Duration::from_secs(shared.runtime.restart_window_secs),
        };
        let mut state = SupervisorState {
            shared: Arc::clone(&shared),
            children: HashMap::new(),
            trackers: HashMap::new(),
            policy,
            service: None,
            expiry: None,
            wal: None,
        };
        for (i, store) in args.stores.into_iter().enumerate() {
            let index = i as u32;
            let args = PartitionArgs {
                index,
                store,
                shared: Arc::clone(&shared),
            };
            let (actor, _) =
                Actor::spawn_linked(None, PartitionActor, args, myself.get_cell()).await?;
            state
                .children
                .insert(actor.get_id(), ChildKind::Partition(index));
            shared.set_partition(index, Some(actor));
        }
        state.start_child(&myself, ChildKind::Expiry).await?;
        state.start_child(&myself, ChildKind::Service).await?;
        state.start_child(&myself, ChildKind::Wal).await?;
        state.start_reference(&myself, args.services).await?;
        let routers = shared.services.get().map_or(0, |hub| hub.router_count());
        for index in 0..routers {
            state
                .start_child(&myself, ChildKind::ServiceRouter(index))
                .await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Escalate(reason) => state.escalate(&myself, reason),
            SupervisorMsg::Rebuilt(index, store) => {
                let args = PartitionArgs {
                    index,
                    store: *store,
                    shared: Arc::clone(&state.shared),
                };
                match Actor::spawn_linked(None, PartitionActor, args, myself.get_cell()).await {
                    Ok((actor, _)) => {
                        state
                            .children
                            .insert(actor.get_id(), ChildKind::Partition(index));
                        state.shared.set_partition(index, Some(actor));
                        state.shared.wake_fresh(index);
                        tracing::info!(
                            partition = index,
                            "partition rebuilt from the log and restarted"
                        );
                    }
                    Err(e) => {
                        state.escalate(&myself, format!("cannot restart partition {index}: {e}"))
                    }
                }
            }
            SupervisorMsg::ReferenceRebuilt(services) => {
                if !state.shared.accepting.load(Ordering::Acquire) {
                    return Ok(()); // stopping: nothing to serve
                }
                match state.start_reference(&myself, *services).await {
                    Ok(()) => {
                        tracing::info!("reference services rebuilt from the log and restarted")
                    }
                    Err(e) => state.escalate(
                        &myself,
                        format!("cannot restart the reference services: {e}"),
                    ),
                }
            }
            SupervisorMsg::GetService(reply) => {
                let _ = reply.send(state.service.clone());
            }
            SupervisorMsg::GetExpiry(reply) => {
                let _ = reply.send(state.expiry.clone());
            }
            SupervisorMsg::GetWal(reply) => {
                let _ = reply.send(state.wal.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if !state.shared.accepting.load(Ordering::Acquire) {
                    state.children.remove(&cell.get_id());
                    return Ok(()); // shutting down
                }
                (
                    cell,
                    reason.unwrap_or_else(|| "stopped unexpectedly".into()),
                )
            }
            _ => return Ok(()),
        };
        let Some(kind) = state.children.remove(&cell.get_id()) else {
            return Ok(());
        };
        tracing::error!(child = kind.label(), ?kind, %reason, "actor failed");
        let allowed = state
            .trackers
            .entry(kind)
            .or_default()
            .allow(&state.policy, Instant::now());
        if allowed {
            metrics::counter!("spine_actor_restarts_total", "kind" => kind.label()).increment(1);
            state.shared.count_restart(kind.label());
        }
        if !allowed {
            let child = match kind {
                ChildKind::ServiceRouter(i) => state
                    .shared
                    .services
                    .get()
                    .and_then(|hub| hub.router_name(i))
                    .map_or_else(
                        || kind.label().to_string(),
                        |name| format!("{} of {name}", kind.label()),
                    ),
                _ => kind.label().to_string(),
            };
            let why = format!(
                "{child} failed more than {} times within {:?}: {reason}",
                state.policy.max_restarts, state.policy.window
            );
            state.escalate(&myself, why);
            return Ok(());
        }
        match kind {
            ChildKind::Partition(index) => state.restart_partition(&myself, index),
            ChildKind::ReferenceServices => state.restart_reference(&myself),
            other => {
                if let Err(e) = state.start_child(&myself, other).await {
                    state.escalate(&myself, format!("cannot restart {}: {e}", other.label()));
                }
            }
        }
        Ok(())
    }
}

impl SupervisorState {
    async fn start_child(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        kind: ChildKind,
    ) -> Result<(), ActorProcessingErr> {
        let shared = Arc::clone(&self.shared);
        let cell = match kind {
            ChildKind::Expiry => {
                let (actor, _) =
                    Actor::spawn_linked(None, ExpiryActor, shared, myself.get_cell()).await?;
                self.expiry = Some(actor.clone());
                actor.get_cell()
            }
            ChildKind::Service => {
                let (actor, _) =
                    Actor::spawn_linked(None, ServiceActor, shared, myself.get_cell()).await?;
                self.service = Some(actor.clone());
                actor.get_cell()
            }
            ChildKind::Wal => {
                let (actor, _) =
                    Actor::spawn_linked(None, WalActor, shared, myself.get_cell()).await?;
                self.wal = Some(actor.clone());
                actor.get_cell()
            }
            ChildKind::ServiceRouter(index) => {
                let hub = self
                    .shared
                    .services
                    .get()
                    .ok_or("service routing is not set up")?;
                hub.start_router(index, myself.get_cell()).await?
            }
            ChildKind::Partition(_) | ChildKind::ReferenceServices => {
                return Err(
                    "partitions and the reference services are restarted from the log".into(),
                )
            }
        };
        self.children.insert(cell.get_id(), kind);
        Ok(())
    }

    async fn start_reference(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        services: ReferenceServices,
    ) -> Result<(), ActorProcessingErr> {
        let hub = self
            .shared
            .services
            .get()
            .ok_or("service routing is not set up")?;
        let cell = hub.start_reference(services, myself.get_cell()).await?;
        self.children
            .insert(cell.get_id(), ChildKind::ReferenceServices);
        Ok(())
    }

    fn restart_reference(&mut self, myself: &ActorRef<SupervisorMsg>) {
        let shared = Arc::clone(&self.shared);
        let Some(hub) = shared.services.get().cloned() else {
            self.escalate(myself, "the reference services have no hub".into());
            return;
        };
        hub.reference_failed();
        let me = myself.clone();
        tokio::spawn(async move {
            let wait = Duration::from_millis(shared.runtime.request_wait_ms);
            hub.fail_reference_calls(wait).await;
            let config = shared.runtime.services.reference();
            let rebuilt = after_barrier(&shared, move |storage, end| {
                rebuild_reference(storage, config, end)
            })
            .await;
            let _ = me.cast(match rebuilt {
                Ok(services) => SupervisorMsg::ReferenceRebuilt(Box::new(services)),
                Err(e) => SupervisorMsg::Escalate(format!(
                    "the reference services could not be rebuilt: {e}"
                )),
            });
        });
    }

    fn restart_partition(&mut self, myself: &ActorRef<SupervisorMsg>, index: u32) {
        let shared = Arc::clone(&self.shared);
        shared.set_partition(index, None);
        let me = myself.clone();
        tokio::spawn(async move {
            match rebuild(&shared, index).await {
                Ok(store) => {
                    let _ = me.cast(SupervisorMsg::Rebuilt(index, Box::new(store)));
                }
                Err(e) => {
                    let _ = me.cast(SupervisorMsg::Escalate(format!(
                        "partition {index} could not be rebuilt: {e}"
                    )));
                }
            }
        });
    }

    fn escalate(&mut self, myself: &ActorRef<SupervisorMsg>, reason: String) {
        tracing::error!(%reason, "supervisor gives up: the node stops serving");
        metrics::counter!("spine_node_failures_total").increment(1);
        let _ = self.shared.failed.set(reason.clone());
        self.shared.accepting.store(false, Ordering::Release);
        // Requests still queued will never be served: drop them, which
        // answers their callers (they then see the failure).
        for ingress in &self.shared.ingress {
            while ingress.rx.try_recv().is_ok() {}
        }
        if let Some(hub) = self.shared.services.get() {
            hub.close();
        }
        self.shared.failure.notify_waiters();
        myself.stop(Some(reason));
    }
}

async fn rebuild(shared: &Arc<Shared>, index: u32) -> Result<MessageStore, String> {
    let map = shared.map;
    after_barrier(shared, move |storage, end| {
        rebuild_partition(storage, &map, index, end)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_child_kind_has_a_listed_label() {
        for kind in [
            ChildKind::Partition(3),
            ChildKind::Expiry,
            ChildKind::Service,
            ChildKind::Wal,
            ChildKind::ServiceRouter(2),
            ChildKind::ReferenceServices,
        ] {
            assert!(CHILD_LABELS.contains(&kind.label()), "{kind:?}");
        }
    }
}
