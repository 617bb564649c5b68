//! gantry-store: where the control plane's state lives durably.
//!
//! The [`Store`] trait is a small transactional key-value interface modelled on etcd's (so that
//! an etcd backend can implement it directly): every committed transaction gets the next
//! store-wide revision, every key remembers the revision that last modified it, and a
//! transaction's compares (on a key's revision or value) make it a compare-and-swap. A
//! transaction whose compares fail writes nothing and takes no revision.
//!
//! **Watch.** [`Store::watch`] follows the keys under a prefix from a revision on: a [`Watch`]
//! yields [`Event::Put`] and [`Event::Delete`] in revision order, first the history the store
//! still keeps, then live changes as they commit, each exactly once. Backends keep a change log
//! of the newest [`StoreOptions::history_revisions`] revisions (older ones are compacted
//! automatically, or by [`Store::compact`]); a watch from before it fails with
//! [`StoreError::Compacted`], as in etcd. A watch that falls behind the live feed catches up
//! from the log, or, if the log no longer reaches back, ends with `Compacted` (start again from
//! a fresh [`Store::range`]).
//!
//! **Leases.** [`Store::grant_lease`] gives a [`LeaseId`] with a time to live; puts made with
//! [`Txn::put_leased`] attach keys to it. [`Store::keep_alive`] starts the time again;
//! when it runs out (checked every [`StoreOptions::lease_tick`], or when a test calls
//! [`Store::expire_leases`] with an instant of its choosing) or on [`Store::revoke`], all the
//! lease's keys are deleted in one transaction at one new revision, which watches see. Leases
//! are durable; their time to live starts again when a store reopens.
//!
//! Backends: [`SqliteStore`], the embedded durable default, which group-commits (all
//! transactions queued while one commit is in flight share the next fsync) and writes its change
//! log in the same SQLite transaction as the data, and [`MemStore`], an in-memory fake for unit
//! tests. [`conformance`] is the one behaviour suite both must pass. [`FailingStore`] wraps any
//! store and fails commits on demand, for testing callers.

#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

mod codec;
mod failing;
mod lease;
mod mem;
mod sqlite;
mod watch;

pub mod conformance;

pub use failing::{FailingStore, INJECTED_FAILURE};
pub use mem::MemStore;
pub use sqlite::SqliteStore;
pub use watch::Watch;

/// A store-wide revision: 0 before the first commit; each commit adds one.
pub type Revision = u64;

/// A lease: a time to live that keys can be attached to. Granted by [`Store::grant_lease`];
/// when it expires or is revoked, every key attached to it is deleted. The number is the
/// backend's id (positive, never reused by a store; etcd's are 64-bit too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A key with its value and the revision that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Vec<u8>,
    /// The revision of the commit that last wrote it.
    pub mod_revision: Revision,
    /// The lease the key is attached to, if any (see [`Txn::put_leased`]).
    pub lease: Option<LeaseId>,
}

/// A condition a transaction requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key was last modified at exactly this revision; 0 means "the key does not exist".
    ModRevision {
        /// The key compared.
        key: String,
        /// The revision required.
        equals: Revision,
    },
    /// The key holds exactly this value; `None` means "the key does not exist".
    Value {
        /// The key compared.
        key: String,
        /// The value required, or `None` for absence.
        equals: Option<Vec<u8>>,
    },
}

/// A write in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Writes the key; attaches it to `lease`, or with `None` detaches it from any lease.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        value: Vec<u8>,
        /// The lease it is attached to from now on, if any.
        lease: Option<LeaseId>,
    },
    /// Deletes the key (nothing, not even an event, if it does not exist).
    Delete {
        /// The key deleted.
        key: String,
    },
}

/// Compares, then writes, atomically: if every compare holds, all the writes happen at one new
/// revision; otherwise nothing happens ([`TxnOutcome::Conflict`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// The conditions, all required.
    pub compares: Vec<Compare>,
    /// The writes, applied in order.
    pub ops: Vec<Op>,
}

impl Txn {
    /// A transaction with no compares and no writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the key (detaching it from any lease).
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        });
        self
    }

    /// Writes the key attached to `lease`: when the lease expires or is revoked, the key is
    /// deleted (unless written again without it first). The commit fails with
    /// [`StoreError::LeaseNotFound`], writing nothing, if the lease does not exist.
    pub fn put_leased(
        mut self,
        key: impl Into<String>,
        value: impl Into<Vec<u8>>,
        lease: LeaseId,
    ) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        });
        self
    }

    /// Deletes the key.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// The same transaction with every key rewritten by `f` (a store namespace's prefix).
    pub fn map_keys(self, f: impl Fn(&str) -> String) -> Self {
        Txn {
            compares: self
                .compares
                .into_iter()
                .map(|c| match c {
                    Compare::ModRevision { key, equals } => Compare::ModRevision {
                        key: f(&key),
                        equals,
                    },
                    Compare::Value { key, equals } => Compare::Value {
                        key: f(&key),
                        equals,
                    },
                })
                .collect(),
            ops: self
                .ops
                .into_iter()
                .map(|o| match o {
                    Op::Put { key, value, lease } => Op::Put {
                        key: f(&key),
                        value,
                        lease,
                    },
                    Op::Delete { key } => Op::Delete { key: f(&key) },
                })
                .collect(),
        }
    }

    /// Requires the key's last modification to be at revision `equals` (0: the key does
    /// not exist).
    pub fn when_revision(mut self, key: impl Into<String>, equals: Revision) -> Self {
        self.compares.push(Compare::ModRevision {
            key: key.into(),
            equals,
        });
        self
    }

    /// Requires the key to hold exactly `value`.
    pub fn when_value(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.compares.push(Compare::Value {
            key: key.into(),
            equals: Some(value.into()),
        });
        self
    }

    /// Requires the key not to exist.
    pub fn when_absent(mut self, key: impl Into<String>) -> Self {
        self.compares.push(Compare::Value {
            key: key.into(),
            equals: None,
        });
        self
    }
}

/// One change to one key, as a [`Watch`] delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The key was written; `mod_revision` of the [`KeyValue`] is the revision of the change.
    Put(KeyValue),
    /// The key was deleted at `mod_revision` (deleting a key that does not exist is no event).
    Delete {
        /// The key deleted.
        key: String,
        /// The revision of the delete.
        mod_revision: Revision,
    },
}

impl Event {
    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            Event::Put(kv) => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put(kv) => kv.mod_revision,
            Event::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// Settings every backend takes; [`Default`] gives the values the plain constructors use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How many of the newest revisions the change log keeps for watches: when the log holds
    /// more than this (by a sixteenth, so that compaction runs in chunks), the older revisions
    /// are compacted. Default 10 000. 0 keeps no log at all (for SQLite: nothing is written
    /// but the data), so watches can only start at the next revision.
    pub history_revisions: u64,
    /// How often the store expires leases by itself (as
    /// [`Store::expire_leases`]`(Instant::now())` would). Default 100 ms; `None` leaves expiry
    /// to explicit `expire_leases` calls, for tests that drive the clock.
    pub lease_tick: Option<Duration>,
    /// How many commit batches a live watch may fall behind before it goes back to the change
    /// log to catch up. Default 1024.
    pub watch_buffer: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            history_revisions: 10_000,
            watch_buffer: 1024,
            lease_tick: Some(Duration::from_millis(100)),
        }
    }
}

impl StoreOptions {
    /// The lease tick, if any, at least a millisecond (so that 0 cannot make a busy loop).
    pub(crate) fn tick(&self) -> Option<Duration> {
        self.lease_tick.map(|t| t.max(Duration::from_millis(1)))
    }

    /// The revision to compact to, if the log (revisions `compact_revision..=head`) has grown
    /// far enough past `history_revisions`.
    pub(crate) fn auto_compact(
        &self,
        head: Revision,
        compact_revision: Revision,
    ) -> Option<Revision> {
        let keep_from = (head + 1).saturating_sub(self.history_revisions);
        let step = (self.history_revisions / 16).max(1);
        (keep_from >= compact_revision.saturating_add(step)).then_some(keep_from)
    }
}

/// The outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Durably committed at this revision.
    Committed(Revision),
    /// A compare failed; nothing was written.
    Conflict,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (disk, database); the operation may or may not have taken effect only
    /// where documented (a failed commit wrote nothing).
    #[error("store I/O failed: {0}")]
    Io(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The history asked for has been compacted: the oldest revision still kept is
    /// `compact_revision`.
    #[error("revision compacted: the oldest revision kept is {compact_revision}")]
    Compacted {
        /// The oldest revision a watch can still start from.
        compact_revision: Revision,
    },
    /// The revision asked for has not been written yet; the newest is `current`.
    #[error("revision in the future: the newest revision is {current}")]
    FutureRevision {
        /// The newest revision.
        current: Revision,
    },
    /// The lease does not exist: never granted, revoked, or expired.
    #[error("lease {0} not found")]
    LeaseNotFound(LeaseId),
}

/// A boxed, sendable future: what the [`Store`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The durable state of a gantry control plane.
pub trait Store: Send + Sync + 'static {
    /// Every key starting with `prefix`, sorted by key, and the revision the read saw.
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>>;

    /// Queues a transaction and resolves once it is durable (or refused). Transactions are
    /// queued when `commit` is called, not when the future is first polled, and are applied in
    /// call order: callers that serialise their calls get their writes applied in that order.
    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>>;

    /// Follows the changes to keys starting with `prefix`, from revision `from` on (0 and 1
    /// both mean "from the first revision"; to see only what is new, pass the revision a
    /// [`range`](Store::range) saw plus one). The watch first replays the history the store
    /// keeps, then delivers live changes as they commit, without gap or duplicate. Fails with
    /// [`StoreError::Compacted`] when `from` is older than the history kept. The watch starts
    /// when `watch` is called (like `commit`, not when the future is first polled).
    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'static, Result<Watch, StoreError>>;

    /// Drops the history before `revision`: watches from older revisions then fail with
    /// [`StoreError::Compacted`]. Compacting to a revision at or before the current compaction
    /// does nothing; compacting past the newest revision fails with
    /// [`StoreError::FutureRevision`]. Consumes no revision. Backends also compact on their
    /// own to keep [`StoreOptions::history_revisions`].
    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Grants a lease that lives `ttl` unless kept alive. Durable (it survives a reopen, its
    /// time to live starting again then); consumes no revision.
    fn grant_lease(&self, ttl: Duration) -> BoxFuture<'static, Result<LeaseId, StoreError>>;

    /// Starts the lease's time to live again from now. Fails with
    /// [`StoreError::LeaseNotFound`] if it does not exist or its time is already up (even if
    /// the expiry has not run yet).
    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Ends the lease now: its keys are deleted in one transaction at a new revision (none if
    /// it had no keys). Fails with [`StoreError::LeaseNotFound`] if it does not exist.
    fn revoke(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Ends every lease whose time to live is up at `now`, as [`revoke`](Store::revoke)
    /// does (one transaction and revision per lease that had keys), and answers which. The
    /// store calls this by itself every [`StoreOptions::lease_tick`]; tests call it with a
    /// `now` of their choosing to expire leases without waiting.
    fn expire_leases(&self, now: Instant) -> BoxFuture<'static, Result<Vec<LeaseId>, StoreError>>;
}
