//! The record layer: typed records over the [`Store`]'s keys.
//!
//! A resource kind is declared once, as a [`Kind`] constant naming its key prefix and its type
//! (`const CLUSTERS: Kind<Cluster> = Kind::new("clusters")`); putting, deleting and loading are
//! generic. Every service sees the store through a [`Scoped`] view, one key namespace per
//! service and region (`ecs/us-east-1/clusters/demo`) or per account for global services
//! (`iam/global/users/alice`), so regions never share records and a new service cannot
//! collide with an old one.

use gantry_store::{
    BoxFuture, KeyValue, LeaseId, Revision, Store, StoreError, Txn, TxnOutcome, Watch,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A kind of record: its key prefix and its type.
pub struct Kind<R> {
    pub prefix: &'static str,
    _type: PhantomData<fn() -> R>,
}

impl<R> Clone for Kind<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Kind<R> {}

/// A record that could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {key}: {error}")]
    Corrupt {
        key: String,
        error: serde_json::Error,
    },
}

impl<R: Serialize + DeserializeOwned> Kind<R> {
    pub const fn new(prefix: &'static str) -> Self {
        Kind {
            prefix,
            _type: PhantomData,
        }
    }

    /// The key of the record `id` (ids may contain `/`).
    pub fn key(&self, id: &str) -> String {
        format!("{}/{id}", self.prefix)
    }

    /// Adds the write of `value` as record `id` to `txn`.
    pub fn put(&self, txn: Txn, id: &str, value: &R) -> Txn {
        // Records are plain data with string keys: serialisation cannot fail.
        txn.put(self.key(id), serde_json::to_vec(value).unwrap_or_default())
    }

    /// Adds the delete of record `id` to `txn`.
    pub fn delete(&self, txn: Txn, id: &str) -> Txn {
        txn.delete(self.key(id))
    }

    /// Every record of the kind, with its id and the revision that last wrote it.
    pub async fn load(&self, store: &dyn Store) -> Result<Vec<(String, R, Revision)>, RecordError> {
        let prefix = format!("{}/", self.prefix);
        let (kvs, _) = store.range(&prefix).await?;
        kvs.into_iter()
            .map(|kv| {
                let value =
                    serde_json::from_slice(&kv.value).map_err(|error| RecordError::Corrupt {
                        key: kv.key.clone(),
                        error,
                    })?;
                let id = kv.key[prefix.len()..].to_string();
                Ok((id, value, kv.mod_revision))
            })
            .collect()
    }
}

/// A namespace of the store: every key read or written through it gets its prefix.
pub struct Scoped {
    inner: Arc<dyn Store>,
    prefix: String,
}

impl Scoped {
    /// The namespace of a regional service (`ecs`, `us-east-1`).
    pub fn regional(inner: Arc<dyn Store>, service: &str, region: &str) -> Scoped {
        Scoped {
            inner,
            prefix: format!("{service}/{region}/"),
        }
    }

    /// The namespace of a global service (IAM, STS): one per account.
    pub fn global(inner: Arc<dyn Store>, service: &str) -> Scoped {
        Scoped {
            inner,
            prefix: format!("{service}/global/"),
        }
    }

    /// The key prefix, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn scope(&self, txn: Txn) -> Txn {
        txn.map_keys(|k| format!("{}{k}", self.prefix))
    }

    /// Moves records written before namespaces existed (`clusters/x`) into this namespace, one
    /// transaction per kind, each key moved only if nobody changed it meanwhile (a
    /// compare-and-swap on its revision). Returns how many records moved.
    pub async fn adopt_unscoped(&self, prefixes: &[&str]) -> Result<usize, StoreError> {
        let mut moved = 0;
        for p in prefixes {
            let (kvs, _) = self.inner.range(&format!("{p}/")).await?;
            if kvs.is_empty() {
                continue;
            }
            let mut txn = Txn::new();
            for kv in &kvs {
                txn = txn
                    .when_revision(kv.key.clone(), kv.mod_revision)
                    .put(format!("{}{}", self.prefix, kv.key), kv.value.clone())
                    .delete(kv.key.clone());
            }
            match self.inner.commit(txn).await? {
                TxnOutcome::Committed(_) => moved += kvs.len(),
                TxnOutcome::Conflict => {
                    return Err(StoreError::Io(format!(
                        "records under {p}/ changed while they were being moved; start again"
                    )))
                }
            }
        }
        Ok(moved)
    }
}

impl Store for Scoped {
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let full = format!("{}{prefix}", self.prefix);
        Box::pin(async move {
            let (kvs, rev) = self.inner.range(&full).await?;
            let kvs = kvs
                .into_iter()
                .map(|mut kv| {
                    kv.key = kv.key[self.prefix.len()..].to_string();
                    kv
                })
                .collect();
            Ok((kvs, rev))
        })
    }

    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>> {
        self.inner.commit(self.scope(txn))
    }

    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'static, Result<Watch, StoreError>> {
        let full = format!("{}{prefix}", self.prefix);
        let (inner, strip) = (self.inner.clone(), self.prefix.len());
        Box::pin(async move { Ok(inner.watch(&full, from).await?.stripping(strip)) })
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

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::MemStore;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        n: u32,
    }
    const THINGS: Kind<Thing> = Kind::new("things");

    #[tokio::test]
    async fn kinds_round_trip_within_their_namespace() {
        let mem: Arc<dyn Store> = Arc::new(MemStore::new());
        let east = Scoped::regional(mem.clone(), "ecs", "us-east-1");
        let west = Scoped::regional(mem.clone(), "ecs", "eu-west-1");
        let txn = THINGS.put(Txn::new(), "a/1", &Thing { n: 1 });
        let txn = THINGS.put(txn, "b", &Thing { n: 2 });
        east.commit(txn).await.unwrap();
        west.commit(THINGS.put(Txn::new(), "c", &Thing { n: 3 }))
            .await
            .unwrap();
        let got = THINGS.load(&east).await.unwrap();
        let ids: Vec<(&str, u32)> = got.iter().map(|(id, t, _)| (id.as_str(), t.n)).collect();
        assert_eq!(ids, [("a/1", 1), ("b", 2)]);
        let (all, _) = mem.range("").await.unwrap();
        assert!(all.iter().any(|kv| kv.key == "ecs/us-east-1/things/a/1"));
        assert!(all.iter().any(|kv| kv.key == "ecs/eu-west-1/things/c"));
        east.commit(THINGS.delete(Txn::new(), "b")).await.unwrap();
        assert_eq!(THINGS.load(&east).await.unwrap().len(), 1);
        assert_eq!(THINGS.load(&west).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn watches_through_a_namespace_see_its_keys_only() {
        let mem: Arc<dyn Store> = Arc::new(MemStore::new());
        let east = Scoped::regional(mem.clone(), "ecs", "us-east-1");
        let west = Scoped::regional(mem.clone(), "ecs", "eu-west-1");
        let mut w = east.watch("things/", 0).await.unwrap();
        west.commit(THINGS.put(Txn::new(), "w", &Thing { n: 1 }))
            .await
            .unwrap();
        east.commit(THINGS.put(Txn::new(), "e", &Thing { n: 2 }))
            .await
            .unwrap();
        let ev = w.next().await.unwrap().unwrap();
        assert_eq!(ev.key(), "things/e");
    }

    #[tokio::test]
    async fn corrupt_records_name_their_key() {
        let mem: Arc<dyn Store> = Arc::new(MemStore::new());
        let s = Scoped::global(mem, "iam");
        s.commit(Txn::new().put("things/x", "not json"))
            .await
            .unwrap();
        match THINGS.load(&s).await {
            Err(RecordError::Corrupt { key, .. }) => assert_eq!(key, "things/x"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn unscoped_records_are_adopted_once() {
        let mem: Arc<dyn Store> = Arc::new(MemStore::new());
        mem.commit(
            Txn::new()
                .put("things/old", r#"{"n":9}"#)
                .put("other/x", "1"),
        )
        .await
        .unwrap();
        let s = Scoped::regional(mem.clone(), "ecs", "us-east-1");
        assert_eq!(s.adopt_unscoped(&["things"]).await.unwrap(), 1);
        assert_eq!(s.adopt_unscoped(&["things"]).await.unwrap(), 0);
        assert_eq!(THINGS.load(&s).await.unwrap()[0].1, Thing { n: 9 });
        let (left, _) = mem.range("things/").await.unwrap();
        assert!(left.is_empty());
    }
}
