//! The behaviour every [`Store`] backend must show. Each backend's tests call [`run`].

use crate::{Store, Txn, TxnOutcome};

/// Runs the suite; panics (test failure) on the first deviation.
pub async fn run(store: &dyn Store) {
    basics(store).await;
    compare_value(store).await;
}

/// Revisions, range, compare-and-swap on revisions, delete, concurrent commits.
async fn basics(store: &dyn Store) {
    let (kvs, rev0) = store.range("").await.expect("range");
    assert!(kvs.is_empty(), "a new store is empty");

    // Puts get the next revision; range is prefix-scoped and sorted.
    let r1 = commit(
        store,
        Txn::new().put("c/b", "2").put("c/a", "1").put("d/x", "9"),
    )
    .await;
    assert_eq!(r1, rev0 + 1);
    let (kvs, rev) = store.range("c/").await.expect("range");
    assert_eq!(rev, r1);
    let keys: Vec<&str> = kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["c/a", "c/b"]);
    assert!(kvs.iter().all(|k| k.mod_revision == r1));
    assert_eq!(kvs[0].value, b"1");

    // Compare-and-swap: create-if-absent fails when present, succeeds when absent.
    let o = store
        .commit(Txn::new().when_revision("c/a", 0).put("c/a", "x"))
        .await
        .expect("commit");
    assert_eq!(o, TxnOutcome::Conflict);
    let r2 = commit(store, Txn::new().when_revision("c/c", 0).put("c/c", "3")).await;
    assert_eq!(r2, r1 + 1);
    // Update at the right revision, then a stale writer loses.
    let r3 = commit(store, Txn::new().when_revision("c/a", r1).put("c/a", "11")).await;
    let o = store
        .commit(Txn::new().when_revision("c/a", r1).put("c/a", "12"))
        .await
        .expect("commit");
    assert_eq!(o, TxnOutcome::Conflict);
    let (kvs, _) = store.range("c/a").await.expect("range");
    assert_eq!(
        (kvs[0].value.as_slice(), kvs[0].mod_revision),
        (&b"11"[..], r3)
    );

    // A failed transaction writes nothing, and does not consume a revision.
    let o = store
        .commit(
            Txn::new()
                .when_revision("d/x", 999)
                .put("d/y", "no")
                .delete("d/x"),
        )
        .await
        .expect("commit");
    assert_eq!(o, TxnOutcome::Conflict);
    assert_eq!(store.range("d/").await.expect("range").0.len(), 1);

    // Delete.
    let r4 = commit(store, Txn::new().delete("d/x")).await;
    assert_eq!(r4, r3 + 1);
    assert!(store.range("d/").await.expect("range").0.is_empty());

    // Many concurrent commits: all land, each at a distinct revision, in call order.
    let futures: Vec<_> = (0..200)
        .map(|i| store.commit(Txn::new().put(format!("e/{i:03}"), "v")))
        .collect();
    let mut revs = Vec::new();
    for f in futures {
        match f.await.expect("commit") {
            TxnOutcome::Committed(r) => revs.push(r),
            TxnOutcome::Conflict => panic!("unconditional txn conflicted"),
        }
    }
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions follow call order"
    );
    assert_eq!(store.range("e/").await.expect("range").0.len(), 200);
}

/// Compares on values, and failed compares consuming nothing.
async fn compare_value(store: &dyn Store) {
    let (_, head) = store.range("").await.expect("range");
    let r = commit(store, Txn::new().put("v/a", "1")).await;
    assert_eq!(r, head + 1);
    for txn in [
        Txn::new().when_value("v/a", "2").put("v/b", "x"),
        Txn::new().when_value("v/b", "").put("v/b", "x"),
        Txn::new().when_absent("v/a").put("v/b", "x"),
        Txn::new()
            .when_value("v/a", "1")
            .when_revision("v/a", r + 7)
            .put("v/b", "x"),
    ] {
        let o = store.commit(txn).await.expect("commit");
        assert_eq!(o, TxnOutcome::Conflict);
    }
    let (kvs, rev) = store.range("v/").await.expect("range");
    assert_eq!(
        (kvs.len(), rev),
        (1, r),
        "failed compares write nothing, use no revision"
    );
    let r2 = commit(
        store,
        Txn::new()
            .when_value("v/a", "1")
            .when_absent("v/b")
            .put("v/b", "2"),
    )
    .await;
    assert_eq!(r2, r + 1, "the next commit gets the next revision");
    let (kvs, _) = store.range("v/b").await.expect("range");
    assert_eq!(kvs[0].value, b"2");
}

async fn commit(store: &dyn Store, txn: Txn) -> u64 {
    match store.commit(txn).await.expect("commit") {
        TxnOutcome::Committed(r) => r,
        TxnOutcome::Conflict => panic!("unexpected conflict"),
    }
}
