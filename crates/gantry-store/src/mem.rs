//! An in-memory [`Store`]: the fake for unit tests. Same semantics as the durable backends.

use crate::{BoxFuture, Compare, KeyValue, Op, Revision, Store, StoreError, Txn, TxnOutcome};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    revision: Revision,
    data: BTreeMap<String, (Vec<u8>, Revision)>,
}

/// Keeps everything in a map; nothing survives the process.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Applies one transaction to a map: the logic every backend shares.
pub(crate) fn apply(
    data: &mut BTreeMap<String, (Vec<u8>, Revision)>,
    revision: &mut Revision,
    txn: Txn,
) -> TxnOutcome {
    let ok = txn.compares.iter().all(|c| match c {
        Compare::ModRevision { key, equals } => data.get(key).map_or(0, |(_, r)| *r) == *equals,
        Compare::Value { key, equals } => data.get(key).map(|(v, _)| v) == equals.as_ref(),
    });
    if !ok {
        return TxnOutcome::Conflict;
    }
    *revision += 1;
    for op in txn.ops {
        match op {
            Op::Put { key, value } => {
                data.insert(key, (value, *revision));
            }
            Op::Delete { key } => {
                data.remove(&key);
            }
        }
    }
    TxnOutcome::Committed(*revision)
}

impl Store for MemStore {
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let result = self.inner.lock().map_err(|_| StoreError::Closed).map(|g| {
            let kvs = g
                .data
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, (v, r))| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                    mod_revision: *r,
                })
                .collect();
            (kvs, g.revision)
        });
        Box::pin(async move { result })
    }

    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>> {
        let result = self
            .inner
            .lock()
            .map_err(|_| StoreError::Closed)
            .map(|mut g| {
                let Inner { revision, data } = &mut *g;
                apply(data, revision, txn)
            });
        Box::pin(async move { result })
    }
}
