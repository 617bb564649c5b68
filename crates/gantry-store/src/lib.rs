//! gantry-store: where the control plane's state lives durably.
//!
//! The [`Store`] trait is a small transactional key-value interface modelled on etcd's (so that
//! an etcd backend can implement it directly): every committed transaction gets the next
//! store-wide revision, every key remembers the revision that last modified it, and a
//! transaction's compares make it a compare-and-swap.
//!
//! Backends: [`SqliteStore`], the embedded durable default, which group-commits (all
//! transactions queued while one commit is in flight share the next fsync), and [`MemStore`], an
//! in-memory fake for unit tests. [`conformance`] is the one behaviour suite both must pass.

use std::future::Future;
use std::pin::Pin;

mod mem;
mod sqlite;

pub mod conformance;

pub use mem::MemStore;
pub use sqlite::SqliteStore;

/// A store-wide revision: 0 before the first commit; each commit adds one.
pub type Revision = u64;

/// A key with its value and the revision that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: Revision,
}

/// A condition a transaction requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key was last modified at exactly this revision; 0 means "the key does not exist".
    ModRevision { key: String, equals: Revision },
    /// The key holds exactly this value; `None` means "the key does not exist".
    Value {
        key: String,
        equals: Option<Vec<u8>>,
    },
}

/// A write in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// Compares, then writes, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

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

/// The outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Durably committed at this revision.
    Committed(Revision),
    /// A compare failed; nothing was written.
    Conflict,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("the store is closed")]
    Closed,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The durable state of a gantry control plane.
pub trait Store: Send + Sync + 'static {
    /// Every key starting with `prefix`, sorted by key, and the revision the read saw.
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>>;

    /// Queues a transaction and resolves once it is durable (or refused). Transactions are
    /// queued when `commit` is called, not when the future is first polled, and are applied in
    /// call order: callers that serialise their calls get their writes applied in that order.
    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>>;
}
