//! The WAL actor: maintenance of the log while the node runs.
//!
//! The log's writing itself happens on the group-commit threads (see
//! [`crate::wal::writer`]); this actor owns everything else about the log
//! files: on a timer it checks whether the log has grown well past the live
//! data, and if so frees the oldest segment:
//!
//! 1. every partition carries forward its messages that still need that
//!    segment (a snapshot plus copies of chunks stored there);
//! 2. a barrier on the log waits until those carries are durable (and, the
//!    log's completions being ordered, queued for applying);
//! 3. every partition is asked again; when none needs the segment any more
//!    it is removed and the directory synced.
//!
//! Only sealed segments are ever removed, and a segment can only lose
//! references (new records never go into a sealed segment), so the check in
//! step 3 stays true until the removal. A crash at any point is safe: see
//! `spine_core::message::compaction`.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use spine_core::message::CompactionPolicy;
use tokio::sync::oneshot;

use crate::node::shared::Shared;
use crate::node::sink::LogSink;
use crate::partition::PartitionMsg;

/// The actor.
#[derive(Debug)]
pub struct WalActor;

/// Messages.
#[derive(Debug)]
pub enum WalMsg {
    /// Check the policy and compact if it asks.
    Tick,
    /// Compact the oldest segment now, whatever the policy says; answers
    /// the number of segments removed.
    CompactNow(Option<oneshot::Sender<Result<u64, String>>>),
    /// Fault injection: panic.
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
}

/// State: the node and the timer.
#[derive(Debug)]
pub struct WalActorState {
    shared: Arc<Shared>,
    policy: CompactionPolicy,
    timer: tokio::task::JoinHandle<()>,
}

impl Actor for WalActor {
    type Msg = WalMsg;
    type State = WalActorState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<WalMsg>,
        shared: Arc<Shared>,
    ) -> Result<WalActorState, ActorProcessingErr> {
        let every = Duration::from_millis(shared.runtime.compaction_check_ms);
        let policy = CompactionPolicy {
            min_log_bytes: shared.runtime.compaction_min_log_bytes,
            max_amplification: shared.runtime.compaction_max_amplification,
            ..CompactionPolicy::default()
        };
        let timer = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if myself.cast(WalMsg::Tick).is_err() {
                    return;
                }
            }
        });
        Ok(WalActorState {
            shared,
            policy,
            timer,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WalMsg>,
        state: &mut WalActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.timer.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<WalMsg>,
        msg: WalMsg,
        state: &mut WalActorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WalMsg::Tick => {
                if let Err(e) = compact_round(&state.shared, &state.policy, false).await {
                    tracing::warn!(error = %e, "compaction round did not complete; will retry");
                }
            }
            WalMsg::CompactNow(reply) => {
                let result = compact_round(&state.shared, &state.policy, true).await;
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            #[cfg(any(test, feature = "fault-injection"))]
            WalMsg::Panic => panic!("fault injection: WAL actor panics on request"),
        }
        Ok(())
    }
}

async fn ask<T>(
    shared: &Shared,
    partition: u32,
    make: impl FnOnce(crate::partition::msg::Reply<T>) -> PartitionMsg,
) -> Result<T, String> {
    let actor = shared
        .partition(partition)
        .ok_or_else(|| format!("partition {partition} is restarting"))?;
    let (tx, rx) = oneshot::channel();
    actor
        .cast(make(tx))
        .map_err(|_| format!("partition {partition} is not running"))?;
    let answer = tokio::time::timeout(Duration::from_millis(shared.runtime.request_wait_ms), rx)
        .await
        .map_err(|_| format!("partition {partition} did not answer"))?
        .map_err(|_| format!("partition {partition} restarted"))?;
    answer.map_err(|e| e.to_string())
}

/// Most messages a partition carries per request during compaction. A
/// slice of snapshots is one group of log writes, so a partition stalls its
/// sends and acknowledgements for about a millisecond per slice instead of
/// for a whole segment's worth (tens of thousands of messages, hundreds of
/// milliseconds, when carried in one go).
const CARRY_SLICE: usize = 256;

/// One compaction round: frees the oldest segment if the policy (or
/// `force`) asks and every partition lets go of it. Answers segments removed.
async fn compact_round(
    shared: &Arc<Shared>,
    policy: &CompactionPolicy,
    force: bool,
) -> Result<u64, String> {
    let LogSink::Durable(wal) = &shared.sink else {
        return Ok(0);
    };
    let segments = wal.segments().await.map_err(|e| e.to_string())?;
    let (Some(oldest), Some(next)) = (segments.first(), segments.get(1)) else {
        return Ok(0);
    };
    let partitions = shared.partitions.len() as u32;
    if !force {
        let total: u64 = segments.iter().map(|s| s.bytes).sum();
        let mut live = 0u64;
        for p in 0..partitions {
            live += ask(shared, p, |reply| PartitionMsg::LiveBytes { reply }).await?;
        }
        if total <= policy.min_log_bytes || total <= live.saturating_mul(policy.max_amplification) {
            return Ok(0);
        }
    }
    let upto = oldest.first_seq;
    let mut carried = 0;
    // Messages whose earlier change was still in flight: not carried yet,
    // so the segment may only go after the check below.
    let mut waiting = 0;
    for p in 0..partitions {
        // In slices: between them the partition serves its other requests.
        loop {
            let progress = ask(shared, p, |reply| PartitionMsg::Carry {
                upto_segment: upto,
                limit: CARRY_SLICE,
                reply,
            })
            .await?;
            carried += progress.submitted;
            waiting += progress.busy;
            if !progress.more {
                break;
            }
            // One slice in the log at a time: sends and acknowledgements
            // share every fsync group with at most one slice of carries.
            wal.barrier().await.map_err(|e| e.to_string())?;
        }
    }
    // Service state re-logs its records out of the segment; they are
    // durable when it answers, so it never holds the segment afterwards.
    if let Some(hub) = shared.services.get() {
        carried += usize::try_from(hub.carry(upto).await?).unwrap_or(usize::MAX);
    }
    if carried + waiting > 0 {
        wal.barrier().await.map_err(|e| e.to_string())?;
        for p in 0..partitions {
            let left = ask(shared, p, |reply| PartitionMsg::Carry {
                upto_segment: upto,
                limit: CARRY_SLICE,
                reply,
            })
            .await?
            .left();
            if left > 0 {
                return Err(format!(
                    "partition {p} still needs segment {} ({left} messages busy)",
                    oldest.name
                ));
            }
        }
    }
    let removed = wal
        .remove_segments_before(next.first_seq)
        .await
        .map_err(|e| e.to_string())?;
    for seg in &removed {
        shared.reader.forget_segment(seg.first_seq);
    }
    metrics::counter!("spine_wal_segments_compacted_total").increment(removed.len() as u64);
    tracing::info!(
        removed = removed.len(),
        carried,
        "compaction freed log segments"
    );
    Ok(removed.len() as u64)
}
