//! [`ByteBudget`]: a limit on bytes held in memory, shared by whoever holds
//! them (a node's MESH uploads, one connection's frames and downloads).
//!
//! Invariants and why:
//! - A holder reserves everything it will hold in one step, before it
//!   allocates or reads: holders that each kept part of a budget while
//!   waiting for more would deadlock one another.
//! - A reservation larger than the whole budget is granted the whole
//!   budget (it then waits for every other holder to finish), so one
//!   request never waits for ever; the configurations that feed this keep
//!   the budget at least as large as the largest single request.
//! - Waiting is the backpressure: nothing is refused or dropped for want
//!   of budget. Permits count KiB, so a `u32` permit count covers TiBs.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per permit.
const UNIT: u64 = 1024;

/// A byte budget (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct ByteBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
}

/// Bytes reserved from a [`ByteBudget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Reserved(OwnedSemaphorePermit);

/// The budget was closed (the node is stopping).
#[derive(Debug)]
pub(crate) struct BudgetClosed;

impl ByteBudget {
    /// A budget of `bytes` (rounded up to whole KiB, at least one).
    pub(crate) fn new(bytes: u64) -> ByteBudget {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let units = units.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        ByteBudget {
            permits: Arc::new(Semaphore::new(units as usize)),
            total_units: units,
        }
    }

    fn units(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(self.total_units)
    }

    /// Waits until `bytes` can be held, then holds them.
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<Reserved, BudgetClosed> {
        Arc::clone(&self.permits)
            .acquire_many_owned(self.units(bytes))
            .await
            .map(Reserved)
            .map_err(|_| BudgetClosed)
    }

    /// Bytes not held by anyone now (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

impl Reserved {
    /// Gives back what is held beyond `bytes`.
    pub(crate) fn shrink_to(&mut self, bytes: u64) {
        let keep = usize::try_from(bytes.div_ceil(UNIT)).unwrap_or(usize::MAX);
        if let Some(excess) = self.0.num_permits().checked_sub(keep) {
            drop(self.0.split(excess));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_whole_and_give_back() {
        let budget = ByteBudget::new(10 * 1024);
        let mut a = budget.reserve(6 * 1024).await.unwrap();
        assert_eq!(budget.available_bytes(), 4 * 1024);
        // 6 KiB more cannot be had yet: the reservation waits, whole.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(6 * 1024).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // (Tokio's semaphore queues waiters first come, first served; the
        // head of the queue collects permits as they free up and gives
        // them back if cancelled, so only holders that ask for more while
        // holding could deadlock, and a reservation never does.)
        a.shrink_to(1);
        assert!(waiting.await.unwrap().is_ok());
        assert_eq!(budget.available_bytes(), 9 * 1024, "a keeps 1 KiB");
        drop(a);
        // Bigger than the whole budget: granted the whole budget.
        let all = budget.reserve(1 << 40).await.unwrap();
        assert_eq!(budget.available_bytes(), 0);
        drop(all);
        assert_eq!(budget.available_bytes(), 10 * 1024);
    }
}
