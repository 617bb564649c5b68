//! The embedded durable store: one SQLite file (WAL, `synchronous=FULL`) written by one writer
//! thread that group-commits.
//!
//! `commit` puts the transaction on a channel. The writer takes everything queued, runs it in one
//! SQLite transaction and answers every caller after the single `COMMIT` (one fsync). Under
//! load, batches grow by themselves: while one fsync is in flight the next batch queues up.
//!
//! The batch's changes are also appended to the `log` table in the same SQLite transaction, as
//! one row (all the batch's events, encoded by [`crate::codec`]), so the history that watches
//! replay is exactly as durable as the data and costs one insert per batch, not one per write.
//! After `COMMIT` the writer broadcasts the batch's events to live watches (only if any
//! exist). The writer compacts the log in chunks to keep [`StoreOptions::history_revisions`].

use crate::codec;
use crate::watch::{Change, Feed, History, Page, PAGE_REVISIONS};
use crate::{
    BoxFuture, Compare, Event, KeyValue, Op, Revision, Store, StoreError, StoreOptions, Txn,
    TxnOutcome, Watch,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, oneshot};

/// At most this many requests share one commit.
const MAX_BATCH: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the writer thread is asked to do.
enum Request {
    Commit(Txn, Reply<TxnOutcome>),
    Compact(Revision, Reply<()>),
}

/// A request the writer has run, with the answer to send once the batch is durable.
enum Done {
    Commit(Reply<TxnOutcome>, Result<TxnOutcome, StoreError>),
    Compact(Reply<()>, Result<(), StoreError>),
}

impl Request {
    fn fail(self, e: StoreError) {
        match self {
            Request::Commit(_, reply) => drop(reply.send(Err(e))),
            Request::Compact(_, reply) => drop(reply.send(Err(e))),
        }
    }
}

impl Done {
    fn send(self) {
        match self {
            Done::Commit(reply, outcome) => drop(reply.send(outcome)),
            Done::Compact(reply, result) => drop(reply.send(result)),
        }
    }

    fn fail(self, e: StoreError) {
        match self {
            Done::Commit(reply, _) => drop(reply.send(Err(e))),
            Done::Compact(reply, _) => drop(reply.send(Err(e))),
        }
    }
}

/// The SQLite backend.
pub struct SqliteStore {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    reader: Arc<Mutex<Connection>>,
    feed: Mutex<Option<Feed>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(io)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA busy_timeout=5000;",
    )
    .map_err(io)?;
    Ok(conn)
}

/// Creates the tables, or brings a file written by an older version up to date.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, mod_rev INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
         -- The change log: one row per commit batch, holding the events of revisions
         -- first_rev..=last_rev (batches do not overlap).
         CREATE TABLE IF NOT EXISTS log (first_rev INTEGER PRIMARY KEY, last_rev INTEGER NOT NULL, events BLOB NOT NULL);",
    )
    .map_err(io)?;
    if meta(conn, "compact_rev")?.is_none() {
        // A file from before the change log has no history of its revisions so far.
        let first_logged = meta(conn, "revision")?.unwrap_or(0) + 1;
        set_meta(conn, "compact_rev", first_logged)?;
    }
    Ok(())
}

fn meta(conn: &Connection, name: &str) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
        .map_err(io)?;
    Ok(v.map(|v| v as u64))
}

fn set_meta(conn: &Connection, name: &str, value: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![name, value as i64]))
    .map_err(io)?;
    Ok(())
}

fn current_revision(conn: &Connection) -> Result<Revision, StoreError> {
    Ok(meta(conn, "revision")?.unwrap_or(0))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, with the default
    /// [`StoreOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (creating if needed) the database file at `path`.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open(&path)?;
        migrate(&conn)?;
        let revision = current_revision(&conn)?;
        let compact_revision = meta(&conn, "compact_rev")?.unwrap_or(1);
        let reader = open(&path)?;
        let (feed, _) = broadcast::channel(options.watch_buffer.max(1));
        let writer = Writer {
            conn,
            revision,
            compact_revision,
            options,
            feed: feed.clone(),
        };
        let (tx, rx) = mpsc::channel::<Request>();
        let writer = std::thread::Builder::new()
            .name("gantry-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(SqliteStore {
            tx: Mutex::new(Some(tx)),
            reader: Arc::new(Mutex::new(reader)),
            feed: Mutex::new(Some(feed)),
            writer: Mutex::new(Some(writer)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting transactions and waits for the writer to finish what is queued. Watches
    /// end with [`StoreError::Closed`] once they have delivered what was committed.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut feed) = self.feed.lock() {
            feed.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Queues a request for the writer; false if the store is closed.
    fn send(&self, request: Request) -> bool {
        match self.tx.lock() {
            Ok(guard) => guard.as_ref().is_some_and(|tx| tx.send(request).is_ok()),
            Err(_) => false,
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    revision: Revision,
    compact_revision: Revision,
    options: StoreOptions,
    feed: Feed,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = VecDeque::from([first]);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push_back(item),
                    Err(_) => break,
                }
            }
            self.write(batch);
        }
    }

    /// Runs a batch in one SQLite transaction and answers every request after `COMMIT`.
    fn write(&mut self, mut batch: VecDeque<Request>) {
        let (revision, compact_revision) = (self.revision, self.compact_revision);
        let mut done = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        match self.execute(&mut batch, &mut done, &mut events) {
            Ok(()) => {
                // Checked after COMMIT: a watch subscribing later reads this batch from the log.
                if self.revision > revision && self.feed.receiver_count() > 0 {
                    let _ = self.feed.send(Arc::new(Change {
                        first: revision + 1,
                        last: self.revision,
                        events,
                    }));
                }
                for d in done {
                    d.send();
                }
            }
            Err(e) => {
                (self.revision, self.compact_revision) = (revision, compact_revision);
                tracing::error!(error = %e, "store commit failed");
                for d in done {
                    d.fail(e.clone());
                }
                for r in batch {
                    r.fail(e.clone());
                }
            }
        }
    }

    fn execute(
        &mut self,
        batch: &mut VecDeque<Request>,
        done: &mut Vec<Done>,
        events: &mut Vec<Event>,
    ) -> Result<(), StoreError> {
        let (revision, compact_revision) = (self.revision, self.compact_revision);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(io)?;
        while let Some(request) = batch.pop_front() {
            match request {
                // On an I/O error the request joins `done` (to get the error) before it returns.
                Request::Commit(txn, reply) => {
                    let outcome = apply(&tx, &mut self.revision, txn, events);
                    let failed = outcome.as_ref().err().cloned();
                    done.push(Done::Commit(reply, outcome));
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                Request::Compact(to, reply) => {
                    let result = if to > self.revision {
                        Err(StoreError::FutureRevision {
                            current: self.revision,
                        })
                    } else {
                        compact(&tx, &mut self.compact_revision, to)
                    };
                    let failed = result
                        .as_ref()
                        .err()
                        .filter(|e| matches!(e, StoreError::Io(_)))
                        .cloned();
                    done.push(Done::Compact(reply, result));
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
            }
        }
        if self.options.history_revisions > 0 && !events.is_empty() {
            let blob = codec::encode(events)?;
            tx.prepare_cached("INSERT INTO log (first_rev, last_rev, events) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| {
                    s.execute(params![revision as i64 + 1, self.revision as i64, blob])
                })
                .map_err(io)?;
        }
        if let Some(to) = self
            .options
            .auto_compact(self.revision, self.compact_revision)
        {
            compact(&tx, &mut self.compact_revision, to)?;
        }
        if self.revision != revision {
            set_meta(&tx, "revision", self.revision)?;
        }
        if self.compact_revision != compact_revision {
            set_meta(&tx, "compact_rev", self.compact_revision)?;
        }
        tx.commit().map_err(io)
    }
}

/// Applies one transaction (its compares, then its writes) inside the batch's SQLite
/// transaction, adding its events to `events`; a failed compare writes nothing and takes no
/// revision.
fn apply(
    tx: &Connection,
    revision: &mut Revision,
    txn: Txn,
    events: &mut Vec<Event>,
) -> Result<TxnOutcome, StoreError> {
    for c in &txn.compares {
        let holds = match c {
            Compare::ModRevision { key, equals } => {
                let r: Option<i64> = tx
                    .prepare_cached("SELECT mod_rev FROM kv WHERE key = ?1")
                    .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                    .map_err(io)?;
                r.unwrap_or(0) as Revision == *equals
            }
            Compare::Value { key, equals } => {
                let v: Option<Vec<u8>> = tx
                    .prepare_cached("SELECT value FROM kv WHERE key = ?1")
                    .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                    .map_err(io)?;
                v == *equals
            }
        };
        if !holds {
            return Ok(TxnOutcome::Conflict);
        }
    }
    *revision += 1;
    let rev = *revision as i64;
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO kv (key, value, mod_rev) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
        )
        .map_err(io)?;
    for op in txn.ops {
        match op {
            Op::Put { key, value } => {
                upsert.execute(params![key, value, rev]).map_err(io)?;
                events.push(Event::Put(KeyValue {
                    key,
                    value,
                    mod_revision: *revision,
                }));
            }
            Op::Delete { key } => {
                let deleted = tx
                    .prepare_cached("DELETE FROM kv WHERE key = ?1")
                    .and_then(|mut s| s.execute(params![key]))
                    .map_err(io)?;
                if deleted > 0 {
                    events.push(Event::Delete {
                        key,
                        mod_revision: *revision,
                    });
                }
            }
        }
    }
    Ok(TxnOutcome::Committed(*revision))
}

/// Drops the change log before revision `to` (if not already): the batches wholly before it.
/// A batch that straddles `to` stays, and reads skip its older events.
fn compact(
    tx: &Connection,
    compact_revision: &mut Revision,
    to: Revision,
) -> Result<(), StoreError> {
    if to > *compact_revision {
        tx.prepare_cached("DELETE FROM log WHERE first_rev < ?1 AND last_rev < ?1")
            .and_then(|mut s| s.execute(params![to as i64]))
            .map_err(io)?;
        *compact_revision = to;
    }
    Ok(())
}

fn range_blocking(
    conn: &Connection,
    prefix: &str,
) -> Result<(Vec<KeyValue>, Revision), StoreError> {
    let tx = conn.unchecked_transaction().map_err(io)?;
    let revision = current_revision(&tx)?;
    let mut stmt = tx
        .prepare_cached("SELECT key, value, mod_rev FROM kv WHERE key >= ?1 ORDER BY key")
        .map_err(io)?;
    let mut rows = stmt.query(params![prefix]).map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let key: String = row.get(0).map_err(io)?;
        if !key.starts_with(prefix) {
            break;
        }
        out.push(KeyValue {
            key,
            value: row.get(1).map_err(io)?,
            mod_revision: row.get::<_, i64>(2).map_err(io)? as Revision,
        });
    }
    Ok((out, revision))
}

/// One page of the change log, read in one snapshot.
fn read_log(conn: &Connection, prefix: &str, from: Revision) -> Result<Page, StoreError> {
    let tx = conn.unchecked_transaction().map_err(io)?;
    let head = current_revision(&tx)?;
    let compact_revision = meta(&tx, "compact_rev")?.unwrap_or(1);
    if from < compact_revision {
        return Err(StoreError::Compacted { compact_revision });
    }
    let through = head.min(from.saturating_add(PAGE_REVISIONS - 1));
    let mut events = Vec::new();
    if through >= from {
        let mut stmt = tx
            .prepare_cached(
                "SELECT events FROM log
                 WHERE first_rev >= coalesce((SELECT max(first_rev) FROM log WHERE first_rev <= ?1), 0)
                   AND first_rev <= ?2
                 ORDER BY first_rev",
            )
            .map_err(io)?;
        let mut rows = stmt
            .query(params![from as i64, through as i64])
            .map_err(io)?;
        while let Some(row) = rows.next().map_err(io)? {
            let blob = row
                .get_ref(0)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(io)?;
            codec::decode_into(blob, prefix, from, through, &mut events)?;
        }
    }
    Ok(Page {
        events,
        through,
        head,
    })
}

/// A watch's view of the change log: the reader connection.
struct SqliteHistory(Arc<Mutex<Connection>>);

impl History for SqliteHistory {
    fn read(&self, prefix: String, from: Revision) -> BoxFuture<'static, Result<Page, StoreError>> {
        let reader = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = reader.lock().map_err(|_| StoreError::Closed)?;
                read_log(&conn, &prefix, from)
            })
            .await
            .map_err(io)?
        })
    }
}

impl Store for SqliteStore {
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let reader = self.reader.clone();
        let prefix = prefix.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = reader.lock().map_err(|_| StoreError::Closed)?;
                range_blocking(&conn, &prefix)
            })
            .await
            .map_err(io)?
        })
    }

    fn commit(&self, txn: Txn) -> BoxFuture<'static, Result<TxnOutcome, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Commit(txn, reply));
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'static, Result<Watch, StoreError>> {
        let live = self
            .feed
            .lock()
            .ok()
            .and_then(|feed| feed.as_ref().map(broadcast::Sender::subscribe));
        let history: Arc<dyn History> = Arc::new(SqliteHistory(self.reader.clone()));
        let prefix = prefix.to_string();
        Box::pin(async move {
            let live = live.ok_or(StoreError::Closed)?;
            Watch::start(&prefix, from, live, history).await
        })
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StoreError>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Compact(revision, reply));
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}
