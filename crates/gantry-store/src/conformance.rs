//! The behaviour every [`Store`] backend must show. Each backend's tests call [`run`], and
//! the functions after it with a store built with the options they name.

use crate::{
    Event, FailingStore, KeyValue, LeaseId, Revision, Store, StoreError, Txn, TxnOutcome, Watch,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a test waits for an event that must come.
const PATIENCE: Duration = Duration::from_secs(20);

/// The time to live of leases that only an explicit `expire_leases` ends.
const TTL: Duration = Duration::from_secs(600);

/// Runs the suite; panics (test failure) on the first deviation.
pub async fn run(store: &dyn Store) {
    basics(store).await;
    compare_value(store).await;
    watches(store).await;
    watch_boundary(store).await;
    compaction(store).await;
    lease_expiry(store).await;
    lease_keep_alive(store).await;
    lease_revoke(store).await;
    leases_expire_by_themselves(store).await;
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

/// Replay from an old revision, prefixes, live events, watches from the future.
async fn watches(store: &dyn Store) {
    let r1 = commit(
        store,
        Txn::new().put("w/a", "1").put("x/a", "1").put("w/b", "1"),
    )
    .await;
    // Deleting a key that does not exist is no event.
    let r2 = commit(
        store,
        Txn::new().put("w/a", "2").delete("w/b").delete("w/none"),
    )
    .await;
    // "w/" is a prefix of keys, not a path: "wx" is not under it.
    let r3 = commit(store, Txn::new().put("wx", "1")).await;

    let mut w = store.watch("w/", r1).await.expect("watch");
    assert_eq!(w.prefix(), "w/");
    assert_eq!(
        take(&mut w, 4).await,
        [
            put("w/a", "1", r1),
            put("w/b", "1", r1),
            put("w/a", "2", r2),
            delete("w/b", r2)
        ],
        "replay, in revision order and within a revision in op order"
    );
    let r4 = commit(store, Txn::new().put("x/b", "1").put("w/c", "1")).await;
    assert_eq!(next(&mut w).await, put("w/c", "1", r4), "then live");
    assert_eq!(w.next_revision(), r4 + 1);

    let mut all = store.watch("", r2).await.expect("watch");
    assert_eq!(
        take(&mut all, 5).await,
        [
            put("w/a", "2", r2),
            delete("w/b", r2),
            put("wx", "1", r3),
            put("x/b", "1", r4),
            put("w/c", "1", r4)
        ]
    );
    let mut exact = store.watch("w/c", 0).await.expect("watch");
    assert_eq!(next(&mut exact).await, put("w/c", "1", r4));

    // A failed compare leaves nothing in the change log and takes no revision.
    let o = store
        .commit(Txn::new().when_revision("w/a", r1).put("w/a", "lost"))
        .await
        .expect("commit");
    assert_eq!(o, TxnOutcome::Conflict);
    // A watch from a revision not written yet starts when that revision comes.
    let mut future = store.watch("w/", r4 + 2).await.expect("watch");
    let r5 = commit(store, Txn::new().put("w/d", "1")).await;
    assert_eq!(r5, r4 + 1, "the conflict took no revision");
    let r6 = commit(store, Txn::new().delete("w/d")).await;
    assert_eq!(next(&mut future).await, delete("w/d", r6));
    assert_eq!(
        next(&mut w).await,
        put("w/d", "1", r5),
        "nothing from the conflict"
    );
    assert_eq!(next(&mut w).await, delete("w/d", r6));
    assert_eq!(next(&mut all).await, put("w/d", "1", r5));
}

/// Commits in flight while a watch starts are delivered exactly once.
async fn watch_boundary(store: &dyn Store) {
    for round in 0..40 {
        let prefix = format!("b/{round}/");
        let (_, head) = store.range("").await.expect("range");
        let before: Vec<_> = (0..5)
            .map(|i| store.commit(Txn::new().put(format!("{prefix}{i}"), "v")))
            .collect();
        let watch = store.watch(&prefix, head + 1);
        let after: Vec<_> = (5..10)
            .map(|i| store.commit(Txn::new().put(format!("{prefix}{i}"), "v")))
            .collect();
        let mut w = watch.await.expect("watch");
        let mut revisions = Vec::new();
        for f in before.into_iter().chain(after) {
            match f.await.expect("commit") {
                TxnOutcome::Committed(r) => revisions.push(r),
                TxnOutcome::Conflict => panic!("unconditional txn conflicted"),
            }
        }
        let end = commit(store, Txn::new().put(format!("{prefix}end"), "v")).await;
        let mut seen = Vec::new();
        loop {
            let e = next(&mut w).await;
            if e.key().ends_with("end") {
                assert_eq!(e.revision(), end);
                break;
            }
            seen.push((e.key().to_string(), e.revision()));
        }
        let expected: Vec<_> = (0..10)
            .map(|i| format!("{prefix}{i}"))
            .zip(revisions)
            .collect();
        assert_eq!(seen, expected, "round {round}: each event once, in order");
    }
}

/// Compaction drops history; watches from before it fail.
async fn compaction(store: &dyn Store) {
    let r1 = commit(store, Txn::new().put("k/a", "1")).await;
    let r2 = commit(store, Txn::new().put("k/a", "2")).await;
    let r3 = commit(store, Txn::new().put("k/a", "3")).await;
    store.compact(r2).await.expect("compact");
    for from in [0, r1] {
        assert_compacted(store.watch("k/", from).await, r2);
    }
    let mut w = store.watch("k/", r2).await.expect("watch");
    assert_eq!(
        take(&mut w, 2).await,
        [put("k/a", "2", r2), put("k/a", "3", r3)]
    );
    store
        .compact(r1)
        .await
        .expect("compacting to an older revision does nothing");
    assert_compacted(store.watch("k/", r1).await, r2);
    match store.compact(r3 + 1).await {
        Err(StoreError::FutureRevision { current }) => assert_eq!(current, r3),
        other => panic!("compact past the head: {other:?}"),
    }
    store.compact(r3).await.expect("compact");
    let (_, head) = store.range("").await.expect("range");
    assert_eq!(head, r3, "compaction takes no revision");
    let r4 = commit(store, Txn::new().put("k/a", "4")).await;
    assert_eq!(next(&mut w).await, put("k/a", "4", r4), "watches carry on");
    let mut w = store.watch("k/", r3).await.expect("watch");
    assert_eq!(next(&mut w).await, put("k/a", "3", r3));
}

/// Keys attached to a lease are deleted when it expires, at one new revision, and watches see
/// the deletes.
async fn lease_expiry(store: &dyn Store) {
    let (_, head) = store.range("").await.expect("range");
    let mut w = store.watch("l/", head + 1).await.expect("watch");
    let lease = store.grant_lease(TTL).await.expect("grant");
    let other = store.grant_lease(TTL).await.expect("grant");
    assert_ne!(lease, other);
    store.revoke(other).await.expect("revoke");
    let (_, rev) = store.range("").await.expect("range");
    assert_eq!(rev, head, "leases without keys take no revision");

    let r1 = commit(
        store,
        Txn::new()
            .put_leased("l/a", "1", lease)
            .put_leased("l/b", "1", lease)
            .put("l/c", "1"),
    )
    .await;
    assert_eq!(r1, head + 1);
    let (kvs, _) = store.range("l/").await.expect("range");
    let leases: Vec<_> = kvs.iter().map(|kv| kv.lease).collect();
    assert_eq!(leases, [Some(lease), Some(lease), None]);
    // Written again without the lease, a key leaves it.
    let r2 = commit(store, Txn::new().put_leased("l/d", "1", lease)).await;
    let r3 = commit(store, Txn::new().put("l/d", "2")).await;
    assert_eq!(
        take(&mut w, 5).await,
        [
            put_leased("l/a", "1", r1, lease),
            put_leased("l/b", "1", r1, lease),
            put("l/c", "1", r1),
            put_leased("l/d", "1", r2, lease),
            put("l/d", "2", r3),
        ]
    );

    let expired = store.expire_leases(Instant::now()).await.expect("expire");
    assert!(!expired.contains(&lease), "not yet expired");
    let expired = store
        .expire_leases(Instant::now() + TTL + Duration::from_secs(1))
        .await
        .expect("expire");
    assert_eq!(expired, [lease]);
    let r4 = r3 + 1;
    assert_eq!(
        take(&mut w, 2).await,
        [delete("l/a", r4), delete("l/b", r4)],
        "all the lease's keys go in one revision"
    );
    let (kvs, rev) = store.range("l/").await.expect("range");
    assert_eq!(rev, r4);
    let keys: Vec<_> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["l/c", "l/d"]);
    assert_lease_gone(store.keep_alive(lease).await, lease);
    assert_lease_gone(store.revoke(lease).await, lease);

    // A put to a lease that is gone fails, writes nothing and takes no revision.
    let refused = store
        .commit(Txn::new().put("l/e", "1").put_leased("l/f", "1", lease))
        .await;
    assert_eq!(refused, Err(StoreError::LeaseNotFound(lease)));
    let r5 = commit(store, Txn::new().put("l/g", "1")).await;
    assert_eq!(r5, r4 + 1);
    assert_eq!(
        next(&mut w).await,
        put("l/g", "1", r5),
        "nothing from the refused put"
    );
    let expired = store
        .expire_leases(Instant::now() + TTL * 2)
        .await
        .expect("expire");
    assert!(expired.is_empty());
    assert_eq!(store.range("").await.expect("range").1, r5);
}

/// `keep_alive` starts a lease's time to live again, so it outlives its first deadline.
async fn lease_keep_alive(store: &dyn Store) {
    let kept = store.grant_lease(TTL).await.expect("grant");
    let dropped = store.grant_lease(TTL).await.expect("grant");
    let granted = Instant::now();
    commit(
        store,
        Txn::new()
            .put_leased("ka/kept", "1", kept)
            .put_leased("ka/dropped", "1", dropped),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.keep_alive(kept).await.expect("keep alive");
    // Past the deadlines both had when granted, before the one keep_alive set.
    let expired = store
        .expire_leases(granted + TTL + Duration::from_millis(25))
        .await
        .expect("expire");
    assert_eq!(expired, [dropped]);
    let (kvs, _) = store.range("ka/").await.expect("range");
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].key, "ka/kept");
    let expired = store
        .expire_leases(Instant::now() + TTL)
        .await
        .expect("expire");
    assert_eq!(expired, [kept]);
    assert!(store.range("ka/").await.expect("range").0.is_empty());
}

/// `revoke` deletes a lease's keys at once.
async fn lease_revoke(store: &dyn Store) {
    let lease = store.grant_lease(TTL).await.expect("grant");
    let r1 = commit(
        store,
        Txn::new()
            .put_leased("rv/a", "1", lease)
            .put_leased("rv/b", "1", lease),
    )
    .await;
    let mut w = store.watch("rv/", r1 + 1).await.expect("watch");
    store.revoke(lease).await.expect("revoke");
    let (kvs, rev) = store.range("rv/").await.expect("range");
    assert!(kvs.is_empty());
    assert_eq!(rev, r1 + 1);
    assert_eq!(
        take(&mut w, 2).await,
        [delete("rv/a", rev), delete("rv/b", rev)]
    );
    assert_lease_gone(store.revoke(lease).await, lease);
    assert_lease_gone(store.keep_alive(lease).await, lease);
    assert_lease_gone(store.keep_alive(LeaseId(-1)).await, LeaseId(-1));
}

/// With the default [`crate::StoreOptions::lease_tick`], leases expire by themselves unless
/// kept alive.
async fn leases_expire_by_themselves(store: &dyn Store) {
    let kept = store
        .grant_lease(Duration::from_millis(1500))
        .await
        .expect("grant");
    let lapsing = store
        .grant_lease(Duration::from_millis(300))
        .await
        .expect("grant");
    let r = commit(
        store,
        Txn::new()
            .put_leased("auto/kept", "1", kept)
            .put_leased("auto/lapsing", "1", lapsing),
    )
    .await;
    let mut w = store.watch("auto/", r + 1).await.expect("watch");
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.keep_alive(kept).await.expect("keep alive");
    }
    let e = next(&mut w).await;
    assert_eq!(e, delete("auto/lapsing", e.revision()));
    assert!(e.revision() > r);
    assert_lease_gone(store.keep_alive(lapsing).await, lapsing);
    let (kvs, _) = store.range("auto/").await.expect("range");
    assert_eq!(
        kvs.len(),
        1,
        "the lease kept alive for 2 s of its 1.5 s still holds"
    );
    store.revoke(kept).await.expect("revoke");
}

/// With [`crate::StoreOptions::lease_tick`] `None`, only `expire_leases` ends leases; but a
/// lease whose time is up can no longer be kept alive.
pub async fn explicit_lease_clock(store: &dyn Store) {
    let lease = store
        .grant_lease(Duration::from_millis(100))
        .await
        .expect("grant");
    commit(store, Txn::new().put_leased("clock/a", "1", lease)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.range("clock/").await.expect("range").0.len(), 1);
    assert_lease_gone(store.keep_alive(lease).await, lease);
    let expired = store.expire_leases(Instant::now()).await.expect("expire");
    assert_eq!(expired, [lease]);
    assert!(store.range("clock/").await.expect("range").0.is_empty());
}

/// [`FailingStore`] over `inner`: injected failures reach nothing (no write, no revision, no
/// event) and everything else passes through.
pub async fn failing_store(inner: Arc<dyn Store>) {
    let store = FailingStore::new(inner.clone());
    let (_, head) = store.range("").await.expect("range");
    let mut w = store.watch("f/", head + 1).await.expect("watch");
    let lease = store.grant_lease(TTL).await.expect("grant");
    store.fail_next_commits(2);
    assert_eq!(store.pending_failures(), 2);
    let injected = Err(StoreError::Io("injected failure".into()));
    assert_eq!(store.commit(Txn::new().put("f/a", "1")).await, injected);
    assert_eq!(
        store.commit(Txn::new().put_leased("f/a", "1", lease)).await,
        injected
    );
    assert_eq!(store.pending_failures(), 0);
    let (kvs, rev) = inner.range("f/").await.expect("range");
    assert!(kvs.is_empty());
    assert_eq!(rev, head, "the inner store saw nothing");
    let r = commit(&store, Txn::new().put_leased("f/b", "1", lease)).await;
    assert_eq!(r, head + 1);
    assert_eq!(next(&mut w).await, put_leased("f/b", "1", r, lease));
    store.keep_alive(lease).await.expect("keep alive");
    store.revoke(lease).await.expect("revoke");
    assert_eq!(next(&mut w).await, delete("f/b", r + 1));
    store.fail_next_commits(3);
    store.fail_next_commits(0);
    assert_eq!(commit(&store, Txn::new().put("f/c", "1")).await, r + 2);
    assert_eq!(store.inner().range("f/").await.expect("range").0.len(), 1);
}

fn assert_lease_gone(result: Result<(), StoreError>, lease: LeaseId) {
    assert_eq!(result, Err(StoreError::LeaseNotFound(lease)));
}

/// A watch that falls behind the live feed catches up from the change log, losing nothing.
/// `store` must have a [`crate::StoreOptions::watch_buffer`] of at most 8 batches and the
/// default history.
pub async fn lagging_watch(store: &dyn Store) {
    let (_, head) = store.range("").await.expect("range");
    let mut w = store.watch("lag/", head + 1).await.expect("watch");
    let mut revisions = Vec::new();
    for i in 0..100 {
        revisions.push(commit(store, Txn::new().put(format!("lag/{i:03}"), "v")).await);
    }
    for (i, r) in revisions.into_iter().enumerate() {
        let e = next(&mut w).await;
        assert_eq!((e.key(), e.revision()), (format!("lag/{i:03}").as_str(), r));
    }
    let r = commit(store, Txn::new().put("lag/end", "v")).await;
    assert_eq!(next(&mut w).await, put("lag/end", "v", r), "live again");
}

/// The change log keeps only the newest revisions, and a watch that falls behind past them
/// ends with [`StoreError::Compacted`]. `store` must have a
/// [`crate::StoreOptions::watch_buffer`] of at most 8 batches and
/// [`crate::StoreOptions::history_revisions`] of `history`, at most 50.
pub async fn bounded_history(store: &dyn Store, history: u64) {
    let (_, head) = store.range("").await.expect("range");
    let mut w = store.watch("old/", head + 1).await.expect("watch");
    for i in 0..history * 3 {
        commit(store, Txn::new().put(format!("old/{i:03}"), "v")).await;
    }
    let (_, head) = store.range("").await.expect("range");
    let oldest_kept = head + 1 - history;
    let mut recent = store.watch("old/", oldest_kept).await.expect("watch");
    assert_eq!(next(&mut recent).await.revision(), oldest_kept);
    match store.watch("old/", 1).await {
        Err(StoreError::Compacted { compact_revision }) => {
            assert!(compact_revision > 1 && compact_revision <= oldest_kept)
        }
        other => panic!("watch from 1: {other:?}"),
    }
    // The lagging watch delivers what it still can, in order, then the error.
    let mut expect = w.next_revision();
    let compact_revision = loop {
        match tokio::time::timeout(PATIENCE, w.next()).await {
            Ok(Some(Ok(e))) => {
                assert_eq!(e.revision(), expect, "no gap before the error");
                expect += 1;
            }
            Ok(Some(Err(StoreError::Compacted { compact_revision }))) => break compact_revision,
            other => panic!("lagging watch: {other:?}"),
        }
    };
    assert!(expect < compact_revision);
    assert_eq!(w.next_revision(), expect, "where to resume from");
    assert!(w.next().await.is_none(), "the watch ends after the error");
}

fn assert_compacted(result: Result<Watch, StoreError>, compact_revision: Revision) {
    match result {
        Err(StoreError::Compacted {
            compact_revision: r,
        }) => assert_eq!(r, compact_revision),
        other => panic!("expected Compacted {{ {compact_revision} }}, got {other:?}"),
    }
}

fn put(key: &str, value: &str, revision: Revision) -> Event {
    Event::Put(KeyValue {
        key: key.into(),
        value: value.into(),
        mod_revision: revision,
        lease: None,
    })
}

fn put_leased(key: &str, value: &str, revision: Revision, lease: LeaseId) -> Event {
    Event::Put(KeyValue {
        key: key.into(),
        value: value.into(),
        mod_revision: revision,
        lease: Some(lease),
    })
}

fn delete(key: &str, revision: Revision) -> Event {
    Event::Delete {
        key: key.into(),
        mod_revision: revision,
    }
}

/// The next event, which must come.
async fn next(w: &mut Watch) -> Event {
    match tokio::time::timeout(PATIENCE, w.next()).await {
        Ok(Some(Ok(e))) => e,
        Ok(other) => panic!("watch {w:?} ended: {other:?}"),
        Err(_) => panic!("watch {w:?}: no event within {PATIENCE:?}"),
    }
}

async fn take(w: &mut Watch, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(w).await);
    }
    out
}

async fn commit(store: &dyn Store, txn: Txn) -> u64 {
    match store.commit(txn).await.expect("commit") {
        TxnOutcome::Committed(r) => r,
        TxnOutcome::Conflict => panic!("unexpected conflict"),
    }
}
