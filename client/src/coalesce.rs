//! Send coalescing: sends that callers queued on one connection by the time
//! its writer runs go out as one `SEND_BATCH` instead of one `SEND` each.
//!
//! The writer never waits to fill a group: it packs only what is already
//! queued, so an idle connection sends a lone message as a plain `SEND` with
//! no added delay, and a busy one amortises framing, request dispatch and
//! the answer over many messages (the server still makes every message
//! durable before answering, and answers each one: `SEND_BATCH_OK` carries a
//! result per item, and one item's refusal does not fail the others).
//!
//! Invariants and why:
//! - A group holds at most `max_items` sends (the client's `coalesce_sends`,
//!   narrowed to the server's `max_batch`) and at most `max_payload` body
//!   bytes (the server's `max_payload_bytes`), so a coalesced frame is
//!   always within what the server accepts.
//! - Only bodies under [`COALESCE_BELOW`] are grouped: a large body gains
//!   nothing from sharing a frame, and keeping it alone keeps its answer
//!   independent of others.
//! - Each caller keeps its own request id and pending entry; the batch's id
//!   maps to the callers' ids in item order, so [`split_answer`] gives each
//!   caller exactly the answer a lone `SEND` would have had (`SEND_OK` or
//!   `ERROR`).

use spine_protocol::{BatchItem, Limits, Request, Response};

use crate::error::ClientError;

/// Bodies at least this long are always sent alone.
pub(crate) const COALESCE_BELOW: usize = 64 * 1024;

/// Sends waiting to be written together.
#[derive(Debug)]
pub(crate) struct SendGroup {
    ids: Vec<u64>,
    items: Vec<BatchItem>,
    payload: usize,
    max_items: usize,
    max_payload: usize,
}

/// What a group is written as.
#[derive(Debug)]
pub(crate) enum Grouped {
    /// A single send: a plain `SEND` under the caller's own id.
    One(u64, Request),
    /// Several: one `SEND_BATCH`; the callers' ids in item order.
    Many(Vec<u64>, Request),
}

impl SendGroup {
    /// An empty group for a connection with `coalesce_sends` = `max_items`
    /// whose codec enforces `limits` (already narrowed to the server's).
    pub(crate) fn new(max_items: usize, limits: &Limits) -> SendGroup {
        let max_items = max_items.clamp(1, limits.max_batch.max(1) as usize);
        SendGroup {
            ids: Vec::with_capacity(max_items),
            items: Vec::with_capacity(max_items),
            payload: 0,
            max_items,
            max_payload: limits.max_payload_bytes as usize,
        }
    }

    /// Whether a send with a body of `len` bytes may be grouped at all.
    pub(crate) fn eligible(max_items: usize, len: usize) -> bool {
        max_items > 1 && len < COALESCE_BELOW
    }

    /// Whether a body of `len` bytes fits beside what is grouped (if not,
    /// write the group first).
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.ids.len() < self.max_items && self.payload.saturating_add(len) <= self.max_payload
    }

    /// Adds a send (call [`SendGroup::fits`] first).
    pub(crate) fn push(&mut self, id: u64, item: BatchItem) {
        self.payload = self.payload.saturating_add(item.body.len());
        self.ids.push(id);
        self.items.push(item);
    }

    /// Empties the group into what to write; `None` if it was empty.
    pub(crate) fn take(&mut self) -> Option<Grouped> {
        self.payload = 0;
        match self.ids.len() {
            0 => None,
            1 => {
                let id = self.ids.pop()?;
                let item = self.items.pop()?;
                Some(Grouped::One(
                    id,
                    Request::Send {
                        header: item.header,
                        body: item.body,
                    },
                ))
            }
            n => {
                let ids = std::mem::replace(&mut self.ids, Vec::with_capacity(n));
                let items = std::mem::replace(&mut self.items, Vec::with_capacity(n));
                Some(Grouped::Many(ids, Request::SendBatch(items)))
            }
        }
    }
}

/// Splits a `SEND_BATCH` request that could not be encoded back into one
/// `SEND` per caller (each then fails or succeeds on its own).
pub(crate) fn unbatch(ids: Vec<u64>, request: Request) -> Vec<(u64, Request)> {
    match request {
        Request::SendBatch(items) => ids
            .into_iter()
            .zip(items)
            .map(|(id, item)| {
                (
                    id,
                    Request::Send {
                        header: item.header,
                        body: item.body,
                    },
                )
            })
            .collect(),
        other => ids.into_iter().map(|id| (id, other.clone())).collect(),
    }
}

/// Each caller's answer from the answer to their coalesced batch: its
/// item's `SEND_OK` or `ERROR`; a whole-batch `ERROR` goes to every caller;
/// anything else is a protocol error for every caller.
pub(crate) fn split_answer(
    ids: Vec<u64>,
    response: Response,
) -> Vec<(u64, Result<Response, ClientError>)> {
    match response {
        Response::SendBatchOk(results) if results.len() == ids.len() => ids
            .into_iter()
            .zip(results)
            .map(|(id, result)| {
                let answer = match result {
                    Ok(ok) => Response::SendOk(ok),
                    Err(e) => Response::Error(e),
                };
                (id, Ok(answer))
            })
            .collect(),
        Response::SendBatchOk(results) => {
            let why = format!(
                "a coalesced batch of {} sends was answered with {} results",
                ids.len(),
                results.len()
            );
            ids.into_iter()
                .map(|id| (id, Err(ClientError::protocol(why.clone()))))
                .collect()
        }
        Response::Error(e) => ids
            .into_iter()
            .map(|id| (id, Ok(Response::Error(e.clone()))))
            .collect(),
        other => {
            let why = format!(
                "expected SEND_BATCH_OK for coalesced sends but the server answered {}",
                other.kind()
            );
            ids.into_iter()
                .map(|id| (id, Err(ClientError::protocol(why.clone()))))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use spine_core::ids::{MailboxId, MessageId, WorkflowId};
    use spine_core::message::MessageStatus;
    use spine_core::ErrorCode;
    use spine_protocol::{SendHeader, SendOk, WireError, WireErrorCode};

    use super::*;

    fn item(len: usize) -> BatchItem {
        BatchItem {
            header: SendHeader::simple(
                MailboxId::parse("X26ABC2").unwrap(),
                WorkflowId::parse("W").unwrap(),
            ),
            body: Bytes::from(vec![7u8; len]),
        }
    }

    fn ok(n: u32) -> SendOk {
        SendOk {
            message_id: MessageId::parse(&format!("20200601122152{n:06}_D59900")).unwrap(),
            duplicate: false,
            status: MessageStatus::Accepted,
        }
    }

    #[test]
    fn a_lone_send_stays_a_send_and_several_become_one_batch() {
        let mut g = SendGroup::new(64, &Limits::default());
        assert!(g.take().is_none());
        g.push(5, item(10));
        match g.take() {
            Some(Grouped::One(5, Request::Send { body, .. })) => assert_eq!(body.len(), 10),
            other => panic!("{other:?}"),
        }
        assert!(g.take().is_none());
        for id in [7, 9, 11] {
            g.push(id, item(1));
        }
        match g.take() {
            Some(Grouped::Many(ids, Request::SendBatch(items))) => {
                assert_eq!(ids, vec![7, 9, 11]);
                assert_eq!(items.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        assert!(g.take().is_none());
    }

    #[test]
    fn a_group_stays_within_the_items_and_bytes_the_server_accepts() {
        let limits = Limits {
            max_batch: 3,
            max_payload_bytes: 100,
            ..Limits::default()
        };
        // coalesce_sends above the server's max_batch is narrowed to it.
        let mut g = SendGroup::new(64, &limits);
        for id in 0..3 {
            assert!(g.fits(10));
            g.push(id, item(10));
        }
        assert!(!g.fits(0), "a fourth item exceeds max_batch");
        g.take();
        g.push(1, item(60));
        assert!(g.fits(40));
        assert!(!g.fits(41), "41 more bytes exceed max_payload_bytes");
        assert!(SendGroup::eligible(2, COALESCE_BELOW - 1));
        assert!(!SendGroup::eligible(2, COALESCE_BELOW));
        assert!(!SendGroup::eligible(1, 0), "coalesce_sends 1 turns it off");
    }

    #[test]
    fn each_caller_gets_its_own_items_answer() {
        let refused = WireError::new(WireErrorCode::DeliveryRefused, "DIR_X", "no");
        let answers = split_answer(
            vec![4, 6],
            Response::SendBatchOk(vec![Ok(ok(1)), Err(refused.clone())]),
        );
        assert!(matches!(&answers[0], (4, Ok(Response::SendOk(o))) if *o == ok(1)));
        assert!(matches!(&answers[1], (6, Ok(Response::Error(e))) if *e == refused));

        let whole = split_answer(vec![1, 2], Response::Error(refused.clone()));
        assert!(whole
            .iter()
            .all(|(_, a)| matches!(a, Ok(Response::Error(e)) if *e == refused)));

        for wrong in [Response::SendBatchOk(vec![Ok(ok(1))]), Response::Pong] {
            let answers = split_answer(vec![1, 2], wrong);
            assert_eq!(answers.len(), 2);
            assert!(answers
                .iter()
                .all(|(_, a)| matches!(a, Err(e) if e.code() == "CLIENT_PROTOCOL")));
        }
    }

    #[test]
    fn an_unencodable_batch_splits_back_into_sends_in_order() {
        let back = unbatch(vec![3, 8], Request::SendBatch(vec![item(1), item(2)]));
        let lens: Vec<(u64, usize)> = back
            .iter()
            .map(|(id, r)| match r {
                Request::Send { body, .. } => (*id, body.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lens, vec![(3, 1), (8, 2)]);
    }
}
