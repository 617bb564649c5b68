//! Lease deadlines, kept in memory by both backends: a lease's time to live is not durable
//! (after a reopen it starts again), only the lease and its keys are.

use crate::{LeaseId, StoreError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One lease's time to live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    pub ttl: Duration,
    pub deadline: Instant,
}

/// The deadlines of the leases that exist.
#[derive(Debug, Default)]
pub(crate) struct Timers(HashMap<LeaseId, Timer>);

impl Timers {
    /// Starts (or restores) a lease's timer.
    pub fn insert(&mut self, id: LeaseId, timer: Timer) {
        self.0.insert(id, timer);
    }

    /// Starts a new timer of `ttl` at `now`.
    pub fn start(&mut self, id: LeaseId, ttl: Duration, now: Instant) {
        self.insert(id, Timer::new(ttl, now));
    }

    /// Whether no lease exists.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Restarts the lease's time to live at `now`, unless it is unknown or already up.
    pub fn keep_alive(&mut self, id: LeaseId, now: Instant) -> Result<(), StoreError> {
        match self.0.get_mut(&id) {
            Some(t) if t.deadline > now => {
                t.deadline = Timer::new(t.ttl, now).deadline;
                Ok(())
            }
            _ => Err(StoreError::LeaseNotFound(id)),
        }
    }

    /// Removes a lease's timer.
    pub fn remove(&mut self, id: LeaseId) -> Option<Timer> {
        self.0.remove(&id)
    }

    /// Whether some lease's time is up at `now`.
    pub fn any_expired(&self, now: Instant) -> bool {
        self.0.values().any(|t| t.deadline <= now)
    }

    /// Removes and returns the leases whose time is up at `now`, by id.
    pub fn take_expired(&mut self, now: Instant) -> Vec<(LeaseId, Timer)> {
        let mut expired: Vec<_> = self
            .0
            .iter()
            .filter(|(_, t)| t.deadline <= now)
            .map(|(id, t)| (*id, *t))
            .collect();
        expired.sort_by_key(|(id, _)| *id);
        for (id, _) in &expired {
            self.0.remove(id);
        }
        expired
    }
}

impl Timer {
    /// A timer of `ttl` started at `now` (a `ttl` too large for the clock never expires).
    pub fn new(ttl: Duration, now: Instant) -> Timer {
        let deadline = now
            .checked_add(ttl)
            .or_else(|| now.checked_add(Duration::from_secs(1 << 32)))
            .unwrap_or(now);
        Timer { ttl, deadline }
    }
}
