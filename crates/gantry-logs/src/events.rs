//! Events: PutLogEvents with CloudWatch's batch rules, GetLogEvents with forward and backward
//! tokens, FilterLogEvents with filter patterns over a group's streams.

use crate::chunks::{Direction, Walk};
use crate::groups::{group_named, page};
use crate::store::sql::{self, Scope};
use crate::store::{Cursor, Event};
use crate::{invalid, not_found, now_ms, Logs};
use gantry_api::logs::*;
use gantry_core::{Gate, ServiceError};
use gantry_logs_pattern::FilterPattern;
use std::collections::BTreeSet;

/// At most this many events a PutLogEvents batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// At most this many bytes a batch: the messages' UTF-8 bytes plus 26 per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What each event counts beside its message.
pub const EVENT_OVERHEAD: usize = 26;
/// The largest event, overhead included.
pub const MAX_EVENT_BYTES: usize = 262_144;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Events further ahead than this are too new.
const TOO_NEW_MS: i64 = 2 * HOUR_MS;
/// Events older than this are too old.
const TOO_OLD_MS: i64 = 14 * DAY_MS;
/// At most this many events are read for one FilterLogEvents page; past it, the page ends with
/// a token to go on from (as CloudWatch answers partial pages).
const SCAN_BUDGET: usize = 1_000_000;

/// Where a PutLogEvents batch's events go: accepted, or refused as too old (the first
/// `too_old_end`), expired (the first `expired_end`) or too new (from `too_new_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sorted {
    pub too_old_end: usize,
    pub expired_end: usize,
    pub too_new_start: usize,
}

/// Checks a batch against CloudWatch's rules and sorts its events by age. Pure.
pub fn sort_batch(
    events: &[InputLogEvent],
    now: i64,
    retention_days: Option<i32>,
) -> Result<Sorted, ServiceError> {
    if events.is_empty() {
        return Err(invalid("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1"));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_EVENTS}"
        )));
    }
    let mut bytes = 0usize;
    for e in events {
        let size = e.message.len() + EVENT_OVERHEAD;
        if size > MAX_EVENT_BYTES {
            return Err(invalid(format!(
                "Log event too large: {size} bytes exceeds limit of {MAX_EVENT_BYTES}"
            )));
        }
        bytes += size;
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(invalid(format!(
            "Upload too large: {bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if events.windows(2).any(|w| w[0].timestamp > w[1].timestamp) {
        return Err(invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    let (first, last) = (events[0].timestamp, events[events.len() - 1].timestamp);
    if last - first > DAY_MS {
        return Err(invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    let count = |f: &dyn Fn(i64) -> bool| events.iter().take_while(|e| f(e.timestamp)).count();
    let too_old_end = count(&|ts| ts < now - TOO_OLD_MS);
    let expired_end = match retention_days {
        Some(d) => count(&|ts| ts < now - i64::from(d) * DAY_MS),
        None => 0,
    };
    let too_new = events
        .iter()
        .rev()
        .take_while(|e| e.timestamp > now + TOO_NEW_MS)
        .count();
    Ok(Sorted {
        too_old_end,
        expired_end,
        too_new_start: events.len() - too_new,
    })
}

/// A paging token: `<kind>/<timestamp>/<id>`.
fn token(kind: char, c: Cursor) -> String {
    format!("{kind}/{}/{}", c.timestamp, c.id)
}

fn parse_token(t: &str) -> Option<(char, Cursor)> {
    let mut parts = t.splitn(3, '/');
    let kind = parts.next()?.chars().next()?;
    let timestamp = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    Some((kind, Cursor { timestamp, id }))
}

fn cursor_of(e: &Event) -> Cursor {
    Cursor {
        timestamp: e.timestamp,
        id: e.id,
    }
}

/// The earliest time a query sees: the request's start, and no older than the retention.
fn visible_from(start: Option<i64>, retention_days: Option<i32>, now: i64) -> i64 {
    let kept = retention_days.map_or(i64::MIN, |d| now - i64::from(d) * DAY_MS);
    start.unwrap_or(i64::MIN).max(kept)
}

/// Keeps events while their messages stay within CloudWatch's 1 MB answer.
fn within_answer(events: &mut Vec<Event>) {
    let mut bytes = 0usize;
    let keep = events
        .iter()
        .take_while(|e| {
            bytes += e.message.len() + EVENT_OVERHEAD;
            bytes <= MAX_BATCH_BYTES
        })
        .count()
        .max(1);
    events.truncate(keep);
}

impl Logs {
    pub async fn put_events(
        &self,
        req: PutLogEventsRequest,
        gate: &Gate<'_>,
    ) -> Result<PutLogEventsResponse, ServiceError> {
        gate.authorize(
            "logs:PutLogEvents",
            &[self.stream_arn(&req.log_group_name, &req.log_stream_name)],
        )?;
        let g = self.existing_group(&req.log_group_name).await?;
        let now = now_ms();
        let sorted = sort_batch(&req.log_events, now, g.retention_days)?;
        let from = sorted.too_old_end.max(sorted.expired_end);
        let to = sorted.too_new_start.max(from);
        let accepted: Vec<(i64, String)> = req.log_events[from..to]
            .iter()
            .map(|e| (e.timestamp, e.message.clone()))
            .collect();
        let stream = req.log_stream_name.clone();
        let appended = self
            .db(move |c| match sql::stream(c, g.id, &stream)? {
                Some(s) => sql::append(c, g.id, s.id, &accepted, now).map(|_| true),
                None => Ok(false),
            })
            .await?;
        if !appended {
            return Err(not_found("The specified log stream does not exist."));
        }
        let n = req.log_events.len();
        let rejected = RejectedLogEventsInfo {
            too_old_log_event_end_index: (sorted.too_old_end > 0)
                .then_some(sorted.too_old_end as i32),
            expired_log_event_end_index: (sorted.expired_end > 0)
                .then_some(sorted.expired_end as i32),
            too_new_log_event_start_index: (sorted.too_new_start < n)
                .then_some(sorted.too_new_start as i32),
        };
        let any = rejected != RejectedLogEventsInfo::default();
        Ok(PutLogEventsResponse {
            next_sequence_token: Some(format!("{now:020}")),
            rejected_log_events_info: any.then_some(rejected),
            rejected_entity_info: None,
        })
    }

    pub async fn get_events(
        &self,
        req: GetLogEventsRequest,
        gate: &Gate<'_>,
    ) -> Result<GetLogEventsResponse, ServiceError> {
        let group = group_named(
            req.log_group_name.as_ref(),
            req.log_group_identifier.as_ref(),
        )?;
        gate.authorize(
            "logs:GetLogEvents",
            &[self.stream_arn(&group, &req.log_stream_name)],
        )?;
        let limit = page(req.limit, 10_000)?;
        let given = match &req.next_token {
            None => None,
            Some(t) => Some(
                parse_token(t)
                    .filter(|(k, _)| *k == 'f' || *k == 'b')
                    .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
            ),
        };
        let g = self.existing_group(&group).await?;
        let now = now_ms();
        let start = visible_from(req.start_time, g.retention_days, now);
        let end = req.end_time.unwrap_or(i64::MAX);
        let stream = req.log_stream_name.clone();
        let from_head = req.start_from_head.unwrap_or(false);
        let found = self
            .db(move |c| {
                let Some(s) = sql::stream(c, g.id, &stream)? else {
                    return Ok(None);
                };
                let (after, before) = match given {
                    Some(('f', cur)) => (Some(cur), None),
                    Some((_, cur)) => (None, Some(cur)),
                    None if from_head => (None, None),
                    None => (
                        None,
                        Some(Cursor {
                            timestamp: i64::MAX,
                            id: i64::MAX,
                        }),
                    ),
                };
                sql::stream_events(c, s.id, start, end, after, before, limit).map(Some)
            })
            .await?;
        let Some(mut events) = found else {
            return Err(not_found("The specified log stream does not exist."));
        };
        if !events.is_empty() {
            within_answer(&mut events);
        }
        // At either end, the token that led there comes back, as clients expect to stop.
        let start_cursor = Cursor {
            timestamp: i64::MIN,
            id: i64::MIN,
        };
        let forward = match (events.last(), &req.next_token, given) {
            (Some(e), _, _) => token('f', cursor_of(e)),
            (None, Some(t), Some(('f', _))) => t.clone(),
            _ => token('f', start_cursor),
        };
        let backward = match (events.first(), &req.next_token, given) {
            (Some(e), _, _) => token('b', cursor_of(e)),
            (None, Some(t), Some(('b', _))) => t.clone(),
            _ => token('b', start_cursor),
        };
        Ok(GetLogEventsResponse {
            events: Some(
                events
                    .into_iter()
                    .map(|e| OutputLogEvent {
                        timestamp: Some(e.timestamp),
                        message: Some(e.message),
                        ingestion_time: Some(e.ingested),
                    })
                    .collect(),
            ),
            next_forward_token: Some(forward),
            next_backward_token: Some(backward),
        })
    }

    pub async fn filter_events(
        &self,
        req: FilterLogEventsRequest,
        gate: &Gate<'_>,
    ) -> Result<FilterLogEventsResponse, ServiceError> {
        let group = group_named(
            req.log_group_name.as_ref(),
            req.log_group_identifier.as_ref(),
        )?;
        gate.authorize("logs:FilterLogEvents", &[self.group_arn(&group)])?;
        if req.log_stream_names.is_some() && req.log_stream_name_prefix.is_some() {
            return Err(invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            ));
        }
        let pattern = FilterPattern::parse(req.filter_pattern.as_deref().unwrap_or(""))
            .map_err(|e| invalid(e.message))?;
        let limit = page(req.limit, 10_000)?;
        let cursor = match &req.next_token {
            None => Cursor {
                timestamp: i64::MIN,
                id: i64::MIN,
            },
            Some(t) => parse_token(t)
                .filter(|(k, _)| *k == 'e')
                .map(|(_, c)| c)
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        };
        let g = self.existing_group(&group).await?;
        let now = now_ms();
        let start = visible_from(req.start_time, g.retention_days, now);
        let end = req.end_time.unwrap_or(i64::MAX);
        let names = self.db(move |c| sql::stream_names(c, g.id)).await?;
        let chosen: BTreeSet<i64> = names
            .iter()
            .filter(
                |(_, n)| match (&req.log_stream_names, &req.log_stream_name_prefix) {
                    (Some(list), _) => list.contains(n),
                    (None, Some(p)) => n.starts_with(p.as_str()),
                    (None, None) => true,
                },
            )
            .map(|(id, _)| *id)
            .collect();
        // The longest literal every match contains is searched for in a chunk's text first.
        let needle = pattern
            .required_substrings()
            .into_iter()
            .max_by_key(String::len);
        let (chosen_ids, gid) = (chosen.clone(), g.id);
        let walked = self
            .db(move |c| {
                let finder = needle.as_deref().map(memchr::memmem::Finder::new);
                let keep = |m: &str| pattern.matches(m);
                let stream = |s: i64| chosen_ids.contains(&s);
                let w = Walk {
                    direction: Direction::Forward,
                    start,
                    end,
                    after: cursor,
                    limit,
                    budget: SCAN_BUDGET,
                    stream: &stream,
                    needle: finder.as_ref(),
                    keep: &keep,
                };
                sql::walk(c, Scope::Group(gid), &w)
            })
            .await?;
        let (out, more) = (walked.events, walked.more);
        let cursor = walked.resume;
        Ok(FilterLogEventsResponse {
            events: Some(
                out.into_iter()
                    .map(|e| FilteredLogEvent {
                        log_stream_name: names.get(&e.stream_id).cloned(),
                        timestamp: Some(e.timestamp),
                        message: Some(e.message),
                        ingestion_time: Some(e.ingested),
                        event_id: Some(format!("{}-{}", e.timestamp, e.id)),
                    })
                    .collect(),
            ),
            searched_log_streams: Some(
                chosen
                    .iter()
                    .filter_map(|id| names.get(id))
                    .map(|n| SearchedLogStream {
                        log_stream_name: Some(n.clone()),
                        searched_completely: Some(!more),
                    })
                    .collect(),
            ),
            next_token: more.then(|| token('e', cursor)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64) -> InputLogEvent {
        InputLogEvent {
            timestamp: ts,
            message: "m".into(),
        }
    }

    #[test]
    fn batches_follow_cloudwatchs_rules() {
        let now = 100 * DAY_MS;
        let sorted = sort_batch(
            &[
                ev(now - 15 * DAY_MS),
                ev(now - 2 * DAY_MS),
                ev(now),
                ev(now + 3 * HOUR_MS),
            ],
            now,
            Some(1),
        );
        // The 24 h span rule comes first.
        assert!(sorted.is_err());
        let s = sort_batch(
            &[
                ev(now - DAY_MS - 1000),
                ev(now - DAY_MS + 1000),
                ev(now - 1000),
            ],
            now,
            Some(1),
        )
        .unwrap();
        assert_eq!(
            s,
            Sorted {
                too_old_end: 0,
                expired_end: 1,
                too_new_start: 3
            }
        );
        let s = sort_batch(&[ev(now), ev(now + 3 * HOUR_MS)], now, None).unwrap();
        assert_eq!(s.too_new_start, 1);
        let s = sort_batch(&[ev(now - 15 * DAY_MS)], now, None).unwrap();
        assert_eq!(s.too_old_end, 1);
        assert!(sort_batch(&[], now, None).is_err());
        assert!(sort_batch(&[ev(now), ev(now - 1)], now, None)
            .unwrap_err()
            .message
            .contains("chronological"));
        let big = InputLogEvent {
            timestamp: now,
            message: "x".repeat(MAX_EVENT_BYTES),
        };
        assert!(sort_batch(&[big], now, None).is_err());
        let many: Vec<_> = (0..=MAX_BATCH_EVENTS as i64).map(|i| ev(now + i)).collect();
        assert!(sort_batch(&many, now, None).is_err());
    }

    #[test]
    fn tokens_round_trip() {
        let c = Cursor {
            timestamp: -5,
            id: 9,
        };
        assert_eq!(parse_token(&token('f', c)), Some(('f', c)));
        assert_eq!(parse_token("garbage"), None);
    }
}
