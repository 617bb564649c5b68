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
//!
//! Leases are rows of the `leases` table (id and time to live) and keys name theirs in
//! `kv.lease`; granting, revoking and expiring go through the writer like commits and share its
//! batches. Deadlines live in memory only ([`crate::lease::Timers`], shared with callers so
//! that `keep_alive` writes nothing): after a reopen every lease's time to live starts again.
//! The writer looks for expired leases every [`StoreOptions::lease_tick`] while any lease
//! exists (waiting on its channel with a timeout), and not at all otherwise.

use crate::codec;
use crate::lease::{Timer, Timers};
use crate::watch::{Change, Feed, History, Page, PAGE_REVISIONS};
use crate::{
    BoxFuture, Compare, Event, KeyValue, LeaseId, Op, Revision, Store, StoreError, StoreOptions,
    Txn, TxnOutcome, Watch,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// At most this many requests share one commit.
const MAX_BATCH: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the writer thread is asked to do.
enum Request {
    Commit(Txn, Reply<TxnOutcome>),
    Compact(Revision, Reply<()>),
    Grant(Duration, Reply<LeaseId>),
    Revoke(LeaseId, Reply<()>),
    /// Expire the leases due at this instant (the writer's own ticks want no reply).
    Expire(Instant, Option<Reply<Vec<LeaseId>>>),
}

impl Request {
    /// Answers the request with `e` without running it.
    fn fail(self, e: StoreError) {
        match self {
            Request::Commit(_, reply) => drop(reply.send(Err(e))),
            Request::Compact(_, reply) | Request::Revoke(_, reply) => drop(reply.send(Err(e))),
            Request::Grant(_, reply) => drop(reply.send(Err(e))),
            Request::Expire(_, Some(reply)) => drop(reply.send(Err(e))),
            Request::Expire(_, None) => {}
        }
    }
}

/// A request the writer has run: sends its answer once the batch is durable (`None`), or the
/// batch's error.
type Done = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// Queues the answer to a request. `result` is `Err` when the batch must fail (an I/O error),
/// `Ok(answer)` otherwise, the answer itself possibly an error for this request alone.
fn answer<T: Send + 'static>(
    done: &mut Vec<Done>,
    reply: Reply<T>,
    result: Result<Result<T, StoreError>, StoreError>,
) -> Result<(), StoreError> {
    let (answer, failed) = match result {
        Ok(answer) => (answer, None),
        Err(e) => (Err(e.clone()), Some(e)),
    };
    done.push(Box::new(move |batch_error| {
        let _ = reply.send(match batch_error {
            None => answer,
            Some(e) => Err(e),
        });
    }));
    failed.map_or(Ok(()), Err)
}

/// The SQLite backend.
pub struct SqliteStore {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    reader: Arc<Mutex<Connection>>,
    feed: Mutex<Option<Feed>>,
    timers: Arc<Mutex<Timers>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// The lease timers; they stay usable if a thread panicked while holding them.
fn lock(timers: &Mutex<Timers>) -> MutexGuard<'_, Timers> {
    timers.lock().unwrap_or_else(PoisonError::into_inner)
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
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(io)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, mod_rev INTEGER NOT NULL, lease INTEGER);
         CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
         -- The change log: one row per commit batch, holding the events of revisions
         -- first_rev..=last_rev (batches do not overlap).
         CREATE TABLE IF NOT EXISTS log (first_rev INTEGER PRIMARY KEY, last_rev INTEGER NOT NULL, events BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL);",
    )
    .map_err(io)?;
    let has_lease: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM pragma_table_info('kv') WHERE name = 'lease'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(io)?;
    if has_lease.is_none() {
        tx.execute_batch("ALTER TABLE kv ADD COLUMN lease INTEGER")
            .map_err(io)?;
    }
    tx.execute_batch("CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease IS NOT NULL")
        .map_err(io)?;
    if meta(&tx, "compact_rev")?.is_none() {
        // A file from before the change log has no history of its revisions so far.
        let first_logged = meta(&tx, "revision")?.unwrap_or(0) + 1;
        set_meta(&tx, "compact_rev", first_logged)?;
    }
    tx.commit().map_err(io)
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

/// The leases in the file, their time to live starting now; and the next lease id.
fn load_leases(conn: &Connection) -> Result<(Timers, i64), StoreError> {
    let now = Instant::now();
    let mut timers = Timers::default();
    let mut max_id = 0;
    let mut stmt = conn.prepare("SELECT id, ttl_ms FROM leases").map_err(io)?;
    let mut rows = stmt.query([]).map_err(io)?;
    while let Some(row) = rows.next().map_err(io)? {
        let id: i64 = row.get(0).map_err(io)?;
        let ttl_ms: i64 = row.get(1).map_err(io)?;
        timers.start(
            LeaseId(id),
            Duration::from_millis(ttl_ms.max(0) as u64),
            now,
        );
        max_id = max_id.max(id);
    }
    let next = meta(conn, "next_lease")?.map_or(max_id + 1, |n| n as i64);
    Ok((timers, next.max(max_id + 1)))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, with the default
    /// [`StoreOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (creating if needed) the database file at `path`. Leases in the file are kept,
    /// their time to live starting again now.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open(&path)?;
        migrate(&mut conn)?;
        let revision = current_revision(&conn)?;
        let compact_revision = meta(&conn, "compact_rev")?.unwrap_or(1);
        let (timers, next_lease) = load_leases(&conn)?;
        let timers = Arc::new(Mutex::new(timers));
        let reader = open(&path)?;
        let (feed, _) = broadcast::channel(options.watch_buffer.max(1));
        let writer = Writer {
            conn,
            revision,
            compact_revision,
            next_lease,
            options,
            feed: feed.clone(),
            timers: timers.clone(),
            last_tick: Instant::now(),
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
            timers,
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

    /// Queues a request made with a fresh reply channel and waits for its answer.
    fn ask<T: Send + 'static>(
        &self,
        request: impl FnOnce(Reply<T>) -> Request,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(request(reply));
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn is_open(&self) -> bool {
        self.tx.lock().is_ok_and(|tx| tx.is_some())
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
    next_lease: i64,
    options: StoreOptions,
    feed: Feed,
    timers: Arc<Mutex<Timers>>,
    /// When the writer last looked for expired leases.
    last_tick: Instant,
}

/// What a batch changed besides the database, to apply once it is durable or undo if not.
#[derive(Default)]
struct Effects {
    done: Vec<Done>,
    events: Vec<Event>,
    /// Leases granted, whose timers start after `COMMIT`.
    granted: Vec<(LeaseId, Duration)>,
    /// Leases revoked or expired, whose timers come back if the batch fails.
    ended: Vec<(LeaseId, Timer)>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        loop {
            let mut batch = VecDeque::new();
            match self.wait(&rx) {
                Ok(Some(first)) => batch.push_back(first),
                Ok(None) => {}
                Err(()) => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push_back(item),
                    Err(_) => break,
                }
            }
            if let Some(now) = self.tick_due() {
                batch.push_front(Request::Expire(now, None));
            }
            if !batch.is_empty() {
                self.write(batch);
            }
        }
    }

    /// The next request; `None` when it is time to look at the leases first; `Err` once the
    /// store is closed.
    fn wait(&self, rx: &mpsc::Receiver<Request>) -> Result<Option<Request>, ()> {
        let tick = match self.options.tick() {
            Some(tick) if !lock(&self.timers).is_empty() => tick,
            _ => return rx.recv().map(Some).map_err(drop),
        };
        match rx.recv_timeout(tick.saturating_sub(self.last_tick.elapsed())) {
            Ok(request) => Ok(Some(request)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }

    /// `Some(now)` if a lease tick is due and some lease has expired.
    fn tick_due(&mut self) -> Option<Instant> {
        let tick = self.options.tick()?;
        let now = Instant::now();
        if now.duration_since(self.last_tick) < tick {
            return None;
        }
        self.last_tick = now;
        lock(&self.timers).any_expired(now).then_some(now)
    }

    /// Runs a batch in one SQLite transaction and answers every request after `COMMIT`.
    fn write(&mut self, mut batch: VecDeque<Request>) {
        let saved = (self.revision, self.compact_revision, self.next_lease);
        let mut effects = Effects {
            done: Vec::with_capacity(batch.len()),
            ..Effects::default()
        };
        match self.execute(&mut batch, &mut effects) {
            Ok(()) => {
                let now = Instant::now();
                let mut timers = lock(&self.timers);
                for (id, ttl) in effects.granted {
                    timers.start(id, ttl, now);
                }
                drop(timers);
                // Checked after COMMIT: a watch subscribing later reads this batch from the log.
                if self.revision > saved.0 && self.feed.receiver_count() > 0 {
                    let _ = self.feed.send(Arc::new(Change {
                        first: saved.0 + 1,
                        last: self.revision,
                        events: effects.events,
                    }));
                }
                for d in effects.done {
                    d(None);
                }
            }
            Err(e) => {
                (self.revision, self.compact_revision, self.next_lease) = saved;
                let mut timers = lock(&self.timers);
                for (id, timer) in effects.ended {
                    timers.insert(id, timer);
                }
                drop(timers);
                tracing::error!(error = %e, "store commit failed");
                for d in effects.done {
                    d(Some(e.clone()));
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
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let (revision, compact_revision, next_lease) =
            (self.revision, self.compact_revision, self.next_lease);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(io)?;
        while let Some(request) = batch.pop_front() {
            match request {
                Request::Commit(txn, reply) => {
                    let result = apply(&tx, &mut self.revision, txn, &mut fx.events);
                    answer(&mut fx.done, reply, result)?;
                }
                Request::Compact(to, reply) => {
                    let result = if to > self.revision {
                        Ok(Err(StoreError::FutureRevision {
                            current: self.revision,
                        }))
                    } else {
                        compact(&tx, &mut self.compact_revision, to).map(Ok)
                    };
                    answer(&mut fx.done, reply, result)?;
                }
                Request::Grant(ttl, reply) => {
                    let id = LeaseId(self.next_lease);
                    self.next_lease += 1;
                    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
                    let result = tx
                        .prepare_cached("INSERT INTO leases (id, ttl_ms) VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute(params![id.0, ttl_ms]))
                        .map(|_| Ok(id))
                        .map_err(io);
                    if result.is_ok() {
                        fx.granted.push((id, ttl));
                    }
                    answer(&mut fx.done, reply, result)?;
                }
                Request::Revoke(id, reply) => {
                    let timer = lock(&self.timers).remove(id);
                    let result = match timer {
                        None => Ok(Err(StoreError::LeaseNotFound(id))),
                        Some(timer) => {
                            fx.ended.push((id, timer));
                            end_lease(&tx, &mut self.revision, id, &mut fx.events).map(Ok)
                        }
                    };
                    answer(&mut fx.done, reply, result)?;
                }
                Request::Expire(now, reply) => {
                    let expired = lock(&self.timers).take_expired(now);
                    let ids: Vec<LeaseId> = expired.iter().map(|(id, _)| *id).collect();
                    fx.ended.extend(expired);
                    let result = ids
                        .iter()
                        .try_for_each(|id| end_lease(&tx, &mut self.revision, *id, &mut fx.events))
                        .map(|()| Ok(ids));
                    match reply {
                        Some(reply) => answer(&mut fx.done, reply, result)?,
                        None => result.map(drop)?,
                    }
                }
            }
        }
        if self.options.history_revisions > 0 && !fx.events.is_empty() {
            let blob = codec::encode(&fx.events)?;
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
        if self.next_lease != next_lease {
            set_meta(&tx, "next_lease", self.next_lease as u64)?;
        }
        tx.commit().map_err(io)
    }
}

/// Applies one transaction (its compares, then its writes) inside the batch's SQLite
/// transaction, adding its events to `events`. A failed compare writes nothing and takes no
/// revision; nor does a put to a lease that does not exist, which is this transaction's error.
fn apply(
    tx: &Connection,
    revision: &mut Revision,
    txn: Txn,
    events: &mut Vec<Event>,
) -> Result<Result<TxnOutcome, StoreError>, StoreError> {
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
            return Ok(Ok(TxnOutcome::Conflict));
        }
    }
    for op in &txn.ops {
        if let Op::Put {
            lease: Some(lease), ..
        } = op
        {
            let exists: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM leases WHERE id = ?1")
                .and_then(|mut s| s.query_row(params![lease.0], |r| r.get(0)).optional())
                .map_err(io)?;
            if exists.is_none() {
                return Ok(Err(StoreError::LeaseNotFound(*lease)));
            }
        }
    }
    *revision += 1;
    let rev = *revision as i64;
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO kv (key, value, mod_rev, lease) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key) DO UPDATE
             SET value = excluded.value, mod_rev = excluded.mod_rev, lease = excluded.lease",
        )
        .map_err(io)?;
    for op in txn.ops {
        match op {
            Op::Put { key, value, lease } => {
                upsert
                    .execute(params![key, value, rev, lease.map(|l| l.0)])
                    .map_err(io)?;
                events.push(Event::Put(KeyValue {
                    key,
                    value,
                    mod_revision: *revision,
                    lease,
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
    Ok(Ok(TxnOutcome::Committed(*revision)))
}

/// Deletes a lease and its keys (in one new revision, if it had any).
fn end_lease(
    tx: &Connection,
    revision: &mut Revision,
    id: LeaseId,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let keys: Vec<String> = tx
        .prepare_cached("SELECT key FROM kv WHERE lease = ?1 ORDER BY key")
        .and_then(|mut s| {
            s.query_map(params![id.0], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(io)?;
    if !keys.is_empty() {
        *revision += 1;
        tx.prepare_cached("DELETE FROM kv WHERE lease = ?1")
            .and_then(|mut s| s.execute(params![id.0]))
            .map_err(io)?;
        events.extend(keys.into_iter().map(|key| Event::Delete {
            key,
            mod_revision: *revision,
        }));
    }
    tx.prepare_cached("DELETE FROM leases WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id.0]))
        .map_err(io)?;
    Ok(())
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
        .prepare_cached("SELECT key, value, mod_rev, lease FROM kv WHERE key >= ?1 ORDER BY key")
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
            lease: row.get::<_, Option<i64>>(3).map_err(io)?.map(LeaseId),
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
        self.ask(|reply| Request::Commit(txn, reply))
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
        self.ask(|reply| Request::Compact(revision, reply))
    }

    fn grant_lease(&self, ttl: Duration) -> BoxFuture<'static, Result<LeaseId, StoreError>> {
        self.ask(|reply| Request::Grant(ttl, reply))
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>> {
        // Deadlines are memory only: no trip to the writer, nothing written.
        let result = if self.is_open() {
            lock(&self.timers).keep_alive(lease, Instant::now())
        } else {
            Err(StoreError::Closed)
        };
        Box::pin(async move { result })
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'static, Result<(), StoreError>> {
        self.ask(|reply| Request::Revoke(lease, reply))
    }

    fn expire_leases(&self, now: Instant) -> BoxFuture<'static, Result<Vec<LeaseId>, StoreError>> {
        self.ask(|reply| Request::Expire(now, Some(reply)))
    }
}
