//! Records of one kind held in memory and written through to the store: what a small service
//! keeps (Secrets Manager's secrets, SSM's parameters). Reads never wait for writes; writes are
//! serialised, committed in one transaction, and only then seen.

use crate::error::ServiceError;
use crate::record::{Kind, RecordError};
use gantry_store::{Store, Txn, TxnOutcome};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The rows of a [`Records`] table as a change sees them: edits are recorded for the commit.
pub struct Rows<'a, R> {
    kind: Kind<R>,
    rows: &'a mut BTreeMap<String, R>,
    txn: Txn,
}

impl<R: Clone + Serialize + DeserializeOwned> Rows<'_, R> {
    pub fn get(&self, id: &str) -> Option<&R> {
        self.rows.get(id)
    }

    pub fn all(&self) -> &BTreeMap<String, R> {
        self.rows
    }

    pub fn put(&mut self, id: &str, value: R) {
        self.txn = self.kind.put(std::mem::take(&mut self.txn), id, &value);
        self.rows.insert(id.to_string(), value);
    }

    pub fn delete(&mut self, id: &str) {
        self.txn = self.kind.delete(std::mem::take(&mut self.txn), id);
        self.rows.remove(id);
    }
}

/// One kind of record, in memory and in the store.
pub struct Records<R> {
    kind: Kind<R>,
    store: Arc<dyn Store>,
    rows: RwLock<Arc<BTreeMap<String, R>>>,
    writer: tokio::sync::Mutex<()>,
    /// The service's error for a store that failed.
    fault: fn(String) -> ServiceError,
}

impl<R: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Records<R> {
    /// Loads every record of `kind` from `store` (a service's [`crate::Scoped`] namespace).
    pub async fn load(
        kind: Kind<R>,
        store: Arc<dyn Store>,
        fault: fn(String) -> ServiceError,
    ) -> Result<Self, RecordError> {
        let rows = kind
            .load(store.as_ref())
            .await?
            .into_iter()
            .map(|(id, v, _)| (id, v))
            .collect();
        Ok(Records {
            kind,
            store,
            rows: RwLock::new(Arc::new(rows)),
            writer: tokio::sync::Mutex::new(()),
            fault,
        })
    }

    /// Every record as it is now.
    pub fn snapshot(&self) -> Arc<BTreeMap<String, R>> {
        match self.rows.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Makes a change: `f` edits a copy of the rows; the edits are committed in one
    /// transaction and then published. Nothing changes when `f` or the store fails.
    pub async fn update<T>(
        &self,
        f: impl FnOnce(&mut Rows<'_, R>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _guard = self.writer.lock().await;
        let mut copy = (*self.snapshot()).clone();
        let mut rows = Rows {
            kind: self.kind,
            rows: &mut copy,
            txn: Txn::new(),
        };
        let out = f(&mut rows)?;
        let txn = rows.txn;
        if !txn.ops.is_empty() {
            match self.store.commit(txn).await {
                Ok(TxnOutcome::Committed(_)) => {}
                Ok(TxnOutcome::Conflict) => return Err((self.fault)("a conflicting write".into())),
                Err(e) => return Err((self.fault)(e.to_string())),
            }
        }
        match self.rows.write() {
            Ok(mut r) => *r = Arc::new(copy),
            Err(p) => *p.into_inner() = Arc::new(copy),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::{FailingStore, MemStore};

    const THINGS: Kind<String> = Kind::new("things");

    fn fault(e: String) -> ServiceError {
        ServiceError::new("InternalFailure", 500, e)
    }

    #[tokio::test]
    async fn changes_are_durable_and_failed_ones_leave_nothing() {
        let store = Arc::new(FailingStore::new(Arc::new(MemStore::new())));
        let t = Records::load(THINGS, store.clone(), fault).await.unwrap();
        t.update(|r| {
            r.put("a", "1".into());
            r.put("b", "2".into());
            Ok(())
        })
        .await
        .unwrap();
        store.fail_next_commits(1);
        let e = t
            .update(|r| {
                r.delete("a");
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(t.snapshot().len(), 2);
        let refused: Result<(), _> = t
            .update(|r| {
                r.delete("b");
                Err(ServiceError::new("Nope", 400, "no"))
            })
            .await;
        assert!(refused.is_err());
        let again = Records::load(THINGS, store.inner().clone(), fault)
            .await
            .unwrap();
        assert_eq!(again.snapshot().get("b").map(String::as_str), Some("2"));
        assert_eq!(again.snapshot().len(), 2);
    }
}
