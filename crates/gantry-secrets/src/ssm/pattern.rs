//! PutParameter's `AllowedPattern`: a regular expression the value must match, compiled with
//! the `regex` crate, whose matching time is linear in the value, so no pattern can stall the
//! server. Java syntax the crate lacks (look-around, back-references) is refused by name.

/// A compiled AllowedPattern.
#[derive(Debug)]
pub struct Pattern(regex::Regex);

/// Why a pattern was refused, for InvalidAllowedPatternException.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The most memory one compiled pattern may take.
const SIZE_LIMIT: usize = 1 << 20;

impl Pattern {
    pub fn new(src: &str) -> Result<Pattern, Refused> {
        for (construct, what) in [
            ("(?=", "look-ahead"),
            ("(?!", "negative look-ahead"),
            ("(?<=", "look-behind"),
            ("(?<!", "negative look-behind"),
        ] {
            if src.contains(construct) {
                return Err(Refused(format!("{what} ({construct}) is not supported")));
            }
        }
        regex::RegexBuilder::new(src)
            .size_limit(SIZE_LIMIT)
            .build()
            .map(Pattern)
            .map_err(|e| {
                Refused(
                    e.to_string()
                        .lines()
                        .last()
                        .unwrap_or("invalid")
                        .trim()
                        .to_string(),
                )
            })
    }

    /// Whether the pattern matches somewhere in `text` (anchors make it the whole value).
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::new(p).unwrap().is_match(t)
    }

    #[test]
    fn the_common_syntax_matches() {
        assert!(m(r"^\d+$", "12345"));
        assert!(!m(r"^\d+$", "12a45"));
        assert!(m(r"\d+", "abc1"));
        assert!(m(r"^[a-z0-9_.-]{3,8}$", "ab_c.d-1"));
        assert!(!m(r"^[a-z0-9_.-]{3,8}$", "abcdefghi"));
        assert!(m(r"^(dev|prod)-\w+$", "prod-api"));
        assert!(!m(r"^(dev|prod)-\w+$", "test-api"));
        assert!(m(r"\bcat\b", "a cat sat"));
        assert!(!m(r"\bcat\b", "concatenate"));
        assert!(m(r"^(?<word>[A-Z][a-z]*)$", "Hello"));
        // Nested repetition that backtracking engines take exponential time over.
        assert!(!m(r"^(a*)*b$", &"a".repeat(10_000)));
    }

    #[test]
    fn what_it_cannot_do_it_refuses() {
        for p in [r"^(?=a)", r"(?<!x)y", r"(a)\1", r"[unclosed"] {
            assert!(Pattern::new(p).is_err(), "{p}");
        }
        assert!(Pattern::new(r"(?!x)").unwrap_err().0.contains("look-ahead"));
    }
}
