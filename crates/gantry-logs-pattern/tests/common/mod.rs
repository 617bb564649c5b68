//! What the pattern tests share: parsing that must succeed or fail, and matching.
#![allow(dead_code)] // each test file uses some of these

use gantry_logs_pattern::FilterPattern;

pub fn p(pattern: &str) -> FilterPattern {
    match FilterPattern::parse(pattern) {
        Ok(p) => p,
        Err(e) => panic!("{pattern:?} should parse: {e}"),
    }
}

pub fn err(pattern: &str) -> String {
    match FilterPattern::parse(pattern) {
        Ok(_) => panic!("{pattern:?} should be rejected"),
        Err(e) => e.message,
    }
}

pub fn yes(pattern: &str, message: &str) {
    assert!(
        p(pattern).matches(message),
        "{pattern} should match {message}"
    );
}

pub fn no(pattern: &str, message: &str) {
    assert!(
        !p(pattern).matches(message),
        "{pattern} should not match {message}"
    );
}

/// The lines of `log` that `pattern` matches, in order.
pub fn matching(log: &[&'static str], pattern: &str) -> Vec<&'static str> {
    let compiled = p(pattern);
    log.iter()
        .copied()
        .filter(|m| compiled.matches(m))
        .collect()
}
