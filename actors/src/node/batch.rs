//! Batched requests: the items of a `SEND_BATCH` or `ACKNOWLEDGE_BATCH`
//! reach each partition as one ingress request per partition, instead of
//! one request per item.
//!
//! A partition dispatches the items of such a request one by one, exactly
//! as if each had come alone (the same checks, the same deferral while an
//! earlier change to the same message is in flight, the same log groups),
//! so a batch changes nothing a caller can observe but the cost: one
//! queue slot, one wake-up and one deadline per partition per batch
//! instead of per item.
//!
//! Invariants and why:
//! - Results come back in item order, one per item; an item that fails
//!   before reaching its partition (directory refusal, a closed node) fails
//!   alone.
//! - A batch request takes one of its partition's queue permits, like a
//!   single request: the queue is bounded in requests, and a request holds
//!   at most `max_batch` items (the protocol's limit), so it stays bounded
//!   in items too.
//! - Every item is bounded by the same `request_wait_ms` deadline as a
//!   single request; an item whose partition dies with it is
//!   `NODE_OUTCOME_UNKNOWN` (writes are never resent).

use spine_core::ids::{MailboxId, MessageId};
use tokio::sync::oneshot;

use super::error::RequestError;
use super::handle::{Active, NodeHandle};
use super::types::{SendOutcome, SendRequest};
use crate::partition::msg::{PartitionMsg, Reply, SendItem};

/// A batch's items by partition, each with its position in the batch.
struct Groups<I>(Vec<Vec<(usize, I)>>);

impl<I> Groups<I> {
    fn new() -> Groups<I> {
        Groups(Vec::new())
    }

    fn push(&mut self, partition: u32, index: usize, item: I) {
        let p = partition as usize;
        if self.0.len() <= p {
            self.0.resize_with(p + 1, Vec::new);
        }
        self.0[p].push((index, item));
    }
}

/// One result per item until its answer comes (every item gets one).
fn unanswered<T>(n: usize) -> Vec<Result<T, RequestError>> {
    (0..n).map(|_| Err(RequestError::OutcomeUnknown)).collect()
}

impl NodeHandle {
    /// Sends several messages; one result per request, in order (see
    /// [`NodeHandle::send`]).
    pub async fn send_many(
        &self,
        requests: Vec<SendRequest>,
    ) -> Vec<Result<SendOutcome, RequestError>> {
        let mut results = unanswered(requests.len());
        let mut groups = Groups::new();
        for (i, req) in requests.into_iter().enumerate() {
            match self.prepare_send(req) {
                Ok((partition, envelope, key, body)) => {
                    groups.push(partition, i, (envelope, key, body));
                }
                Err(e) => results[i] = Err(e),
            }
        }
        self.fan_out(
            groups,
            &mut results,
            |parts: Vec<SendItemParts>, replies| {
                PartitionMsg::SendMany(
                    parts
                        .into_iter()
                        .zip(replies)
                        .map(|((envelope, idempotency_key, body), reply)| SendItem {
                            envelope,
                            idempotency_key,
                            body,
                            reply,
                        })
                        .collect(),
                )
            },
        )
        .await;
        results
    }

    /// Acknowledges several messages addressed to `mailbox`; one result per
    /// id, in order (see [`NodeHandle::acknowledge`]).
    pub async fn acknowledge_many(
        &self,
        mailbox: &MailboxId,
        ids: &[MessageId],
    ) -> Vec<Result<(), RequestError>> {
        if let Err(e) = self.check_open(true) {
            return ids.iter().map(|_| Err(e.clone())).collect();
        }
        let mut groups = Groups::new();
        for (i, id) in ids.iter().enumerate() {
            groups.push(self.shared.owner_of(id), i, *id);
        }
        let mut results = unanswered(ids.len());
        self.fan_out(groups, &mut results, |ids, replies| PartitionMsg::AckMany {
            mailbox: mailbox.clone(),
            items: ids.into_iter().zip(replies).collect(),
        })
        .await;
        results
    }

    /// Sends each partition's items as one request that `make` builds from
    /// them and their replies (concurrently across partitions), and puts
    /// every answer at its item's position in `results`.
    async fn fan_out<I, T>(
        &self,
        groups: Groups<I>,
        results: &mut [Result<T, RequestError>],
        make: impl Fn(Vec<I>, Vec<Reply<T>>) -> PartitionMsg,
    ) {
        let make = &make;
        let calls = groups
            .0
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .map(|(p, group)| async move {
                let (indexes, items): (Vec<usize>, Vec<I>) = group.into_iter().unzip();
                let answers = self
                    .call_group(p as u32, items.len(), |replies| make(items, replies))
                    .await;
                indexes.into_iter().zip(answers).collect::<Vec<_>>()
            });
        for answers in futures_util::future::join_all(calls).await {
            for (i, answer) in answers {
                if let Some(slot) = results.get_mut(i) {
                    *slot = answer;
                }
            }
        }
    }

    /// One request carrying `n` items to `partition`, each answered on its
    /// own reply; bounded like [`NodeHandle::call`] (one queue permit, one
    /// deadline).
    async fn call_group<T>(
        &self,
        partition: u32,
        n: usize,
        make: impl FnOnce(Vec<Reply<T>>) -> PartitionMsg,
    ) -> Vec<Result<T, RequestError>> {
        let shared = &self.shared;
        let all = |e: RequestError| -> Vec<Result<T, RequestError>> {
            (0..n).map(|_| Err(e.clone())).collect()
        };
        // Counted before the check, as `call` does, so shutdown waits for it.
        let _active = Active::enter(&shared.active);
        let (_permit, deadline) = match self.admit(partition).await {
            Ok(admitted) => admitted,
            Err(e) => return all(e),
        };
        let Some(ingress) = shared.ingress.get(partition as usize) else {
            return all(RequestError::Unavailable(partition));
        };
        let (txs, rxs): (Vec<Reply<T>>, Vec<oneshot::Receiver<_>>) =
            (0..n).map(|_| oneshot::channel()).unzip();
        if ingress.tx.send(make(txs)).is_err() {
            return all(RequestError::ShuttingDown);
        }
        shared.wake(partition);
        let mut out = Vec::with_capacity(n);
        for rx in rxs {
            out.push(match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(match shared.failed.get() {
                    Some(reason) => RequestError::NodeFailed(reason.clone()),
                    None => RequestError::OutcomeUnknown,
                }),
                Err(_) => Err(RequestError::Unavailable(partition)),
            });
        }
        out
    }
}

/// A prepared send: its envelope, idempotency key and body.
type SendItemParts = (
    std::sync::Arc<spine_core::envelope::Envelope>,
    Option<String>,
    bytes::Bytes,
);
