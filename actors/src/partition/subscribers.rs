//! A partition's push subscribers and their cursors.
//!
//! Each subscriber has a bounded channel (`runtime.subscriber_buffer`). A
//! newly accepted message is pushed straight into it while there is room.
//! When it is full the subscriber becomes *behind*: nothing more is pushed
//! directly, and instead its cursor (the order key of the last message it
//! was given) is refilled from the inbox, in order, as its channel frees
//! up, until it has caught up and goes back to direct pushes.
//!
//! Invariants and why:
//! - Nothing is buffered beyond each channel's bound: a slow or stuck
//!   subscriber costs its channel and a cursor, never memory that grows
//!   with the backlog, and never blocks the partition (`try_send` only).
//! - A subscriber is given messages in inbox order and each at most once
//!   (the cursor only moves forward), so one that falls behind still gets
//!   every message that stays in the inbox by push, instead of having to
//!   re-list and download them (what it missed before this was
//!   `spine_subscriber_lagged_total`, which now counts messages deferred to
//!   a refill). Messages acknowledged meanwhile leave the inbox and are not
//!   pushed.
//! - Refilled messages come without their body (the partition does not
//!   keep bodies once durable); the connection fetches small ones before
//!   pushing, like a download would.
//! - Refills happen whenever the partition has applied messages or served
//!   its ingress queue (any request, including the subscriber's own acks
//!   and re-lists), so a consumer that keeps working keeps being fed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use spine_core::ids::{MailboxId, MessageId};
use spine_core::message::{ChunkLoc, MessageState, MessageStore};
use tokio::sync::mpsc;

use bytes::Bytes;

use crate::node::types::MAX_NOTIFICATION_BODY_BYTES;
use crate::node::Notification;

/// Where a message's body lies, if it is one chunk small enough to push.
fn small_body(m: &MessageState) -> Option<ChunkLoc> {
    if m.envelope.total_chunks > 1 {
        return None;
    }
    m.chunks
        .first()
        .copied()
        .flatten()
        .filter(|loc| loc.len as usize <= MAX_NOTIFICATION_BODY_BYTES)
}

/// One subscription.
#[derive(Debug)]
struct Subscriber {
    tx: mpsc::Sender<Notification>,
    /// Order key of the last message given (or of the newest in the inbox
    /// when it subscribed).
    last: Option<u64>,
    /// Whether it fell behind and is fed from the inbox.
    behind: bool,
}

/// Every subscriber of one partition's mailboxes.
#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    by_mailbox: HashMap<MailboxId, Vec<Subscriber>>,
    /// Mailboxes with at least one subscriber behind.
    behind: HashSet<MailboxId>,
}

impl Subscribers {
    /// Adds a subscriber to `mailbox`'s new messages (those after `last`).
    pub(crate) fn add(
        &mut self,
        mailbox: MailboxId,
        tx: mpsc::Sender<Notification>,
        last: Option<u64>,
    ) {
        let subs = self.by_mailbox.entry(mailbox).or_default();
        subs.retain(|s| !s.tx.is_closed());
        subs.push(Subscriber {
            tx,
            last,
            behind: false,
        });
    }

    /// Pushes newly accepted messages to their mailbox's subscribers that
    /// are not behind; a full channel puts its subscriber behind.
    pub(crate) fn notify(&mut self, store: &MessageStore, accepted: &[(MessageId, Option<Bytes>)]) {
        if self.by_mailbox.is_empty() {
            return;
        }
        for (id, body) in accepted {
            let Some(m) = store.get(id) else {
                continue;
            };
            let Some(subs) = self.by_mailbox.get_mut(&m.envelope.recipient) else {
                continue;
            };
            let order = m.accepted_seq.unwrap_or(0);
            let mut fell_behind = false;
            subs.retain_mut(|s| {
                if s.behind {
                    metrics::counter!("spine_subscriber_lagged_total").increment(1);
                    return !s.tx.is_closed();
                }
                let note = Notification {
                    envelope: Arc::clone(&m.envelope),
                    order,
                    body: body.clone(),
                    body_at: None,
                };
                match s.tx.try_send(note) {
                    Ok(()) => {
                        s.last = Some(order);
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        metrics::counter!("spine_subscriber_lagged_total").increment(1);
                        s.behind = true;
                        fell_behind = true;
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            if fell_behind {
                self.behind.insert(m.envelope.recipient.clone());
            }
        }
    }

    /// Feeds subscribers that are behind from their inbox, as far as their
    /// channels have room; those that catch up go back to direct pushes.
    pub(crate) fn refill(&mut self, store: &MessageStore) {
        if self.behind.is_empty() {
            return;
        }
        let by_mailbox = &mut self.by_mailbox;
        self.behind.retain(|mailbox| {
            let Some(subs) = by_mailbox.get_mut(mailbox) else {
                return false;
            };
            subs.retain(|s| !s.tx.is_closed());
            let mut still_behind = false;
            for s in subs.iter_mut().filter(|s| s.behind) {
                let room = s.tx.capacity();
                if room == 0 {
                    still_behind = true;
                    continue;
                }
                // One more than fits tells whether it has caught up.
                let next = store.inbox(mailbox, s.last, room + 1, |_| true);
                let caught_up = next.len() <= room;
                for m in next.into_iter().take(room) {
                    let order = m.accepted_seq.unwrap_or(0);
                    let note = Notification {
                        envelope: Arc::clone(&m.envelope),
                        order,
                        body: None,
                        body_at: small_body(m),
                    };
                    if s.tx.try_send(note).is_err() {
                        break;
                    }
                    s.last = Some(order);
                }
                if caught_up && s.last >= store.inbox_last(mailbox).or(s.last) {
                    s.behind = false;
                } else {
                    still_behind = true;
                }
            }
            still_behind
        });
    }
}
