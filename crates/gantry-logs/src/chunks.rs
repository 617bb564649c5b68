//! Events are stored in chunks: one row of the log store holds one batch of a stream's events
//! (a PutLogEvents call, or a range of a container's log file the agent shipped), in time
//! order, as one blob. Appending 10,000 lines is one row; a search reads a chunk's messages as
//! one run of text, which a substring search crosses at memory speed, and decodes only the
//! events where a term the pattern requires occurs.
//!
//! A blob is `n` (u32), then `n` timestamps (i64), then where each message ends (u32, from
//! the start of the text), then the messages' text, all little-endian. An event's id is its
//! chunk's id shifted left by [`ID_BITS`] plus its index in the chunk, so that `(timestamp,
//! id)` orders every event of the store (ties in time by the order they were stored).
//!
//! Chunks of one stream may overlap in time (clients may send older events after newer
//! ones), so a walk merges them: chunks come in the order of where they start in the walk's
//! direction, and an event is final once no chunk still to come can hold an earlier one. A
//! batch spans at most 24 hours ([`MAX_SPAN`]), which bounds how far back a walk must look.

use crate::store::{Cursor, Event, Result};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Bits of an event id that number it within its chunk (a batch holds at most 10,000).
pub const ID_BITS: u32 = 14;
/// The most a chunk's events span in time, in milliseconds (CloudWatch's 24 h a batch).
pub const MAX_SPAN: i64 = 86_400_000;

/// The most events a chunk holds (a batch's).
pub const MAX_EVENTS: usize = 10_000;

/// Cuts events (in time order) into chunks of at most [`MAX_EVENTS`] events spanning at most
/// [`MAX_SPAN`].
pub fn split(events: &[(i64, String)]) -> Vec<&[(i64, String)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, (ts, _)) in events.iter().enumerate() {
        if i - start >= MAX_EVENTS || ts.saturating_sub(events[start].0) > MAX_SPAN {
            out.push(&events[start..i]);
            start = i;
        }
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// Encodes events (in time order) as a chunk's blob.
pub fn encode(events: &[(i64, String)]) -> Vec<u8> {
    let text: usize = events.iter().map(|e| e.1.len()).sum();
    let mut out = Vec::with_capacity(4 + events.len() * 12 + text);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for (ts, _) in events {
        out.extend_from_slice(&ts.to_le_bytes());
    }
    let mut end = 0u32;
    for (_, m) in events {
        end += m.len() as u32;
        out.extend_from_slice(&end.to_le_bytes());
    }
    for (_, m) in events {
        out.extend_from_slice(m.as_bytes());
    }
    out
}

/// A chunk's blob, read in place.
pub struct Chunk<'a> {
    times: &'a [u8],
    ends: &'a [u8],
    /// Every message, one after the other.
    pub text: &'a str,
}

impl<'a> Chunk<'a> {
    /// Reads a blob; `None` when it is not one [`encode`] wrote.
    pub fn parse(body: &'a [u8]) -> Option<Chunk<'a>> {
        let n = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
        let times = body.get(4..4 + n * 8)?;
        let ends = body.get(4 + n * 8..4 + n * 12)?;
        let text = std::str::from_utf8(body.get(4 + n * 12..)?).ok()?;
        let c = Chunk { times, ends, text };
        (n == 0 || c.end(n - 1) == text.len()).then_some(c)
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn timestamp(&self, i: usize) -> i64 {
        let b = &self.times[i * 8..i * 8 + 8];
        i64::from_le_bytes(b.try_into().unwrap_or_default())
    }

    fn end(&self, i: usize) -> usize {
        let b = &self.ends[i * 4..i * 4 + 4];
        u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.end(i - 1)
        }
    }

    pub fn message(&self, i: usize) -> &'a str {
        self.text
            .get(self.start(i)..self.end(i))
            .unwrap_or_default()
    }

    /// The event whose message holds byte `at` of the text.
    fn event_at(&self, at: usize) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.end(mid) <= at {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The events whose message contains `needle` (all of them without one), in order.
    pub fn candidates(&self, needle: Option<&memchr::memmem::Finder<'_>>) -> Vec<usize> {
        let Some(f) = needle else {
            return (0..self.len()).collect();
        };
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(hit) = f.find(&self.text.as_bytes()[from..]) {
            let i = self.event_at(from + hit);
            if i >= self.len() {
                break;
            }
            // A hit across two messages' boundary is not in either: look again from the
            // start of the next message.
            if from + hit + f.needle().len() <= self.end(i) {
                out.push(i);
            }
            from = self.end(i).max(from + hit + 1);
        }
        out
    }
}

/// A chunk's row, without its blob.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub id: i64,
    pub stream_id: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub ingested: i64,
    pub count: i64,
}

/// Which way a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending `(timestamp, id)`, strictly after the cursor.
    Forward,
    /// Descending, strictly before the cursor.
    Backward,
}

/// What a walk looks for.
pub struct Walk<'a> {
    pub direction: Direction,
    /// Timestamps in `[start, end)`.
    pub start: i64,
    pub end: i64,
    pub after: Cursor,
    pub limit: usize,
    /// Stop (with `more`) once chunks holding this many events have been read.
    pub budget: usize,
    /// The chunks of which streams to read.
    pub stream: &'a dyn Fn(i64) -> bool,
    /// A substring every wanted message contains.
    pub needle: Option<&'a memchr::memmem::Finder<'a>>,
    pub keep: &'a dyn Fn(&str) -> bool,
}

/// A walk's page: events in the walk's order, whether more may follow, and the cursor to
/// go on from.
#[derive(Debug, PartialEq)]
pub struct Walked {
    pub events: Vec<Event>,
    pub more: bool,
    pub resume: Cursor,
}

/// The walk's order: ascending keys, whichever the direction.
fn key(d: Direction, ts: i64, id: i64) -> (i64, i64) {
    match d {
        Direction::Forward => (ts, id),
        Direction::Backward => (!ts, !id),
    }
}

/// Where a chunk starts in the walk's order: none of its events comes before it.
fn chunk_key(d: Direction, c: &ChunkRow) -> (i64, i64) {
    match d {
        Direction::Forward => (c.first_ts, c.id),
        Direction::Backward => (!c.last_ts, !c.id),
    }
}

/// Where the last event handed out is, or `or` before any.
fn last_of(out: &[Event], or: Cursor) -> Cursor {
    out.last().map_or(or, |e| Cursor {
        timestamp: e.timestamp,
        id: e.id,
    })
}

/// Walks the chunks `next` hands out (after the chunk key it is given, in chunk-key order, a
/// page at a time; empty at the end), reading each one's blob with `body`.
pub fn walk(
    w: &Walk<'_>,
    mut next: impl FnMut(Option<(i64, i64)>) -> Result<Vec<ChunkRow>>,
    mut body: impl FnMut(i64) -> Result<Vec<u8>>,
) -> Result<Walked> {
    let d = w.direction;
    let after = key(d, w.after.timestamp, w.after.id);
    let mut queue: VecDeque<ChunkRow> = VecDeque::new();
    let mut paged: Option<(i64, i64)> = None;
    let mut exhausted = false;
    let mut pending: BinaryHeap<Reverse<((i64, i64), usize)>> = BinaryHeap::new();
    let mut held: Vec<Option<Event>> = Vec::new();
    let mut out = Vec::new();
    let mut scanned = 0usize;
    loop {
        if queue.is_empty() && !exhausted {
            let page = next(paged)?;
            match page.last() {
                Some(last) => paged = Some(chunk_key(d, last)),
                None => exhausted = true,
            }
            queue.extend(page);
        }
        // Events before where the next chunk starts can come from no chunk still to read.
        let bound = queue.front().map(|c| chunk_key(d, c).0);
        while let Some(Reverse((k, slot))) = pending.peek().copied() {
            if bound.is_some_and(|b| k.0 >= b) {
                break;
            }
            pending.pop();
            if let Some(e) = held[slot].take() {
                out.push(e);
            }
            if out.len() >= w.limit {
                let resume = last_of(&out, w.after);
                return Ok(Walked {
                    events: out,
                    more: true,
                    resume,
                });
            }
        }
        let Some(row) = queue.pop_front() else {
            let resume = last_of(&out, w.after);
            return Ok(Walked {
                events: out,
                more: false,
                resume,
            });
        };
        if scanned >= w.budget {
            // Everything before this chunk's start is final and handed out.
            let (k0, _) = chunk_key(d, &row);
            let (timestamp, id) = match d {
                Direction::Forward => (k0 - 1, i64::MAX),
                Direction::Backward => (!(k0 - 1), i64::MIN),
            };
            return Ok(Walked {
                events: out,
                more: true,
                resume: Cursor { timestamp, id },
            });
        }
        let before_cursor = match d {
            Direction::Forward => row.last_ts < w.after.timestamp,
            Direction::Backward => row.first_ts > w.after.timestamp,
        };
        let outside = row.last_ts < w.start || row.first_ts >= w.end;
        if before_cursor || outside || !(w.stream)(row.stream_id) {
            continue;
        }
        scanned += row.count.max(0) as usize;
        let blob = body(row.id)?;
        let Some(chunk) = Chunk::parse(&blob) else {
            tracing::warn!(
                chunk = row.id,
                "a chunk of the log store is unreadable; skipped"
            );
            continue;
        };
        for i in chunk.candidates(w.needle) {
            let ts = chunk.timestamp(i);
            let id = (row.id << ID_BITS) | i as i64;
            let k = key(d, ts, id);
            if k <= after || ts < w.start || ts >= w.end {
                continue;
            }
            let m = chunk.message(i);
            if !(w.keep)(m) {
                continue;
            }
            held.push(Some(Event {
                id,
                stream_id: row.stream_id,
                timestamp: ts,
                ingested: row.ingested,
                message: m.to_string(),
            }));
            pending.push(Reverse((k, held.len() - 1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks in memory, handed out as the store would.
    struct Fake(Vec<(ChunkRow, Vec<u8>)>);

    impl Fake {
        fn new(chunks: &[(i64, &[(i64, &str)])]) -> Fake {
            Fake(
                chunks
                    .iter()
                    .enumerate()
                    .map(|(n, (stream, evs))| {
                        let evs: Vec<(i64, String)> =
                            evs.iter().map(|(t, m)| (*t, m.to_string())).collect();
                        let row = ChunkRow {
                            id: n as i64 + 1,
                            stream_id: *stream,
                            first_ts: evs.iter().map(|e| e.0).min().unwrap(),
                            last_ts: evs.iter().map(|e| e.0).max().unwrap(),
                            ingested: 0,
                            count: evs.len() as i64,
                        };
                        (row, encode(&evs))
                    })
                    .collect(),
            )
        }

        fn walk(&self, w: &Walk<'_>) -> Walked {
            let d = w.direction;
            let mut rows: Vec<ChunkRow> = self.0.iter().map(|c| c.0.clone()).collect();
            rows.sort_by_key(|c| chunk_key(d, c));
            walk(
                w,
                |after| {
                    Ok(rows
                        .iter()
                        .filter(|c| after.is_none_or(|a| chunk_key(d, c) > a))
                        .take(2)
                        .cloned()
                        .collect())
                },
                |id| Ok(self.0.iter().find(|c| c.0.id == id).unwrap().1.clone()),
            )
            .unwrap()
        }
    }

    fn all<'a>(d: Direction, limit: usize) -> Walk<'a> {
        Walk {
            direction: d,
            start: i64::MIN,
            end: i64::MAX,
            after: match d {
                Direction::Forward => Cursor {
                    timestamp: i64::MIN,
                    id: i64::MIN,
                },
                Direction::Backward => Cursor {
                    timestamp: i64::MAX,
                    id: i64::MAX,
                },
            },
            limit,
            budget: usize::MAX,
            stream: &|_| true,
            needle: None,
            keep: &|_| true,
        }
    }

    fn messages(w: &Walked) -> Vec<&str> {
        w.events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn blobs_round_trip_and_bad_ones_are_refused() {
        let evs = vec![
            (5, "héllo".to_string()),
            (7, String::new()),
            (9, "x".into()),
        ];
        let blob = encode(&evs);
        let c = Chunk::parse(&blob).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!((c.timestamp(0), c.message(0)), (5, "héllo"));
        assert_eq!((c.timestamp(1), c.message(1)), (7, ""));
        assert_eq!((c.timestamp(2), c.message(2)), (9, "x"));
        assert!(Chunk::parse(&blob[..blob.len() - 1]).is_none());
        assert!(Chunk::parse(&[1, 0]).is_none());
        assert!(Chunk::parse(&encode(&[])).unwrap().is_empty());
    }

    #[test]
    fn batches_split_into_chunks_of_bounded_size_and_span() {
        let evs: Vec<(i64, String)> = (0..25_000).map(|i| (i, String::new())).collect();
        let parts = split(&evs);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [10_000, 10_000, 5_000]
        );
        let evs = vec![
            (0, "a".to_string()),
            (MAX_SPAN, "b".into()),
            (MAX_SPAN + 1, "c".into()),
        ];
        assert_eq!(
            split(&evs).iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 1]
        );
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn candidates_are_the_events_holding_the_needle_whole() {
        let evs: Vec<(i64, String)> = ["an ERROR", "ERR", "ORx", "ok", "ERROR and ERROR"]
            .iter()
            .map(|m| (1, m.to_string()))
            .collect();
        let blob = encode(&evs);
        let c = Chunk::parse(&blob).unwrap();
        let f = memchr::memmem::Finder::new("ERROR");
        // "ERR" + "ORx" spells ERROR across a boundary: neither event holds it.
        assert_eq!(c.candidates(Some(&f)), vec![0, 4]);
        assert_eq!(c.candidates(None).len(), 5);
    }

    #[test]
    fn overlapping_chunks_merge_in_time_order_both_ways() {
        let fake = Fake::new(&[
            (1, &[(10, "a10"), (30, "a30"), (50, "a50")]),
            (2, &[(20, "b20"), (30, "b30"), (40, "b40")]),
            (1, &[(5, "c5"), (60, "c60")]),
        ]);
        let fwd = fake.walk(&all(Direction::Forward, 100));
        assert_eq!(
            messages(&fwd),
            ["c5", "a10", "b20", "a30", "b30", "b40", "a50", "c60"]
        );
        assert!(!fwd.more);
        let back = fake.walk(&all(Direction::Backward, 100));
        let mut rev = messages(&fwd);
        rev.reverse();
        assert_eq!(messages(&back), rev);
    }

    #[test]
    fn pages_resume_where_they_stopped_and_miss_nothing() {
        let fake = Fake::new(&[
            (1, &[(10, "a10"), (30, "a30"), (50, "a50")]),
            (2, &[(20, "b20"), (30, "b30"), (40, "b40")]),
            (1, &[(5, "c5"), (60, "c60")]),
        ]);
        for d in [Direction::Forward, Direction::Backward] {
            let whole = fake.walk(&all(d, 100));
            let mut got = Vec::new();
            let mut w = all(d, 3);
            loop {
                let page = fake.walk(&w);
                got.extend(page.events.iter().map(|e| e.message.clone()));
                if !page.more {
                    break;
                }
                w.after = page.resume;
            }
            assert_eq!(got, messages(&whole), "{d:?}");
        }
    }

    #[test]
    fn a_spent_budget_hands_out_what_is_final_and_resumes_after_it() {
        let fake = Fake::new(&[
            (1, &[(10, "a10"), (20, "a20")]),
            (1, &[(15, "b15"), (40, "b40")]),
            (1, &[(50, "c50")]),
        ]);
        let mut w = all(Direction::Forward, 100);
        w.budget = 4;
        let page = fake.walk(&w);
        assert_eq!(messages(&page), ["a10", "b15", "a20", "b40"]);
        assert!(page.more);
        w.after = page.resume;
        let rest = fake.walk(&w);
        assert_eq!(messages(&rest), ["c50"]);
        assert!(!rest.more);
    }

    #[test]
    fn windows_streams_and_the_pattern_choose_events() {
        let fake = Fake::new(&[
            (1, &[(10, "ERROR one"), (20, "fine"), (30, "ERROR two")]),
            (2, &[(15, "ERROR other stream")]),
        ]);
        let f = memchr::memmem::Finder::new("ERROR");
        let keep = |m: &str| !m.contains("two");
        let only_one = |s: i64| s == 1;
        let mut w = all(Direction::Forward, 100);
        w.needle = Some(&f);
        w.keep = &keep;
        assert_eq!(
            messages(&fake.walk(&w)),
            ["ERROR one", "ERROR other stream"]
        );
        w.stream = &only_one;
        assert_eq!(messages(&fake.walk(&w)), ["ERROR one"]);
        w.keep = &|_| true;
        w.start = 11;
        w.end = 31;
        assert_eq!(messages(&fake.walk(&w)), ["ERROR two"]);
    }
}
