//! The restart policy ractor leaves to us: one-for-one restarts with an
//! intensity limit (at most `max_restarts` within `window`), after which the
//! failure escalates. Pure logic, tested on its own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `max_restarts` restarts of one child within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within the window.
    pub max_restarts: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Recent restarts of one child.
#[derive(Debug, Clone, Default)]
pub struct RestartTracker {
    recent: VecDeque<Instant>,
}

impl RestartTracker {
    /// Records a failure at `now`: `true` to restart, `false` to escalate.
    pub fn allow(&mut self, policy: &RestartPolicy, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= policy.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= policy.max_restarts as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_k_restarts_per_window_then_escalates_and_forgets_old_ones() {
        let policy = RestartPolicy {
            max_restarts: 3,
            window: Duration::from_secs(10),
        };
        let mut t = RestartTracker::default();
        let t0 = Instant::now();
        assert!(t.allow(&policy, t0));
        assert!(t.allow(&policy, t0 + Duration::from_secs(1)));
        assert!(t.allow(&policy, t0 + Duration::from_secs(2)));
        assert!(
            !t.allow(&policy, t0 + Duration::from_secs(3)),
            "fourth within the window escalates"
        );
        // At 11 s the restarts at 0 s and 1 s have aged out; the one at 2 s
        // has not, so two more fit before the limit.
        assert!(t.allow(&policy, t0 + Duration::from_secs(11)));
        assert!(t.allow(&policy, t0 + Duration::from_secs(11)));
        assert!(!t.allow(&policy, t0 + Duration::from_secs(11)));
    }
}
