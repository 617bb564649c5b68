//! The binary form of a batch of events in the SQLite change log: one blob per commit batch, so
//! that the log costs one row per batch rather than one per write.
//!
//! A blob is a sequence of events, each: a kind byte (0 put, 1 delete, 2 put with a lease), the
//! revision (u64 LE), the key (u32 LE length, UTF-8), for a put the value (u32 LE length,
//! bytes), and for a put with a lease the lease id (i64 LE).

use crate::{Event, KeyValue, LeaseId, Revision, StoreError};

const PUT: u8 = 0;
const DELETE: u8 = 1;
const PUT_LEASED: u8 = 2;

/// Encodes `events` (in order).
pub(crate) fn encode(events: &[Event]) -> Result<Vec<u8>, StoreError> {
    let size = events
        .iter()
        .map(|e| {
            13 + e.key().len()
                + match e {
                    Event::Put(kv) => 12 + kv.value.len(),
                    Event::Delete { .. } => 0,
                }
        })
        .sum();
    let mut out = Vec::with_capacity(size);
    for e in events {
        match e {
            Event::Put(kv) => {
                out.push(if kv.lease.is_some() { PUT_LEASED } else { PUT });
                out.extend_from_slice(&kv.mod_revision.to_le_bytes());
                put_bytes(&mut out, kv.key.as_bytes())?;
                put_bytes(&mut out, &kv.value)?;
                if let Some(lease) = kv.lease {
                    out.extend_from_slice(&lease.0.to_le_bytes());
                }
            }
            Event::Delete { key, mod_revision } => {
                out.push(DELETE);
                out.extend_from_slice(&mod_revision.to_le_bytes());
                put_bytes(&mut out, key.as_bytes())?;
            }
        }
    }
    Ok(out)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), StoreError> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| StoreError::Io("a key or value over 4 GiB".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends to `out` the events of `blob` under `prefix` at revisions `from..=through`.
pub(crate) fn decode_into(
    blob: &[u8],
    prefix: &str,
    from: Revision,
    through: Revision,
    out: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let mut r = Reader(blob);
    while !r.0.is_empty() {
        let kind = r.take(1)?[0];
        let revision = u64::from_le_bytes(r.array()?);
        let key = r.bytes()?;
        let (value, lease) = match kind {
            PUT => (Some(r.bytes()?), None),
            PUT_LEASED => (
                Some(r.bytes()?),
                Some(LeaseId(i64::from_le_bytes(r.array()?))),
            ),
            DELETE => (None, None),
            _ => return Err(corrupt()),
        };
        if revision < from || revision > through || !key.starts_with(prefix.as_bytes()) {
            continue;
        }
        let key = String::from_utf8(key.to_vec()).map_err(|_| corrupt())?;
        out.push(match value {
            Some(value) => Event::Put(KeyValue {
                key,
                value: value.to_vec(),
                mod_revision: revision,
                lease,
            }),
            None => Event::Delete {
                key,
                mod_revision: revision,
            },
        });
    }
    Ok(())
}

fn corrupt() -> StoreError {
    StoreError::Io("the change log is corrupt".into())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &[u8], revision: Revision) -> Event {
        Event::Put(KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision: revision,
            lease: None,
        })
    }

    #[test]
    fn round_trips_and_filters() {
        let events = vec![
            put("a/1", b"x", 5),
            Event::Delete {
                key: "a/2".into(),
                mod_revision: 5,
            },
            put("b/1", b"", 6),
            Event::Put(KeyValue {
                key: "a/leased".into(),
                value: b"v".to_vec(),
                mod_revision: 6,
                lease: Some(LeaseId(-3)),
            }),
            put("a/3", &[0, 255, 7], 7),
        ];
        let blob = encode(&events).unwrap();
        let mut all = Vec::new();
        decode_into(&blob, "", 0, u64::MAX, &mut all).unwrap();
        assert_eq!(all, events);
        let mut some = Vec::new();
        decode_into(&blob, "a/", 5, 6, &mut some).unwrap();
        assert_eq!(
            some,
            [events[0].clone(), events[1].clone(), events[3].clone()]
        );
    }

    #[test]
    fn truncated_blobs_are_errors_not_panics() {
        let blob = encode(&[put("key", b"value", 1)]).unwrap();
        for n in 1..blob.len() {
            let mut out = Vec::new();
            assert!(decode_into(&blob[..n], "", 0, 9, &mut out).is_err(), "{n}");
        }
    }
}
