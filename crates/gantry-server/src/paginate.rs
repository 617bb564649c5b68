//! `maxResults` / `nextToken` pagination over a sorted sequence.
//!
//! A token is the base64 of the sort key of the last item returned, so pages stay correct when
//! items are added or removed between calls.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gantry_api::ApiError;

/// One page: the items and the token for the next page, if any.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Validates `maxResults` against the operation's range; `default` when absent.
pub fn max_results(v: Option<i32>, max: i32, default: i32) -> Result<usize, ApiError> {
    match v {
        None => Ok(default as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!(
            "Invalid 'maxResults' {n}: it must be between 1 and {max}."
        ))),
    }
}

/// The order a listing is sorted in, by the string key each item has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Pages `items` (sorted by `key` in `order`) after the item the token names. Keys must sort
/// as the items do, so that a page resumes correctly even if that item has since gone.
pub fn page<T, K: Fn(&T) -> String>(
    items: Vec<T>,
    key: K,
    order: Order,
    token: Option<&str>,
    limit: usize,
) -> Result<Page<T>, ApiError> {
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid("Invalid 'nextToken'."))?,
        ),
    };
    let mut it = items
        .into_iter()
        .filter(|item| match (&after, order) {
            (None, _) => true,
            (Some(a), Order::Asc) => key(item) > *a,
            (Some(a), Order::Desc) => key(item) < *a,
        })
        .peekable();
    let items: Vec<T> = it.by_ref().take(limit).collect();
    let next_token = if it.peek().is_some() {
        items.last().map(|last| URL_SAFE_NO_PAD.encode(key(last)))
    } else {
        None
    };
    Ok(Page { items, next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_everything_once() {
        let all: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        let mut token = None;
        let mut seen = Vec::new();
        loop {
            let p = page(all.clone(), |s| s.clone(), Order::Asc, token.as_deref(), 10).unwrap();
            seen.extend(p.items);
            match p.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn bad_tokens_and_limits() {
        assert!(page(vec![1], |i| i.to_string(), Order::Asc, Some("!!"), 10).is_err());
        assert!(max_results(Some(0), 100, 100).is_err());
        assert_eq!(max_results(None, 100, 100).unwrap(), 100);
    }
}
