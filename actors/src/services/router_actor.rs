//! The service actor: one per service, owning that service's
//! [`Router`](spine_core::services::Router) and carrying out its actions —
//! delivering requests to providers (the built-in reference actor, or an
//! external system's connection) and answering callers.
//!
//! Invariants and why:
//! - All routing decisions are the core router's; this actor only moves
//!   messages, reads the clock and ticks the router on a timer, so routing
//!   is deterministic and tested without tokio.
//! - Delivery to an external provider never waits: its queue is bounded
//!   (`provider_queue`). A full queue answers that request `SVC_BUSY` at
//!   once (the caller may retry; the provider is not penalised); a closed
//!   one means the provider has gone: it is unregistered and the router
//!   retries its requests elsewhere or answers per the reliability
//!   settings.
//! - Every caller gets exactly one answer; a caller that went away is
//!   simply not answered (its receiver is dropped).
//! - The actor is supervised (`ServiceRouter` children of the node
//!   supervisor) and holds nothing that must outlive it: its providers are
//!   the hub's registry's, adopted when it starts ([`RouterMsg::Adopt`]),
//!   and if it fails, the callers it held see their answer channels close
//!   (`SVC_UNAVAILABLE` from the hub). Its replacement starts its
//!   correlation ids past its predecessor's, so a provider's late answer to
//!   an old request is dropped, never taken for a new one's. Duplicate
//!   elimination memory is not kept across a restart (as across a node
//!   restart); reference changes stay guarded by their own checks
//!   (versions, prescription status).
//! - The built-in provider is reached through the reference actor's slot,
//!   not a fixed actor, so it survives that actor's restarts: while the
//!   slot is empty a request for it is failed at once (`SVC_UNAVAILABLE`,
//!   not carried out), and when the reference actor fails, the requests it
//!   held are failed at once ([`RouterMsg::ReferenceLost`]: their outcome
//!   is unknown, so they are neither retried nor remembered).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use spine_core::services::{
    Action, Builtin, Correlation, ProviderId, Reliability, Routed, Router, RouterConfig,
    ServiceError, ServiceName,
};
use spine_core::time::Clock;
use tokio::sync::{mpsc, oneshot};

use super::reference_actor::ReferenceMsg;
use super::supervised::ActorSlot;

/// Where a caller's answer goes.
pub type Answer = oneshot::Sender<Result<Bytes, ServiceError>>;

/// A request delivered to an external provider.
#[derive(Debug, Clone)]
pub struct ProviderCall {
    /// Quote this in the reply.
    pub correlation: Correlation,
    /// The request.
    pub request: Arc<Routed>,
}

/// How to reach a provider.
#[derive(Debug, Clone)]
pub enum ProviderSink {
    /// The built-in reference actor (whichever is in its slot).
    Builtin(Builtin),
    /// An external system's connection.
    External(mpsc::Sender<ProviderCall>),
}

/// Messages.
#[derive(Debug)]
pub enum RouterMsg {
    /// Route a request.
    Submit {
        /// The request.
        request: Routed,
        /// Its interaction's reliability.
        reliability: Reliability,
        /// Where to answer.
        answer: Answer,
    },
    /// A provider's answer.
    Complete {
        /// The external provider answering (`None`: the built-in one, in
        /// process and trusted).
        from: Option<ProviderId>,
        /// The correlation id.
        correlation: Correlation,
        /// The answer.
        result: Result<Bytes, ServiceError>,
    },
    /// A provider joins (the hub has checked the limit).
    Register {
        /// Its id.
        provider: ProviderId,
        /// How to reach it.
        sink: ProviderSink,
    },
    /// A provider leaves.
    Unregister(ProviderId),
    /// The registry's providers, as this actor starts (its first message).
    Adopt(Vec<(ProviderId, ProviderSink)>),
    /// The reference actor failed: fail the requests placed with the
    /// built-in provider (answered once they have been).
    ReferenceLost(oneshot::Sender<()>),
    /// Check deadlines.
    Tick,
    /// Requests pending and providers registered.
    Stats(oneshot::Sender<(usize, usize)>),
    /// Fault injection: panic.
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
}

/// The actor.
#[derive(Debug)]
pub struct RouterActor;

/// What it starts from.
#[allow(missing_debug_implementations)]
pub struct RouterArgs {
    /// The service.
    pub service: ServiceName,
    /// Limits.
    pub config: RouterConfig,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Deadline check interval.
    pub tick: Duration,
    /// Its first correlation id (past every earlier incarnation's).
    pub first_correlation: Correlation,
    /// Where the reference actor is (the built-in provider).
    pub reference: Arc<ActorSlot<ReferenceMsg>>,
}

/// Its state.
pub struct RouterState {
    router: Router<Answer>,
    sinks: BTreeMap<ProviderId, ProviderSink>,
    clock: Arc<dyn Clock>,
    reference: Arc<ActorSlot<ReferenceMsg>>,
    timer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RouterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterState")
            .field("service", self.router.service())
            .finish()
    }
}

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        let every = args.tick;
        let timer = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if myself.cast(RouterMsg::Tick).is_err() {
                    return;
                }
            }
        });
        Ok(RouterState {
            router: Router::starting_at(args.service, args.config, args.first_correlation),
            sinks: BTreeMap::new(),
            clock: args.clock,
            reference: args.reference,
            timer,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RouterMsg>,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        state.timer.abort();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        let now = state.clock.now();
        let actions = match msg {
            RouterMsg::Submit {
                request,
                reliability,
                answer,
            } => state.router.submit(request, reliability, answer, now),
            RouterMsg::Complete {
                from: None,
                correlation,
                result,
            } => state.router.complete(correlation, result, now),
            RouterMsg::Complete {
                from: Some(provider),
                correlation,
                result,
            } => state
                .router
                .complete_from(provider, correlation, result, now),
            RouterMsg::Register { provider, sink } => {
                state.register(provider, sink);
                Vec::new()
            }
            RouterMsg::Adopt(providers) => {
                for (provider, sink) in providers {
                    state.register(provider, sink);
                }
                Vec::new()
            }
            RouterMsg::Unregister(provider) => {
                state.sinks.remove(&provider);
                state.router.unregister(provider, now)
            }
            RouterMsg::ReferenceLost(done) => {
                let actions = state.reference_lost();
                state.perform(&myself, actions);
                let _ = done.send(());
                return Ok(());
            }
            RouterMsg::Tick => state.router.tick(now),
            RouterMsg::Stats(reply) => {
                let _ = reply.send((state.router.pending(), state.sinks.len()));
                Vec::new()
            }
            #[cfg(any(test, feature = "fault-injection"))]
            RouterMsg::Panic => panic!("fault injection: service router panics on request"),
        };
        state.perform(&myself, actions);
        Ok(())
    }
}

impl RouterState {
    /// Adds a provider. The hub's registry holds at most the router's
    /// provider limit, so this is refused only if that invariant broke.
    fn register(&mut self, provider: ProviderId, sink: ProviderSink) {
        match self.router.register(provider) {
            Ok(()) => {
                self.sinks.insert(provider, sink);
            }
            Err(e) => {
                tracing::error!(service = %self.router.service(), provider, %e, "provider not registered")
            }
        }
    }

    /// Fails every request placed with a built-in provider: the reference
    /// actor that held it is gone, and may or may not have carried it out.
    fn reference_lost(&mut self) -> Vec<Action<Answer>> {
        let builtins: Vec<ProviderId> = self
            .sinks
            .iter()
            .filter(|(_, sink)| matches!(sink, ProviderSink::Builtin(_)))
            .map(|(id, _)| *id)
            .collect();
        let mut actions = Vec::new();
        for provider in builtins {
            for correlation in self.router.placed_with(provider) {
                actions.extend(self.router.fail(
                    correlation,
                    ServiceError::Unavailable {
                        why: "the reference services failed while serving this request, which may or may not have been carried out; they are restarting from the log: check before retrying a change".into(),
                    },
                ));
            }
        }
        actions
    }

    fn perform(&mut self, myself: &ActorRef<RouterMsg>, actions: Vec<Action<Answer>>) {
        let mut queue = actions;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for action in queue {
                match action {
                    Action::Respond { waiters, result } => {
                        for w in waiters {
                            let _ = w.send(result.clone());
                        }
                    }
                    Action::Deliver {
                        provider,
                        correlation,
                        request,
                    } => {
                        let now = self.clock.now();
                        match self.sinks.get(&provider) {
                            Some(ProviderSink::Builtin(builtin)) => {
                                let sent = self.reference.get().is_some_and(|actor| {
                                    actor
                                        .cast(ReferenceMsg::Call {
                                            builtin: *builtin,
                                            correlation,
                                            request,
                                            reply_to: myself.clone(),
                                        })
                                        .is_ok()
                                });
                                if !sent {
                                    // Restarting: not carried out, and the
                                    // provider stays registered.
                                    next.extend(self.router.fail(
                                        correlation,
                                        ServiceError::Unavailable {
                                            why: "the reference services are restarting; retry shortly".into(),
                                        },
                                    ));
                                }
                            }
                            Some(ProviderSink::External(tx)) => {
                                match tx.try_send(ProviderCall {
                                    correlation,
                                    request,
                                }) {
                                    Ok(()) => {}
                                    Err(mpsc::error::TrySendError::Full(_)) => {
                                        next.extend(self.router.complete(
                                            correlation,
                                            Err(ServiceError::Busy {
                                                service: self.router.service().to_string(),
                                                limit: tx.max_capacity(),
                                            }),
                                            now,
                                        ));
                                    }
                                    Err(mpsc::error::TrySendError::Closed(_)) => {
                                        self.sinks.remove(&provider);
                                        next.extend(self.router.unregister(provider, now));
                                    }
                                }
                            }
                            None => next.extend(self.router.unregister(provider, now)),
                        }
                    }
                }
            }
            queue = next;
        }
    }
}
