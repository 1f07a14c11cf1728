//! The expiry actor: on a timer, asks every partition to expire messages
//! past their inbox expiry (each yields a non-delivery report) and to purge
//! messages past their purge time. Time comes from the node's `Clock`.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::node::shared::Shared;
use crate::partition::PartitionMsg;

/// The actor.
#[derive(Debug)]
pub struct ExpiryActor;

/// Messages.
#[derive(Debug)]
pub enum ExpiryMsg {
    /// Run a round now.
    Tick,
    /// Fault injection: panic.
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
}

/// State: the node and the timer.
#[derive(Debug)]
pub struct ExpiryState {
    shared: Arc<Shared>,
    timer: tokio::task::JoinHandle<()>,
}

impl Actor for ExpiryActor {
    type Msg = ExpiryMsg;
    type State = ExpiryState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<ExpiryMsg>,
        shared: Arc<Shared>,
    ) -> Result<ExpiryState, ActorProcessingErr> {
        let every = Duration::from_millis(shared.runtime.expiry_interval_ms);
        let timer = tokio::spawn(async move {
            // The first round comes one interval after start, not at once:
            // a node (or the simulator, which expires on its own virtual
            // schedule and sets a long interval) is never raced at start-up.
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if myself.cast(ExpiryMsg::Tick).is_err() {
                    return;
                }
            }
        });
        Ok(ExpiryState { shared, timer })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ExpiryMsg>,
        state: &mut ExpiryState,
    ) -> Result<(), ActorProcessingErr> {
        state.timer.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ExpiryMsg>,
        msg: ExpiryMsg,
        state: &mut ExpiryState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ExpiryMsg::Tick => {
                let now = state.shared.clock.now();
                for index in 0..state.shared.partitions.len() as u32 {
                    if let Some(p) = state.shared.partition(index) {
                        let _ = p.cast(PartitionMsg::Expire { now, reply: None });
                    }
                }
            }
            #[cfg(any(test, feature = "fault-injection"))]
            ExpiryMsg::Panic => panic!("fault injection: expiry actor panics on request"),
        }
        Ok(())
    }
}
