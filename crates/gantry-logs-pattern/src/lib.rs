//! CloudWatch Logs **filter pattern** parsing and matching.
//!
//! This crate implements the filter pattern language that CloudWatch Logs uses for
//! metric filters, subscription filters, `FilterLogEvents` and Live Tail, as described
//! in the AWS user guide page *Filter pattern syntax for metric filters, subscription
//! filters, filter log events, and Live Tail* (`FilterAndPatternSyntax`).
//!
//! A pattern is compiled once with [`FilterPattern::parse`] and then tested against
//! log event messages with [`FilterPattern::matches`]. Compilation rejects malformed
//! patterns with a [`PatternError`] whose message says what is wrong and where, in
//! the spirit of CloudWatch's `InvalidParameterException: Invalid filter pattern`.
//!
//! # Pattern kinds
//!
//! The kind of a pattern is decided by its first non-blank character:
//!
//! * empty or blank: matches every event;
//! * `{ ... }`: a JSON pattern, e.g. `{ $.level = "error" && $.latency > 100 }`;
//! * `[ ... ]`: a space-delimited pattern, e.g. `[ip, user, ..., status = 5*, bytes > 100]`;
//! * `% ... %`: a standalone regular expression, e.g. `%ERROR [0-9]{3}%`;
//! * anything else: unstructured terms, e.g. `ERROR -DEBUG "Connection refused"`.
//!
//! ```
//! use gantry_logs_pattern::FilterPattern;
//!
//! let p = FilterPattern::parse(r#"{ $.level = "error" && $.latency > 100 }"#).unwrap();
//! assert!(p.matches(r#"{"level":"error","latency":250}"#));
//! assert!(!p.matches(r#"{"level":"error","latency":50}"#));
//! assert!(!p.matches("level=error latency=250")); // not JSON: no match
//!
//! let p = FilterPattern::parse("?ERROR ?WARN").unwrap();
//! assert!(p.matches("[WARN] disk almost full"));
//!
//! let p = FilterPattern::parse("[ip, user, ..., status = 4* || status = 5*, size]").unwrap();
//! assert!(p.matches(r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET / HTTP/1.0" 503 12"#));
//! ```
//!
//! See the crate README for the exact semantics chosen where the AWS documentation is
//! silent or ambiguous.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;

mod delimited;
mod json;
mod parse;
mod regex;
mod text;
mod value;

/// An error produced when a filter pattern cannot be compiled.
///
/// The message starts with `Invalid filter pattern:` and then explains what is wrong and
/// at which (1-based, character) position of the pattern, when a position makes sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// Human readable description of the problem, including its position.
    pub message: String,
}

impl PatternError {
    /// An error about the pattern as a whole.
    pub(crate) fn new(what: impl fmt::Display) -> Self {
        PatternError {
            message: format!("Invalid filter pattern: {what}"),
        }
    }

    /// An error located at byte offset `byte` of `pattern`.
    pub(crate) fn at(pattern: &str, byte: usize, what: impl fmt::Display) -> Self {
        PatternError::new(format_args!(
            "{what} at position {}",
            char_position(pattern, byte)
        ))
    }
}

/// 1-based character position of byte offset `byte` in `s` (clamped to the end).
pub(crate) fn char_position(s: &str, byte: usize) -> usize {
    s.char_indices().take_while(|(i, _)| *i < byte).count() + 1
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatternError {}

/// A compiled CloudWatch Logs filter pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    compiled: Compiled,
}

#[derive(Debug, Clone)]
enum Compiled {
    /// The empty pattern: every event matches.
    All,
    Terms(text::TermPattern),
    Regex(regex::Regex),
    Json(json::JsonPattern),
    Delimited(delimited::DelimitedPattern),
}

impl FilterPattern {
    /// Compiles a filter pattern.
    ///
    /// Leading and trailing whitespace is ignored; an empty (or blank) pattern matches
    /// every event. Returns a [`PatternError`] when the pattern is malformed or uses a
    /// construct CloudWatch Logs rejects (for example `IS NOT`, parentheses inside a
    /// regular expression, or more than two regular expressions in a JSON pattern).
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        // Work on the trimmed range of the original text, so that error positions
        // refer to the pattern exactly as the caller wrote it.
        let start = pattern.len() - pattern.trim_start().len();
        let end = pattern.trim_end().len().max(start);
        let trimmed = pattern.get(start..end).unwrap_or("");
        let compiled = if trimmed.is_empty() {
            Compiled::All
        } else if trimmed.starts_with('{') {
            Compiled::Json(json::JsonPattern::parse(pattern, start, end)?)
        } else if trimmed.starts_with('[') {
            Compiled::Delimited(delimited::DelimitedPattern::parse(pattern, start, end)?)
        } else if trimmed.starts_with('%') {
            Compiled::Regex(parse_standalone_regex(pattern, start, trimmed)?)
        } else {
            Compiled::Terms(text::TermPattern::parse(pattern, start, end)?)
        };
        Ok(FilterPattern { compiled })
    }

    /// Returns `true` when the log event `message` matches the pattern.
    ///
    /// JSON patterns only match messages that are JSON objects; space-delimited patterns
    /// only match messages with at least as many fields as the pattern names.
    pub fn matches(&self, message: &str) -> bool {
        match &self.compiled {
            Compiled::All => true,
            Compiled::Terms(p) => p.matches(message),
            Compiled::Regex(r) => r.is_match(message),
            Compiled::Json(p) => p.matches(message),
            Compiled::Delimited(p) => p.matches(message),
        }
    }

    /// Substrings, exactly as written, that every message the pattern matches contains, for a
    /// search to find candidates before it matches them; empty when none can be said.
    ///
    /// Terms are matched as case-sensitive substrings of the message, and a space-delimited
    /// field is a slice of it, so each literal occurs as it is (blank phrases, which match
    /// every event, are left out).
    pub fn required_substrings(&self) -> Vec<String> {
        let raw = match &self.compiled {
            Compiled::All | Compiled::Regex(_) | Compiled::Json(_) => Vec::new(),
            Compiled::Terms(p) => p.required_literals(),
            Compiled::Delimited(p) => p.required_literals(),
        };
        raw.into_iter().filter(|s| !s.trim().is_empty()).collect()
    }
}

/// Compiles a pattern that starts with `%` (`trimmed`, found at byte offset `start`
/// of `pattern`): the whole pattern must be one regex.
fn parse_standalone_regex(
    pattern: &str,
    start: usize,
    trimmed: &str,
) -> Result<regex::Regex, PatternError> {
    let inner = trimmed
        .strip_prefix('%')
        .and_then(|rest| rest.strip_suffix('%'))
        .ok_or_else(|| {
            PatternError::new(
                "a regular expression pattern must start and end with '%' \
                 and cannot be combined with other terms",
            )
        })?;
    regex::Regex::parse(pattern, start + 1, inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_positions_are_one_based_and_count_chars() {
        assert_eq!(char_position("abc", 0), 1);
        assert_eq!(char_position("abc", 2), 3);
        assert_eq!(char_position("é=x", 2), 2);
        assert_eq!(char_position("ab", 10), 3);
    }

    #[test]
    fn compiled_patterns_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<FilterPattern>();
        assert_send_sync::<PatternError>();
    }

    #[test]
    fn error_display_is_the_message() {
        let e = PatternError::at("ab\"c", 2, "unterminated quoted string");
        assert_eq!(
            e.to_string(),
            "Invalid filter pattern: unterminated quoted string at position 3"
        );
    }
}
