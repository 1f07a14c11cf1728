//! The NHSMESH replay cache: each `(mailbox, nonce, nonce count)` is
//! accepted once.
//!
//! mesh-client uses one nonce per client object and counts up on every
//! request, so the cache keeps, per `(mailbox, nonce)`, the highest count
//! seen and a 1,024-count sliding window of which counts below it were used
//! (the IPsec anti-replay scheme). Memory is bounded by `capacity` nonces,
//! not by the number of requests, which at 20,000 requests a second over a
//! two-hour token window would be hundreds of millions of entries.
//!
//! Invariants and why:
//! - A count is accepted at most once while its nonce is remembered; a count
//!   more than 1,024 below the highest is refused (it cannot be told apart
//!   from a replay).
//! - A nonce is forgotten only once every token it accepted is older than
//!   the token window, i.e. would be refused as stale anyway.
//! - When `capacity` nonces are remembered and none can be forgotten, a new
//!   nonce is refused ([`Seen::Full`], a retryable 503), never admitted
//!   unchecked.
//! - [`ReplayCache::forget`] un-records a count after a retryable failure
//!   (429/503), because mesh-client retries those with the same token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use spine_core::time::Timestamp;

const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What the cache says about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// First use: recorded.
    Fresh,
    /// Used before (or too old to tell).
    Replayed,
    /// No room for another nonce.
    Full,
}

#[derive(Debug)]
struct Window {
    max: u64,
    /// Bit `i` set: count `max - i` was used.
    bits: [u64; WORDS],
    newest_token: Timestamp,
}

impl Window {
    fn new(count: u64, at: Timestamp) -> Window {
        let mut bits = [0; WORDS];
        bits[0] = 1;
        Window {
            max: count,
            bits,
            newest_token: at,
        }
    }

    fn bit(&self, d: u64) -> bool {
        self.bits[(d / 64) as usize] >> (d % 64) & 1 == 1
    }

    fn set(&mut self, d: u64, on: bool) {
        let word = &mut self.bits[(d / 64) as usize];
        if on {
            *word |= 1 << (d % 64);
        } else {
            *word &= !(1 << (d % 64));
        }
    }

    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = by % 64;
        for i in (0..WORDS).rev() {
            let from = i.checked_sub(words);
            let hi = from.map_or(0, |f| self.bits[f] << bits);
            let lo = match (from.and_then(|f| f.checked_sub(1)), bits) {
                (Some(f), b) if b > 0 => self.bits[f] >> (64 - b),
                _ => 0,
            };
            self.bits[i] = hi | lo;
        }
    }

    fn record(&mut self, count: u64, at: Timestamp) -> Seen {
        if at > self.newest_token {
            self.newest_token = at;
        }
        if count > self.max {
            self.shift(count - self.max);
            self.max = count;
            self.set(0, true);
            return Seen::Fresh;
        }
        let d = self.max - count;
        if d >= WINDOW || self.bit(d) {
            return Seen::Replayed;
        }
        self.set(d, true);
        Seen::Fresh
    }
}

/// Bounded memory of used tokens.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    nonces: DashMap<(String, String), Window>,
    capacity: usize,
    window: Duration,
    last_sweep_secs: AtomicU64,
}

impl ReplayCache {
    /// A cache for at most `capacity` nonces, with tokens valid ± `window`.
    pub(crate) fn new(capacity: usize, window: Duration) -> ReplayCache {
        ReplayCache {
            nonces: DashMap::new(),
            capacity,
            window,
            last_sweep_secs: AtomicU64::new(0),
        }
    }

    /// Records `(mailbox, nonce, count)` of a token stamped `at`.
    pub(crate) fn check(
        &self,
        mailbox: &str,
        nonce: &str,
        count: u64,
        at: Timestamp,
        now: Timestamp,
    ) -> Seen {
        let key = (mailbox.to_string(), nonce.to_string());
        if let Some(mut w) = self.nonces.get_mut(&key) {
            return w.record(count, at);
        }
        if self.nonces.len() >= self.capacity {
            self.sweep(now);
            if self.nonces.len() >= self.capacity {
                return Seen::Full;
            }
        }
        match self.nonces.entry(key) {
            dashmap::Entry::Occupied(mut w) => w.get_mut().record(count, at),
            dashmap::Entry::Vacant(v) => {
                v.insert(Window::new(count, at));
                Seen::Fresh
            }
        }
    }

    /// Un-records a count (its request failed in a way the client retries
    /// with the same token).
    pub(crate) fn forget(&self, mailbox: &str, nonce: &str, count: u64) {
        let key = (mailbox.to_string(), nonce.to_string());
        if let Some(mut w) = self.nonces.get_mut(&key) {
            if count <= w.max && w.max - count < WINDOW {
                let d = w.max - count;
                w.set(d, false);
            }
        }
    }

    /// Nonces remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nonces.len()
    }

    /// Forgets nonces whose every token is stale (at most once a second).
    fn sweep(&self, now: Timestamp) {
        let secs = now.as_unix_seconds();
        let last = self.last_sweep_secs.load(Ordering::Relaxed);
        if last == secs
            || self
                .last_sweep_secs
                .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let window = self.window;
        self.nonces
            .retain(|_, w| w.newest_token.saturating_add(window) >= now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000 + secs)
    }

    #[test]
    fn each_count_is_accepted_once() {
        let c = ReplayCache::new(100, Duration::from_secs(7200));
        assert_eq!(c.check("A", "n", 0, t(0), t(0)), Seen::Fresh);
        assert_eq!(c.check("A", "n", 0, t(0), t(0)), Seen::Replayed);
        assert_eq!(c.check("A", "n", 2, t(0), t(0)), Seen::Fresh);
        assert_eq!(c.check("A", "n", 1, t(0), t(0)), Seen::Fresh);
        assert_eq!(c.check("A", "n", 1, t(0), t(0)), Seen::Replayed);
        assert_eq!(c.check("B", "n", 1, t(0), t(0)), Seen::Fresh);
        assert_eq!(c.check("A", "n", 5000, t(0), t(0)), Seen::Fresh);
        assert_eq!(
            c.check("A", "n", 2, t(0), t(0)),
            Seen::Replayed,
            "too old to tell"
        );
    }

    #[test]
    fn a_forgotten_count_may_be_retried() {
        let c = ReplayCache::new(100, Duration::from_secs(7200));
        assert_eq!(c.check("A", "n", 7, t(0), t(0)), Seen::Fresh);
        c.forget("A", "n", 7);
        assert_eq!(c.check("A", "n", 7, t(0), t(0)), Seen::Fresh);
        assert_eq!(c.check("A", "n", 7, t(0), t(0)), Seen::Replayed);
    }

    #[test]
    fn a_full_cache_refuses_new_nonces_until_old_ones_are_stale() {
        let c = ReplayCache::new(16, Duration::from_secs(60));
        for i in 0..16 {
            assert_eq!(c.check("A", &format!("n{i}"), 0, t(0), t(0)), Seen::Fresh);
        }
        assert_eq!(c.check("A", "new", 0, t(1), t(1)), Seen::Full);
        // Known nonces still work while full.
        assert_eq!(c.check("A", "n3", 1, t(1), t(1)), Seen::Fresh);
        assert_eq!(c.check("A", "new", 0, t(120), t(120)), Seen::Fresh);
        assert!(c.len() <= 16);
    }

    proptest! {
        /// Against a model (a set of used counts): the window never accepts
        /// a count twice, and accepts every first use within the window.
        #[test]
        fn matches_a_set_model(counts in proptest::collection::vec(0u64..3000, 1..400)) {
            let c = ReplayCache::new(100, Duration::from_secs(7200));
            let mut used = std::collections::HashSet::new();
            let mut max = 0u64;
            for n in counts {
                let seen = c.check("A", "n", n, t(0), t(0));
                let first = !used.contains(&n);
                let in_window = n + WINDOW > max;
                if seen == Seen::Fresh {
                    prop_assert!(first, "count {n} accepted twice");
                    used.insert(n);
                    max = max.max(n);
                } else {
                    prop_assert!(!first || !in_window, "first use of {n} refused (max {max})");
                }
            }
        }
    }
}
