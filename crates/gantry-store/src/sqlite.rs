//! The embedded durable store: one SQLite file (WAL, `synchronous=FULL`) written by one writer
//! thread that group-commits.
//!
//! `commit` puts the transaction on a channel. The writer takes everything queued, runs it in one
//! SQLite transaction and answers every caller after the single `COMMIT` (one fsync). Under
//! load, batches grow by themselves: while one fsync is in flight the next batch queues up.

use crate::{BoxFuture, Compare, KeyValue, Op, Revision, Store, StoreError, Txn, TxnOutcome};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// At most this many transactions share one commit.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<TxnOutcome, StoreError>>;

/// The SQLite backend.
pub struct SqliteStore {
    tx: Mutex<Option<mpsc::Sender<(Txn, Reply)>>>,
    reader: Arc<Mutex<Connection>>,
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
         PRAGMA busy_timeout=5000;
         CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, mod_rev INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    )
    .map_err(io)?;
    Ok(conn)
}

fn current_revision(conn: &Connection) -> Result<Revision, StoreError> {
    let r: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(io)?;
    Ok(r.unwrap_or(0) as Revision)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open(&path)?;
        let revision = current_revision(&conn)?;
        let reader = open(&path)?;
        let (tx, rx) = mpsc::channel::<(Txn, Reply)>();
        let writer = std::thread::Builder::new()
            .name("gantry-store-writer".into())
            .spawn(move || writer_loop(conn, revision, rx))
            .map_err(io)?;
        Ok(SqliteStore {
            tx: Mutex::new(Some(tx)),
            reader: Arc::new(Mutex::new(reader)),
            writer: Mutex::new(Some(writer)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting transactions and waits for the writer to finish what is queued.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(mut conn: Connection, mut revision: Revision, rx: mpsc::Receiver<(Txn, Reply)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let start_revision = revision;
        match write_batch(&mut conn, &mut revision, &batch) {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                revision = start_revision;
                tracing::error!(error = %e, "store commit failed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn write_batch(
    conn: &mut Connection,
    revision: &mut Revision,
    batch: &[(Txn, Reply)],
) -> Result<Vec<TxnOutcome>, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(io)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (txn, _) in batch {
        let mut ok = true;
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
                ok = false;
                break;
            }
        }
        if !ok {
            outcomes.push(TxnOutcome::Conflict);
            continue;
        }
        *revision += 1;
        let rev = *revision as i64;
        for op in &txn.ops {
            match op {
                Op::Put { key, value } => {
                    tx.execute(
                        "INSERT INTO kv (key, value, mod_rev) VALUES (?1, ?2, ?3)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
                        params![key, value, rev],
                    )
                    .map_err(io)?;
                }
                Op::Delete { key } => {
                    tx.execute("DELETE FROM kv WHERE key = ?1", params![key])
                        .map_err(io)?;
                }
            }
        }
        outcomes.push(TxnOutcome::Committed(*revision));
    }
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('revision', ?1)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        params![*revision as i64],
    )
    .map_err(io)?;
    tx.commit().map_err(io)?;
    Ok(outcomes)
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
        let sent = match self.tx.lock() {
            Ok(guard) => guard
                .as_ref()
                .is_some_and(|tx| tx.send((txn, reply)).is_ok()),
            Err(_) => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}
