use gantry_store::{conformance, MemStore, SqliteStore, Store, Txn, TxnOutcome};
use std::path::PathBuf;

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
