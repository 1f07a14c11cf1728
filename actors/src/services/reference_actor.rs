//! The reference-services actor: the built-in provider of PDS, SCR and EPS.
//!
//! Invariants and why:
//! - check → log → apply, one request at a time: the actor checks a request
//!   against applied state, logs the records that make it true, waits until
//!   they are durable, applies them, and only then answers and takes the
//!   next request. Checks therefore always see every earlier change, which
//!   is what makes an EPS release exactly-once under concurrent releases,
//!   and an answer always means "on disk".
//! - Reads log nothing and are answered at once.
//! - A record that cannot be made durable fails the request
//!   (`SVC_UNAVAILABLE`) and changes nothing.
//! - Compaction asks it to carry its records out of old segments; it
//!   re-logs them (durably) before answering.
//! - Its state is only ever a cache of the log: the actor is supervised
//!   (the `ReferenceServices` child of the node supervisor), and if it
//!   fails, its state is rebuilt from the log exactly as at start-up
//!   ([`rebuild_reference`](super::supervised::rebuild_reference), after a
//!   barrier makes everything it submitted durable). Every answered change
//!   was durable before its answer, so none is lost; none is applied twice
//!   because replay is "last record wins" per entity.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use spine_core::ids::OdsCode;
use spine_core::services::{Asid, Correlation};
use spine_core::services::{
    Builtin, Caller, ReferenceServices, Routed, ServiceError, ServiceRecord,
};
use spine_core::time::Clock;
use spine_core::wal::PendingRecord;
use tokio::sync::oneshot;

use super::router_actor::RouterMsg;
use crate::node::sink::LogSink;

/// Messages.
#[derive(Debug)]
pub enum ReferenceMsg {
    /// Serve a routed request and answer the router.
    Call {
        /// Which reference service.
        builtin: Builtin,
        /// The router's correlation id.
        correlation: Correlation,
        /// The request.
        request: Arc<Routed>,
        /// Where to answer.
        reply_to: ActorRef<RouterMsg>,
    },
    /// Carry every record in segments at or below `upto` forward; answers
    /// how many were re-logged (durable when answered).
    Carry {
        /// The segment (its first sequence number).
        upto: u64,
        /// Where to answer.
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// Counts of patients, summaries and prescriptions.
    Counts(oneshot::Sender<(usize, usize, usize)>),
    /// Fault injection: panic.
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
    /// Test hook: take no further message until `release` resolves.
    #[cfg(test)]
    Stall(oneshot::Receiver<()>),
}

/// The actor.
#[derive(Debug)]
pub struct ReferenceActor;

/// Its state.
pub struct ReferenceState {
    services: ReferenceServices,
    sink: LogSink,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ReferenceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceState").finish()
    }
}

/// What the actor starts from.
#[allow(missing_debug_implementations)]
pub struct ReferenceArgs {
    /// Recovered state.
    pub services: ReferenceServices,
    /// The log.
    pub sink: LogSink,
    /// The node's clock.
    pub clock: Arc<dyn Clock>,
}

impl Actor for ReferenceActor {
    type Msg = ReferenceMsg;
    type State = ReferenceState;
    type Arguments = ReferenceArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ReferenceMsg>,
        args: ReferenceArgs,
    ) -> Result<ReferenceState, ActorProcessingErr> {
        Ok(ReferenceState {
            services: args.services,
            sink: args.sink,
            clock: args.clock,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ReferenceMsg>,
        msg: ReferenceMsg,
        state: &mut ReferenceState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ReferenceMsg::Call {
                builtin,
                correlation,
                request,
                reply_to,
            } => {
                let result = state.serve(builtin, &request).await;
                let _ = reply_to.cast(RouterMsg::Complete {
                    from: None,
                    correlation,
                    result,
                });
            }
            ReferenceMsg::Carry { upto, reply } => {
                let records = state.services.carry(upto);
                let n = records.len() as u64;
                let result = state.log_and_apply(records).await.map(|()| n);
                let _ = reply.send(result.map_err(|e| e.to_string()));
            }
            ReferenceMsg::Counts(reply) => {
                let s = &state.services;
                let _ = reply.send((s.pds.len(), s.scr.len(), s.eps.len()));
            }
            #[cfg(any(test, feature = "fault-injection"))]
            ReferenceMsg::Panic => {
                panic!("fault injection: reference services actor panics on request")
            }
            #[cfg(test)]
            ReferenceMsg::Stall(release) => {
                let _ = release.await;
            }
        }
        Ok(())
    }
}

impl ReferenceState {
    async fn serve(
        &mut self,
        builtin: Builtin,
        request: &Routed,
    ) -> Result<bytes::Bytes, ServiceError> {
        let caller = Caller {
            asid: Asid::parse(&request.asid).map_err(|why| ServiceError::BadRequest { why })?,
            ods: OdsCode::parse(&request.ods).map_err(ServiceError::Id)?,
        };
        let handled = self.services.handle(
            builtin,
            &request.operation,
            &caller,
            &request.body,
            self.clock.now(),
        )?;
        self.log_and_apply(handled.records).await?;
        Ok(handled.response)
    }

    async fn log_and_apply(&mut self, records: Vec<ServiceRecord>) -> Result<(), ServiceError> {
        if records.is_empty() {
            return Ok(());
        }
        let unavailable = |why: String| ServiceError::Unavailable { why };
        let pending = records
            .iter()
            .map(ServiceRecord::to_record)
            .collect::<Result<Vec<PendingRecord>, String>>()
            .map_err(unavailable)?;
        let (tx, rx) = oneshot::channel();
        self.sink
            .submit(
                pending,
                Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            )
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let appended = rx
            .await
            .map_err(|_| unavailable("the log stopped".into()))?
            .map_err(|e| unavailable(e.to_string()))?;
        for (record, at) in records.into_iter().zip(appended) {
            self.services.apply(record, at.location.segment);
        }
        Ok(())
    }
}
