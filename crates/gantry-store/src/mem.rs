//! An in-memory [`Store`]: the fake for unit tests. Same semantics as the durable backends,
//! change log and watches included.

use crate::lease::Timers;
use crate::watch::{Change, Feed, History, Page, PAGE_REVISIONS};
use crate::{
    BoxFuture, Compare, Event, KeyValue, LeaseId, Op, Revision, Store, StoreError, StoreOptions,
    Txn, TxnOutcome, Watch,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

struct Entry {
    value: Vec<u8>,
    mod_revision: Revision,
    lease: Option<LeaseId>,
}

struct Inner {
    revision: Revision,
    /// The oldest revision `history` still holds.
    compact_revision: Revision,
    data: BTreeMap<String, Entry>,
    /// Every event of revisions `compact_revision..=revision`, in order.
    history: VecDeque<Event>,
    timers: Timers,
    /// The keys attached to each lease that exists.
    lease_keys: HashMap<LeaseId, BTreeSet<String>>,
    next_lease: i64,
}

struct Shared {
    inner: Mutex<Inner>,
    options: StoreOptions,
    /// Sent to under the `inner` lock, so watches see commits in revision order.
    feed: Feed,
    /// Whether the thread that expires leases every `options.lease_tick` runs.
    ticking: AtomicBool,
}

/// Keeps everything in a map; nothing survives the process.
pub struct MemStore {
    shared: Arc<Shared>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::with_options(StoreOptions::default())
    }
}

impl MemStore {
    /// An empty store with the default [`StoreOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with these options.
    pub fn with_options(options: StoreOptions) -> Self {
        let (feed, _) = broadcast::channel(options.watch_buffer.max(1));
        MemStore {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    revision: 0,
                    compact_revision: 1,
                    data: BTreeMap::new(),
                    history: VecDeque::new(),
                    timers: Timers::default(),
                    lease_keys: HashMap::new(),
                    next_lease: 1,
                }),
                options,
                feed,
                ticking: AtomicBool::new(false),
            }),
        }
    }
}

impl Shared {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Closed)
    }
}

impl Inner {
    fn holds(&self, compare: &Compare) -> bool {
        match compare {
            Compare::ModRevision { key, equals } => {
                self.data.get(key).map_or(0, |e| e.mod_revision) == *equals
            }
            Compare::Value { key, equals } => {
                self.data.get(key).map(|e| &e.value) == equals.as_ref()
            }
        }
    }

    /// Applies one transaction; the events it made are appended to `history`.
    fn apply(&mut self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        if !txn.compares.iter().all(|c| self.holds(c)) {
            return Ok(TxnOutcome::Conflict);
        }
        for op in &txn.ops {
            if let Op::Put {
                lease: Some(lease), ..
            } = op
            {
                if !self.lease_keys.contains_key(lease) {
                    return Err(StoreError::LeaseNotFound(*lease));
                }
            }
        }
        self.revision += 1;
        let revision = self.revision;
        for op in txn.ops {
            match op {
                Op::Put { key, value, lease } => {
                    self.history.push_back(Event::Put(KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        mod_revision: revision,
                        lease,
                    }));
                    if let Some(l) = lease {
                        self.lease_keys.entry(l).or_default().insert(key.clone());
                    }
                    let entry = Entry {
                        value,
                        mod_revision: revision,
                        lease,
                    };
                    if let Some(old) = self.data.insert(key.clone(), entry) {
                        self.detach(&key, old.lease, lease);
                    }
                }
                Op::Delete { key } => {
                    if let Some(old) = self.data.remove(&key) {
                        self.detach(&key, old.lease, None);
                        self.history.push_back(Event::Delete {
                            key,
                            mod_revision: revision,
                        });
                    }
                }
            }
        }
        Ok(TxnOutcome::Committed(revision))
    }

    /// Detaches `key` from lease `old` when it no longer belongs to it.
    fn detach(&mut self, key: &str, old: Option<LeaseId>, new: Option<LeaseId>) {
        if let Some(old) = old.filter(|o| Some(*o) != new) {
            if let Some(keys) = self.lease_keys.get_mut(&old) {
                keys.remove(key);
            }
        }
    }

    fn grant(&mut self, ttl: Duration) -> LeaseId {
        let id = LeaseId(self.next_lease);
        self.next_lease += 1;
        self.timers.start(id, ttl, Instant::now());
        self.lease_keys.insert(id, BTreeSet::new());
        id
    }

    fn revoke(&mut self, id: LeaseId) -> Result<(), StoreError> {
        self.timers
            .remove(id)
            .ok_or(StoreError::LeaseNotFound(id))?;
        self.end_lease(id);
        Ok(())
    }

    fn expire(&mut self, now: Instant) -> Vec<LeaseId> {
        let expired: Vec<_> = self
            .timers
            .take_expired(now)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for id in &expired {
            self.end_lease(*id);
        }
        expired
    }

    /// Deletes the lease's keys, in one new revision if it had any.
    fn end_lease(&mut self, id: LeaseId) {
        let keys = self.lease_keys.remove(&id).unwrap_or_default();
        if keys.is_empty() {
            return;
        }
        self.revision += 1;
        for key in keys {
            self.data.remove(&key);
            self.history.push_back(Event::Delete {
                key,
                mod_revision: self.revision,
            });
        }
    }

    fn compact(&mut self, revision: Revision) {
        if revision <= self.compact_revision {
            return;
        }
        let keep = self.history.partition_point(|e| e.revision() < revision);
        self.history.drain(..keep);
        self.compact_revision = revision;
    }
}

impl Shared {
    /// Runs `f` on the state; if it committed revisions, broadcasts them and compacts.
    fn write<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Result<T, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.revision;
        let events_before = inner.history.len();
        let out = f(&mut inner);
        if inner.revision > before {
            if self.feed.receiver_count() > 0 {
                let events = inner.history.range(events_before..).cloned().collect();
                let _ = self.feed.send(Arc::new(Change {
                    first: before + 1,
                    last: inner.revision,
                    events,
                }));
            }
            if let Some(to) = self
                .options
                .auto_compact(inner.revision, inner.compact_revision)
            {
                inner.compact(to);
            }
        }
        Ok(out)
    }

    /// Starts the thread that expires leases, once, if the options ask for one. It holds the
    /// store weakly and ends within a tick of the store being dropped.
    fn start_ticking(self: &Arc<Self>) {
        let Some(tick) = self.options.tick() else {
            return;
        };
        if self.ticking.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("gantry-mem-leases".into())
            .spawn(move || loop {
                std::thread::sleep(tick);
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                let now = Instant::now();
                let _ = shared.write(|inner| inner.expire(now));
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the lease expiry thread");
            self.ticking.store(false, Ordering::SeqCst);
        }
    }
}

/// A watch's view of the history: weak, so that watches do not keep a dropped store alive.
struct MemHistory(Weak<Shared>);

impl History for MemHistory {
    fn read(&self, prefix: String, from: Revision) -> BoxFuture<'static, Result<Page, StoreError>> {
        let page = match self.0.upgrade() {
            None => Err(StoreError::Closed),
            Some(shared) => shared.lock().and_then(|inner| {
                if from < inner.compact_revision {
                    return Err(StoreError::Compacted {
                        compact_revision: inner.compact_revision,
                    });
                }
                let through = inner.revision.min(from.saturating_add(PAGE_REVISIONS - 1));
                let start = inner.history.partition_point(|e| e.revision() < from);
                let events = inner
                    .history
                    .range(start..)
                    .take_while(|e| e.revision() <= through)
                    .filter(|e| e.key().starts_with(&prefix))
                    .cloned()
                    .collect();
                Ok(Page {
                    events,
                    through,
                    head: inner.revision,
                })
            }),
        };
        Box::pin(async move { page })
    }
}

impl Store for MemStore {
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let result = self.shared.lock().map(|g| {
            let kvs = g
                .data
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, e)| KeyValue {
                    key: k.clone(),
                    value: e.value.clone(),
                    mod_revision: e.mod_revision,
                    lease: e.lease,
                })
                .collect();
            (kvs, g.revision)
        });
        Box::pin(async move { result })
    }

    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>> {
        let result = self.shared.write(|inner| inner.apply(txn)).and_then(|r| r);
        Box::pin(async move { result })
    }

    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'static, Result<Watch, StoreError>> {
        let live = self.shared.feed.subscribe();
        let history: Arc<dyn History> = Arc::new(MemHistory(Arc::downgrade(&self.shared)));
        let prefix = prefix.to_string();
        Box::pin(async move { Watch::start(&prefix, from, live, history).await })
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StoreError>> {
        let result = self.shared.lock().and_then(|mut inner| {
            if revision > inner.revision {
                return Err(StoreError::FutureRevision {
                    current: inner.revision,
                });
            }
            inner.compact(revision);
            Ok(())
        });
        Box::pin(async move { result })
    }

    fn grant_lease(&self, ttl: Duration) -> BoxFuture<'static, Result<LeaseId, StoreError>> {
        let result = self.shared.lock().map(|mut inner| inner.grant(ttl));
        if result.is_ok() {
            self.shared.start_ticking();
        }
        Box::pin(async move { result })
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>> {
        let result = self
            .shared
            .lock()
            .and_then(|mut inner| inner.timers.keep_alive(lease, Instant::now()));
        Box::pin(async move { result })
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>> {
        let result = self
            .shared
            .write(|inner| inner.revoke(lease))
            .and_then(|r| r);
        Box::pin(async move { result })
    }

    fn expire_leases(&self, now: Instant) -> BoxFuture<'static, Result<Vec<LeaseId>, StoreError>> {
        let result = self.shared.write(|inner| inner.expire(now));
        Box::pin(async move { result })
    }
}
