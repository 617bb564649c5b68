//! [`FailingStore`]: a test tool that makes commits fail on demand.

use crate::{BoxFuture, KeyValue, LeaseId, Revision, Store, StoreError, Txn, TxnOutcome, Watch};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The error an injected failure returns.
pub const INJECTED_FAILURE: &str = "injected failure";

/// **A test tool**, for testing how callers of a [`Store`] handle failed writes: wraps any
/// store and passes everything through to it, except that after
/// [`fail_next_commits(n)`](FailingStore::fail_next_commits) the next `n` commits fail with
/// `StoreError::Io("injected failure")` without reaching the inner store (so they write
/// nothing and take no revision). Only `commit` fails; reads, watches, compaction and leases
/// always pass through.
///
/// ```
/// # use gantry_store::{FailingStore, MemStore, Store, StoreError, Txn};
/// # use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = FailingStore::new(Arc::new(MemStore::new()));
/// store.fail_next_commits(1);
/// let failed = store.commit(Txn::new().put("k", "v")).await;
/// assert_eq!(failed, Err(StoreError::Io("injected failure".into())));
/// assert!(store.commit(Txn::new().put("k", "v")).await.is_ok());
/// # });
/// ```
pub struct FailingStore {
    inner: Arc<dyn Store>,
    failures: AtomicUsize,
}

impl FailingStore {
    /// Wraps `inner`; nothing fails until [`fail_next_commits`](Self::fail_next_commits).
    pub fn new(inner: Arc<dyn Store>) -> Self {
        FailingStore {
            inner,
            failures: AtomicUsize::new(0),
        }
    }

    /// Makes the next `n` commits fail (replacing any failures still pending; 0 cancels them).
    pub fn fail_next_commits(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// How many injected failures are still to come.
    pub fn pending_failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

impl Store for FailingStore {
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        self.inner.range(prefix)
    }

    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Box::pin(async { Err(StoreError::Io(INJECTED_FAILURE.into())) });
        }
        self.inner.commit(txn)
    }

    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'static, Result<Watch, StoreError>> {
        self.inner.watch(prefix, from)
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StoreError>> {
        self.inner.compact(revision)
    }

    fn grant_lease(&self, ttl: Duration) -> BoxFuture<'static, Result<LeaseId, StoreError>> {
        self.inner.grant_lease(ttl)
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>> {
        self.inner.keep_alive(lease)
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>> {
        self.inner.revoke(lease)
    }

    fn expire_leases(&self, now: Instant) -> BoxFuture<'static, Result<Vec<LeaseId>, StoreError>> {
        self.inner.expire_leases(now)
    }
}
