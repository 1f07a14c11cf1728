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
    /// The built-in reference actor.
    Builtin(Builtin, ActorRef<ReferenceMsg>),
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
    /// A provider joins.
    Register {
        /// Its id.
        provider: ProviderId,
        /// How to reach it.
        sink: ProviderSink,
        /// Whether it was accepted.
        reply: oneshot::Sender<Result<(), ServiceError>>,
    },
    /// A provider leaves.
    Unregister(ProviderId),
    /// Check deadlines.
    Tick,
    /// Requests pending and providers registered.
    Stats(oneshot::Sender<(usize, usize)>),
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
}

/// Its state.
pub struct RouterState {
    router: Router<Answer>,
    sinks: BTreeMap<ProviderId, ProviderSink>,
    clock: Arc<dyn Clock>,
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
            router: Router::new(args.service, args.config),
            sinks: BTreeMap::new(),
            clock: args.clock,
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
            RouterMsg::Register {
                provider,
                sink,
                reply,
            } => {
                let result = state.router.register(provider);
                if result.is_ok() {
                    state.sinks.insert(provider, sink);
                }
                let _ = reply.send(result);
                Vec::new()
            }
            RouterMsg::Unregister(provider) => {
                state.sinks.remove(&provider);
                state.router.unregister(provider, now)
            }
            RouterMsg::Tick => state.router.tick(now),
            RouterMsg::Stats(reply) => {
                let _ = reply.send((state.router.pending(), state.sinks.len()));
                Vec::new()
            }
        };
        state.perform(&myself, actions);
        Ok(())
    }
}

impl RouterState {
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
                            Some(ProviderSink::Builtin(builtin, actor)) => {
                                let sent = actor.cast(ReferenceMsg::Call {
                                    builtin: *builtin,
                                    correlation,
                                    request,
                                    reply_to: myself.clone(),
                                });
                                if sent.is_err() {
                                    self.sinks.remove(&provider);
                                    next.extend(self.router.unregister(provider, now));
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
