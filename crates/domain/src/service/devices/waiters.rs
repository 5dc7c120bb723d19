//! Browsers waiting for an approval to settle: the number page's long-poll.
//!
//! A waiter registers for one approval *before* it reads the approval from the store, and the
//! code that settles an approval (an answer, a cancellation, an expiry) wakes every waiter
//! registered for it after the store has settled it; so a waiter either sees the settled state
//! when it reads, or is woken. Another instance's settlement arrives through the
//! cross-instance events (the binary's `cross_instance`), which call
//! [`Devices::wake_waiters`](super::Devices::wake_waiters).
//!
//! The registry is bounded: at most [`MAX_WAITERS_PER_APPROVAL`] waiters for one approval and
//! [`MAX_WAITERS`] in all. A waiter beyond either cap is refused, and its caller answers as the
//! plain poll does (the page then polls). An entry leaves the registry with its last waiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::ids::ApprovalId;

/// Waiters for one approval: a page open in a few tabs, not more.
pub const MAX_WAITERS_PER_APPROVAL: usize = 4;

/// Waiters in all, on one instance. Each holds one connection open for up to 25 s, so this
/// also stays under the edge's connection cap's order of magnitude.
pub const MAX_WAITERS: usize = 10_000;

struct Entry {
    wake: watch::Sender<()>,
    waiters: usize,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<ApprovalId, Entry>,
    total: usize,
}

/// Who waits for which approval.
#[derive(Default)]
pub struct ApprovalWaiters {
    registry: Mutex<Registry>,
}

/// Why a waiter was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitRefused {
    /// [`MAX_WAITERS_PER_APPROVAL`] already wait for this approval.
    TooManyForApproval,
    /// [`MAX_WAITERS`] already wait on this instance.
    TooMany,
}

/// One registered waiter; leaving (dropping it) removes it from the registry.
pub struct Waiter {
    waiters: Arc<ApprovalWaiters>,
    approval: ApprovalId,
    woken: watch::Receiver<()>,
}

impl Waiter {
    /// Returns once the approval was (possibly) settled since this waiter registered, or since
    /// it last returned. Spurious wake-ups are possible (a listener that reconnected wakes
    /// everyone), so the caller reads the store again.
    pub async fn woken(&mut self) {
        if self.woken.changed().await.is_err() {
            // The sender is only dropped with the entry, which outlives this waiter; never
            // spin if that ever changes.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Ok(mut registry) = self.waiters.registry.lock() {
            registry.total = registry.total.saturating_sub(1);
            if let Some(entry) = registry.entries.get_mut(&self.approval) {
                entry.waiters = entry.waiters.saturating_sub(1);
                if entry.waiters == 0 {
                    registry.entries.remove(&self.approval);
                }
            }
        }
    }
}

impl ApprovalWaiters {
    /// Registers a waiter for `approval`, unless a cap is reached.
    pub fn join(self: &Arc<Self>, approval: &ApprovalId) -> Result<Waiter, WaitRefused> {
        let mut registry = self.registry.lock().map_err(|_| WaitRefused::TooMany)?;
        if registry.total >= MAX_WAITERS {
            return Err(WaitRefused::TooMany);
        }
        let entry = registry
            .entries
            .entry(approval.clone())
            .or_insert_with(|| Entry {
                wake: watch::channel(()).0,
                waiters: 0,
            });
        if entry.waiters >= MAX_WAITERS_PER_APPROVAL {
            return Err(WaitRefused::TooManyForApproval);
        }
        entry.waiters += 1;
        let woken = entry.wake.subscribe();
        registry.total += 1;
        Ok(Waiter {
            waiters: self.clone(),
            approval: approval.clone(),
            woken,
        })
    }

    /// Wakes whoever waits for `approval` (nobody, usually).
    pub fn wake(&self, approval: &ApprovalId) {
        if let Ok(registry) = self.registry.lock()
            && let Some(entry) = registry.entries.get(approval)
        {
            entry.wake.send_replace(());
        }
    }

    /// Wakes every waiter, so each reads the store again: settlements announced while the
    /// cross-instance listener was disconnected are lost.
    pub fn wake_all(&self) {
        if let Ok(registry) = self.registry.lock() {
            for entry in registry.entries.values() {
                entry.wake.send_replace(());
            }
        }
    }

    /// How many wait now (for the metrics).
    pub fn count(&self) -> usize {
        self.registry.lock().map(|r| r.total).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_is_woken_by_its_approval_and_leaves_no_entry_behind() {
        let waiters = Arc::new(ApprovalWaiters::default());
        let a = ApprovalId::from_string("a");
        let mut waiter = waiters.join(&a).unwrap();
        waiters.wake(&ApprovalId::from_string("b"));
        assert!(!waiter.woken.has_changed().unwrap());
        waiters.wake(&a);
        waiter.woken().await;
        assert_eq!(waiters.count(), 1);
        drop(waiter);
        assert_eq!(waiters.count(), 0);
        assert!(waiters.registry.lock().unwrap().entries.is_empty());
    }

    #[test]
    fn more_waiters_than_the_cap_for_one_approval_are_refused() {
        let waiters = Arc::new(ApprovalWaiters::default());
        let a = ApprovalId::from_string("a");
        let held: Vec<_> = (0..MAX_WAITERS_PER_APPROVAL)
            .map(|_| waiters.join(&a).unwrap())
            .collect();
        assert_eq!(
            waiters.join(&a).err(),
            Some(WaitRefused::TooManyForApproval)
        );
        assert!(waiters.join(&ApprovalId::from_string("b")).is_ok());
        drop(held);
        assert!(waiters.join(&a).is_ok());
    }

    #[test]
    fn more_waiters_than_the_overall_cap_are_refused() {
        let waiters = Arc::new(ApprovalWaiters::default());
        let held: Vec<_> = (0..MAX_WAITERS)
            .map(|n| {
                waiters
                    .join(&ApprovalId::from_string(n.to_string()))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            waiters.join(&ApprovalId::from_string("one more")).err(),
            Some(WaitRefused::TooMany)
        );
        drop(held);
        assert_eq!(waiters.count(), 0);
    }
}
