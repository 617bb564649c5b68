//! The log store: log groups, streams and events in a SQLite database of their own
//! (`<data-dir>/logs.db`, WAL), apart from the state database, so that a flood of log lines
//! never waits behind, or holds up, the control plane's writes.
//!
//! Events are stored in chunks, one row a batch (see [`crate::chunks`]), indexed by stream and
//! by group on where they start in time (and by stream on where they end, for backward
//! reads): GetLogEvents walks a stream's, FilterLogEvents a group's (or its chosen streams'),
//! in pages from a cursor. An append is one transaction, whatever its size; pages are 64 KiB,
//! so a chunk's blob is read in few steps. Every call runs on the blocking pool, holding the
//! one connection only for its own statements.

use crate::chunks::{self, ChunkRow, Direction, Walk, Walked, MAX_SPAN};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A log group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: i64,
    pub name: String,
    /// Milliseconds since the epoch.
    pub created: i64,
    pub retention_days: Option<i32>,
    pub kms_key_id: Option<String>,
    pub class: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub stored_bytes: i64,
}

/// A log stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub id: i64,
    pub name: String,
    pub created: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: i64,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub stream_id: i64,
    pub timestamp: i64,
    pub ingested: i64,
    pub message: String,
}

/// Where a walk over events starts: strictly after (or before) `(timestamp, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: i64,
    pub id: i64,
}

/// How streams are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOrder {
    Name,
    LastEventTime,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    retention_days INTEGER,
    kms_key_id TEXT,
    class TEXT,
    tags TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    first_event INTEGER,
    last_event INTEGER,
    last_ingestion INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    -- The container whose log file the agent ships here, and how far (bytes) it is stored.
    source TEXT,
    source_offset INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, name)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL,
    stream_id INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    ingested INTEGER NOT NULL,
    count INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_stream ON chunks (stream_id, first_ts, id);
CREATE INDEX IF NOT EXISTS chunks_by_stream_end ON chunks (stream_id, last_ts, id);
CREATE INDEX IF NOT EXISTS chunks_by_group ON chunks (group_id, first_ts, id);
";

/// The log store; clones share the connection.
#[derive(Clone)]
pub struct LogStore {
    conn: Arc<Mutex<Connection>>,
}

/// A failure of the store itself (never the caller's fault).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFailure(pub String);

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for StoreFailure {
    fn from(e: rusqlite::Error) -> Self {
        StoreFailure(e.to_string())
    }
}

/// What the store's statements answer.
pub type Result<T> = std::result::Result<T, StoreFailure>;

fn group_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    let tags: String = r.get(6)?;
    Ok(Group {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        retention_days: r.get(3)?,
        kms_key_id: r.get(4)?,
        class: r.get(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        stored_bytes: r.get(7)?,
    })
}

const GROUP_COLUMNS: &str =
    "g.id, g.name, g.created, g.retention_days, g.kms_key_id, g.class, g.tags, \
     (SELECT COALESCE(SUM(stored_bytes), 0) FROM streams s WHERE s.group_id = g.id)";

fn stream_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stream> {
    Ok(Stream {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        first_event: r.get(3)?,
        last_event: r.get(4)?,
        last_ingestion: r.get(5)?,
        stored_bytes: r.get(6)?,
    })
}

const STREAM_COLUMNS: &str =
    "id, name, created, first_event, last_event, last_ingestion, stored_bytes";

fn chunk_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRow> {
    Ok(ChunkRow {
        id: r.get(0)?,
        stream_id: r.get(1)?,
        first_ts: r.get(2)?,
        last_ts: r.get(3)?,
        ingested: r.get(4)?,
        count: r.get(5)?,
    })
}

/// Stores events (in time order) of a stream as chunks.
fn insert_chunks(
    c: &Connection,
    group: i64,
    stream: i64,
    events: &[(i64, String)],
    ingested: i64,
) -> Result<()> {
    let mut st = c.prepare_cached(
        "INSERT INTO chunks (group_id, stream_id, first_ts, last_ts, ingested, count, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for part in chunks::split(events) {
        let (first, last) = (part[0].0, part[part.len() - 1].0);
        st.execute(params![
            group,
            stream,
            first,
            last,
            ingested,
            part.len() as i64,
            chunks::encode(part)
        ])?;
    }
    Ok(())
}

/// Moves the events of a store from before chunks (one row an event) into chunks, once.
fn migrate_events(conn: &Connection) -> Result<()> {
    let old: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
        [],
        |r| r.get(0),
    )?;
    if old == 0 {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    let streams: Vec<(i64, i64)> = {
        let mut st = tx.prepare("SELECT DISTINCT group_id, stream_id FROM events")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (group, stream) in streams {
        let events: Vec<(i64, i64, String)> = {
            let mut st = tx.prepare(
                "SELECT ts, ingested, message FROM events WHERE stream_id = ?1 ORDER BY ts, id",
            )?;
            let rows = st.query_map(params![stream], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let ingested = events.iter().map(|e| e.1).max().unwrap_or_default();
        let events: Vec<(i64, String)> = events.into_iter().map(|e| (e.0, e.2)).collect();
        insert_chunks(&tx, group, stream, &events, ingested)?;
    }
    tx.execute_batch("DROP TABLE events")?;
    tx.commit()?;
    Ok(())
}

impl LogStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<LogStore> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<LogStore> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<LogStore> {
        // WAL: readers never wait for the appender; FULL: an acknowledged batch survives a crash.
        // (The page size only takes on a new file, before its first table.)
        conn.pragma_update(None, "page_size", 65536)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        migrate_events(&conn)?;
        Ok(LogStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection, on the blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn
                .lock()
                .map_err(|_| StoreFailure("the log store's connection is poisoned".into()))?;
            f(&mut c)
        })
        .await
        .map_err(|e| StoreFailure(format!("the log store's worker failed: {e}")))?
    }
}

/// The statements, each on a connection the caller holds.
pub mod sql {
    use super::*;

    pub fn group(c: &Connection, name: &str) -> Result<Option<Group>> {
        Ok(c.query_row(
            &format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.name = ?1"),
            params![name],
            group_of,
        )
        .optional()?)
    }

    /// Creates a group; `false` when one of that name exists.
    pub fn create_group(c: &Connection, g: &Group) -> Result<bool> {
        let tags = serde_json::to_string(&g.tags).unwrap_or_else(|_| "{}".into());
        let n = c.execute(
            "INSERT OR IGNORE INTO groups (name, created, retention_days, kms_key_id, class, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![g.name, g.created, g.retention_days, g.kms_key_id, g.class, tags],
        )?;
        Ok(n == 1)
    }

    /// Deletes a group, its streams and events; `false` when there is none.
    pub fn delete_group(c: &mut Connection, name: &str) -> Result<bool> {
        let tx = c.transaction()?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM groups WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        tx.execute("DELETE FROM chunks WHERE group_id = ?1", params![id])?;
        tx.execute("DELETE FROM streams WHERE group_id = ?1", params![id])?;
        tx.execute("DELETE FROM groups WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(true)
    }

    /// Groups by name after `after`, those whose name passes `keep`, at most `limit`.
    pub fn groups(
        c: &Connection,
        after: Option<&str>,
        prefix: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Group>> {
        let mut st = c.prepare(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.name > ?1 AND substr(g.name, 1, length(?2)) = ?2 ORDER BY g.name"
        ))?;
        let rows = st.query_map(params![after.unwrap_or(""), prefix.unwrap_or("")], group_of)?;
        let mut out = Vec::new();
        for g in rows {
            let g = g?;
            if keep(&g.name) {
                out.push(g);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn set_retention(c: &Connection, group: i64, days: Option<i32>) -> Result<()> {
        c.execute(
            "UPDATE groups SET retention_days = ?2 WHERE id = ?1",
            params![group, days],
        )?;
        Ok(())
    }

    pub fn set_tags(c: &Connection, group: i64, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags = serde_json::to_string(tags).unwrap_or_else(|_| "{}".into());
        c.execute(
            "UPDATE groups SET tags = ?2 WHERE id = ?1",
            params![group, tags],
        )?;
        Ok(())
    }

    pub fn stream(c: &Connection, group: i64, name: &str) -> Result<Option<Stream>> {
        Ok(c.query_row(
            &format!("SELECT {STREAM_COLUMNS} FROM streams WHERE group_id = ?1 AND name = ?2"),
            params![group, name],
            stream_of,
        )
        .optional()?)
    }

    /// Creates a stream; `false` when the group has one of that name.
    pub fn create_stream(c: &Connection, group: i64, name: &str, created: i64) -> Result<bool> {
        let n = c.execute(
            "INSERT OR IGNORE INTO streams (group_id, name, created) VALUES (?1, ?2, ?3)",
            params![group, name, created],
        )?;
        Ok(n == 1)
    }

    pub fn delete_stream(c: &mut Connection, stream: i64) -> Result<()> {
        let tx = c.transaction()?;
        tx.execute("DELETE FROM chunks WHERE stream_id = ?1", params![stream])?;
        tx.execute("DELETE FROM streams WHERE id = ?1", params![stream])?;
        tx.commit()?;
        Ok(())
    }

    /// A group's streams in `order` (descending or not), starting after the `offset` first,
    /// those whose name starts with `prefix`, at most `limit`.
    pub fn streams(
        c: &Connection,
        group: i64,
        prefix: Option<&str>,
        order: StreamOrder,
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Stream>> {
        let dir = if descending { "DESC" } else { "ASC" };
        let by = match order {
            StreamOrder::Name => format!("name {dir}"),
            StreamOrder::LastEventTime => format!("COALESCE(last_event, 0) {dir}, name {dir}"),
        };
        let mut st = c.prepare(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE group_id = ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY {by} LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = st.query_map(
            params![group, prefix.unwrap_or(""), limit as i64, offset as i64],
            stream_of,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stream names by id, for a group.
    pub fn stream_names(c: &Connection, group: i64) -> Result<BTreeMap<i64, String>> {
        let mut st = c.prepare("SELECT id, name FROM streams WHERE group_id = ?1")?;
        let rows = st.query_map(params![group], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()?)
    }

    /// Appends events (timestamp, message) to a stream in one transaction.
    pub fn append(
        c: &mut Connection,
        group: i64,
        stream: i64,
        events: &[(i64, String)],
        ingested: i64,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let tx = c.transaction()?;
        insert_events(&tx, group, stream, events, ingested)?;
        tx.commit()?;
        Ok(())
    }

    /// The events as chunks, and the stream's figures, within the caller's transaction.
    fn insert_events(
        tx: &rusqlite::Transaction<'_>,
        group: i64,
        stream: i64,
        events: &[(i64, String)],
        ingested: i64,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let sorted;
        let events = if events.windows(2).all(|w| w[0].0 <= w[1].0) {
            events
        } else {
            let mut v = events.to_vec();
            v.sort_by_key(|e| e.0);
            sorted = v;
            &sorted
        };
        insert_chunks(tx, group, stream, events, ingested)?;
        let first = events[0].0;
        let last = events[events.len() - 1].0;
        let bytes: i64 = events.iter().map(|e| e.1.len() as i64).sum();
        tx.execute(
            "UPDATE streams SET first_event = MIN(COALESCE(first_event, ?2), ?2), last_event = MAX(COALESCE(last_event, ?3), ?3), last_ingestion = ?4, stored_bytes = stored_bytes + ?5 WHERE id = ?1",
            params![stream, first, last, ingested, bytes],
        )?;
        Ok(())
    }

    /// Appends the events of `source`'s bytes `[from, to)` to a stream (made when missing),
    /// unless the stream holds the source up to another point than `from`, in one transaction.
    /// Returns how far the stream holds the source afterwards.
    #[allow(clippy::too_many_arguments)]
    pub fn ship(
        c: &mut Connection,
        group: i64,
        stream: &str,
        source: &str,
        from: u64,
        to: u64,
        events: &[(i64, String)],
        ingested: i64,
    ) -> Result<u64> {
        let tx = c.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO streams (group_id, name, created) VALUES (?1, ?2, ?3)",
            params![group, stream, ingested],
        )?;
        let (id, held_source, held): (i64, Option<String>, i64) = tx.query_row(
            "SELECT id, source, source_offset FROM streams WHERE group_id = ?1 AND name = ?2",
            params![group, stream],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let held = if held_source.as_deref() == Some(source) {
            held.max(0) as u64
        } else {
            0
        };
        if from != held || to <= from {
            tx.commit()?;
            return Ok(held);
        }
        tx.execute(
            "UPDATE streams SET source = ?2, source_offset = ?3 WHERE id = ?1",
            params![id, source, to as i64],
        )?;
        insert_events(&tx, group, id, events, ingested)?;
        tx.commit()?;
        Ok(to)
    }

    /// A stream's events in `[start, end)`, strictly after `after` (ascending) or strictly
    /// before `before` (then the last `limit` of them), in (timestamp, id) order.
    pub fn stream_events(
        c: &Connection,
        stream: i64,
        start: i64,
        end: i64,
        after: Option<Cursor>,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let (direction, from) = match (before, after) {
            (Some(b), _) => (Direction::Backward, b),
            (None, a) => (
                Direction::Forward,
                a.unwrap_or(Cursor {
                    timestamp: i64::MIN,
                    id: i64::MIN,
                }),
            ),
        };
        let w = Walk {
            direction,
            start,
            end,
            after: from,
            limit,
            budget: usize::MAX,
            stream: &|_| true,
            needle: None,
            keep: &|_| true,
        };
        let mut events = walk(c, Scope::Stream(stream), &w)?.events;
        if direction == Direction::Backward {
            events.reverse();
        }
        Ok(events)
    }

    /// Whose chunks a walk reads.
    #[derive(Debug, Clone, Copy)]
    pub enum Scope {
        Stream(i64),
        Group(i64),
    }

    /// Walks the chunks of a stream or a group (see [`chunks::walk`]).
    pub fn walk(c: &Connection, scope: Scope, w: &Walk<'_>) -> Result<Walked> {
        let (column, owner) = match scope {
            Scope::Stream(id) => ("stream_id", id),
            Scope::Group(id) => ("group_id", id),
        };
        let cols = "id, stream_id, first_ts, last_ts, ingested, count";
        let page = 256i64;
        let next = |paged: Option<(i64, i64)>| -> Result<Vec<ChunkRow>> {
            match w.direction {
                Direction::Forward => {
                    // A chunk holding events at or after the cursor starts at most a
                    // chunk's span before it.
                    let from = w.start.max(w.after.timestamp);
                    let (pf, pid) = paged.unwrap_or((i64::MIN, i64::MIN));
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {cols} FROM chunks WHERE {column} = ?1 AND first_ts >= ?2 AND first_ts < ?3 AND last_ts >= ?4 AND (first_ts, id) > (?5, ?6) ORDER BY first_ts, id LIMIT ?7"
                    ))?;
                    let rows = st.query_map(
                        params![
                            owner,
                            from.saturating_sub(MAX_SPAN).max(pf),
                            w.end,
                            from,
                            pf,
                            pid,
                            page
                        ],
                        chunk_of,
                    )?;
                    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
                }
                Direction::Backward => {
                    let to = w.end.saturating_sub(1).min(w.after.timestamp);
                    let (pl, pid) = paged.map_or((i64::MAX, i64::MAX), |(l, i)| (!l, !i));
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {cols} FROM chunks WHERE {column} = ?1 AND last_ts <= ?2 AND last_ts >= ?3 AND first_ts <= ?4 AND (last_ts, id) < (?5, ?6) ORDER BY last_ts DESC, id DESC LIMIT ?7"
                    ))?;
                    let rows = st.query_map(
                        params![
                            owner,
                            to.saturating_add(MAX_SPAN).min(pl),
                            w.start,
                            to,
                            pl,
                            pid,
                            page
                        ],
                        chunk_of,
                    )?;
                    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
                }
            }
        };
        let body = |id: i64| -> Result<Vec<u8>> {
            let mut st = c.prepare_cached("SELECT body FROM chunks WHERE id = ?1")?;
            Ok(st.query_row(params![id], |r| r.get(0))?)
        };
        chunks::walk(w, next, body)
    }

    /// Deletes the chunks of groups with a retention whose every event is older than it.
    /// Returns how many.
    pub fn expire(c: &Connection, now_ms: i64) -> Result<usize> {
        // A chunk goes once its last event has; reads hide the older events of one that stays.
        Ok(c.execute(
            "DELETE FROM chunks WHERE id IN (SELECT k.id FROM chunks k JOIN groups g ON g.id = k.group_id WHERE g.retention_days IS NOT NULL AND k.last_ts < ?1 - g.retention_days * 86400000)",
            params![now_ms],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gantry-logs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("logs.db")
    }

    fn texts(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| e.message.clone()).collect()
    }

    #[test]
    fn batches_read_back_in_time_order_from_a_file_in_pages_both_ways() {
        let path = store_file("pages");
        let mut c = Connection::open(&path).unwrap();
        drop(LogStore::setup(Connection::open(&path).unwrap()).unwrap());
        let g = Group {
            id: 0,
            name: "g".into(),
            created: 0,
            retention_days: None,
            kms_key_id: None,
            class: None,
            tags: Default::default(),
            stored_bytes: 0,
        };
        sql::create_group(&c, &g).unwrap();
        let gid = sql::group(&c, "g").unwrap().unwrap().id;
        sql::create_stream(&c, gid, "s", 0).unwrap();
        let sid = sql::stream(&c, gid, "s").unwrap().unwrap().id;
        // Two batches overlapping in time, the second out of order within itself.
        let a: Vec<(i64, String)> = [10, 30, 50].map(|t| (t, format!("a{t}"))).into();
        let b: Vec<(i64, String)> = [40, 20].map(|t| (t, format!("b{t}"))).into();
        sql::append(&mut c, gid, sid, &a, 1).unwrap();
        sql::append(&mut c, gid, sid, &b, 2).unwrap();
        let all = sql::stream_events(&c, sid, i64::MIN, i64::MAX, None, None, 100).unwrap();
        assert_eq!(texts(&all), ["a10", "b20", "a30", "b40", "a50"]);
        let first = sql::stream_events(&c, sid, i64::MIN, i64::MAX, None, None, 2).unwrap();
        let after = Cursor {
            timestamp: first[1].timestamp,
            id: first[1].id,
        };
        let next = sql::stream_events(&c, sid, i64::MIN, i64::MAX, Some(after), None, 2).unwrap();
        assert_eq!(texts(&next), ["a30", "b40"]);
        let end = Cursor {
            timestamp: i64::MAX,
            id: i64::MAX,
        };
        let last = sql::stream_events(&c, sid, i64::MIN, i64::MAX, None, Some(end), 2).unwrap();
        assert_eq!(texts(&last), ["b40", "a50"]);
        let window = sql::stream_events(&c, sid, 20, 41, None, None, 100).unwrap();
        assert_eq!(texts(&window), ["b20", "a30", "b40"]);
    }

    #[test]
    fn a_store_of_rows_an_event_moves_into_chunks_on_open() {
        let path = store_file("migrate");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL, stream_id INTEGER NOT NULL, ts INTEGER NOT NULL, ingested INTEGER NOT NULL, message TEXT NOT NULL);
                 INSERT INTO events (group_id, stream_id, ts, ingested, message) VALUES (1, 7, 20, 5, 'second'), (1, 7, 10, 5, 'first'), (1, 8, 15, 6, 'other');",
            )
            .unwrap();
        }
        let store = LogStore::setup(Connection::open(&path).unwrap()).unwrap();
        let c = store.conn.lock().unwrap();
        let seven = sql::stream_events(&c, 7, i64::MIN, i64::MAX, None, None, 10).unwrap();
        assert_eq!(texts(&seven), ["first", "second"]);
        assert_eq!(seven[0].ingested, 5);
        let eight = sql::stream_events(&c, 8, i64::MIN, i64::MAX, None, None, 10).unwrap();
        assert_eq!(texts(&eight), ["other"]);
        let left: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }
}
