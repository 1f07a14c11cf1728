//! [`Taken`]: the native consumers' table of the messages they have taken,
//! and when each one's acknowledgement completed.
//!
//! A consumer takes a message (so a push and a listing never both fetch
//! it) and, once its acknowledgement completes, stamps it with the time
//! (so a later listing that still shows it is told apart: one that started
//! after the stamp is a duplicate delivery, an older one is only stale).
//!
//! Stamping each message was a second look-up in a table of over a million
//! entries per message (a cache miss each: 8 % of the load generator's
//! CPU). Most messages arrive with their bodies and are acknowledged in the
//! batch that was open when they were taken, so such a message is instead
//! taken under that batch's *ticket*, and acknowledging the batch stamps the
//! ticket once for all of them. A message that still has to be downloaded
//! joins whichever batch is open when its download ends, so it is taken
//! [`IN_PROGRESS`] and stamped on its own.
//!
//! Invariants:
//! - An entry's value is [`IN_PROGRESS`], a stamp, or a ticket; a ticket
//!   resolves to [`IN_PROGRESS`] until [`Taken::stamp_ticket`], then to its
//!   stamp, so [`Taken::state`] answers exactly what stamping each message
//!   would have.
//! - A ticket is stamped only after every acknowledgement in its batch has
//!   been answered (a message whose acknowledgement failed is
//!   [`Taken::forget`]ten first), so no message reads as acknowledged early.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use crate::sharded::ShardedMap;

/// When a taken message's acknowledgement completed: microseconds since
/// the tally's epoch, plus 1 (so it is never [`IN_PROGRESS`]); below
/// [`TICKET`].
pub(crate) type Stamp = u64;

/// The [`Stamp`] of a message still being fetched or acknowledged.
pub(crate) const IN_PROGRESS: Stamp = 0;

/// Marks an entry's value as a ticket (the rest is its index).
const TICKET: u64 = 1 << 63;

/// A batch's ticket, as stored in its messages' entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// Taken messages by key, and the tickets' stamps.
#[derive(Debug)]
pub(crate) struct Taken<K> {
    /// Sharded: it grows to millions of entries (see [`ShardedMap`]).
    by_key: ShardedMap<K, u64>,
    tickets: Vec<Stamp>,
}

impl<K> Default for Taken<K> {
    fn default() -> Self {
        Taken {
            by_key: ShardedMap::default(),
            tickets: Vec::new(),
        }
    }
}

impl<K: Eq + Hash> Taken<K> {
    /// A new ticket, in progress until stamped.
    pub(crate) fn open_ticket(&mut self) -> Ticket {
        let index = self.tickets.len() as u64;
        self.tickets.push(IN_PROGRESS);
        Ticket(TICKET | index)
    }

    /// Takes `key` (under `ticket`, or on its own when `None`); false when
    /// it was already taken.
    pub(crate) fn take(&mut self, key: K, ticket: Option<Ticket>) -> bool {
        match self.by_key.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(ticket.map_or(IN_PROGRESS, |t| t.0));
                true
            }
        }
    }

    /// Stamps a message taken on its own.
    pub(crate) fn stamp(&mut self, key: K, at: Stamp) {
        debug_assert!(at != IN_PROGRESS && at < TICKET);
        self.by_key.insert(key, at);
    }

    /// Stamps every message taken under `ticket`.
    pub(crate) fn stamp_ticket(&mut self, ticket: Ticket, at: Stamp) {
        debug_assert!(at != IN_PROGRESS && at < TICKET);
        if let Some(slot) = self.tickets.get_mut((ticket.0 & !TICKET) as usize) {
            *slot = at;
        }
    }

    /// Forgets `key` (its fetch or acknowledgement failed: it may be taken
    /// again).
    pub(crate) fn forget(&mut self, key: &K) {
        self.by_key.remove(key);
    }

    /// `None` if not taken; [`IN_PROGRESS`] while its acknowledgement has
    /// not completed; else when it completed.
    pub(crate) fn state(&self, key: &K) -> Option<Stamp> {
        let value = *self.by_key.get(key)?;
        if value & TICKET == 0 {
            return Some(value);
        }
        Some(
            self.tickets
                .get((value & !TICKET) as usize)
                .copied()
                .unwrap_or(IN_PROGRESS),
        )
    }

    /// Whether nothing was ever taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_ticket_reads_in_progress_until_stamped_then_as_its_stamp() {
        let mut t = Taken::default();
        let ticket = t.open_ticket();
        assert!(t.take(1u64, Some(ticket)));
        assert!(t.take(2u64, Some(ticket)));
        assert!(t.take(3u64, None));
        assert!(!t.take(1u64, None), "taken twice");
        assert_eq!(t.state(&1), Some(IN_PROGRESS));
        assert_eq!(t.state(&3), Some(IN_PROGRESS));
        assert_eq!(t.state(&4), None);
        t.stamp_ticket(ticket, 50);
        assert_eq!(t.state(&1), Some(50));
        assert_eq!(t.state(&2), Some(50));
        assert_eq!(t.state(&3), Some(IN_PROGRESS), "not in the ticket");
        t.stamp(3, 60);
        assert_eq!(t.state(&3), Some(60));
        t.forget(&2);
        assert_eq!(t.state(&2), None);
        assert!(t.take(2u64, None), "a forgotten message may be taken again");
    }

    /// One step of a consumer, against a model that stamps each message.
    #[derive(Debug, Clone)]
    enum Step {
        /// Take this key, under the open ticket or on its own.
        Take(u8, bool),
        /// Stamp the open ticket (and open another).
        StampTicket,
        /// Stamp this key (if it was taken on its own).
        Stamp(u8),
        Forget(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (any::<u8>(), any::<bool>()).prop_map(|(k, t)| Step::Take(k, t)),
            Just(Step::StampTicket),
            any::<u8>().prop_map(Step::Stamp),
            any::<u8>().prop_map(Step::Forget),
        ]
    }

    proptest! {
        #[test]
        fn answers_as_a_table_stamping_each_message(steps in prop::collection::vec(step(), 0..200)) {
            let mut taken = Taken::default();
            // The model: key -> (stamp, the ticket generation or None).
            let mut model: HashMap<u8, (Stamp, Option<usize>)> = HashMap::new();
            let mut ticket = taken.open_ticket();
            let mut generation = 0usize;
            let mut now: Stamp = 1;
            for s in steps {
                now += 1;
                match s {
                    Step::Take(k, under) => {
                        let fresh = !model.contains_key(&k);
                        prop_assert_eq!(taken.take(k, under.then_some(ticket)), fresh);
                        if fresh {
                            model.insert(k, (IN_PROGRESS, under.then_some(generation)));
                        }
                    }
                    Step::StampTicket => {
                        taken.stamp_ticket(ticket, now);
                        for v in model.values_mut() {
                            if v.1 == Some(generation) {
                                v.0 = now;
                            }
                        }
                        ticket = taken.open_ticket();
                        generation += 1;
                    }
                    Step::Stamp(k) => {
                        if let Some(v) = model.get_mut(&k).filter(|v| v.1.is_none()) {
                            v.0 = now;
                            taken.stamp(k, now);
                        }
                    }
                    Step::Forget(k) => {
                        model.remove(&k);
                        taken.forget(&k);
                    }
                }
                for k in 0..=u8::MAX {
                    prop_assert_eq!(taken.state(&k), model.get(&k).map(|v| v.0));
                }
            }
        }
    }
}
