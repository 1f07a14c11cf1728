//! [`CreditWindow`]: the push credit of one subscription, for the server
//! (to decide whether it may push) and the client (to know when to grant
//! more).
//!
//! Invariants and why:
//! - A server pushes only while credit is available, and each push uses
//!   one; the client grants more with `CREDIT`. So a slow client is never
//!   sent more than it asked for, and the server never buffers pushes for
//!   it: past the credit it simply stops (the node's subscriber buffer then
//!   drops notifications and the client re-lists its inbox to catch up).
//! - Credit never exceeds the window's maximum (grants saturate), so a
//!   client cannot make a server promise unbounded pushes.

/// Push credit with an upper bound.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CreditWindow {
    available: u32,
    max: u32,
}

impl CreditWindow {
    /// A window holding `initial` credit (capped at `max`).
    pub fn new(initial: u32, max: u32) -> CreditWindow {
        CreditWindow {
            available: initial.min(max),
            max,
        }
    }

    /// Credit left.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Adds `add` credit, saturating at the maximum; returns the credit now
    /// available.
    pub fn grant(&mut self, add: u32) -> u32 {
        self.available = self.available.saturating_add(add).min(self.max);
        self.available
    }

    /// Uses one credit if there is any; false means "do not push now".
    pub fn try_take(&mut self) -> bool {
        match self.available.checked_sub(1) {
            Some(left) => {
                self.available = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_is_used_and_granted_within_bounds() {
        let mut w = CreditWindow::new(2, 5);
        assert!(w.try_take());
        assert!(w.try_take());
        assert!(!w.try_take());
        assert_eq!(w.available(), 0);
        assert_eq!(w.grant(3), 3);
        assert_eq!(w.grant(u32::MAX), 5);
        assert_eq!(CreditWindow::new(10, 4).available(), 4);
    }
}
