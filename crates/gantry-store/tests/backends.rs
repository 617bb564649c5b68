use gantry_store::{
    conformance, Event, FailingStore, MemStore, SqliteStore, Store, StoreError, StoreOptions, Txn,
    TxnOutcome,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state.db")
}

#[tokio::test]
async fn mem_store_conforms() {
    conformance::run(&MemStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let store = SqliteStore::open(temp_db("conform")).unwrap();
    conformance::run(&store).await;
}

#[tokio::test]
async fn failing_store_passes_the_suite_through() {
    conformance::run(&FailingStore::new(Arc::new(MemStore::new()))).await;
}

#[tokio::test]
async fn mem_store_fails_on_demand() {
    conformance::failing_store(Arc::new(MemStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_fails_on_demand() {
    let store = SqliteStore::open(temp_db("failing")).unwrap();
    conformance::failing_store(Arc::new(store)).await;
}

/// Options under which watches fall behind quickly.
fn small_buffer() -> StoreOptions {
    StoreOptions {
        watch_buffer: 4,
        ..StoreOptions::default()
    }
}

/// A short history, and watches that fall behind quickly.
const HISTORY: u64 = 20;
fn short_history() -> StoreOptions {
    StoreOptions {
        watch_buffer: 4,
        history_revisions: HISTORY,
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn mem_store_lagging_watch_catches_up() {
    conformance::lagging_watch(&MemStore::with_options(small_buffer())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_lagging_watch_catches_up() {
    let store = SqliteStore::open_with(temp_db("lag"), small_buffer()).unwrap();
    conformance::lagging_watch(&store).await;
}

#[tokio::test]
async fn mem_store_bounds_its_history() {
    conformance::bounded_history(&MemStore::with_options(short_history()), HISTORY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_bounds_its_history() {
    let store = SqliteStore::open_with(temp_db("bounded"), short_history()).unwrap();
    conformance::bounded_history(&store, HISTORY).await;
}

fn no_lease_tick() -> StoreOptions {
    StoreOptions {
        lease_tick: None,
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn mem_store_leases_follow_an_explicit_clock() {
    conformance::explicit_lease_clock(&MemStore::with_options(no_lease_tick())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_leases_follow_an_explicit_clock() {
    let store = SqliteStore::open_with(temp_db("clock"), no_lease_tick()).unwrap();
    conformance::explicit_lease_clock(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_leases_across_reopen() {
    const TTL: Duration = Duration::from_secs(600);
    let path = temp_db("leases");
    let (lease, r) = {
        let store = SqliteStore::open(&path).unwrap();
        let lease = store.grant_lease(TTL).await.unwrap();
        let r = committed(
            store
                .commit(Txn::new().put_leased("k", "v", lease).put("plain", "v"))
                .await,
        );
        (lease, r)
    };
    let closed = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let store = SqliteStore::open(&path).unwrap();
    // The time to live started again at the reopen: not up at the first deadline.
    let expired = store
        .expire_leases(closed + TTL + Duration::from_millis(25))
        .await
        .unwrap();
    assert!(expired.is_empty(), "{expired:?}");
    let (kvs, _) = store.range("k").await.unwrap();
    assert_eq!((kvs.len(), kvs[0].lease), (1, Some(lease)));
    store.keep_alive(lease).await.unwrap();
    let mut w = store.watch("k", r + 1).await.unwrap();
    let expired = store.expire_leases(Instant::now() + TTL).await.unwrap();
    assert_eq!(expired, [lease]);
    let e = w.next().await.unwrap().unwrap();
    assert_eq!(
        e,
        Event::Delete {
            key: "k".into(),
            mod_revision: r + 1
        }
    );
    drop(store);

    // The expiry is durable too, and ids are not reused.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.keep_alive(lease).await,
        Err(StoreError::LeaseNotFound(lease))
    );
    let (kvs, rev) = store.range("").await.unwrap();
    assert_eq!((kvs.len(), rev), (1, r + 1));
    assert_ne!(store.grant_lease(TTL).await.unwrap(), lease);
}

#[tokio::test]
async fn watches_end_when_the_store_closes() {
    let store = MemStore::new();
    let mut w = store.watch("", 0).await.unwrap();
    drop(store);
    assert_eq!(w.next().await, Some(Err(StoreError::Closed)));
    assert_eq!(w.next().await, None);

    let store = SqliteStore::open(temp_db("closed")).unwrap();
    let mut w = store.watch("", 0).await.unwrap();
    store.commit(Txn::new().put("k", "v")).await.unwrap();
    store.close();
    assert!(
        matches!(w.next().await, Some(Ok(Event::Put(_)))),
        "committed before the close"
    );
    assert_eq!(w.next().await, Some(Err(StoreError::Closed)));
    assert!(matches!(store.watch("", 0).await, Err(StoreError::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_without_history_still_watches_live() {
    let options = StoreOptions {
        history_revisions: 0,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open_with(temp_db("nohistory"), options).unwrap();
    let r1 = committed(store.commit(Txn::new().put("k", "1")).await);
    assert!(matches!(
        store.watch("", r1).await,
        Err(StoreError::Compacted { compact_revision }) if compact_revision == r1 + 1
    ));
    let mut w = store.watch("", r1 + 1).await.unwrap();
    let r2 = committed(store.commit(Txn::new().put("k", "2")).await);
    let e = tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .unwrap();
    assert_eq!(e.unwrap().unwrap().revision(), r2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_history_survives_reopen() {
    let path = temp_db("history");
    let (r1, r2) = {
        let store = SqliteStore::open(&path).unwrap();
        committed(store.commit(Txn::new().put("gone", "1")).await);
        let r1 = committed(store.commit(Txn::new().put("a", "1").put("b", "1")).await);
        let r2 = committed(store.commit(Txn::new().delete("a")).await);
        store.compact(r1).await.unwrap();
        (r1, r2)
    };
    let store = SqliteStore::open(&path).unwrap();
    assert!(matches!(
        store.watch("", r1 - 1).await,
        Err(StoreError::Compacted { compact_revision }) if compact_revision == r1
    ));
    let mut w = store.watch("", r1).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(w.next().await.unwrap().unwrap());
    }
    let got: Vec<_> = got.iter().map(|e| (e.key(), e.revision())).collect();
    assert_eq!(got, [("a", r1), ("b", r1), ("a", r2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_opens_a_file_from_before_the_change_log() {
    let path = temp_db("old-format");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, mod_rev INTEGER NOT NULL);
             CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO kv VALUES ('old', x'76', 7);
             INSERT INTO meta VALUES ('revision', 7);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let (kvs, rev) = store.range("").await.unwrap();
    assert_eq!(
        (kvs.len(), kvs[0].mod_revision, kvs[0].lease, rev),
        (1, 7, None, 7)
    );
    let lease = store.grant_lease(Duration::from_secs(600)).await.unwrap();
    assert!(matches!(
        store.watch("", 7).await,
        Err(StoreError::Compacted {
            compact_revision: 8
        })
    ));
    let mut w = store.watch("", 8).await.unwrap();
    assert_eq!(
        store
            .commit(Txn::new().put_leased("new", "v", lease))
            .await
            .unwrap(),
        TxnOutcome::Committed(8)
    );
    assert_eq!(w.next().await.unwrap().unwrap().revision(), 8);
    store.revoke(lease).await.unwrap();
    assert_eq!(store.range("").await.unwrap().0.len(), 1);
}

fn committed(outcome: Result<TxnOutcome, StoreError>) -> u64 {
    match outcome.unwrap() {
        TxnOutcome::Committed(r) => r,
        TxnOutcome::Conflict => panic!("conflict"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_survives_reopen_and_keeps_counting() {
    let path = temp_db("reopen");
    let rev = {
        let store = SqliteStore::open(&path).unwrap();
        match store.commit(Txn::new().put("k", "v")).await.unwrap() {
            TxnOutcome::Committed(r) => r,
            TxnOutcome::Conflict => unreachable!(),
        }
    };
    let store = SqliteStore::open(&path).unwrap();
    let (kvs, r) = store.range("").await.unwrap();
    assert_eq!((kvs.len(), r), (1, rev));
    assert_eq!(
        store.commit(Txn::new().put("k2", "v")).await.unwrap(),
        TxnOutcome::Committed(rev + 1)
    );
}
